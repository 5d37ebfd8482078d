#include "carbon/signals.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"

#define MAX_PROVIDERS 16
#define MAX_ROUTES 256

#define M_INTENSITY "carbonshift_grid_intensity_gco2_per_kwh"
#define M_AGE "carbonshift_signal_age_seconds"
#define M_FETCHES "carbonshift_provider_fetches_total"
#define M_DEGRADED "carbonshift_zone_degraded"

typedef struct route {
  char zone[CS_ZONE_MAX];
  size_t n;
  cs_provider *chain[MAX_PROVIDERS];
} route;

/* The refresh state of one kind of fetch (current value or forecast). */
typedef struct fetch_state {
  uint64_t due_ns; /* monotonic */
  int failures;    /* consecutive */
  cs_err last_rc;
  bool attempted;
} fetch_state;

/* One (remote provider, zone) cache entry. */
typedef struct entry {
  cs_provider *p;
  char zone[CS_ZONE_MAX];
  bool in_flight;
  bool has_value;
  cs_signal value;
  bool has_fc;
  cs_series fc;
  int64_t fc_fetched_at;
  fetch_state cur, fcs;
} entry;

typedef struct worker {
  cs_signals *s;
  cs_provider *p;
  pthread_t thread;
} worker;

struct cs_signals {
  cs_signal_type ranking_type;
  cs_provider *providers[MAX_PROVIDERS];
  size_t nproviders;
  route routes[MAX_ROUTES];
  size_t nroutes;
  cs_signals_opts o;
  cs_metrics *metrics;

  pthread_mutex_t mu; /* guards everything below; never held during I/O */
  pthread_cond_t cv;
  entry **entries;
  size_t nentries;
  bool started, stopping;
  worker workers[MAX_PROVIDERS];
  size_t nworkers;
  unsigned rng;
};

static const cs_signals_opts defaults = {
    .ttl_s = 300,
    .jitter = 0.1,
    .backoff_min_s = 15,
    .backoff_max_s = 900,
    .max_age_s = 3600,
    .max_observation_age_s = 10800,
    .horizon_s = 172800,
    .max_keys = 1024,
};

cs_signals *cs_signals_new(cs_signal_type ranking_type)
{
  cs_signals *s = cs_calloc(1, sizeof(*s));
  s->ranking_type = ranking_type;
  s->o = defaults;
  s->rng = (unsigned)cs_clock_mono_ns();
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  return s;
}

void cs_signals_stop(cs_signals *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < s->nproviders; i++)
    cs_provider_cancel(s->providers[i]);
}

