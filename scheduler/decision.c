#include "scheduler/decision.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/signals.h"
#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "scheduler/codec.h"
#include "scheduler/node_cache.h"
#include "scheduler/pod_facts.h"
#include "scheduler/score.h"

/* Requests above this many nodes are refused: the largest supported
 * Kubernetes cluster has 5,000 nodes. */
#define MAX_NODES 100000
#define NO_PROBLEMS UINT32_MAX

struct cs_decider {
  cs_decider_deps deps;
};

const char *cs_verb_name(cs_verb v)
{
  return v == CS_VERB_FILTER ? "filter" : "prioritize";
}

/* The grid signal of one zone, looked up once per request. */
typedef struct zone_signal {
  char zone[CS_ZONE_MAX];
  bool found;
  cs_signal sig;
  bool forecast_tried; /* the forecast is fetched once, when first needed */
  bool has_forecast;
  cs_series forecast;
} zone_signal;

/* What one call keeps of each node: compact, since a call may carry
 * thousands of nodes; the full facts are read into a single scratch struct
 * and condensed here. */
typedef struct node_eval {
  const cs_gpu_model *gpu;
  double gpus;
  double pue;
  int64_t installed_at;
  int zone; /* index into the call's zone table, -1 none */
  cs_zone_source zone_source;
  cs_pue_source pue_source;
  bool facts_known;  /* false: no facts at all (not in the cache) */
  uint32_t problems; /* offset into the call's problem text */
  cs_estimate est;
} node_eval;

/* Everything one call computes, for the reply and the decision line. */
typedef struct call {
  cs_decider *d;
  cs_verb verb;
  const char *request_id;
  int64_t now;
  cs_wire_request req;
  size_t req_nnodes; /* kept after the request is freed */
  cs_pod_facts pod;
  bool neutral; /* the pod is not ours to rank */
  const char *neutral_why;
  node_eval *nodes;
  int *scores;
  zone_signal *zones;
  size_t nzones, zones_cap;
  cs_buf problems; /* NUL-separated problem texts */
  /* Filter only: */
  cs_verdict *verdicts;
  char **reasons; /* owned, per node; NULL for passing nodes */
  bool planned;   /* the planner ran */
  cs_plan plan;
  int64_t latest_start;
  const char *outcome;
} call;

static const double latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

cs_decider *cs_decider_new(const cs_decider_deps *deps)
{
  cs_decider *d = cs_calloc(1, sizeof(*d));
  d->deps = *deps;
  cs_metrics *m = deps->metrics;
  if (m) {
    cs_err rc =
        cs_metrics_declare(m, "carbonshift_decisions_total", CS_METRIC_COUNTER,
                           "Extender calls decided, by verb and outcome.",
                           "verb,outcome", NULL, 0);
    rc |= cs_metrics_declare(
        m, "carbonshift_decision_duration_seconds", CS_METRIC_HISTOGRAM,
        "Time to decide one extender call, decoding included.", "verb",
        latency_buckets, sizeof(latency_buckets) / sizeof(*latency_buckets));
    rc |= cs_metrics_declare(
        m, "carbonshift_zone_intensity_gco2_per_kwh", CS_METRIC_GAUGE,
        "Grid carbon intensity used in the latest decision, by zone.",
        "zone,provider,signal", NULL, 0);
    rc |= cs_metrics_declare(m, "carbonshift_build_info", CS_METRIC_GAUGE,
                             "Build information.", "version", NULL, 0);
    if (rc)
      cs_log_error("Could not declare decision metrics", cs_strerror(rc));
    const char *version[] = {CS_VERSION};
    cs_metrics_set(m, "carbonshift_build_info", version, 1);
  }
  return d;
}

void cs_decider_free(cs_decider *d)
{
  free(d);
}

static uint32_t add_problems(call *c, const char *text)
{
  if (!text[0])
    return NO_PROBLEMS;
  uint32_t off = (uint32_t)c->problems.len;
  cs_buf_append(&c->problems, text, strlen(text) + 1);
  return cs_buf_error(&c->problems) ? NO_PROBLEMS : off;
}

