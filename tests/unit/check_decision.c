/* The decider end to end, in process: the shared fixtures through decode,
 * facts, signals, estimate, score and encode, with the built-in catalog,
 * zone map and carbon providers. */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/gpu_catalog.h"
#include "carbon/providers/builtin.h"
#include "carbon/providers/file.h"
#include "carbon/providers/static.h"
#include "carbon/signals.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "carbon/zones.h"
#include "scheduler/codec.h"
#include "scheduler/decision.h"
#include "scheduler/node_cache.h"
#include "scheduler/policy.h"
#include "scheduler/score.h"
#include "tests/unit/testutil.h"

static cs_gpu_catalog *catalog;
static cs_zone_map *zones;
static cs_signals *signals;
static cs_facts_params facts;
static cs_estimate_params est;
static cs_decider *decider;
static cs_decider_deps base_deps; /* the decider's, for variants of it */

/* Static values make the expected order exact; builtin stands behind them
 * for every other zone, as in the default configuration. */
/* Decision lines go to /dev/null, except where a test reads them. */
static void quiet_logs(void)
{
  static int devnull = -1;
  if (devnull < 0)
    devnull = open("/dev/null", O_WRONLY);
  cs_log_set_fd(devnull);
}

static void setup_common(bool with_static)
{
  quiet_logs();
  cs_clock_set_fixed(1795435200); /* 2026-11-23T12:00:00Z */
  catalog = cs_gpu_catalog_new();
  zones = cs_zone_map_new();
  signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  if (with_static) {
    static const cs_static_zone values[] = {
        {"DE", 380}, {"NO", 30}, {"ES", 150}};
    cs_provider *p;
    ck_assert_int_eq(cs_static_new(values, 3, CS_SIGNAL_AVERAGE, &p), CS_OK);
    ck_assert_int_eq(cs_signals_add_provider(signals, p), CS_OK);
  }
  ck_assert_int_eq(cs_signals_add_provider(signals, cs_builtin_new()), CS_OK);
  facts = (cs_facts_params){.catalog = catalog,
                            .zones = zones,
                            .default_pue = 1.2,
                            .default_lifetime_s = 6 * 365 * 86400.0};
  est = (cs_estimate_params){.reference_gpu =
                                 cs_gpu_catalog_find(catalog, "A100-SXM4-80GB"),
                             .default_duration_s = 3600,
                             .server_embodied_kg = 1000,
                             .gpu_embodied_kg = 150};
  ck_assert_ptr_nonnull(est.reference_gpu);
  base_deps =
      (cs_decider_deps){.signals = signals, .facts = &facts, .estimate = &est};
  decider = cs_decider_new(&base_deps);
}

static void setup_static(void)
{
  setup_common(true);
}

static void setup_builtin(void)
{
  setup_common(false);
}

static void teardown(void)
{
  cs_decider_free(decider);
  cs_signals_free(signals);
  cs_zone_map_free(zones);
  cs_gpu_catalog_free(catalog);
  cs_clock_set_fixed(0);
}

static cJSON *call(cs_verb verb, const char *fixture, int want_status)
{
  size_t len;
  char *body = tu_read_shared(fixture, &len);
  cs_reply r = {0};
  cs_decider_handle(decider, verb, body, len, NULL, "test-1", &r);
  ck_assert_int_eq(r.status, want_status);
  cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
  ck_assert_msg(doc != NULL, "reply is not JSON: %.200s", r.body);
  free(r.body);
  free(body);
  return doc;
}

static int score_of(const cJSON *list, const char *host)
{
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
  {
    const cJSON *h = cJSON_GetObjectItem(e, "Host");
    if (cJSON_IsString(h) && strcmp(h->valuestring, host) == 0) {
      const cJSON *s = cJSON_GetObjectItem(e, "Score");
      ck_assert(cJSON_IsNumber(s));
      ck_assert_msg(s->valuedouble == (double)s->valueint,
                    "score of %s is not an integer", host);
      ck_assert_int_ge(s->valueint, 0);
      ck_assert_int_le(s->valueint, 10);
      return s->valueint;
    }
  }
  ck_abort_msg("no score for %s", host);
  return -1;
}

static void assert_clean_grids_first(const cJSON *list)
{
  ck_assert_int_eq(cJSON_GetArraySize(list), 4);
  int h100 = score_of(list, "gpu-h100-fra-01");
  int a100 = score_of(list, "gpu-a100-fra-02");
  int v100 = score_of(list, "gpu-v100-osl-01");
  int l4 = score_of(list, "gpu-l4-mad-01");
  ck_assert_int_gt(v100, h100);
  ck_assert_int_gt(v100, a100);
  ck_assert_int_gt(l4, h100);
  ck_assert_int_gt(l4, a100);
  ck_assert_int_gt(h100, a100);
}

static cJSON *prioritize_logged(cJSON **line);

START_TEST(test_decision_prioritize_fixture_static)
{
  cJSON *line;
  cJSON *list = prioritize_logged(&line);
  assert_clean_grids_first(list);
  /* Each score is 10 x the lowest estimate / the node's, rounded, from
   * the figures the Decision line gives. */
  double lowest = INFINITY;
  const cJSON *n;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(line, "nodes"))
  {
    double kg =
        cJSON_GetObjectItem(cJSON_GetObjectItem(n, "estimate"), "totalKg")
            ->valuedouble;
    lowest = kg < lowest ? kg : lowest;
  }
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(line, "nodes"))
  {
    double kg =
        cJSON_GetObjectItem(cJSON_GetObjectItem(n, "estimate"), "totalKg")
            ->valuedouble;
    const char *name =
        cJSON_GetArrayItem(cJSON_GetObjectItem(n, "names"), 0)->valuestring;
    ck_assert_msg(score_of(list, name) == (int)lround(10 * lowest / kg),
                  "%s: score %d for %g kg, lowest %g kg", name,
                  score_of(list, name), kg, lowest);
    ck_assert_int_eq(cJSON_GetObjectItem(n, "score")->valueint,
                     score_of(list, name));
  }
  cJSON_Delete(line);
  cJSON_Delete(list);
}
END_TEST

START_TEST(test_decision_prioritize_fixture_builtin)
{
  cJSON *list = call(CS_VERB_PRIORITIZE,
                     "fixtures/extender/prioritize-nodes.request.json", 200);
  assert_clean_grids_first(list);
  cJSON_Delete(list);
}
END_TEST

START_TEST(test_decision_filter_full_echoes_every_node)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  cJSON *in = cJSON_ParseWithLength(body, len);
  free(body);
  cJSON *out =
      call(CS_VERB_FILTER, "fixtures/extender/filter-nodes.request.json", 200);
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(out, "NodeNames")));
  ck_assert(cJSON_Compare(cJSON_GetObjectItem(in, "Nodes"),
                          cJSON_GetObjectItem(out, "Nodes"), 1));
  ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "FailedNodes")),
                   0);
  ck_assert_str_eq(cJSON_GetObjectItem(out, "Error")->valuestring, "");
  cJSON_Delete(in);
  cJSON_Delete(out);
}
END_TEST

/* Allowed to point into the request, the filter reply in full mode echoes
 * the Nodes as pieces of it, and says the same as the copied reply. */
START_TEST(test_decision_filter_full_echo_in_pieces)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  cs_reply flat = {0}, pieces = {.echo_ok = true};
  cs_decider_handle(decider, CS_VERB_FILTER, body, len, NULL, "test-1", &flat);
  cs_decider_handle(decider, CS_VERB_FILTER, body, len, NULL, "test-2",
                    &pieces);
  ck_assert_int_eq(pieces.status, 200);
  ck_assert_ptr_null(flat.pieces);
  ck_assert_ptr_nonnull(pieces.pieces);
  size_t echoes = 0;
  for (size_t i = 0; i < pieces.npieces; i++)
    if (pieces.pieces[i].echo) {
      echoes++;
      ck_assert(pieces.pieces[i].echo >= body &&
                pieces.pieces[i].echo + pieces.pieces[i].len <= body + len);
    }
  ck_assert_uint_eq(echoes, 1); /* all four Nodes kept: one piece */
  cs_buf joined;
  cs_buf_init(&joined, 0);
  cs_codec_join_pieces(&joined, pieces.body, pieces.pieces, pieces.npieces);
  cJSON *a = cJSON_ParseWithLength(joined.data, joined.len);
  cJSON *b = cJSON_ParseWithLength(flat.body, flat.len);
  ck_assert(a && b && cJSON_Compare(a, b, 1));
  cJSON_Delete(a);
  cJSON_Delete(b);
  cs_buf_free(&joined);
  free(flat.body);
  free(pieces.body);
  free(pieces.pieces);
  free(body);
}
END_TEST

START_TEST(test_decision_filter_names_passes_input_names)
{
  cJSON *out =
      call(CS_VERB_FILTER, "fixtures/extender/filter-names.request.json", 200);
  cJSON *names = cJSON_GetObjectItem(out, "NodeNames");
  ck_assert_int_eq(cJSON_GetArraySize(names), 4);
  ck_assert_str_eq(cJSON_GetArrayItem(names, 0)->valuestring,
                   "gpu-h100-fra-01");
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(out, "Nodes")));
  cJSON_Delete(out);
}
END_TEST

START_TEST(test_decision_prioritize_plain_pod_neutral)
{
  cJSON *list =
      call(CS_VERB_PRIORITIZE,
           "fixtures/extender/prioritize-plain-pod.request.json", 200);
  ck_assert_int_eq(cJSON_GetArraySize(list), 5);
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
      ck_assert_int_eq(cJSON_GetObjectItem(e, "Score")->valueint, 5);
  cJSON_Delete(list);
}
END_TEST

START_TEST(test_decision_handle_bad_request_400)
{
  cs_reply r = {0};
  const char *body = "{\"Pod\":{},\"NodeNames\":[3]}";
  cs_decider_handle(decider, CS_VERB_FILTER, body, strlen(body), NULL, "t", &r);
  ck_assert_int_eq(r.status, 400);
  cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
  ck_assert_str_eq(cJSON_GetObjectItem(doc, "Error")->valuestring,
                   "NodeNames[0]: expected a string, got a number");
  /* The same words for the server's access line. */
  ck_assert_str_eq(r.error, "NodeNames[0]: expected a string, got a number");
  cJSON_Delete(doc);
  free(r.body);
}
END_TEST

/* The duration histogram counts every call, a refused one too, and its
 * HELP says what the time covers, as docs/operations.md's table does. */
START_TEST(test_decision_handle_duration_metric_described)
{
  cs_decider_deps counted = base_deps;
  counted.metrics = cs_metrics_new();
  cs_decider *d = cs_decider_new(&counted);
  cs_reply r = {0};
  const char *body = "{\"Pod\":{},\"NodeNames\":[3]}";
  cs_decider_handle(d, CS_VERB_FILTER, body, strlen(body), NULL, "t", &r);
  ck_assert_int_eq(r.status, 400);
  free(r.body);
  const char *lv[] = {"filter"};
  double n = 0;
  ck_assert_int_eq(cs_metrics_get(counted.metrics,
                                  "carbonshift_decision_duration_seconds", lv,
                                  &n),
                   CS_OK);
  ck_assert_double_eq(n, 1);
  cs_buf text;
  cs_buf_init(&text, 0);
  cs_metrics_render(counted.metrics, &text);
  cs_buf_putc(&text, '\0');
  ck_assert_msg(strstr(text.data,
                       "# HELP carbonshift_decision_duration_seconds "
                       "Time to decide one extender call: "
                       "decoding, deciding, encoding the reply and "
                       "writing its log line; not the wait for "
                       "body bytes or for a decision thread.\n"),
                "%s", text.data);
  cs_buf_free(&text);
  cs_decider_free(d);
  cs_metrics_free(counted.metrics);
}
END_TEST

/* Decision lines written between capture_begin and capture_line go to a
 * pipe; capture_line checks there was exactly one and parses it. */
static void capture_begin(int fds[2])
{
  ck_assert_int_eq(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  cs_log_set_fd(fds[1]);
}

static cJSON *capture_line(int fds[2])
{
  quiet_logs();
  static char buf[1 << 20];
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  close(fds[0]);
  close(fds[1]);
  ck_assert_ptr_nonnull(strchr(buf, '\n'));
  ck_assert_ptr_null(strchr(buf, '\n') + 1 < buf + n ? buf : NULL);
  cJSON *line = cJSON_Parse(buf);
  ck_assert_ptr_nonnull(line);
  return line;
}

/* The Decision line of one call with `body`, parsed. */
static cJSON *decision_line_of(cs_verb verb, const char *body)
{
  int fds[2];
  capture_begin(fds);
  cs_reply r = {0};
  cs_decider_handle(decider, verb, body, strlen(body), NULL, "test-2", &r);
  ck_assert_int_eq(r.status, 200);
  free(r.body);
  return capture_line(fds);
}

/* The prioritize fixture, parsed, for a test to change. */
static cJSON *prioritize_fixture(void)
{
  size_t len;
  char *text =
      tu_read_shared("fixtures/extender/prioritize-nodes.request.json", &len);
  cJSON *req = cJSON_ParseWithLength(text, len);
  free(text);
  ck_assert_ptr_nonnull(req);
  return req;
}

/* Nodes that share every fact, estimate and score share one entry of the
 * Decision line, which names them all: a line grows with the kinds of node,
 * not with the size of the cluster. A twin that differs in one fact (its
 * install date) gets an entry of its own; twins with the same malformed
 * annotation share one, as their problems read the same. */
/* The prioritize fixture plus five more H100 nodes: two the same as the
 * first, one installed earlier, two with a bad PUE annotation. */
static char *twins_request(void)
{
  cJSON *req = prioritize_fixture();
  cJSON *items =
      cJSON_GetObjectItem(cJSON_GetObjectItem(req, "Nodes"), "items");
  cJSON *h100 = cJSON_GetArrayItem(items, 0);
  const char *twins[] = {"h100-twin-a", "h100-twin-b", "h100-older",
                         "h100-bad-pue-a", "h100-bad-pue-b"};
  for (int k = 0; k < 5; k++) {
    cJSON *t = cJSON_Duplicate(h100, true);
    cJSON *md = cJSON_GetObjectItem(t, "metadata");
    cJSON_ReplaceItemInObject(md, "name", cJSON_CreateString(twins[k]));
    if (k == 2)
      cJSON_ReplaceItemInObject(cJSON_GetObjectItem(md, "annotations"),
                                "carbonshift.io/hardware-installed",
                                cJSON_CreateString("2021-01"));
    if (k >= 3) {
      cJSON *ann = cJSON_GetObjectItem(md, "annotations");
      cJSON_DeleteItemFromObject(ann, "carbonshift.io/pue");
      cJSON_AddStringToObject(ann, "carbonshift.io/pue", "lots");
    }
    cJSON_AddItemToArray(items, t);
  }
  char *body = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  return body;
}

START_TEST(test_decision_handle_groups_identical_nodes)
{
  char *body = twins_request();
  cJSON *line = decision_line_of(CS_VERB_PRIORITIZE, body);
  free(body);
  ck_assert_int_eq(cJSON_GetObjectItem(line, "nodeCount")->valueint, 9);
  cJSON *nodes = cJSON_GetObjectItem(line, "nodes");
  ck_assert_int_eq(cJSON_GetArraySize(nodes), 6);
  cJSON *first = cJSON_GetObjectItem(cJSON_GetArrayItem(nodes, 0), "names");
  ck_assert_int_eq(cJSON_GetArraySize(first), 3);
  ck_assert_str_eq(cJSON_GetArrayItem(first, 0)->valuestring,
                   "gpu-h100-fra-01");
  ck_assert_str_eq(cJSON_GetArrayItem(first, 1)->valuestring, "h100-twin-a");
  ck_assert_str_eq(cJSON_GetArrayItem(first, 2)->valuestring, "h100-twin-b");
  cJSON *older = cJSON_GetArrayItem(nodes, 4);
  cJSON *onames = cJSON_GetObjectItem(older, "names");
  ck_assert_int_eq(cJSON_GetArraySize(onames), 1);
  ck_assert_str_eq(cJSON_GetArrayItem(onames, 0)->valuestring, "h100-older");
  cJSON *bad = cJSON_GetArrayItem(nodes, 5);
  ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(bad, "names")), 2);
  ck_assert_ptr_nonnull(strstr(
      cJSON_GetObjectItem(bad, "problems")->valuestring, "carbonshift.io/pue"));
  /* Every node is named exactly once, and counted. */
  int named = 0, counted = 0;
  cJSON *e;
  cJSON_ArrayForEach(e, nodes)
  {
    named += cJSON_GetArraySize(cJSON_GetObjectItem(e, "names"));
    counted += cJSON_GetObjectItem(e, "count")->valueint;
    ck_assert_ptr_null(cJSON_GetObjectItem(e, "moreNames"));
  }
  ck_assert_int_eq(named, 9);
  ck_assert_int_eq(counted, 9);
  cJSON_Delete(line);
}
END_TEST

