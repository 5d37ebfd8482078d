/* Unit tests for carbon/providers/builtin: the embedded month x hour
 * profiles are recomputed here, independently, from the shared traces
 * (CS_SHARED) and must match within rounding; the flat zones' values are
 * checked against the figures and conversions written in docs/carbon-data.md
 * (read from CS_SRCDIR, default the current directory); then current() and
 * forecast() behaviour. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carbon/providers/builtin.h"
#include "testutil.h"

static cs_provider *p;

static void setup(void)
{
  p = cs_builtin_new();
}

static void teardown(void)
{
  cs_provider_free(p);
  p = NULL;
}

static int64_t utc(int y, int mon, int d, int h, int mi)
{
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return (int64_t)timegm(&tm);
}

/* Month x hour means of column `col` (0-based) over the rows of `year` in a
 * CSV whose first column is "YYYY-MM-DD hh:mm:ss". */
static void trace_means(const char *file, int year, int col,
                        double mean[12][24])
{
  const char *shared = getenv("CS_SHARED");
  ck_assert_msg(shared && *shared, "CS_SHARED is not set");
  char path[1024];
  snprintf(path, sizeof(path), "%s/data/carbon/%s", shared, file);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  static double sum[12][24];
  static long n[12][24];
  memset(sum, 0, sizeof(sum));
  memset(n, 0, sizeof(n));
  char line[1024];
  ck_assert_ptr_nonnull(fgets(line, sizeof(line), f)); /* header */
  long rows = 0;
  while (fgets(line, sizeof(line), f)) {
    int y, mo, d, h;
    if (sscanf(line, "%4d-%2d-%2d %2d", &y, &mo, &d, &h) != 4)
      continue;
    if (y != year)
      continue;
    ck_assert(mo >= 1 && mo <= 12 && h >= 0 && h <= 23);
    char *p_ = line;
    for (int c = 0; c < col && p_; c++) {
      p_ = strchr(p_, ',');
      if (p_)
        p_++;
    }
    ck_assert_msg(p_ != NULL, "short row in %s: %s", file, line);
    char *end;
    double v = strtod(p_, &end);
    ck_assert_msg(end != p_, "bad value in %s: %s", file, line);
    sum[mo - 1][h] += v;
    n[mo - 1][h]++;
    rows++;
  }
  fclose(f);
  ck_assert_int_gt(rows, 8000);
  for (int m = 0; m < 12; m++)
    for (int h = 0; h < 24; h++) {
      ck_assert_int_gt(n[m][h], 0);
      mean[m][h] = sum[m][h] / (double)n[m][h];
    }
}

static void check_zone_against_trace(const char *zone, const char *file,
                                     int year, int col)
{
  double mean[12][24];
  trace_means(file, year, col, mean);
  for (int m = 0; m < 12; m++)
    for (int h = 0; h < 24; h++) {
      cs_signal s;
      /* Any year, any day of the month: the profile is month x hour. */
      int64_t t = utc(2031, m + 1, 17, h, 42);
      ck_assert_int_eq(p->ops->current(p, zone, t, &s), CS_OK);
      ck_assert_msg(fabs(s.g_per_kwh - mean[m][h]) <= 0.5 + 1e-9,
                    "%s month %d hour %d: embedded %g, trace mean %.3f", zone,
                    m + 1, h, s.g_per_kwh, mean[m][h]);
    }
}

START_TEST(test_builtin_profile_matches_trace_de)
{
  check_zone_against_trace("DE", "em-2023/DE.csv", 2023, 5);
}
END_TEST

START_TEST(test_builtin_profile_matches_trace_gb)
{
  check_zone_against_trace("GB", "em-2023/GB.csv", 2023, 5);
}
END_TEST

START_TEST(test_builtin_profile_matches_trace_es)
{
  check_zone_against_trace("ES", "em-2023/ES.csv", 2023, 5);
}
END_TEST

START_TEST(test_builtin_profile_matches_trace_no)
{
  check_zone_against_trace("NO", "em-2023/NO.csv", 2023, 5);
}
END_TEST

START_TEST(test_builtin_profile_matches_trace_us_cal_ciso)
{
  check_zone_against_trace("US-CAL-CISO", "em-2023/US-CAL-CISO.csv", 2023, 5);
}
END_TEST

