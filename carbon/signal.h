/* signal.h: grid carbon-intensity values, forecast series, and the provider
 * interface every source of them implements (builtin, static, file,
 * electricitymaps, watttime, ukgrid). A value always travels with where it
 * came from, what kind of signal it is, and how old it is, so that nothing
 * downstream mixes signal types or mistakes a stale value for a fresh one.
 * Thread-safe: values and series are plain data. A provider's ops may be
 * called from several threads at once unless the provider says otherwise;
 * network providers are called only by the refresher (carbon/signals.h), never
 * on the scheduling hot path.
 * Ownership: a cs_series owns its points (cs_series_free); a provider handle
 * is owned by whoever created it until handed to cs_signals_add_provider. */
#ifndef CS_SIGNAL_H
#define CS_SIGNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/error.h"

typedef enum cs_signal_type {
  CS_SIGNAL_AVERAGE = 0, /* average (attributional) intensity: accounting */
  CS_SIGNAL_MARGINAL = 1 /* marginal operating emissions rate */
} cs_signal_type;

const char *cs_signal_type_name(cs_signal_type t); /* "average", "marginal" */
cs_err cs_signal_type_parse(const char *s, cs_signal_type *out) CS_MUST_USE;

/* What an average intensity counts (docs/carbon-providers.md, "Emission-
 * factor basis"): combustion only, or combustion plus the plants' fuel
 * supply and construction. The two differ by more than many zones differ
 * from each other (3.7 x for NO), so figures on different bases do not
 * compare; nothing converts one into the other. */
typedef enum cs_factor_basis {
  CS_FACTOR_UNSTATED = 0, /* the source does not say (a static value) */
  CS_FACTOR_LIFECYCLE = 1,
  CS_FACTOR_DIRECT = 2
} cs_factor_basis;

/* "unstated", "lifecycle", "direct". */
const char *cs_factor_basis_name(cs_factor_basis f);

/* The highest intensity a trace file may hold, in gCO2e/kWh. The dirtiest
 * grids average about 1,100 and marginal rates reach about 1,600: a larger
 * figure is a unit or data error, and would swamp the running sums a
 * replay keeps (one 1e19 row zeroed every result of a simulation). */
#define CS_INTENSITY_MAX 10000.0

#define CS_PROVIDER_NAME_MAX 24
#define CS_ZONE_MAX 48

/* One intensity value, always in gCO2e/kWh. */
typedef struct cs_signal {
  double g_per_kwh;
  cs_signal_type type;
  char provider[CS_PROVIDER_NAME_MAX];
  char zone[CS_ZONE_MAX];
  int64_t observed_at; /* start of the period the value describes (Unix s) */
  int64_t fetched_at;  /* when carbonshift obtained it (Unix s) */
  bool estimated;      /* the provider marked it estimated, or it is a
                          typical profile rather than a measurement */
  cs_factor_basis factor;
} cs_signal;

/* A step function: points[i].g_per_kwh holds from points[i].at until the
 * next point, but for at most `max_hold` seconds (`step` when 0); the last
 * point holds for `step`. A longer spacing is a hole: a period the source
 * gave no value for (a null it skipped, a missing row). Nothing is known
 * there, so lookups and means that touch a hole fail rather than carry the
 * previous value across it. Points are in strictly increasing time order. */
typedef struct cs_point {
  int64_t at;
  double g_per_kwh;
} cs_point;

typedef struct cs_series {
  cs_point *points;
  size_t len;
  int64_t step; /* nominal spacing in seconds (e.g. 3600, 1800, 300) */
  /* The longest a point holds before the next; 0 = `step`. Only a source
   * whose own model holds each row until the next (the simulator's
   * traces) sets it larger. */
  int64_t max_hold;
  cs_signal_type type;
  cs_factor_basis factor;
  /* When the provider made the forecast (Unix s; 0: not said): its age is
   * held to carbon.maxObservationAge as a current value's is. */
  int64_t generated_at;
  char provider[CS_PROVIDER_NAME_MAX];
  char zone[CS_ZONE_MAX];
} cs_series;

void cs_series_free(cs_series *s);
/* Appends a point to an empty series or one built by cs_series_push (the
 * array grows in powers of two); the caller keeps times strictly
 * increasing. */
void cs_series_push(cs_series *s, int64_t at, double g_per_kwh);
/* Copies into *out the points of `in` whose period overlaps [from, to)
 * (metadata too); out->len is 0 when none does. */
void cs_series_slice(const cs_series *in, int64_t from, int64_t to,
                     cs_series *out);
/* The index of the point in force at t (binary search), or -1 when t is
 * outside [points[0].at, cs_series_end) or in a hole. */
long cs_series_index_at(const cs_series *s, int64_t t);
/* The series' end: the last point's time plus `step`. */
int64_t cs_series_end(const cs_series *s);
/* Where point i stops holding: the next point's time, or earlier when a
 * hole follows it. */
int64_t cs_series_point_end(const cs_series *s, size_t i);
/* The time-weighted mean over [start, start + duration). CS_ENOTFOUND when
 * the series does not cover the whole window, holes included (never
 * extrapolated, never filled in). */
cs_err cs_series_window_mean(const cs_series *s, int64_t start,
                             int64_t duration, double *mean) CS_MUST_USE;
/* The time-weighted mean over the part of [start, start + duration) the
 * series covers without a break from `start` on (up to its end or its
 * first hole), that part's length in `*covered`. CS_ENOTFOUND (covered 0)
 * when `start` itself is not covered. */
cs_err cs_series_prefix_mean(const cs_series *s, int64_t start,
                             int64_t duration, double *mean,
                             int64_t *covered) CS_MUST_USE;

/* Provider interface. `current` gives the value in force at `now`;
 * `forecast` gives the series over [from, to) as far as the provider knows
 * it (it may end earlier: callers check). Both return CS_ENOTFOUND for a
 * zone the provider does not serve, and write nothing on error. */
typedef struct cs_provider cs_provider;
typedef struct cs_provider_ops {
  const char *name;
  cs_err (*current)(cs_provider *p, const char *zone, int64_t now,
                    cs_signal *out);
  cs_err (*forecast)(cs_provider *p, const char *zone, int64_t from, int64_t to,
                     cs_series *out);
  /* Whether this provider does network I/O (then the refresher caches it and
   * the hot path never calls it directly). */
  bool remote;
  void (*free)(cs_provider *p);
} cs_provider_ops;

struct cs_provider {
  const cs_provider_ops *ops;
  /* Set by cs_provider_cancel; network providers check it in every
   * request. */
  atomic_bool cancel;
};

void cs_provider_free(cs_provider *p); /* NULL does nothing */
/* Makes p's network requests end within about a second, and any later ones
 * at once, with CS_ECANCELED: a stop need not wait out their timeouts.
 * Thread-safe; for good (there is no undo). */
void cs_provider_cancel(cs_provider *p);

#endif
