#include "scheduler/policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/signals.h"
#include "carbon/util/alloc.h"
#include "carbon/util/parse.h"
#include "scheduler/score.h"

/* How long after its planned start a pod is still judged as starting
 * then: kube-scheduler tries a pending pod again within about 5.5 minutes
 * (podMaxInUnschedulablePodsDuration, flushed every 30 s), and a budget
 * window can be only minutes wide, so judged at the moment of the try the
 * pod that waited for it could miss it by grams and stay pending. */
#define PLANNED_START_GRACE_S (10 * 60)
_Static_assert(PLANNED_START_GRACE_S <= CS_SIGNALS_FORECAST_BACK_S,
               "the forecast asked for must reach back to a planned start");

/* The instant "starting now" is judged at: for a pod with a budget, its
 * planned start when that came within PLANNED_START_GRACE_S, else now. */
static int64_t judged_now(const cs_pod_facts *pod, int64_t now)
{
  int64_t ps = pod->planned_start;
  return pod->budget_g > 0 && ps > 0 && ps <= now &&
                 now - ps <= PLANNED_START_GRACE_S
             ? ps
             : now;
}

void cs_policy_begin(cs_policy_call *c, const cs_policy_params *p,
                     const cs_pod_facts *pod, size_t nnodes, int64_t now)
{
  memset(c, 0, sizeof(*c));
  c->p = p;
  c->pod = pod;
  c->now = now;
  c->at = judged_now(pod, now);
  c->n = nnodes;
  c->nodes = cs_calloc(nnodes + 1, sizeof(*c->nodes));
  c->outcome = "passed";
  if (pod->skip) {
    c->neutral = true;
    c->neutral_why = "pod opted out (carbonshift.io/skip)";
  } else if (!(pod->gpus > 0)) {
    c->neutral = true;
    /* Said apart, so that a GPU job on DRA is not taken for a CPU job. */
    c->neutral_why = pod->resource_claims > 0
                         ? "pod requests no accelerator as a resource; its "
                           "spec.resourceClaims (Dynamic Resource Allocation) "
                           "are not read"
                         : "pod requests no accelerator";
  }
}

void cs_policy_end(cs_policy_call *c)
{
  for (size_t i = 0; i < c->n; i++)
    free(c->nodes[i].reason);
  free(c->nodes);
  for (size_t z = 0; z < c->nzones; z++) {
    cs_series_free(&c->zones[z].forecast);
    cs_series_free(&c->zones[z].forecast_now);
  }
  free(c->zones);
  memset(c, 0, sizeof(*c));
}

cs_intensity_basis cs_policy_basis(const cs_node_eval *e)
{
  if (e->forecast_s <= 0)
    return CS_BASIS_CURRENT;
  return e->forecast_s >= (int64_t)ceil(e->est.runtime_s)
             ? CS_BASIS_FORECAST_RUN
             : CS_BASIS_FORECAST_PART;
}

const char *cs_policy_zone_of(const cs_policy_call *c, size_t i)
{
  int z = c->nodes[i].zone;
  return z >= 0 ? c->zones[z].zone : NULL;
}

/* The index of the zone in the call's table, looking its data up on first
 * use: a call with thousands of nodes asks once per zone. The current
 * value and the forecast come from one provider (cs_signals_zone_data),
 * from CS_SIGNALS_FORECAST_BACK_S back, to cover a planned start; judged
 * at a planned start, also as judged at now (cs_zone_eval.found_now). */
static int zone_index(cs_policy_call *c, const char *zone)
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
  cs_zone_eval *z = &c->zones[c->nzones];
  memset(z, 0, sizeof(*z));
  snprintf(z->zone, sizeof(z->zone), "%s", zone);
  int64_t horizon =
      c->p->forecast_horizon_s > 0 ? c->p->forecast_horizon_s : 72 * 3600;
  int64_t from = c->now - CS_SIGNALS_FORECAST_BACK_S, to = c->now + horizon;
  if (cs_signals_zone_data(c->p->signals, zone, c->now, c->at, from, to,
                           &z->sig, &z->found, &z->forecast,
                           &z->has_forecast) != CS_OK)
    z->found = z->has_forecast = false;
  if (c->at != c->now &&
      cs_signals_zone_data(c->p->signals, zone, c->now, c->now, from, to,
                           &z->sig_now, &z->found_now, &z->forecast_now,
                           &z->has_forecast_now) != CS_OK)
    z->found_now = z->has_forecast_now = false;
  return (int)c->nzones++;
}

