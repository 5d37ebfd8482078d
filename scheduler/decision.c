#include "scheduler/decision.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/signals.h"
#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/hash.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "scheduler/codec.h"
#include "scheduler/decision_memo.h"
#include "scheduler/node_cache.h"
#include "scheduler/plan_memo.h"
#include "scheduler/policy.h"

/* Requests above this many nodes are refused: the largest supported
 * Kubernetes cluster has 5,000 nodes. */
#define MAX_NODES 100000
#define NO_PROBLEMS UINT32_MAX
/* Pod-and-verb pairs whose last full Decision line is remembered: more
 * than wait at once in most clusters; beyond it, the stalest get full
 * lines again. */
#define MEMO_PODS 4096

struct cs_decider {
  cs_decider_deps deps;
  cs_policy_params policy;
  cs_decision_memo *memo; /* NULL: every line in full */
  cs_plan_memo *plans;    /* /filter's latest deferrals, for /preempt */
};

const char *cs_verb_name(cs_verb v)
{
  switch (v) {
  case CS_VERB_FILTER:
    return "filter";
  case CS_VERB_PRIORITIZE:
    break;
  case CS_VERB_PREEMPT:
    return "preempt";
  }
  return "prioritize";
}

/* One extender call: the decoded request, the policy's evaluation, and the
 * problems found in node facts (kept as NUL-separated text so thousands of
 * nodes cost one buffer, not thousands of fixed arrays). */
typedef struct call {
  cs_decider *d;
  cs_verb verb;
  const char *request_id;
  cs_wire_request req;
  cs_wire_preemption pre; /* preempt: each node's proposed victims */
  bool *keep;             /* preempt: the nodes left to preempt on */
  size_t kept;
  cs_pod_facts pod;
  cs_policy_call pc;
  uint32_t *problems; /* per node: offset into problem_text */
  cs_buf problem_text;
} call;

static const double latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

cs_decider *cs_decider_new(const cs_decider_deps *deps)
{
  cs_decider *d = cs_calloc(1, sizeof(*d));
  d->deps = *deps;
  d->policy = (cs_policy_params){.signals = deps->signals,
                                 .estimate = deps->estimate,
                                 .plan = deps->plan,
                                 .forecast_horizon_s = deps->forecast_horizon_s,
                                 .wait_margin_s = CS_POLICY_WAIT_MARGIN_S};
  if (deps->log_repeat_window_s > 0)
    d->memo = cs_decision_memo_new(MEMO_PODS, deps->log_repeat_window_s);
  d->plans = cs_plan_memo_new(MEMO_PODS);
  cs_metrics *m = deps->metrics;
  if (m) {
    cs_err rc =
        cs_metrics_declare(m, "carbonshift_decisions_total", CS_METRIC_COUNTER,
                           "Extender calls decided, by verb and outcome.",
                           "verb,outcome", NULL, 0);
    rc |= cs_metrics_declare(
        m, "carbonshift_decision_duration_seconds", CS_METRIC_HISTOGRAM,
        "Time to decide one extender call: decoding, deciding, encoding the "
        "reply and writing its log line; not the wait for body bytes or for "
        "a decision thread.",
        "verb", latency_buckets,
        sizeof(latency_buckets) / sizeof(*latency_buckets));
    rc |= cs_metrics_declare(
        m, "carbonshift_decision_repeats_total", CS_METRIC_COUNTER,
        "Decisions logged as a short line naming the pod's last full one "
        "(log.decisionRepeatSeconds), by verb.",
        "verb", NULL, 0);
    rc |= cs_metrics_declare(
        m, "carbonshift_zone_intensity_gco2_per_kwh", CS_METRIC_GAUGE,
        "Current grid carbon intensity of each zone at the latest "
        "decision (estimates use the forecast over the run when it covers it).",
        "zone,provider,signal", NULL, 0);
    if (rc)
      cs_log_error("Could not declare decision metrics", cs_strerror(rc));
  }
  return d;
}

void cs_decider_free(cs_decider *d)
{
  if (!d)
    return;
  cs_decision_memo_free(d->memo);
  cs_plan_memo_free(d->plans);
  free(d);
}

/* Whether the call names the pod's nominated node alone: kube-scheduler's
 * first try of a nominated pod, or, when no other node fits, also the
 * call over all nodes, which then looks the same. */
static bool nominated_only(const call *c)
{
  return c->req.nnodes == 1 && c->pod.nominated_node[0] &&
         strcmp(c->req.nodes[0].name, c->pod.nominated_node) == 0;
}

static uint32_t add_problems(call *c, const char *text)
{
  if (!text[0])
    return NO_PROBLEMS;
  uint32_t off = (uint32_t)c->problem_text.len;
  cs_buf_append(&c->problem_text, text, strlen(text) + 1);
  return cs_buf_error(&c->problem_text) ? NO_PROBLEMS : off;
}

/* Reads node i's facts (from the request, or in names-only mode `cached`,
 * from the node cache) and hands them to the policy. */
