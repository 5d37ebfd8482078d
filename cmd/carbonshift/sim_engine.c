#include "cmd/carbonshift/sim_engine.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/planner.h"
#include "carbon/util/alloc.h"

const char *cs_sim_policy_name(cs_sim_policy p)
{
  return p == CS_SIM_AGNOSTIC      ? "agnostic"
         : p == CS_SIM_CARBONSHIFT ? "carbonshift"
                                   : "oracle";
}

const cs_sim_trace *cs_sim_engine_trace(const cs_sim_world *w, const char *zone)
{
  for (size_t i = 0; i < w->ntraces; i++)
    if (!strcmp(w->traces[i]->zone, zone))
      return w->traces[i];
  return NULL;
}

int64_t cs_sim_engine_latest(const cs_sim_job *j, double runtime_s)
{
  int64_t latest = INT64_MAX;
  if (j->max_delay_given) /* 0 too: the job may not wait */
    latest = j->earliest + (int64_t)j->max_delay_s;
  if (j->deadline > 0) {
    int64_t by = j->deadline - (int64_t)ceil(runtime_s);
    latest = by < latest ? by : latest;
  }
  return latest == INT64_MAX || latest < j->earliest ? j->earliest : latest;
}

/* ---- the event queue: a binary min-heap --------------------------------- */

enum { EV_END = 0, EV_TRY = 1 }; /* ends first: they free GPUs */

typedef struct event {
  int64_t t;
  int type;
  size_t job;
} event;

typedef struct heap {
  event *v;
  size_t n, cap;
} heap;

static bool before(const event *a, const event *b)
{
  if (a->t != b->t)
    return a->t < b->t;
  if (a->type != b->type)
    return a->type < b->type;
  return a->job < b->job;
}

static void heap_push(heap *h, event e)
{
  if (h->n == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 1024;
    h->v = cs_realloc(h->v, h->cap * sizeof(*h->v));
  }
  size_t i = h->n++;
  while (i && before(&e, &h->v[(i - 1) / 2])) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = e;
}

static event heap_pop(heap *h)
{
  event top = h->v[0], last = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
      c++;
    if (!before(&h->v[c], &last))
      break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n)
    h->v[i] = last;
  return top;
}

/* ---- one run ------------------------------------------------------------ */

/* GPUs in thousandths: what jobs take and give back is counted exactly.
 * Fractional requests summed as doubles drift (a pool of 1 GPU that lent
 * 0.1, 0.2 and 0.3 gets 0.9999999999999999 back, and a job of 1 GPU would
 * never start). A request is rounded to the nearest thousandth, and a
 * request of any GPUs takes at least one; one beyond any pool stays beyond
 * any pool. */
static int64_t milli_gpus(double gpus)
{
  double m = gpus * 1000;
  if (!(m < 9e15))
    return INT64_MAX / 4;
  int64_t k = llround(m);
  return k < 1 && gpus > 0 ? 1 : k;
}

typedef struct run {
  const cs_sim_world *w;
  cs_sim_outcome *out;
  const cs_sim_trace **pool_trace;
  int64_t *free_m; /* per pool, thousandths of a GPU */
  int64_t *cap_m;
  double min_gpn;
  heap events;
  size_t *blocked; /* FIFO of jobs waiting for GPUs */
  size_t nblocked, blocked_cap;
  int64_t *planned; /* per job: the plan kept between looks (0: none) */
  size_t decided;
  /* Scratch for policy calls. */
  size_t *cand;
  const char **names;
} run;

/* The pod the service would see for the job: one worker when the job needs
 * more GPUs than the smallest node has (a gang of `workers` pods). */
static void pod_of(const run *r, const cs_sim_job *j, double duration_s,
                   cs_pod_facts *pod, double *workers)
{
  double k = j->gpus > r->min_gpn ? ceil(j->gpus / r->min_gpn) : 1;
  memset(pod, 0, sizeof(*pod));
  snprintf(pod->ns, sizeof(pod->ns), "sim");
  snprintf(pod->name, sizeof(pod->name), "job-%s", j->id);
  pod->created_at = j->earliest;
  pod->gpus = j->gpus / k;
  snprintf(pod->gpu_resource, sizeof(pod->gpu_resource), "nvidia.com/gpu");
  pod->duration_s = duration_s;
  /* max_delay 0 forbids waiting, which pod facts cannot say (an
   * annotation's max-delay is above 0, and 0 there means none): the
   * smallest positive one gives the same latest start, the creation time,
   * since the policy counts whole seconds. check_sim holds it to that. */
  pod->max_delay_s =
      j->max_delay_given && j->max_delay_s == 0 ? DBL_MIN : j->max_delay_s;
  pod->deadline = j->deadline;
  pod->budget_g = j->budget_g;
  *workers = k;
}