void cs_signals_free(cs_signals *s)
{
  if (!s)
    return;
  cs_signals_stop(s);
  for (size_t i = 0; i < s->nworkers; i++)
    pthread_join(s->workers[i].thread, NULL);
  for (size_t i = 0; i < s->nentries; i++) {
    cs_series_free(&s->entries[i]->fc);
    free(s->entries[i]);
  }
  free(s->entries);
  for (size_t i = 0; i < s->nproviders; i++)
    cs_provider_free(s->providers[i]);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

cs_signal_type cs_signals_ranking_type(const cs_signals *s)
{
  return s->ranking_type;
}

void cs_signals_set_opts(cs_signals *s, const cs_signals_opts *o)
{
  s->o = defaults;
  if (!o)
    return;
  if (o->ttl_s > 0)
    s->o.ttl_s = o->ttl_s;
  if (o->jitter > 0 && o->jitter < 1)
    s->o.jitter = o->jitter;
  if (o->backoff_min_s > 0)
    s->o.backoff_min_s = o->backoff_min_s;
  if (o->backoff_max_s > 0)
    s->o.backoff_max_s = o->backoff_max_s;
  if (s->o.backoff_max_s < s->o.backoff_min_s)
    s->o.backoff_max_s = s->o.backoff_min_s;
  if (o->max_age_s > 0)
    s->o.max_age_s = o->max_age_s;
  if (o->max_observation_age_s > 0)
    s->o.max_observation_age_s = o->max_observation_age_s;
  if (o->horizon_s > 0)
    s->o.horizon_s = o->horizon_s;
  if (o->max_keys > 0)
    s->o.max_keys = o->max_keys;
}

static cs_provider *find_provider(const cs_signals *s, const char *name)
{
  for (size_t i = 0; i < s->nproviders; i++)
    if (strcmp(s->providers[i]->ops->name, name) == 0)
      return s->providers[i];
  return NULL;
}

cs_err cs_signals_add_provider(cs_signals *s, cs_provider *p)
{
  if (!p || s->nproviders == MAX_PROVIDERS || find_provider(s, p->ops->name) ||
      s->started)
    return CS_EINVAL;
  s->providers[s->nproviders++] = p;
  return CS_OK;
}

cs_err cs_signals_set_route(cs_signals *s, const char *zone,
                            const char *const *providers, size_t n)
{
  if (!zone || strlen(zone) >= CS_ZONE_MAX || n > MAX_PROVIDERS || s->started)
    return CS_EINVAL;
  route r = {0};
  memcpy(r.zone, zone, strlen(zone) + 1);
  for (size_t i = 0; i < n; i++) {
    r.chain[i] = find_provider(s, providers[i]);
    if (!r.chain[i])
      return CS_ENOTFOUND;
  }
  r.n = n;
  for (size_t i = 0; i < s->nroutes; i++) {
    if (strcmp(s->routes[i].zone, zone) == 0) {
      s->routes[i] = r;
      return CS_OK;
    }
  }
  if (s->nroutes == MAX_ROUTES)
    return CS_ETOOBIG;
  s->routes[s->nroutes++] = r;
  return CS_OK;
}

/* The providers to ask for `zone`, in order. */
static size_t chain_for(cs_signals *s, const char *zone, const char *only,
                        cs_provider **out)
{
  if (only) {
    out[0] = find_provider(s, only);
    return out[0] ? 1 : 0;
  }
  const route *wild = NULL;
  for (size_t i = 0; i < s->nroutes; i++) {
    if (strcmp(s->routes[i].zone, zone) == 0) {
      memcpy(out, s->routes[i].chain, s->routes[i].n * sizeof(*out));
      return s->routes[i].n;
    }
    if (strcmp(s->routes[i].zone, "*") == 0)
      wild = &s->routes[i];
  }
  if (wild) {
    memcpy(out, wild->chain, wild->n * sizeof(*out));
    return wild->n;
  }
  memcpy(out, s->providers, s->nproviders * sizeof(*out));
  return s->nproviders;
}

/* ---- metrics (a NULL registry makes every update a no-op) ---- */

static cs_err declare_metrics(cs_metrics *m)
{
  if (!m)
    return CS_OK;
  cs_err rc = cs_metrics_declare(m, M_INTENSITY, CS_METRIC_GAUGE,
                                 "Last grid carbon intensity fetched, in "
                                 "gCO2e/kWh",
                                 "zone,provider,signal", NULL, 0);
  if (rc == CS_OK)
    rc = cs_metrics_declare(m, M_AGE, CS_METRIC_GAUGE,
                            "Seconds since the start of the period the "
                            "cached intensity describes",
                            "zone,provider", NULL, 0);
  if (rc == CS_OK)
    rc = cs_metrics_declare(m, M_FETCHES, CS_METRIC_COUNTER,
                            "Carbon provider fetches by kind and outcome",
                            "provider,kind,outcome", NULL, 0);
  if (rc == CS_OK)
    rc = cs_metrics_declare(
        m, M_DEGRADED, CS_METRIC_GAUGE,
        "1 when the provider serving a zone, or one ahead of it in the "
        "route, is failing or stale, or the zone is served by a forecast "
        "alone; else 0 (a provider reporting notServed is no outage). "
        "Updated when /readyz is asked",
        "zone", NULL, 0);
  return rc;
}

static const char *outcome(cs_err rc)
{
  switch (rc) {
  case CS_OK:
    return "ok";
  case CS_ETIMEDOUT:
    return "timeout";
  case CS_EAUTH:
    return "auth";
  case CS_EBUSY:
    return "rate_limited";
  case CS_EPARSE:
    return "bad_response";
  case CS_EINVAL:
    return "bad_response";
  case CS_EUNSUPPORTED:
    return "bad_response";
  case CS_ENOTFOUND:
    return "not_found";
  case CS_EHTTP:
    return "http_error";
  case CS_EIO:
    return "unreachable";
  case CS_ESTALE:
    return "stale";
  default:
    return "error";
  }
}

/* ---- the cache ---- */

static entry *find_entry(cs_signals *s, const cs_provider *p, const char *zone)
{
  for (size_t i = 0; i < s->nentries; i++)
    if (s->entries[i]->p == p && strcmp(s->entries[i]->zone, zone) == 0)
      return s->entries[i];
  return NULL;
}

/* Finds or creates the entry; NULL when the key cap is reached or the zone
 * name does not fit. Call with mu held. */
static entry *ensure_entry(cs_signals *s, cs_provider *p, const char *zone)
{
  entry *e = find_entry(s, p, zone);
  if (e)
    return e;
  if (s->nentries >= s->o.max_keys || strlen(zone) >= CS_ZONE_MAX)
    return NULL;
  e = cs_calloc(1, sizeof(*e));
  e->p = p;
  memcpy(e->zone, zone, strlen(zone) + 1);
  e->cur.due_ns = e->fcs.due_ns = cs_clock_mono_ns();
  if ((s->nentries & (s->nentries - 1)) == 0)
    s->entries = cs_realloc(s->entries, (s->nentries ? s->nentries * 2 : 8) *
                                            sizeof(*s->entries));
  s->entries[s->nentries++] = e;
  pthread_cond_broadcast(&s->cv);
  return e;
}

/* carbon.maxObservationAge of these options (the default when unset). */
static int64_t max_observation_age(const cs_signals_opts *o)
{
  return o && o->max_observation_age_s > 0 ? o->max_observation_age_s
                                           : defaults.max_observation_age_s;
}

/* A cached value serves while its last fetch is recent (carbon.maxAge)
 * and the observation itself is not too old (carbon.maxObservationAge):
 * a value checked at its fetch goes on ageing while later fetches fail,
 * and the fetch refused as stale must not leave it serving. */
static bool value_fresh(const cs_signals *s, const entry *e, int64_t now)
{
  return e->has_value && now - e->value.fetched_at <= s->o.max_age_s &&
         now - e->value.observed_at <= max_observation_age(&s->o);
}

/* The same for a forecast, whose age is that of its making when the
 * provider says it. */
static bool fc_fresh(const cs_signals *s, const entry *e, int64_t now)
{
  return e->has_fc && now - e->fc_fetched_at <= s->o.max_age_s &&
         (!e->fc.generated_at ||
          now - e->fc.generated_at <= max_observation_age(&s->o));
}

/* A delay of `base` seconds, +/- jitter, in nanoseconds. Call with mu held
 * (it advances the shared generator). */
static uint64_t jittered(cs_signals *s, int64_t base)
{
  s->rng = s->rng * 1103515245u + 12345u;
  double u = (double)((s->rng >> 8) & 0xffff) / 65535.0 * 2 - 1;
  double d = (double)base * (1 + s->o.jitter * u);
  if (d < 1)
    d = 1;
  return (uint64_t)(d * 1e9);
}

static void schedule(cs_signals *s, fetch_state *f, cs_err rc)
{
  f->attempted = true;
  f->last_rc = rc;
  int64_t base = s->o.ttl_s;
  if (rc != CS_OK) {
    f->failures++;
    base = s->o.backoff_min_s;
    for (int i = 1; i < f->failures && base < s->o.backoff_max_s; i++)
      base *= 2;
    if (base > s->o.backoff_max_s)
      base = s->o.backoff_max_s;
  } else {
    f->failures = 0;
  }
  f->due_ns = cs_clock_mono_ns() + jittered(s, base);
}

/* CS_ESTALE, logged as `msg`, when something made at `made` is older than
 * carbon.maxObservationAge at `now`; CS_EPARSE, logged as `ahead_msg`, when
 * it is more than CS_SIGNALS_MAX_AHEAD_S after `now`: a period that has not
 * begun is not the one in force, and a forecast is not made in the future
 * (local time sent as UTC, a wrong offset); CS_OK otherwise. */
static cs_err check_age(const cs_signals_opts *o, const char *msg,
                        const char *ahead_msg, const char *provider,
                        const char *zone, int64_t made, int64_t now)
{
  int64_t max = max_observation_age(o);
  if (made - now > CS_SIGNALS_MAX_AHEAD_S) {
    char t[21], n[21];
    cs_format_rfc3339(made, t);
    cs_format_rfc3339(now, n);
    cs_buf *l = cs_log_begin(0, ahead_msg);
    cs_json_str(l, "provider", provider);
    cs_json_str(l, "zone", zone);
    cs_json_str(l, "time", t);
    cs_json_str(l, "now", n);
    cs_json_int(l, "aheadSeconds", made - now);
    cs_json_int(l, "maxAheadSeconds", CS_SIGNALS_MAX_AHEAD_S);
    cs_log_end(l);
    return CS_EPARSE;
  }
  if (now - made <= max)
    return CS_OK;
  cs_buf *l = cs_log_begin(0, msg);
  cs_json_str(l, "provider", provider);
  cs_json_str(l, "zone", zone);
  cs_json_int(l, "ageSeconds", now - made);
  cs_json_int(l, "maxObservationAgeSeconds", max);
  cs_log_end(l);
  return CS_ESTALE;
}

cs_err cs_signals_check_observation(const cs_signals_opts *o,
                                    const cs_signal *v, int64_t now)
{
  return check_age(o, "Carbon provider returned stale data",
                   "Carbon provider returned a value for a period that has "
                   "not begun",
                   v->provider, v->zone, v->observed_at, now);
}

/* An old forecast (a stuck upstream) is refused, so the next provider in
 * the route answers instead. */
cs_err cs_signals_check_forecast(const cs_signals_opts *o, const cs_series *f,
                                 int64_t now)
{
  if (!f->generated_at)
    return CS_OK;
  return check_age(o, "Carbon provider returned a stale forecast",
                   "Carbon provider returned a forecast made in the future",
                   f->provider, f->zone, f->generated_at, now);
}

/* Fetches whatever is due for `e` (both kinds when `force`), outside the
 * lock. The caller has set e->in_flight under the lock. Returns the result
 * of the current-value fetch (or of the forecast when only it ran). */
static cs_err fetch_entry(cs_signals *s, entry *e, bool force)
{
  cs_provider *p = e->p;
  char zone[CS_ZONE_MAX];
  pthread_mutex_lock(&s->mu);
  uint64_t mono = cs_clock_mono_ns();
  bool do_cur = force || e->cur.due_ns <= mono;
  bool do_fc = p->ops->forecast && (force || e->fcs.due_ns <= mono);
  memcpy(zone, e->zone, sizeof(zone));
  pthread_mutex_unlock(&s->mu);

  int64_t now = cs_clock_now();
  cs_signal v = {0};
  cs_series fc = {0};
  cs_err crc = CS_OK, frc = CS_OK;
  if (do_cur) {
    crc = p->ops->current(p, zone, now, &v);
    if (crc == CS_OK)
      crc = cs_signals_check_observation(&s->o, &v, now);
  }
  if (do_fc) {
    frc = p->ops->forecast(p, zone, now - CS_SIGNALS_FORECAST_BACK_S,
                           now + s->o.horizon_s, &fc);
    if (frc == CS_OK)
      frc = cs_signals_check_forecast(&s->o, &fc, now);
  }
  cs_err rc = do_cur ? crc : frc;
  /* A fetch called off by cs_signals_stop says nothing of the provider:
   * the entry keeps its state and no outcome is counted. */
  do_cur = do_cur && crc != CS_ECANCELED;
  do_fc = do_fc && frc != CS_ECANCELED;

  pthread_mutex_lock(&s->mu);
  if (do_cur) {
    /* A stale answer replaces nothing: an older good value it is not. */
    if (crc == CS_OK) {
      e->value = v;
      e->has_value = true;
    }
    schedule(s, &e->cur, crc);
  }
  if (do_fc) {
    if (frc == CS_OK) {
      cs_series_free(&e->fc);
      e->fc = fc;
      fc.points = NULL;
      e->has_fc = true;
      e->fc_fetched_at = now;
    }
    schedule(s, &e->fcs, frc);
  }
  e->in_flight = false;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  cs_series_free(&fc);

  const char *pn = p->ops->name;
  if (do_cur) {
    const char *l[] = {pn, "current", outcome(crc)};
    cs_metrics_add(s->metrics, M_FETCHES, l, 1);
    if (crc == CS_OK) {
      const char *li[] = {zone, pn, cs_signal_type_name(v.type)};
      cs_metrics_set(s->metrics, M_INTENSITY, li, v.g_per_kwh);
      const char *la[] = {zone, pn};
      cs_metrics_set(s->metrics, M_AGE, la, (double)(now - v.observed_at));
    }
  }
  if (do_fc) {
    const char *l[] = {pn, "forecast", outcome(frc)};
    cs_metrics_add(s->metrics, M_FETCHES, l, 1);
  }
  return rc;
}

static void update_ages(cs_signals *s)
{
  if (!s->metrics)
    return;
  int64_t now = cs_clock_now();
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nentries; i++) {
    entry *e = s->entries[i];
    if (!e->has_value)
      continue;
    const char *la[] = {e->zone, e->p->ops->name};
    cs_metrics_set(s->metrics, M_AGE, la, (double)(now - e->value.observed_at));
  }
  pthread_mutex_unlock(&s->mu);
}

