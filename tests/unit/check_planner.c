/* The window planner against brute force on the real traces of
 * ../shared/data/carbon: every minute of the slack is tried, each run's
 * emissions summed minute by minute from the raw trace, independently of
 * cs_series_window_mean and of the planner's breakpoint search. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/planner.h"
#include "carbon/util/alloc.h"
#include "carbon/util/parse.h"
#include "tests/unit/testutil.h"

/* Loads column `col` (0-based, after the timestamp) of a trace CSV whose
 * first column is "YYYY-MM-DD hh:mm:ss" UTC. */
static cs_series load_trace(const char *rel, int col, int64_t step)
{
  size_t len;
  char *text = tu_read_shared(rel, &len);
  cs_series s = {.step = step, .type = CS_SIGNAL_AVERAGE};
  size_t cap = 0;
  char *next = strchr(text, '\n'); /* skip the header */
  while (next && *++next) {
    char *line = next;
    next = strchr(line, '\n');
    if (next)
      *next = '\0';
    char stamp[32];
    if (strlen(line) < 19)
      continue;
    snprintf(stamp, sizeof(stamp), "%.10sT%.8sZ", line, line + 11);
    int64_t at;
    const char *e;
    ck_assert_int_eq(cs_parse_rfc3339(stamp, &at, &e), CS_OK);
    char *p = line;
    for (int c = 0; c <= col && p; c++) {
      p = strchr(p, ',');
      if (p)
        p++;
    }
    ck_assert_ptr_nonnull(p);
    double v = strtod(p, NULL);
    if (s.len && at <= s.points[s.len - 1].at)
      continue; /* the GB trace has a few out-of-grid rows */
    if (s.len == cap) {
      cap = cap ? cap * 2 : 4096;
      s.points = cs_realloc(s.points, cap * sizeof(*s.points));
    }
    s.points[s.len++] = (cs_point){at, v};
  }
  free(text);
  return s;
}

/* The intensity in force in minute m after t0, by a forward walk; NAN
 * where nothing is known: a point holds for at most `step` (max_hold is 0
 * here), so a longer spacing leaves a hole. */
static double *per_minute(const cs_series *s, int64_t t0, size_t minutes)
{
  double *v = cs_malloc(minutes * sizeof(*v));
  size_t i = 0;
  for (size_t m = 0; m < minutes; m++) {
    int64_t t = t0 + (int64_t)m * 60;
    while (i + 1 < s->len && s->points[i + 1].at <= t)
      i++;
    bool known = t >= s->points[i].at && t < s->points[i].at + s->step;
    v[m] = known ? s->points[i].g_per_kwh : NAN;
  }
  return v;
}

typedef struct brute {
  double g;
  int64_t start;
} brute;

/* The best start by trying every minute in [now, latest]. A later start
 * needs its whole run known; starting now is judged on the minutes known
 * from now until the first unknown one, their mean held for the rest, or
 * without any on the current value. */
static brute brute_force(const cs_series *s, const cs_plan_option *o,
                         int64_t now)
{
  size_t run_min = (size_t)(o->runtime_s / 60);
  size_t slack_min = (size_t)((o->latest_start - now) / 60);
  double *v = per_minute(s, now, slack_min + run_min + 1);
  brute best = {INFINITY, 0};
  for (size_t k = 0; k <= slack_min; k++) {
    double sum = 0;
    for (size_t m = 0; m < run_min; m++)
      sum += v[k + m];
    double mean = sum / (double)run_min;
    if (k == 0 && isnan(sum)) {
      double known_sum = 0;
      size_t known = 0;
      for (; known < run_min && !isnan(v[known]); known++)
        known_sum += v[known];
      mean = known             ? known_sum / (double)known
             : o->current >= 0 ? o->current
                               : NAN;
    }
    double g = o->energy_kwh * mean + o->embodied_g;
    if (!isnan(g) && g < best.g - 1e-9) {
      best.g = g;
      best.start = now + (int64_t)k * 60;
    }
  }
  free(v);
  return best;
}