/* Judged at now after all (settle_at): the zone's data as now takes it
 * replaces that of the planned start. The means are dropped with it. */
static void zone_judge_at_now(cs_zone_eval *z)
{
  cs_series_free(&z->forecast);
  z->found = z->found_now;
  z->sig = z->sig_now;
  z->has_forecast = z->has_forecast_now;
  z->forecast = z->forecast_now;
  memset(&z->forecast_now, 0, sizeof(z->forecast_now));
  z->found_now = z->has_forecast_now = false;
  z->nmeans = 0;
}

static const cs_series *zone_forecast(const cs_policy_call *c, int zone)
{
  return zone >= 0 && c->zones[zone].has_forecast ? &c->zones[zone].forecast
                                                  : NULL;
}

/* The zone's current intensity, or -1 when it has none. */
static double zone_current(const cs_policy_call *c, int zone)
{
  return zone >= 0 && c->zones[zone].found ? c->zones[zone].sig.g_per_kwh : -1;
}

/* The intensity of a run of `runtime_s` in the zone starting at `from`, as
 * the planner takes "starting now" (cs_plan_intensity_now), taken once per
 * zone, instant and run length; false when the zone has neither a forecast
 * nor a current value. */
static bool run_intensity(cs_policy_call *c, int zone, int64_t from,
                          int64_t runtime_s, double *mean, int64_t *forecast_s)
{
  if (zone < 0)
    return false;
  cs_zone_eval *z = &c->zones[zone];
  for (size_t k = 0; k < z->nmeans; k++)
    if (z->means[k].runtime_s == runtime_s && z->means[k].from == from) {
      *mean = z->means[k].mean;
      *forecast_s = z->means[k].forecast_s;
      return z->means[k].ok;
    }
  cs_run_mean m = {.from = from, .runtime_s = runtime_s};
  /* A run from now, while the call is judged at a planned start: from the
   * data as now takes it (est_now). */
  bool as_now = c->at != c->now && from == c->now;
  const cs_series *f = as_now ? (z->has_forecast_now ? &z->forecast_now : NULL)
                              : zone_forecast(c, zone);
  double current = as_now ? (z->found_now ? z->sig_now.g_per_kwh : -1)
                          : zone_current(c, zone);
  m.ok = cs_plan_intensity_now(f, current, from, runtime_s, &m.mean,
                               &m.forecast_s);
  if (z->nmeans < CS_RUN_MEANS_MAX)
    z->means[z->nmeans++] = m;
  *mean = m.mean;
  *forecast_s = m.forecast_s;
  return m.ok;
}