/* With log.decisionNames at 2, an entry names at most two nodes and counts
 * the rest; the numbers are those of the full line. */
START_TEST(test_decision_handle_caps_names_per_entry)
{
  cs_decider_deps capped = base_deps;
  capped.log_names_max = 2;
  cs_decider *full = decider;
  decider = cs_decider_new(&capped);
  char *body = twins_request();
  cJSON *line = decision_line_of(CS_VERB_PRIORITIZE, body);
  cs_decider_free(decider);
  decider = full;
  cJSON *whole = decision_line_of(CS_VERB_PRIORITIZE, body);
  free(body);
  cJSON *nodes = cJSON_GetObjectItem(line, "nodes");
  cJSON *all = cJSON_GetObjectItem(whole, "nodes");
  ck_assert_int_eq(cJSON_GetArraySize(nodes), cJSON_GetArraySize(all));
  cJSON *first = cJSON_GetArrayItem(nodes, 0);
  cJSON *names = cJSON_GetObjectItem(first, "names");
  ck_assert_int_eq(cJSON_GetArraySize(names), 2);
  ck_assert_str_eq(cJSON_GetArrayItem(names, 1)->valuestring, "h100-twin-a");
  ck_assert_int_eq(cJSON_GetObjectItem(first, "count")->valueint, 3);
  ck_assert_int_eq(cJSON_GetObjectItem(first, "moreNames")->valueint, 1);
  for (int k = 0; k < cJSON_GetArraySize(all); k++) {
    cJSON *a = cJSON_GetArrayItem(all, k), *b = cJSON_GetArrayItem(nodes, k);
    ck_assert_int_eq(cJSON_GetObjectItem(a, "score")->valueint,
                     cJSON_GetObjectItem(b, "score")->valueint);
    ck_assert_int_eq(cJSON_GetObjectItem(a, "count")->valueint,
                     cJSON_GetObjectItem(b, "count")->valueint);
    if (cJSON_GetObjectItem(a, "count")->valueint <= 2)
      ck_assert_ptr_null(cJSON_GetObjectItem(b, "moreNames"));
  }
  cJSON_Delete(line);
  cJSON_Delete(whole);
}
END_TEST

/* A short job's figures keep their significant digits: a 10-minute,
 * one-GPU run's energy and embodied share are small, not 0, and the line
 * stays self-consistent (operational = energy x intensity). */
START_TEST(test_decision_line_small_figures_not_rounded_away)
{
  cJSON *req = prioritize_fixture();
  cJSON *pod = cJSON_GetObjectItem(req, "Pod");
  cJSON *ann =
      cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "annotations");
  cJSON_ReplaceItemInObject(ann, "carbonshift.io/expected-duration",
                            cJSON_CreateString("10m"));
  cJSON *c0 = cJSON_GetArrayItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 0);
  cJSON *res = cJSON_GetObjectItem(c0, "resources");
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(res, "requests"),
                            "nvidia.com/gpu", cJSON_CreateString("1"));
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(res, "limits"),
                            "nvidia.com/gpu", cJSON_CreateString("1"));
  char *body = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  cJSON *line = decision_line_of(CS_VERB_PRIORITIZE, body);
  free(body);
  int checked = 0;
  cJSON *n;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(line, "nodes"))
  {
    cJSON *e = cJSON_GetObjectItem(n, "estimate");
    if (!e)
      continue;
    double kwh = cJSON_GetObjectItem(e, "energyKwh")->valuedouble;
    double g = cJSON_GetObjectItem(e, "gPerKwh")->valuedouble;
    double op = cJSON_GetObjectItem(e, "operationalKg")->valuedouble;
    double emb = cJSON_GetObjectItem(e, "embodiedKg")->valuedouble;
    ck_assert_msg(kwh > 0 && kwh < 1 && emb > 0, "kWh %g, embodied %g", kwh,
                  emb);
    ck_assert_msg(fabs(op - kwh * g / 1000) <= 0.01 * op,
                  "operational %g kg vs %g kWh x %g g/kWh", op, kwh, g);
    checked++;
  }
  ck_assert_int_ge(checked, 3);
  cJSON_Delete(line);
}
END_TEST

/* Every zone's intensity names its emission-factor basis, and a call
 * whose zones are on both bases says which are which: with the L4 moved
 * to JP-TK (a direct figure in the built-in profile) beside DE's and NO's
 * life-cycle ones. */
START_TEST(test_decision_line_names_mixed_emission_factors)
{
  cJSON *req = prioritize_fixture();
  char *text = cJSON_PrintUnformatted(req);
  cJSON *line = decision_line_of(CS_VERB_PRIORITIZE, text);
  free(text);
  ck_assert_ptr_null(cJSON_GetObjectItem(line, "mixedEmissionFactors"));
  cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(line, "nodes"), 0);
  ck_assert_str_eq(
      cJSON_GetObjectItem(cJSON_GetObjectItem(e0, "intensity"), "factor")
          ->valuestring,
      "lifecycle");
  cJSON_Delete(line);

  cJSON *items =
      cJSON_GetObjectItem(cJSON_GetObjectItem(req, "Nodes"), "items");
  cJSON *labels = NULL;
  for (int i = 0; i < cJSON_GetArraySize(items); i++) {
    cJSON *md = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "metadata");
    if (!strcmp(cJSON_GetObjectItem(md, "name")->valuestring, "gpu-l4-mad-01"))
      labels = cJSON_GetObjectItem(md, "labels");
  }
  ck_assert_ptr_nonnull(labels);
  cJSON_DeleteItemFromObject(labels, "carbonshift.io/grid-zone");
  cJSON_AddStringToObject(labels, "carbonshift.io/grid-zone", "JP-TK");
  text = cJSON_PrintUnformatted(req);
  cJSON_Delete(req);
  line = decision_line_of(CS_VERB_PRIORITIZE, text);
  free(text);
  cJSON *mixed = cJSON_GetObjectItem(line, "mixedEmissionFactors");
  ck_assert_ptr_nonnull(mixed);
  cJSON *direct = cJSON_GetObjectItem(mixed, "direct");
  ck_assert_int_eq(cJSON_GetArraySize(direct), 1);
  ck_assert_str_eq(cJSON_GetArrayItem(direct, 0)->valuestring, "JP-TK");
  ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItem(mixed, "lifecycle")),
                   2);
  cJSON_Delete(line);
}
END_TEST

/* One decision line per call, with the numbers behind each score. */
START_TEST(test_decision_handle_logs_decision_line)
{
  int fds[2];
  capture_begin(fds);
  cJSON *list = call(CS_VERB_PRIORITIZE,
                     "fixtures/extender/prioritize-nodes.request.json", 200);
  cJSON *line = capture_line(fds);
  ck_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "Decision");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "requestId")->valuestring,
                   "test-1");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "verb")->valuestring,
                   "prioritize");
  ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(line, "pod"), "name")
                       ->valuestring,
                   "llm-pretrain-7b-x2k9q");
  /* The pod's limits, as read. */
  ck_assert_double_eq(cJSON_GetObjectItem(line, "budgetKg")->valuedouble, 120);
  ck_assert_str_eq(cJSON_GetObjectItem(line, "onBudgetExceeded")->valuestring,
                   "wait");
  ck_assert_double_eq(cJSON_GetObjectItem(line, "maxDelayHours")->valuedouble,
                      12);
  ck_assert_ptr_null(cJSON_GetObjectItem(line, "deadline"));
  ck_assert_int_eq(cJSON_GetObjectItem(line, "nodeCount")->valueint, 4);
  cJSON *nodes = cJSON_GetObjectItem(line, "nodes");
  ck_assert_int_eq(cJSON_GetArraySize(nodes), 4); /* four kinds of node */
  cJSON *v100 = cJSON_GetArrayItem(nodes, 2);
  cJSON *names = cJSON_GetObjectItem(v100, "names");
  ck_assert_int_eq(cJSON_GetArraySize(names), 1);
  ck_assert_str_eq(cJSON_GetArrayItem(names, 0)->valuestring,
                   "gpu-v100-osl-01");
  ck_assert_str_eq(cJSON_GetObjectItem(v100, "zone")->valuestring, "NO");
  ck_assert_str_eq(cJSON_GetObjectItem(v100, "zoneSource")->valuestring,
                   "label");
  cJSON *intensity = cJSON_GetObjectItem(v100, "intensity");
  ck_assert_double_eq(cJSON_GetObjectItem(intensity, "value")->valuedouble, 30);
  ck_assert_str_eq(cJSON_GetObjectItem(intensity, "provider")->valuestring,
                   "static");
  cJSON *e = cJSON_GetObjectItem(v100, "estimate");
  ck_assert(cJSON_GetObjectItem(e, "totalKg")->valuedouble > 0);
  ck_assert_int_eq(cJSON_GetObjectItem(v100, "score")->valueint,
                   score_of(list, "gpu-v100-osl-01"));
  ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(line, "durationMs")));
  cJSON_Delete(line);
  cJSON_Delete(list);
}
END_TEST

/* A body still arriving: handed out in quarters, 100 ms apart. */
typedef struct slow_feed {
  const char *end;
  size_t quarter;
  int waits;
} slow_feed;

static const char *slow_wait(void *ctx, const char *have)
{
  slow_feed *f = ctx;
  if (have >= f->end)
    return have;
  usleep(100000);
  f->waits++;
  size_t left = (size_t)(f->end - have);
  return have + (left < f->quarter ? left : f->quarter);
}

/* Decided while it arrives, a request gets the reply it gets whole, and
 * the Decision line's duration leaves out the time spent waiting for it. */
START_TEST(test_decision_handle_fed_body_like_whole)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/prioritize-nodes.request.json", &len);
  cs_reply whole = {0}, fed = {0};
  cs_decider_handle(decider, CS_VERB_PRIORITIZE, body, len, NULL, "w-1",
                    &whole);
  slow_feed f = {body + len, len / 4 + 1, 0};
  cs_jscan_feed feed = {slow_wait, &f};
  int fds[2];
  capture_begin(fds);
  cs_decider_handle(decider, CS_VERB_PRIORITIZE, body, 0, &feed, "f-1", &fed);
  cJSON *line = capture_line(fds);
  ck_assert_int_eq(fed.status, 200);
  ck_assert_uint_eq(fed.len, whole.len);
  ck_assert(memcmp(fed.body, whole.body, whole.len) == 0);
  ck_assert_int_ge(f.waits, 4);
  double ms = cJSON_GetObjectItem(line, "durationMs")->valuedouble;
  ck_assert_msg(ms < 100, "durationMs %.1f counts the %d waits of 100 ms", ms,
                f.waits);
  cJSON_Delete(line);
  free(whole.body);
  free(fed.body);
  free(body);
}
END_TEST

/* ---- /filter decisions ----------------------------------------------------
 */

/* A provider serving zone DE only: 300 g/kWh, and 50 g/kWh for the 24 hours
 * from 2026-11-20T14:00Z. Hourly, ten days from 2026-11-19T00:00Z. */
#define VALLEY_T0 1795046400 /* 2026-11-19T00:00:00Z */
#define VALLEY_LOW (VALLEY_T0 + 38 * 3600)
static double valley_at(int64_t t)
{
  return t >= VALLEY_LOW && t < VALLEY_LOW + 86400 ? 50 : 300;
}
/* When set, every zone has the valley, not DE alone. */
static bool valley_everywhere;
static cs_err valley_current(cs_provider *p, const char *zone, int64_t now,
                             cs_signal *out)
{
  (void)p;
  if (!valley_everywhere && strcmp(zone, "DE") != 0)
    return CS_ENOTFOUND;
  memset(out, 0, sizeof(*out));
  out->g_per_kwh = valley_at(now - now % 3600);
  out->type = CS_SIGNAL_AVERAGE;
  snprintf(out->provider, sizeof(out->provider), "valley");
  snprintf(out->zone, sizeof(out->zone), "%s", zone);
  out->observed_at = now - now % 3600;
  return CS_OK;
}
static cs_err valley_forecast(cs_provider *p, const char *zone, int64_t from,
                              int64_t to, cs_series *out)
{
  (void)p;
  (void)from;
  (void)to;
  if (!valley_everywhere && strcmp(zone, "DE") != 0)
    return CS_ENOTFOUND;
  memset(out, 0, sizeof(*out));
  out->step = 3600;
  out->len = 240;
  out->points = calloc(out->len, sizeof(*out->points));
  for (size_t h = 0; h < out->len; h++) {
    int64_t t = VALLEY_T0 + (int64_t)h * 3600;
    out->points[h] = (cs_point){t, valley_at(t)};
  }
  return CS_OK;
}
static void valley_free(cs_provider *p);
static const cs_provider_ops valley_ops = {.name = "valley",
                                           .current = valley_current,
                                           .forecast = valley_forecast,
                                           .free = valley_free};
static cs_provider valley_provider = {.ops = &valley_ops};

/* docs/<name> (caller frees), from CS_SRCDIR or the current directory. */
static char *read_doc(const char *name)
{
  const char *root = getenv("CS_SRCDIR") ? getenv("CS_SRCDIR") : ".";
  char path[512];
  snprintf(path, sizeof(path), "%s/docs/%s", root, name);
  return tu_read_file(path, NULL);
}

/* Whether text[from, to) holds `word` in backticks. */
static bool names_in_code(const char *from, const char *to, const char *word)
{
  char code[80];
  snprintf(code, sizeof(code), "`%s`", word);
  const char *p = strstr(from, code);
  return p && (!to || p < to);
}

/* Every Event reason the decider sends is in the lists users read:
 * docs/kubernetes.md's opening list and its Events section, and the table
 * of docs/time-shifting.md. */
static void assert_reason_documented(const char *reason)
{
  char *k8s = read_doc("kubernetes.md");
  const char *connecting = strstr(k8s, "\n## Connecting");
  const char *events = strstr(k8s, "\n## Events");
  ck_assert_ptr_nonnull(connecting);
  ck_assert_ptr_nonnull(events);
  ck_assert_msg(names_in_code(k8s, connecting, reason),
                "docs/kubernetes.md's opening list lacks the Event reason %s",
                reason);
  ck_assert_msg(names_in_code(events, strstr(events + 1, "\n## "), reason),
                "docs/kubernetes.md's Events section lacks the reason %s",
                reason);
  free(k8s);
  char *ts = read_doc("time-shifting.md");
  char row[96];
  snprintf(row, sizeof(row), "| `%s` |", reason);
  ck_assert_msg(strstr(ts, row),
                "docs/time-shifting.md's table of reasons lacks %s", reason);
  free(ts);
}

/* Records what the decider makes visible in the cluster. */
static char events[8][512];
static int nevents;
static char planned[32];
static void sink_event(void *ctx, const cs_pod_facts *pod, const char *type,
                       const char *reason, const char *note)
{
  (void)ctx;
  (void)pod;
  assert_reason_documented(reason);
  if (nevents < 8)
    snprintf(events[nevents++], sizeof(events[0]), "%s %s %s", type, reason,
             note);
}
static void sink_annotate(void *ctx, const cs_pod_facts *pod,
                          const char *const *keys, const char *const *values,
                          size_t n)
{
  (void)ctx;
  (void)pod;
  for (size_t i = 0; i < n; i++)
    if (strcmp(keys[i], "carbonshift.io/planned-start") == 0)
      snprintf(planned, sizeof(planned), "%s", values[i]);
}
static const cs_decision_sink sink = {NULL, sink_event, sink_annotate};

static void setup_filter(bool valley)
{
  quiet_logs();
  catalog = cs_gpu_catalog_new();
  zones = cs_zone_map_new();
  signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  if (valley) {
    ck_assert_int_eq(cs_signals_add_provider(signals, &valley_provider), CS_OK);
  } else {
    static const cs_static_zone values[] = {
        {"DE", 380}, {"NO", 30}, {"ES", 150}};
    cs_provider *p;
    ck_assert_int_eq(cs_static_new(values, 3, CS_SIGNAL_AVERAGE, &p), CS_OK);
    ck_assert_int_eq(cs_signals_add_provider(signals, p), CS_OK);
  }
  facts = (cs_facts_params){.catalog = catalog,
                            .zones = zones,
                            .default_pue = 1.2,
                            .default_lifetime_s = 6 * 365 * 86400.0};
  est = (cs_estimate_params){.reference_gpu =
                                 cs_gpu_catalog_find(catalog, "A100-SXM4-80GB"),
                             .default_duration_s = 3600,
                             .server_embodied_kg = 1000,
                             .gpu_embodied_kg = 150};
  cs_decider_deps deps = {.signals = signals,
                          .facts = &facts,
                          .estimate = &est,
                          .plan = {.min_saving_rel = 0.05,
                                   .min_saving_abs_g = 100,
                                   .replan_rel = 0.05},
                          .sink = &sink};
  base_deps = deps;
  decider = cs_decider_new(&deps);
  nevents = 0;
  planned[0] = '\0';
}
static void setup_valley(void)
{
  setup_filter(true);
}
static void setup_static_filter(void)
{
  setup_filter(false);
}
static cs_node_cache *preempt_nodes; /* the preempt tests' node cache */
static cs_metrics *repeat_metrics;   /* the repeat tests' metrics */
static void teardown_filter(void)
{
  valley_everywhere = false;
  cs_decider_free(decider);
  cs_node_cache_free(preempt_nodes);
  preempt_nodes = NULL;
  cs_metrics_free(repeat_metrics);
  repeat_metrics = NULL;
  /* The valley provider is static storage: take it back before freeing. */
  cs_signals_free(signals);
  cs_zone_map_free(zones);
  cs_gpu_catalog_free(catalog);
  cs_clock_set_fixed(0);
}
static void valley_free(cs_provider *p)
{
  (void)p;
}