static const char *problems_at(const call *c, uint32_t off)
{
  return off == NO_PROBLEMS ? NULL : c->problems.data + off;
}

/* The index of the zone's signal in the call's table, looking it up on
 * first use. */
static int zone_index(call *c, const char *zone)
{
  if (!zone[0])
    return -1;
  for (size_t i = 0; i < c->nzones; i++)
    if (strcmp(c->zones[i].zone, zone) == 0)
      return (int)i;
  if (c->nzones == c->zones_cap) {
    c->zones_cap = c->zones_cap ? c->zones_cap * 2 : 8;
    c->zones = cs_realloc(c->zones, c->zones_cap * sizeof(*c->zones));
  }
  zone_signal *z = &c->zones[c->nzones];
  memset(z, 0, sizeof(*z));
  snprintf(z->zone, sizeof(z->zone), "%s", zone);
  z->found = cs_signals_current(c->d->deps.signals, zone, NULL, c->now,
                                &z->sig) == CS_OK;
  return (int)c->nzones++;
}

static void evaluate_node(call *c, size_t i, cs_node_facts *f)
{
  const cs_wire_node *w = &c->req.nodes[i];
  node_eval *e = &c->nodes[i];
  memset(e, 0, sizeof(*e));
  e->zone = -1;
  e->problems = NO_PROBLEMS;
  bool have = false;
  if (!c->req.names_only) {
    have = cs_node_facts_read(c->d->deps.facts, w->metadata, w->allocatable,
                              f) == CS_OK;
  } else if (c->d->deps.nodes) {
    have = cs_node_cache_get(c->d->deps.nodes, w->name, f);
    if (!have)
      e->problems = add_problems(c, "node not in the node cache");
  } else {
    e->problems = add_problems(c, "names-only request and no node cache "
                                  "configured: node facts unknown");
  }
  if (!have) {
    e->est.unknown = "node facts";
    return;
  }
  e->facts_known = true;
  e->gpu = f->gpu;
  e->gpus = f->gpus;
  e->pue = f->pue;
  e->pue_source = f->pue_source;
  e->installed_at = f->installed_at;
  e->zone_source = f->zone_source;
  e->zone = zone_index(c, f->zone);
  e->problems = add_problems(c, f->problems);
  if (c->neutral) {
    e->est.unknown = c->neutral_why;
    return;
  }
  double intensity = e->zone >= 0 && c->zones[e->zone].found
                         ? c->zones[e->zone].sig.g_per_kwh
                         : -1;
  cs_estimate_job(c->d->deps.estimate, &c->pod, f, intensity, c->now, &e->est);
  if (!e->est.known && e->zone < 0)
    e->est.unknown = "grid zone";
}

/* ---- /filter: malformed annotations, budgets and waiting ---------------- */

static const cs_series *zone_forecast(call *c, int zone)
{
  if (zone < 0)
    return NULL;
  zone_signal *z = &c->zones[zone];
  if (!z->forecast_tried) {
    z->forecast_tried = true;
    int64_t horizon = c->d->deps.forecast_horizon_s > 0
                          ? c->d->deps.forecast_horizon_s
                          : 72 * 3600;
    /* From an hour back, so the step in force now is included. */
    z->has_forecast =
        cs_signals_forecast(c->d->deps.signals, z->zone, NULL, c->now - 3600,
                            c->now + horizon, &z->forecast) == CS_OK;
  }
  return z->has_forecast ? &z->forecast : NULL;
}

/* "2026-11-23T02:00Z": minutes are the precision anyone acts on. */
static void minute_time(int64_t t, char out[static 21])
{
  char full[21];
  cs_format_rfc3339(t, full);
  snprintf(out, 21, "%.16sZ", full);
}