void cs_policy_add_node(cs_policy_call *c, size_t i, const cs_node_facts *f)
{
  cs_node_eval *e = &c->nodes[i];
  memset(e, 0, sizeof(*e));
  e->zone = -1;
  if (!f) {
    e->est.unknown = e->est_now.unknown = "node facts";
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
  if (c->neutral) {
    e->est.unknown = e->est_now.unknown = c->neutral_why;
    return;
  }
  /* The run starting now as the planner judges it (cs_plan_intensity_now),
   * over a run length in whole seconds, as the planner's. */
  cs_estimate_job(c->p->estimate, c->pod, f, -1, c->now, &e->est);
  if (c->at != c->now)
    e->est_now = e->est;
  int64_t runtime_s = (int64_t)ceil(e->est.runtime_s);
  double mean;
  if (e->est.sized &&
      run_intensity(c, e->zone, c->at, runtime_s, &mean, &e->forecast_s))
    cs_estimate_set_intensity(&e->est, mean);
  if (c->at != c->now && e->est_now.sized &&
      run_intensity(c, e->zone, c->now, runtime_s, &mean, &e->forecast_s_now))
    cs_estimate_set_intensity(&e->est_now, mean);
  if (!e->est.known && e->zone < 0)
    e->est.unknown = e->est_now.unknown = "grid zone";
}

/* Whether the job can still finish on node e by the pod's deadline. */
static bool finishes_in_time(const cs_policy_call *c, const cs_node_eval *e)
{
  return c->pod->deadline - (int64_t)ceil(e->est.runtime_s) >= c->now;
}

/* Whether the pod has a deadline that no node whose runtime is known can
 * meet any more (and some such node). */
static bool deadline_unreachable(const cs_policy_call *c)
{
  if (c->pod->deadline <= 0)
    return false;
  bool sized = false;
  for (size_t i = 0; i < c->n; i++) {
    const cs_node_eval *e = &c->nodes[i];
    if (!e->est.sized)
      continue;
    if (finishes_in_time(c, e))
      return false;
    sized = true;
  }
  return sized;
}

/* The grace after a planned start (judged_now) is there to keep a window
 * the pod waited for: it holds while some node the deadline does not
 * filter fits the budget at the planned start. When none does (a newer forecast
 * moved the window, say), the pod is judged at now like any other, so that it
 * is never held on a start already passed while starting now would fit. Run
 * once, before the estimates are read. */
static void settle_at(cs_policy_call *c)
{
  if (c->at_settled)
    return;
  c->at_settled = true;
  if (c->at == c->now)
    return;
  /* A node too late for the deadline is filtered whatever it emits, while
   * some node can still meet it; once none can, none is filtered for it
   * (drop_late_nodes), so each counts. */
  bool lost = deadline_unreachable(c);
  for (size_t i = 0; i < c->n; i++) {
    const cs_node_eval *e = &c->nodes[i];
    bool late = !lost && c->pod->deadline > 0 && e->est.sized &&
                !finishes_in_time(c, e);
    if (e->est.known && !late && e->est.total_g <= c->pod->budget_g)
      return;
  }
  for (size_t i = 0; i < c->n; i++) {
    cs_node_eval *e = &c->nodes[i];
    e->est = e->est_now;
    e->forecast_s = e->forecast_s_now;
  }
  for (size_t z = 0; z < c->nzones; z++)
    zone_judge_at_now(&c->zones[z]);
  c->at = c->now;
}

bool cs_policy_prioritize(cs_policy_call *c)
{
  settle_at(c);
  double *values = cs_malloc((c->n + 1) * sizeof(*values));
  int *scores = cs_malloc((c->n + 1) * sizeof(*scores));
  /* Once the job is late wherever it runs, its owner wants it finished
   * soonest: nodes are ranked by their runtime, not their emissions (the
   * filter's CarbonDeadlineUnreachable says so). */
  c->deadline_lost = deadline_unreachable(c);
  c->by_finish = !c->neutral && c->deadline_lost;
  bool any = false;
  for (size_t i = 0; i < c->n; i++) {
    const cs_estimate *e = &c->nodes[i].est;
    bool has = !c->neutral && (c->by_finish ? e->sized : e->known);
    values[i] = has ? (c->by_finish ? e->runtime_s : e->total_g) : NAN;
    any |= has;
  }
  cs_score_lowest(values, c->n, scores);
  for (size_t i = 0; i < c->n; i++)
    c->nodes[i].score = scores[i];
  free(values);
  free(scores);
  c->outcome = !any ? "neutral" : c->by_finish ? "rankedByFinish" : "ranked";
  return any;
}

/* ---- filter: malformed annotations, budgets and waiting ----------------- */

/* "2026-11-23T02:00Z": minutes are the precision anyone acts on. */
static void minute_time(int64_t t, char out[static 21])
{
  char full[21];
  cs_format_rfc3339(t, full);
  snprintf(out, 21, "%.16sZ", full);
}

/* A mass in kg for a message: three significant figures or more, in
 * plain notation ("0.475", "5.12", "23.4", "1470"), trailing zeros dropped.
 * `extra` adds decimals. */
static void kg_text(double g, int extra, char out[static 32])
{
  double kg = g / 1000;
  double mag = fabs(kg);
  int decimals = mag >= 100 ? 0 : mag >= 10 ? 1 : mag >= 1 ? 2 : 3;
  if (mag > 0 && mag < 0.1) /* 0.0004 kg, not 0 */
    decimals = 2 - (int)floor(log10(mag));
  decimals = (decimals > 9 ? 9 : decimals) + extra;
  snprintf(out, 32, "%.*f", decimals, kg);
  char *dot = strchr(out, '.');
  if (dot) {
    char *end = out + strlen(out);
    while (end > dot + 1 && end[-1] == '0')
      *--end = '\0';
    if (end == dot + 1)
      *dot = '\0';
  }
}

/* The decimals to add so that two masses compared in one message
 * ("estimate A kg > budget B kg") no longer read alike: at most 9, down to
 * micrograms for a mass over 100 kg, so that an estimate a few grams or
 * milligrams over a round budget does not read as equal to it. */
static int kg_extra(double a, double b)
{
  char ta[32], tb[32];
  int extra = 0;
  for (; extra < 9; extra++) {
    kg_text(a, extra, ta);
    kg_text(b, extra, tb);
    if (strcmp(ta, tb) != 0)
      break;
  }
  return extra;
}

static void kg_pair(double a, double b, char ta[static 32], char tb[static 32])
{
  int extra = kg_extra(a, b);
  kg_text(a, extra, ta);
  kg_text(b, extra, tb);
}

static const char *zone_name(const cs_policy_call *c, size_t node)
{
  const char *z = cs_policy_zone_of(c, node);
  return z ? z : "?";
}

static void set_event(cs_policy_call *c, const char *type, const char *reason,
                      const char *note)
{
  c->event.type = type;
  c->event.reason = reason;
  snprintf(c->event.note, sizeof(c->event.note), "%s", note);
}

static void fail_all(cs_policy_call *c, const char *reason)
{
  for (size_t i = 0; i < c->n; i++) {
    c->nodes[i].verdict = CS_FAIL_UNRESOLVABLE;
    free(c->nodes[i].reason);
    c->nodes[i].reason = cs_strdup(reason);
  }
}

/* The latest start of the job on one node: the pod's max-delay after its
 * creation, and early enough to meet its deadline with this node's runtime.
 * Without either annotation it must start now. A max-delay without a
 * creation time to count from is an annotation problem (pod_facts.c), so
 * never gets here; if it did, it would give no slack: counted from each
 * call, it would never run out. A creation time ahead of our clock (the API
 * server's clock is ahead, or the request was made by hand) counts from now,
 * so that no plan reaches further than the max-delay from the call making
 * it; once our clock passes the creation time, it counts from there. */
static int64_t latest_start(const cs_policy_call *c, const cs_node_eval *e)
{
  int64_t latest = INT64_MAX;
  if (c->pod->max_delay_s > 0) {
    int64_t from = c->pod->created_at < c->now ? c->pod->created_at : c->now;
    latest = c->pod->created_at ? from + (int64_t)c->pod->max_delay_s : c->now;
  }
  if (c->pod->deadline > 0) {
    int64_t by = c->pod->deadline - (int64_t)ceil(e->est.runtime_s);
    latest = by < latest ? by : latest;
  }
  return latest == INT64_MAX ? c->now : latest;
}

static void defer(cs_policy_call *c, const size_t *opt_node)
{
  char start[21], latest[21], msg[512], now_part[160];
  const cs_plan *p = &c->plan;
  minute_time(p->start, start);
  minute_time(c->latest_start, latest);
  const char *zs = zone_name(c, opt_node[p->option]);
  const char *zn = zone_name(c, opt_node[p->now_option]);
  /* "(forecast 50 gCO2/kWh vs 138 now in DE)", or with two zones
   * "(forecast 50 gCO2/kWh in NO vs 200 now in DE)". */
  if (isnan(p->now_g))
    snprintf(now_part, sizeof(now_part), "in %s, no estimate now", zs);
  else if (strcmp(zs, zn) == 0)
    snprintf(now_part, sizeof(now_part), "vs %.0f now in %s", p->now_intensity,
             zs);
  else
    snprintf(now_part, sizeof(now_part), "in %s vs %.0f now in %s", zs,
             p->now_intensity, zn);
  if (p->fits_now) {
    snprintf(msg, sizeof(msg),
             "carbonshift: waiting for a greener window: planned start %s "
             "(forecast %.0f gCO2/kWh %s), latest start %s",
             start, p->start_intensity, now_part, latest);
  } else {
    /* One budget text, with the decimals both comparisons need. */
    char budget[32], at_start[32], now_kg[32] = "unknown";
    int extra = kg_extra(p->start_g, c->pod->budget_g);
    if (!isnan(p->now_g)) {
      int e = kg_extra(p->now_g, c->pod->budget_g);
      extra = e > extra ? e : extra;
      kg_text(p->now_g, extra, now_kg);
    }
    kg_text(p->start_g, extra, at_start);
    kg_text(c->pod->budget_g, extra, budget);
    snprintf(msg, sizeof(msg),
             "carbonshift: waiting for a window within the carbon budget of "
             "%s kg: planned start %s (estimate %s kg in %s, %s kg now), "
             "latest start %s",
             budget, start, at_start, zs, now_kg, latest);
  }
  if (c->pod->duration_defaulted) {
    char assumed[32];
    size_t n = strlen(msg);
    cs_format_duration(c->pod->duration_s, assumed);
    snprintf(msg + n, sizeof(msg) - n,
             "; runtime assumed: %s (no " CS_ANN_DURATION ")", assumed);
  }
  fail_all(c, msg);
  c->outcome = "deferred";
  set_event(c, "Normal", "CarbonDeferred", msg);
  /* A nominated pod is stored every time: its cycle calls /filter over the
   * nominated node alone, then over every node, and the second call's plan
   * must be the one left on the pod, though it equals the stored one and
   * the first call's does not (patches go out in order). */
  if (p->start != c->pod->planned_start || c->pod->nominated_node[0]) {
    c->store_plan = true;
    cs_format_rfc3339(p->start, c->planned_start);
    if (isnan(p->now_g))
      snprintf(c->expected_saving, sizeof(c->expected_saving), "unknown");
    else
      snprintf(c->expected_saving, sizeof(c->expected_saving), "%.0fg",
               p->now_g - p->start_g);
  }
}

/* Fails the nodes whose run starting now is over the budget, with the
 * numbers; returns how many fit. The estimate is the planner's "starting
 * now" (see cs_node_eval), so that a node fits here exactly when it fits now
 * in the plan. Nodes without an estimate (no option) cannot be judged and
 * pass: missing data is neutral. */
static size_t filter_budget(cs_policy_call *c, const size_t *opt_node,
                            size_t nopts)
{
  size_t fit = 0;
  for (size_t i = 0; i < c->n; i++) /* unknown: neutral, unless late */
    fit += !c->nodes[i].est.known && !c->nodes[i].late;
  for (size_t k = 0; k < nopts; k++) {
    cs_node_eval *e = &c->nodes[opt_node[k]];
    if (c->pod->budget_g <= 0 || e->est.total_g <= c->pod->budget_g) {
      fit++;
      continue;
    }
    char est[32], budget[32], basis[64];
    kg_pair(e->est.total_g, c->pod->budget_g, est, budget);
    cs_intensity_basis b = cs_policy_basis(e);
    if (b == CS_BASIS_FORECAST_PART && e->forecast_s >= 3600)
      snprintf(basis, sizeof(basis),
               " forecast over the first %.0f h of the run",
               floor((double)e->forecast_s / 3600));
    else if (b == CS_BASIS_FORECAST_PART) /* a hole within the hour */
      snprintf(basis, sizeof(basis),
               " forecast over the first %.0f min of the run",
               ceil((double)e->forecast_s / 60)); /* never "0 min" */
    else
      snprintf(basis, sizeof(basis), "%s",
               b == CS_BASIS_FORECAST_RUN ? " forecast over the run" : " now");
    e->verdict = CS_FAIL_UNRESOLVABLE;
    e->reason = cs_asprintf(
        "carbonshift: estimate %s kg > budget %s kg (%s%s%.0f gCO2/kWh%s)", est,
        budget, zone_name(c, opt_node[k]),
        b == CS_BASIS_CURRENT ? " at " : ", ", e->est.intensity, basis);
  }
  return fit;
}

/* The node with the lowest estimate, among the eligible ones only when
 * `eligible`, and never one that cannot meet the deadline (which `allow`
 * would otherwise let through); SIZE_MAX when none is known. */
static size_t lowest_node(const cs_policy_call *c, bool eligible)
{
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < c->n; i++)
    if (c->nodes[i].est.known && !c->nodes[i].late &&
        (!eligible || c->nodes[i].verdict == CS_PASS) &&
        (best == SIZE_MAX ||
         c->nodes[i].est.total_g < c->nodes[best].est.total_g))
      best = i;
  return best;
}