/* When set, filter_with also drops the pod's creationTimestamp. */
static bool drop_created;
/* When set, filter_with also drops the pod's GPU requests and limits. */
static bool drop_gpus;
/* When set, filter_with also sets this label on this node ("*": on all). */
static struct {
  const char *node, *key, *value;
} relabel;

/* The fixture's filter request, with its pod annotations replaced (and
 * the changes drop_created, drop_gpus and relabel ask for). */
static cJSON *request_with(const char *const *kv, size_t n)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  cJSON *doc = cJSON_ParseWithLength(body, len);
  free(body);
  cJSON *ann = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Pod"), "metadata"),
      "annotations");
  if (drop_created)
    cJSON_DeleteItemFromObject(
        cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Pod"), "metadata"),
        "creationTimestamp");
  cJSON *ctr;
  cJSON_ArrayForEach(
      ctr, cJSON_GetObjectItem(
               cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Pod"), "spec"),
               "containers"))
  {
    cJSON *res = cJSON_GetObjectItem(ctr, "resources");
    if (drop_gpus) {
      cJSON_DeleteItemFromObject(cJSON_GetObjectItem(res, "requests"),
                                 "nvidia.com/gpu");
      cJSON_DeleteItemFromObject(cJSON_GetObjectItem(res, "limits"),
                                 "nvidia.com/gpu");
    }
  }
  cJSON *node;
  cJSON_ArrayForEach(
      node, cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Nodes"), "items"))
  {
    cJSON *meta = cJSON_GetObjectItem(node, "metadata");
    if (relabel.node && (!strcmp(relabel.node, "*") ||
                         !strcmp(cJSON_GetObjectItem(meta, "name")->valuestring,
                                 relabel.node))) {
      cJSON *labels = cJSON_GetObjectItem(meta, "labels");
      cJSON_DeleteItemFromObject(labels, relabel.key);
      cJSON_AddStringToObject(labels, relabel.key, relabel.value);
    }
  }
  for (size_t i = 0; i < n; i += 2) {
    cJSON_DeleteItemFromObject(ann, kv[i]);
    if (kv[i + 1])
      cJSON_AddStringToObject(ann, kv[i], kv[i + 1]);
  }
  return doc;
}

/* Asks `verb` of the decider with the request `doc` (deleted here). */
static cJSON *decide_doc(cs_verb verb, cJSON *doc)
{
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  cs_reply r = {0};
  cs_decider_handle(decider, verb, text, strlen(text), NULL, "f-1", &r);
  free(text);
  ck_assert_int_eq(r.status, 200);
  cJSON *out = cJSON_ParseWithLength(r.body, r.len);
  free(r.body);
  ck_assert_ptr_nonnull(out);
  return out;
}

/* The fixture's filter request, with its pod annotations replaced, asked
 * of `verb`. */
static cJSON *decide_with(cs_verb verb, const char *const *kv, size_t n)
{
  return decide_doc(verb, request_with(kv, n));
}

static cJSON *filter_with(const char *const *kv, size_t n)
{
  return decide_with(CS_VERB_FILTER, kv, n);
}

static const char *unresolvable(const cJSON *out, const char *node)
{
  const cJSON *m = cJSON_GetObjectItem(
      cJSON_GetObjectItem(out, "FailedAndUnresolvableNodes"), node);
  return cJSON_IsString(m) ? m->valuestring : NULL;
}

static int kept(const cJSON *out)
{
  return cJSON_GetArraySize(
      cJSON_GetObjectItem(cJSON_GetObjectItem(out, "Nodes"), "items"));
}

/* Both intensities in the message are means over the whole run: from the
 * planned start (all in the valley: 50) and from now (4 h at 300, then
 * 7.36 h at 50: 138). */
START_TEST(test_decision_filter_defers_before_greener_window)
{
  /* 10:00Z, pod created 09:12Z with 12 h of slack; the valley opens 14:00. */
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  cJSON *out = filter_with(NULL, 0);
  ck_assert_int_eq(kept(out), 0);
  ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "FailedNodes")),
                   0);
  ck_assert_str_eq(cJSON_GetObjectItem(out, "Error")->valuestring, "");
  static const char *nodes[] = {"gpu-h100-fra-01", "gpu-a100-fra-02",
                                "gpu-v100-osl-01", "gpu-l4-mad-01"};
  for (int i = 0; i < 4; i++) {
    const char *m = unresolvable(out, nodes[i]);
    ck_assert_msg(m != NULL, "%s not unresolvable", nodes[i]);
    ck_assert_str_eq(m, "carbonshift: waiting for a greener window: planned "
                        "start 2026-11-20T14:00Z (forecast 50 gCO2/kWh vs "
                        "138 now in DE), latest start 2026-11-20T21:12Z");
  }
  ck_assert_int_eq(nevents, 1);
  ck_assert_ptr_nonnull(strstr(events[0], "Normal CarbonDeferred"));
  ck_assert_str_eq(planned, "2026-11-20T14:00:00Z");
  cJSON_Delete(out);
}
END_TEST

/* The pod's request with status.nominatedNodeName set to the fixture's
 * first node and its plan stored as `planned_start`, over that node alone
 * (`alone`) or every node. */
static char *nominated_request(bool alone, const char *planned_start)
{
  const char *kv[] = {"carbonshift.io/planned-start", planned_start};
  cJSON *doc = request_with(kv, 2);
  cJSON *pod = cJSON_GetObjectItem(doc, "Pod");
  cJSON_DeleteItemFromObject(pod, "status");
  cJSON_AddStringToObject(cJSON_AddObjectToObject(pod, "status"),
                          "nominatedNodeName", "gpu-h100-fra-01");
  cJSON *items =
      cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Nodes"), "items");
  while (alone && cJSON_GetArraySize(items) > 1)
    cJSON_DeleteItemFromArray(items, 1);
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  return text;
}

/* A nominated pod's cycle calls /filter over the nominated node alone, then
 * (unless it is the only node that fits, when the two look the same) over
 * every node. Each stores its plan, the unchanged one too: patches go out
 * in order, so the last call's plan is the one left on the pod, not a
 * one-node plan the all-node one happened to agree with the old annotation
 * on. A pod without a nomination stores an unchanged plan no more. */
START_TEST(test_decision_filter_nominated_pod_stores_unchanged_plan)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  char *all = nominated_request(false, "2026-11-20T14:00:00Z");
  cJSON *out = decide_doc(CS_VERB_FILTER, cJSON_Parse(all));
  free(all);
  ck_assert_int_eq(kept(out), 0);
  ck_assert_str_eq(planned, "2026-11-20T14:00:00Z");
  cJSON_Delete(out);
  char *alone = nominated_request(true, "2026-11-20T14:00:00Z");
  planned[0] = '\0';
  out = decide_doc(CS_VERB_FILTER, cJSON_Parse(alone));
  free(alone);
  ck_assert_str_eq(planned, "2026-11-20T14:00:00Z");
  cJSON_Delete(out);
  /* Without the nomination, the same unchanged plan is not written again. */
  planned[0] = '\0';
  const char *kv[] = {"carbonshift.io/planned-start", "2026-11-20T14:00:00Z"};
  out = filter_with(kv, 2);
  ck_assert_int_eq(kept(out), 0);
  ck_assert_str_eq(planned, "");
  cJSON_Delete(out);
}
END_TEST

/* Without an expected-duration, a max-delay plans for the default runtime
 * and the wait says so; a budget (or a deadline) is judged on the run's
 * length, so without one the pod is kept pending with the reason rather
 * than judged on an assumed hour. */
START_TEST(test_decision_filter_missing_duration_said_or_refused)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  const char *no_duration[] = {"carbonshift.io/expected-duration", NULL,
                               "carbonshift.io/carbon-budget", NULL};
  cJSON *out = filter_with(no_duration, 4);
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, "carbonshift: waiting for a greener window: ") == m,
                "%s", m);
  const char *tail =
      "; runtime assumed: 1h (no carbonshift.io/expected-duration)";
  ck_assert_msg(strlen(m) > strlen(tail) &&
                    !strcmp(m + strlen(m) - strlen(tail), tail),
                "%s", m);
  ck_assert_ptr_nonnull(strstr(events[0], tail));
  cJSON_Delete(out);

  const char *budget_only[] = {"carbonshift.io/expected-duration", NULL};
  out = filter_with(budget_only, 2);
  ck_assert_int_eq(kept(out), 0);
  m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, "annotation carbonshift.io/carbon-budget needs "
                          "carbonshift.io/expected-duration as well"),
                "%s", m);
  cJSON_Delete(out);
}
END_TEST

START_TEST(test_decision_filter_passes_at_planned_start)
{
  cs_clock_set_fixed(VALLEY_LOW);
  const char *kv[] = {"carbonshift.io/planned-start", "2026-11-20T14:00:00Z"};
  cJSON *out = filter_with(kv, 2);
  ck_assert_int_eq(kept(out), 4);
  ck_assert_int_eq(cJSON_GetArraySize(
                       cJSON_GetObjectItem(out, "FailedAndUnresolvableNodes")),
                   0);
  ck_assert_int_eq(nevents, 1);
  ck_assert_ptr_nonnull(strstr(events[0], "Normal CarbonPlaced"));
  cJSON_Delete(out);
}
END_TEST

/* A deadline with an offset instead of max-delay: on each node the latest
 * start is the deadline minus the runtime there (H100: 36 h x 312 / 989 =
 * 11 h 21 m 25 s before 09:00Z; the A100's 36 h run is already too late to
 * wait for). */
START_TEST(test_decision_filter_deadline_offset_latest_start)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  const char *kv[] = {"carbonshift.io/max-delay", NULL,
                      "carbonshift.io/deadline", "2026-11-21T10:00:00+01:00"};
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, "planned start 2026-11-20T14:00Z") &&
                    strstr(m, "latest start 2026-11-20T21:38Z"),
                "%s", m);
  cJSON_Delete(out);
}
END_TEST

/* max-delay counts from the pod's creation; without a creation time
 * (only a request made by hand lacks one) it would have nothing to count
 * from, and the pod is told so rather than silently given no slack. */
START_TEST(test_decision_filter_max_delay_without_creation_named)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  drop_created = true;
  cJSON *out = filter_with(NULL, 0);
  drop_created = false;
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && strcmp(m, "carbonshift: annotation "
                               "carbonshift.io/max-delay counts from "
                               "metadata.creationTimestamp, which is "
                               "missing") == 0,
                "%s", m ? m : "(kept)");
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "Warning CarbonInvalidAnnotation ") ==
                    events[0],
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

/* A creation time ahead of the clock (the API server's clock runs 3 h
 * ahead here) does not lengthen the slack: 12 h of max-delay count from now,
 * 06:00Z, not from the creation at 09:12Z. */
START_TEST(test_decision_filter_future_creation_counts_from_now)
{
  cs_clock_set_fixed(VALLEY_T0 + 30 * 3600);
  cJSON *out = filter_with(NULL, 0);
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && strstr(m, ", latest start 2026-11-20T18:00Z"), "%s",
                m ? m : "(kept)");
  cJSON_Delete(out);
}
END_TEST

/* A node on which the job can no longer meet its deadline is filtered
 * when another still can: at 14:00Z with a deadline of 09:00Z the next
 * day, the A100's 36 h run is too late and the H100's 11.4 h one is not. */
START_TEST(test_decision_filter_deadline_filters_late_nodes)
{
  cs_clock_set_fixed(VALLEY_LOW);
  const char *kv[] = {"carbonshift.io/max-delay", NULL,
                      "carbonshift.io/deadline", "2026-11-21T09:00:00Z"};
  cJSON *out = filter_with(kv, 4);
  ck_assert_ptr_null(unresolvable(out, "gpu-h100-fra-01"));
  const char *m = unresolvable(out, "gpu-a100-fra-02");
  ck_assert_msg(m && strcmp(m, "carbonshift: the job cannot finish here by "
                               "its deadline 2026-11-21T09:00Z (36.0 h on "
                               "this node)") == 0,
                "%s", m);
  cJSON_Delete(out);
}
END_TEST

/* The fixture's filter with no max-delay, this deadline and budget, and
 * on-budget-exceeded: allow. */
static cJSON *filter_allowing(const char *deadline, const char *budget)
{
  const char *kv[] = {"carbonshift.io/max-delay",          NULL,
                      "carbonshift.io/deadline",           deadline,
                      "carbonshift.io/carbon-budget",      budget,
                      "carbonshift.io/on-budget-exceeded", "allow"};
  return filter_with(kv, 8);
}

/* The fixture's filter at VALLEY_LOW with no max-delay and a deadline
 * `seconds` later, written into `deadline`. */
static cJSON *filter_deadline_in(int64_t seconds, char deadline[21])
{
  cs_clock_set_fixed(VALLEY_LOW);
  cs_format_rfc3339(VALLEY_LOW + seconds, deadline);
  const char *kv[] = {"carbonshift.io/max-delay", NULL,
                      "carbonshift.io/deadline", deadline};
  return filter_with(kv, 4);
}

/* A deadline no node can meet: every node stays (the job runs as soon as it
 * can), and a Warning names the deadline and the node whose run ends
 * soonest, the H100 in 11.4 h. */
START_TEST(test_decision_filter_deadline_unreachable_warns)
{
  char deadline[21];
  cJSON *out = filter_deadline_in(5 * 3600, deadline);
  ck_assert_int_eq(kept(out), 4);
  ck_assert_int_eq(nevents, 1);
  char want[160], ends[21];
  cs_format_rfc3339(VALLEY_LOW + (int64_t)ceil(11.357 * 3600), ends);
  snprintf(want, sizeof(want),
           "; no node can finish by the deadline %.16sZ: nodes are ranked by "
           "when the run ends, soonest %.16sZ on gpu-h100-fra-01 (11.4 h)",
           deadline, ends);
  ck_assert_msg(strstr(events[0], "Warning CarbonDeadlineUnreachable") &&
                    strstr(events[0], want),
                "%s\nwant %s", events[0], want);
  cJSON_Delete(out);
  /* And prioritize ranks them so: the H100 (11.4 h) first, the A100 (36
   * h) 10 x 11.4 / 36 = 3, the L4 (92.8 h) 1, though only the H100 and
   * A100 have carbon data here. */
  const char *kv[] = {"carbonshift.io/max-delay", NULL,
                      "carbonshift.io/deadline", deadline};
  cJSON *list = decide_with(CS_VERB_PRIORITIZE, kv, 4);
  ck_assert_int_eq(score_of(list, "gpu-h100-fra-01"), 10);
  ck_assert_int_eq(score_of(list, "gpu-a100-fra-02"), 3);
  ck_assert_int_eq(score_of(list, "gpu-l4-mad-01"), 1);
  cJSON_Delete(list);
  /* With a deadline still in reach, emissions rank them. */
  cs_format_rfc3339(VALLEY_LOW + 30 * 86400, deadline);
  list = decide_with(CS_VERB_PRIORITIZE, kv, 4);
  ck_assert_int_eq(score_of(list, "gpu-l4-mad-01"), CS_SCORE_NEUTRAL);
  cJSON_Delete(list);
}
END_TEST

/* A node without carbon data still counts for the deadline: the H100, in
 * a zone without data, finishes in 11.4 h of a 20 h deadline, so the
 * slower nodes are filtered as late and no Warning says that none can. And
 * over budget with a deadline none can meet, the event says that, not
 * that a slack ended before the pod existed. */