static const cs_plan_params no_margin = {0, 0, 0};

START_TEST(test_planner_plan_window_matches_brute_force_lwa)
{
  static const char *traces[] = {"data/carbon/lwa-2020/DE.csv",
                                 "data/carbon/lwa-2020/FR.csv",
                                 "data/carbon/lwa-2020/GB.csv"};
  static const int64_t steps[] = {900, 1800, 1800};
  cs_series s = load_trace(traces[_i], 0, steps[_i]);
  /* Runs that are not whole steps make ends and starts fall apart. */
  static const double hours[] = {0.5, 97 / 60.0, 310 / 60.0, 36};
  static const double slack_h[] = {0.25, 2, 8, 24};
  unsigned seed = 42u + (unsigned)_i;
  for (int c = 0; c < 12; c++) {
    /* A start in 2020, on the minute, away from the trace's ends. */
    int64_t now = 1577836800 + (int64_t)(rand_r(&seed) % (360 * 1440)) * 60;
    cs_plan_option o = {.forecast = &s,
                        .current = -1,
                        .energy_kwh = 100,
                        .embodied_g = 500,
                        .runtime_s = (int64_t)(hours[c % 4] * 3600),
                        .latest_start = now + (int64_t)(slack_h[c / 3] * 3600)};
    brute b = brute_force(&s, &o, now);
    cs_plan p;
    ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
    double planned = p.wait ? p.start_g : p.now_g;
    ck_assert_msg(fabs(planned - b.g) < 1e-6 * b.g,
                  "%s case %d: planner %.6f at %lld, brute %.6f at %lld",
                  traces[_i], c, planned, (long long)p.start, b.g,
                  (long long)b.start);
    ck_assert(p.start >= now && p.start <= o.latest_start);
    ck_assert_int_eq(p.wait, b.start > now && b.g < p.now_g - 1e-9);
  }
  cs_series_free(&s);
}
END_TEST

/* Holes: points removed from the DE trace at random (a provider's skipped
 * nulls) leave periods nothing is known about. No run that touches one is
 * planned, and the planner still finds brute force's best start among the
 * others, also where the hole ends inside a run or the run ends at a
 * hole's start. */
START_TEST(test_planner_plan_window_holes_brute_force)
{
  cs_series s = load_trace("data/carbon/lwa-2020/DE.csv", 0, 900);
  unsigned seed = 7;
  size_t kept = 0;
  for (size_t i = 0; i < s.len; i++)
    if (i == 0 || i + 1 == s.len || rand_r(&seed) % 40 != 0)
      s.points[kept++] = s.points[i];
  s.len = kept;
  static const double hours[] = {0.5, 97 / 60.0, 310 / 60.0};
  int waited = 0, unknown_now = 0, partial_now = 0;
  for (int c = 0; c < 60; c++) {
    int64_t now = 1577836800 + (int64_t)(rand_r(&seed) % (360 * 1440)) * 60;
    cs_plan_option o = {.forecast = &s,
                        .current = -1,
                        .energy_kwh = 100,
                        .embodied_g = 500,
                        .runtime_s = (int64_t)(hours[c % 3] * 3600),
                        .latest_start = now + 6 * 3600};
    brute b = brute_force(&s, &o, now);
    cs_plan p;
    cs_err rc = cs_plan_window(&no_margin, &o, 1, now, 0, &p);
    if (isinf(b.g)) {
      ck_assert_int_eq(rc, CS_ENOTFOUND); /* every start touches a hole */
      continue;
    }
    ck_assert_int_eq(rc, CS_OK);
    double planned = p.wait ? p.start_g : p.now_g;
    ck_assert_msg(fabs(planned - b.g) < 1e-6 * b.g,
                  "case %d: planner %.6f at %lld, brute %.6f at %lld", c,
                  planned, (long long)p.start, b.g, (long long)b.start);
    /* A later start is planned only on a run known whole. */
    double mean;
    if (p.wait)
      ck_assert_int_eq(cs_series_window_mean(&s, p.start, o.runtime_s, &mean),
                       CS_OK);
    waited += p.wait;
    unknown_now += isnan(p.now_g);
    partial_now += !isnan(p.now_g) &&
                   cs_series_window_mean(&s, now, o.runtime_s, &mean) != CS_OK;
  }
  /* The holes were met: some runs could not start now, some were judged
   * on the part before a hole. */
  ck_assert_int_gt(unknown_now, 0);
  ck_assert_int_gt(partial_now, 0);
  ck_assert_int_gt(waited, 0);
  cs_series_free(&s);
}
END_TEST