static void placed(cs_policy_call *c, const char *const *names)
{
  /* The soonest end among the nodes passed: what prioritize ranks first
   * when the deadline is lost. */
  size_t best = lowest_node(c, true), eligible = 0, soonest = SIZE_MAX;
  for (size_t i = 0; i < c->n; i++) {
    const cs_node_eval *e = &c->nodes[i];
    if (e->verdict != CS_PASS)
      continue;
    eligible++;
    if (e->est.sized && (soonest == SIZE_MAX ||
                         e->est.runtime_s < c->nodes[soonest].est.runtime_s))
      soonest = i;
  }
  if (best == SIZE_MAX && !c->deadline_lost)
    return;
  char note[sizeof(c->event.note)], lowest[32];
  int n;
  if (best != SIZE_MAX) {
    kg_text(c->nodes[best].est.total_g, 0, lowest);
    n = snprintf(note, sizeof(note),
                 "carbonshift: %zu of %zu nodes eligible; lowest estimate %s "
                 "kg on %s (%s)",
                 eligible, c->n, lowest, names[best], zone_name(c, best));
  } else {
    n = snprintf(note, sizeof(note),
                 "carbonshift: %zu of %zu nodes eligible, none with an "
                 "emission estimate",
                 eligible, c->n);
  }
  if (!c->deadline_lost) {
    set_event(c, "Normal", "CarbonPlaced", note);
    return;
  }
  /* The pod runs, late wherever it runs: its owner should know, and on
   * which node it would end soonest. */
  char deadline[21], ends[21];
  minute_time(c->pod->deadline, deadline);
  if (soonest == SIZE_MAX) {
    snprintf(note + n, sizeof(note) - (size_t)n,
             "; no node can finish by the deadline %s", deadline);
  } else {
    const cs_estimate *f = &c->nodes[soonest].est;
    minute_time(c->now + (int64_t)ceil(f->runtime_s), ends);
    snprintf(note + n, sizeof(note) - (size_t)n,
             "; no node can finish by the deadline %s: nodes are ranked by "
             "when the run ends, soonest %s on %s (%.1f h)",
             deadline, ends, names[soonest], f->runtime_s / 3600);
  }
  set_event(c, "Warning", "CarbonDeadlineUnreachable", note);
}

