/* The simulator's inputs: the Philly and generic job formats with every
 * optional column, the move onto the carbon year (whole weeks, so the day
 * of week holds), the Let's Wait Awhile presets checked rule by rule, both
 * carbon-trace formats, and the cluster's error messages. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/util/parse.h"
#include "cmd/carbonshift/sim_cluster.h"
#include "cmd/carbonshift/sim_jobs.h"
#include "cmd/carbonshift/sim_trace.h"
#include "tests/unit/testutil.h"

#define DAY 86400

static char path[64];

/* Writes the n bytes at `text` to a fresh temporary file named in `path`
 * (removing the previous one). */
static const char *temp_file_n(const char *text, size_t n)
{
  if (path[0])
    unlink(path);
  snprintf(path, sizeof(path), "/tmp/check_sim_jobs-XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
  close(fd);
  return path;
}

static const char *temp_file(const char *text)
{
  return temp_file_n(text, strlen(text));
}

static void teardown(void)
{
  if (path[0])
    unlink(path);
  path[0] = '\0';
}

/* 0 = Monday, as the Let's Wait Awhile artefact counts. */
static int weekday(int64_t t)
{
  return (int)((t / DAY + 3) % 7);
}

static int64_t at(const char *rfc3339)
{
  int64_t t;
  ck_assert_int_eq(cs_parse_rfc3339(rfc3339, &t, NULL), CS_OK);
  return t;
}

START_TEST(test_sim_jobs_load_philly)
{
  cs_sim_jobs j;
  char err[256];
  const char *f = temp_file("timestamp,duration,num_gpus,gpu_time,cluster\n"
                            "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
                            "2017-10-09 06:13:03,2951.0,8,23608.0,6214e9\n"
                            "2017-10-09 06:20:00,100.0,0,0.0,6214e9\n"
                            "2017-10-09 06:30:00,0.0,2,0.0,6214e9\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_OK);
  /* No GPU or no duration: counted, not replayed. */
  ck_assert_uint_eq(j.n, 2);
  ck_assert_uint_eq(j.skipped, 2);
  /* Sorted by start: the 06:13 row (line 3) first. */
  ck_assert_int_eq(j.v[0].submit, at("2017-10-09T06:13:03Z"));
  ck_assert_str_eq(j.v[0].id, "2");
  ck_assert(j.v[0].gpus == 8 && j.v[0].duration_s == 2951);
  ck_assert(j.v[0].expected_s == 2951 && j.v[0].max_delay_s == 0);
  ck_assert_int_eq(j.v[0].earliest, j.v[0].submit);
  ck_assert_int_eq(j.v[1].submit, at("2017-10-09T07:01:55Z"));
  cs_sim_jobs_free(&j);

  f = temp_file("timestamp,duration,num_gpus,gpu_time,cluster\n"
                "2017-10-09 07:01:55,sixty,1,66.0,11cb48\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":2: duration \"sixty\""));
}
END_TEST

START_TEST(test_sim_jobs_load_generic_every_column)
{
  cs_sim_jobs j;
  char err[256];
  /* Columns in any order; every optional one, blank meaning absent. */
  const char *f = temp_file(
      "gpus,id,submit,duration,max_delay,deadline,budget,expected_duration\n"
      "4,train-1,2023-03-06T10:00:00Z,36h,6h,2023-03-09T09:00:00Z,12.5kg,"
      "30h\r\n"
      "1,eval-2,2023-03-06 09:00:00,5400,,,,\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_OK);
  ck_assert_uint_eq(j.n, 2);
  const cs_sim_job *e = &j.v[0], *t = &j.v[1];
  ck_assert_str_eq(e->id, "eval-2");
  ck_assert_int_eq(e->submit, at("2023-03-06T09:00:00Z"));
  ck_assert(e->duration_s == 5400 && e->expected_s == 5400);
  ck_assert(e->max_delay_s == 0 && e->deadline == 0 && e->budget_g == 0);
  ck_assert_str_eq(t->id, "train-1");
  ck_assert(t->gpus == 4);
  ck_assert(t->duration_s == 36 * 3600.0);
  ck_assert(t->expected_s == 30 * 3600.0); /* the user's estimate */
  ck_assert(t->max_delay_s == 6 * 3600.0);
  ck_assert_int_eq(t->deadline, at("2023-03-09T09:00:00Z"));
  ck_assert(fabs(t->budget_g - 12500) < 1e-9);
  cs_sim_jobs_free(&j);
}
END_TEST

/* A spreadsheet's UTF-8 byte order mark before the header once made its
 * first column `unknown column "id"`; it is skipped, as the file provider
 * and the trace reader skip it. */
START_TEST(test_sim_jobs_load_skips_byte_order_mark)
{
  cs_sim_jobs j;
  char err[256];
  const char *f = temp_file("\xef\xbb\xbfid,submit,duration,gpus\n"
                            "a,2023-01-01T00:00:00Z,1h,1\n");
  ck_assert_msg(cs_sim_jobs_load(f, &j, err, sizeof(err)) == CS_OK, "%s", err);
  ck_assert_str_eq(j.v[0].id, "a");
  cs_sim_jobs_free(&j);
  f = temp_file("\xef\xbb\xbftimestamp,duration,num_gpus\n"
                "2017-10-09 07:01:55,66.0,1\n");
  ck_assert_msg(cs_sim_jobs_load(f, &j, err, sizeof(err)) == CS_OK, "%s", err);
  ck_assert(j.v[0].duration_s == 66);
  cs_sim_jobs_free(&j);
}
END_TEST

START_TEST(test_sim_jobs_load_generic_errors)
{
  cs_sim_jobs j;
  char err[256];
  const char *f = temp_file("id,submit,duration,gpus,priority\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":1: unknown column \"priority\""));
  f = temp_file("id,submit,gpus\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, "lacks column \"duration\""));
  f = temp_file("id,submit,duration,gpus,budget\n"
                "a,2023-01-01T00:00:00Z,1h,1,\n"
                "b,2023-01-01T00:00:00Z,1h,1,lots\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":3: budget \"lots\": expected a mass"));
  f = temp_file("id,submit,duration,gpus,deadline\n"
                "a,2023-01-01T00:00:00Z,1h,1,tomorrow\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":2: deadline \"tomorrow\""));
  f = temp_file("id,submit,duration,gpus\na,2023-01-01T00:00:00Z,-5,1\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":2: duration \"-5\""));
  /* A repeated column once took the last; which was meant is a guess. */
  f = temp_file("id,submit,duration,gpus,duration\n"
                "a,2023-01-01T00:00:00Z,1h,1,2h\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ":1: column \"duration\" given twice (fields 3 "
                            "and 5)"),
                "%s", err);
  ck_assert_int_eq(
      cs_sim_jobs_load("/nonexistent/jobs.csv", &j, err, sizeof(err)), CS_EIO);
  ck_assert_msg(strstr(err, "cannot be read: No such file or directory"), "%s",
                err);
}
END_TEST

