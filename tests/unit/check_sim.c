/* The simulator against answers computed here by brute force: the oracle's
 * optimum, agnostic as run-at-submission, the LP bound below every policy,
 * determinism under a seed, and the same node and start as the service's
 * extender for the same pod and nodes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/signals.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "carbon/zones.h"
#include "cmd/carbonshift/sim_bound.h"
#include "cmd/carbonshift/sim_engine.h"
#include "cmd/carbonshift/sim_forecast.h"
#include "cmd/carbonshift/sim_report.h"
#include "scheduler/decision.h"

#define H 3600
#define T0 1672531200 /* 2023-01-01T00:00:00Z */
#define NH 96

static cs_gpu_catalog *catalog;
static cs_sim_trace *traces[2];
static cs_sim_cluster cluster;
static cs_estimate_params est;
static cs_facts_params facts;
static cs_signals *signals;

/* DE: a daily valley (60) from 12:00 to 16:00, 400 otherwise, plus a ripple
 * so no two hours tie; NO: a flat 150 with a ripple. */
static double de_at(int h)
{
  int hod = h % 24;
  return (hod >= 12 && hod < 16 ? 60 : 400) + (h * 7 % 11);
}

static double no_at(int h)
{
  return 150 + (h * 5 % 13);
}

static const char cluster_json[] =
    "{\"pools\": ["
    "{\"name\": \"de-a100\", \"zone\": \"DE\", \"gpu\": \"A100-SXM4-80GB\", "
    "\"nodes\": 1, \"gpusPerNode\": 8, \"installed\": \"2021-06\", \"pue\": "
    "1.3},"
    "{\"name\": \"no-v100\", \"zone\": \"NO\", \"gpu\": \"V100-SXM2-32GB\", "
    "\"nodes\": 1, \"gpusPerNode\": 8, \"installed\": \"2018-03\", \"pue\": "
    "1.1}]}";

static void setup(void)
{
  cs_log_set_verbosity(-1);
  catalog = cs_gpu_catalog_new();
  int64_t at[NH];
  double de[NH], no[NH];
  for (int h = 0; h < NH; h++) {
    at[h] = T0 + (int64_t)h * H;
    de[h] = de_at(h);
    no[h] = no_at(h);
  }
  ck_assert_int_eq(cs_sim_trace_from("DE", at, de, NH, H, &traces[0]), CS_OK);
  ck_assert_int_eq(cs_sim_trace_from("NO", at, no, NH, H, &traces[1]), CS_OK);
  facts = (cs_facts_params){.catalog = catalog,
                            .default_pue = 1.2,
                            .default_lifetime_s = 6 * 365 * 86400.0};
  est = (cs_estimate_params){.reference_gpu =
                                 cs_gpu_catalog_find(catalog, "A100-SXM4-80GB"),
                             .default_duration_s = 3600,
                             .server_embodied_kg = 1000,
                             .gpu_embodied_kg = 150};
  char err[256];
  ck_assert_int_eq(cs_sim_cluster_parse(cluster_json, strlen(cluster_json),
                                        catalog, &facts, &cluster, err,
                                        sizeof(err)),
                   CS_OK);
  signals = NULL;
}

static void teardown(void)
{
  cs_signals_free(signals);
  cs_sim_cluster_free(&cluster);
  cs_sim_trace_free(traces[0]);
  cs_sim_trace_free(traces[1]);
  cs_gpu_catalog_free(catalog);
  cs_clock_set_fixed(0);
}

static cs_sim_world world(const cs_sim_jobs *jobs, cs_sim_forecast_params fp)
{
  cs_provider *p;
  cs_signals_free(signals);
  signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(cs_sim_forecast_new(traces, 2, &fp, &p), CS_OK);
  ck_assert_int_eq(cs_signals_add_provider(signals, p), CS_OK);
  return (cs_sim_world){.jobs = jobs,
                        .cluster = &cluster,
                        .traces = traces,
                        .ntraces = 2,
                        .estimate = &est,
                        .policy = {.signals = signals, .estimate = &est}};
}

static cs_sim_job job(const char *id, int64_t submit, double hours, double gpus,
                      double slack_h)
{
  cs_sim_job j = {0};
  snprintf(j.id, sizeof(j.id), "%s", id);
  j.submit = j.earliest = submit;
  j.duration_s = j.expected_s = hours * H;
  j.gpus = gpus;
  j.max_delay_s = slack_h * H;
  j.max_delay_given = slack_h > 0;
  return j;
}

static double total(const cs_sim_outcome *o, size_t n)
{
  double g = 0;
  for (size_t i = 0; i < n; i++)
    g += o[i].operational_g + o[i].embodied_g;
  return g;
}

/* The oracle's choice is the minimum over every pool and every start minute
 * in the window, computed here with a plain loop over the hours. */