static double min_gpn(const cs_sim_cluster *c)
{
  double m = INFINITY;
  for (size_t p = 0; p < c->n; p++)
    m = c->pools[p].facts.gpus < m ? c->pools[p].facts.gpus : m;
  return m;
}

static void account_job(const cs_sim_world *w, const cs_sim_trace *t,
                        double gpn, size_t ji, size_t p, int64_t start,
                        cs_sim_outcome *o)
{
  const cs_sim_job *j = &w->jobs->v[ji];
  const cs_sim_pool *pool = &w->cluster->pools[p];
  run r = {.w = w, .min_gpn = gpn};
  cs_pod_facts pod;
  double k;
  pod_of(&r, j, j->duration_s, &pod, &k);
  cs_estimate est;
  cs_estimate_job(w->estimate, &pod, &pool->facts, 0, start, &est);
  int64_t runtime = (int64_t)ceil(est.runtime_s);
  o->pool = (int)p;
  o->start = start;
  o->end = start + runtime;
  o->workers = k;
  if (!t || !est.known || !cs_sim_trace_covers(t, start, o->end)) {
    o->fate = CS_SIM_UNCOVERED;
    return;
  }
  o->fate = CS_SIM_RAN;
  o->energy_kwh = k * est.energy_kwh;
  double mean = runtime > 0
                    ? cs_sim_trace_integral(t, start, o->end) / (double)runtime
                    : 0;
  o->operational_g = o->energy_kwh * mean;
  o->embodied_g = k * est.embodied_g;
  o->gpu_hours = j->gpus * (double)runtime / 3600.0;
}

/* Accounts the job run on pool p from `start` on the real trace. */
static void account(run *r, size_t ji, size_t p, int64_t start)
{
  account_job(r->w, r->pool_trace[p], r->min_gpn, ji, p, start, &r->out[ji]);
}

void cs_sim_engine_account(const cs_sim_world *w, size_t job, size_t pool,
                           int64_t start, cs_sim_outcome *out)
{
  memset(out, 0, sizeof(*out));
  account_job(w, cs_sim_engine_trace(w, w->cluster->pools[pool].facts.zone),
              min_gpn(w->cluster), job, pool, start, out);
}

static void start_job(run *r, size_t ji, size_t p, int64_t now)
{
  account(r, ji, p, now);
  r->free_m[p] -= milli_gpus(r->w->jobs->v[ji].gpus);
  heap_push(&r->events, (event){r->out[ji].end, EV_END, ji});
  r->decided++;
}

static void block(run *r, size_t ji)
{
  if (r->nblocked == r->blocked_cap) {
    r->blocked_cap = r->blocked_cap ? r->blocked_cap * 2 : 256;
    r->blocked = cs_realloc(r->blocked, r->blocked_cap * sizeof(*r->blocked));
  }
  r->blocked[r->nblocked++] = ji;
}

/* The pools with room for the job; returns their number. */
static size_t candidates(run *r, const cs_sim_job *j)
{
  size_t n = 0;
  int64_t need = milli_gpus(j->gpus);
  for (size_t p = 0; p < r->w->cluster->n; p++)
    if (r->free_m[p] >= need)
      r->cand[n++] = p;
  return n;
}

/* kube-scheduler's LeastAllocated: the most free share after placing;
 * ties to the first pool. Among `ok` candidates only (NULL: all). */
static size_t least_allocated(const run *r, const cs_sim_job *j, size_t n,
                              const int *score)
{
  size_t best = SIZE_MAX;
  double best_share = -1;
  int best_score = -1;
  int64_t need = milli_gpus(j->gpus);
  for (size_t i = 0; i < n; i++) {
    size_t p = r->cand[i];
    if (score && score[i] < 0)
      continue;
    double share = (double)(r->free_m[p] - need) / (double)r->cap_m[p];
    int s = score ? score[i] : 0;
    if (s > best_score || (s == best_score && share > best_share)) {
      best = i;
      best_share = share;
      best_score = s;
    }
  }
  return best;
}

static void try_agnostic(run *r, size_t ji, int64_t now, bool from_queue)
{
  const cs_sim_job *j = &r->w->jobs->v[ji];
  size_t n = candidates(r, j);
  if (!n) {
    if (!from_queue)
      block(r, ji);
    return;
  }
  size_t best = least_allocated(r, j, n, NULL);
  start_job(r, ji, r->cand[best], now);
}

