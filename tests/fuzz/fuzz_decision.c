/* fuzz_decision: a whole /filter, /prioritize or /preempt call (the first
 * byte picks the verb) through cs_decider_handle, as the HTTP server makes it:
 * decode, pod and node facts (names-only nodes from a node cache), estimates
 * over static and built-in intensities, the planner, scores, the reply, the
 * decision log line and the Event and annotation sink. Invariants: the
 * reply is 200 or 400 with a JSON body; 400 carries an Error; priorities
 * name the request's nodes in order with whole scores 0..10; the filter
 * keeps or fails only the request's nodes; preempt keeps only proposed
 * nodes, each with victims; sink strings are terminated. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/builtin.h"
#include "carbon/providers/static.h"
#include "carbon/signals.h"
#include "carbon/util/clock.h"
#include "scheduler/codec.h"
#include "scheduler/decision.h"
#include "scheduler/node_cache.h"
#include "tests/fuzz/fuzzutil.h"

static cs_decider *decider;

static void on_event(void *ctx, const cs_pod_facts *pod, const char *type,
                     const char *reason, const char *note)
{
  FZ_ASSERT(strlen(type) && strlen(reason) && note != NULL);
  FZ_ASSERT(memchr(pod->name, 0, sizeof(pod->name)));
}

static void on_annotate(void *ctx, const cs_pod_facts *pod,
                        const char *const *keys, const char *const *values,
                        size_t n)
{
  for (size_t i = 0; i < n; i++)
    FZ_ASSERT(strncmp(keys[i], "carbonshift.io/", 15) == 0 &&
              (!values[i] || strlen(values[i]) < 4096));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fz_quiet();
  cs_clock_set_fixed(1795435200); /* 2026-11-23T12:00:00Z */
  static const cs_static_zone values[] = {{"DE", 380}, {"NO", 30}};
  cs_signals *signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  cs_provider *p = NULL;
  if (cs_static_new(values, 2, CS_SIGNAL_AVERAGE, &p) != CS_OK ||
      cs_signals_add_provider(signals, p) != CS_OK ||
      cs_signals_add_provider(signals, cs_builtin_new()) != CS_OK)
    fz_fail(__FILE__, __LINE__, "signals");
  const cs_facts_params *facts = fz_facts_params();
  static cs_estimate_params est;
  est = (cs_estimate_params){
      .reference_gpu = cs_gpu_catalog_find(facts->catalog, "A100-SXM4-80GB"),
      .default_duration_s = 3600,
      .server_embodied_kg = 1000,
      .gpu_embodied_kg = 150};
  FZ_ASSERT(est.reference_gpu != NULL);
  /* Names-only requests find these nodes; others are unknown (neutral). */
  cs_node_cache *nodes = cs_node_cache_new(facts);
  cJSON *list = cJSON_Parse(
      "[{\"metadata\":{\"name\":\"a\",\"labels\":{\"carbonshift.io/grid-zone\":"
      "\"DE\",\"nvidia.com/gpu.product\":\"NVIDIA-A100-SXM4-80GB\"}},"
      "\"status\":{\"allocatable\":{\"nvidia.com/gpu\":\"8\"}}},"
      "{\"metadata\":{\"name\":\"b\",\"labels\":{\"carbonshift.io/grid-zone\":"
      "\"NO\"}}},{\"metadata\":{\"name\":\"c\"}}]");
  if (cs_node_cache_replace(nodes, list) != CS_OK)
    fz_fail(__FILE__, __LINE__, "node cache");
  cJSON_Delete(list);
  static const cs_decision_sink sink = {.event = on_event,
                                        .annotate = on_annotate};
  cs_decider_deps deps = {.signals = signals,
                          .facts = facts,
                          .estimate = &est,
                          .plan = {.min_saving_rel = 0.05,
                                   .min_saving_abs_g = 1,
                                   .replan_rel = 0.02},
                          .nodes = nodes,
                          .sink = &sink,
                          /* Repeats take the short line's path. */
                          .log_repeat_window_s = 300};
  decider = cs_decider_new(&deps);
  return 0;
}

static bool has_name(const cs_wire_request *r, const char *name)
{
  for (size_t i = 0; i < r->nnodes; i++)
    if (fz_reads_back_as(r->nodes[i].name, name))
      return true;
  return false;
}

static void check_reply(cs_verb verb, const cs_wire_request *r, bool decoded,
                        const cs_reply *rep)
{
  cJSON *j = cJSON_ParseWithLength(rep->body, rep->len);
  FZ_ASSERT(j != NULL);
  if (rep->status == 400) {
    FZ_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "Error")));
  } else if (verb == CS_VERB_PRIORITIZE) {
    FZ_ASSERT(decoded && cJSON_IsArray(j));
    FZ_ASSERT((size_t)cJSON_GetArraySize(j) == r->nnodes);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
      const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "Host");
      const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "Score");
      FZ_ASSERT(cJSON_IsString(h) &&
                fz_reads_back_as(r->nodes[i].name, h->valuestring));
      FZ_ASSERT(cJSON_IsNumber(s) && s->valuedouble >= 0 &&
                s->valuedouble <= 10 && s->valuedouble == (int)s->valuedouble);
      i++;
    }
  } else if (verb == CS_VERB_PREEMPT) {
    FZ_ASSERT(decoded && cJSON_IsObject(j));
    const cJSON *m =
        cJSON_GetObjectItemCaseSensitive(j, "NodeNameToMetaVictims");
    FZ_ASSERT(cJSON_IsObject(m));
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
      FZ_ASSERT(has_name(r, it->string));
      const cJSON *pods = cJSON_GetObjectItemCaseSensitive(it, "Pods");
      FZ_ASSERT(cJSON_GetArraySize(pods) > 0);
      const cJSON *pod;
      cJSON_ArrayForEach(pod, pods)
      {
        FZ_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(pod, "UID")));
      }
    }
  } else {
    FZ_ASSERT(decoded && cJSON_IsObject(j));
    const char *maps[] = {"FailedNodes", "FailedAndUnresolvableNodes"};
    for (int m = 0; m < 2; m++) {
      const cJSON *it;
      cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, maps[m]))
      {
        FZ_ASSERT(has_name(r, it->string));
      }
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "NodeNames"))
    {
      FZ_ASSERT(cJSON_IsString(it) && has_name(r, it->valuestring));
    }
  }
  cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  static const cs_verb verbs[] = {CS_VERB_FILTER, CS_VERB_PRIORITIZE,
                                  CS_VERB_PREEMPT};
  cs_verb verb = verbs[data[0] % 3];
  const char *body = (const char *)data + 1;
  cs_wire_request r;
  cs_wire_preemption pre = {0};
  char err[256];
  bool decoded =
      verb == CS_VERB_PREEMPT
          ? cs_codec_decode_preemption_feed(body, size - 1, NULL, 100000, &r,
                                            &pre, err, sizeof(err)) == CS_OK
          : cs_codec_decode(body, size - 1, 100000, &r, err, sizeof(err)) ==
                CS_OK;
  cs_reply rep = {0};
  cs_decider_handle(decider, verb, body, size - 1, NULL, "fuzz", &rep);
  FZ_ASSERT(rep.status == 200 || rep.status == 400);
  FZ_ASSERT(rep.body != NULL);
  check_reply(verb, &r, decoded, &rep);
  free(rep.body);
  if (decoded)
    cs_codec_request_free(&r);
  cs_codec_preemption_free(&pre);
  return 0;
}