START_TEST(test_sim_engine_run_oracle_brute_force)
{
  cs_sim_job v[] = {job("a", T0 + 5 * H + 600, 3, 8, 20),
                    job("b", T0 + 30 * H, 2.5, 4, 10)};
  cs_sim_jobs jobs = {.v = v, .n = 2};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome out[2];
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_ORACLE, out), CS_OK);
  for (size_t i = 0; i < 2; i++) {
    double best = INFINITY;
    for (size_t p = 0; p < cluster.n; p++) {
      cs_sim_outcome o;
      cs_sim_engine_account(&w, i, p, v[i].earliest, &o);
      int64_t runtime = o.end - o.start;
      double kwh = o.energy_kwh;
      for (int64_t s = v[i].earliest;
           s <= v[i].earliest + (int64_t)v[i].max_delay_s; s += 60) {
        double sum = 0;
        for (int64_t t = s; t < s + runtime; t += 60) {
          int h = (int)((t - T0) / H);
          sum += (p == 0 ? de_at(h) : no_at(h)) * 60;
        }
        double g = kwh * sum / (double)runtime + o.embodied_g;
        best = g < best ? g : best;
      }
    }
    double got = out[i].operational_g + out[i].embodied_g;
    /* Minute steps and the embodied share's tiny change with age. */
    ck_assert_msg(fabs(got - best) <= 1e-3 * best, "job %zu: %f vs %f", i, got,
                  best);
  }
}
END_TEST

START_TEST(test_sim_engine_run_agnostic_at_submission)
{
  cs_sim_job v[] = {job("a", T0 + H, 2, 4, 12), job("b", T0 + 2 * H, 1, 4, 0),
                    job("c", T0 + 3 * H, 5, 8, 6)};
  cs_sim_jobs jobs = {.v = v, .n = 3};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome out[3];
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_AGNOSTIC, out), CS_OK);
  for (size_t i = 0; i < 3; i++) {
    ck_assert_int_eq(out[i].fate, CS_SIM_RAN);
    ck_assert_int_eq(out[i].start, v[i].submit);
  }
  /* Least allocated: a takes the empty first pool, b the empty second; c
   * needs 8 GPUs and arrives at 03:00, when a ends and gives its pool
   * back (ends are handled before arrivals at the same instant), so it
   * starts on time on the first pool. */
  ck_assert_int_eq(out[0].pool, 0);
  ck_assert_int_eq(out[1].pool, 1);
  ck_assert_int_eq(out[0].end, v[2].submit);
  ck_assert_int_eq(out[2].pool, 0);
}
END_TEST

START_TEST(test_sim_engine_run_agnostic_waits_for_gpus)
{
  cs_sim_job v[] = {job("a", T0 + H, 2, 8, 0), job("b", T0 + H, 3, 8, 0),
                    job("c", T0 + H + 60, 1, 8, 0)};
  cs_sim_jobs jobs = {.v = v, .n = 3};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome out[3];
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_AGNOSTIC, out), CS_OK);
  ck_assert_int_eq(out[0].start, T0 + H);
  ck_assert_int_eq(out[1].start, T0 + H);
  /* c waits for the first pool to free up. */
  ck_assert_int_eq(out[2].pool, out[0].pool);
  ck_assert_int_eq(out[2].start, out[0].end);
}
END_TEST

START_TEST(test_sim_bound_solve_below_every_policy)
{
  cs_sim_job v[] = {job("a", T0 + H, 3, 8, 20), job("b", T0 + 2 * H, 3, 8, 20),
                    job("c", T0 + 3 * H, 2, 8, 20),
                    job("d", T0 + 4 * H, 4, 4, 8),
                    job("e", T0 + 6 * H, 1, 4, 0)};
  cs_sim_jobs jobs = {.v = v, .n = 5};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  /* The oracle ignores capacity, so only the other two must stay above
   * the capacity-constrained bound; alone, a job bounds the oracle too. */
  cs_sim_outcome out[3][5];
  int64_t ends[5] = {0};
  for (int p = 0; p < 3; p++) {
    ck_assert_int_eq(cs_sim_engine_run(&w, (cs_sim_policy)p, out[p]), CS_OK);
    for (size_t i = 0; i < 5; i++) {
      ck_assert_int_eq(out[p][i].fate, CS_SIM_RAN);
      ends[i] = out[p][i].end > ends[i] ? out[p][i].end : ends[i];
    }
  }
  cs_sim_bound b;
  char err[256];
  cs_sim_bound_params bp = {0};
  ck_assert_int_eq(cs_sim_bound_solve(&w, ends, &bp, &b, err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_gt(b.capacity_rows, 0);
  for (int p = 0; p < 2; p++)
    ck_assert_msg(b.total_g <= total(out[p], 5) + 1e-6, "%s: %f < bound %f",
                  cs_sim_policy_name((cs_sim_policy)p), total(out[p], 5),
                  b.total_g);
  jobs.n = 1;
  ends[0] = out[2][0].end;
  ck_assert_int_eq(cs_sim_bound_solve(&w, ends, &bp, &b, err, sizeof(err)),
                   CS_OK);
  ck_assert_double_le(b.total_g, total(out[2], 1) + 1e-6);
  /* And the limit refuses politely. */
  bp.max_columns = 10;
  ck_assert_int_eq(cs_sim_bound_solve(&w, ends, &bp, &b, err, sizeof(err)),
                   CS_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(err, "over the limit"));
}
END_TEST

START_TEST(test_sim_engine_run_deterministic_under_seed)
{
  cs_sim_job v[] = {job("a", T0 + H, 3, 8, 20), job("b", T0 + 20 * H, 2, 4, 20),
                    job("c", T0 + 40 * H, 2, 8, 12)};
  cs_sim_jobs jobs = {.v = v, .n = 3};
  cs_sim_forecast_params fp = {
      .noise = CS_SIM_NOISE_GAUSS, .sigma_rel = 0.3, .seed = 7};
  cs_sim_outcome a[3], b[3];
  cs_sim_world w = world(&jobs, fp);
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_CARBONSHIFT, a), CS_OK);
  w = world(&jobs, fp);
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_CARBONSHIFT, b), CS_OK);
  ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
  /* Another seed gives another forecast. */
  cs_provider *p1, *p2;
  fp.noise = CS_SIM_NOISE_AR1;
  fp.phi = 0.8;
  ck_assert_int_eq(cs_sim_forecast_new(traces, 2, &fp, &p1), CS_OK);
  fp.seed = 8;
  ck_assert_int_eq(cs_sim_forecast_new(traces, 2, &fp, &p2), CS_OK);
  ck_assert(cs_sim_forecast_value(p1, 0, 5) != cs_sim_forecast_value(p2, 0, 5));
  cs_provider_free(p1);
  cs_provider_free(p2);
}
END_TEST