/* Two zones, different energies: the planner picks the zone and the start
 * that together minimise emissions. */
START_TEST(test_planner_plan_window_across_zones_brute_force)
{
  cs_series de = load_trace("data/carbon/em-2023/DE.csv", 4, 3600);
  cs_series es = load_trace("data/carbon/em-2023/ES.csv", 4, 3600);
  unsigned seed = 7;
  for (int c = 0; c < 10; c++) {
    int64_t now = 1672531200 + (int64_t)(rand_r(&seed) % (350 * 1440)) * 60;
    cs_plan_option o[2] = {{.forecast = &de,
                            .current = -1,
                            .energy_kwh = 80,
                            .embodied_g = 900,
                            .runtime_s = 6 * 3600,
                            .latest_start = now + 12 * 3600},
                           {.forecast = &es,
                            .current = -1,
                            .energy_kwh = 200,
                            .embodied_g = 300,
                            .runtime_s = 15 * 3600,
                            .latest_start = now + 3 * 3600}};
    brute b0 = brute_force(&de, &o[0], now), b1 = brute_force(&es, &o[1], now);
    brute b = b0.g <= b1.g ? b0 : b1;
    cs_plan p;
    ck_assert_int_eq(cs_plan_window(&no_margin, o, 2, now, 0, &p), CS_OK);
    double planned = p.wait ? p.start_g : p.now_g;
    ck_assert_msg(fabs(planned - b.g) < 1e-6 * b.g, "case %d: %f vs %f", c,
                  planned, b.g);
    if (p.wait)
      ck_assert_uint_eq(p.option, b0.g <= b1.g ? 0 : 1);
  }
  cs_series_free(&de);
  cs_series_free(&es);
}
END_TEST

/* A synthetic day: 300 g/kWh, except 100 g/kWh from 02:00 to 06:00. */
static cs_series valley(void)
{
  cs_series s = {.step = 3600, .type = CS_SIGNAL_AVERAGE};
  s.points = cs_malloc(48 * sizeof(*s.points));
  for (int h = 0; h < 48; h++)
    s.points[h] = (cs_point){1795392000 + h * 3600, /* 2026-11-23T00:00Z */
                             (h % 24 >= 2 && h % 24 < 6) ? 100 : 300};
  s.len = 48;
  return s;
}

/* "Starting now", case by case, on the valley (300, then 100 from 02:00 to
 * 06:00): the whole run's mean; the mean of the part before the forecast
 * ends or before a hole, held for the rest; the current value only when
 * the forecast does not say what holds at the start. */