static void fail_all(call *c, const char *reason)
{
  for (size_t i = 0; i < c->req.nnodes; i++) {
    c->verdicts[i] = CS_FAIL_UNRESOLVABLE;
    free(c->reasons[i]);
    c->reasons[i] = cs_strdup(reason);
  }
}

static void emit(call *c, const char *type, const char *reason,
                 const char *note)
{
  const cs_decision_sink *s = c->d->deps.sink;
  if (s && s->event)
    s->event(s->ctx, &c->pod, type, reason, note);
}

static const char *zone_name(const call *c, size_t node)
{
  int z = c->nodes[node].zone;
  return z >= 0 ? c->zones[z].zone : "?";
}

/* The latest start of the job on one node: the pod's max-delay after its
 * creation, and early enough to meet its deadline with this node's
 * runtime. No slack annotation: it must start now. */
static int64_t latest_start(const call *c, const node_eval *e)
{
  int64_t latest = INT64_MAX;
  if (c->pod.max_delay_s > 0) {
    int64_t created = c->pod.created_at ? c->pod.created_at : c->now;
    latest = created + (int64_t)c->pod.max_delay_s;
  }
  if (c->pod.deadline > 0) {
    int64_t by = c->pod.deadline - (int64_t)ceil(e->est.runtime_s);
    latest = by < latest ? by : latest;
  }
  return latest == INT64_MAX ? c->now : latest;
}

static void defer(call *c, size_t *opt_node)
{
  char start[21], latest[21], msg[384];
  const cs_plan *p = &c->plan;
  minute_time(p->start, start);
  minute_time(c->latest_start, latest);
  const char *zs = zone_name(c, opt_node[p->option]);
  const char *zn = zone_name(c, opt_node[p->now_option]);
  char now_part[96];
  if (isnan(p->now_g))
    snprintf(now_part, sizeof(now_part), "no estimate now");
  else if (strcmp(zs, zn) == 0)
    snprintf(now_part, sizeof(now_part), "%.0f now", p->now_intensity);
  else
    snprintf(now_part, sizeof(now_part), "%.0f now in %s", p->now_intensity,
             zn);
  if (p->fits_now)
    snprintf(msg, sizeof(msg),
             "carbonshift: waiting for a greener window: planned start %s "
             "(forecast %.0f gCO2/kWh vs %s in %s), latest start %s",
             start, p->start_intensity, now_part, zs, latest);
  else
    snprintf(msg, sizeof(msg),
             "carbonshift: waiting for a window within the carbon budget of "
             "%.3g kg: planned start %s (estimate %.3g kg in %s, %.3g kg "
             "now), latest start %s",
             c->pod.budget_g / 1000, start, p->start_g / 1000, zs,
             p->now_g / 1000, latest);
  fail_all(c, msg);
  c->outcome = "deferred";
  emit(c, "Normal", "CarbonDeferred", msg);

  const cs_decision_sink *s = c->d->deps.sink;
  if (s && s->annotate && p->start != c->pod.planned_start) {
    char when[21], saving[48];
    cs_format_rfc3339(p->start, when);
    if (isnan(p->now_g))
      snprintf(saving, sizeof(saving), "unknown");
    else
      snprintf(saving, sizeof(saving), "%.0fg", p->now_g - p->start_g);
    const char *keys[] = {CS_ANN_PLANNED_START, CS_ANN_EXPECTED_SAVING};
    const char *values[] = {when, saving};
    s->annotate(s->ctx, &c->pod, keys, values, 2);
  }
}

/* Fails the nodes whose estimate now is over the budget, with the numbers;
 * returns how many fit. Nodes without an estimate cannot be judged and
 * pass (missing data is neutral). */