/* Why a pod over its budget does not wait: for the end of the message. */
static void no_window_text(const cs_policy_call *c, char *out, size_t cap)
{
  const cs_pod_facts *pod = c->pod;
  int64_t margin = c->p->wait_margin_s;
  char latest[21];
  minute_time(c->latest_start, latest);
  if (pod->on_exceeded == CS_ON_EXCEEDED_REJECT)
    snprintf(out, cap, "; on-budget-exceeded: reject");
  else if (c->deadline_lost) {
    char deadline[21];
    minute_time(pod->deadline, deadline);
    snprintf(out, cap, "; no node can finish by the deadline %s", deadline);
  } else if (!(pod->max_delay_s > 0) && pod->deadline <= 0)
    snprintf(out, cap, "; no max-delay or deadline, so no window to wait for");
  else if (c->latest_start <= c->now)
    snprintf(out, cap, "; its slack ended at %s", latest);
  else if (c->latest_start - margin <= c->now)
    /* Waits end `margin` before the latest start (docs/time-shifting.md,
     * Timing), so none was searched for. */
    snprintf(out, cap,
             "; its slack ends at %s, too soon to wait for (a retry may take "
             "%lld min)",
             latest, (long long)(margin / 60));
  else if (c->planned && c->plan.forecast_short)
    snprintf(out, cap,
             "; no forecast covers a run starting within the slack (until "
             "%s)",
             latest);
  else if (margin > 0) {
    char until[21];
    minute_time(c->latest_start - margin, until);
    snprintf(out, cap,
             "; no window within the slack fits either (starts until %s, "
             "%lld min before the latest start %s, so that a retry reaches "
             "them)",
             until, (long long)(margin / 60), latest);
  } else
    snprintf(out, cap, "; no window within the slack (until %s) fits either",
             latest);
}