START_TEST(test_planner_intensity_now_cases)
{
  cs_series s = valley();
  int64_t t0 = s.points[0].at;
  double mean;
  int64_t fs;
  /* 00:30 for 4 h: 1.5 h at 300, 2.5 h at 100. */
  ck_assert(cs_plan_intensity_now(&s, 999, t0 + 1800, 4 * 3600, &mean, &fs));
  ck_assert_double_eq_tol(mean, (1.5 * 300 + 2.5 * 100) / 4, 1e-9);
  ck_assert_int_eq(fs, 4 * 3600);
  /* Six hours of forecast for a ten-hour run from 00:00. */
  s.len = 6;
  ck_assert(cs_plan_intensity_now(&s, 999, t0, 10 * 3600, &mean, &fs));
  ck_assert_double_eq_tol(mean, (2 * 300 + 4 * 100) / 6.0, 1e-9);
  ck_assert_int_eq(fs, 6 * 3600);
  s.len = 48;
  /* A hole from 03:00 to 04:00: the part before it, 01:00 to 03:00. */
  cs_point gone = s.points[3];
  memmove(&s.points[3], &s.points[4], 44 * sizeof(*s.points));
  s.len = 47;
  ck_assert(cs_plan_intensity_now(&s, 999, t0 + 3600, 5 * 3600, &mean, &fs));
  ck_assert_double_eq_tol(mean, (300 + 100) / 2.0, 1e-9);
  ck_assert_int_eq(fs, 2 * 3600);
  /* Starting inside the hole: the current value, or nothing. */
  ck_assert(
      cs_plan_intensity_now(&s, 250, t0 + 3 * 3600 + 60, 3600, &mean, &fs));
  ck_assert_double_eq(mean, 250);
  ck_assert_int_eq(fs, 0);
  ck_assert(!cs_plan_intensity_now(&s, -1, t0 + 3 * 3600, 3600, &mean, &fs));
  ck_assert(cs_plan_intensity_now(NULL, 42, t0, 3600, &mean, &fs));
  ck_assert(mean == 42 && fs == 0);
  memmove(&s.points[4], &s.points[3], 44 * sizeof(*s.points));
  s.points[3] = gone;
  s.len = 48;
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_no_slack_starts_now)
{
  cs_series s = valley();
  int64_t now = s.points[0].at;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.wait);
  ck_assert_int_eq(p.start, now);
  /* Slack already used up (latest start in the past): start now too. */
  o.latest_start = now - 60;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.wait);
  cs_series_free(&s);
}
END_TEST

/* Judged at an instant already passed (a pod just after its planned
 * start), a start between that instant and now is no wait: the valley
 * began at 02:00, judged from 01:55 at 02:05, the plan starts now. Judged
 * from 01:55 at 01:55 itself, it waits for 02:00. */
START_TEST(test_planner_plan_window_at_never_waits_for_the_past)
{
  cs_series s = valley();
  int64_t at = s.points[1].at + 55 * 60, now = s.points[2].at + 5 * 60;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now + 3600};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window_at(&no_margin, &o, 1, at, now, 0, &p), CS_OK);
  ck_assert(!p.wait);
  ck_assert_int_eq(p.start, now);
  ck_assert_int_eq(cs_plan_window_at(&no_margin, &o, 1, at, at, 0, &p), CS_OK);
  ck_assert(p.wait);
  ck_assert_int_eq(p.start, s.points[2].at);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_slack_shorter_than_step)
{
  /* Ten minutes of slack at 01:55: the valley starts at 02:00, so starting
   * at 02:00 beats now, though the slack is shorter than one step. */
  cs_series s = valley();
  int64_t now = s.points[1].at + 55 * 60;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now + 600};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(p.wait);
  ck_assert_int_eq(p.start, s.points[2].at);
  ck_assert_double_eq_tol(p.start_intensity, 100, 1e-9);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_forecast_shorter_than_run)
{
  cs_series s = valley();
  s.len = 6; /* six hours of forecast for a ten-hour run */
  int64_t now = s.points[0].at;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 10 * 3600,
                      .latest_start = now + 86400};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.wait);
  ck_assert(p.forecast_short);
  /* Starting now: the six forecast hours' mean, held for the other four
   * (the current value is only for a run the forecast does not reach). */
  double six = 0;
  for (size_t i = 0; i < 6; i++)
    six += s.points[i].g_per_kwh;
  ck_assert_double_eq_tol(p.now_g, 10 * six / 6, 1e-9);
  ck_assert_double_eq_tol(p.now_intensity, six / 6, 1e-9);
  s.len = 48;
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_forecast_shorter_than_slack)
{
  /* The forecast ends at 05:00; 24 h of slack: only starts whose whole run
   * the forecast covers are considered. */
  cs_series s = valley();
  s.len = 5;
  int64_t now = s.points[0].at;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now + 86400};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(p.wait);
  ck_assert_int_eq(p.start, s.points[2].at);
  ck_assert(p.start + o.runtime_s <= cs_series_end(&s));
  s.len = 48;
  cs_series_free(&s);
}
END_TEST