/* A jobs file holding `text` is refused with an error containing `want`. */
static void assert_jobs_refused(const char *text, const char *want, size_t i)
{
  cs_sim_jobs j;
  char err[256];
  const char *f = temp_file(text);
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, want), "case %zu: %s", i, err);
}

/* Durations in plain seconds have cs_parse_duration's 100-year cap in every
 * column and both formats: 1e300 once overflowed the planner's int64 sums
 * (UBSan: signed integer overflow in carbon/planner.c). */
START_TEST(test_sim_jobs_load_caps_plain_seconds)
{
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"id,submit,duration,gpus\na,2023-01-05T10:00:00Z,1e300,1\n",
       ":2: duration \"1e300\": expected seconds or 36h, 90m, at most 100y"},
      {"id,submit,duration,gpus,expected_duration\n"
       "a,2023-01-05T10:00:00Z,2h,1,1e300\n",
       ":2: expected_duration \"1e300\""},
      {"id,submit,duration,gpus,max_delay\n"
       "a,2023-01-05T10:00:00Z,2h,1,1e300\n",
       ":2: max_delay \"1e300\""},
      {"id,submit,duration,gpus,max_delay\n"
       "a,2023-01-05T10:00:00Z,2h,1,101y\n",
       ":2: max_delay \"101y\""},
      {"timestamp,duration,num_gpus\n2017-10-09 07:01:55,1e19,1\n",
       ":2: duration \"1e19\": expected seconds, 0 to 3153600000 (100y)"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
    assert_jobs_refused(cases[i].text, cases[i].want, i);
  /* The cap itself is accepted, in seconds as in years. */
  cs_sim_jobs j;
  char err[256];
  const char *f = temp_file("id,submit,duration,gpus,max_delay\n"
                            "a,2023-01-05T10:00:00Z,3153600000,1,100y\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_OK);
  ck_assert(j.v[0].duration_s == CS_DURATION_MAX_S);
  ck_assert(j.v[0].max_delay_s == CS_DURATION_MAX_S);
  cs_sim_jobs_free(&j);
}
END_TEST

/* Values no job can have are refused with their line, not replayed into a
 * silently odd result: a deadline at or before the submission (a miss
 * under every policy), 1e300 GPUs (never placed), a job of a millisecond
 * (no energy); and an empty file says so. */
START_TEST(test_sim_jobs_load_refuses_impossible_jobs)
{
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"id,submit,duration,gpus,deadline\n"
       "a,2023-01-05T10:00:00Z,2h,1,2023-01-05T09:00:00Z\n",
       ":2: deadline \"2023-01-05T09:00:00Z\": expected a time after the "
       "job's submit"},
      {"id,submit,duration,gpus\na,2023-01-05T10:00:00Z,2h,1e300\n",
       ":2: gpus \"1e300\": expected a GPU count from 0 to 1000000"},
      {"timestamp,duration,num_gpus\n2017-10-09 07:01:55,60,2e6\n",
       ":2: num_gpus \"2e6\": expected a GPU count from 0 to 1000000"},
      {"id,submit,duration,gpus\na,2023-01-05T10:00:00Z,0.001,1\n",
       ":2: duration 0.001 s: expected at least 1 s (0 skips the row)"},
      {"id,submit,duration,gpus,expected_duration\n"
       "a,2023-01-05T10:00:00Z,2h,1,0.5\n",
       ":2: expected_duration 0.5 s: expected at least 1 s"},
      {"", ": the file is empty, expected a header line and job rows"},
      {"id,submit,duration,gpus\n", ": no job rows after the header"},
      {"id,submit,duration,gpus\na,2023-01-05T10:00:00Z,2h,0\n",
       ": no replayable jobs (1 rows without GPUs or duration)"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
    assert_jobs_refused(cases[i].text, cases[i].want, i);
}
END_TEST

/* Philly's first job (Monday 2017-10-09 07:01:55) moved into 2023 keeps
 * its weekday and time of day and lands in 2023; so does every other. */
START_TEST(test_sim_jobs_shift_to_year_keeps_weekday)
{
  cs_sim_job v[3] = {{.submit = at("2017-10-09T07:01:55Z")},
                     {.submit = at("2017-12-24T23:59:00Z")},
                     {.submit = at("2017-08-07T12:00:00Z")}};
  for (int i = 0; i < 3; i++) {
    v[i].earliest = v[i].submit;
    v[i].deadline = i == 1 ? v[i].submit + DAY : 0;
  }
  int64_t orig[3] = {v[0].submit, v[1].submit, v[2].submit};
  cs_sim_jobs j = {.v = v, .n = 3};
  int64_t shift = cs_sim_jobs_shift_to_year(&j, 2023);
  ck_assert_int_eq(shift % (7 * DAY), 0);
  ck_assert_int_gt(shift, 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(v[i].submit, orig[i] + shift);
    ck_assert_int_eq(v[i].earliest, v[i].submit);
    ck_assert_int_eq(weekday(v[i].submit), weekday(orig[i]));
    ck_assert_int_eq(v[i].submit % DAY, orig[i] % DAY);
  }
  ck_assert_int_eq(v[1].deadline, v[1].submit + DAY);
  /* The earliest job (August) lands within three days of the same date. */
  ck_assert_int_ge(v[2].submit, cs_sim_year_start(2023));
  ck_assert(llabs(v[2].submit - at("2023-08-07T12:00:00Z")) <= 3 * DAY);
  ck_assert_int_lt(v[1].submit, cs_sim_year_start(2024));
  /* And back. */
  ck_assert_int_eq(cs_sim_jobs_shift_to_year(&j, 2017), -shift);
  ck_assert_int_eq(v[0].submit, orig[0]);
}
END_TEST

START_TEST(test_sim_jobs_lwa_nightly_rule)
{
  cs_sim_jobs j;
  cs_sim_jobs_lwa_nightly(2020, 8 * 3600.0, &j);
  ck_assert_uint_eq(j.n, 365);
  for (size_t i = 0; i < j.n; i++) {
    const cs_sim_job *x = &j.v[i];
    ck_assert_int_eq(x->submit,
                     cs_sim_year_start(2020) + (int64_t)i * DAY + 3600);
    ck_assert_int_eq(x->earliest, x->submit - 8 * 3600);
    ck_assert(x->max_delay_s == 16 * 3600.0 && x->duration_s == 1800);
    ck_assert(x->gpus == 1 && x->deadline == 0);
  }
  cs_sim_jobs_free(&j);
}
END_TEST

/* The deadline rule of the artefact, restated from its description: a job
 * whose original finish falls on Saturday, Sunday or after 17:00 may run
 * until the next workday's 09:00 (Saturday: Monday; Friday evening: the
 * next day, as the artefact does); before 09:00, until 09:00; otherwise it
 * has no slack. */
START_TEST(test_sim_jobs_lwa_ml_rule)
{
  cs_sim_jobs j, k;
  cs_sim_jobs_lwa_ml(2020, 3387, CS_SIM_LWA_NEXT_WORKDAY, 5, &j);
  ck_assert_uint_eq(j.n, 3387);
  size_t slack = 0;
  double shortest = INFINITY, longest = 0;
  for (size_t i = 0; i < j.n; i++) {
    const cs_sim_job *x = &j.v[i];
    shortest = fmin(shortest, x->duration_s);
    longest = fmax(longest, x->duration_s);
    int64_t tod = x->submit % DAY;
    ck_assert_int_lt(weekday(x->submit), 5);
    ck_assert_int_ge(tod, 9 * 3600);
    ck_assert_int_le(tod, 16 * 3600 + 1800);
    ck_assert_int_eq(tod % 1800, 0);
    ck_assert(x->duration_s >= 4 * 3600 && x->duration_s <= 89.5 * 3600);
    ck_assert(fmod(x->duration_s, 1800) == 0);
    ck_assert_int_ge(x->submit, cs_sim_year_start(2020));
    ck_assert_int_lt(x->submit, cs_sim_year_start(2021));
    int64_t oft = x->submit + (int64_t)x->duration_s;
    int64_t d = oft - oft % DAY, min = (oft % DAY) / 60;
    int wd = weekday(oft);
    int64_t want = wd == 5                    ? d + 2 * DAY + 9 * 3600
                   : wd == 6 || min > 17 * 60 ? d + DAY + 9 * 3600
                   : min < 9 * 60             ? d + 9 * 3600
                                              : oft;
    ck_assert_int_eq(x->deadline, want);
    slack += x->deadline > oft;
  }
  /* Most runs end outside working hours and get slack. */
  ck_assert_uint_gt(slack, j.n / 2);
  /* Both ends of the artefact's range(240, 5400, 30) minutes are drawn (a
   * draw of 171 steps once stopped at 89 h). */
  ck_assert(shortest == 4 * 3600.0 && longest == 89.5 * 3600);
  /* Seeded: the same seed, the same jobs; another seed, others. */
  cs_sim_jobs_lwa_ml(2020, 3387, CS_SIM_LWA_NEXT_WORKDAY, 5, &k);
  ck_assert_int_eq(memcmp(j.v, k.v, j.n * sizeof(*j.v)), 0);
  cs_sim_jobs_free(&k);
  cs_sim_jobs_lwa_ml(2020, 3387, CS_SIM_LWA_NEXT_WORKDAY, 6, &k);
  ck_assert_int_ne(memcmp(j.v, k.v, j.n * sizeof(*j.v)), 0);
  cs_sim_jobs_free(&k);
  cs_sim_jobs_free(&j);
}
END_TEST

/* A NUL byte once ended a jobs or trace file early without a word: the
 * rows after it were lost. Both readers refuse it, naming its line. */
START_TEST(test_sim_load_refuses_nul_byte)
{
  static const char jobs[] = "id,submit,duration,gpus\n"
                             "a,2023-01-05T10:00:00Z,2h,1\n"
                             "b,2023-01-06T10:00:00Z,2h,1\0\n"
                             "c,2023-01-07T10:00:00Z,2h,1\n";
  static const char trace[] = "Time,Carbon Intensity\n"
                              "2023-01-01 00:00:00,100\n"
                              "2023-01-01 01:00:00,1\0"
                              "00\n"
                              "2023-01-01 02:00:00,100\n";
  cs_sim_jobs j;
  cs_sim_trace *t = NULL;
  char err[256];
  const char *f = temp_file_n(jobs, sizeof(jobs) - 1);
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ": NUL byte at line 3"), "%s", err);
  f = temp_file_n(trace, sizeof(trace) - 1);
  ck_assert_int_eq(cs_sim_trace_load(f, "DE", &t, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_null(t);
  ck_assert_msg(strstr(err, ": NUL byte at line 3"), "%s", err);
}
END_TEST

/* Both formats of ../shared/data/carbon/: Let's Wait Awhile's 15-minute
 * rows and Electricity Maps' hourly export, whose LCA column is used. */
START_TEST(test_sim_trace_load_both_formats)
{
  char p[512], err[256];
  cs_sim_trace *t;
  snprintf(p, sizeof(p), "%s/data/carbon/lwa-2020/DE.csv", tu_shared_dir());
  ck_assert_int_eq(cs_sim_trace_load(p, NULL, &t, err, sizeof(err)), CS_OK);
  ck_assert_str_eq(t->zone, "DE");
  ck_assert_int_eq(t->step, 900);
  ck_assert_int_eq(t->at[0], at("2019-12-20T00:00:00Z"));
  ck_assert(fabs(t->g[0] - 218.29003068829462) < 1e-9);
  cs_sim_trace_free(t);
  snprintf(p, sizeof(p), "%s/data/carbon/em-2023/DE.csv", tu_shared_dir());
  ck_assert_int_eq(cs_sim_trace_load(p, "DE-LU", &t, err, sizeof(err)), CS_OK);
  ck_assert_str_eq(t->zone, "DE-LU");
  ck_assert_int_eq(t->step, 3600);
  ck_assert_int_eq(t->at[0], at("2023-01-01T00:00:00Z"));
  ck_assert(fabs(t->g[0] - 185.8) < 1e-9); /* LCA, not direct (140.51) */
  /* The integral of the step function over its first two hours. */
  ck_assert(fabs(cs_sim_trace_integral(t, t->at[0], t->at[0] + 7200) -
                 (185.8 + 185.7) * 3600) < 1e-6);
  cs_sim_trace_free(t);
  const char *f = temp_file("Time,Carbon Intensity\n"
                            "2020-01-01 00:00:00,100\n"
                            "2020-01-01 00:15:00,-3\n");
  ck_assert_int_eq(cs_sim_trace_load(f, NULL, &t, err, sizeof(err)), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, ":3: intensity \"-3\""));
  /* One absurd row would swamp the replay's running sums: refused, named. */
  f = temp_file("Time,Carbon Intensity\n"
                "2020-01-01 00:00:00,100\n"
                "2020-01-01 00:15:00,1e19\n");
  ck_assert_int_eq(cs_sim_trace_load(f, NULL, &t, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ":3: intensity \"1e19\": expected a number of "
                            "gCO2e/kWh from 0 to 10000"),
                "%s", err);
}
END_TEST