static void read_node(call *c, size_t i, const cs_node_facts *cached,
                      cs_node_facts *scratch)
{
  const cs_node_facts *f = scratch;
  bool have = false;
  c->problems[i] = NO_PROBLEMS;
  if (!c->req.names_only) {
    have = cs_node_facts_from_fields(c->d->deps.facts, &c->req.fields[i],
                                     scratch) == CS_OK;
  } else if (c->d->deps.nodes) {
    have = cached != NULL;
    if (have)
      f = cached;
    else
      c->problems[i] = add_problems(c, "node not in the node cache");
  } else {
    c->problems[i] = add_problems(c, "names-only request and no node cache "
                                     "configured: node facts unknown");
  }
  if (have)
    c->problems[i] = add_problems(c, f->problems);
  cs_policy_add_node(&c->pc, i, have ? f : NULL);
}

/* The intensity object of each zone, written once per call: every node of
 * the zone repeats it, and thousands of nodes share a few zones. */
typedef struct zone_text {
  cs_buf b;
  size_t *off, *len; /* per zone; len 0: no value (null) */
} zone_text;

/* A zone with neither a current value nor a forecast has no object (null).
 * One with only a forecast still names the provider its estimates came
 * from, with a null value: the current intensity is not known. */
static void zone_text_init(zone_text *z, const call *c)
{
  cs_buf_init(&z->b, 0);
  z->off = cs_calloc(c->pc.nzones + 1, sizeof(*z->off));
  z->len = cs_calloc(c->pc.nzones + 1, sizeof(*z->len));
  for (size_t i = 0; i < c->pc.nzones; i++) {
    const cs_zone_eval *ze = &c->pc.zones[i];
    if (!ze->found && !ze->has_forecast)
      continue;
    z->off[i] = z->b.len;
    cs_buf_putc(&z->b, '{'); /* not cs_json_open: no comma between zones */
    if (ze->found) {
      const cs_signal *s = &ze->sig;
      cs_json_num_sig(&z->b, "value", s->g_per_kwh, 1, 3);
      cs_json_str(&z->b, "provider", s->provider);
      cs_json_str(&z->b, "signal", cs_signal_type_name(s->type));
      cs_json_int(&z->b, "ageSeconds", c->pc.now - s->observed_at);
      cs_json_bool(&z->b, "estimated", s->estimated);
      if (s->factor != CS_FACTOR_UNSTATED)
        cs_json_str(&z->b, "factor", cs_factor_basis_name(s->factor));
    } else {
      const cs_series *f = &ze->forecast;
      cs_json_null(&z->b, "value");
      cs_json_str(&z->b, "provider", f->provider);
      cs_json_str(&z->b, "signal", cs_signal_type_name(f->type));
      cs_json_bool(&z->b, "forecastOnly", true);
      if (f->generated_at > 0)
        cs_json_int(&z->b, "forecastAgeSeconds", c->pc.now - f->generated_at);
      if (f->factor != CS_FACTOR_UNSTATED)
        cs_json_str(&z->b, "factor", cs_factor_basis_name(f->factor));
    }
    cs_json_close(&z->b, '}');
    z->len[i] = z->b.len - z->off[i];
  }
}

/* The basis of a zone's figures in this call: its current value's, else
 * its forecast's. */
static cs_factor_basis zone_factor(const cs_zone_eval *z)
{
  return z->found          ? z->sig.factor
         : z->has_forecast ? z->forecast.factor
                           : CS_FACTOR_UNSTATED;
}

/* When the call's zones are on both bases, "mixedEmissionFactors" lists
 * each basis' zones: their ranking then owes something to the basis, not
 * only to the grids (docs/carbon-providers.md). */
static void log_mixed_factors(cs_buf *l, const call *c)
{
  bool seen[3] = {false, false, false};
  for (size_t i = 0; i < c->pc.nzones; i++)
    seen[zone_factor(&c->pc.zones[i])] = true;
  if (!seen[CS_FACTOR_LIFECYCLE] || !seen[CS_FACTOR_DIRECT])
    return;
  cs_json_open(l, "mixedEmissionFactors", '{');
  const cs_factor_basis bases[] = {CS_FACTOR_LIFECYCLE, CS_FACTOR_DIRECT};
  for (size_t b = 0; b < 2; b++) {
    cs_json_open(l, cs_factor_basis_name(bases[b]), '[');
    for (size_t i = 0; i < c->pc.nzones; i++)
      if (zone_factor(&c->pc.zones[i]) == bases[b])
        cs_json_str(l, NULL, c->pc.zones[i].zone);
    cs_json_close(l, ']');
  }
  cs_json_close(l, '}');
}

static void zone_text_free(zone_text *z)
{
  cs_buf_free(&z->b);
  free(z->off);
  free(z->len);
}

static void log_intensity(cs_buf *l, const zone_text *z, int zone)
{
  if (zone < 0 || !z->len[zone] || cs_buf_error(&z->b)) {
    cs_json_null(l, "intensity");
    return;
  }
  cs_json_raw(l, "intensity", z->b.data + z->off[zone], z->len[zone]);
}

/* One entry of the Decision line: what log_entry prints for node i, less
 * its name. Nodes for which it is all the same share one entry, so the
 * line grows with the kinds of node in a call, not with every node. */
