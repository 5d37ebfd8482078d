/* signals.h: the one place the scheduling code asks for grid intensity. It
 * holds the configured providers, routes each zone to an ordered list of
 * them (first that answers wins), and refuses values whose signal type
 * differs from the one nodes are ranked on: a marginal and an average value
 * are never compared. No answer is CS_ENOTFOUND, which callers treat as
 * neutral; a number is never invented.
 * Remote providers (ops->remote) are never called by current/forecast: a
 * background refresher per provider keeps a cache per (provider, zone) with
 * a TTL, jitter and exponential backoff, one fetch in flight per key, and
 * the hot path only copies from that cache under a short lock that is never
 * held during I/O. A failing provider's last good value is served until it
 * max_age old (counted from its fetch), then the next provider in the
 * route answers. A fetched value describing a period that began more than
 * max_observation_age ago counts as a failed fetch (stale upstream data).
 * Thread-safe: cs_signals_current/forecast/status/refresh_now may be called
 * from any number of threads once configuration (set_opts, add_provider,
 * set_route, start) is done.
 * Ownership: providers handed to cs_signals_add_provider belong to the
 * registry; the metrics registry is borrowed and must outlive it; output
 * values are copied to the caller; series are owned by the caller
 * (cs_series_free). */
#ifndef CS_SIGNALS_H
#define CS_SIGNALS_H

#include "carbon/signal.h"
#include "carbon/util/buf.h"
#include "carbon/util/metrics.h"

typedef struct cs_signals cs_signals;

/* How far before its fetch a remote provider's forecast is asked for, and
 * where decisions ask the cache from: a pod is judged from its planned
 * start up to 10 minutes after it (scheduler/policy.c). A provider whose
 * forecast begins later completes the window with measured values, or
 * leaves it unknown. (The point in force at the window's start is part of
 * every window, however long before it began.) */
#define CS_SIGNALS_FORECAST_BACK_S (15 * 60)

/* How far after now a fetched value's period may begin, or a forecast say
 * it was made, and still be taken as the current one: clock skew between
 * carbonshift and the provider. More is a time error upstream (local time
 * sent as UTC shows as whole hours ahead), refused as a bad response. */
#define CS_SIGNALS_MAX_AHEAD_S (10 * 60)

/* Cache and refresh settings; zero fields take the defaults shown. */
typedef struct cs_signals_opts {
  int64_t ttl_s;                 /* refresh a healthy key every ttl_s (300) */
  double jitter;                 /* +/- this fraction of every delay (0.1) */
  int64_t backoff_min_s;         /* first retry after a failure (15) */
  int64_t backoff_max_s;         /* retries back off up to this (900) */
  int64_t max_age_s;             /* serve the last good value and forecast until
                                    this long after their fetch (3600) */
  int64_t max_observation_age_s; /* refuse a fetched value whose period began
                                    longer ago than this (10800) */
  int64_t horizon_s;             /* forecast span fetched (172800) */
  size_t max_keys; /* (provider, zone) pairs cached at most (1024) */
} cs_signals_opts;

cs_signals *cs_signals_new(cs_signal_type ranking_type);
/* Stops refreshing for good: no fetch starts, and those in flight end
 * within about a second (cs_provider_cancel) rather than at their
 * timeouts. The cache keeps answering with what it holds. Called at the
 * start of a graceful stop; thread-safe; NULL does nothing. */
void cs_signals_stop(cs_signals *s);
/* cs_signals_stop, then waits for the refreshers and frees the providers. */
void cs_signals_free(cs_signals *s);
cs_signal_type cs_signals_ranking_type(const cs_signals *s);
/* Before cs_signals_start. NULL restores the defaults. */
void cs_signals_set_opts(cs_signals *s, const cs_signals_opts *o);

/* Adds a provider (ownership transferred). Names must be unique. */
cs_err cs_signals_add_provider(cs_signals *s, cs_provider *p) CS_MUST_USE;
/* Routes `zone` ("*" for every zone without its own route) to providers by
 * name, in order of preference. Without any route, every provider is tried
 * in the order added. CS_ENOTFOUND names an unknown provider. */