/* The header decides what the numbers mean, so only the documented shapes
 * are read: a unit other than gCO2(e/eq)/kWh (once read as gCO2e/kWh) and
 * two intensity columns none of which is marked (LCA) (once the first was
 * taken) are refused, with what is accepted. */
START_TEST(test_sim_trace_load_header_shapes)
{
  static const char rows[] = "\n2020-01-01 00:00:00,7,100\n";
  static const char *const ok[] = {
      "Time,Note,Carbon Intensity",
      "Time,Note,Carbon Intensity (gCO2/kWh)",
      "Time,Note,Carbon Intensity gCO\xe2\x82\x82"
      "e/kWh",
      "\xef\xbb\xbfTime,Note,Carbon Intensity", /* a byte order mark */
      "Datetime (UTC),Carbon Intensity gCO2eq/kWh (direct),"
      "Carbon Intensity gCO2eq/kWh (LCA)",
  };
  static const struct {
    const char *header, *want;
  } bad[] = {
      {"Time,Note,Carbon Intensity (lbs/MWh)",
       "column \"Carbon Intensity (lbs/MWh)\": unit \"lbs/MWh\" is not"},
      {"Time,Note,Carbon Intensity kgCO2/kWh", "unit \"kgCO2/kWh\" is not"},
      {"Time,Carbon Intensity,Carbon Intensity",
       "2 \"Carbon Intensity\" columns, 0 of them marked (LCA): ambiguous"},
      {"Time,Carbon Intensity (LCA),Carbon Intensity gCO2/kWh (LCA)",
       "2 of them marked (LCA): ambiguous"},
      {"Datetime (local),Note,Carbon Intensity",
       "first column \"Datetime (local)\" is not"},
      {"Time,Note,Intensity", "no \"Carbon Intensity\" column"},
  };
  char text[256], err[512];
  cs_sim_trace *t;
  for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
    snprintf(text, sizeof(text), "%s%s", ok[i], rows);
    const char *f = temp_file(text);
    ck_assert_msg(cs_sim_trace_load(f, "X", &t, err, sizeof(err)) == CS_OK,
                  "case %zu: %s", i, err);
    ck_assert_msg(t->g[0] == 100, "case %zu", i);
    cs_sim_trace_free(t);
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    snprintf(text, sizeof(text), "%s%s", bad[i].header, rows);
    const char *f = temp_file(text);
    ck_assert_int_eq(cs_sim_trace_load(f, "X", &t, err, sizeof(err)),
                     CS_EPARSE);
    ck_assert_msg(strstr(err, ":1: ") && strstr(err, bad[i].want) &&
                      strstr(err, "expected \"Time,Carbon Intensity\""),
                  "case %zu: %s", i, err);
  }
}
END_TEST