static bool same_entry(const call *c, size_t i, size_t j)
{
  const cs_node_eval *a = &c->pc.nodes[i], *b = &c->pc.nodes[j];
  if (a->facts_known != b->facts_known || a->est.known != b->est.known)
    return false;
  if (a->facts_known &&
      (a->zone != b->zone || a->zone_source != b->zone_source ||
       a->gpu != b->gpu || a->gpus != b->gpus || a->pue != b->pue ||
       a->installed_at != b->installed_at))
    return false;
  if (a->est.known ? a->forecast_s != b->forecast_s ||
                         a->est.intensity != b->est.intensity ||
                         a->est.runtime_s != b->est.runtime_s ||
                         a->est.energy_kwh != b->est.energy_kwh ||
                         a->est.operational_g != b->est.operational_g ||
                         a->est.embodied_g != b->est.embodied_g ||
                         a->est.total_g != b->est.total_g
                   : strcmp(a->est.unknown ? a->est.unknown : "",
                            b->est.unknown ? b->est.unknown : "") != 0)
    return false;
  if (c->verb == CS_VERB_PRIORITIZE
          ? a->score != b->score
          : a->verdict != b->verdict ||
                strcmp(a->reason ? a->reason : "", b->reason ? b->reason : ""))
    return false;
  if ((c->problems[i] == NO_PROBLEMS) != (c->problems[j] == NO_PROBLEMS))
    return false;
  return c->problems[i] == NO_PROBLEMS ||
         strcmp(c->problem_text.data + c->problems[i],
                c->problem_text.data + c->problems[j]) == 0;
}

/* A hash of the fields same_entry compares that are cheap to mix; equal
 * entries have equal hashes. FNV-1a a word at a time rather than a byte
 * (8 multiplications a node, not 64), with a shift after each so that the
 * high bits reach the low ones the table's mask keeps. */
static uint64_t entry_hash(const call *c, size_t i)
{
  const cs_node_eval *e = &c->pc.nodes[i];
  uint64_t h = CS_HASH_INIT, total = 0;
  if (e->est.known) /* the bits: same_entry compares totals exactly */
    memcpy(&total, &e->est.total_g, sizeof(total));
  /* Problems are hashed as present or not: equal texts sit at different
   * offsets of the call's problem buffer. */
  uint64_t parts[] = {(uint64_t)e->facts_known,
                      (uint64_t)(int64_t)e->zone,
                      (uint64_t)(uintptr_t)e->gpu,
                      (uint64_t)e->installed_at,
                      (uint64_t)e->score,
                      (uint64_t)e->verdict,
                      total,
                      c->problems[i] == NO_PROBLEMS};
  for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
    h ^= parts[k];
    h *= CS_HASH_PRIME;
    h ^= h >> 29;
  }
  return h;
}

/* The entries of a call: head[k] is the first node of entry k, in request
 * order, and next[i] the following node of i's entry (SIZE_MAX: none). */
typedef struct entries {
  size_t *head, *next, n;
} entries;

static void entries_build(entries *en, const call *c)
{
  size_t n = c->req.nnodes, cap = 16;
  while (cap < 2 * n)
    cap *= 2;
  size_t *slot = cs_malloc(cap * sizeof(*slot)); /* entry index + 1 */
  uint64_t *hash = cs_malloc(cap * sizeof(*hash));
  size_t *tail = cs_malloc((n ? n : 1) * sizeof(*tail));
  memset(slot, 0, cap * sizeof(*slot));
  en->head = cs_malloc((n ? n : 1) * sizeof(*en->head));
  en->next = cs_malloc((n ? n : 1) * sizeof(*en->next));
  en->n = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t h = entry_hash(c, i);
    size_t at = (size_t)h & (cap - 1);
    en->next[i] = SIZE_MAX;
    for (;; at = (at + 1) & (cap - 1)) {
      if (!slot[at]) { /* a new entry */
        slot[at] = en->n + 1;
        hash[at] = h;
        en->head[en->n] = tail[en->n] = i;
        en->n++;
        break;
      }
      size_t k = slot[at] - 1;
      if (hash[at] == h && same_entry(c, en->head[k], i)) {
        en->next[tail[k]] = i;
        tail[k] = i;
        break;
      }
    }
  }
  free(slot);
  free(hash);
  free(tail);
}

static void entries_free(entries *en)
{
  free(en->head);
  free(en->next);
}