/* The node `allow` lets a pod over its budget run on: the lowest-emission
 * one, or with the deadline lost everywhere, the one whose run ends
 * soonest (as prioritize ranks them); SIZE_MAX when none is known. */
static size_t allowed_node(const cs_policy_call *c)
{
  if (!c->deadline_lost)
    return lowest_node(c, false);
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < c->n; i++) {
    const cs_estimate *e = &c->nodes[i].est;
    if (!e->known)
      continue;
    const cs_estimate *b = best == SIZE_MAX ? NULL : &c->nodes[best].est;
    if (!b || e->runtime_s < b->runtime_s ||
        (e->runtime_s == b->runtime_s && e->total_g < b->total_g))
      best = i;
  }
  return best;
}

static void over_budget(cs_policy_call *c, const char *const *names)
{
  size_t best = c->pod->on_exceeded == CS_ON_EXCEEDED_ALLOW
                    ? allowed_node(c)
                    : lowest_node(c, false);
  char note[sizeof(c->event.note)], lowest[32] = "?", budget[32];
  if (best != SIZE_MAX)
    kg_pair(c->nodes[best].est.total_g, c->pod->budget_g, lowest, budget);
  else
    kg_text(c->pod->budget_g, 0, budget);
  if (c->pod->on_exceeded == CS_ON_EXCEEDED_ALLOW && best != SIZE_MAX) {
    char deadline[21];
    minute_time(c->pod->deadline, deadline);
    if (c->deadline_lost)
      snprintf(note, sizeof(note),
               "carbonshift: over budget (estimate %s kg > %s kg); no node "
               "can finish by the deadline %s: allowed on %s only, whose run "
               "ends soonest (%.1f h; on-budget-exceeded: allow)",
               lowest, budget, deadline, names[best],
               c->nodes[best].est.runtime_s / 3600);
    else
      snprintf(note, sizeof(note),
               "carbonshift: over budget (estimate %s kg > %s kg); allowed "
               "on the lowest-emission node %s only (on-budget-exceeded: "
               "allow)",
               lowest, budget, names[best]);
    for (size_t i = 0; i < c->n; i++) {
      cs_node_eval *e = &c->nodes[i];
      if (i == best) {
        e->verdict = CS_PASS;
        free(e->reason);
        e->reason = NULL;
      } else if (e->verdict == CS_PASS) {
        e->verdict = CS_FAIL_UNRESOLVABLE;
        e->reason = cs_strdup(note);
      }
    }
    c->outcome = "allowedOverBudget";
    set_event(c, "Warning", "CarbonBudgetExceeded", note);
    return;
  }
  char why[256];
  no_window_text(c, why, sizeof(why));
  snprintf(note, sizeof(note),
           "carbonshift: no node fits the carbon budget of %s kg (lowest "
           "estimate %s kg on %s)%s",
           budget, lowest, best != SIZE_MAX ? names[best] : "?", why);
  c->outcome = "overBudget";
  set_event(c, "Warning", "CarbonBudgetExceeded", note);
}