cs_err cs_signals_set_route(cs_signals *s, const char *zone,
                            const char *const *providers, size_t n) CS_MUST_USE;

/* Starts one refresher thread per remote provider and registers the zones
 * the routes name. `metrics` may be NULL. Call once, after configuration. */
cs_err cs_signals_start(cs_signals *s, cs_metrics *metrics) CS_MUST_USE;

/* Fetches `zone` now, in the calling thread, from every remote provider of
 * its route (or `only`) and stores the results in the cache: for tools and
 * tests, never the hot path. CS_OK when at least one fetch succeeded (or no
 * provider is remote); otherwise the first error. */
cs_err cs_signals_refresh_now(cs_signals *s, const char *zone, const char *only,
                              int64_t now) CS_MUST_USE;

/* The value in force for `zone` at `now`. With `only` non-NULL, asks that
 * provider alone. Remote providers answer from the cache; the first ask for
 * a zone registers it with the refresher and falls through to the next
 * provider until its first fetch completes. */
cs_err cs_signals_current(cs_signals *s, const char *zone, const char *only,
                          int64_t now, cs_signal *out) CS_MUST_USE;

/* A zone's data for one decision, all from one provider: the first of the
 * zone's route with a current value at `now` or a forecast over [from, to)
 * that covers `at`, the instant the decision judges runs from (both of the
 * ranking type). It gives whichever of the two that provider has
 * (`*has_current`, `*has_forecast`; the forecast then need not cover `at`;
 * the series is the caller's to free). Taking the current value from one
 * provider and the forecast from another would set one provider's "now"
 * against another's "later" in a plan, or replace a measured value by a
 * model's mean. CS_ENOTFOUND when no provider has either. */
cs_err cs_signals_zone_data(cs_signals *s, const char *zone, int64_t now,
                            int64_t at, int64_t from, int64_t to,
                            cs_signal *current, bool *has_current,
                            cs_series *forecast,
                            bool *has_forecast) CS_MUST_USE;

/* The rule every value a remote provider fetches must pass before it is
 * cached, for tools that call providers themselves (`intensity`): CS_ESTALE,
 * with one "Carbon provider returned stale data" log line, when `v`
 * describes a period that began more than o->max_observation_age_s (its
 * default when 0; o may be NULL) before `now`; CS_EPARSE, with one "Carbon
 * provider returned a value for a period that has not begun" line, when it
 * begins more than CS_SIGNALS_MAX_AHEAD_S after `now`; otherwise CS_OK. */
cs_err cs_signals_check_observation(const cs_signals_opts *o,
                                    const cs_signal *v,
                                    int64_t now) CS_MUST_USE;

/* The same rule for a forecast that says when it was made
 * (cs_series.generated_at; one without passes): "Carbon provider returned a
 * stale forecast", or "... a forecast made in the future". */
cs_err cs_signals_check_forecast(const cs_signals_opts *o, const cs_series *f,
                                 int64_t now) CS_MUST_USE;

/* Appends a JSON object describing every provider and route's health to
 * `out`, judged at `now`: {"rankingSignal", "providers": [names],
 * "degraded": bool, "signals": [{"provider", "zone", "state", "gPerKwh",
 * "ageSeconds", "failures", "lastError", "forecast", "lastForecastError"}],
 * "zones": [{"zone", "servedBy", "forecastOnly", "degraded"}]}. A cached
 * signal's state is that of its current value: pending (never fetched),
 * ok, failing (last fetch failed; the last good value is still served),
 * stale (no value younger than max_age after a failure) or notServed (the
 * provider has no data for the zone: not an outage). servedBy is the
 * provider decisions take the zone's data from (cs_signals_zone_data);
 * forecastOnly when it has no current value. A zone is degraded when that
 * provider or one ahead of it is failing or stale, or it serves a forecast
 * alone. Returns false when any cached signal or zone is degraded. */
bool cs_signals_status(cs_signals *s, int64_t now, cs_buf *out);

#endif