START_TEST(test_decision_filter_deadline_counts_nodes_without_data)
{
  char deadline[21];
  relabel.node = "gpu-h100-fra-01";
  relabel.key = "carbonshift.io/grid-zone";
  relabel.value = "FR"; /* the valley provider has DE alone */
  cJSON *out = filter_deadline_in(20 * 3600, deadline);
  relabel.node = NULL;
  ck_assert_int_eq(kept(out), 1);
  ck_assert_ptr_nonnull(strstr(unresolvable(out, "gpu-a100-fra-02"),
                               "cannot finish here by its deadline"));
  ck_assert_ptr_nonnull(strstr(unresolvable(out, "gpu-l4-mad-01"),
                               "cannot finish here by its deadline"));
  for (int i = 0; i < nevents; i++)
    ck_assert_msg(!strstr(events[i], "CarbonDeadlineUnreachable"), "%s",
                  events[i]);
  cJSON_Delete(out);

  nevents = 0;
  valley_everywhere = true; /* every node with an estimate, all over 1 kg */
  cs_format_rfc3339(VALLEY_LOW + 5 * 3600, deadline);
  const char *over[] = {"carbonshift.io/max-delay",     NULL,
                        "carbonshift.io/deadline",      deadline,
                        "carbonshift.io/carbon-budget", "1kg"};
  out = filter_with(over, 6);
  ck_assert_int_eq(kept(out), 0);
  ck_assert_int_eq(nevents, 1);
  char want[96];
  snprintf(want, sizeof(want), "; no node can finish by the deadline %.16sZ",
           deadline);
  ck_assert_msg(strstr(events[0], want) && !strstr(events[0], "slack"), "%s",
                events[0]);
  cJSON_Delete(out);
}
END_TEST

/* Late nodes without carbon data do not count as fitting a budget: with
 * the H100 and A100 over 1 kg and the V100 and L4 (no data) too slow for a
 * 40 h deadline, the pod is over budget, and `allow` runs it on the
 * lowest-emission node, not on none. With no zone's data at all, the lost
 * deadline is still reported. */
START_TEST(test_decision_filter_late_unknown_nodes_do_not_fit)
{
  char deadline[21];
  cs_clock_set_fixed(VALLEY_LOW);
  cs_format_rfc3339(VALLEY_LOW + 40 * 3600, deadline);
  cJSON *out = filter_allowing(deadline, "1kg");
  ck_assert_int_eq(kept(out), 1);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "CarbonBudgetExceeded") &&
                    strstr(events[0], "allowed on the lowest-emission node "
                                      "gpu-h100-fra-01 only"),
                "%s", events[0]);
  cJSON_Delete(out);

  nevents = 0;
  relabel.node = "*";
  relabel.key = "carbonshift.io/grid-zone";
  relabel.value = "FR";
  out = filter_deadline_in(5 * 3600, deadline);
  relabel.node = NULL;
  ck_assert_int_eq(kept(out), 4);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "Warning CarbonDeadlineUnreachable "
                                  "carbonshift: 4 of 4 nodes eligible, none "
                                  "with an emission estimate; no node can "
                                  "finish by the deadline") &&
                    strstr(events[0], "on gpu-h100-fra-01 (11.4 h)"),
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

START_TEST(test_decision_filter_no_slack_runs_now)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  const char *kv[] = {"carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 2);
  ck_assert_int_eq(kept(out), 4);
  cJSON_Delete(out);
}
END_TEST

/* The budget is judged on the same "starting now" as the plan: over the
 * run's forecast. At 10:00Z the valley zone is at 300 now, but the H100's
 * 11.36 h run from now averages 138 (it reaches the valley at 14:00): 76.32
 * kWh x 138 + 0.475 kg = 11.0 kg, within 15 kg, where the current value
 * alone (23.4 kg) would filter it. The A100's 36 h run averages 133: 19.9
 * kg, over. */
START_TEST(test_decision_filter_budget_judged_over_the_run)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  const char *kv[] = {"carbonshift.io/carbon-budget", "15kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  ck_assert_ptr_null(unresolvable(out, "gpu-h100-fra-01"));
  const char *m = unresolvable(out, "gpu-a100-fra-02");
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(m, "carbonshift: estimate 19.9 kg > budget 15 kg (DE, 133 "
                      "gCO2/kWh forecast over the run)");
  ck_assert_ptr_nonnull(strstr(events[0], "Normal CarbonPlaced"));
  cJSON_Delete(out);
}
END_TEST

/* The reverse: in the valley's last hour the zone is at 50 now, then at
 * 300. The H100's run averages (50 + 10.36 x 300) / 11.36 = 278 g/kWh over
 * the run: 21.7 kg, over a 10 kg budget that the current value alone (4.3
 * kg) would meet. The nodes the valley provider knows nothing about (NO,
 * ES) cannot be judged and stay eligible. */
START_TEST(test_decision_filter_budget_over_the_run_not_now)
{
  cs_clock_set_fixed(VALLEY_LOW + 23 * 3600);
  const char *kv[] = {"carbonshift.io/carbon-budget", "10kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(m, "carbonshift: estimate 21.7 kg > budget 10 kg (DE, 278 "
                      "gCO2/kWh forecast over the run)");
  ck_assert_ptr_nonnull(unresolvable(out, "gpu-a100-fra-02"));
  ck_assert_ptr_null(unresolvable(out, "gpu-v100-osl-01"));
  /* No Event names a filtered node as the lowest. */
  ck_assert(nevents == 0 || !strstr(events[0], "gpu-h100-fra-01"));
  cJSON_Delete(out);
}
END_TEST

/* The Event's lowest node and its figure are those the budget judged:
 * with the valley ending in every zone, each node's run averages near 300
 * (the current 50 alone would make the H100 lowest, at 4.29 kg); the L4's
 * low power makes it the lowest over the run. */
static const char *estimate_in(const char *msg, char out[static 32])
{
  const char *p = msg ? strstr(msg, "estimate ") : NULL;
  ck_assert_ptr_nonnull(p);
  snprintf(out, 32, "%s", p + strlen("estimate "));
  *strchr(out, ' ') = '\0';
  return out;
}

START_TEST(test_decision_filter_budget_event_uses_judged_figures)
{
  valley_everywhere = true;
  cs_clock_set_fixed(VALLEY_LOW + 23 * 3600);
  const char *kv[] = {"carbonshift.io/carbon-budget",      "10kg",
                      "carbonshift.io/on-budget-exceeded", "reject",
                      "carbonshift.io/max-delay",          NULL};
  cJSON *out = filter_with(kv, 6);
  ck_assert_int_eq(kept(out), 0);
  char l4[32], h100[32];
  estimate_in(unresolvable(out, "gpu-l4-mad-01"), l4);
  estimate_in(unresolvable(out, "gpu-h100-fra-01"), h100);
  ck_assert_double_lt(strtod(l4, NULL), strtod(h100, NULL));
  char want[96];
  snprintf(want, sizeof(want), "(lowest estimate %s kg on gpu-l4-mad-01)", l4);
  ck_assert_msg(strstr(events[0], want), "%s", events[0]);
  cJSON_Delete(out);

  /* allow: the job may run on that same node, and no other. */
  nevents = 0;
  const char *allow[] = {"carbonshift.io/carbon-budget",      "10kg",
                         "carbonshift.io/on-budget-exceeded", "allow",
                         "carbonshift.io/max-delay",          NULL};
  out = filter_with(allow, 6);
  ck_assert_int_eq(kept(out), 1);
  ck_assert_ptr_null(unresolvable(out, "gpu-l4-mad-01"));
  snprintf(want, sizeof(want), "over budget (estimate %s kg > 10 kg)", l4);
  ck_assert_msg(strstr(events[0], want), "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

/* allow lets an over-budget pod run only when no window within the budget
 * exists: here the valley has one (the H100's run there: 4.3 kg, within 8
 * kg; starting now every node is over, the H100 at 11 kg), so it waits, as
 * with wait. */
START_TEST(test_decision_filter_budget_allow_still_waits_for_a_window)
{
  valley_everywhere = true; /* every node known, so every node is over */
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  const char *kv[] = {"carbonshift.io/carbon-budget", "8kg",
                      "carbonshift.io/on-budget-exceeded", "allow"};
  cJSON *out = filter_with(kv, 4);
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && strstr(m, "waiting for a window within the carbon "
                               "budget of 8 kg: planned start "
                               "2026-11-20T14:00Z"),
                "%s", m);
  ck_assert_ptr_nonnull(strstr(events[0], "Normal CarbonDeferred"));
  cJSON_Delete(out);
}
END_TEST

/* A budget window can close minutes after it opens: here the H100's last
 * start wholly in the valley (4.29 kg, within 4.3 kg) was the planned
 * one, and the try comes 5 minutes later, when a run would leave the
 * valley 5 minutes before its end (4.43 kg). Within the grace after its
 * planned start the pod is judged as starting then, and runs; later it is
 * judged at the time of the try. */
START_TEST(test_decision_filter_budget_planned_start_grace)
{
  valley_everywhere = true;
  int64_t runtime = 40885; /* 36 h x 312 / 989, rounded up */
  int64_t start = VALLEY_LOW + 86400 - runtime;
  char ps[32];
  cs_format_rfc3339(start, ps);
  char deadline[32];
  cs_format_rfc3339(start + 300 + 3600, deadline);
  const char *kv[] = {"carbonshift.io/carbon-budget", "4300g",
                      "carbonshift.io/planned-start", ps,
                      "carbonshift.io/max-delay",     NULL,
                      "carbonshift.io/deadline",      deadline};
  cs_clock_set_fixed(start + 300);
  cJSON *out = filter_with(kv, 4);
  ck_assert_msg(!unresolvable(out, "gpu-h100-fra-01"), "%s",
                unresolvable(out, "gpu-h100-fra-01"));
  cJSON_Delete(out);
  /* With a deadline no node can meet any more (an hour away), none is
   * filtered for it, so the H100 still keeps the grace and runs. */
  out = filter_with(kv, 8);
  ck_assert_msg(!unresolvable(out, "gpu-h100-fra-01"), "%s",
                unresolvable(out, "gpu-h100-fra-01"));
  cJSON_Delete(out);
  cs_clock_set_fixed(start + 3600);
  out = filter_with(kv, 4);
  ck_assert_ptr_nonnull(unresolvable(out, "gpu-h100-fra-01"));
  cJSON_Delete(out);
}
END_TEST

/* The grace after a planned start keeps a window the pod waited for; it
 * must not hold the pod on a start already passed. Here the planned start
 * was 5 minutes before the valley (4.43 kg on the H100, over 4.3 kg), and
 * the try comes a minute into it, when starting now fits (4.29 kg): the
 * pod runs, rather than "waiting" for the valley's start a minute ago. */
START_TEST(test_decision_filter_grace_never_waits_for_the_past)
{
  valley_everywhere = true;
  char ps[32];
  cs_format_rfc3339(VALLEY_LOW - 300, ps);
  const char *kv[] = {"carbonshift.io/carbon-budget", "4300g",
                      "carbonshift.io/planned-start", ps};
  cs_clock_set_fixed(VALLEY_LOW + 60);
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(!m, "%s", m);
  ck_assert_ptr_nonnull(strstr(events[0], "Normal CarbonPlaced"));
  cJSON_Delete(out);
  /* Within the grace and fitting at the planned start, it is still judged
   * then (test_decision_filter_budget_planned_start_grace). */
}
END_TEST

/* A node too late for the deadline cannot keep the grace alive: the slow,
 * frugal L40S node fits 1.3 kg at the planned start, 5 minutes before the
 * valley (1.27 kg), but its 8.6 h run cannot meet the deadline 5 h away;
 * the H100 fits only from now (1.19 kg, 1.33 kg at the planned start).
 * The pod is judged at now and runs on the H100, rather than being
 * refused at a start already passed. */
START_TEST(test_decision_policy_grace_ignores_late_nodes)
{
  valley_everywhere = true;
  cs_policy_params pp = {.signals = signals,
                         .estimate = &est,
                         .plan = {.min_saving_rel = 0.05,
                                  .min_saving_abs_g = 100,
                                  .replan_rel = 0.05},
                         .wait_margin_s = CS_POLICY_WAIT_MARGIN_S};
  int64_t now = VALLEY_LOW + 60;
  cs_pod_facts pod = {.ns = "ml",
                      .name = "train-1",
                      .gpus = 8,
                      .duration_s = 10 * 3600,
                      .budget_g = 1300,
                      .planned_start = VALLEY_LOW - 300,
                      .created_at = VALLEY_LOW - 3600,
                      .deadline = now + 5 * 3600};
  cs_node_facts f[2];
  memset(f, 0, sizeof(f));
  f[0].gpu = cs_gpu_catalog_find(catalog, "H100-SXM5-80GB");
  f[0].lifetime_s = 6 * 365 * 86400.0;
  f[0].pue = 1.2;
  f[1].gpu = cs_gpu_catalog_find(catalog, "L40S");
  f[1].lifetime_s = 1e12; /* next to no embodied share */
  f[1].pue = 1.0;
  const char *names[] = {"fast", "slow"};
  for (int i = 0; i < 2; i++) {
    ck_assert_ptr_nonnull(f[i].gpu);
    f[i].gpus = 8;
    snprintf(f[i].zone, sizeof(f[i].zone), "DE");
    snprintf(f[i].name, sizeof(f[i].name), "%s", names[i]);
  }
  cs_policy_call c;
  cs_policy_begin(&c, &pp, &pod, 2, now);
  for (size_t i = 0; i < 2; i++)
    cs_policy_add_node(&c, i, &f[i]);
  cs_policy_filter(&c, names);
  ck_assert(c.nodes[1].late);
  ck_assert_msg(c.nodes[0].verdict == CS_PASS, "%s: %s", c.outcome,
                c.nodes[0].reason ? c.nodes[0].reason : "");
  ck_assert_int_eq(c.at, now);
  cs_policy_end(&c);
}
END_TEST

/* Two providers for zone DE, in route order: "fresh" has no current value,
 * only a forecast of 100 g/kWh whose first point is FRESH_FROM; "held" has
 * a current value of 500 and no forecast. */
static int64_t fresh_from;
static cs_err fresh_current(cs_provider *p, const char *zone, int64_t now,
                            cs_signal *out)
{
  return CS_ENOTFOUND;
}
static cs_err fresh_forecast(cs_provider *p, const char *zone, int64_t from,
                             int64_t to, cs_series *out)
{
  memset(out, 0, sizeof(*out));
  out->step = 300;
  out->len = 24 * 12;
  out->points = calloc(out->len, sizeof(*out->points));
  for (size_t i = 0; i < out->len; i++)
    out->points[i] = (cs_point){fresh_from + (int64_t)i * 300, 100};
  out->type = CS_SIGNAL_AVERAGE;
  return CS_OK;
}
static cs_err held_current(cs_provider *p, const char *zone, int64_t now,
                           cs_signal *out)
{
  memset(out, 0, sizeof(*out));
  out->g_per_kwh = 500;
  out->type = CS_SIGNAL_AVERAGE;
  snprintf(out->provider, sizeof(out->provider), "held");
  snprintf(out->zone, sizeof(out->zone), "%s", zone);
  out->observed_at = now - 60;
  return CS_OK;
}
static void static_provider_free(cs_provider *p)
{
}
static const cs_provider_ops fresh_ops = {.name = "fresh",
                                          .current = fresh_current,
                                          .forecast = fresh_forecast,
                                          .free = static_provider_free};
static const cs_provider_ops held_ops = {
    .name = "held", .current = held_current, .free = static_provider_free};

/* A route of "fresh", then "held" (static storage, freed as no-ops). */
static cs_signals *fresh_then_held(void)
{
  static cs_provider fresh = {.ops = &fresh_ops}, held = {.ops = &held_ops};
  cs_signals *sig = cs_signals_new(CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(cs_signals_add_provider(sig, &fresh), CS_OK);
  ck_assert_int_eq(cs_signals_add_provider(sig, &held), CS_OK);
  return sig;
}

/* Judged at now after all, a pod in the grace after its planned start
 * takes the zone's data as a pod without one would: here the first
 * provider's forecast, which began after the planned start, so that the
 * planned start's data came from the next provider. */
START_TEST(test_decision_policy_grace_dropped_takes_data_at_now)
{
  cs_signals *sig = fresh_then_held();
  cs_policy_params pp = {.signals = sig,
                         .estimate = &est,
                         .plan = {.min_saving_rel = 0.05,
                                  .min_saving_abs_g = 100,
                                  .replan_rel = 0.05},
                         .wait_margin_s = CS_POLICY_WAIT_MARGIN_S};
  int64_t now = VALLEY_T0 + 3600;
  fresh_from = now - 60;
  cs_node_facts f;
  memset(&f, 0, sizeof(f));
  f.gpu = cs_gpu_catalog_find(catalog, "H100-SXM5-80GB");
  ck_assert_ptr_nonnull(f.gpu);
  f.gpus = 8;
  f.lifetime_s = 6 * 365 * 86400.0;
  f.pue = 1.2;
  snprintf(f.zone, sizeof(f.zone), "DE");
  snprintf(f.name, sizeof(f.name), "h100");
  const char *names[] = {"h100"};
  /* A budget no start fits: the grace does not hold. */
  for (int in_grace = 0; in_grace < 2; in_grace++) {
    cs_pod_facts pod = {.ns = "ml",
                        .name = "train-1",
                        .gpus = 8,
                        .duration_s = 10 * 3600,
                        .budget_g = 1,
                        .planned_start = in_grace ? now - 300 : 0,
                        .created_at = now - 3600};
    cs_policy_call c;
    cs_policy_begin(&c, &pp, &pod, 1, now);
    ck_assert_int_eq(c.at, in_grace ? now - 300 : now);
    cs_policy_add_node(&c, 0, &f);
    cs_policy_filter(&c, names);
    ck_assert_int_eq(c.at, now);
    ck_assert(c.nodes[0].est.known);
    ck_assert_msg(c.nodes[0].est.intensity == 100, "in grace %d: %g g/kWh",
                  in_grace, c.nodes[0].est.intensity);
    ck_assert(c.zones[0].has_forecast);
    ck_assert(!c.zones[0].found);
    cs_policy_end(&c);
  }
  cs_signals_free(sig);
}
END_TEST

/* The same, seen where operators look: the Decision line names the
 * provider the estimates came from as now takes it ("fresh", whose forecast
 * began after the planned start), not the one the planned start would
 * have taken ("held", 500 g/kWh), and the zone-intensity metric shows no
 * current value rather than held's. */
START_TEST(test_decision_grace_dropped_logs_provider_at_now)
{
  cs_signals *sig = fresh_then_held();
  cs_decider_deps deps = {.signals = sig,
                          .facts = &facts,
                          .estimate = &est,
                          .plan = {.min_saving_rel = 0.05,
                                   .min_saving_abs_g = 100,
                                   .replan_rel = 0.05},
                          .metrics = cs_metrics_new()};
  cs_decider *valley_decider = decider;
  decider = cs_decider_new(&deps);
  int64_t now = VALLEY_T0 + 36 * 3600; /* the fixture's pod is 3 h old */
  cs_clock_set_fixed(now);
  fresh_from = now - 60;
  char ps[32];
  cs_format_rfc3339(now - 300, ps);
  /* A budget no start fits: the grace does not hold. */
  const char *kv[] = {"carbonshift.io/carbon-budget", "1g",
                      "carbonshift.io/planned-start", ps};
  int fds[2];
  capture_begin(fds);
  cJSON *out = filter_with(kv, 4);
  cJSON *line = capture_line(fds);
  cJSON *node;
  int n = 0;
  cJSON_ArrayForEach(node, cJSON_GetObjectItem(line, "nodes"))
  {
    cJSON *in = cJSON_GetObjectItem(node, "intensity");
    if (!cJSON_IsObject(in))
      continue; /* a node whose zone is unknown */
    n++;
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(in, "value")));
    ck_assert_str_eq(cJSON_GetObjectItem(in, "provider")->valuestring, "fresh");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(in, "forecastOnly")));
    cJSON *e = cJSON_GetObjectItem(node, "estimate");
    ck_assert_double_eq(cJSON_GetObjectItem(e, "gPerKwh")->valuedouble, 100);
  }
  ck_assert_int_gt(n, 0);
  cs_buf text;
  cs_buf_init(&text, 0);
  cs_metrics_render(deps.metrics, &text);
  cs_buf_putc(&text, '\0');
  ck_assert_msg(!strstr(text.data, "carbonshift_zone_intensity_gco2_per_kwh{"
                                   "zone=\"DE\"") &&
                    !strstr(text.data, "provider=\"held\""),
                "%s", text.data);
  cs_buf_free(&text);
  cJSON_Delete(line);
  cJSON_Delete(out);
  cs_decider_free(decider);
  decider = valley_decider;
  cs_metrics_free(deps.metrics);
  cs_signals_free(sig);
}
END_TEST