/* A row holds until the next for at most CS_SIM_TRACE_HOLD_STEPS steps;
 * a longer spacing is a hole. The reader once held the last row of 1
 * January until 10 February, 40 days of invented intensity. */
START_TEST(test_sim_trace_holes)
{
  /* Hourly: 00:00, 01:00, 03:00 (one row missing: held), then a hole from
   * 05:00 (03:00 + two steps) to 2023-02-10, then hourly again. */
  const int64_t day = at("2023-01-01T00:00:00Z"),
                feb = at("2023-02-10T00:00:00Z");
  const int64_t t[] = {day, day + 3600, day + 3 * 3600, feb, feb + 3600};
  const double g[] = {100, 200, 300, 400, 500};
  cs_sim_trace *tr;
  ck_assert_int_eq(cs_sim_trace_from("X", t, g, 5, 3600, &tr), CS_OK);
  ck_assert_int_eq(tr->max_hold, 2 * 3600);
  ck_assert_uint_eq(tr->nholes, 1);
  ck_assert_uint_eq(tr->longest_hole_row, 2);
  /* Across the missing row, as before. */
  ck_assert(cs_sim_trace_covers(tr, day, day + 3 * 3600));
  ck_assert(cs_sim_trace_integral(tr, day + 3600, day + 3 * 3600) ==
            200 * 7200.0);
  /* Up to the hole, not into it; from its end on. */
  ck_assert(cs_sim_trace_covers(tr, day + 3 * 3600, day + 5 * 3600));
  ck_assert(!cs_sim_trace_covers(tr, day + 3 * 3600, day + 5 * 3600 + 1));
  ck_assert(!cs_sim_trace_covers(tr, day + 10 * 3600, day + 11 * 3600));
  ck_assert(!cs_sim_trace_covers(tr, day + 10 * 3600, day + 10 * 3600));
  ck_assert(cs_sim_trace_covers(tr, day + 5 * 3600 - 1, day + 5 * 3600 - 1));
  ck_assert(!cs_sim_trace_covers(tr, day, feb + 3600));
  ck_assert(cs_sim_trace_meets_hole(tr, day, feb + 3600));
  ck_assert(cs_sim_trace_covers(tr, feb, feb + 7200));
  ck_assert(cs_sim_trace_meets_hole(tr, feb - 24 * 3600, feb - 23 * 3600));
  /* The mean leaves the hole out: 100, 200 x 2 h, 300 x 2 h, 400, 500. */
  ck_assert(fabs(tr->mean - (100 + 400 + 600 + 400 + 500) / 7.0) < 1e-9);
  cs_sim_trace_free(tr);
  /* The real traces have none: their figures hold every row to the next. */
  static const char *const real[] = {"lwa-2020/DE", "lwa-2020/GB",
                                     "lwa-2020/FR", "em-2023/DE"};
  for (size_t i = 0; i < sizeof(real) / sizeof(*real); i++) {
    char p[512], err[256];
    snprintf(p, sizeof(p), "%s/data/carbon/%s.csv", tu_shared_dir(), real[i]);
    ck_assert_int_eq(cs_sim_trace_load(p, NULL, &tr, err, sizeof(err)), CS_OK);
    ck_assert_msg(tr->nholes == 0, "%s: %zu holes", real[i], tr->nholes);
    cs_sim_trace_free(tr);
  }
}
END_TEST