/* forecastShort says that nothing could be planned, not that the two
 * ends of the slack were unknown: a hole in the run from now and a
 * forecast ending before the latest start still leave starts in between. */
START_TEST(test_planner_plan_window_forecast_short_only_when_nothing_covered)
{
  cs_series s = valley();
  int64_t now = s.points[0].at;
  memmove(&s.points[2], &s.points[3], 21 * sizeof(*s.points));
  s.len = 23; /* 00:00 to 24:00 without 02:00 */
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 4 * 3600,
                      .latest_start = now + 30 * 3600};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.forecast_short);
  ck_assert(p.wait);
  ck_assert_int_eq(p.start, now + 3 * 3600);
  /* With a run longer than the whole forecast, nothing is covered. */
  o.runtime_s = 30 * 3600;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, now, 0, &p), CS_OK);
  ck_assert(p.forecast_short && !p.wait);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_margins)
{
  cs_series s = valley();
  int64_t now = s.points[0].at;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now + 6 * 3600};
  cs_plan p;
  /* Saving 2,000 g of 3,000 g (67 %). */
  cs_plan_params big_rel = {.min_saving_rel = 0.7};
  ck_assert_int_eq(cs_plan_window(&big_rel, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.wait);
  cs_plan_params big_abs = {.min_saving_rel = 0.1, .min_saving_abs_g = 2500};
  ck_assert_int_eq(cs_plan_window(&big_abs, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.wait);
  cs_plan_params fine = {.min_saving_rel = 0.5, .min_saving_abs_g = 1000};
  ck_assert_int_eq(cs_plan_window(&fine, &o, 1, now, 0, &p), CS_OK);
  ck_assert(p.wait);
  ck_assert_double_eq_tol(p.now_g - p.start_g, 2000, 1e-9);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_hysteresis)
{
  cs_series s = valley();
  int64_t now = s.points[0].at;
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now + 12 * 3600};
  cs_plan_params p10 = {.replan_rel = 0.10};
  cs_plan p;
  /* Kept at 03:00 (100 g/kWh): a new forecast making 04:00 a little
   * better does not move the plan. */
  s.points[4].g_per_kwh = 95;
  ck_assert_int_eq(cs_plan_window(&p10, &o, 1, now, s.points[3].at, &p), CS_OK);
  ck_assert(p.wait && p.kept);
  ck_assert_int_eq(p.start, s.points[3].at);
  /* Much better (50 g/kWh): it moves. */
  s.points[4].g_per_kwh = 50;
  ck_assert_int_eq(cs_plan_window(&p10, &o, 1, now, s.points[3].at, &p), CS_OK);
  ck_assert(p.wait && !p.kept);
  ck_assert_int_eq(p.start, s.points[4].at);
  /* The planned start has come, and 04:00 is now half of 03:00: it
   * moves. */
  ck_assert_int_eq(
      cs_plan_window(&p10, &o, 1, s.points[3].at, s.points[3].at, &p), CS_OK);
  ck_assert(p.wait);
  ck_assert_int_eq(p.start, s.points[4].at);
  /* Only a little better (95 against 100), which clears minSaving (0 here)
   * but not replanMargin: the pod runs at its planned start. */
  s.points[4].g_per_kwh = 95;
  ck_assert_int_eq(
      cs_plan_window(&p10, &o, 1, s.points[3].at, s.points[3].at, &p), CS_OK);
  ck_assert(!p.wait);
  ck_assert_int_eq(p.start, s.points[3].at);
  cs_series_free(&s);
}
END_TEST