/* kube-scheduler tries a waiting pod again up to about 5.5 minutes after
 * its planned start: a wait planned for the latest start itself would
 * start too late for the deadline. The H100's best start is as late as
 * possible before the valley (its latest start, 13:00Z, is before it), so
 * the plan ends the wait CS_POLICY_WAIT_MARGIN_S earlier; the message
 * still names the real latest start. */
START_TEST(test_decision_filter_wait_ends_before_latest_start)
{
  cs_clock_set_fixed(VALLEY_LOW - 8 * 3600);
  char deadline[32];
  cs_format_rfc3339(VALLEY_LOW - 3600 + 40885, deadline); /* H100's run */
  const char *kv[] = {"carbonshift.io/max-delay", NULL,
                      "carbonshift.io/deadline", deadline};
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, "planned start 2026-11-20T12:54Z") &&
                    strstr(m, "latest start 2026-11-20T13:00Z"),
                "%s", m);
  int64_t got;
  const char *e;
  ck_assert_int_eq(cs_parse_rfc3339(planned, &got, &e), CS_OK);
  ck_assert_int_eq(got, VALLEY_LOW - 3600 - CS_POLICY_WAIT_MARGIN_S);
  cJSON_Delete(out);
}
END_TEST

/* A pod waiting for a window within its budget: the budget is written
 * once, with the decimals that tell it from both figures beside it. */
START_TEST(test_decision_filter_budget_wait_message_numbers)
{
  cs_clock_set_fixed(VALLEY_T0 + 33 * 3600 + 58 * 60); /* 09:58Z */
  const char *kv[] = {"carbonshift.io/carbon-budget", "11060g"};
  cJSON *out = filter_with(kv, 2);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && strstr(m, "waiting for a window within the carbon budget "
                               "of 11.06 kg: "),
                "%s", m);
  ck_assert_msg(strstr(m, " kg now)"), "%s", m);
  cJSON_Delete(out);
}
END_TEST

/* allow lets the pod run on the lowest node that can still meet its
 * deadline, never on one already filtered for it: with 20 h to go, only
 * the H100 (11.4 h) can finish, though the V100 (89.9 h) emits less. */
START_TEST(test_decision_filter_budget_allow_respects_deadline)
{
  cs_clock_set_fixed(1795435200); /* 2026-11-23T12:00Z */
  const char *kv[] = {
      "carbonshift.io/carbon-budget",      "5kg",
      "carbonshift.io/on-budget-exceeded", "allow",
      "carbonshift.io/max-delay",          NULL,
      "carbonshift.io/deadline",           "2026-11-24T08:00:00Z"};
  cJSON *out = filter_with(kv, 8);
  ck_assert_int_eq(kept(out), 1);
  ck_assert_ptr_null(unresolvable(out, "gpu-h100-fra-01"));
  const char *m = unresolvable(out, "gpu-v100-osl-01");
  ck_assert_msg(m && strstr(m, "cannot finish here by its deadline"), "%s", m);
  ck_assert_msg(strstr(events[0], "allowed on the lowest-emission node "
                                  "gpu-h100-fra-01 only"),
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

/* With a deadline lost everywhere, the Warning names the soonest end
 * among the nodes that passed: the H100 (29.5 kg) fails a 20 kg budget, so
 * the V100 (89.9 h) is the one prioritize will rank first. */
START_TEST(test_decision_filter_deadline_soonest_of_those_passed)
{
  cs_clock_set_fixed(1795435200);
  char deadline[21];
  cs_format_rfc3339(1795435200 + 5 * 3600, deadline);
  const char *kv[] = {"carbonshift.io/carbon-budget", "20kg",
                      "carbonshift.io/max-delay",     NULL,
                      "carbonshift.io/deadline",      deadline};
  cJSON *out = filter_with(kv, 6);
  ck_assert_ptr_nonnull(unresolvable(out, "gpu-h100-fra-01"));
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "CarbonDeadlineUnreachable") &&
                    strstr(events[0], "on gpu-v100-osl-01 (89.9 h)"),
                "%s", events[0]);
  cJSON_Delete(out);
  /* Over every budget, `allow` runs it where it ends soonest, as
   * prioritize would rank it, and says why. */
  nevents = 0;
  out = filter_allowing(deadline, "1kg");
  ck_assert_int_eq(kept(out), 1);
  ck_assert_ptr_null(unresolvable(out, "gpu-h100-fra-01"));
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "no node can finish by the deadline") &&
                    strstr(events[0], "allowed on gpu-h100-fra-01 only, whose "
                                      "run ends soonest (11.4 h;"),
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

START_TEST(test_decision_filter_budget_no_node_fits)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/carbon-budget", "5kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  /* The static provider's flat forecast covers the run. */
  ck_assert_str_eq(m, "carbonshift: estimate 29.5 kg > budget 5 kg (DE, 380 "
                      "gCO2/kWh forecast over the run)");
  m = unresolvable(out, "gpu-v100-osl-01");
  /* The V100's 89.9 h run is longer than the 72 h forecast horizon: the
   * forecast's 72 h are held for the rest. */
  ck_assert_str_eq(m, "carbonshift: estimate 10.5 kg > budget 5 kg (NO, 30 "
                      "gCO2/kWh forecast over the first 72 h of the run)");
  ck_assert_ptr_nonnull(strstr(events[0], "Warning CarbonBudgetExceeded"));
  /* The event says why the pod does not wait for a window. */
  ck_assert_msg(strstr(events[0], "; no max-delay or deadline, so no window to "
                                  "wait for"),
                "%s", events[0]);
  cJSON_Delete(out);
  /* The fixture's 12 h of max-delay from its creation (2026-11-20T09:12:44Z)
   * are over; a week of them is not, but no start within it fits either
   * (the static provider's forecast is flat). */
  const struct {
    const char *max_delay, *on_exceeded, *why;
  } cases[] = {
      {"12h", "wait", "; its slack ended at 2026-11-20T21:12Z"},
      {"7d", "wait",
       "; no window within the slack fits either (starts until "
       "2026-11-27T09:06Z, 6 min before the latest start 2026-11-27T09:12Z, "
       "so that a retry reaches them)"},
      /* 164 s of slack left: less than a retry may take, so no wait. */
      {"74h50m", "wait",
       "; its slack ends at 2026-11-23T12:02Z, too soon to wait for (a retry "
       "may take 6 min)"},
      {"7d", "reject", "; on-budget-exceeded: reject"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    nevents = 0;
    const char *slack[] = {
        "carbonshift.io/carbon-budget",      "5kg",
        "carbonshift.io/max-delay",          cases[i].max_delay,
        "carbonshift.io/on-budget-exceeded", cases[i].on_exceeded};
    out = filter_with(slack, 6);
    ck_assert_int_eq(kept(out), 0);
    ck_assert_int_eq(nevents, 1);
    ck_assert_msg(strstr(events[0], cases[i].why), "case %zu: %s", i,
                  events[0]);
    cJSON_Delete(out);
  }
}
END_TEST

/* Masses in messages are plain numbers, never 1.47e+03, and two of them
 * compared never read alike: the H100's 29,476 g against 29,470 g. */
START_TEST(test_decision_filter_budget_message_numbers)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/carbon-budget", "29470g",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, "carbonshift: estimate 29.48 kg > budget 29.47 kg") ==
                    m,
                "%s", m);
  cJSON_Delete(out);
  nevents = 0;
  /* A budget a fraction of a milligram under the estimate (29,476.41273 g)
   * still reads as lower than it, not as "29.47641 kg > budget 29.47641 kg". */
  const char *near[] = {"carbonshift.io/carbon-budget", "29476.4127g",
                        "carbonshift.io/max-delay", NULL};
  out = filter_with(near, 4);
  m = unresolvable(out, "gpu-h100-fra-01");
  char est_kg[32], budget_kg[32];
  ck_assert_msg(m && sscanf(m, "carbonshift: estimate %31s kg > budget %31s kg",
                            est_kg, budget_kg) == 2,
                "%s", m ? m : "(kept)");
  ck_assert_msg(strcmp(est_kg, budget_kg) != 0 &&
                    strtod(est_kg, NULL) > strtod(budget_kg, NULL),
                "%s", m);
  cJSON_Delete(out);
  nevents = 0;
  /* 5,000 h on the reference GPU: tonnes of CO2e, a 1 t budget. */
  const char *big[] = {"carbonshift.io/carbon-budget",     "1t",
                       "carbonshift.io/expected-duration", "5000h",
                       "carbonshift.io/max-delay",         NULL};
  out = filter_with(big, 6);
  m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, " kg > budget 1000 kg (DE") && !strstr(m, "e+"), "%s",
                m);
  ck_assert_msg(strstr(events[0], "carbon budget of 1000 kg (lowest estimate "),
                "%s", events[0]);
  cJSON_Delete(out);
  /* A budget under a gram still reads as what it is. */
  const char *tiny[] = {"carbonshift.io/carbon-budget", "0.4g",
                        "carbonshift.io/max-delay", NULL};
  out = filter_with(tiny, 4);
  m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && strstr(m, "kg > budget 0.0004 kg (DE"), "%s", m);
  cJSON_Delete(out);
}
END_TEST

START_TEST(test_decision_filter_budget_filters_some)
{
  cs_clock_set_fixed(1795435200);
  /* The V100 in NO (about 10.5 kg) fits 20 kg; the German nodes do not. */
  const char *kv[] = {"carbonshift.io/carbon-budget", "20kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  ck_assert_ptr_null(unresolvable(out, "gpu-v100-osl-01"));
  ck_assert_ptr_nonnull(unresolvable(out, "gpu-h100-fra-01"));
  ck_assert_ptr_nonnull(unresolvable(out, "gpu-a100-fra-02"));
  ck_assert_int_ge(kept(out), 1);
  cJSON_Delete(out);
}
END_TEST

START_TEST(test_decision_filter_budget_allow_lowest_only)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/carbon-budget",      "1kg",
                      "carbonshift.io/on-budget-exceeded", "allow",
                      "carbonshift.io/max-delay",          NULL};
  cJSON *out = filter_with(kv, 6);
  ck_assert_int_eq(kept(out), 1);
  ck_assert_ptr_null(unresolvable(out, "gpu-v100-osl-01"));
  ck_assert_ptr_nonnull(strstr(events[0], "Warning CarbonBudgetExceeded"));
  ck_assert_ptr_nonnull(strstr(events[0], "allowed on the lowest-emission "
                                          "node gpu-v100-osl-01"));
  cJSON_Delete(out);
}
END_TEST

static const char *const bad_kv[][2] = {
    {"carbonshift.io/max-delay", "12 hours"},
    {"carbonshift.io/deadline", "tomorrow"},
    {"carbonshift.io/carbon-budget", "120"},
    {"carbonshift.io/on-budget-exceeded", "panic"},
    {"carbonshift.io/expected-duration", "36"},
};

START_TEST(test_decision_filter_malformed_annotation_named)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {bad_kv[_i][0], bad_kv[_i][1]};
  cJSON *out = filter_with(kv, 2);
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-l4-mad-01");
  ck_assert_ptr_nonnull(m);
  char want[128];
  snprintf(want, sizeof(want), "carbonshift: annotation %s=\"%s\": expected ",
           bad_kv[_i][0], bad_kv[_i][1]);
  ck_assert_msg(strstr(m, want) == m, "%s", m);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "Warning CarbonInvalidAnnotation ") ==
                    events[0],
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

/* An escaped NUL in an annotation's key or value does not cut it short: a
 * "6h\u0000x" maximum delay is not taken for 6 h, nor a key ending in
 * \u0000 for carbonshift.io/max-delay. Both are named, the NUL shown as
 * U+FFFD, and the pod is held as for any malformed annotation. */
START_TEST(test_decision_filter_annotation_nul_not_cut)
{
  static const struct {
    const char *key, *value, *want;
  } cases[] = {
      {"carbonshift.io/max-delay", "6h@NUL@x",
       "carbonshift: annotation carbonshift.io/max-delay=\"6h\xEF\xBF\xBDx\": "
       "expected "},
      {"carbonshift.io/max-delay@NUL@", "6h",
       "carbonshift: annotation carbonshift.io/max-delay\xEF\xBF\xBD: not one "
       "carbonshift reads (did you mean carbonshift.io/max-delay?)"},
  };
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {cases[_i].key, cases[_i].value};
  cJSON *doc = request_with(kv, 2);
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  cs_buf b;
  cs_buf_init(&b, 0);
  const char *at = text, *mark;
  while ((mark = strstr(at, "@NUL@"))) {
    cs_buf_append(&b, at, (size_t)(mark - at));
    cs_buf_puts(&b, "\\u0000");
    at = mark + 5;
  }
  cs_buf_puts(&b, at);
  free(text);
  cs_reply r = {0};
  cs_decider_handle(decider, CS_VERB_FILTER, b.data, b.len, NULL, "f-1", &r);
  cs_buf_free(&b);
  ck_assert_int_eq(r.status, 200);
  cJSON *out = cJSON_ParseWithLength(r.body, r.len);
  free(r.body);
  ck_assert_int_eq(kept(out), 0);
  const char *m = unresolvable(out, "gpu-l4-mad-01");
  ck_assert_ptr_nonnull(m);
  ck_assert_msg(strstr(m, cases[_i].want) != NULL, "%s", m);
  cJSON_Delete(out);
}
END_TEST