/* With a deadline, the nodes on which the job can no longer finish by it
 * (of all whose runtime is known, with a carbon estimate or not), when
 * another node still can: filtered with the reason and left out of the
 * plan, so that a pod that waited for one node is not placed on a slower
 * one too late. When no node can make it, all stay (c->deadline_lost):
 * the job runs as soon as it can. Returns how many options are left. */
static size_t drop_late_nodes(cs_policy_call *c, cs_plan_option *opts,
                              size_t *opt_node, size_t nopts)
{
  c->deadline_lost = deadline_unreachable(c);
  if (c->pod->deadline <= 0 || c->deadline_lost)
    return nopts;
  char deadline[21];
  minute_time(c->pod->deadline, deadline);
  for (size_t i = 0; i < c->n; i++) {
    cs_node_eval *e = &c->nodes[i];
    if (!e->est.sized || finishes_in_time(c, e))
      continue;
    e->late = true;
    e->verdict = CS_FAIL_UNRESOLVABLE;
    e->reason = cs_asprintf("carbonshift: the job cannot finish here by its "
                            "deadline %s (%.1f h on this node)",
                            deadline, ceil(e->est.runtime_s) / 3600);
  }
  size_t kept = 0;
  for (size_t k = 0; k < nopts; k++)
    if (!c->nodes[opt_node[k]].late) {
      opts[kept] = opts[k];
      opt_node[kept++] = opt_node[k];
    }
  return kept;
}