/* A kept plan stands only while it is worth waiting for by the margins;
 * one that is not gives way to a new best that is (docs/time-shifting.md,
 * steps 3 and 4). */
START_TEST(test_planner_plan_window_kept_plan_needs_the_margins)
{
  cs_series s = {.step = 3600};
  static const double v[] = {100, 99, 95, 100, 100, 100};
  for (int h = 0; h < 6; h++)
    cs_series_push(&s, h * 3600, v[h]);
  cs_plan_option o = {.forecast = &s,
                      .current = 100,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = 4 * 3600};
  cs_plan_params pm = {.min_saving_rel = 0.04, .replan_rel = 0.10};
  cs_plan p;
  /* Kept at 01:00 (1 % saving): not worth it; 02:00 (5 %) is. */
  ck_assert_int_eq(cs_plan_window(&pm, &o, 1, 0, 3600, &p), CS_OK);
  ck_assert(p.wait && !p.kept);
  ck_assert_int_eq(p.start, 2 * 3600);
  /* Nothing later worth it at all: run now, whatever was kept. */
  s.points[2].g_per_kwh = 98;
  ck_assert_int_eq(cs_plan_window(&pm, &o, 1, 0, 3600, &p), CS_OK);
  ck_assert(!p.wait);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_budget)
{
  cs_series s = valley();
  int64_t now = s.points[0].at;
  /* Now: 3,000 g. In the valley: 1,000 g. Budget 1,500 g. */
  cs_plan_option o = {.forecast = &s,
                      .current = 300,
                      .energy_kwh = 10,
                      .runtime_s = 3600,
                      .latest_start = now + 12 * 3600,
                      .budget_g = 1500};
  cs_plan_params strict = {.min_saving_rel = 0.99};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&strict, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.fits_now);
  ck_assert(p.feasible);
  ck_assert(p.wait); /* waiting is the only way to fit, margins aside */
  ck_assert_double_eq_tol(p.start_g, 1000, 1e-9);
  o.budget_g = 500;
  ck_assert_int_eq(cs_plan_window(&strict, &o, 1, now, 0, &p), CS_OK);
  ck_assert(!p.feasible);
  ck_assert(!p.wait);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_planner_plan_window_nothing_known)
{
  cs_plan_option o = {.forecast = NULL,
                      .current = -1,
                      .energy_kwh = 1,
                      .runtime_s = 60,
                      .latest_start = 100};
  cs_plan p;
  ck_assert_int_eq(cs_plan_window(&no_margin, &o, 1, 0, 0, &p), CS_ENOTFOUND);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("planner");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_planner_plan_window_matches_brute_force_lwa, 0,
                      3);
  tcase_add_test(tc, test_planner_plan_window_across_zones_brute_force);
  tcase_add_test(tc, test_planner_plan_window_holes_brute_force);
  tcase_add_test(tc, test_planner_intensity_now_cases);
  tcase_add_test(tc, test_planner_plan_window_at_never_waits_for_the_past);
  tcase_add_test(tc, test_planner_plan_window_no_slack_starts_now);
  tcase_add_test(tc, test_planner_plan_window_slack_shorter_than_step);
  tcase_add_test(tc, test_planner_plan_window_forecast_shorter_than_run);
  tcase_add_test(tc, test_planner_plan_window_forecast_shorter_than_slack);
  tcase_add_test(
      tc, test_planner_plan_window_forecast_short_only_when_nothing_covered);
  tcase_add_test(tc, test_planner_plan_window_margins);
  tcase_add_test(tc, test_planner_plan_window_hysteresis);
  tcase_add_test(tc, test_planner_plan_window_kept_plan_needs_the_margins);
  tcase_add_test(tc, test_planner_plan_window_budget);
  tcase_add_test(tc, test_planner_plan_window_nothing_known);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