static void *refresher(void *arg)
{
  worker *w = arg;
  cs_signals *s = w->s;
  uint64_t next_ages = 0;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    uint64_t mono = cs_clock_mono_ns(), due = UINT64_MAX;
    entry *pick = NULL;
    for (size_t i = 0; i < s->nentries; i++) {
      entry *e = s->entries[i];
      if (e->p != w->p || e->in_flight)
        continue;
      uint64_t d = e->cur.due_ns;
      if (e->p->ops->forecast && e->fcs.due_ns < d)
        d = e->fcs.due_ns;
      if (d < due) {
        due = d;
        pick = e;
      }
    }
    if (pick && due <= mono) {
      pick->in_flight = true;
      pthread_mutex_unlock(&s->mu);
      (void)fetch_entry(s, pick, false);
      pthread_mutex_lock(&s->mu);
      continue;
    }
    if (mono >= next_ages) {
      pthread_mutex_unlock(&s->mu);
      update_ages(s);
      pthread_mutex_lock(&s->mu);
      next_ages = mono + 15000000000u;
      continue;
    }
    /* Sleep until the next key is due, the age gauges need updating, or
     * someone registers a key or stops us. */
    uint64_t wake = due < next_ages ? due : next_ages;
    struct timespec ts = {.tv_sec = (time_t)(wake / 1000000000u),
                          .tv_nsec = (long)(wake % 1000000000u)};
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

cs_err cs_signals_start(cs_signals *s, cs_metrics *metrics)
{
  if (s->started)
    return CS_EINVAL;
  cs_err rc = declare_metrics(metrics);
  if (rc != CS_OK)
    return rc;
  s->metrics = metrics;
  pthread_mutex_lock(&s->mu);
  for (size_t r = 0; r < s->nroutes; r++) {
    if (strcmp(s->routes[r].zone, "*") == 0)
      continue;
    for (size_t i = 0; i < s->routes[r].n; i++)
      if (s->routes[r].chain[i]->ops->remote)
        (void)ensure_entry(s, s->routes[r].chain[i], s->routes[r].zone);
  }
  s->started = true;
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < s->nproviders; i++) {
    if (!s->providers[i]->ops->remote)
      continue;
    worker *w = &s->workers[s->nworkers];
    w->s = s;
    w->p = s->providers[i];
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 1u << 20);
    int err = pthread_create(&w->thread, &a, refresher, w);
    pthread_attr_destroy(&a);
    if (err) {
      cs_log_error("Cannot start the carbon refresher", strerror(err));
      return CS_EINTERNAL;
    }
    s->nworkers++;
  }
  return CS_OK;
}