START_TEST(test_builtin_profile_matches_trace_fr)
{
  check_zone_against_trace("FR", "lwa-2020/FR.csv", 2020, 1);
}
END_TEST

/* docs/carbon-data.md, read once per test (the fixture forks per test). */
static char *read_doc(void)
{
  const char *root = getenv("CS_SRCDIR") ? getenv("CS_SRCDIR") : ".";
  char path[1024];
  snprintf(path, sizeof(path), "%s/docs/carbon-data.md", root);
  return tu_read_file(path, NULL);
}

/* Splits a Markdown table row "| a | b |" in place into trimmed cells;
 * returns how many (at most max). */
static int table_cells(char *line, char **cells, int max)
{
  int n = 0;
  char *bar = strchr(line, '|');
  while (bar && n < max) {
    char *start = bar + 1, *end = strchr(start, '|');
    if (!end)
      break;
    *end = '\0';
    while (*start == ' ')
      start++;
    char *e = end;
    while (e > start && e[-1] == ' ')
      *--e = '\0';
    cells[n++] = start;
    bar = end;
  }
  return n;
}

/* The embedded value of a zone; asserts it is the same at every month and
 * hour when `flat` is set. */
static double embedded(const char *zone, bool flat)
{
  cs_signal s;
  ck_assert_msg(p->ops->current(p, zone, utc(2031, 1, 5, 3, 0), &s) == CS_OK,
                "zone %s from docs/carbon-data.md is not built in", zone);
  double v = s.g_per_kwh;
  for (int m = 1; flat && m <= 12; m++)
    for (int h = 0; h < 24; h++) {
      ck_assert_int_eq(p->ops->current(p, zone, utc(2031, m, 9, h, 0), &s),
                       CS_OK);
      ck_assert_msg(s.g_per_kwh == v, "%s is not flat: %g at month %d hour %d",
                    zone, s.g_per_kwh, m, h);
    }
  return v;
}

static bool is_flat(const char *zone)
{
  cs_signal s;
  double first = -1;
  for (int m = 1; m <= 12; m++)
    for (int h = 0; h < 24; h++) {
      ck_assert_int_eq(p->ops->current(p, zone, utc(2031, m, 9, h, 0), &s),
                       CS_OK);
      if (first < 0)
        first = s.g_per_kwh;
      else if (s.g_per_kwh != first)
        return false;
    }
  return true;
}

/* Rows of the derivation table between the builtin-flat-zones markers:
 * zone, published figure, unit, conversion (prose), embedded g/kWh. The
 * conversion is redone here and must round to the last column, which must
 * be the value built in. Every flat built-in zone must have a row. */
START_TEST(test_builtin_flat_zones_match_docs)
{
  char *doc = read_doc();
  char *b = strstr(doc, "<!-- BEGIN builtin-flat-zones -->");
  char *e = strstr(doc, "<!-- END builtin-flat-zones -->");
  ck_assert_msg(b && e && e > b,
                "docs/carbon-data.md lacks the builtin-flat-zones markers");
  *e = '\0';
  char seen[64][32];
  int rows = 0;
  for (char *line = b; line && *line;) {
    char *next = strchr(line, '\n');
    if (next)
      *next = '\0';
    char *c[8];
    int n = table_cells(line, c, 8);
    if (n == 5 && strcmp(c[0], "Zone") != 0 && c[0][0] != '-') {
      char *end;
      double figure = strtod(c[1], &end);
      ck_assert_msg(end != c[1] && *end == '\0', "%s: bad figure '%s'", c[0],
                    c[1]);
      double factor = 0;
      if (strcmp(c[2], "lb/MWh") == 0)
        factor = 0.45359237; /* 453.59237 g per lb / 1000 kWh per MWh */
      else if (strcmp(c[2], "kg/kWh") == 0)
        factor = 1000;
      else if (strcmp(c[2], "g/kWh") == 0)
        factor = 1;
      ck_assert_msg(factor > 0, "%s: unknown unit '%s'", c[0], c[2]);
      long listed = strtol(c[4], &end, 10);
      ck_assert_msg(end != c[4] && *end == '\0', "%s: bad value '%s'", c[0],
                    c[4]);
      ck_assert_msg(lround(figure * factor) == listed,
                    "%s: %s %s converts to %.2f g/kWh, the docs say %ld", c[0],
                    c[1], c[2], figure * factor, listed);
      double v = embedded(c[0], true);
      ck_assert_msg(v == (double)listed, "%s: built in %g, docs say %ld", c[0],
                    v, listed);
      ck_assert_int_lt(rows, 64);
      ck_assert_uint_lt(strlen(c[0]), sizeof(seen[0]));
      snprintf(seen[rows++], sizeof(seen[0]), "%s", c[0]);
    }
    line = next ? next + 1 : NULL;
  }
  ck_assert_int_ge(rows, 13);
  for (size_t i = 0; cs_builtin_zone_at(i); i++) {
    const char *z = cs_builtin_zone_at(i);
    if (!is_flat(z))
      continue;
    bool found = false;
    for (int r = 0; r < rows; r++)
      found = found || strcmp(seen[r], z) == 0;
    ck_assert_msg(found, "flat zone %s has no row in docs/carbon-data.md", z);
  }
  free(doc);
}
END_TEST