void cs_policy_preempt(cs_policy_call *c, const char *const *names)
{
  cs_policy_filter(c, names);
  /* A pod with a deadline no node can meet runs as soon as it can (the
   * filter warns); it is not held to a plan made for faster nodes. */
  if (c->neutral || c->deadline_lost || strcmp(c->outcome, "passed") != 0 ||
      c->pod->planned_start <= c->now)
    return;
  for (size_t i = 0; i < c->n; i++)
    if (c->nodes[i].est.known)
      return; /* judged on data: the filter's answer stands */
  char start[21], msg[160];
  minute_time(c->pod->planned_start, start);
  snprintf(
      msg, sizeof(msg),
      "carbonshift: waiting for its planned start %s (" CS_ANN_PLANNED_START
      "); no candidate node has the carbon data to judge another start by",
      start);
  fail_all(c, msg);
  c->outcome = "deferred";
  set_event(c, "Normal", "CarbonDeferred", msg);
}

void cs_policy_filter(cs_policy_call *c, const char *const *names)
{
  settle_at(c);
  size_t n = c->n;
  /* Annotation problems hold a pod that is judged, so that its owner sees
   * them; one that is not (skip, no accelerator) passes whatever they say,
   * and the Decision line still lists them (podProblems). */
  if (c->pod->problems[0] && !c->neutral) {
    char msg[CS_PROBLEMS_MAX + 64];
    snprintf(msg, sizeof(msg), "carbonshift: %s", c->pod->problems);
    fail_all(c, msg);
    c->outcome = "invalidAnnotation";
    set_event(c, "Warning", "CarbonInvalidAnnotation", msg);
    return;
  }
  if (c->neutral || !n)
    return;

  /* The planner's options: every node with an estimate now. */
  cs_plan_option *opts = cs_calloc(n, sizeof(*opts));
  size_t *opt_node = cs_calloc(n, sizeof(*opt_node));
  size_t nopts = 0;
  bool slack = false;
  c->latest_start = INT64_MIN;
  for (size_t i = 0; i < n; i++) {
    const cs_node_eval *e = &c->nodes[i];
    if (!e->est.known)
      continue;
    cs_plan_option *o = &opts[nopts];
    o->forecast = zone_forecast(c, e->zone);
    o->current = zone_current(c, e->zone);
    o->energy_kwh = e->est.energy_kwh;
    o->embodied_g = e->est.embodied_g;
    o->runtime_s = (int64_t)ceil(e->est.runtime_s);
    int64_t latest = latest_start(c, e);
    if (latest > c->latest_start)
      c->latest_start = latest; /* the messages say the real one */
    o->latest_start = latest - c->p->wait_margin_s; /* the latest wait */
    o->budget_g = c->pod->budget_g;
    slack |= o->latest_start > c->now;
    opt_node[nopts++] = i;
  }
  if (!nopts)
    c->latest_start = c->now;

  nopts = drop_late_nodes(c, opts, opt_node, nopts);
  bool over = filter_budget(c, opt_node, nopts) == 0;
  if (nopts && (slack || over)) {
    c->planned = cs_plan_window_at(&c->p->plan, opts, nopts, c->at, c->now,
                                   c->pod->planned_start, &c->plan) == CS_OK;
    /* Over budget now, a pod waits for a window within it unless told to
     * reject: `allow` is for when no such window exists, not a reason to
     * emit more than waiting would. */
    if (c->planned && c->plan.wait &&
        (!over || c->pod->on_exceeded != CS_ON_EXCEEDED_REJECT)) {
      defer(c, opt_node);
      goto out;
    }
  }
  if (over)
    over_budget(c, names);
  else
    placed(c, names);
out:
  free(opts);
  free(opt_node);
}