/* A pod whose GPUs come through DRA claims is neutral too, but the line
 * says why, so that it is not taken for a CPU job. */
START_TEST(test_decision_filter_dra_pod_neutral_said_apart)
{
  cs_clock_set_fixed(1795435200);
  drop_gpus = true;
  cJSON *doc = request_with(NULL, 0);
  drop_gpus = false;
  cJSON *spec = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Pod"), "spec");
  cJSON *claim = cJSON_CreateObject();
  cJSON_AddStringToObject(claim, "name", "gpus");
  cJSON_AddStringToObject(claim, "resourceClaimTemplateName", "eight-gpus");
  cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "resourceClaims"), claim);
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  cJSON *line = decision_line_of(CS_VERB_FILTER, text);
  free(text);
  ck_assert_str_eq(cJSON_GetObjectItem(line, "outcome")->valuestring, "passed");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "neutral")->valuestring,
                   "pod requests no accelerator as a resource; its "
                   "spec.resourceClaims (Dynamic Resource Allocation) are not "
                   "read");
  cJSON_Delete(line);
}
END_TEST

/* A pod that requests no accelerator is not judged, so annotations that
 * would hold a GPU pod (here a budget without a duration) do not hold it:
 * every node passes, without an Event; the Decision line still names the
 * problem. */
START_TEST(test_decision_filter_unjudged_pod_not_held_by_annotations)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/expected-duration", NULL,
                      "carbonshift.io/carbon-budget", "100kg"};
  drop_gpus = true;
  int fds[2];
  capture_begin(fds);
  cJSON *out = filter_with(kv, 4);
  cJSON *line = capture_line(fds);
  drop_gpus = false;
  ck_assert_int_eq(kept(out), 4);
  ck_assert_int_eq(nevents, 0);
  ck_assert_str_eq(cJSON_GetObjectItem(line, "outcome")->valuestring, "passed");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "neutral")->valuestring,
                   "pod requests no accelerator");
  ck_assert_msg(strstr(cJSON_GetObjectItem(line, "podProblems")->valuestring,
                       "needs carbonshift.io/expected-duration"),
                "%s", cJSON_GetObjectItem(line, "podProblems")->valuestring);
  cJSON_Delete(line);
  cJSON_Delete(out);
}
END_TEST

/* ---- /filter with the file provider replaying a real trace --------------- */

#define FIXTURE_NOW                                                            \
  1795168800 /* 2026-11-20T10:00:00Z, 47 min after creation                    \
              */
#define FIXTURE_LATEST (1795165964 + 12 * 3600) /* creation + max-delay */

static cs_series de_trace;
static int64_t replay_from; /* the trace instant shown at FIXTURE_NOW */
static int64_t expected_start;

/* Mean of the hourly trace over [t, t + len), minute by minute, in trace
 * time: independent of cs_series_window_mean and of the planner. */
static double trace_mean(int64_t t, int64_t len)
{
  double sum = 0;
  int64_t minutes = len / 60;
  size_t i = 0;
  for (int64_t m = 0; m < minutes; m++) {
    int64_t at = t + m * 60;
    while (i + 1 < de_trace.len && de_trace.points[i + 1].at <= at)
      i++;
    sum += de_trace.points[i].g_per_kwh;
  }
  return sum / (double)minutes;
}

/* Picks a replay start in 2023 where, for the fixture pod on the H100 node
 * (11.36 h run), waiting is clearly better than starting now: the best
 * start within the slack, found by trying every minute, beats now by 20 %. */
static void find_greener_window(int64_t runtime)
{
  char err[256];
  bool *estimated = NULL;
  char path[1024];
  snprintf(path, sizeof(path), "%s/data/carbon/em-2023/DE.csv",
           tu_shared_dir());
  ck_assert_int_eq(
      cs_file_load(path, NULL, &de_trace, &estimated, err, sizeof(err)), CS_OK);
  free(estimated);
  /* Waits end a margin before the latest start (the scheduler's retry). */
  int64_t slack = FIXTURE_LATEST - CS_POLICY_WAIT_MARGIN_S - FIXTURE_NOW;
  for (size_t h = 24; h + 48 < de_trace.len; h += 5) {
    int64_t t0 = de_trace.points[h].at;
    double now_mean = trace_mean(t0, runtime), best = now_mean;
    int64_t best_at = t0;
    /* Every minute of the slack, and its exact end. */
    for (int64_t k = 0; k <= slack / 60 + 1; k++) {
      int64_t at = k <= slack / 60 ? t0 + k * 60 : t0 + slack;
      double m = trace_mean(at, runtime);
      if (m < best - 1e-9) {
        best = m;
        best_at = at;
      }
    }
    if (best < now_mean * 0.8) {
      replay_from = t0;
      expected_start = FIXTURE_NOW + (best_at - t0);
      return;
    }
  }
  ck_abort_msg("no clearly greener window in the DE 2023 trace");
}

static void setup_replay(void)
{
  quiet_logs();
  catalog = cs_gpu_catalog_new();
  zones = cs_zone_map_new();
  const cs_gpu_model *h100 = cs_gpu_catalog_find(catalog, "H100-SXM5-80GB");
  const cs_gpu_model *a100 = cs_gpu_catalog_find(catalog, "A100-SXM4-80GB");
  int64_t runtime = (int64_t)ceil(36 * 3600.0 * cs_gpu_throughput(a100) /
                                  cs_gpu_throughput(h100));
  find_greener_window(runtime);
  char path[1024];
  snprintf(path, sizeof(path), "%s/data/carbon/em-2023/DE.csv",
           tu_shared_dir());
  cs_file_trace trace = {.zone = "DE", .path = path};
  cs_file_opts fo = {.traces = &trace,
                     .ntraces = 1,
                     .replay_from = replay_from,
                     .start = FIXTURE_NOW};
  cs_provider *p;
  char err[256];
  ck_assert_int_eq(cs_file_new(&fo, &p, err, sizeof(err)), CS_OK);
  signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(cs_signals_add_provider(signals, p), CS_OK);
  facts = (cs_facts_params){.catalog = catalog,
                            .zones = zones,
                            .default_pue = 1.2,
                            .default_lifetime_s = 6 * 365 * 86400.0};
  est = (cs_estimate_params){.reference_gpu = a100,
                             .default_duration_s = 3600,
                             .server_embodied_kg = 1000,
                             .gpu_embodied_kg = 150};
  cs_decider_deps deps = {.signals = signals,
                          .facts = &facts,
                          .estimate = &est,
                          .plan = {.min_saving_rel = 0.05,
                                   .min_saving_abs_g = 100,
                                   .replan_rel = 0.05},
                          .sink = &sink};
  base_deps = deps;
  decider = cs_decider_new(&deps);
  nevents = 0;
  planned[0] = '\0';
}

static void teardown_replay(void)
{
  teardown_filter();
  cs_series_free(&de_trace);
}

START_TEST(test_decision_filter_file_replay_defers_then_passes)
{
  cs_clock_set_fixed(FIXTURE_NOW);
  cJSON *out = filter_with(NULL, 0);
  ck_assert_int_eq(kept(out), 0);
  /* The plan stored on the pod is the brute-force optimum (the minute grid
   * and the exact latest start were tried: within a minute). */
  int64_t got;
  const char *e;
  ck_assert_int_eq(cs_parse_rfc3339(planned, &got, &e), CS_OK);
  ck_assert_msg(llabs(got - expected_start) < 60,
                "planned %s, brute force %lld", planned,
                (long long)expected_start);
  char start[32];
  snprintf(start, sizeof(start), "%s", planned);
  char want[96];
  snprintf(want, sizeof(want),
           "carbonshift: waiting for a greener window: planned start %.16sZ",
           start);
  static const char *nodes[] = {"gpu-h100-fra-01", "gpu-a100-fra-02",
                                "gpu-v100-osl-01", "gpu-l4-mad-01"};
  for (int i = 0; i < 4; i++) {
    const char *m = unresolvable(out, nodes[i]);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strstr(m, want) == m, "%s\nwanted: %s", m, want);
    ck_assert_ptr_nonnull(strstr(m, "latest start 2026-11-20T21:12Z"));
  }
  cJSON_Delete(out);
  expected_start = got;

  /* At its planned start, with the plan on the pod, the same pod passes. */
  cs_clock_set_fixed(expected_start);
  const char *kv[] = {"carbonshift.io/planned-start", start};
  out = filter_with(kv, 2);
  ck_assert_int_eq(kept(out), 4);
  cJSON_Delete(out);
}
END_TEST

/* The decision line's plan says what happened to the pod, apart from what
 * the planner advised: with on-budget-exceeded: reject, a window within
 * the budget at 14:00Z is advised but not waited for. */
static cJSON *plan_of_filter(const char *const *kv, size_t n, cJSON **line)
{
  int fds[2];
  capture_begin(fds);
  cJSON *out = filter_with(kv, n);
  *line = capture_line(fds);
  cJSON_Delete(out);
  cJSON *plan = cJSON_GetObjectItem(*line, "plan");
  ck_assert_ptr_nonnull(plan);
  return plan;
}

START_TEST(test_decision_log_plan_matches_outcome)
{
  valley_everywhere = true;
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  cJSON *line;
  const char *reject[] = {"carbonshift.io/carbon-budget", "8kg",
                          "carbonshift.io/on-budget-exceeded", "reject"};
  cJSON *plan = plan_of_filter(reject, 4, &line);
  ck_assert_str_eq(cJSON_GetObjectItem(line, "outcome")->valuestring,
                   "overBudget");
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(plan, "wait")));
  ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(plan, "advisedWait")));
  ck_assert_str_eq(cJSON_GetObjectItem(plan, "plannedStart")->valuestring,
                   "2026-11-20T14:00:00Z");
  cJSON_Delete(line);

  /* wait: the same plan, followed. */
  const char *wait[] = {"carbonshift.io/carbon-budget", "8kg"};
  plan = plan_of_filter(wait, 2, &line);
  ck_assert_str_eq(cJSON_GetObjectItem(line, "outcome")->valuestring,
                   "deferred");
  ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(plan, "wait")));
  cJSON_Delete(line);

  /* No start within the slack fits 1 kg: no planned start or figure. */
  const char *none[] = {"carbonshift.io/carbon-budget", "1kg"};
  plan = plan_of_filter(none, 2, &line);
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(plan, "wait")));
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(plan, "plannedStart")));
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(plan, "plannedKg")));
  ck_assert(cJSON_GetObjectItem(plan, "nowKg")->valuedouble > 1);
  cJSON_Delete(line);

  /* Two days after the pod's creation its 12 h of slack are gone: the
   * latest start shows when they ran out, not the time of the call. */
  cs_clock_set_fixed(VALLEY_T0 + 82 * 3600);
  plan = plan_of_filter(none, 2, &line);
  char now[21];
  cs_format_rfc3339(VALLEY_T0 + 82 * 3600, now);
  ck_assert_str_lt(cJSON_GetObjectItem(plan, "latestStart")->valuestring, now);
  cJSON_Delete(line);
}
END_TEST

/* ---- estimates over the run ---------------------------------------------
 * Two zones whose order turns after the first hour: DE at 200 g/kWh for the
 * hour from CROSS_T0, 60 after it; NO at 30 for that hour, 400 after it.
 * At CROSS_T0 the current values favour NO; over any run longer than an
 * hour DE is far cleaner. */
#define CROSS_T0 1795435200    /* 2026-11-23T12:00:00Z */
static bool cross_no_current;  /* when set, no zone has a current value */
static bool cross_no_forecast; /* when set, no zone has a forecast */
static bool cross_hole;        /* when set, the forecast skips its 13:00 */
static double cross_at(const char *zone, int64_t t)
{
  bool first = t < CROSS_T0 + 3600;
  return strcmp(zone, "DE") == 0 ? (first ? 200 : 60) : (first ? 30 : 400);
}
static cs_err cross_current(cs_provider *p, const char *zone, int64_t now,
                            cs_signal *out)
{
  (void)p;
  if (cross_no_current || (strcmp(zone, "DE") && strcmp(zone, "NO")))
    return CS_ENOTFOUND;
  memset(out, 0, sizeof(*out));
  out->g_per_kwh = cross_at(zone, now);
  out->type = CS_SIGNAL_AVERAGE;
  snprintf(out->provider, sizeof(out->provider), "cross");
  snprintf(out->zone, sizeof(out->zone), "%s", zone);
  out->observed_at = now - now % 3600;
  return CS_OK;
}
static cs_err cross_forecast(cs_provider *p, const char *zone, int64_t from,
                             int64_t to, cs_series *out)
{
  (void)p;
  (void)from;
  if (cross_no_forecast || (strcmp(zone, "DE") && strcmp(zone, "NO")))
    return CS_ENOTFOUND;
  /* Hourly from an hour before CROSS_T0 up to `to`, as a provider slices
   * its forecast to the window asked for. */
  memset(out, 0, sizeof(*out));
  out->step = 3600;
  out->len = (size_t)((to - (CROSS_T0 - 3600) + 3599) / 3600);
  out->points = calloc(out->len, sizeof(*out->points));
  size_t n = 0;
  for (size_t h = 0; h < out->len; h++) {
    int64_t t = CROSS_T0 - 3600 + (int64_t)h * 3600;
    if (!(cross_hole && t == CROSS_T0 + 3600))
      out->points[n++] = (cs_point){t, cross_at(zone, t)};
  }
  out->len = n;
  return CS_OK;
}
static void cross_free(cs_provider *p)
{
  (void)p;
}
static const cs_provider_ops cross_ops = {.name = "cross",
                                          .current = cross_current,
                                          .forecast = cross_forecast,
                                          .free = cross_free};
static cs_provider cross_provider = {.ops = &cross_ops};

static void setup_cross(void)
{
  setup_filter(false);
  cs_decider_free(decider);
  cs_signals_free(signals);
  signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(cs_signals_add_provider(signals, &cross_provider), CS_OK);
  /* Long enough for the V100's 89.9 h run. */
  cs_decider_deps deps = {.signals = signals,
                          .facts = &facts,
                          .estimate = &est,
                          .forecast_horizon_s = 5 * 86400,
                          .sink = &sink};
  decider = cs_decider_new(&deps);
  cs_clock_set_fixed(CROSS_T0);
}
static void teardown_cross(void)
{
  cross_no_current = cross_no_forecast = cross_hole = false;
  teardown_filter();
}

/* The fixture's prioritize call: its reply, and its Decision line in
 * `line`. */
static cJSON *prioritize_logged(cJSON **line)
{
  int fds[2];
  capture_begin(fds);
  cJSON *list = call(CS_VERB_PRIORITIZE,
                     "fixtures/extender/prioritize-nodes.request.json", 200);
  *line = capture_line(fds);
  return list;
}

/* Scores rank the run, not the instant: the V100 in NO would be lowest at
 * the current 30 g/kWh (10.5 kg against the H100's 15.7), but its 89.9 h
 * run averages 396 there (105 kg), and the H100's 11.4 h run in DE 72 (6.0
 * kg). So a pod that waited for a window is placed where the plan said. */
START_TEST(test_decision_prioritize_ranks_the_run_not_the_instant)
{
  cJSON *line;
  cJSON *list = prioritize_logged(&line);
  ck_assert_int_eq(score_of(list, "gpu-h100-fra-01"), 10);
  /* 10 x 6.0 / 105 kg rounds to 1. */
  ck_assert_int_eq(score_of(list, "gpu-v100-osl-01"), 1);
  ck_assert_int_eq(score_of(list, "gpu-l4-mad-01"), 5); /* ES: no data */
  /* The decision line shows the figure the scores used, and its basis. */
  cJSON *e = cJSON_GetObjectItem(
      cJSON_GetArrayItem(cJSON_GetObjectItem(line, "nodes"), 0), "estimate");
  ck_assert_str_eq(cJSON_GetObjectItem(e, "intensityBasis")->valuestring,
                   "forecastOverRun");
  double mean =
      (200 + 60 * (36 * 3600.0 * 312 / 989 - 3600) / 3600) / (36 * 312 / 989.0);
  ck_assert_double_eq_tol(cJSON_GetObjectItem(e, "gPerKwh")->valuedouble, mean,
                          0.1);
  cJSON_Delete(line);
  cJSON_Delete(list);
}
END_TEST

/* The filter's CarbonPlaced Event names the same lowest node as the scores,
 * with or without a budget. */