static size_t filter_budget(call *c)
{
  size_t fit = 0;
  for (size_t i = 0; i < c->req.nnodes; i++) {
    const cs_estimate *e = &c->nodes[i].est;
    if (!e->known || c->pod.budget_g <= 0 || e->total_g <= c->pod.budget_g) {
      fit++;
      continue;
    }
    c->verdicts[i] = CS_FAIL_UNRESOLVABLE;
    c->reasons[i] = cs_asprintf(
        "carbonshift: estimate %.3g kg > budget %.3g kg (%s at %.0f "
        "gCO2/kWh)",
        e->total_g / 1000, c->pod.budget_g / 1000, zone_name(c, i),
        e->intensity);
  }
  return fit;
}

/* The node with the lowest estimate; SIZE_MAX when none is known. */
static size_t lowest_node(const call *c)
{
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < c->req.nnodes; i++)
    if (c->nodes[i].est.known &&
        (best == SIZE_MAX ||
         c->nodes[i].est.total_g < c->nodes[best].est.total_g))
      best = i;
  return best;
}

static void placed(call *c)
{
  size_t best = lowest_node(c), eligible = 0;
  if (best == SIZE_MAX)
    return;
  for (size_t i = 0; i < c->req.nnodes; i++)
    eligible += c->verdicts[i] == CS_PASS;
  char note[512];
  snprintf(note, sizeof(note),
           "carbonshift: %zu of %zu nodes eligible; lowest estimate %.3g kg "
           "on %s (%s)",
           eligible, c->req.nnodes,
           c->nodes[best].est.total_g / 1000, c->req.nodes[best].name,
           zone_name(c, best));
  emit(c, "Normal", "CarbonPlaced", note);
}

static void decide_filter(call *c)
{
  size_t n = c->req.nnodes;
  c->verdicts = cs_calloc(n + 1, sizeof(*c->verdicts));
  c->reasons = cs_calloc(n + 1, sizeof(*c->reasons));
  c->outcome = "passed";

  if (c->pod.problems[0] && !c->pod.skip) {
    char msg[CS_PROBLEMS_MAX + 64];
    snprintf(msg, sizeof(msg), "carbonshift: %s", c->pod.problems);
    fail_all(c, msg);
    c->outcome = "invalidAnnotation";
    emit(c, "Warning", "CarbonInvalidAnnotation", msg);
    return;
  }
  if (c->neutral || !n)
    return;

  /* The planner's options: every node with an estimate now. */
  cs_plan_option *opts = cs_calloc(n, sizeof(*opts));
  size_t *opt_node = cs_calloc(n, sizeof(*opt_node));
  size_t nopts = 0;
  bool slack = false;
  c->latest_start = c->now;
  for (size_t i = 0; i < n; i++) {
    const node_eval *e = &c->nodes[i];
    if (!e->est.known)
      continue;
    cs_plan_option *o = &opts[nopts];
    o->forecast = zone_forecast(c, e->zone);
    o->current = e->est.intensity;
    o->energy_kwh = e->est.energy_kwh;
    o->embodied_g = e->est.embodied_g;
    o->runtime_s = (int64_t)ceil(e->est.runtime_s);
    o->latest_start = latest_start(c, e);
    o->budget_g = c->pod.budget_g;
    if (o->latest_start > c->now)
      slack = true;
    if (o->latest_start > c->latest_start)
      c->latest_start = o->latest_start;
    opt_node[nopts++] = i;
  }

  size_t fit = filter_budget(c);
  bool over = fit == 0;
  if (nopts && (slack || over)) {
    c->planned = cs_plan_window(&c->d->deps.plan, opts, nopts, c->now,
                                c->pod.planned_start, &c->plan) == CS_OK;
    if (c->planned && c->plan.wait &&
        (!over || c->pod.on_exceeded == CS_ON_EXCEEDED_WAIT)) {
      defer(c, opt_node);
      goto out;
    }
  }

  if (!over) {
    placed(c);
    goto out;
  }
  /* No node fits the budget now, and waiting does not help or is not
   * wanted. */
  size_t best = lowest_node(c);
  if (c->pod.on_exceeded == CS_ON_EXCEEDED_ALLOW && best != SIZE_MAX) {
    char note[512];
    snprintf(note, sizeof(note),
             "carbonshift: over budget (estimate %.3g kg > %.3g kg); "
             "allowed on the lowest-emission node %s only "
             "(on-budget-exceeded: allow)",
             c->nodes[best].est.total_g / 1000, c->pod.budget_g / 1000,
             c->req.nodes[best].name);
    for (size_t i = 0; i < n; i++) {
      if (i == best) {
        c->verdicts[i] = CS_PASS;
        free(c->reasons[i]);
        c->reasons[i] = NULL;
      } else if (c->verdicts[i] == CS_PASS) {
        c->verdicts[i] = CS_FAIL_UNRESOLVABLE;
        c->reasons[i] = cs_strdup(note);
      }
    }
    c->outcome = "allowedOverBudget";
    emit(c, "Warning", "CarbonBudgetExceeded", note);
    goto out;
  }
  char note[384];
  snprintf(note, sizeof(note),
           "carbonshift: no node fits the carbon budget of %.3g kg "
           "(lowest estimate %.3g kg on %s)%s",
           c->pod.budget_g / 1000,
           best != SIZE_MAX ? c->nodes[best].est.total_g / 1000 : 0.0,
           best != SIZE_MAX ? c->req.nodes[best].name : "?",
           c->pod.on_exceeded == CS_ON_EXCEEDED_REJECT
               ? "; on-budget-exceeded: reject"
               : "; no window within the slack fits either");
  c->outcome = "overBudget";
  emit(c, "Warning", "CarbonBudgetExceeded", note);
out:
  free(opts);
  free(opt_node);
}