START_TEST(test_sim_forecast_parse_forms)
{
  cs_sim_forecast_params p = {.seed = 3};
  const char *exp;
  ck_assert_int_eq(cs_sim_forecast_parse("gauss:5%", &p, &exp), CS_OK);
  ck_assert_int_eq(p.noise, CS_SIM_NOISE_GAUSS);
  ck_assert(fabs(p.sigma_rel - 0.05) < 1e-12);
  ck_assert_int_eq(p.seed, 3);
  ck_assert_int_eq(cs_sim_forecast_parse("ar1:0.1:0.5", &p, &exp), CS_OK);
  ck_assert(p.noise == CS_SIM_NOISE_AR1 && p.phi == 0.5);
  ck_assert_int_eq(cs_sim_forecast_parse("ar1:10%:1", &p, &exp), CS_EINVAL);
  ck_assert_int_eq(cs_sim_forecast_parse("noisy", &p, &exp), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(exp, "perfect"));
}
END_TEST

/* ---- the service and the simulator agree -------------------------------- */

static char planned[32];

static void sink_annotate(void *ctx, const cs_pod_facts *pod,
                          const char *const *keys, const char *const *values,
                          size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!strcmp(keys[i], CS_ANN_PLANNED_START))
      snprintf(planned, sizeof(planned), "%s", values[i]);
}

static const cs_decision_sink sink = {NULL, NULL, sink_annotate};

/* The extender request the scheduler would send for the job and pools. */
static char *request(const cs_sim_job *j, const char *planned_start)
{
  char created[21];
  cs_format_rfc3339(j->earliest, created);
  cJSON *doc = cJSON_CreateObject();
  cJSON *pod = cJSON_AddObjectToObject(doc, "Pod");
  cJSON *md = cJSON_AddObjectToObject(pod, "metadata");
  cJSON_AddStringToObject(md, "name", "job");
  cJSON_AddStringToObject(md, "namespace", "sim");
  cJSON_AddStringToObject(md, "uid", "u-1");
  cJSON_AddStringToObject(md, "creationTimestamp", created);
  cJSON *ann = cJSON_AddObjectToObject(md, "annotations");
  char v[64];
  snprintf(v, sizeof(v), "%.0fs", j->expected_s);
  cJSON_AddStringToObject(ann, CS_ANN_DURATION, v);
  snprintf(v, sizeof(v), "%.0fs", j->max_delay_s);
  if (j->max_delay_s > 0)
    cJSON_AddStringToObject(ann, CS_ANN_MAX_DELAY, v);
  if (planned_start)
    cJSON_AddStringToObject(ann, CS_ANN_PLANNED_START, planned_start);
  cJSON *c = cJSON_CreateObject();
  cJSON *req = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "resources"),
                                       "requests");
  snprintf(v, sizeof(v), "%.0f", j->gpus);
  cJSON_AddStringToObject(req, "nvidia.com/gpu", v);
  cJSON_AddStringToObject(c, "name", "train");
  cJSON *containers = cJSON_AddArrayToObject(
      cJSON_AddObjectToObject(pod, "spec"), "containers");
  cJSON_AddItemToArray(containers, c);
  cJSON *items =
      cJSON_AddArrayToObject(cJSON_AddObjectToObject(doc, "Nodes"), "items");
  for (size_t p = 0; p < cluster.n; p++) {
    const cs_sim_pool *pool = &cluster.pools[p];
    cJSON *n = cJSON_CreateObject();
    cJSON *m = cJSON_AddObjectToObject(n, "metadata");
    cJSON_AddStringToObject(m, "name", pool->name);
    cJSON *labels = cJSON_AddObjectToObject(m, "labels");
    cJSON_AddStringToObject(labels, CS_LABEL_GRID_ZONE, pool->facts.zone);
    cJSON_AddStringToObject(labels, CS_LABEL_GPU_MODEL, pool->facts.gpu->name);
    cJSON *a = cJSON_AddObjectToObject(m, "annotations");
    snprintf(v, sizeof(v), "%g", pool->facts.pue);
    cJSON_AddStringToObject(a, CS_ANN_PUE, v);
    char when[21];
    cs_format_rfc3339(pool->facts.installed_at, when);
    snprintf(v, sizeof(v), "%.10s", when);
    cJSON_AddStringToObject(a, CS_ANN_INSTALLED, v);
    cJSON *alloc = cJSON_AddObjectToObject(cJSON_AddObjectToObject(n, "status"),
                                           "allocatable");
    snprintf(v, sizeof(v), "%.0f", pool->facts.gpus);
    cJSON_AddStringToObject(alloc, "nvidia.com/gpu", v);
    cJSON_AddItemToArray(items, n);
  }
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  return text;
}