/* The step is the most common spacing whatever it is, so that a daily
 * trace is not all holes. */
START_TEST(test_sim_trace_step_any_spacing)
{
  const int64_t d0 = at("2023-01-01T00:00:00Z");
  char text[512];
  size_t n = (size_t)snprintf(text, sizeof(text), "Time,Carbon Intensity\n");
  for (int d = 0; d < 10; d++) {
    char when[21];
    cs_format_rfc3339(d0 + (int64_t)d * DAY, when);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "%s,%d\n", when, 100 + d);
  }
  char err[256];
  cs_sim_trace *t;
  ck_assert_msg(
      cs_sim_trace_load(temp_file(text), NULL, &t, err, sizeof(err)) == CS_OK,
      "%s", err);
  ck_assert_int_eq(t->step, DAY);
  ck_assert_uint_eq(t->nholes, 0);
  ck_assert(cs_sim_trace_covers(t, d0, d0 + 10 * DAY));
  cs_sim_trace_free(t);
}
END_TEST

/* The earliest job lands in YEAR even when rounding the shift to whole
 * weeks would move it across New Year: the 730 days from 2021 to 2023 are
 * nearer 104 weeks (728 days) than 105, which would put 1 January 2021 on
 * 30 December 2022; the 1,461 days from 2021 to 2025 are nearer 209 weeks
 * (1,463 days), which would put 31 December 2021 on 2 January 2026. */