/* Returns false when the job is still waiting for GPUs. */
static bool try_carbonshift(run *r, size_t ji, int64_t now, bool from_queue)
{
  const cs_sim_job *j = &r->w->jobs->v[ji];
  size_t n = candidates(r, j);
  if (!n) {
    if (!from_queue)
      block(r, ji);
    return false;
  }
  cs_pod_facts pod;
  double k;
  pod_of(r, j, j->expected_s, &pod, &k);
  pod.planned_start = r->planned[ji];
  cs_policy_call call;
  cs_policy_begin(&call, &r->w->policy, &pod, n, now);
  for (size_t i = 0; i < n; i++) {
    r->names[i] = r->w->cluster->pools[r->cand[i]].name;
    cs_policy_add_node(&call, i, &r->w->cluster->pools[r->cand[i]].facts);
  }
  cs_policy_filter(&call, r->names);
  if (call.planned && call.plan.wait && !strcmp(call.outcome, "deferred")) {
    /* The scheduler would retry the pod; it passes at its planned start. */
    int64_t at = call.plan.start > now ? call.plan.start : now + 60;
    r->planned[ji] = call.plan.start;
    heap_push(&r->events, (event){at, EV_TRY, ji});
    cs_policy_end(&call);
    return true;
  }
  int *score = cs_malloc((n + 1) * sizeof(*score));
  bool any = false;
  cs_policy_prioritize(&call);
  for (size_t i = 0; i < n; i++) {
    score[i] = call.nodes[i].verdict == CS_PASS ? call.nodes[i].score : -1;
    any |= score[i] >= 0;
  }
  if (any)
    start_job(r, ji, r->cand[least_allocated(r, j, n, score)], now);
  else {
    r->out[ji].fate = CS_SIM_REJECTED;
    r->out[ji].pool = -1;
    r->decided++;
  }
  free(score);
  cs_policy_end(&call);
  return true;
}

/* The real trace of a zone as a forecast series (borrowing nothing: the
 * points are copied once per run). */
static void trace_series(const cs_sim_trace *t, cs_series *s)
{
  memset(s, 0, sizeof(*s));
  s->points = cs_malloc((t->len + 1) * sizeof(*s->points));
  for (size_t i = 0; i < t->len; i++)
    s->points[i] = (cs_point){t->at[i], t->g[i]};
  s->len = t->len;
  s->step = t->step;
  s->max_hold = t->max_hold; /* as the trace: its holes are holes */
}

static void run_oracle(run *r)
{
  const cs_sim_world *w = r->w;
  size_t np = w->cluster->n;
  cs_series *series = cs_calloc(np + 1, sizeof(*series));
  cs_plan_option *opts = cs_calloc(np + 1, sizeof(*opts));
  for (size_t p = 0; p < np; p++)
    trace_series(r->pool_trace[p], &series[p]);
  cs_plan_params none = {0};
  for (size_t ji = 0; ji < w->jobs->n; ji++) {
    const cs_sim_job *j = &w->jobs->v[ji];
    cs_pod_facts pod;
    double k;
    pod_of(r, j, j->duration_s, &pod, &k);
    size_t nopt = 0;
    for (size_t p = 0; p < np; p++) {
      const cs_sim_pool *pool = &w->cluster->pools[p];
      if (r->cap_m[p] < milli_gpus(j->gpus))
        continue;
      cs_estimate est;
      cs_estimate_job(w->estimate, &pod, &pool->facts, 0, j->earliest, &est);
      if (!est.known)
        continue;
      opts[nopt] = (cs_plan_option){.forecast = &series[p],
                                    .current = -1,
                                    .energy_kwh = est.energy_kwh,
                                    .embodied_g = est.embodied_g,
                                    .runtime_s = (int64_t)ceil(est.runtime_s),
                                    .latest_start =
                                        cs_sim_engine_latest(j, est.runtime_s)};
      r->cand[nopt++] = p;
    }
    cs_plan plan;
    if (!nopt) {
      r->out[ji].fate = CS_SIM_NO_FIT;
      r->out[ji].pool = -1;
    } else if (cs_plan_window(&none, opts, nopt, j->earliest, 0, &plan) !=
               CS_OK) {
      r->out[ji].fate = CS_SIM_UNCOVERED;
      r->out[ji].pool = -1;
    } else {
      account(r, ji, r->cand[plan.option], plan.start);
    }
    if ((ji & 1023) == 0 && w->progress)
      w->progress(w->progress_ctx, ji, w->jobs->n);
  }
  for (size_t p = 0; p < np; p++)
    cs_series_free(&series[p]);
  free(series);
  free(opts);
}

