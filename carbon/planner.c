#include "carbon/planner.h"

#include <math.h>
#include <string.h>

cs_err cs_plan_emissions(const cs_plan_option *o, int64_t start, double *g,
                         double *mean_intensity)
{
  double mean;
  if (!o->forecast || o->runtime_s <= 0 ||
      cs_series_window_mean(o->forecast, start, o->runtime_s, &mean) != CS_OK)
    return CS_ENOTFOUND;
  *g = o->energy_kwh * mean + o->embodied_g;
  if (mean_intensity)
    *mean_intensity = mean;
  return CS_OK;
}

static bool fits(const cs_plan_option *o, double g)
{
  return o->budget_g <= 0 || g <= o->budget_g;
}

bool cs_plan_intensity_now(const cs_series *forecast, double current,
                           int64_t now, int64_t runtime_s, double *mean,
                           int64_t *forecast_s)
{
  *forecast_s = 0;
  if (forecast && runtime_s > 0 &&
      cs_series_prefix_mean(forecast, now, runtime_s, mean, forecast_s) ==
          CS_OK)
    return true;
  if (!(current >= 0))
    return false;
  *mean = current;
  return true;
}

/* The emissions of running option `o` from `now`, at
 * cs_plan_intensity_now's intensity: the figure the filter's estimates are
 * (scheduler/policy.c), so that what fits "now" there fits now here. */
static bool emissions_now(const cs_plan_option *o, int64_t now, double *g,
                          double *mean)
{
  int64_t fs;
  if (!cs_plan_intensity_now(o->forecast, o->current, now, o->runtime_s, mean,
                             &fs))
    return false;
  *g = o->energy_kwh * *mean + o->embodied_g;
  return true;
}

/* The best budget-fitting candidate over one option's starts. */
typedef struct best {
  bool found;
  bool covered; /* some start's whole run was known, fitting or not */
  int64_t start;
  size_t option;
  double g, mean;
} best;

static void consider(best *b, const cs_plan_option *o, size_t idx,
                     int64_t start)
{
  double g, mean;
  if (cs_plan_emissions(o, start, &g, &mean) != CS_OK)
    return;
  b->covered = true;
  if (!fits(o, g))
    return;
  /* Ties go to the earlier start, then to the lower option index, so the
   * same inputs always give the same plan. */
  if (!b->found || g < b->g ||
      (g == b->g &&
       (start < b->start || (start == b->start && idx < b->option)))) {
    b->found = true;
    b->start = start;
    b->option = idx;
    b->g = g;
    b->mean = mean;
  }
}

/* The first point index at or after t. */
static size_t lower_bound(const cs_series *s, int64_t t)
{
  size_t lo = 0, hi = s->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->points[mid].at < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void search_option(best *b, const cs_plan_option *o, size_t idx,
                          int64_t now)
{
  if (!o->forecast || !o->forecast->len || o->latest_start < now)
    return;
  const cs_series *s = o->forecast;
  consider(b, o, idx, now);
  consider(b, o, idx, o->latest_start);
  /* Breakpoints: starts where a point begins, and starts whose run ends
   * where a point stops holding (the next point, a hole or the series'
   * end). Between them the emissions are linear in the start. */
  for (size_t i = lower_bound(s, now);
       i < s->len && s->points[i].at <= o->latest_start; i++)
    consider(b, o, idx, s->points[i].at);
  /* Point i stops holding at or before point i + 1 begins, so the first
   * end at or after now + runtime is that of the point before. */
  size_t first = lower_bound(s, now + o->runtime_s);
  for (size_t i = first ? first - 1 : 0; i < s->len; i++) {
    int64_t start = cs_series_point_end(s, i) - o->runtime_s;
    if (start > o->latest_start)
      break; /* point ends only grow */
    if (start >= now)
      consider(b, o, idx, start);
  }
}

/* Whether emitting `later_g` instead of `now_g` saves enough to wait for:
 * both margins, relative and absolute. */
static bool worth_waiting(const cs_plan_params *p, double now_g, double later_g)
{
  return later_g < now_g && now_g - later_g >= p->min_saving_abs_g &&
         later_g <= now_g * (1 - p->min_saving_rel);
}

cs_err cs_plan_window(const cs_plan_params *p, const cs_plan_option *opts,
                      size_t n, int64_t now, int64_t kept_start, cs_plan *out)
{
  return cs_plan_window_at(p, opts, n, now, now, kept_start, out);
}

cs_err cs_plan_window_at(const cs_plan_params *p, const cs_plan_option *opts,
                         size_t n, int64_t at, int64_t now, int64_t kept_start,
                         cs_plan *out)
{
  memset(out, 0, sizeof(*out));
  out->now_g = NAN;
  if (at > now)
    at = now;
  out->start = now;

  /* Starting now: the best option regardless of budget (for the message),
   * and whether any option fits its budget. */
  bool any = false, fit_now_found = false;
  double fit_now_g = 0, fit_now_mean = 0;
  size_t fit_now_option = 0;
  for (size_t i = 0; i < n; i++) {
    double g, mean;
    if (!emissions_now(&opts[i], at, &g, &mean))
      continue;
    if (!any || g < out->now_g) {
      out->now_g = g;
      out->now_intensity = mean;
      out->now_option = i;
    }
    any = true;
    if (fits(&opts[i], g) && (!fit_now_found || g < fit_now_g)) {
      fit_now_found = true;
      fit_now_g = g;
      fit_now_mean = mean;
      fit_now_option = i;
    }
  }

  /* Every start where a run's coverage begins or ends is a breakpoint the
   * search examines, so it meets a covered start in [now, latest start] if
   * there is one; now counts also once the slack has run out. */
  best b = {0};
  for (size_t i = 0; i < n; i++) {
    double g;
    if (cs_plan_emissions(&opts[i], at, &g, NULL) == CS_OK)
      b.covered = true;
    search_option(&b, &opts[i], i, now);
  }
  out->forecast_short = !b.covered;
  if (!any && !b.found)
    return CS_ENOTFOUND;

  out->fits_now = fit_now_found;
  out->feasible = fit_now_found || b.found;
  if (fit_now_found) {
    out->option = fit_now_option;
    out->start_g = fit_now_g;
    out->start_intensity = fit_now_mean;
  }
  if (!b.found || b.start <= now)
    return CS_OK; /* nothing later is better, or we cannot see later */

  /* An earlier plan stands unless the new best beats it by replan_rel,
   * and only while it is still worth waiting for: a kept plan that no
   * longer pays off by the margins gives way to the new best. */
  if (kept_start > now) {
    best k = {0};
    for (size_t i = 0; i < n; i++)
      if (kept_start <= opts[i].latest_start)
        consider(&k, &opts[i], i, kept_start);
    if (k.found && !(b.g < k.g * (1 - p->replan_rel)) &&
        (!fit_now_found || worth_waiting(p, fit_now_g, k.g))) {
      b = k;
      out->kept = true;
    }
  }

  /* Wait only when it is worth it, or when nothing fits now. */
  bool worth = fit_now_found && worth_waiting(p, fit_now_g, b.g);
  /* The planned start has come: the kept plan is now "start now", which a
   * new forecast displaces only as it would any kept plan. */
  if (kept_start > 0 && kept_start <= now && fit_now_found)
    worth = worth && b.g < fit_now_g * (1 - p->replan_rel);
  if (!fit_now_found || worth) {
    out->wait = true;
    out->start = b.start;
    out->option = b.option;
    out->start_g = b.g;
    out->start_intensity = b.mean;
  }
  return CS_OK;
}