static void log_intensity(cs_buf *l, const call *c, int zone)
{
  if (zone < 0 || !c->zones[zone].found) {
    cs_json_null(l, "intensity");
    return;
  }
  const cs_signal *s = &c->zones[zone].sig;
  cs_json_open(l, "intensity", '{');
  cs_json_num(l, "value", s->g_per_kwh, 1);
  cs_json_str(l, "provider", s->provider);
  cs_json_str(l, "signal", cs_signal_type_name(s->type));
  cs_json_int(l, "ageSeconds", c->now - s->observed_at);
  cs_json_bool(l, "estimated", s->estimated);
  cs_json_close(l, '}');
}

static void log_node(cs_buf *l, const call *c, size_t i)
{
  const node_eval *e = &c->nodes[i];
  cs_json_open(l, NULL, '{');
  cs_json_str(l, "node", c->req.nodes[i].name);
  if (e->facts_known) {
    cs_json_str(l, "zone", e->zone >= 0 ? c->zones[e->zone].zone : NULL);
    cs_json_str(l, "zoneSource", cs_zone_source_name(e->zone_source));
    cs_json_str(l, "gpu", e->gpu ? e->gpu->name : NULL);
    cs_json_num(l, "gpus", e->gpus, 0);
    cs_json_num(l, "pue", e->pue, 2);
    if (e->installed_at > 0)
      cs_json_num(l, "ageYears",
                  (double)(c->now - e->installed_at) / (365.0 * 86400), 1);
    log_intensity(l, c, e->zone);
  }
  if (e->est.known) {
    cs_json_open(l, "estimate", '{');
    cs_json_num(l, "runtimeHours", e->est.runtime_s / 3600.0, 2);
    cs_json_num(l, "energyKwh", e->est.energy_kwh, 1);
    cs_json_num(l, "operationalKg", e->est.operational_g / 1000.0, 3);
    cs_json_num(l, "embodiedKg", e->est.embodied_g / 1000.0, 3);
    cs_json_num(l, "totalKg", e->est.total_g / 1000.0, 3);
    cs_json_close(l, '}');
  } else {
    cs_json_str(l, "unknown", e->est.unknown);
  }
  if (c->verb == CS_VERB_PRIORITIZE)
    cs_json_int(l, "score", c->scores[i]);
  else if (c->verdicts && c->verdicts[i] != CS_PASS)
    cs_json_str(l, "rejected", c->reasons[i]);
  const char *p = problems_at(c, e->problems);
  if (p)
    cs_json_str(l, "problems", p);
  cs_json_close(l, '}');
}