static int64_t most_free(const run *r)
{
  int64_t most = 0;
  for (size_t p = 0; p < r->w->cluster->n; p++)
    most = r->free_m[p] > most ? r->free_m[p] : most;
  return most;
}

/* Retries the jobs waiting for GPUs, in arrival order. */
static void drain_blocked(run *r, int64_t now, cs_sim_policy policy)
{
  int64_t most = most_free(r);
  size_t k = 0;
  for (size_t i = 0; i < r->nblocked; i++) {
    size_t ji = r->blocked[i];
    bool done = false;
    if (milli_gpus(r->w->jobs->v[ji].gpus) <= most) {
      if (policy == CS_SIM_AGNOSTIC) {
        try_agnostic(r, ji, now, true);
        done = r->out[ji].fate != CS_SIM_NOT_STARTED;
      } else {
        done = try_carbonshift(r, ji, now, true);
      }
      if (done)
        most = most_free(r);
    }
    if (!done)
      r->blocked[k++] = ji;
  }
  r->nblocked = k;
}

cs_err cs_sim_engine_run(const cs_sim_world *w, cs_sim_policy policy,
                         cs_sim_outcome *out)
{
  size_t np = w->cluster->n, nj = w->jobs->n;
  run r = {.w = w, .out = out};
  cs_err rc = CS_OK;
  r.pool_trace = cs_calloc(np + 1, sizeof(*r.pool_trace));
  r.free_m = cs_calloc(np + 1, sizeof(*r.free_m));
  r.cap_m = cs_calloc(np + 1, sizeof(*r.cap_m));
  r.cand = cs_calloc(np + 1, sizeof(*r.cand));
  r.names = cs_calloc(np + 1, sizeof(*r.names));
  r.planned = cs_calloc(nj + 1, sizeof(*r.planned));
  r.min_gpn = min_gpn(w->cluster);
  /* Every job starts as not started (the zero fate) and on no pool; a job
   * still waiting when the events run out stays so. */
  memset(out, 0, nj * sizeof(*out));
  for (size_t ji = 0; ji < nj; ji++)
    out[ji].pool = -1;
  for (size_t p = 0; p < np; p++) {
    const cs_sim_pool *pool = &w->cluster->pools[p];
    r.pool_trace[p] = cs_sim_engine_trace(w, pool->facts.zone);
    if (!r.pool_trace[p]) {
      rc = CS_EINVAL;
      goto out;
    }
    r.free_m[p] = r.cap_m[p] = milli_gpus(pool->capacity);
  }
  if (policy == CS_SIM_ORACLE) {
    run_oracle(&r);
    goto out;
  }
  int64_t biggest = 0;
  for (size_t p = 0; p < np; p++)
    biggest = r.cap_m[p] > biggest ? r.cap_m[p] : biggest;
  for (size_t ji = 0; ji < nj; ji++) {
    const cs_sim_job *j = &w->jobs->v[ji];
    if (milli_gpus(j->gpus) > biggest) {
      out[ji].fate = CS_SIM_NO_FIT;
      out[ji].pool = -1;
      continue;
    }
    int64_t at = policy == CS_SIM_AGNOSTIC ? j->submit : j->earliest;
    heap_push(&r.events, (event){at, EV_TRY, ji});
  }
  while (r.events.n) {
    event e = heap_pop(&r.events);
    if (e.type == EV_END) {
      r.free_m[out[e.job].pool] += milli_gpus(w->jobs->v[e.job].gpus);
      /* Every end at this instant first, then the queue. */
      if (!r.events.n || r.events.v[0].t != e.t || r.events.v[0].type != EV_END)
        drain_blocked(&r, e.t, policy);
      continue;
    }
    if (policy == CS_SIM_AGNOSTIC)
      try_agnostic(&r, e.job, e.t, false);
    else
      (void)try_carbonshift(&r, e.job, e.t, false);
    if ((r.decided & 1023) == 0 && w->progress)
      w->progress(w->progress_ctx, r.decided, nj);
  }
out:
  free(r.events.v);
  free(r.blocked);
  free(r.planned);
  free(r.names);
  free(r.cand);
  free(r.free_m);
  free(r.cap_m);
  free(r.pool_trace);
  return rc;
}