static void log_entry(cs_buf *l, const call *c, const zone_text *z,
                      const entries *en, size_t k)
{
  size_t i = en->head[k];
  const cs_node_eval *e = &c->pc.nodes[i];
  size_t cap = c->d->deps.log_names_max, count = 0;
  cs_json_open(l, NULL, '{');
  cs_json_open(l, "names", '[');
  for (size_t j = i; j != SIZE_MAX; j = en->next[j], count++)
    if (!cap || count < cap)
      cs_json_strn(l, NULL, c->req.nodes[j].name, c->req.nodes[j].name_len);
  cs_json_close(l, ']');
  cs_json_int(l, "count", (int64_t)count);
  if (cap && count > cap)
    cs_json_int(l, "moreNames", (int64_t)(count - cap));
  if (e->facts_known) {
    cs_json_str(l, "zone", cs_policy_zone_of(&c->pc, i));
    cs_json_str(l, "zoneSource", cs_zone_source_name(e->zone_source));
    cs_json_str(l, "gpu", e->gpu ? e->gpu->name : NULL);
    cs_json_num(l, "gpus", e->gpus, 0);
    cs_json_num(l, "pue", e->pue, 2);
    if (e->installed_at > 0)
      cs_json_num(l, "ageYears",
                  (double)(c->pc.now - e->installed_at) / (365.0 * 86400), 1);
    log_intensity(l, z, e->zone);
  }
  if (e->est.known) {
    cs_json_open(l, "estimate", '{');
    /* Fixed decimals, and three significant digits for small figures: a
     * 10-minute job's energy and embodied share are not 0. */
    cs_json_num_sig(l, "runtimeHours", e->est.runtime_s / 3600.0, 2, 3);
    cs_json_num_sig(l, "energyKwh", e->est.energy_kwh, 1, 3);
    /* The intensity of the run starting now: its forecast mean, that of
     * the part the forecast covers, or the current value held. */
    static const char *const basis[] = {"current", "forecastPartOfRun",
                                        "forecastOverRun"};
    cs_intensity_basis b = cs_policy_basis(e);
    cs_json_num_sig(l, "gPerKwh", e->est.intensity, 1, 3);
    cs_json_str(l, "intensityBasis", basis[b]);
    if (b == CS_BASIS_FORECAST_PART)
      cs_json_num(l, "forecastHours", (double)e->forecast_s / 3600, 2);
    cs_json_num_sig(l, "operationalKg", e->est.operational_g / 1000.0, 3, 3);
    cs_json_num_sig(l, "embodiedKg", e->est.embodied_g / 1000.0, 3, 3);
    cs_json_num_sig(l, "totalKg", e->est.total_g / 1000.0, 3, 3);
    cs_json_close(l, '}');
  } else {
    cs_json_str(l, "unknown", e->est.unknown);
  }
  if (c->verb == CS_VERB_PRIORITIZE)
    cs_json_int(l, "score", e->score);
  else if (e->verdict != CS_PASS)
    cs_json_str(l, "rejected", e->reason);
  if (c->problems[i] != NO_PROBLEMS)
    cs_json_str(l, "problems", c->problem_text.data + c->problems[i]);
  cs_json_close(l, '}');
}

/* The plan as the filter used it. `wait` is what happened to the pod;
 * `advisedWait` what the planner found, which a pod with
 * on-budget-exceeded: reject does not follow when no node fits its budget
 * now. Without any start that fits
 * the budget there is no planned start and no planned figure (null), and
 * a latest start in the past says the slack has run out. */
static void log_plan(cs_buf *l, const cs_policy_call *pc)
{
  char t[21];
  const cs_plan *p = &pc->plan;
  cs_json_open(l, "plan", '{');
  cs_json_bool(l, "wait", strcmp(pc->outcome, "deferred") == 0);
  cs_json_bool(l, "advisedWait", p->wait);
  if (p->feasible) {
    cs_format_rfc3339(p->start, t);
    cs_json_str(l, "plannedStart", t);
  } else {
    cs_json_null(l, "plannedStart");
  }
  cs_format_rfc3339(pc->latest_start, t);
  cs_json_str(l, "latestStart", t);
  cs_json_num_sig(l, "nowKg", p->now_g / 1000, 3, 3);
  cs_json_num_sig(l, "plannedKg", p->feasible ? p->start_g / 1000 : NAN, 3, 3);
  cs_json_bool(l, "kept", p->kept);
  cs_json_bool(l, "forecastShort", p->forecast_short);
  cs_json_close(l, '}');
}

/* What a preempt call left kube-scheduler: the nodes it may still evict
 * pods on, of those it proposed, and how many victims they hold. */
static void log_preemption(cs_buf *l, const call *c)
{
  size_t victims = 0, empty = 0;
  for (size_t i = 0; i < c->req.nnodes; i++) {
    victims += c->keep[i] ? c->pre.victims[i].count : 0;
    empty += c->pre.victims[i].count == 0;
  }
  cs_json_open(l, "preemption", '{');
  cs_json_str(l, "victimsAs", c->pre.meta ? "uids" : "pods");
  cs_json_int(l, "candidates", (int64_t)c->req.nnodes);
  cs_json_int(l, "kept", (int64_t)c->kept);
  cs_json_int(l, "keptVictims", (int64_t)victims);
  if (empty)
    cs_json_int(l, "withoutVictims", (int64_t)empty);
  cs_json_close(l, '}');
}

/* What every Decision line opens with, full or repeated. */
static void log_head(cs_buf *l, const call *c)
{
  cs_json_str(l, "requestId", c->request_id);
  cs_json_str(l, "verb", cs_verb_name(c->verb));
  cs_json_str(l, "outcome", c->pc.outcome);
  cs_json_open(l, "pod", '{');
  cs_json_str(l, "namespace", c->pod.ns);
  cs_json_str(l, "name", c->pod.name);
  cs_json_str(l, "uid", c->pod.uid);
  cs_json_close(l, '}');
}