static cJSON *handle(cs_decider *d, cs_verb verb, const char *body)
{
  cs_reply r = {0};
  cs_decider_handle(d, verb, body, strlen(body), NULL, "sim-1", &r);
  ck_assert_int_eq(r.status, 200);
  cJSON *out = cJSON_ParseWithLength(r.body, r.len);
  free(r.body);
  ck_assert_ptr_nonnull(out);
  return out;
}

/* The service's node: the highest score among the nodes the filter kept. */
static const char *service_choice(cs_decider *d, const char *body, char *node,
                                  size_t cap)
{
  cJSON *f = handle(d, CS_VERB_FILTER, body);
  if (getenv("SIM_DEBUG")) {
    char *t = cJSON_Print(f);
    fprintf(stderr, "%s\n", t);
    free(t);
  }
  cJSON *kept = cJSON_GetObjectItem(cJSON_GetObjectItem(f, "Nodes"), "items");
  int nkept = cJSON_GetArraySize(kept);
  cJSON *pr = handle(d, CS_VERB_PRIORITIZE, body);
  int best = -1;
  node[0] = '\0';
  const cJSON *e;
  cJSON_ArrayForEach(e, pr)
  {
    const char *host = cJSON_GetObjectItem(e, "Host")->valuestring;
    int score = cJSON_GetObjectItem(e, "Score")->valueint;
    bool passed = false;
    const cJSON *k;
    cJSON_ArrayForEach(k, kept)
    {
      const char *name =
          cJSON_GetObjectItem(cJSON_GetObjectItem(k, "metadata"), "name")
              ->valuestring;
      passed |= !strcmp(name, host);
    }
    if (passed && score > best) {
      best = score;
      snprintf(node, cap, "%s", host);
    }
  }
  cJSON_Delete(f);
  cJSON_Delete(pr);
  return nkept ? node : NULL;
}

START_TEST(test_sim_engine_run_matches_service)
{
  /* Submitted at 05:00 with 20 h of slack: the DE valley at 12:00 beats NO;
   * a second job without slack goes where it is cleanest now. */
  cs_sim_job v[] = {job("a", T0 + 5 * H, 3, 8, 20),
                    job("b", T0 + 30 * H + 1800, 2, 8, 0)};
  cs_sim_jobs jobs = {.v = v, .n = 2};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome out[2];
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_CARBONSHIFT, out), CS_OK);

  cs_decider_deps deps = {
      .signals = signals, .facts = &facts, .estimate = &est, .sink = &sink};
  cs_decider *d = cs_decider_new(&deps);
  char node[64];
  for (size_t i = 0; i < 2; i++) {
    planned[0] = '\0';
    cs_clock_set_fixed(v[i].earliest);
    char *body = request(&v[i], NULL);
    const char *chosen = service_choice(d, body, node, sizeof(node));
    free(body);
    int64_t start = v[i].earliest;
    if (!chosen) { /* deferred: the scheduler retries at the planned start */
      ck_assert_str_ne(planned, "");
      ck_assert_int_eq(cs_parse_rfc3339(planned, &start, NULL), CS_OK);
      cs_clock_set_fixed(start);
      char kept[32];
      snprintf(kept, sizeof(kept), "%s", planned);
      body = request(&v[i], kept);
      chosen = service_choice(d, body, node, sizeof(node));
      free(body);
    }
    ck_assert_ptr_nonnull(chosen);
    ck_assert_int_eq(out[i].start, start);
    ck_assert_str_eq(cluster.pools[out[i].pool].name, chosen);
  }
  /* The first job did wait for the valley, in DE (13:00 to 16:00 is its
   * greenest run: 63 + 70 + 66 against 67 + 63 + 70 from 12:00). */
  ck_assert_int_eq(out[0].start, T0 + 13 * H);
  ck_assert_str_eq(cluster.pools[out[0].pool].name, "de-a100");
  cs_decider_free(d);
}
END_TEST

/* Jobs that meet no capacity row are solved apart in closed form; the
 * answer is GLPK's on the whole LP. */