/* The summary table ("| Zone | Shape | Annual mean | ...") gives the same
 * value for every flat zone, and names every built-in zone. */
START_TEST(test_builtin_zone_table_matches_docs)
{
  char *doc = read_doc();
  int flat_rows = 0, all_rows = 0;
  char zones_seen[64][32];
  for (char *line = doc; line && *line;) {
    char *next = strchr(line, '\n');
    if (next)
      *next = '\0';
    char *c[8];
    int n = table_cells(line, c, 8);
    if (n == 6 &&
        (strcmp(c[1], "flat") == 0 || strcmp(c[1], "month × hour") == 0)) {
      ck_assert_int_lt(all_rows, 64);
      snprintf(zones_seen[all_rows++], sizeof(zones_seen[0]), "%s", c[0]);
      if (strcmp(c[1], "flat") == 0) {
        char *end;
        long listed = strtol(c[2], &end, 10);
        ck_assert_msg(end != c[2] && *end == '\0', "%s: bad mean '%s'", c[0],
                      c[2]);
        double v = embedded(c[0], true);
        ck_assert_msg(v == (double)listed, "%s: built in %g, table says %ld",
                      c[0], v, listed);
        flat_rows++;
      } else {
        ck_assert(!is_flat(c[0]));
      }
    }
    line = next ? next + 1 : NULL;
  }
  ck_assert_int_ge(flat_rows, 13);
  size_t n = 0;
  for (; cs_builtin_zone_at(n); n++) {
    bool found = false;
    for (int r = 0; r < all_rows; r++)
      found = found || strcmp(zones_seen[r], cs_builtin_zone_at(n)) == 0;
    ck_assert_msg(found, "zone %s is missing from the docs table",
                  cs_builtin_zone_at(n));
  }
  ck_assert_int_eq((int)n, all_rows);
  free(doc);
}
END_TEST

START_TEST(test_builtin_current_fields)
{
  cs_signal s;
  int64_t now = utc(2025, 7, 3, 14, 25) + 7;
  ck_assert_int_eq(p->ops->current(p, "DE", now, &s), CS_OK);
  ck_assert_int_eq(s.type, CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(s.factor, CS_FACTOR_LIFECYCLE); /* em-2023's LCA column */
  ck_assert_str_eq(s.provider, "builtin");
  ck_assert_str_eq(s.zone, "DE");
  ck_assert(s.estimated);
  ck_assert_int_eq(s.observed_at, utc(2025, 7, 3, 14, 0));
  ck_assert_int_eq(s.fetched_at, now);
  ck_assert_double_gt(s.g_per_kwh, 0);
  ck_assert_str_eq(p->ops->name, "builtin");
  ck_assert(!p->ops->remote);
}
END_TEST

START_TEST(test_builtin_current_flat_zone)
{
  cs_signal a, b;
  ck_assert_int_eq(p->ops->current(p, "PL", utc(2025, 1, 1, 3, 0), &a), CS_OK);
  ck_assert_int_eq(p->ops->current(p, "PL", utc(2025, 8, 9, 15, 0), &b), CS_OK);
  ck_assert_double_eq(a.g_per_kwh, b.g_per_kwh);
  ck_assert_double_eq(a.g_per_kwh, 662);
}
END_TEST

START_TEST(test_builtin_current_unknown_zone)
{
  cs_signal s = {.g_per_kwh = -7};
  ck_assert_int_eq(p->ops->current(p, "XX", 0, &s), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "de", 0, &s), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "", 0, &s), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, NULL, 0, &s), CS_ENOTFOUND);
  ck_assert_double_eq(s.g_per_kwh, -7); /* nothing written */
  cs_series f = {0};
  ck_assert_int_eq(p->ops->forecast(p, "XX", 0, 3600, &f), CS_ENOTFOUND);
  ck_assert_ptr_null(f.points);
}
END_TEST