START_TEST(test_sim_jobs_shift_to_year_first_job_in_year)
{
  cs_sim_job v[2] = {{.submit = at("2021-01-01T10:00:00Z")},
                     {.submit = at("2021-01-05T10:00:00Z")}};
  for (int i = 0; i < 2; i++)
    v[i].earliest = v[i].submit;
  cs_sim_jobs j = {.v = v, .n = 2};
  int64_t shift = cs_sim_jobs_shift_to_year(&j, 2023);
  ck_assert_int_eq(shift % (7 * DAY), 0);
  ck_assert_int_ge(v[0].earliest, cs_sim_year_start(2023));
  ck_assert_int_lt(v[0].earliest, cs_sim_year_start(2023) + 7 * DAY);
  ck_assert_int_eq(weekday(v[0].submit), weekday(at("2021-01-01T10:00:00Z")));
  cs_sim_job late = {.submit = at("2021-12-31T10:00:00Z")};
  late.earliest = late.submit;
  j = (cs_sim_jobs){.v = &late, .n = 1};
  (void)cs_sim_jobs_shift_to_year(&j, 2025);
  ck_assert_int_lt(late.earliest, cs_sim_year_start(2026));
  ck_assert_int_ge(late.earliest, cs_sim_year_start(2026) - 7 * DAY);
}
END_TEST

/* An explicit max_delay of 0 is given (the job may not wait), so --slack
 * leaves it; only a blank field is "not given". */
START_TEST(test_sim_jobs_set_slack_keeps_explicit_zero)
{
  cs_sim_jobs j;
  char err[256];
  const char *f = temp_file("id,submit,duration,gpus,max_delay\n"
                            "now,2023-03-06T10:00:00Z,1h,1,0\n"
                            "any,2023-03-06T11:00:00Z,1h,1,\n"
                            "own,2023-03-06T12:00:00Z,1h,1,2h\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_OK);
  cs_sim_jobs_set_slack(&j, 6 * 3600.0);
  ck_assert_str_eq(j.v[0].id, "now");
  ck_assert(j.v[0].max_delay_s == 0);
  ck_assert(j.v[1].max_delay_s == 6 * 3600.0);
  ck_assert(j.v[2].max_delay_s == 2 * 3600.0);
  cs_sim_jobs_free(&j);
}
END_TEST

/* CSV quoting: a quoted field may hold a comma (and "" a quote), so an
 * Electricity Maps row for "Korea, Republic of" keeps its columns; a stray
 * or unterminated quote, or a row whose field count is not the header's, is
 * refused with its file and line. */
/* A quoted field may hold a line break (RFC 4180; --jobs-out writes one
 * so): it belongs to the field, and errors still name the line a row
 * starts on. */
START_TEST(test_sim_csv_line_break_in_quoted_field)
{
  char err[256];
  cs_sim_jobs j;
  const char *f = temp_file("id,submit,duration,gpus\n"
                            "\"two\nlines\",2023-03-06T10:00:00Z,1h,2\n"
                            "\"crlf\r\nin it\",2023-03-06T11:00:00Z,1h,2\r\n"
                            "plain,2023-03-06T12:00:00Z,1h,2\n");
  ck_assert_msg(cs_sim_jobs_load(f, &j, err, sizeof(err)) == CS_OK, "%s", err);
  ck_assert_uint_eq(j.n, 3);
  ck_assert_str_eq(j.v[0].id, "two\nlines");
  ck_assert_str_eq(j.v[1].id, "crlf\r\nin it");
  ck_assert_str_eq(j.v[2].id, "plain");
  cs_sim_jobs_free(&j);
  /* The first two rows take lines 2 to 5; the bad row is on line 6. */
  f = temp_file("id,submit,duration,gpus\n"
                "\"a\nb\",2023-03-06T10:00:00Z,1h,2\n"
                "\"c\nd\",2023-03-06T10:00:00Z,1h,2\n"
                "e,2023-03-06T10:00:00Z,1h,lots\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ":6: gpus \"lots\""), "%s", err);

  cs_sim_trace *t;
  f = temp_file("Time,Note,Carbon Intensity\n"
                "2020-01-01 00:00:00,\"a note\non two lines\",100\n"
                "2020-01-01 00:15:00,,1\"00\n");
  ck_assert_int_eq(cs_sim_trace_load(f, NULL, &t, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ":4: a quote inside an unquoted field"), "%s", err);
  f = temp_file("Time,Note,Carbon Intensity\n"
                "2020-01-01 00:00:00,\"a note\non two lines\",100\n"
                "2020-01-01 00:15:00,,200\n");
  ck_assert_msg(cs_sim_trace_load(f, NULL, &t, err, sizeof(err)) == CS_OK, "%s",
                err);
  ck_assert_uint_eq(t->len, 2);
  ck_assert(t->g[0] == 100 && t->g[1] == 200);
  cs_sim_trace_free(t);
}
END_TEST

