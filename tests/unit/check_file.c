#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/providers/file.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/testutil.h"

#define LBS 0.45359237

static char *data_path(const char *rel)
{
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "%s/data/carbon/%s", tu_shared_dir(), rel);
  return buf[k];
}

static cs_provider *make(const cs_file_trace *t, size_t n, int64_t replay,
                         int64_t start)
{
  char err[512] = "";
  cs_file_opts o = {
      .traces = t, .ntraces = n, .replay_from = replay, .start = start};
  cs_provider *p = NULL;
  cs_err rc = cs_file_new(&o, &p, err, sizeof(err));
  ck_assert_msg(rc == CS_OK, "cs_file_new: %s", err);
  return p;
}

START_TEST(test_file_current_em_export)
{
  cs_file_trace t[] = {
      {.zone = "DE", .path = data_path("em-2023/DE.csv")},
      {.zone = "DE-direct",
       .path = data_path("em-2023/DE.csv"),
       .column = "direct"},
  };
  cs_provider *p = make(t, 2, 0, 0);
  ck_assert(!p->ops->remote);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "DE", 1672531200, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 185.8);
  ck_assert_int_eq(v.type, CS_SIGNAL_AVERAGE);
  ck_assert(!v.estimated);
  ck_assert_int_eq(p->ops->current(p, "DE-direct", 1672531200 + 1800, &v),
                   CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 140.51);
  ck_assert_int_eq(v.observed_at, 1672531200);
  /* 2023-07-01 12:30 reads the 12:00 row. */
  ck_assert_int_eq(p->ops->current(p, "DE", 1688212800 + 1800, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 132.45);
  /* An estimated row keeps its flag (2023-04-15 00:00). */
  ck_assert_int_eq(p->ops->current(p, "DE", 1681516800, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 469.07);
  ck_assert(v.estimated);
  /* Outside the trace, or another zone: nothing. */
  ck_assert_int_eq(p->ops->current(p, "DE", 1672531200 - 1, &v), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "DE", 1704067200, &v), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "FR", 1688212800, &v), CS_ENOTFOUND);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_file_load_formats)
{
  char err[512] = "";
  cs_series s = {0};
  bool *est = NULL;
  ck_assert_int_eq(cs_file_load(data_path("em-2023/NO.csv"), NULL, &s, &est,
                                err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_eq(s.len, 8760);
  ck_assert_int_eq(s.step, 3600);
  ck_assert_ptr_nonnull(est);
  ck_assert_double_eq(s.points[8759].g_per_kwh, 51.23);
  ck_assert_int_eq(s.points[8759].at, 1704063600); /* 2023-12-31 23:00 */
  ck_assert_int_eq(s.factor, CS_FACTOR_LIFECYCLE); /* the LCA column */
  cs_series_free(&s);
  free(est);
  ck_assert_int_eq(cs_file_load(data_path("em-2023/NO.csv"), "direct", &s, NULL,
                                err, sizeof(err)),
                   CS_OK);
  ck_assert_int_eq(s.factor, CS_FACTOR_DIRECT);
  cs_series_free(&s);

  ck_assert_int_eq(cs_file_load(data_path("lwa-2020/DE.csv"), NULL, &s, NULL,
                                err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_eq(s.len, 37147);
  ck_assert_int_eq(s.step, 900);
  ck_assert_int_eq(s.type, CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(s.factor, CS_FACTOR_UNSTATED); /* the header does not say */
  ck_assert_int_eq(s.points[0].at, 1576800000);   /* 2019-12-20 00:00 */
  long i = cs_series_index_at(&s, 1591012800);    /* 2020-06-01 12:00 */
  ck_assert_int_ge(i, 0);
  ck_assert_double_eq_tol(s.points[i].g_per_kwh, 136.59620097031495, 1e-9);
  cs_series_free(&s);

  ck_assert_int_eq(cs_file_load(data_path("lwa-2020/GB.csv"), NULL, &s, NULL,
                                err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_eq(s.len, 21980);
  ck_assert_int_eq(s.step, 1800);
  cs_series_free(&s);

  ck_assert_int_eq(
      cs_file_load(data_path("watttime-CAISO_NORTH-moer-2023-06.csv"), NULL, &s,
                   NULL, err, sizeof(err)),
      CS_OK);
  ck_assert_int_eq(s.type, CS_SIGNAL_MARGINAL);
  ck_assert_int_eq(s.factor, CS_FACTOR_DIRECT);
  ck_assert_int_eq(s.step, 300);
  ck_assert_uint_eq(s.len, 8928);
  i = cs_series_index_at(&s, 1687262400); /* 2023-06-20 12:00 */
  ck_assert_double_eq_tol(s.points[i].g_per_kwh, 428.19119728 * LBS, 1e-9);
  cs_series_free(&s);
}
END_TEST

START_TEST(test_file_replay_maps_trace_to_start)
{
  cs_file_trace t[] = {{.zone = "DE", .path = data_path("em-2023/DE.csv")}};
  int64_t start = 2000000000, from = 1688212800; /* 2023-07-01T12:00Z */
  cs_provider *p = make(t, 1, from, start);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "DE", start + 1800, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 132.45);
  ck_assert_int_eq(v.observed_at, start);
  ck_assert_int_eq(v.fetched_at, start + 1800);
  ck_assert_int_eq(p->ops->current(p, "DE", start + 3600, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 138.48);
  cs_series s = {0};
  ck_assert_int_eq(p->ops->forecast(p, "DE", start + 1800, start + 7200, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 2);
  ck_assert_int_eq(s.points[0].at, start);
  ck_assert_double_eq(s.points[0].g_per_kwh, 132.45);
  ck_assert_int_eq(s.points[1].at, start + 3600);
  ck_assert_double_eq(s.points[1].g_per_kwh, 138.48);
  ck_assert_str_eq(s.provider, "file");
  ck_assert_str_eq(s.zone, "DE");
  double mean;
  ck_assert_int_eq(cs_series_window_mean(&s, start, 7200, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, (132.45 + 138.48) / 2, 1e-9);
  cs_series_free(&s);
  /* The forecast ends with the trace (2023-12-31 23:00 + 1 h). */
  int64_t end = start + (1704067200 - from);
  ck_assert_int_eq(p->ops->forecast(p, "DE", end - 7200, end + 86400, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 2);
  ck_assert_int_eq(cs_series_end(&s), end);
  cs_series_free(&s);
  ck_assert_int_eq(p->ops->forecast(p, "DE", end, end + 3600, &s),
                   CS_ENOTFOUND);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_file_current_fast)
{
  cs_file_trace t[] = {
      {.zone = "DE", .path = data_path("em-2023/DE.csv")},
      {.zone = "GB", .path = data_path("em-2023/GB.csv")},
      {.zone = "ES", .path = data_path("em-2023/ES.csv")},
      {.zone = "NO", .path = data_path("em-2023/NO.csv")},
      {.zone = "US-CAL-CISO", .path = data_path("em-2023/US-CAL-CISO.csv")},
      {.zone = "DE-lwa", .path = data_path("lwa-2020/DE.csv")},
  };
  uint64_t t0 = cs_clock_mono_ns();
  cs_provider *p = make(t, 6, 0, 0);
  uint64_t t1 = cs_clock_mono_ns();
  double sum = 0;
  cs_signal v;
  for (int i = 0; i < 200000; i++) {
    ck_assert_int_eq(
        p->ops->current(p, "NO", 1672531200 + (int64_t)(i % 8760) * 3600, &v),
        CS_OK);
    sum += v.g_per_kwh;
  }
  uint64_t t2 = cs_clock_mono_ns();
  ck_assert(sum > 0);
  /* Generous bounds (sanitizer builds, a shared machine); a linear scan or
   * a reload per call would blow through them. */
  ck_assert_msg(t1 - t0 < 3000000000ull * tu_slowdown(), "loading took %.0f ms",
                (t1 - t0) / 1e6);
  ck_assert_msg(t2 - t1 < 2000000000ull * tu_slowdown(),
                "200k lookups took %.0f ms", (t2 - t1) / 1e6);
  cs_provider_free(p);
}
END_TEST

static char *write_tmp_n(const char *content, size_t n)
{
  static char path[64];
  snprintf(path, sizeof(path), "/tmp/cs_file_test_XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
  close(fd);
  return path;
}

static char *write_tmp(const char *content)
{
  return write_tmp_n(content, strlen(content));
}

START_TEST(test_file_load_rejects_bad_input)
{
  char err[512];
  cs_series s = {0};
  char *p = write_tmp("when,what\n2020-01-01 00:00:00,1\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                   CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":1: unknown header \"when\""));
  unlink(p);
  p = write_tmp("Time,Carbon Intensity\n2020-01-01 00:00:00,1\n"
                "2020-01-01 00:30:00,abc\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                   CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":3: intensity \"abc\""));
  unlink(p);
  p = write_tmp("Time,Carbon Intensity\n2020-01-01 00:00:00,1\n"
                "2020-01-01 00:30:00,12000\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                   CS_EPARSE);
  ck_assert_msg(strstr(err, ":3: intensity \"12000\" is 12000 gCO2e/kWh, "
                            "expected at most 10000"),
                "%s", err);
  unlink(p);
  p = write_tmp("Time,Carbon Intensity\n2020-01-01 00:30:00,1\n"
                "2020-01-01 00:00:00,2\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                   CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":3: time 2020-01-01 00:00:00 is not "
                                    "after the previous row"));
  unlink(p);
  p = write_tmp("Time,Carbon Intensity\n2020-01-01 00:00:00,1\n"
                "2020-01-01 00:30:00,-5\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                   CS_EPARSE);
  unlink(p);
  p = write_tmp("Time,Carbon Intensity\n2020-01-01T00:00:00+01:00,1\n"
                "2020-01-01 00:00:00,2\n\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(s.points[0].at, 1577833200);
  cs_series_free(&s);
  unlink(p);
  ck_assert_int_eq(cs_file_load(data_path("em-2023/DE.csv"), "LCA", &s, NULL,
                                err, sizeof(err)),
                   CS_EINVAL);
  ck_assert_int_eq(
      cs_file_load("/nonexistent/x.csv", NULL, &s, NULL, err, sizeof(err)),
      CS_EIO);
  /* "time,<region>" is WattTime's, in lbs/MWh: a second column that names
   * an intensity or a unit would be converted silently. */
  const char *unitish[] = {"time,Carbon Intensity\n", "time,g_per_kwh\n",
                           "time,gCO2\n"};
  for (int i = 0; i < 3; i++) {
    char text[128];
    snprintf(text, sizeof(text),
             "%s2023-01-01 00:00:00,100\n2023-01-03 00:00:00,100\n",
             unitish[i]);
    p = write_tmp(text);
    ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                     CS_EPARSE);
    ck_assert_msg(strstr(err, ":1: header ") &&
                      strstr(err, "a WattTime file names its region"),
                  "%s", err);
    unlink(p);
  }
  p = write_tmp("time,PJM_DC\n2023-01-01 00:00:00,100\n"
                "2023-01-01 00:05:00,100\n");
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)), CS_OK);
  ck_assert_double_eq_tol(s.points[0].g_per_kwh, 45.359237, 1e-6);
  cs_series_free(&s);
  unlink(p);
  /* A device that never ends is refused before it is read. */
  ck_assert_int_eq(cs_file_load("/dev/zero", NULL, &s, NULL, err, sizeof(err)),
                   CS_EINVAL);
  ck_assert_msg(strstr(err, "/dev/zero: is a character device"), "%s", err);
  /* A NUL byte would have ended the rows early, silently. */
  static const char with_nul[] = "Time,Carbon Intensity\n"
                                 "2020-01-01 00:00:00,1\n"
                                 "2020-01-01 00:30:00,2\n\0"
                                 "2020-01-01 01:00:00,3\n";
  p = write_tmp_n(with_nul, sizeof(with_nul) - 1);
  ck_assert_int_eq(cs_file_load(p, NULL, &s, NULL, err, sizeof(err)),
                   CS_EINVAL);
  ck_assert_msg(strstr(err, ":4: a NUL byte"), "%s", err);
  unlink(p);
}
END_TEST

/* Each trace is logged at load with its holes; a trace whose rows are
 * not evenly spaced (10 and 50 minutes in turn: the step is guessed as
 * 10, so every 50-minute spacing is a 40-minute hole) is flagged. */
START_TEST(test_file_load_logs_holes)
{
  char text[4096] = "Time,Carbon Intensity\n";
  int64_t t0 = 1672531200; /* 2023-01-01 */
  int64_t at = t0;
  for (int i = 0; i < 40; i++) {
    char row[64], ts[21];
    cs_format_rfc3339(at, ts);
    ts[10] = ' ';
    ts[19] = '\0';
    snprintf(row, sizeof(row), "%s,%d\n", ts, 100 + i);
    strncat(text, row, sizeof(text) - strlen(text) - 1);
    at += i % 2 ? 3000 : 600;
  }
  char *path = write_tmp(text);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  cs_log_set_fd(fds[1]);
  cs_file_trace t[] = {{.zone = "XX", .path = path},
                       {.zone = "DE", .path = data_path("em-2023/DE.csv")}};
  cs_provider *p = make(t, 2, 0, 0);
  cs_log_set_fd(2);
  close(fds[1]);
  char buf[4096];
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  ck_assert_msg(strstr(buf, "\"msg\":\"Carbon trace loaded; many holes: is its "
                            "spacing regular?\",\"zone\":\"XX\"") &&
                    strstr(buf, "\"stepSeconds\":600,\"holes\":19,"
                                "\"holeHours\":12.67"),
                "%s", buf);
  ck_assert_msg(
      strstr(buf, "\"msg\":\"Carbon trace loaded\",\"zone\":\"DE\"") &&
          strstr(buf, "\"rows\":8760"),
      "%s", buf);
  cs_provider_free(p);
  unlink(path);
}
END_TEST

START_TEST(test_file_gap_is_not_filled)
{
  char err[512];
  char *path = write_tmp("Time,Carbon Intensity\n2020-01-01 00:00:00,100\n"
                         "2020-01-01 00:30:00,\n2020-01-01 01:00:00,300\n");
  cs_file_trace t[] = {{.zone = "X", .path = path}};
  cs_file_opts o = {.traces = t, .ntraces = 1};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_file_new(&o, &p, err, sizeof(err)), CS_OK);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "X", 1577836800 + 1800, &v),
                   CS_ENOTFOUND);
  cs_series s = {0};
  ck_assert_int_eq(p->ops->forecast(p, "X", 1577836800, 1577836800 + 5400, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 1); /* known only up to the gap */
  cs_series_free(&s);
  cs_provider_free(p);
  unlink(path);
}
END_TEST

/* A missing row is a hole (docs/carbon-providers.md): nothing is known in
 * it, and a forecast asked from inside it starts at the next row rather
 * than failing, so that the planner still sees the windows after it. */
START_TEST(test_file_forecast_from_inside_a_hole)
{
  char err[512];
  char *path = write_tmp("Time,Carbon Intensity\n2020-01-01 00:00:00,300\n"
                         "2020-01-01 01:00:00,300\n2020-01-01 03:00:00,50\n"
                         "2020-01-01 04:00:00,50\n2020-01-01 05:00:00,50\n");
  cs_file_trace t[] = {{.zone = "X", .path = path}};
  cs_file_opts o = {.traces = t, .ntraces = 1};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_file_new(&o, &p, err, sizeof(err)), CS_OK);
  int64_t t0 = 1577836800, in_hole = t0 + 9000; /* 02:30 */
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "X", in_hole, &v), CS_ENOTFOUND);
  cs_series s = {0};
  ck_assert_int_eq(p->ops->forecast(p, "X", in_hole, t0 + 6 * 3600, &s), CS_OK);
  ck_assert_uint_eq(s.len, 3);
  ck_assert_int_eq(s.points[0].at, t0 + 3 * 3600);
  double mean;
  ck_assert_int_eq(cs_series_window_mean(&s, t0 + 3 * 3600, 3 * 3600, &mean),
                   CS_OK);
  ck_assert_double_eq(mean, 50);
  cs_series_free(&s);
  /* Before it the hole is seen as one: no mean across it. */
  ck_assert_int_eq(p->ops->forecast(p, "X", t0, t0 + 6 * 3600, &s), CS_OK);
  ck_assert_int_eq(cs_series_window_mean(&s, t0, 4 * 3600, &mean),
                   CS_ENOTFOUND);
  cs_series_free(&s);
  cs_provider_free(p);
  unlink(path);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("file");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_file_current_em_export);
  tcase_add_test(tc, test_file_load_formats);
  tcase_add_test(tc, test_file_replay_maps_trace_to_start);
  tcase_add_test(tc, test_file_current_fast);
  tcase_add_test(tc, test_file_load_rejects_bad_input);
  tcase_add_test(tc, test_file_load_logs_holes);
  tcase_add_test(tc, test_file_gap_is_not_filled);
  tcase_add_test(tc, test_file_forecast_from_inside_a_hole);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