START_TEST(test_builtin_current_before_1970)
{
  cs_signal s;
  ck_assert_int_eq(p->ops->current(p, "GB", -1, &s), CS_OK);
  ck_assert_int_eq(s.observed_at, -3600);
}
END_TEST

START_TEST(test_builtin_forecast_repeats_profile)
{
  int64_t from = utc(2025, 3, 31, 22, 30), to = utc(2025, 4, 1, 3, 0);
  cs_series f = {0};
  ck_assert_int_eq(p->ops->forecast(p, "ES", from, to, &f), CS_OK);
  ck_assert_int_eq(f.step, 3600);
  ck_assert_int_eq(f.type, CS_SIGNAL_AVERAGE);
  ck_assert_str_eq(f.provider, "builtin");
  ck_assert_str_eq(f.zone, "ES");
  /* 22:00, 23:00 of 31 March, then 00:00..02:00 of 1 April. */
  ck_assert_uint_eq(f.len, 5);
  ck_assert_int_eq(f.points[0].at, utc(2025, 3, 31, 22, 0));
  ck_assert_int_ge(cs_series_end(&f), to);
  for (size_t i = 0; i < f.len; i++) {
    cs_signal s;
    ck_assert_int_eq(p->ops->current(p, "ES", f.points[i].at, &s), CS_OK);
    ck_assert_double_eq(f.points[i].g_per_kwh, s.g_per_kwh);
    if (i)
      ck_assert_int_eq(f.points[i].at - f.points[i - 1].at, 3600);
  }
  /* The month changes at midnight UTC: March 23:00 vs April 00:00. */
  double mean;
  ck_assert_int_eq(cs_series_window_mean(&f, from, to - from, &mean), CS_OK);
  cs_series_free(&f);
}
END_TEST

START_TEST(test_builtin_forecast_rejects_bad_range)
{
  cs_series f = {0};
  ck_assert_int_eq(p->ops->forecast(p, "DE", 7200, 7200, &f), CS_EINVAL);
  ck_assert_int_eq(p->ops->forecast(p, "DE", 7200, 3600, &f), CS_EINVAL);
  ck_assert_int_eq(
      p->ops->forecast(p, "DE", 0, (int64_t)CS_BUILTIN_MAX_SPAN + 1, &f),
      CS_ETOOBIG);
  ck_assert_ptr_null(f.points);
}
END_TEST

START_TEST(test_builtin_zone_list)
{
  size_t n = 0;
  while (cs_builtin_zone_at(n))
    n++;
  ck_assert_uint_ge(n, 16);
  for (size_t i = 0; i < n; i++) {
    cs_signal s;
    ck_assert_int_eq(p->ops->current(p, cs_builtin_zone_at(i), 0, &s), CS_OK);
    ck_assert_double_gt(s.g_per_kwh, 0);
    ck_assert_double_lt(s.g_per_kwh, 1200);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("builtin");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_builtin_profile_matches_trace_de);
  tcase_add_test(tc, test_builtin_profile_matches_trace_gb);
  tcase_add_test(tc, test_builtin_profile_matches_trace_es);
  tcase_add_test(tc, test_builtin_profile_matches_trace_no);
  tcase_add_test(tc, test_builtin_profile_matches_trace_us_cal_ciso);
  tcase_add_test(tc, test_builtin_profile_matches_trace_fr);
  tcase_add_test(tc, test_builtin_flat_zones_match_docs);
  tcase_add_test(tc, test_builtin_zone_table_matches_docs);
  tcase_add_test(tc, test_builtin_current_fields);
  tcase_add_test(tc, test_builtin_current_flat_zone);
  tcase_add_test(tc, test_builtin_current_unknown_zone);
  tcase_add_test(tc, test_builtin_current_before_1970);
  tcase_add_test(tc, test_builtin_forecast_repeats_profile);
  tcase_add_test(tc, test_builtin_forecast_rejects_bad_range);
  tcase_add_test(tc, test_builtin_zone_list);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