START_TEST(test_sim_csv_quotes_and_field_counts)
{
  char err[256];
  cs_sim_trace *t;
  const char *f = temp_file(
      "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO2eq/kWh "
      "(direct),Carbon Intensity gCO2eq/kWh (LCA),Low Carbon Percentage\n"
      "2023-01-01 00:00:00,\"Korea, Republic of\",South Korea,KR,400.5,"
      "450.25,30\n"
      "2023-01-01 01:00:00,\"Korea, \"\"South\"\"\",South "
      "Korea,KR,401,451,30\n");
  ck_assert_int_eq(cs_sim_trace_load(f, NULL, &t, err, sizeof(err)), CS_OK);
  ck_assert_uint_eq(t->len, 2);
  ck_assert(t->g[0] == 450.25 && t->g[1] == 451);
  cs_sim_trace_free(t);
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"Time,Carbon Intensity\n2020-01-01 00:00:00,100\n"
       "2020-01-01 00:15:00,1\"00\n",
       ":3: a quote inside an unquoted field"},
      {"Time,Carbon Intensity\n2020-01-01 00:00:00,\"100\n",
       ":2: an unterminated quote"},
      {"Time,Carbon Intensity\n2020-01-01 00:00:00,\"100\"x\n",
       ":2: text after a closing quote"},
      {"Time,Carbon Intensity\n2020-01-01 00:00:00,100,7\n",
       ":2: 3 fields, but the header has 2"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    f = temp_file(bad[i].text);
    ck_assert_int_eq(cs_sim_trace_load(f, NULL, &t, err, sizeof(err)),
                     CS_EPARSE);
    ck_assert_msg(strstr(err, bad[i].want) && strstr(err, path), "case %zu: %s",
                  i, err);
  }
  /* The jobs formats share the reader. */
  cs_sim_jobs j;
  f = temp_file("id,submit,duration,gpus\n"
                "\"train, big\",2023-03-06T10:00:00Z,1h,\"2\"\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_OK);
  ck_assert_str_eq(j.v[0].id, "train, big");
  ck_assert(j.v[0].gpus == 2);
  cs_sim_jobs_free(&j);
  f = temp_file("id,submit,duration,gpus\n"
                "a,2023-03-06T10:00:00Z,1h,2,extra\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ":2: 5 fields, but the header has 4"), "%s", err);
  f = temp_file("timestamp,duration,num_gpus,gpu_time,cluster\n"
                "2017-10-09 07:01:55,66.0,1,66.0,\"11cb48\n");
  ck_assert_int_eq(cs_sim_jobs_load(f, &j, err, sizeof(err)), CS_EPARSE);
  ck_assert_msg(strstr(err, ":2: an unterminated quote"), "%s", err);
}
END_TEST

/* Asserts that the cluster json[0, len) is refused, `want` in the message. */
static void assert_cluster_refused(const cs_gpu_catalog *cat,
                                   const cs_facts_params *d, const char *json,
                                   size_t len, const char *want)
{
  cs_sim_cluster c;
  char err[512];
  ck_assert_int_ne(
      cs_sim_cluster_parse(json, len, cat, d, &c, err, sizeof(err)), CS_OK);
  ck_assert_msg(strstr(err, want), "%s: %s", json, err);
}

/* A pool with one member changed, for the strictness cases below. */
#define POOL(extra)                                                            \
  "{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": "                 \
  "\"A100-SXM4-80GB\", \"nodes\": 2, \"gpusPerNode\": 8" extra "}]}"

START_TEST(test_sim_cluster_parse_errors)
{
  cs_gpu_catalog *cat = cs_gpu_catalog_new();
  cs_facts_params d = {
      .catalog = cat, .default_pue = 1.2, .default_lifetime_s = 1e8};
  cs_sim_cluster c;
  char err[256];
  static const char ok[] =
      "{\"pools\": [{\"name\": \"no-h100\", \"zone\": \"NO\", \"gpu\": "
      "\"H100-SXM5-80GB\", \"nodes\": 20, \"gpusPerNode\": 8, \"installed\": "
      "\"2023-05\", \"pue\": 1.1}, {\"name\": \"de\", \"zone\": \"DE\", "
      "\"gpu\": \"A100-SXM4-80GB\", \"nodes\": 2, \"gpusPerNode\": 4}]}";
  ck_assert_int_eq(
      cs_sim_cluster_parse(ok, strlen(ok), cat, &d, &c, err, sizeof(err)),
      CS_OK);
  ck_assert_uint_eq(c.n, 2);
  ck_assert(c.pools[0].capacity == 160 && c.pools[0].facts.pue == 1.1);
  ck_assert_int_eq(c.pools[0].facts.installed_at, at("2023-05-01T00:00:00Z"));
  ck_assert(c.pools[1].facts.pue == 1.2); /* the service's default */
  ck_assert(c.pools[1].facts.lifetime_s == 1e8);
  cs_sim_cluster_free(&c);
  static const struct {
    const char *json, *want;
  } bad[] = {
      {"{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": \"K80\", "
       "\"nodes\": 1, \"gpusPerNode\": 8}]}",
       "pools[0] (x): gpu = K80: expected a GPU model in the catalog"},
      {"{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": "
       "\"A100-SXM4-80GB\", \"gpusPerNode\": 8}]}",
       "nodes = (missing)"},
      {"{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": "
       "\"A100-SXM4-80GB\", \"nodes\": 1, \"gpusPerNode\": 8, \"installed\": "
       "\"last year\"}]}",
       "installed = last year: expected YYYY-MM"},
      {"{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": "
       "\"A100-SXM4-80GB\", \"nodes\": 1, \"gpusPerNode\": 8, \"pue\": 0.5}]}",
       "pue = 0.5: expected a PUE from 1 to 3"},
      {"{\"pools\": []}", "with 1 to 64 pools"},
      {"[1,", "not valid JSON"},
      /* Once accepted without a word: an unknown key (so the default was
       * used), a repeated one (the first won), a fraction of a node, text
       * after the JSON (dropped), a lifetime under the service's floor. */
      {POOL(", \"embodiedKG\": 5"),
       "pools[0] (x): unknown key \"embodiedKG\" (did you mean embodiedKg?): "
       "expected name, zone, gpu"},
      {POOL(", \"PUE\": 1.5"), "unknown key \"PUE\" (did you mean pue?)"},
      {POOL(", \"instaled\": \"2023-05\""),
       "unknown key \"instaled\" (did you mean installed?)"},
      {POOL(", \"priority\": 1"), "unknown key \"priority\": expected name"},
      {POOL(", \"pue\": 1.1, \"pue\": 2"),
       "pools[0] (x): key \"pue\" given twice"},
      {"{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": "
       "\"A100-SXM4-80GB\", \"nodes\": 2.5, \"gpusPerNode\": 8}]}",
       "nodes = 2.5: expected a whole number of nodes"},
      {"{\"pools\": [{\"name\": \"x\", \"zone\": \"DE\", \"gpu\": "
       "\"A100-SXM4-80GB\", \"nodes\": 2, \"gpusPerNode\": 1.5}]}",
       "gpusPerNode = 1.5: expected a whole number of GPUs"},
      {POOL(", \"lifetime\": \"29d\""),
       "lifetime = 29d: expected a duration of at least 30d"},
      {POOL("") "x", "text after the JSON value at byte"},
      {POOL("") "{}", "text after the JSON value"},
      {"{\"pool\": []}", "the cluster: unknown key \"pool\" (did you mean "
                         "pools?)"},
      {"{\"pools\": [], \"pools\": []}", "key \"pools\" given twice"},
      {"[]", "not an object"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_cluster_refused(cat, &d, bad[i].json, strlen(bad[i].json),
                           bad[i].want);
  /* A NUL inside the text is text after the value, not its end. */
  static const char nul[] = POOL("") "\0{}";
  assert_cluster_refused(cat, &d, nul, sizeof(nul) - 1,
                         "text after the JSON value");
  /* The floor itself is accepted, and so is white space after the JSON. */
  static const char floor30[] = POOL(", \"lifetime\": \"30d\"") " \n\t";
  ck_assert_msg(cs_sim_cluster_parse(floor30, strlen(floor30), cat, &d, &c, err,
                                     sizeof(err)) == CS_OK,
                "%s", err);
  ck_assert(c.pools[0].facts.lifetime_s == 30 * 86400.0);
  cs_sim_cluster_free(&c);
  cs_gpu_catalog_free(cat);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("sim_jobs");
  TCase *t = tcase_create("core");
  tcase_add_checked_fixture(t, NULL, teardown);
  tcase_add_test(t, test_sim_jobs_load_philly);
  tcase_add_test(t, test_sim_jobs_load_generic_every_column);
  tcase_add_test(t, test_sim_jobs_load_generic_errors);
  tcase_add_test(t, test_sim_jobs_load_skips_byte_order_mark);
  tcase_add_test(t, test_sim_jobs_load_caps_plain_seconds);
  tcase_add_test(t, test_sim_jobs_load_refuses_impossible_jobs);
  tcase_add_test(t, test_sim_load_refuses_nul_byte);
  tcase_add_test(t, test_sim_jobs_shift_to_year_keeps_weekday);
  tcase_add_test(t, test_sim_jobs_lwa_nightly_rule);
  tcase_add_test(t, test_sim_jobs_lwa_ml_rule);
  tcase_add_test(t, test_sim_trace_load_both_formats);
  tcase_add_test(t, test_sim_trace_load_header_shapes);
  tcase_add_test(t, test_sim_trace_holes);
  tcase_add_test(t, test_sim_trace_step_any_spacing);
  tcase_add_test(t, test_sim_cluster_parse_errors);
  tcase_add_test(t, test_sim_jobs_shift_to_year_first_job_in_year);
  tcase_add_test(t, test_sim_jobs_set_slack_keeps_explicit_zero);
  tcase_add_test(t, test_sim_csv_quotes_and_field_counts);
  tcase_add_test(t, test_sim_csv_line_break_in_quoted_field);
  suite_add_tcase(s, t);
  return s;
}

int main(void)
{
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_ENV);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