static void log_decision(const call *c, double seconds)
{
  cs_buf *l = cs_log_begin(0, "Decision");
  if (!l)
    return;
  log_head(l, c);
  cs_json_num(l, "gpus", c->pod.gpus, 0);
  cs_json_num(l, "durationHours", c->pod.duration_s / 3600.0, 2);
  if (c->pod.duration_defaulted)
    cs_json_str(l, "durationSource",
                "default: no valid carbonshift.io/expected-duration");
  if (c->pc.neutral)
    cs_json_str(l, "neutral", c->pc.neutral_why);
  if (c->pod.problems[0])
    cs_json_str(l, "podProblems", c->pod.problems);
  if (c->pod.budget_g > 0) {
    cs_json_num_sig(l, "budgetKg", c->pod.budget_g / 1000, 3, 3);
    cs_json_str(l, "onBudgetExceeded", cs_on_exceeded_name(c->pod.on_exceeded));
  }
  if (c->pod.max_delay_s > 0)
    cs_json_num(l, "maxDelayHours", c->pod.max_delay_s / 3600.0, 2);
  if (c->pod.deadline > 0) {
    char deadline[21];
    cs_format_rfc3339(c->pod.deadline, deadline);
    cs_json_str(l, "deadline", deadline);
  }
  cs_json_str(l, "mode", c->req.names_only ? "names" : "nodes");
  if (c->pc.planned)
    log_plan(l, &c->pc);
  if (c->verb == CS_VERB_PREEMPT)
    log_preemption(l, c);
  else if (c->pc.event.type)
    cs_json_str(l, "event", c->pc.event.reason);
  zone_text z;
  entries en;
  zone_text_init(&z, c);
  entries_build(&en, c);
  log_mixed_factors(l, c);
  cs_json_int(l, "nodeCount", (int64_t)c->req.nnodes);
  cs_json_open(l, "nodes", '[');
  for (size_t k = 0; k < en.n; k++)
    log_entry(l, c, &z, &en, k);
  cs_json_close(l, ']');
  entries_free(&en);
  zone_text_free(&z);
  cs_json_num(l, "durationMs", seconds * 1000.0, 3);
  cs_log_end(l);
}

/* ---- Repeated decisions ----
 * A waiting pod is asked about again on every cluster event. What decides
 * whether its Decision line is a repeat is a fingerprint of the decision:
 * the outcome, the plan's choice (waiting or not, a planned start when
 * waiting, the latest start), the event, and per node its name, what is
 * known of it (zone, GPU, PUE, age, the zone's provider and current
 * value) and its verdict with the reason given, or its score. The
 * estimates themselves are left out: a forecast's mean over a run that
 * starts a few seconds later differs by grams, and would make every line
 * a new one. Mixed a machine word at a time, as a 5,000-node call holds
 * hundreds of kilobytes of names and reasons. */