cs_err cs_signals_refresh_now(cs_signals *s, const char *zone, const char *only,
                              int64_t now)
{
  (void)now;
  if (!zone || !*zone)
    return CS_ENOTFOUND;
  cs_provider *chain[MAX_PROVIDERS];
  size_t n = chain_for(s, zone, only, chain);
  cs_err first = CS_OK;
  bool any_ok = false, any_remote = false;
  for (size_t i = 0; i < n; i++) {
    if (!chain[i]->ops->remote)
      continue;
    any_remote = true;
    pthread_mutex_lock(&s->mu);
    entry *e = ensure_entry(s, chain[i], zone);
    bool busy = !e || e->in_flight;
    if (!busy)
      e->in_flight = true;
    pthread_mutex_unlock(&s->mu);
    cs_err rc = busy ? (e ? CS_EBUSY : CS_ETOOBIG) : fetch_entry(s, e, true);
    if (rc == CS_OK)
      any_ok = true;
    else if (first == CS_OK)
      first = rc;
  }
  if (n == 0)
    return CS_ENOTFOUND;
  return any_ok || !any_remote ? CS_OK : first;
}

/* The answer from provider p alone: from the cache when it is remote
 * (registering the key on first ask). */
static cs_err current_from(cs_signals *s, cs_provider *p, const char *zone,
                           int64_t now, bool reg, cs_signal *out)
{
  if (!p->ops->remote)
    return p->ops->current(p, zone, now, out);
  cs_err rc = CS_ENOTFOUND;
  pthread_mutex_lock(&s->mu);
  entry *e = reg ? ensure_entry(s, p, zone) : find_entry(s, p, zone);
  if (e && value_fresh(s, e, now)) {
    *out = e->value;
    rc = CS_OK;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* The index in the chain of the provider answering, or -1. */
static int answer(cs_signals *s, cs_provider **chain, size_t n,
                  const char *zone, int64_t now, bool reg, cs_signal *out)
{
  for (size_t i = 0; i < n; i++) {
    cs_signal v;
    if (current_from(s, chain[i], zone, now, reg, &v) != CS_OK)
      continue;
    if (v.type != s->ranking_type)
      continue; /* never rank on a mix of signal types */
    *out = v;
    return (int)i;
  }
  return -1;
}

cs_err cs_signals_current(cs_signals *s, const char *zone, const char *only,
                          int64_t now, cs_signal *out)
{
  if (!zone || !*zone)
    return CS_ENOTFOUND;
  cs_provider *chain[MAX_PROVIDERS];
  size_t n = chain_for(s, zone, only, chain);
  return answer(s, chain, n, zone, now, true, out) >= 0 ? CS_OK : CS_ENOTFOUND;
}

/* The forecast from provider p alone, as of `now`: from the cache when it
 * is remote (registering the key on first ask when `reg`). */
static cs_err forecast_from(cs_signals *s, cs_provider *p, const char *zone,
                            int64_t now, int64_t from, int64_t to, bool reg,
                            cs_series *out)
{
  if (!p->ops->forecast)
    return CS_ENOTFOUND;
  if (!p->ops->remote)
    return p->ops->forecast(p, zone, from, to, out);
  cs_err rc = CS_ENOTFOUND;
  pthread_mutex_lock(&s->mu);
  entry *e = reg ? ensure_entry(s, p, zone) : find_entry(s, p, zone);
  if (e && fc_fresh(s, e, now)) {
    cs_series_slice(&e->fc, from, to, out);
    rc = CS_OK;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* The index in the chain of the provider a zone's data comes from (the
 * rule of cs_signals_zone_data), or -1, with what it has. `fc` may be
 * NULL when only the answer is wanted; `*has_fc` then says nothing for a
 * provider with a current value. Registers the zone with remote providers
 * only when `reg`. */
static int zone_provider(cs_signals *s, cs_provider **chain, size_t n,
                         const char *zone, int64_t now, int64_t at,
                         int64_t from, int64_t to, bool reg, cs_signal *cur,
                         bool *has_cur, cs_series *fc, bool *has_fc)
{
  *has_cur = *has_fc = false;
  for (size_t i = 0; i < n; i++) {
    cs_signal v;
    bool c = current_from(s, chain[i], zone, now, reg, &v) == CS_OK &&
             v.type == s->ranking_type;
    /* With a current value the forecast decides nothing: not asked for
     * when the caller does not want it (/readyz). */
    cs_series f = {0};
    bool ok =
        (fc || !c) &&
        forecast_from(s, chain[i], zone, now, from, to, reg, &f) == CS_OK &&
        f.type == s->ranking_type && f.len;
    /* Without a current value, only a forecast that says what holds at `at`
     * makes this the zone's provider. */
    if (!c && !(ok && cs_series_index_at(&f, at) >= 0)) {
      cs_series_free(&f);
      continue;
    }
    /* What is handed out names where it came from, a provider that left
     * its data unnamed too: the Decision line shows it. */
    if (c) {
      *cur = v;
      if (!cur->provider[0])
        snprintf(cur->provider, sizeof(cur->provider), "%s",
                 chain[i]->ops->name);
    }
    if (ok && fc) {
      *fc = f;
      if (!fc->provider[0])
        snprintf(fc->provider, sizeof(fc->provider), "%s", chain[i]->ops->name);
    } else {
      cs_series_free(&f);
    }
    *has_cur = c;
    *has_fc = ok;
    return (int)i;
  }
  return -1;
}

cs_err cs_signals_zone_data(cs_signals *s, const char *zone, int64_t now,
                            int64_t at, int64_t from, int64_t to,
                            cs_signal *current, bool *has_current,
                            cs_series *forecast, bool *has_forecast)
{
  *has_current = *has_forecast = false;
  memset(forecast, 0, sizeof(*forecast));
  if (!zone || !*zone)
    return CS_ENOTFOUND;
  cs_provider *chain[MAX_PROVIDERS];
  size_t n = chain_for(s, zone, NULL, chain);
  return zone_provider(s, chain, n, zone, now, at, from, to, true, current,
                       has_current, forecast, has_forecast) >= 0
             ? CS_OK
             : CS_ENOTFOUND;
}

static const char *entry_state(const cs_signals *s, const entry *e, int64_t now)
{
  if (!e->cur.attempted)
    return "pending";
  if (!value_fresh(s, e, now))
    /* "Not served" is an answer (a zone the provider does not cover, a null
     * value), not an outage. */
    return e->cur.last_rc == CS_ENOTFOUND ? "notServed" : "stale";
  return e->cur.last_rc == CS_OK ? "ok" : "failing";
}

static bool entry_degraded(const cs_signals *s, const entry *e, int64_t now)
{
  const char *st = entry_state(s, e, now);
  return strcmp(st, "stale") == 0 || strcmp(st, "failing") == 0;
}

/* Whether a provider of the chain up to the one answering (`who`, or all
 * when none answers) has a degraded cached signal for `zone`. */
static bool zone_degraded(cs_signals *s, cs_provider **chain, size_t n, int who,
                          const char *zone, int64_t now)
{
  size_t upto = who >= 0 ? (size_t)who + 1 : n;
  bool degraded = false;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < upto && !degraded; i++) {
    const entry *e = find_entry(s, chain[i], zone);
    degraded = e && entry_degraded(s, e, now);
  }
  pthread_mutex_unlock(&s->mu);
  return degraded;
}

/* Every zone worth reporting: those routes name, and those asked for. */
static size_t known_zones(cs_signals *s, char (*zones)[CS_ZONE_MAX], size_t cap)
{
  size_t n = 0;
  for (size_t r = 0; r < s->nroutes + s->nentries && n < cap; r++) {
    const char *z =
        r < s->nroutes ? s->routes[r].zone : s->entries[r - s->nroutes]->zone;
    if (strcmp(z, "*") == 0)
      continue;
    bool dup = false;
    for (size_t k = 0; k < n && !dup; k++)
      dup = strcmp(zones[k], z) == 0;
    if (!dup)
      memcpy(zones[n++], z, strlen(z) + 1);
  }
  return n;
}

bool cs_signals_status(cs_signals *s, int64_t now, cs_buf *out)
{
  /* Healthy unless a zone is degraded: a failing provider behind the one
   * serving a zone (with no routes, every remote provider is asked about
   * every zone) shows in its signal's state but degrades nothing decided. */
  bool healthy = true;
  cs_buf sig;
  cs_buf_init(&sig, 0);
  cs_json_open(&sig, NULL, '[');
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->nentries; i++) {
    const entry *e = s->entries[i];
    const char *st = entry_state(s, e, now);
    cs_json_open(&sig, NULL, '{');
    cs_json_str(&sig, "provider", e->p->ops->name);
    cs_json_str(&sig, "zone", e->zone);
    cs_json_str(&sig, "state", st);
    if (e->has_value) {
      cs_json_num(&sig, "gPerKwh", e->value.g_per_kwh, 3);
      cs_json_int(&sig, "ageSeconds", now - e->value.observed_at);
    }
    cs_json_int(&sig, "failures", e->cur.failures);
    if (e->cur.attempted && e->cur.last_rc != CS_OK)
      cs_json_str(&sig, "lastError", cs_strerror(e->cur.last_rc));
    cs_json_bool(&sig, "forecast", fc_fresh(s, e, now));
    /* A forecast fetch's own failure: it decides nothing of the signal's
     * state (a plan without forecast access fails it for ever), but an
     * operator must see why a zone cannot be planned. */
    if (e->fcs.attempted && e->fcs.last_rc != CS_OK &&
        e->fcs.last_rc != CS_ENOTFOUND)
      cs_json_str(&sig, "lastForecastError", cs_strerror(e->fcs.last_rc));
    cs_json_close(&sig, '}');
  }
  char(*zones)[CS_ZONE_MAX] =
      cs_calloc(s->nroutes + s->nentries + 1, CS_ZONE_MAX);
  size_t nz = known_zones(s, zones, s->nroutes + s->nentries);
  pthread_mutex_unlock(&s->mu);
  cs_json_close(&sig, ']');

  cs_json_open(out, NULL, '{');
  cs_json_str(out, "rankingSignal", cs_signal_type_name(s->ranking_type));
  cs_json_open(out, "providers", '[');
  for (size_t i = 0; i < s->nproviders; i++)
    cs_json_str(out, NULL, s->providers[i]->ops->name);
  cs_json_close(out, ']');
  cs_buf zb;
  cs_buf_init(&zb, 0);
  cs_json_open(&zb, NULL, '[');
  for (size_t i = 0; i < nz; i++) {
    cs_provider *chain[MAX_PROVIDERS];
    size_t n = chain_for(s, zones[i], NULL, chain);
    /* Served by the provider decisions take the zone's data from. */
    cs_signal v;
    bool cur, fc;
    int who = zone_provider(s, chain, n, zones[i], now, now,
                            now - CS_SIGNALS_FORECAST_BACK_S, now + 3600, false,
                            &v, &cur, NULL, &fc);
    /* Served by a forecast alone is degraded too: the provider has no
     * current value to give. */
    bool degraded =
        zone_degraded(s, chain, n, who, zones[i], now) || (who >= 0 && !cur);
    if (degraded)
      healthy = false;
    cs_json_open(&zb, NULL, '{');
    cs_json_str(&zb, "zone", zones[i]);
    cs_json_str(&zb, "servedBy", who >= 0 ? chain[who]->ops->name : NULL);
    if (who >= 0 && !cur)
      cs_json_bool(&zb, "forecastOnly", true);
    cs_json_bool(&zb, "degraded", degraded);
    cs_json_close(&zb, '}');
    const char *l[] = {zones[i]};
    cs_metrics_set(s->metrics, M_DEGRADED, l, degraded ? 1 : 0);
  }
  cs_json_close(&zb, ']');
  cs_json_bool(out, "degraded", !healthy);
  cs_json_raw(out, "signals", sig.data, sig.len);
  cs_json_raw(out, "zones", zb.data, zb.len);
  cs_json_close(out, '}');
  cs_buf_free(&sig);
  cs_buf_free(&zb);
  free(zones);
  return healthy;
}
