/* The decider end to end, in process: the shared fixtures through decode,
 * facts, signals, estimate, score and encode, with the built-in catalog,
 * zone map and carbon providers. */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/gpu_catalog.h"
#include "carbon/providers/builtin.h"
#include "carbon/providers/static.h"
#include "carbon/signals.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/zones.h"
#include "scheduler/decision.h"
#include "tests/unit/testutil.h"

static cs_gpu_catalog *catalog;
static cs_zone_map *zones;
static cs_signals *signals;
static cs_facts_params facts;
static cs_estimate_params est;
static cs_decider *decider;

/* Static values make the expected order exact; builtin stands behind them
 * for every other zone, as in the default configuration. */
static void setup_common(bool with_static)
{
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
  est = (cs_estimate_params){
      .reference_gpu = cs_gpu_catalog_find(catalog, "A100-SXM4-80GB"),
      .default_duration_s = 3600,
      .server_embodied_kg = 1000,
      .gpu_embodied_kg = 150};
  ck_assert_ptr_nonnull(est.reference_gpu);
  cs_decider_deps deps = {
      .signals = signals, .facts = &facts, .estimate = &est};
  decider = cs_decider_new(&deps);
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
  cs_decider_handle(decider, verb, body, len, "test-1", &r);
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

START_TEST(test_decision_prioritize_fixture_static)
{
  cJSON *list = call(CS_VERB_PRIORITIZE,
                     "fixtures/extender/prioritize-nodes.request.json", 200);
  assert_clean_grids_first(list);
  /* The lowest estimate gets 10 and the highest 0. */
  int best = 0, worst = 10;
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
  {
    int s = cJSON_GetObjectItem(e, "Score")->valueint;
    best = s > best ? s : best;
    worst = s < worst ? s : worst;
  }
  ck_assert_int_eq(best, 10);
  ck_assert_int_eq(worst, 0);
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
  ck_assert_int_eq(
      cJSON_GetArraySize(cJSON_GetObjectItem(out, "FailedNodes")), 0);
  ck_assert_str_eq(cJSON_GetObjectItem(out, "Error")->valuestring, "");
  cJSON_Delete(in);
  cJSON_Delete(out);
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
  cJSON *list = call(CS_VERB_PRIORITIZE,
                     "fixtures/extender/prioritize-plain-pod.request.json",
                     200);
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
  cs_decider_handle(decider, CS_VERB_FILTER, body, strlen(body), "t", &r);
  ck_assert_int_eq(r.status, 400);
  cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
  ck_assert_str_eq(cJSON_GetObjectItem(doc, "Error")->valuestring,
                   "NodeNames[0]: expected a string, got a number");
  cJSON_Delete(doc);
  free(r.body);
}
END_TEST

/* One decision line per call, with the numbers behind each score. */
START_TEST(test_decision_handle_logs_decision_line)
{
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  cs_log_set_fd(fds[1]);
  cJSON *list = call(CS_VERB_PRIORITIZE,
                     "fixtures/extender/prioritize-nodes.request.json", 200);
  cs_log_set_fd(STDOUT_FILENO);
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
  ck_assert_str_eq(cJSON_GetObjectItem(line, "msg")->valuestring, "Decision");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "requestId")->valuestring,
                   "test-1");
  ck_assert_str_eq(cJSON_GetObjectItem(line, "verb")->valuestring,
                   "prioritize");
  ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(line, "pod"),
                                       "name")
                       ->valuestring,
                   "llm-pretrain-7b-x2k9q");
  cJSON *nodes = cJSON_GetObjectItem(line, "nodes");
  ck_assert_int_eq(cJSON_GetArraySize(nodes), 4);
  cJSON *v100 = cJSON_GetArrayItem(nodes, 2);
  ck_assert_str_eq(cJSON_GetObjectItem(v100, "node")->valuestring,
                   "gpu-v100-osl-01");
  ck_assert_str_eq(cJSON_GetObjectItem(v100, "zone")->valuestring, "NO");
  ck_assert_str_eq(cJSON_GetObjectItem(v100, "zoneSource")->valuestring,
                   "label");
  cJSON *intensity = cJSON_GetObjectItem(v100, "intensity");
  ck_assert_double_eq(cJSON_GetObjectItem(intensity, "value")->valuedouble,
                      30);
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

static Suite *suite(void)
{
  Suite *s = suite_create("decision");
  TCase *tc = tcase_create("static");
  tcase_add_checked_fixture(tc, setup_static, teardown);
  tcase_add_test(tc, test_decision_prioritize_fixture_static);
  tcase_add_test(tc, test_decision_filter_full_echoes_every_node);
  tcase_add_test(tc, test_decision_filter_names_passes_input_names);
  tcase_add_test(tc, test_decision_prioritize_plain_pod_neutral);
  tcase_add_test(tc, test_decision_handle_bad_request_400);
  tcase_add_test(tc, test_decision_handle_logs_decision_line);
  suite_add_tcase(s, tc);
  TCase *tb = tcase_create("builtin");
  tcase_add_checked_fixture(tb, setup_builtin, teardown);
  tcase_add_test(tb, test_decision_prioritize_fixture_builtin);
  suite_add_tcase(s, tb);
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