START_TEST(test_sim_bound_solve_closed_form_matches_glpk)
{
  cs_sim_job v[] = {job("a", T0 + H, 3, 8, 20), job("b", T0 + 2 * H, 3, 8, 20),
                    job("c", T0 + 3 * H, 2, 8, 20),
                    job("d", T0 + 60 * H + 900, 2.5, 2, 9),
                    job("e", T0 + 75 * H, 1, 4, 3)};
  cs_sim_jobs jobs = {.v = v, .n = 5};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_bound split, whole;
  char err[256];
  cs_sim_bound_params bp = {0};
  ck_assert_int_eq(cs_sim_bound_solve(&w, NULL, &bp, &split, err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_eq(split.closed_form_jobs, 2); /* d and e */
  ck_assert_uint_gt(split.capacity_rows, 0);
  ck_assert_uint_lt(split.lp_columns, split.columns);
  bp.lp_only = true;
  ck_assert_int_eq(cs_sim_bound_solve(&w, NULL, &bp, &whole, err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_eq(whole.closed_form_jobs, 0);
  ck_assert_uint_eq(whole.lp_columns, whole.columns);
  ck_assert_msg(fabs(split.total_g - whole.total_g) <= 1e-6 * whole.total_g,
                "%f vs %f", split.total_g, whole.total_g);
  ck_assert(fabs(split.energy_kwh - whole.energy_kwh) <=
            1e-6 * whole.energy_kwh);
  /* Every job's whole work is done once: GPU-hours on the pools chosen. */
  ck_assert(split.gpu_hours > 0 &&
            fabs(split.gpu_hours - whole.gpu_hours) <= 1e-6 * whole.gpu_hours);
  /* A job alone, by hand: on each pool, its window (3 h of slack plus the
   * runtime there) cut into hours, each hour able to hold hour/runtime of
   * the work; the cheapest hours filled first. */
  jobs.v = &v[4];
  jobs.n = 1;
  bp.lp_only = false;
  ck_assert_int_eq(cs_sim_bound_solve(&w, NULL, &bp, &split, err, sizeof(err)),
                   CS_OK);
  double best = INFINITY;
  for (size_t p = 0; p < cluster.n; p++) {
    cs_sim_outcome o, late;
    cs_sim_engine_account(&w, 0, p, v[4].earliest, &o);
    double runtime = (double)(o.end - o.start);
    int64_t wend = v[4].earliest + 3 * H + (int64_t)runtime;
    cs_sim_engine_account(&w, 0, p, wend - (int64_t)runtime, &late);
    double ub[8], cost[8];
    int n = 0;
    for (int64_t a = v[4].earliest; a < wend; a += H, n++) {
      int64_t b = a + H < wend ? a + H : wend;
      int h = (int)((a - T0) / H);
      ub[n] = (double)(b - a) / runtime;
      cost[n] = (p == 0 ? de_at(h) : no_at(h)) * o.energy_kwh + late.embodied_g;
    }
    double left = 1, g = 0;
    while (left > 1e-12) {
      int k = -1;
      for (int i = 0; i < n; i++)
        if (ub[i] > 0 && (k < 0 || cost[i] < cost[k]))
          k = i;
      double x = ub[k] < left ? ub[k] : left;
      g += x * cost[k];
      left -= x;
      ub[k] = 0;
    }
    best = g < best ? g : best;
  }
  ck_assert_msg(fabs(split.total_g - best) <= 1e-6 * best, "%f vs %f",
                split.total_g, best);
  /* A job no pool can hold is left out, as every policy leaves it. */
  cs_sim_job two[] = {v[4], job("huge", T0 + 75 * H, 1, 16, 3)};
  jobs.v = two;
  jobs.n = 2;
  cs_sim_bound with;
  for (int lp = 0; lp < 2; lp++) {
    bp.lp_only = lp;
    ck_assert_int_eq(cs_sim_bound_solve(&w, NULL, &bp, &with, err, sizeof(err)),
                     CS_OK);
    ck_assert_uint_eq(with.no_fit_jobs, 1);
    ck_assert(fabs(with.total_g - split.total_g) <= 1e-6 * split.total_g);
  }
}
END_TEST

/* The report's sums, waits, misses, savings and captured share, by hand. */
START_TEST(test_sim_report_row_by_hand)
{
  cs_sim_job v[] = {job("a", T0 + H, 1, 1, 0), job("b", T0 + 2 * H, 1, 1, 4),
                    job("c", T0 + 3 * H, 1, 1, 0),
                    job("d", T0 + 4 * H, 1, 1, 0)};
  v[2].deadline = T0 + 10 * H;
  v[3].deadline = T0 + 5 * H;
  cs_sim_jobs jobs = {.v = v, .n = 4};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome o[4];
  int64_t starts[4] = {T0 + H, T0 + 7 * H, T0 + 5 * H, T0 + 4 * H + 1800};
  for (size_t i = 0; i < 4; i++)
    cs_sim_engine_account(&w, i, 1, starts[i], &o[i]);
  o[3].fate = CS_SIM_REJECTED;
  cs_sim_row r;
  cs_sim_report_row(&w, "x", o, &r);
  ck_assert_uint_eq(r.jobs, 3);
  ck_assert_uint_eq(r.not_run, 1);
  /* Waits 0, 5 and 2 h: mean 7/3 h, p95 the largest. b started 1 h past
   * its 4 h of slack; c met its deadline; d did not run. */
  ck_assert(fabs(r.wait_mean_s - 7 * H / 3.0) < 1e-6);
  ck_assert(r.wait_p95_s == 5 * H);
  ck_assert_uint_eq(r.deadline_misses, 1);
  double g = 0, kwh = 0;
  for (size_t i = 0; i < 3; i++) {
    g += o[i].operational_g + o[i].embodied_g;
    kwh += o[i].energy_kwh;
  }
  ck_assert(fabs(r.total_g - g) < 1e-9 && fabs(r.energy_kwh - kwh) < 1e-9);
  ck_assert(fabs(r.gpu_hours - 3 * o[0].gpu_hours) < 1e-9);
  /* Savings and shares come from the compared totals, not each policy's
   * own; agnostic captures nothing of the bound's saving, so it has no
   * share; a row compared over other jobs gets no saving. */
  cs_sim_row rows[4] = {
      {.policy = "agnostic",
       .solved = true,
       .total_g = 260,
       .compared = 3,
       .compared_g = 200},
      {.policy = "carbonshift",
       .solved = true,
       .total_g = 100,
       .compared = 3,
       .compared_g = 170},
      {.policy = "bound", .solved = true, .compared = 3, .compared_g = 140},
      {.policy = "oracle", .solved = true, .compared = 2, .compared_g = 1}};
  for (int i = 0; i < 4; i++)
    rows[i].savings_pct = rows[i].captured_pct = NAN;
  cs_sim_report_compare(rows, 4);
  ck_assert(fabs(rows[1].savings_pct - 15) < 1e-9);
  ck_assert(fabs(rows[1].captured_pct - 50) < 1e-9);
  ck_assert(fabs(rows[2].captured_pct - 100) < 1e-9);
  ck_assert(fabs(rows[0].savings_pct) < 1e-9 && isnan(rows[0].captured_pct));
  ck_assert(isnan(rows[3].savings_pct) && isnan(rows[3].captured_pct));
  rows[2].solved = false; /* no bound: no captured share */
  rows[1].captured_pct = NAN;
  cs_sim_report_compare(rows, 4);
  ck_assert(isnan(rows[1].captured_pct));
  /* A bound that saves next to nothing gives no share either, rather than
   * one of -2e17 % (a rounding difference divided by another). */
  rows[2].solved = true;
  rows[2].compared_g = 200 - 1e-9;
  rows[1].captured_pct = NAN;
  cs_sim_report_compare(rows, 4);
  ck_assert(isnan(rows[1].captured_pct));
}
END_TEST

/* max_delay 0, given, means the job may not wait, whatever its deadline:
 * every policy starts it at once, and a start later than that is a miss. */
START_TEST(test_sim_max_delay_zero_may_not_wait)
{
  cs_sim_job v[] = {job("a", T0 + 5 * H + 600, 3, 8, 0)};
  v[0].max_delay_given = true;
  v[0].deadline = T0 + 40 * H; /* room enough to wait, if it could */
  cs_sim_jobs jobs = {.v = v, .n = 1};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  ck_assert_int_eq(cs_sim_engine_latest(&v[0], 3 * H), v[0].earliest);
  static const cs_sim_policy pols[] = {CS_SIM_AGNOSTIC, CS_SIM_CARBONSHIFT,
                                       CS_SIM_ORACLE};
  for (size_t i = 0; i < 3; i++) {
    cs_sim_outcome o;
    ck_assert_int_eq(cs_sim_engine_run(&w, pols[i], &o), CS_OK);
    ck_assert_msg(o.start == v[0].earliest, "%s started %lld s late",
                  cs_sim_policy_name(pols[i]),
                  (long long)(o.start - v[0].earliest));
  }
  cs_sim_outcome late;
  cs_sim_engine_account(&w, 0, 0, v[0].earliest + H, &late);
  cs_sim_row r;
  cs_sim_report_row(&w, "x", &late, &r);
  ck_assert_uint_eq(r.deadline_misses, 1);
}
END_TEST

/* The bound's windows must cover every run: with --seeds the outcomes of
 * one seed are overwritten by the next, so the tally keeps each job's
 * latest end over all of them (once, only the last seed's counted). */
START_TEST(test_sim_report_tally_keeps_latest_end_over_runs)
{
  cs_sim_job v[] = {job("a", T0 + H, 1, 1, 4), job("b", T0 + 2 * H, 1, 1, 4)};
  cs_sim_jobs jobs = {.v = v, .n = 2};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_tally t;
  cs_sim_report_tally_init(&t, 2);
  unsigned char common[3] = {1, 1, 1};
  cs_sim_outcome seed1[2], seed2[2];
  cs_sim_engine_account(&w, 0, 0, T0 + 4 * H, &seed1[0]);
  cs_sim_engine_account(&w, 1, 0, T0 + 2 * H, &seed1[1]);
  cs_sim_engine_account(&w, 0, 0, T0 + H, &seed2[0]);
  cs_sim_engine_account(&w, 1, 0, T0 + 5 * H, &seed2[1]);
  cs_sim_report_tally_add(&t, &w, seed1, NULL, common);
  cs_sim_report_tally_add(&t, &w, seed2, NULL, common);
  ck_assert_int_eq(t.latest_end[0], seed1[0].end);
  ck_assert_int_eq(t.latest_end[1], seed2[1].end);
  cs_sim_report_tally_free(&t);
}
END_TEST

/* An outcome nothing decided is not a run: a job the replay never started
 * counts in notRun and is written without start or end. */
START_TEST(test_sim_report_row_not_started)
{
  cs_sim_job v[] = {job("a", T0 + H, 1, 1, 0), job("b", T0 + 2 * H, 1, 1, 0)};
  cs_sim_jobs jobs = {.v = v, .n = 2};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome o[2];
  cs_sim_engine_account(&w, 0, 0, v[0].submit, &o[0]);
  memset(&o[1], 0, sizeof(o[1]));
  o[1].pool = -1;
  ck_assert_int_ne(o[1].fate, CS_SIM_RAN);
  cs_sim_row r;
  cs_sim_report_row(&w, "x", o, &r);
  ck_assert_uint_eq(r.jobs, 1);
  ck_assert_uint_eq(r.not_run, 1);
  ck_assert(r.wait_mean_s == 0);
  FILE *f = tmpfile();
  cs_sim_report_jobs_csv(f, &w, "x", o, false);
  rewind(f);
  char line[2][256];
  for (int i = 0; i < 2; i++)
    ck_assert_ptr_nonnull(fgets(line[i], sizeof(line[i]), f));
  fclose(f);
  char want[128];
  snprintf(want, sizeof(want), "x,b,%lld,,,,,1,not-started,",
           (long long)v[1].submit);
  ck_assert_msg(!strncmp(line[1], want, strlen(want)), "%s", line[1]);
}
END_TEST

/* A job id holding CR or LF (jobs built in code may have one) is quoted as
 * RFC 4180 says, so the line break is part of the field, not a new row. */
START_TEST(test_sim_report_jobs_csv_quotes_line_breaks)
{
  cs_sim_job v[] = {job("a\rb", T0 + H, 1, 1, 0),
                    job("c\nd", T0 + 2 * H, 1, 1, 0)};
  cs_sim_jobs jobs = {.v = v, .n = 2};
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  cs_sim_outcome o[2];
  memset(o, 0, sizeof(o));
  o[0].pool = o[1].pool = -1;
  o[0].fate = o[1].fate = CS_SIM_REJECTED;
  FILE *f = tmpfile();
  cs_sim_report_jobs_csv(f, &w, "x", o, false);
  rewind(f);
  char text[512];
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  text[n] = '\0';
  fclose(f);
  char want[512];
  snprintf(want, sizeof(want),
           "x,\"a\rb\",%lld,,,,,1,rejected,0.0000,0.000,0.000\n"
           "x,\"c\nd\",%lld,,,,,1,rejected,0.0000,0.000,0.000\n",
           (long long)v[0].submit, (long long)v[1].submit);
  ck_assert_str_eq(text, want);
}
END_TEST

/* --jobs-out: one line per job, with the run's start, end and pool. */
START_TEST(test_sim_report_jobs_csv_lines)
{
  cs_sim_job v[] = {job("a", T0 + 7 * H, 2, 8, 6),
                    job("b", T0 + 40 * H, 1, 4, 0)};
  cs_sim_jobs jobs = {.v = v, .n = 2};
  cs_sim_outcome out[2];
  cs_sim_world w = world(&jobs, (cs_sim_forecast_params){0});
  ck_assert_int_eq(cs_sim_engine_run(&w, CS_SIM_AGNOSTIC, out), CS_OK);
  out[1].fate = CS_SIM_NO_FIT;
  FILE *f = tmpfile();
  cs_sim_report_jobs_csv(f, &w, "agnostic", out, true);
  rewind(f);
  char line[3][256];
  for (int i = 0; i < 3; i++)
    ck_assert_ptr_nonnull(fgets(line[i], sizeof(line[i]), f));
  ck_assert_ptr_null(fgets(line[0] + 200, 10, f));
  fclose(f);
  ck_assert_str_eq(line[0], "policy,id,submit,start,end,pool,zone,gpus,fate,"
                            "energy_kwh,operational_g,embodied_g\n");
  char want[256];
  const cs_sim_pool *p = &cluster.pools[out[0].pool];
  snprintf(want, sizeof(want), "agnostic,a,%lld,%lld,%lld,%s,%s,8,ran,",
           (long long)v[0].submit, (long long)out[0].start,
           (long long)out[0].end, p->name, p->facts.zone);
  ck_assert_msg(!strncmp(line[1], want, strlen(want)), "%s", line[1]);
  snprintf(want, sizeof(want), "agnostic,b,%lld,,,,,4,no-fit,",
           (long long)v[1].submit);
  ck_assert_msg(!strncmp(line[2], want, strlen(want)), "%s", line[2]);
}
END_TEST

/* Gaussian noise has sigma the given share of the trace's mean; AR(1)
 * noise the same stationary sigma and lag-1 correlation phi. */
START_TEST(test_sim_forecast_new_noise_statistics)
{
  enum { N = 40000 };
  int64_t *at = malloc(N * sizeof(*at));
  double *g = malloc(N * sizeof(*g));
  for (int i = 0; i < N; i++) {
    at[i] = T0 + (int64_t)i * H;
    g[i] = i % 2 ? 300 : 100; /* mean 200 */
  }
  cs_sim_trace *t;
  ck_assert_int_eq(cs_sim_trace_from("XX", at, g, N, H, &t), CS_OK);
  ck_assert(fabs(t->mean - 200) < 1e-9);
  for (int ar = 0; ar < 2; ar++) {
    cs_sim_forecast_params fp = {.noise =
                                     ar ? CS_SIM_NOISE_AR1 : CS_SIM_NOISE_GAUSS,
                                 .sigma_rel = 0.1,
                                 .phi = ar ? 0.8 : 0,
                                 .seed = 11};
    cs_provider *p;
    ck_assert_int_eq(cs_sim_forecast_new(&t, 1, &fp, &p), CS_OK);
    double sum = 0, sq = 0, lag = 0, prev = 0;
    for (int i = 0; i < N; i++) {
      double e = cs_sim_forecast_value(p, 0, (size_t)i) - g[i];
      sum += e;
      sq += e * e;
      lag += i ? e * prev : 0;
      prev = e;
    }
    double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    double rho = (lag / (N - 1) - mean * mean) / (sd * sd);
    ck_assert_msg(fabs(mean) < 1, "bias %f", mean);
    ck_assert_msg(fabs(sd - 20) < 1, "sigma %f, expected 20", sd);
    ck_assert_msg(fabs(rho - fp.phi) < 0.05, "rho %f, expected %f", rho,
                  fp.phi);
    cs_provider_free(p);
  }
  cs_sim_trace_free(t);
  free(at);
  free(g);
}
END_TEST

/* The noise a seed draws for a zone stays what it was: the noisy results
 * in docs/benchmarks.md were drawn with it and must repeat (the zone's
 * part of the seed is FNV-1a from a basis of its own, sim_forecast.c). */
START_TEST(test_sim_forecast_new_noise_same_across_versions)
{
  int64_t at[] = {T0, T0 + H, T0 + 2 * H};
  double g[] = {200, 200, 200};
  const double want[] = {195.90939990003687, 195.41673118136262,
                         198.91224350533975};
  cs_sim_trace *t;
  ck_assert_int_eq(cs_sim_trace_from("DE", at, g, 3, H, &t), CS_OK);
  cs_sim_forecast_params fp = {
      .noise = CS_SIM_NOISE_GAUSS, .sigma_rel = 0.1, .seed = 1};
  cs_provider *p;
  ck_assert_int_eq(cs_sim_forecast_new(&t, 1, &fp, &p), CS_OK);
  for (size_t i = 0; i < 3; i++)
    ck_assert_msg(fabs(cs_sim_forecast_value(p, 0, i) - want[i]) < 1e-9,
                  "row %zu: %.17g, expected %.17g", i,
                  cs_sim_forecast_value(p, 0, i), want[i]);
  cs_provider_free(p);
  cs_sim_trace_free(t);
}
END_TEST

/* Reads what is waiting on a descriptor (non-blocking), NUL-terminated. */
static size_t drain(int fd, char *buf, size_t cap)
{
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = '\0';
  return n;
}

/* The bar is drawn on a terminal, and only there. */
START_TEST(test_sim_report_progress_tty_only)
{
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ck_assert_msg(master >= 0, "no pseudo-terminal (/dev/ptmx): %s",
                strerror(errno));
  ck_assert_int_eq(grantpt(master), 0);
  ck_assert_int_eq(unlockpt(master), 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  ck_assert_int_ge(slave, 0);
  fcntl(master, F_SETFL, O_NONBLOCK);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(slave, STDERR_FILENO);
  cs_sim_report_progress("oracle", 50, 100);
  cs_sim_report_progress_done();
  fflush(stderr);
  char buf[512];
  usleep(20000);
  drain(master, buf, sizeof(buf));
  /* A regular file is no terminal: nothing. */
  FILE *f = tmpfile();
  dup2(fileno(f), STDERR_FILENO);
  cs_sim_report_progress("oracle", 50, 100);
  cs_sim_report_progress_done();
  fflush(stderr);
  long written = ftell(f);
  dup2(saved, STDERR_FILENO);
  close(saved);
  fclose(f);
  close(slave);
  close(master);
  ck_assert_msg(strstr(buf, "oracle") &&
                    strstr(buf, "[####################"
                                "                    ]  50%"),
                "on a terminal: \"%s\"", buf);
  ck_assert_ptr_nonnull(strstr(buf, "\033[K")); /* and cleared at the end */
  ck_assert_int_eq(written, 0);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("sim");
  TCase *t = tcase_create("core");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, test_sim_engine_run_oracle_brute_force);
  tcase_add_test(t, test_sim_max_delay_zero_may_not_wait);
  tcase_add_test(t, test_sim_report_tally_keeps_latest_end_over_runs);
  tcase_add_test(t, test_sim_engine_run_agnostic_at_submission);
  tcase_add_test(t, test_sim_engine_run_agnostic_waits_for_gpus);
  tcase_add_test(t, test_sim_bound_solve_below_every_policy);
  tcase_add_test(t, test_sim_engine_run_deterministic_under_seed);
  tcase_add_test(t, test_sim_forecast_parse_forms);
  tcase_add_test(t, test_sim_engine_run_matches_service);
  tcase_add_test(t, test_sim_bound_solve_closed_form_matches_glpk);
  tcase_add_test(t, test_sim_report_row_by_hand);
  tcase_add_test(t, test_sim_report_jobs_csv_lines);
  tcase_add_test(t, test_sim_report_jobs_csv_quotes_line_breaks);
  tcase_add_test(t, test_sim_report_row_not_started);
  tcase_add_test(t, test_sim_forecast_new_noise_statistics);
  tcase_add_test(t, test_sim_forecast_new_noise_same_across_versions);
  tcase_add_test(t, test_sim_report_progress_tty_only);
  suite_add_tcase(s, t);
  return s;
}

int main(void)
{
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_ENV);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