START_TEST(test_decision_filter_placed_names_the_run_lowest)
{
  const char *plain[] = {"carbonshift.io/max-delay", NULL,
                         "carbonshift.io/carbon-budget", NULL};
  const char *budget[] = {"carbonshift.io/max-delay", NULL,
                          "carbonshift.io/carbon-budget", "200kg"};
  const char *const *kvs[] = {plain, budget};
  for (int k = 0; k < 2; k++) {
    nevents = 0;
    cJSON *out = filter_with(kvs[k], 4);
    ck_assert_int_eq(kept(out), 4);
    ck_assert_int_eq(nevents, 1);
    ck_assert_msg(strstr(events[0], "Normal CarbonPlaced") &&
                      strstr(events[0], "lowest estimate 6 kg on "
                                        "gpu-h100-fra-01 (DE)"),
                  "%d: %s", k, events[0]);
    cJSON_Delete(out);
  }
}
END_TEST

/* No current value, but a forecast that covers the run: the estimate is
 * made from the forecast, not dropped to neutral, and not taken from a
 * later provider of the route. */
START_TEST(test_decision_prioritize_forecast_without_current)
{
  cross_no_current = true;
  /* Alone, and as the first of a route with the built-in model behind it
   * (which has a current value, but comes second). */
  for (int with_builtin = 0; with_builtin < 2; with_builtin++) {
    if (with_builtin)
      ck_assert_int_eq(cs_signals_add_provider(signals, cs_builtin_new()),
                       CS_OK);
    cJSON *line;
    cJSON *list = prioritize_logged(&line);
    ck_assert_int_eq(score_of(list, "gpu-h100-fra-01"), 10);
    ck_assert_int_eq(score_of(list, "gpu-v100-osl-01"), 1); /* 6.0 / 105 */
    /* The H100's zone: cross's forecast, and no current value (builtin
     * would have given one). */
    cJSON *h100 = cJSON_GetArrayItem(cJSON_GetObjectItem(line, "nodes"), 0);
    cJSON *in = cJSON_GetObjectItem(h100, "intensity");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(in, "value")));
    ck_assert_str_eq(cJSON_GetObjectItem(in, "provider")->valuestring, "cross");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(in, "forecastOnly")));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(h100, "estimate"),
                                         "intensityBasis")
                         ->valuestring,
                     "forecastOverRun");
    cJSON_Delete(line);
    cJSON_Delete(list);
  }
}
END_TEST

/* A zone's forecast comes from the provider of its current value: with
 * "cross" giving no forecast, the built-in model behind it does not stand
 * in, and the run is estimated at the current value. */
START_TEST(test_decision_forecast_from_the_current_provider)
{
  cross_no_forecast = true;
  ck_assert_int_eq(cs_signals_add_provider(signals, cs_builtin_new()), CS_OK);
  cJSON *line;
  cJSON *list = prioritize_logged(&line);
  cJSON *e = cJSON_GetObjectItem(
      cJSON_GetArrayItem(cJSON_GetObjectItem(line, "nodes"), 0), "estimate");
  ck_assert_str_eq(cJSON_GetObjectItem(e, "intensityBasis")->valuestring,
                   "current");
  ck_assert_double_eq(cJSON_GetObjectItem(e, "gPerKwh")->valuedouble, 200);
  /* At the current values the V100 in NO is the lowest. */
  ck_assert_int_eq(score_of(list, "gpu-v100-osl-01"), 10);
  cJSON_Delete(line);
  cJSON_Delete(list);
}
END_TEST

/* Runs longer than the forecast are compared on the forecast too: the
 * V100's 89.9 h run, with the default 72 h horizon, on the 72 h it covers
 * (30 for an hour, then 400: 395 g/kWh, 105 kg), not at the current 30
 * (which would rank it first against the H100's 6.0 kg). */
START_TEST(test_decision_long_run_on_the_forecast_it_has)
{
  cs_decider_free(decider);
  cs_decider_deps deps = {
      .signals = signals, .facts = &facts, .estimate = &est, .sink = &sink};
  decider = cs_decider_new(&deps);
  cJSON *line;
  cJSON *list = prioritize_logged(&line);
  ck_assert_int_eq(score_of(list, "gpu-h100-fra-01"), 10);
  ck_assert_int_eq(score_of(list, "gpu-v100-osl-01"), 1); /* 6.0 / 105 kg */
  cJSON *nodes = cJSON_GetObjectItem(line, "nodes");
  cJSON *v100 = NULL;
  for (int k = 0; k < cJSON_GetArraySize(nodes); k++) {
    cJSON *n = cJSON_GetArrayItem(nodes, k);
    if (!strcmp(
            cJSON_GetArrayItem(cJSON_GetObjectItem(n, "names"), 0)->valuestring,
            "gpu-v100-osl-01"))
      v100 = cJSON_GetObjectItem(n, "estimate");
  }
  ck_assert_ptr_nonnull(v100);
  ck_assert_str_eq(cJSON_GetObjectItem(v100, "intensityBasis")->valuestring,
                   "forecastPartOfRun");
  ck_assert_double_eq(cJSON_GetObjectItem(v100, "forecastHours")->valuedouble,
                      72);
  ck_assert_double_eq_tol(cJSON_GetObjectItem(v100, "gPerKwh")->valuedouble,
                          (30 + 71 * 400) / 72.0, 0.05);
  cJSON_Delete(line);
  cJSON_Delete(list);
}
END_TEST

/* Without any forecast, the current value is held, and the budget's
 * message says so. */
START_TEST(test_decision_budget_on_the_current_value)
{
  cross_no_forecast = true;
  const char *kv[] = {"carbonshift.io/carbon-budget", "12kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && !strcmp(m, "carbonshift: estimate 15.7 kg > budget 12 kg "
                                "(DE at 200 gCO2/kWh now)"),
                "%s", m);
  ck_assert_ptr_null(unresolvable(out, "gpu-v100-osl-01")); /* 10.5 kg */
  cJSON_Delete(out);
}
END_TEST

/* A hole half an hour ahead: the run is judged on those 30 minutes, and
 * the message says so in minutes, not "the first 0 h". */
START_TEST(test_decision_budget_on_a_forecast_part_under_an_hour)
{
  cross_hole = true;
  cs_clock_set_fixed(CROSS_T0 + 1800);
  const char *kv[] = {"carbonshift.io/carbon-budget", "12kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = filter_with(kv, 4);
  const char *m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && !strcmp(m, "carbonshift: estimate 15.7 kg > budget 12 kg "
                                "(DE, 200 gCO2/kWh forecast over the first 30 "
                                "min of the run)"),
                "%s", m);
  cJSON_Delete(out);
  /* Half a minute before the hole: "1 min", never "0 min". */
  cs_clock_set_fixed(CROSS_T0 + 3600 - 30);
  out = filter_with(kv, 4);
  m = unresolvable(out, "gpu-h100-fra-01");
  ck_assert_msg(m && strstr(m, "forecast over the first 1 min of the run"),
                "%s", m);
  cJSON_Delete(out);
}
END_TEST

/* ---- repeated decisions ------------------------------------------------- */

/* The Decision line of a filter call with the fixture's request
 * (annotations replaced) under request id `rid`. */
static cJSON *filter_line(const char *const *kv, size_t n, const char *rid)
{
  cJSON *doc = request_with(kv, n);
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  int fds[2];
  capture_begin(fds);
  cs_reply r = {0};
  cs_decider_handle(decider, CS_VERB_FILTER, text, strlen(text), NULL, rid, &r);
  free(text);
  ck_assert_int_eq(r.status, 200);
  free(r.body);
  return capture_line(fds);
}

static void use_repeat_window(int64_t seconds)
{
  cs_decider_deps deps = base_deps;
  deps.log_repeat_window_s = seconds;
  cs_decider_free(decider);
  cs_metrics_free(repeat_metrics);
  repeat_metrics = deps.metrics = cs_metrics_new();
  decider = cs_decider_new(&deps);
}

static double repeats_counted(void)
{
  const char *lv[] = {"filter"};
  double n = 0;
  (void)!cs_metrics_get(repeat_metrics, "carbonshift_decision_repeats_total",
                        lv, &n);
  return n;
}

static const char *str_of(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A waiting pod asked about again gets a short line naming the full one,
 * though the data's ages and the estimates over a run starting 10 s later
 * have changed; a changed decision, and the end of the window, give a
 * full line again. */
START_TEST(test_decision_line_repeat_names_the_full_line)
{
  use_repeat_window(300);
  int64_t t = VALLEY_T0 + 34 * 3600;
  cs_clock_set_fixed(t);
  cJSON *l1 = filter_line(NULL, 0, "r-1");
  ck_assert_str_eq(str_of(l1, "outcome"), "deferred");
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l1, "nodes"));
  ck_assert_ptr_null(cJSON_GetObjectItem(l1, "sameAs"));

  cs_clock_set_fixed(t + 10);
  cJSON *l2 = filter_line(NULL, 0, "r-2");
  ck_assert_str_eq(str_of(l2, "requestId"), "r-2");
  ck_assert_str_eq(str_of(l2, "outcome"), "deferred");
  ck_assert_str_eq(str_of(l2, "sameAs"), "r-1");
  ck_assert_int_eq(cJSON_GetObjectItem(l2, "repeats")->valueint, 1);
  ck_assert_int_eq(cJSON_GetObjectItem(l2, "sinceSeconds")->valueint, 10);
  ck_assert_int_eq(cJSON_GetObjectItem(l2, "nodeCount")->valueint, 4);
  ck_assert_ptr_null(cJSON_GetObjectItem(l2, "nodes"));
  ck_assert_ptr_null(cJSON_GetObjectItem(l2, "plan"));
  ck_assert_str_eq(str_of(cJSON_GetObjectItem(l2, "pod"), "name"),
                   "llm-pretrain-7b-x2k9q");
  ck_assert_double_eq(repeats_counted(), 1);

  /* Another budget: another decision (the reasons change). */
  const char *kv[] = {"carbonshift.io/carbon-budget", "1g"};
  cs_clock_set_fixed(t + 20);
  cJSON *l3 = filter_line(kv, 2, "r-3");
  ck_assert_ptr_null(cJSON_GetObjectItem(l3, "sameAs"));
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l3, "nodes"));
  /* Back to the first decision: full again, as the memo holds the last. */
  cs_clock_set_fixed(t + 30);
  cJSON *l4 = filter_line(NULL, 0, "r-4");
  ck_assert_ptr_null(cJSON_GetObjectItem(l4, "sameAs"));
  cs_clock_set_fixed(t + 40);
  cJSON *l5 = filter_line(NULL, 0, "r-5");
  ck_assert_str_eq(str_of(l5, "sameAs"), "r-4");
  /* The window runs from the full line. */
  cs_clock_set_fixed(t + 30 + 300);
  cJSON *l6 = filter_line(NULL, 0, "r-6");
  ck_assert_ptr_null(cJSON_GetObjectItem(l6, "sameAs"));
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l6, "nodes"));
  ck_assert_double_eq(repeats_counted(), 2); /* l2 and l5 */
  cJSON *ls[] = {l1, l2, l3, l4, l5, l6};
  for (size_t i = 0; i < 6; i++)
    cJSON_Delete(ls[i]);
}
END_TEST

/* A pod that passes has as planned start the time of the call: that alone
 * does not make a decision new. Without a window every line is in full. */
START_TEST(test_decision_line_repeat_ignores_the_time_of_the_call)
{
  const char *kv[] = {"carbonshift.io/planned-start", "2026-11-20T14:00:00Z"};
  use_repeat_window(300);
  cs_clock_set_fixed(VALLEY_LOW);
  cJSON *l1 = filter_line(kv, 2, "p-1");
  ck_assert_str_eq(str_of(l1, "outcome"), "passed");
  cs_clock_set_fixed(VALLEY_LOW + 10);
  cJSON *l2 = filter_line(kv, 2, "p-2");
  ck_assert_str_eq(str_of(l2, "sameAs"), "p-1");
  use_repeat_window(0);
  cJSON *l3 = filter_line(kv, 2, "p-3");
  ck_assert_ptr_null(cJSON_GetObjectItem(l3, "sameAs"));
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l3, "nodes"));
  cJSON_Delete(l1);
  cJSON_Delete(l2);
  cJSON_Delete(l3);
}
END_TEST

/* Every cycle of a pod with a nominated node calls /filter over that node
 * alone, then over every node: each has its own last decision, so the
 * retries are short lines, not full ones taking turns. */
START_TEST(test_decision_line_repeat_nominated_and_all_node_calls)
{
  use_repeat_window(300);
  int64_t t = VALLEY_T0 + 34 * 3600;
  char *alone = nominated_request(true, "2026-11-20T14:00:00Z");
  char *all = nominated_request(false, "2026-11-20T14:00:00Z");
  const char *bodies[] = {alone, all, alone, all};
  cJSON *l[4];
  for (int i = 0; i < 4; i++) {
    cs_clock_set_fixed(t + 10 * i);
    l[i] = decision_line_of(CS_VERB_FILTER, bodies[i]);
    ck_assert_str_eq(str_of(l[i], "outcome"), "deferred");
  }
  ck_assert_ptr_null(cJSON_GetObjectItem(l[0], "sameAs"));
  ck_assert_ptr_null(cJSON_GetObjectItem(l[1], "sameAs"));
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l[2], "sameAs"));
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l[3], "sameAs"));
  for (int i = 0; i < 4; i++)
    cJSON_Delete(l[i]);
  free(alone);
  free(all);
}
END_TEST

/* ---- /preempt ----------------------------------------------------------- */

/* When set, preempt_with proposes no victims on the first node. */
static bool preempt_first_empty;
/* When set, preempt_with asks the decider (and node cache) already there. */
static bool preempt_same_decider;

/* The fixture's request as ExtenderPreemptionArgs: its pod (annotations
 * replaced), and every node a candidate with one victim, "victim-<node>",
 * the first node with 2 PDB violations. meta: as NodeNameToMetaVictims
 * (UIDs), else as NodeNameToVictims (whole Pods). The decider is rebuilt
 * with a node cache holding the request's Nodes: a preempt call names its
 * nodes only. `line` (optional) gets the Decision line. */
static cJSON *preempt_with(const char *const *kv, size_t n, bool meta,
                           cJSON **line)
{
  cJSON *doc = request_with(kv, n);
  cJSON *items =
      cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Nodes"), "items");
  if (!preempt_same_decider) {
    /* The decider borrows the cache: free them in that order. */
    cs_decider_free(decider);
    cs_node_cache_free(preempt_nodes);
    preempt_nodes = cs_node_cache_new(&facts);
    ck_assert_int_eq(cs_node_cache_replace(preempt_nodes, items), CS_OK);
    cs_decider_deps deps = base_deps;
    deps.nodes = preempt_nodes;
    decider = cs_decider_new(&deps);
  }

  cJSON *args = cJSON_CreateObject();
  cJSON_AddItemToObject(args, "Pod", cJSON_DetachItemFromObject(doc, "Pod"));
  cJSON_AddNullToObject(args,
                        meta ? "NodeNameToVictims" : "NodeNameToMetaVictims");
  cJSON *map = cJSON_AddObjectToObject(args, meta ? "NodeNameToMetaVictims"
                                                  : "NodeNameToVictims");
  cJSON *node;
  int i = 0;
  cJSON_ArrayForEach(node, items)
  {
    const char *name =
        cJSON_GetObjectItem(cJSON_GetObjectItem(node, "metadata"), "name")
            ->valuestring;
    char uid[128];
    snprintf(uid, sizeof(uid), "victim-%s", name);
    cJSON *v = cJSON_AddObjectToObject(map, name);
    cJSON *pods = cJSON_AddArrayToObject(v, "Pods");
    if (!(preempt_first_empty && i == 0)) {
      cJSON *pod = cJSON_CreateObject();
      if (meta) {
        cJSON_AddStringToObject(pod, "UID", uid);
      } else {
        cJSON *md = cJSON_AddObjectToObject(pod, "metadata");
        cJSON_AddStringToObject(md, "name", "low-priority");
        cJSON_AddStringToObject(md, "uid", uid);
        cJSON_AddObjectToObject(pod, "spec");
      }
      cJSON_AddItemToArray(pods, pod);
    }
    cJSON_AddNumberToObject(v, "NumPDBViolations", i == 0 ? 2 : 0);
    i++;
  }
  cJSON_Delete(doc);
  int fds[2];
  if (line)
    capture_begin(fds);
  cJSON *out = decide_doc(CS_VERB_PREEMPT, args);
  if (line)
    *line = capture_line(fds);
  return out;
}

static const cJSON *victims_on(const cJSON *out, const char *node)
{
  return cJSON_GetObjectItem(cJSON_GetObjectItem(out, "NodeNameToMetaVictims"),
                             node);
}

static int preempt_kept(const cJSON *out)
{
  const cJSON *m = cJSON_GetObjectItem(out, "NodeNameToMetaVictims");
  ck_assert_msg(cJSON_IsObject(m), "no NodeNameToMetaVictims object");
  return cJSON_GetArraySize(m);
}

/* A pod waiting for a greener window gets no preemption: kube-scheduler
 * would evict pods for a pod carbonshift then keeps pending. The pod is
 * told why, and nothing else of the filter's happens (no plan stored, no
 * CarbonDeferred). */