static void log_decision(const call *c, const char *outcome, double seconds)
{
  cs_buf *l = cs_log_begin(0, "Decision");
  if (!l)
    return;
  cs_json_str(l, "requestId", c->request_id);
  cs_json_str(l, "verb", cs_verb_name(c->verb));
  cs_json_str(l, "outcome", outcome);
  cs_json_open(l, "pod", '{');
  cs_json_str(l, "namespace", c->pod.ns);
  cs_json_str(l, "name", c->pod.name);
  cs_json_str(l, "uid", c->pod.uid);
  cs_json_close(l, '}');
  cs_json_num(l, "gpus", c->pod.gpus, 0);
  cs_json_num(l, "durationHours", c->pod.duration_s / 3600.0, 2);
  if (c->pod.duration_defaulted)
    cs_json_str(l, "durationSource",
                "default: no valid "
                "carbonshift.io/expected-duration");
  if (c->neutral)
    cs_json_str(l, "neutral", c->neutral_why);
  if (c->pod.problems[0])
    cs_json_str(l, "podProblems", c->pod.problems);
  cs_json_str(l, "mode", c->req.names_only ? "names" : "nodes");
  if (c->planned) {
    char t[21];
    cs_json_open(l, "plan", '{');
    cs_json_bool(l, "wait", c->plan.wait);
    cs_format_rfc3339(c->plan.start, t);
    cs_json_str(l, "plannedStart", t);
    cs_format_rfc3339(c->latest_start, t);
    cs_json_str(l, "latestStart", t);
    cs_json_num(l, "nowKg", c->plan.now_g / 1000, 3);
    cs_json_num(l, "plannedKg", c->plan.start_g / 1000, 3);
    cs_json_bool(l, "kept", c->plan.kept);
    cs_json_bool(l, "forecastShort", c->plan.forecast_short);
    cs_json_close(l, '}');
  }
  if (c->pod.budget_g > 0)
    cs_json_num(l, "budgetKg", c->pod.budget_g / 1000, 3);
  cs_json_open(l, "nodes", '[');
  for (size_t i = 0; i < c->req.nnodes; i++)
    log_node(l, c, i);
  cs_json_close(l, ']');
  cs_json_num(l, "durationMs", seconds * 1000.0, 3);
  cs_log_end(l);
}

static void reply_error(cs_reply *out, int status, const char *msg)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_codec_write_error(&b, msg);
  out->status = status;
  out->body = cs_buf_release(&b, &out->len);
}