static uint64_t mix(uint64_t h, uint64_t w)
{
  h ^= w + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

static uint64_t mix_double(uint64_t h, double v)
{
  uint64_t w;
  memcpy(&w, &v, sizeof(w));
  return mix(h, w);
}

static uint64_t mix_bytes(uint64_t h, const char *s, size_t n)
{
  h = mix(h, n);
  for (; n >= 8; s += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = mix(h, w);
  }
  uint64_t tail = 0;
  memcpy(&tail, s, n);
  return mix(h, tail);
}

static uint64_t mix_str(uint64_t h, const char *s)
{
  return s ? mix_bytes(h, s, strlen(s)) : mix(h, UINT64_MAX);
}

static uint64_t fingerprint_zones(uint64_t h, const call *c)
{
  for (size_t i = 0; i < c->pc.nzones; i++) {
    const cs_zone_eval *z = &c->pc.zones[i];
    h = mix_str(h, z->zone);
    h = mix(h, (uint64_t)z->found << 1 | (uint64_t)z->has_forecast);
    if (z->found) {
      h = mix_double(h, z->sig.g_per_kwh);
      h = mix_str(h, z->sig.provider);
      h = mix(h, (uint64_t)z->sig.type << 8 | (uint64_t)z->sig.factor << 1 |
                     (uint64_t)z->sig.estimated);
    } else if (z->has_forecast) {
      h = mix_str(h, z->forecast.provider);
      h = mix(h, (uint64_t)z->forecast.type << 8 | z->forecast.factor);
    }
  }
  return h;
}

static uint64_t fingerprint_node(uint64_t h, const call *c, size_t i)
{
  const cs_node_eval *e = &c->pc.nodes[i];
  h = mix_bytes(h, c->req.nodes[i].name, c->req.nodes[i].name_len);
  h = mix(h, (uint64_t)e->facts_known << 2 | (uint64_t)e->est.known << 1 |
                 (uint64_t)(c->keep && c->keep[i]));
  h = mix(h, (uint64_t)(int64_t)e->zone << 8 | e->zone_source);
  h = mix(h, (uint64_t)e->verdict << 32 | (uint32_t)e->score);
  h = mix(h, (uint64_t)(uintptr_t)e->gpu);
  h = mix_double(h, e->gpus);
  h = mix_double(h, e->pue);
  h = mix(h, (uint64_t)e->installed_at);
  if (!e->est.known)
    h = mix_str(h, e->est.unknown);
  h = mix_str(h, e->reason);
  if (c->pre.victims)
    h = mix(h, c->pre.victims[i].count);
  return mix_str(h, c->problems[i] == NO_PROBLEMS
                        ? NULL
                        : c->problem_text.data + c->problems[i]);
}

static uint64_t fingerprint(const call *c)
{
  const cs_pod_facts *p = &c->pod;
  const cs_plan *plan = &c->pc.plan;
  uint64_t h = mix(0, c->verb);
  h = mix_str(h, c->pc.outcome);
  h = mix_str(h, c->pc.neutral ? c->pc.neutral_why : NULL);
  h = mix_str(h, p->problems);
  h = mix_double(h, p->gpus);
  h = mix_double(h, p->duration_s);
  h = mix_double(h, p->budget_g);
  h = mix(h, (uint64_t)p->on_exceeded << 1 | (uint64_t)p->duration_defaulted);
  h = mix_double(h, p->max_delay_s);
  h = mix(h, (uint64_t)p->deadline);
  h = mix(h, (uint64_t)c->req.names_only << 1 | (uint64_t)c->pre.meta);
  if (c->pc.planned) {
    h = mix(h, (uint64_t)plan->wait << 3 | (uint64_t)plan->feasible << 2 |
                   (uint64_t)plan->kept << 1 | (uint64_t)plan->forecast_short);
    h = mix(h, plan->wait ? (uint64_t)plan->start : 0); /* else: the call */
    /* Without max-delay or deadline the latest start is the call's time:
     * no part of the decision. */
    h = mix(h, p->max_delay_s > 0 || p->deadline > 0
                   ? (uint64_t)c->pc.latest_start
                   : 0);
  }
  h = mix_str(h, c->pc.event.type ? c->pc.event.reason : NULL);
  h = fingerprint_zones(h, c);
  h = mix(h, c->req.nnodes);
  for (size_t i = 0; i < c->req.nnodes; i++)
    h = fingerprint_node(h, c, i);
  return h;
}

/* The short line of a repeated decision: what it decided, and which
 * earlier line has the numbers behind it. */
static void log_repeat(const call *c, const cs_memo_same *same, double seconds)
{
  cs_buf *l = cs_log_begin(0, "Decision");
  if (!l)
    return;
  log_head(l, c);
  cs_json_str(l, "sameAs", same->request_id);
  cs_json_int(l, "repeats", (int64_t)same->repeats);
  cs_json_int(l, "sinceSeconds", c->pc.now - same->logged_at);
  cs_json_int(l, "nodeCount", (int64_t)c->req.nnodes);
  cs_json_num(l, "durationMs", seconds * 1000.0, 3);
  cs_log_end(l);
}

/* Logs the call's Decision line: in full, or, when the memo has the same
 * decision for the pod and verb from a full line less than the window
 * ago, as a short line that names it (which also spares the work of
 * writing every node's numbers again). */
static void log_call(const call *c, double seconds)
{
  if (c->d->memo) {
    /* By uid and name: a pod made again under its name is another pod. */
    char key[sizeof(c->pod.uid) + sizeof(c->pod.ns) + sizeof(c->pod.name) +
             32]; /* the separators, the verb and "/nominated" */
    cs_memo_same same;
    /* A nominated pod's cycle calls over its nominated node, then over
     * every node: each call has its own last decision. */
    snprintf(key, sizeof(key), "%s/%s/%s/%s%s", c->pod.uid, c->pod.ns,
             c->pod.name, cs_verb_name(c->verb),
             nominated_only(c) ? "/nominated" : "");
    if (cs_decision_memo_note(c->d->memo, key, fingerprint(c), c->request_id,
                              c->pc.now, &same)) {
      log_repeat(c, &same, seconds);
      if (c->d->deps.metrics) {
        const char *labels[] = {cs_verb_name(c->verb)};
        cs_metrics_add(c->d->deps.metrics, "carbonshift_decision_repeats_total",
                       labels, 1);
      }
      return;
    }
  }
  log_decision(c, seconds);
}

/* Hands the filter's event and plan to the sink, which queues them for the
 * API server. Prioritize has no side effects: the scheduler skips it when
 * only one node is feasible, so nothing may depend on it running. */
static void publish(const call *c)
{
  const cs_decision_sink *s = c->d->deps.sink;
  if (!s)
    return;
  if (c->pc.event.type && s->event)
    s->event(s->ctx, &c->pod, c->pc.event.type, c->pc.event.reason,
             c->pc.event.note);
  if (c->pc.store_plan && s->annotate) {
    const char *keys[] = {CS_ANN_PLANNED_START, CS_ANN_EXPECTED_SAVING};
    const char *values[] = {c->pc.planned_start, c->pc.expected_saving};
    s->annotate(s->ctx, &c->pod, keys, values, 2);
  }
}

/* A preempt call that takes nodes away from kube-scheduler says why on the
 * pod: where the filter was never asked (no node had room), this Event is
 * the only sign in the cluster that carbonshift held a pod that outranks
 * others. The note is the filter's own event note when it has one (the
 * wait, the budget), else the first declined node's reason. */
static void publish_preemption(const call *c)
{
  const cs_decision_sink *s = c->d->deps.sink;
  size_t declined = 0;
  for (size_t i = 0; i < c->req.nnodes; i++)
    declined += c->pc.nodes[i].verdict != CS_PASS;
  if (!s || !s->event || !declined)
    return;
  /* The filter's own note explains a decline only where it declined every
   * node: where it passed some, its note is CarbonPlaced's. */
  bool all = declined == c->req.nnodes && c->pc.event.type;
  const char *why = all ? c->pc.event.note : NULL;
  for (size_t i = 0; !why && i < c->req.nnodes; i++)
    if (c->pc.nodes[i].verdict != CS_PASS && c->pc.nodes[i].reason)
      why = c->pc.nodes[i].reason;
  char note[sizeof(c->pc.event.note) + 160];
  snprintf(note, sizeof(note),
           "carbonshift declined preemption on %zu of %zu candidate node%s, "
           "so no pod is evicted there for this one: %s",
           declined, c->req.nnodes, c->req.nnodes == 1 ? "" : "s",
           why ? why : "rejected by carbonshift");
  s->event(s->ctx, &c->pod, all ? c->pc.event.type : "Normal",
           "CarbonPreemptionDeclined", note);
}

static void record_metrics(const call *c)
{
  cs_metrics *m = c->d->deps.metrics;
  if (!m)
    return;
  /* One series per zone: the provider that served this decision replaces
   * an earlier one, and a zone now unknown (neutral) shows no number. */
  for (size_t z = 0; z < c->pc.nzones; z++) {
    const cs_zone_eval *ze = &c->pc.zones[z];
    const char *labels[] = {ze->zone, ze->found ? ze->sig.provider : "",
                            cs_signal_type_name(ze->sig.type)};
    cs_metrics_set_replacing(m, "carbonshift_zone_intensity_gco2_per_kwh",
                             labels, 1, ze->found, ze->sig.g_per_kwh);
  }
}

static void reply_error(cs_reply *out, int status, const char *msg)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_codec_write_error(&b, msg);
  out->status = status;
  out->body = cs_buf_release(&b, &out->len);
  snprintf(out->error, sizeof(out->error), "%s", msg);
}