START_TEST(test_decision_preempt_declined_while_waiting)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  cJSON *line;
  cJSON *out = preempt_with(NULL, 0, true, &line);
  ck_assert_int_eq(preempt_kept(out), 0);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "Normal CarbonPreemptionDeclined carbonshift "
                                  "declined preemption on 4 of 4 candidate "
                                  "nodes") &&
                    strstr(events[0], "waiting for a greener window"),
                "%s", events[0]);
  ck_assert_str_eq(planned, "");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "verb")->valuestring, "preempt");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "outcome")->valuestring,
                   "deferred");
  const cJSON *pre = cJSON_GetObjectItem(line, "preemption");
  ck_assert_int_eq(cJSON_GetObjectItem(pre, "candidates")->valueint, 4);
  ck_assert_int_eq(cJSON_GetObjectItem(pre, "kept")->valueint, 0);
  ck_assert_ptr_null(cJSON_GetObjectItem(line, "event"));
  cJSON_Delete(line);
  cJSON_Delete(out);
}
END_TEST

/* A pod waiting for its stored planned start is held though no candidate
 * has carbon data (all in NO, which the valley provider does not know):
 * such nodes are neutral, and would otherwise let pods be evicted for it.
 * Without a stored plan, or once it has come, they are kept. */
START_TEST(test_decision_preempt_holds_stored_plan_without_data)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  relabel.node = "*";
  relabel.key = "carbonshift.io/grid-zone";
  relabel.value = "NO";
  const char *kv[] = {"carbonshift.io/planned-start", "2026-11-20T14:00:00Z"};
  cJSON *out = preempt_with(kv, 2, true, NULL);
  ck_assert_int_eq(preempt_kept(out), 0);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "Normal CarbonPreemptionDeclined") &&
                    strstr(events[0], "waiting for its planned start "
                                      "2026-11-20T14:00Z"),
                "%s", events[0]);
  cJSON_Delete(out);
  out = preempt_with(NULL, 0, true, NULL); /* no plan stored: neutral */
  ck_assert_int_eq(preempt_kept(out), 4);
  cJSON_Delete(out);
  cs_clock_set_fixed(VALLEY_LOW + 3600); /* the plan has come */
  out = preempt_with(kv, 2, true, NULL);
  ck_assert_int_eq(preempt_kept(out), 4);
  cJSON_Delete(out);
  relabel.node = NULL;
}
END_TEST

/* The cycle that defers a pod calls /preempt before the plan's patch is on
 * kube-scheduler's copy of the pod: the hold applies all the same, to the
 * start /filter just chose. Candidates without data (in NO) are neutral
 * before that /filter call, and again once a /filter call stops deferring
 * the pod. */
START_TEST(test_decision_preempt_holds_plan_filter_just_made)
{
  cs_clock_set_fixed(VALLEY_T0 + 34 * 3600);
  relabel.node = "*";
  relabel.key = "carbonshift.io/grid-zone";
  relabel.value = "NO";
  cJSON *out = preempt_with(NULL, 0, true, NULL); /* the cache: all in NO */
  ck_assert_int_eq(preempt_kept(out), 4);
  cJSON_Delete(out);
  relabel.node = NULL;
  out = decide_with(CS_VERB_FILTER, NULL, 0); /* the request's own nodes */
  ck_assert_int_eq(kept(out), 0);
  ck_assert_str_eq(planned, "2026-11-20T14:00:00Z");
  cJSON_Delete(out);
  nevents = 0;
  preempt_same_decider = true;
  out = preempt_with(NULL, 0, true, NULL); /* still no annotation */
  ck_assert_int_eq(preempt_kept(out), 0);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "waiting for its planned start "
                                  "2026-11-20T14:00Z"),
                "%s", events[0]);
  cJSON_Delete(out);
  const char *kv[] = {"carbonshift.io/max-delay", NULL};
  out = decide_with(CS_VERB_FILTER, kv, 2); /* no slack: placed, forgotten */
  ck_assert_int_eq(kept(out), 4);
  cJSON_Delete(out);
  out = preempt_with(NULL, 0, true, NULL);
  ck_assert_int_eq(preempt_kept(out), 4);
  cJSON_Delete(out);
  preempt_same_decider = false;
}
END_TEST

/* At its planned start the pod would pass the filter: every candidate is
 * left with its victims as proposed, by UID, whichever map they came in. */
START_TEST(test_decision_preempt_kept_where_the_pod_would_pass)
{
  cs_clock_set_fixed(VALLEY_LOW);
  const char *kv[] = {"carbonshift.io/planned-start", "2026-11-20T14:00:00Z"};
  for (int meta = 0; meta < 2; meta++) {
    nevents = 0;
    cJSON *out = preempt_with(kv, 2, meta, NULL);
    ck_assert_int_eq(preempt_kept(out), 4);
    const cJSON *v = victims_on(out, "gpu-h100-fra-01");
    ck_assert_ptr_nonnull(v);
    const cJSON *pods = cJSON_GetObjectItem(v, "Pods");
    ck_assert_int_eq(cJSON_GetArraySize(pods), 1);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(pods, 0), "UID")->valuestring,
        "victim-gpu-h100-fra-01");
    ck_assert_int_eq(cJSON_GetObjectItem(v, "NumPDBViolations")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(victims_on(out, "gpu-l4-mad-01"),
                                         "NumPDBViolations")
                         ->valueint,
                     0);
    ck_assert_int_eq(nevents, 0); /* no CarbonPlaced: nothing is placed */
    cJSON_Delete(out);
  }
}
END_TEST

/* Over budget on every node: no preemption, and the Event gives the
 * budget's numbers. */
START_TEST(test_decision_preempt_declined_over_budget)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/carbon-budget", "5kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = preempt_with(kv, 4, false, NULL);
  ck_assert_int_eq(preempt_kept(out), 0);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "Warning CarbonPreemptionDeclined") &&
                    strstr(events[0], "carbon budget of 5 kg (lowest "
                                      "estimate 10.5 kg"),
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

/* Where the pod passes on some nodes only, those stay candidates. */
START_TEST(test_decision_preempt_keeps_only_passing_nodes)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/carbon-budget", "12kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *filtered = filter_with(kv, 4);
  nevents = 0;
  cJSON *out = preempt_with(kv, 4, true, NULL);
  int failed = cJSON_GetArraySize(
      cJSON_GetObjectItem(filtered, "FailedAndUnresolvableNodes"));
  ck_assert_int_gt(failed, 0);
  ck_assert_int_gt(kept(filtered), 0);
  ck_assert_int_eq(preempt_kept(out), kept(filtered));
  const cJSON *n;
  cJSON_ArrayForEach(
      n, cJSON_GetObjectItem(filtered, "FailedAndUnresolvableNodes"))
      ck_assert_msg(!victims_on(out, n->string), "%s kept", n->string);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "CarbonPreemptionDeclined"), "%s", events[0]);
  cJSON_Delete(filtered);
  cJSON_Delete(out);
}
END_TEST

/* A pod carbonshift does not judge keeps every candidate that has victims,
 * whatever its annotations say; a node proposed without victims is
 * dropped, as kube-scheduler fails a whole preemption on one. */
START_TEST(test_decision_preempt_unjudged_pod_unchanged)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/expected-duration", NULL,
                      "carbonshift.io/carbon-budget", "1g"};
  drop_gpus = true;
  preempt_first_empty = true;
  cJSON *line;
  cJSON *out = preempt_with(kv, 4, true, &line);
  drop_gpus = false;
  preempt_first_empty = false;
  ck_assert_int_eq(preempt_kept(out), 3);
  ck_assert_ptr_null(victims_on(out, "gpu-h100-fra-01"));
  ck_assert_int_eq(nevents, 0);
  const cJSON *pre = cJSON_GetObjectItem(line, "preemption");
  ck_assert_int_eq(cJSON_GetObjectItem(pre, "withoutVictims")->valueint, 1);
  ck_assert_int_eq(cJSON_GetObjectItem(pre, "keptVictims")->valueint, 3);
  ck_assert_str_eq(cJSON_GetObjectItem(pre, "victimsAs")->valuestring, "uids");
  cJSON_Delete(line);
  cJSON_Delete(out);
}
END_TEST

/* Review: a pod over its budget with no max-delay or deadline (the planner
 * runs because it is over budget) is pending and retried like a waiting
 * one; the same decision 10 s later should be a repeat. Its latest start
 * is "now" (latest_start() without slack), which the fingerprint mixes. */
START_TEST(test_decision_line_repeat_over_budget_without_slack)
{
  const char *kv[] = {"carbonshift.io/carbon-budget", "5kg",
                      "carbonshift.io/max-delay", NULL};
  use_repeat_window(300);
  cs_clock_set_fixed(1795435200);
  cJSON *l1 = filter_line(kv, 4, "b-1");
  ck_assert_str_eq(str_of(l1, "outcome"), "overBudget");
  ck_assert_ptr_nonnull(cJSON_GetObjectItem(l1, "plan"));
  cs_clock_set_fixed(1795435200 + 10);
  cJSON *l2 = filter_line(kv, 4, "b-2");
  ck_assert_str_eq(str_of(l2, "outcome"), "overBudget");
  ck_assert_msg(str_of(l2, "sameAs") != NULL,
                "same over-budget decision 10 s later logged in full");
  cJSON_Delete(l1);
  cJSON_Delete(l2);
}
END_TEST

/* Review: where the pod passes on some candidates and is over budget on
 * the others, the CarbonPreemptionDeclined note should say why those were
 * declined (the budget), not the CarbonPlaced note of the others. */
START_TEST(test_decision_preempt_partial_decline_says_why)
{
  cs_clock_set_fixed(1795435200);
  const char *kv[] = {"carbonshift.io/carbon-budget", "12kg",
                      "carbonshift.io/max-delay", NULL};
  cJSON *out = preempt_with(kv, 4, true, NULL);
  ck_assert_int_eq(nevents, 1);
  ck_assert_msg(strstr(events[0], "CarbonPreemptionDeclined") &&
                    strstr(events[0], "> budget 12 kg"),
                "%s", events[0]);
  cJSON_Delete(out);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("decision");
  TCase *tc = tcase_create("static");
  tcase_add_checked_fixture(tc, setup_static, teardown);
  tcase_add_test(tc, test_decision_prioritize_fixture_static);
  tcase_add_test(tc, test_decision_filter_full_echoes_every_node);
  tcase_add_test(tc, test_decision_filter_full_echo_in_pieces);
  tcase_add_test(tc, test_decision_filter_names_passes_input_names);
  tcase_add_test(tc, test_decision_prioritize_plain_pod_neutral);
  tcase_add_test(tc, test_decision_handle_bad_request_400);
  tcase_add_test(tc, test_decision_handle_logs_decision_line);
  tcase_add_test(tc, test_decision_line_small_figures_not_rounded_away);
  tcase_add_test(tc, test_decision_handle_fed_body_like_whole);
  tcase_add_test(tc, test_decision_handle_groups_identical_nodes);
  tcase_add_test(tc, test_decision_handle_caps_names_per_entry);
  tcase_add_test(tc, test_decision_handle_duration_metric_described);
  suite_add_tcase(s, tc);
  TCase *tb = tcase_create("builtin");
  tcase_add_checked_fixture(tb, setup_builtin, teardown);
  tcase_add_test(tb, test_decision_prioritize_fixture_builtin);
  tcase_add_test(tb, test_decision_line_names_mixed_emission_factors);
  suite_add_tcase(s, tb);
  TCase *tv = tcase_create("filter-valley");
  tcase_add_checked_fixture(tv, setup_valley, teardown_filter);
  tcase_add_test(tv, test_decision_filter_defers_before_greener_window);
  tcase_add_test(tv, test_decision_filter_nominated_pod_stores_unchanged_plan);
  tcase_add_test(tv, test_decision_filter_missing_duration_said_or_refused);
  tcase_add_test(tv, test_decision_filter_passes_at_planned_start);
  tcase_add_test(tv, test_decision_filter_no_slack_runs_now);
  tcase_add_test(tv, test_decision_filter_deadline_filters_late_nodes);
  tcase_add_test(tv, test_decision_filter_deadline_unreachable_warns);
  tcase_add_test(tv, test_decision_filter_deadline_counts_nodes_without_data);
  tcase_add_test(tv, test_decision_filter_late_unknown_nodes_do_not_fit);
  tcase_add_test(tv, test_decision_filter_max_delay_without_creation_named);
  tcase_add_test(tv, test_decision_filter_future_creation_counts_from_now);
  tcase_add_test(tv, test_decision_filter_budget_judged_over_the_run);
  tcase_add_test(tv, test_decision_filter_budget_over_the_run_not_now);
  tcase_add_test(tv, test_decision_filter_budget_event_uses_judged_figures);
  tcase_add_test(tv, test_decision_filter_budget_wait_message_numbers);
  tcase_add_test(tv,
                 test_decision_filter_budget_allow_still_waits_for_a_window);
  tcase_add_test(tv, test_decision_filter_budget_planned_start_grace);
  tcase_add_test(tv, test_decision_filter_grace_never_waits_for_the_past);
  tcase_add_test(tv, test_decision_policy_grace_ignores_late_nodes);
  tcase_add_test(tv, test_decision_policy_grace_dropped_takes_data_at_now);
  tcase_add_test(tv, test_decision_grace_dropped_logs_provider_at_now);
  tcase_add_test(tv, test_decision_filter_wait_ends_before_latest_start);
  tcase_add_test(tv, test_decision_filter_deadline_offset_latest_start);
  tcase_add_test(tv, test_decision_log_plan_matches_outcome);
  tcase_add_test(tv, test_decision_preempt_declined_while_waiting);
  tcase_add_test(tv, test_decision_line_repeat_names_the_full_line);
  tcase_add_test(tv, test_decision_line_repeat_ignores_the_time_of_the_call);
  tcase_add_test(tv, test_decision_line_repeat_nominated_and_all_node_calls);
  tcase_add_test(tv, test_decision_preempt_kept_where_the_pod_would_pass);
  tcase_add_test(tv, test_decision_preempt_holds_stored_plan_without_data);
  tcase_add_test(tv, test_decision_preempt_holds_plan_filter_just_made);
  suite_add_tcase(s, tv);
  TCase *tf = tcase_create("filter-budget");
  tcase_add_checked_fixture(tf, setup_static_filter, teardown_filter);
  tcase_add_test(tf, test_decision_filter_budget_no_node_fits);
  tcase_add_test(tf, test_decision_filter_deadline_soonest_of_those_passed);
  tcase_add_test(tf, test_decision_filter_budget_message_numbers);
  tcase_add_test(tf, test_decision_filter_budget_filters_some);
  tcase_add_test(tf, test_decision_filter_budget_allow_lowest_only);
  tcase_add_test(tf, test_decision_filter_budget_allow_respects_deadline);
  tcase_add_test(tf, test_decision_filter_unjudged_pod_not_held_by_annotations);
  tcase_add_test(tf, test_decision_filter_dra_pod_neutral_said_apart);
  tcase_add_test(tf, test_decision_preempt_declined_over_budget);
  tcase_add_test(tf, test_decision_preempt_keeps_only_passing_nodes);
  tcase_add_test(tf, test_decision_preempt_unjudged_pod_unchanged);
  tcase_add_test(tf, test_decision_preempt_partial_decline_says_why);
  tcase_add_test(tf, test_decision_line_repeat_over_budget_without_slack);
  tcase_add_loop_test(tf, test_decision_filter_annotation_nul_not_cut, 0, 2);
  tcase_add_loop_test(tf, test_decision_filter_malformed_annotation_named, 0,
                      (int)(sizeof(bad_kv) / sizeof(bad_kv[0])));
  suite_add_tcase(s, tf);
  TCase *tx = tcase_create("over-the-run");
  tcase_add_checked_fixture(tx, setup_cross, teardown_cross);
  tcase_add_test(tx, test_decision_prioritize_ranks_the_run_not_the_instant);
  tcase_add_test(tx, test_decision_filter_placed_names_the_run_lowest);
  tcase_add_test(tx, test_decision_prioritize_forecast_without_current);
  tcase_add_test(tx, test_decision_forecast_from_the_current_provider);
  tcase_add_test(tx, test_decision_long_run_on_the_forecast_it_has);
  tcase_add_test(tx, test_decision_budget_on_the_current_value);
  tcase_add_test(tx, test_decision_budget_on_a_forecast_part_under_an_hour);
  suite_add_tcase(s, tx);
  TCase *tr = tcase_create("filter-file-replay");
  tcase_set_timeout(tr, 60);
  tcase_add_checked_fixture(tr, setup_replay, teardown_replay);
  tcase_add_test(tr, test_decision_filter_file_replay_defers_then_passes);
  suite_add_tcase(s, tr);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