void cs_decider_handle(cs_decider *d, cs_verb verb, const char *body,
                       size_t len, const char *request_id, cs_reply *out)
{
  uint64_t t0 = cs_clock_mono_ns();
  const char *verb_label[] = {cs_verb_name(verb), NULL};
  call c = {
      .d = d, .verb = verb, .request_id = request_id, .now = cs_clock_now()};
  cs_buf_init(&c.problems, 16u << 20);
  char err[256];
  const char *outcome;

  if (cs_codec_decode(body, len, MAX_NODES, &c.req, err, sizeof(err))) {
    reply_error(out, 400, err);
    cs_buf *l = cs_log_begin(0, "Request rejected");
    cs_json_str(l, "requestId", request_id);
    cs_json_str(l, "verb", cs_verb_name(verb));
    cs_json_str(l, "err", err);
    cs_log_end(l);
    outcome = "badRequest";
    goto out;
  }

  /* The pod was decoded as an object, so reading its facts cannot fail. */
  if (cs_pod_facts_read(c.req.pod, d->deps.estimate->default_duration_s,
                        &c.pod) != CS_OK)
    c.pod.gpus = 0;
  if (c.pod.skip) {
    c.neutral = true;
    c.neutral_why = "pod opted out (carbonshift.io/skip)";
  } else if (!(c.pod.gpus > 0)) {
    c.neutral = true;
    c.neutral_why = "pod requests no accelerator";
  }

  c.req_nnodes = c.req.nnodes;
  c.nodes = cs_calloc(c.req.nnodes, sizeof(*c.nodes));
  c.scores = cs_calloc(c.req.nnodes, sizeof(*c.scores));
  cs_node_facts *scratch = cs_malloc(sizeof(*scratch));
  for (size_t i = 0; i < c.req.nnodes; i++)
    evaluate_node(&c, i, scratch);
  free(scratch);

  cs_buf reply;
  cs_buf_init(&reply, 0);
  if (verb == CS_VERB_PRIORITIZE) {
    cs_estimate *est = cs_malloc(c.req.nnodes * sizeof(*est) + 1);
    bool any_known = false;
    for (size_t i = 0; i < c.req.nnodes; i++) {
      est[i] = c.nodes[i].est;
      any_known |= est[i].known;
    }
    cs_score_nodes(est, c.req.nnodes, c.neutral, c.scores);
    free(est);
    cs_codec_write_priorities(&reply, &c.req, c.scores);
    outcome = any_known ? "ranked" : "neutral";
  } else {
    decide_filter(&c);
    cs_codec_write_filter(&reply, &c.req, c.verdicts,
                          (const char *const *)c.reasons);
    outcome = c.outcome;
  }
  if (cs_buf_error(&reply)) {
    cs_log_error("Reply encoding failed", cs_strerror(cs_buf_error(&reply)));
    cs_buf_free(&reply);
    reply_error(out, 500, "carbonshift could not encode its reply");
    outcome = "internalError";
  } else {
    out->status = 200;
    out->body = cs_buf_release(&reply, &out->len);
  }

  for (size_t z = 0; z < c.nzones && d->deps.metrics; z++) {
    if (!c.zones[z].found)
      continue;
    const char *labels[] = {c.zones[z].zone, c.zones[z].sig.provider,
                            cs_signal_type_name(c.zones[z].sig.type)};
    cs_metrics_set(d->deps.metrics, "carbonshift_zone_intensity_gco2_per_kwh",
                   labels, c.zones[z].sig.g_per_kwh);
  }
  log_decision(&c, outcome, (double)(cs_clock_mono_ns() - t0) / 1e9);

out:
  if (d->deps.metrics) {
    const char *labels[] = {cs_verb_name(verb), outcome};
    cs_metrics_add(d->deps.metrics, "carbonshift_decisions_total", labels, 1);
    cs_metrics_observe(d->deps.metrics, "carbonshift_decision_duration_seconds",
                       verb_label, (double)(cs_clock_mono_ns() - t0) / 1e9);
  }
  cs_codec_request_free(&c.req);
  free(c.nodes);
  free(c.scores);
  for (size_t z = 0; z < c.nzones; z++)
    cs_series_free(&c.zones[z].forecast);
  free(c.zones);
  for (size_t i = 0; c.reasons && i < c.req_nnodes; i++)
    free(c.reasons[i]);
  free(c.reasons);
  free(c.verdicts);
  cs_buf_free(&c.problems);
}

bool cs_decider_ready(cs_decider *d, cs_buf *detail)
{
  cs_json_open(detail, NULL, '{');
  cs_json_raw(detail, "signals", "", 0);
  bool ok = cs_signals_status(d->deps.signals, cs_clock_now(), detail);
  if (d->deps.nodes) {
    bool synced = cs_node_cache_synced(d->deps.nodes);
    cs_json_open(detail, "nodeCache", '{');
    cs_json_bool(detail, "synced", synced);
    cs_json_int(detail, "nodes", (int64_t)cs_node_cache_size(d->deps.nodes));
    cs_json_close(detail, '}');
    ok = ok && synced;
  }
  cs_json_bool(detail, "ready", ok);
  cs_json_close(detail, '}');
  return ok;
}