/* Runs the policy on a decoded request and encodes the reply. */
static const char *decide(call *c, cs_reply *out)
{
  /* The pod was decoded as an object, so reading its facts cannot fail. */
  if (cs_pod_facts_read(c->req.pod, c->d->deps.estimate->default_duration_s,
                        &c->pod) != CS_OK)
    c->pod.gpus = 0;
  size_t n = c->req.nnodes;
  int64_t now = cs_clock_now();
  /* In the cycle that deferred the pod, its planned-start patch may not be
   * on kube-scheduler's copy yet: /preempt holds it to the start /filter
   * chose all the same (plan_memo.h). */
  if (c->verb == CS_VERB_PREEMPT && c->pod.planned_start <= now) {
    int64_t start = cs_plan_memo_get(c->d->plans, c->pod.uid, now);
    if (start)
      c->pod.planned_start = start;
  }
  cs_policy_begin(&c->pc, &c->d->policy, &c->pod, n, now);
  c->problems = cs_calloc(n + 1, sizeof(*c->problems));
  cs_node_facts *scratch = cs_malloc(sizeof(*scratch));
  /* The names, for the cache lookups and the filter's reasons. */
  const char **names = cs_malloc((n + 1) * sizeof(*names));
  for (size_t i = 0; i < n; i++)
    names[i] = c->req.nodes[i].name;
  const cs_node_facts **cached = NULL;
  if (c->req.names_only && c->d->deps.nodes) {
    cached = cs_malloc((n + 1) * sizeof(*cached));
    /* Held for the lookups and the policy's reading of the facts it lends
     * (borrowed, not copied): no I/O happens in between. */
    cs_node_cache_read_begin(c->d->deps.nodes);
    cs_node_cache_find_all(c->d->deps.nodes, names, n, cached);
  }
  for (size_t i = 0; i < n; i++)
    read_node(c, i, cached ? cached[i] : NULL, scratch);
  if (cached) {
    cs_node_cache_read_end(c->d->deps.nodes);
    free(cached);
  }
  free(scratch);

  cs_buf reply;
  cs_buf_init(&reply, 0);
  if (c->verb == CS_VERB_PRIORITIZE) {
    cs_policy_prioritize(&c->pc);
    int *scores = cs_malloc((n + 1) * sizeof(*scores));
    for (size_t i = 0; i < n; i++)
      scores[i] = c->pc.nodes[i].score;
    cs_codec_write_priorities(&reply, &c->req, scores);
    free(scores);
  } else if (c->verb == CS_VERB_PREEMPT) {
    /* Judged as the filter would judge the pod on these nodes (these
     * alone) once room is made there; nothing is stored or announced but
     * the declined preemption. A node without victims is dropped too:
     * kube-scheduler v1.37 never proposes one, but if it did, it would
     * fail the whole preemption on it unless the extender is ignorable. */
    cs_policy_preempt(&c->pc, names);
    c->keep = cs_calloc(n + 1, sizeof(*c->keep));
    for (size_t i = 0; i < n; i++) {
      c->keep[i] =
          c->pc.nodes[i].verdict == CS_PASS && c->pre.victims[i].count > 0;
      c->kept += c->keep[i];
    }
    cs_codec_write_preemption(&reply, &c->req, &c->pre, c->keep);
    publish_preemption(c);
  } else {
    cs_verdict *verdicts = cs_malloc((n + 1) * sizeof(*verdicts));
    const char **reasons = cs_malloc((n + 1) * sizeof(*reasons));
    cs_policy_filter(&c->pc, names);
    for (size_t i = 0; i < n; i++) {
      verdicts[i] = c->pc.nodes[i].verdict;
      reasons[i] = c->pc.nodes[i].reason;
    }
    cs_codec_write_filter(&reply, &c->req, verdicts, reasons,
                          out->echo_ok ? &out->pieces : NULL, &out->npieces);
    free(verdicts);
    free(reasons);
    publish(c);
    if (!c->pc.neutral) {
      bool deferred = strcmp(c->pc.outcome, "deferred") == 0 && c->pc.planned &&
                      c->pc.plan.wait;
      cs_plan_memo_put(c->d->plans, c->pod.uid, deferred ? c->pc.plan.start : 0,
                       now);
    }
  }
  free(names);
  if (cs_buf_error(&reply)) {
    cs_log_error("Reply encoding failed", cs_strerror(cs_buf_error(&reply)));
    cs_buf_free(&reply);
    free(out->pieces);
    out->pieces = NULL;
    out->npieces = 0;
    reply_error(out, 500, "carbonshift could not encode its reply");
    return "internalError";
  }
  out->status = 200;
  out->body = cs_buf_release(&reply, &out->len);
  record_metrics(c);
  return c->pc.outcome;
}

/* A feed that passes the waits on and times them, so that a decision's
 * duration is its own work, not the network's. */
typedef struct timed_feed {
  const cs_jscan_feed *inner;
  uint64_t waited_ns;
} timed_feed;

static const char *timed_wait(void *ctx, const char *end)
{
  timed_feed *t = ctx;
  uint64_t t0 = cs_clock_mono_ns();
  const char *got = t->inner->wait(t->inner->ctx, end);
  t->waited_ns += cs_clock_mono_ns() - t0;
  return got;
}

void cs_decider_handle(cs_decider *d, cs_verb verb, const char *body,
                       size_t len, const cs_jscan_feed *feed,
                       const char *request_id, cs_reply *out)
{
  uint64_t t0 = cs_clock_mono_ns();
  call c = {.d = d, .verb = verb, .request_id = request_id};
  cs_buf_init(&c.problem_text, 16u << 20);
  char err[256];
  const char *outcome;
  timed_feed timed = {feed, 0};
  cs_jscan_feed via = {timed_wait, &timed};

  cs_err rc = verb == CS_VERB_PREEMPT
                  ? cs_codec_decode_preemption_feed(
                        body, len, feed ? &via : NULL, MAX_NODES, &c.req,
                        &c.pre, err, sizeof(err))
                  : cs_codec_decode_feed(body, len, feed ? &via : NULL,
                                         MAX_NODES, &c.req, err, sizeof(err));
  t0 += timed.waited_ns; /* from here on, t0 is the start of our own work */
  if (rc) {
    reply_error(out, 400, err);
    cs_buf *l = cs_log_begin(0, "Request rejected");
    cs_json_str(l, "requestId", request_id);
    cs_json_str(l, "verb", cs_verb_name(verb));
    cs_json_str(l, "err", err);
    cs_log_end(l);
    outcome = "badRequest";
  } else {
    outcome = decide(&c, out);
    log_call(&c, (double)(cs_clock_mono_ns() - t0) / 1e9);
  }

  if (d->deps.metrics) {
    const char *labels[] = {cs_verb_name(verb), outcome};
    const char *verb_label[] = {cs_verb_name(verb)};
    cs_metrics_add(d->deps.metrics, "carbonshift_decisions_total", labels, 1);
    cs_metrics_observe(d->deps.metrics, "carbonshift_decision_duration_seconds",
                       verb_label, (double)(cs_clock_mono_ns() - t0) / 1e9);
  }
  cs_policy_end(&c.pc);
  cs_codec_request_free(&c.req);
  cs_codec_preemption_free(&c.pre);
  free(c.keep);
  free(c.problems);
  cs_buf_free(&c.problem_text);
}

/* Ready means "able to answer the scheduler usefully". Degraded carbon
 * signals are reported but do not make the service unready: it still
 * answers from the next provider, or neutrally, and taking it out of the
 * Service would only make the scheduler skip it altogether. An unsynced node
 * cache does: names-only calls would all be neutral. */
bool cs_decider_ready(cs_decider *d, cs_buf *detail)
{
  cs_json_open(detail, NULL, '{');
  cs_json_raw(detail, "signals", "", 0);
  bool healthy = cs_signals_status(d->deps.signals, cs_clock_now(), detail);
  cs_json_bool(detail, "signalsDegraded", !healthy);
  bool ok = true;
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
