/* `carbonshift simulate` as a user runs it: the command and its
 * savingsPct, the CSV, --jobs-out with the generic job format and a cluster
 * file, and a specific message for each kind of bad argument. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/util/log.h"
#include "cmd/carbonshift/cmd_simulate.h"
#include "cmd/carbonshift/sim_trace.h"
#include "tests/unit/testutil.h"

static char trace_de[512];

static void setup(void)
{
  cs_log_set_verbosity(-1);
  snprintf(trace_de, sizeof(trace_de), "%s/data/carbon/lwa-2020/DE.csv",
           tu_shared_dir());
}

/* Runs the command with stdout and stderr captured (caller frees both). */
static int run(char **out, char **err, int argc, ...)
{
  char *argv[32];
  va_list ap;
  va_start(ap, argc);
  argv[0] = "simulate";
  for (int i = 1; i < argc; i++)
    argv[i] = va_arg(ap, char *);
  va_end(ap);
  argv[argc] = NULL;
  return tu_run_command(cs_cmd_simulate, argc, argv, out, err);
}

static const cJSON *policy(const cJSON *j, const char *name)
{
  const cJSON *p;
  cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "policies"))
  {
    if (!strcmp(cJSON_GetObjectItem(p, "policy")->valuestring, name))
      return p;
  }
  ck_abort_msg("no policy %s", name);
  return NULL;
}

static double num(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem(o, key);
  ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", key);
  return v->valuedouble;
}

/* Writes `text` to a fresh temporary file; `path` has room for the name. */
static void write_temp(char *path, size_t cap, const char *text)
{
  snprintf(path, cap, "/tmp/check_cmd_simulate-XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  size_t n = strlen(text);
  ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
  close(fd);
}

/* One pool of `gpus` A100s (the reference GPU: runtimes are durations) in
 * DE, as JSON. */
static void one_pool(char *path, size_t cap, int gpus)
{
  char text[256];
  snprintf(text, sizeof(text),
           "{\"pools\": [{\"name\": \"de-a100\", \"zone\": \"DE\", "
           "\"gpu\": \"A100-SXM4-80GB\", \"nodes\": 1, \"gpusPerNode\": "
           "%d, \"installed\": \"2021-06\"}]}",
           gpus);
  write_temp(path, cap, text);
}

/* The --jobs-out line of job `id` under `policy`, split into its fields
 * (policy,id,submit,start,end,pool,zone,gpus,fate,energy_kwh,
 * operational_g,embodied_g); false when there is none. */
static bool job_line(const char *csv, const char *policy, const char *id,
                     char f[12][48])
{
  char key[96];
  snprintf(key, sizeof(key), "\n%s,%s,", policy, id);
  const char *p = strstr(csv, key);
  if (!p)
    return false;
  p++;
  for (int i = 0; i < 12; i++) {
    size_t n = strcspn(p, ",\n");
    snprintf(f[i], 48, "%.*s", (int)n, p);
    p += n + (p[n] == ',');
  }
  return true;
}

/* The command: with a perfect forecast, savingsPct is the
 * perfect-foresight saving (the oracle's), and nothing is drawn on a
 * non-terminal stderr. */
START_TEST(test_cmd_simulate_lwa_nightly_savings_pct)
{
  char *out, *err;
  int rc = run(&out, &err, 10, "--preset", "lwa-nightly", "--window", "8h",
               "--carbon", trace_de, "--forecast", "perfect", "--json");
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(err, "");
  cJSON *j = cJSON_Parse(out);
  ck_assert_ptr_nonnull(j);
  double s = num(j, "savingsPct");
  ck_assert(s > 1 && s < 50);
  ck_assert(fabs(s - num(policy(j, "oracle"), "savingsPct")) < 1e-9);
  ck_assert(fabs(s - num(policy(j, "carbonshift"), "savingsPct")) < 1e-9);
  const cJSON *sc = cJSON_GetObjectItem(j, "scenario");
  ck_assert_int_eq((int)num(sc, "jobCount"), 365);
  /* The bound lies below and its share is 100 % of itself. */
  const cJSON *b = policy(j, "bound");
  ck_assert(num(b, "savingsPct") >= s - 1e-9);
  ck_assert(fabs(num(b, "boundCapturedPct") - 100) < 1e-9);
  ck_assert(num(policy(j, "oracle"), "boundCapturedPct") <= 100);
  ck_assert(num(policy(j, "agnostic"), "deadlineMisses") == 0);
  cJSON_Delete(j);
  free(out);
  free(err);
  /* A bare 0 is a duration ("--slack 0": none), and changes nothing here
   * (every nightly job has its own max-delay). */
  rc = run(&out, &err, 12, "--preset", "lwa-nightly", "--window", "8h",
           "--carbon", trace_de, "--slack", "0", "--policy", "agnostic,oracle",
           "--json");
  ck_assert_msg(rc == 0, "%s", err);
  j = cJSON_Parse(out);
  ck_assert(fabs(num(j, "savingsPct") - s) < 1e-9);
  cJSON_Delete(j);
  free(out);
  free(err);
}
END_TEST

START_TEST(test_cmd_simulate_generic_jobs_csv_and_jobs_out)
{
  char jobs[] = "/tmp/check_cmd_simulate-jobs-XXXXXX";
  char cluster[] = "/tmp/check_cmd_simulate-cluster-XXXXXX";
  char perjob[] = "/tmp/check_cmd_simulate-out-XXXXXX";
  int fd = mkstemp(jobs);
  FILE *f = fdopen(fd, "w");
  fputs("id,submit,duration,gpus,max_delay,deadline,budget,expected_duration\n"
        "a,2020-03-02T10:00:00Z,2h,4,12h,,,\n"
        "b,2020-03-02T11:00:00Z,1h,8,,2020-03-02T20:00:00Z,,90m\n"
        "c,2020-03-03T01:00:00Z,3h,2,,,50kg,\n",
        f);
  fclose(f);
  fd = mkstemp(cluster);
  f = fdopen(fd, "w");
  fputs("{\"pools\": [{\"name\": \"de-a100\", \"zone\": \"DE\", \"gpu\": "
        "\"A100-SXM4-80GB\", \"nodes\": 1, \"gpusPerNode\": 8, "
        "\"installed\": \"2019-06\"}]}",
        f);
  fclose(f);
  close(mkstemp(perjob));
  char *out, *err;
  int rc = run(&out, &err, 12, "--jobs", jobs, "--cluster", cluster, "--carbon",
               trace_de, "--policy", "agnostic,carbonshift,oracle", "--csv",
               "--jobs-out", perjob);
  ck_assert_msg(rc == 0, "%s", err);
  /* The header and one line per policy run. */
  ck_assert_ptr_nonnull(strstr(out, "policy,jobs,not_run,gpu_hours,"));
  ck_assert_ptr_nonnull(strstr(out, "\nagnostic,3,0,"));
  ck_assert_ptr_nonnull(strstr(out, "\ncarbonshift,3,0,"));
  ck_assert_ptr_nonnull(strstr(out, "\noracle,3,0,"));
  /* Every job under every policy, with the pool it ran on. */
  size_t len;
  char *lines = tu_read_file(perjob, &len);
  int n = 0;
  for (const char *p = lines; (p = strchr(p, '\n')); p++)
    n++;
  ck_assert_int_eq(n, 1 + 3 * 3);
  ck_assert_ptr_nonnull(strstr(lines, "\nagnostic,a,1583143200,1583143200,"
                                      "1583150400,de-a100,DE,4,ran,"));
  ck_assert_ptr_nonnull(strstr(lines, "\noracle,c,"));
  free(lines);
  free(out);
  free(err);
  unlink(jobs);
  unlink(cluster);
  unlink(perjob);
}
END_TEST

START_TEST(test_cmd_simulate_bad_arguments)
{
  static const struct {
    int rc;
    const char *args[6], *want;
  } cases[] = {
      {2, {"--preset", "lwa-daily"}, "--preset \"lwa-daily\": expected"},
      {2, {"--preset", "lwa-nightly", "--carbon", "X"}, "needs --window"},
      {2,
       {"--preset", "lwa-ml", "--forecast", "gauss:lots", "--carbon", "X"},
       "--forecast \"gauss:lots\": expected perfect"},
      {2,
       {"--preset", "lwa-ml", "--policy", "greedy", "--carbon", "X"},
       "--policy \"greedy\": expected agnostic"},
      {2,
       {"--preset", "lwa-ml", "--slack", "soon", "--carbon", "X"},
       "--slack \"soon\": expected a duration"},
      {2, {"--preset", "lwa-ml"}, "at least one --carbon"},
      {2,
       {"--preset", "lwa-ml", "--carbon", "X", "--json", "--csv"},
       "give --json or --csv, not both"},
      {2,
       {"--preset", "lwa-ml", "--from", "2020-06-01", "--to", "2020-03-01"},
       "--from 2020-06-01 is not before --to 2020-03-01"},
      {2,
       {"--preset", "lwa-ml", "--carbon", "X", "--bogus", "1"},
       "unknown argument \"--bogus\""},
      /* Last, with no value after it, an unknown option is still unknown. */
      {2, {"--preset", "lwa-ml", "--bogus"}, "unknown argument \"--bogus\""},
      {2, {"lwa-ml"}, "unknown argument \"lwa-ml\""},
      {2,
       {"--preset", "lwa-ml", "--seeds", "1.5"},
       "--seeds \"1.5\": expected a whole number from 1 to 100"},
      {2,
       {"--preset", "lwa-ml", "--year", "20x"},
       "--year \"20x\": expected a year from 1970 to 2200"},
      /* A file that cannot be read says why. */
      {1,
       {"--preset", "lwa-ml", "--carbon", "/nonexistent/DE.csv"},
       "--carbon /nonexistent/DE.csv: cannot be read: No such file or "
       "directory"},
      {1,
       {"--preset", "lwa-ml", "--carbon", "/tmp"},
       "--carbon /tmp: cannot be read: is a directory, not a regular file"},
      {1,
       {"--jobs", "/nonexistent/jobs.csv", "--carbon", "TRACE"},
       "--jobs /nonexistent/jobs.csv: cannot be read: No such file or "
       "directory"},
      {1,
       {"--preset", "lwa-ml", "--cluster", "/nonexistent/c.json", "--carbon",
        "TRACE"},
       "--cluster /nonexistent/c.json: cannot be read: No such file or "
       "directory"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *a[6] = {0};
    int argc = 1;
    for (int k = 0; k < 6 && cases[i].args[k]; k++)
      a[argc++ - 1] =
          !strcmp(cases[i].args[k], "TRACE") ? trace_de : cases[i].args[k];
    char *out, *err;
    int rc = run(&out, &err, argc, a[0], a[1], a[2], a[3], a[4], a[5]);
    ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d, %s", i, rc, err);
    ck_assert_msg(strstr(err, cases[i].want), "case %zu: %s", i, err);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
  }
}
END_TEST

/* A job queued for GPUs past the end of the trace cannot be accounted
 * under agnostic (notRun), while the oracle, which ignores capacity, runs
 * it: savings, their split and the bound must then compare the jobs every
 * policy ran, not each policy's own. */
START_TEST(test_cmd_simulate_savings_over_jobs_every_policy_ran)
{
  /* 20 days of hourly rows from 2021-01-01, ever dirtier: the trace ends
   * at hour 480. */
  char *trace_text = malloc(480 * 40 + 64);
  size_t n = (size_t)snprintf(trace_text, 64, "Time,Carbon Intensity\n");
  for (int h = 0; h < 480; h++)
    n += (size_t)snprintf(trace_text + n, 40, "2021-01-%02d %02d:00:00,%d\n",
                          1 + h / 24, h % 24, 100 + h / 2);
  char trace[64], cluster[64], jobs[64], perjob[64];
  write_temp(trace, sizeof(trace), trace_text);
  free(trace_text);
  one_pool(cluster, sizeof(cluster), 8);
  /* Each takes the whole pool: agnostic runs a from hour 330 to 405, b
   * from 405 to 475, and c from 475 would end past 480. */
  write_temp(jobs, sizeof(jobs),
             "id,submit,duration,gpus\n"
             "a,2021-01-14T18:00:00Z,75h,8\n"
             "b,2021-01-14T19:00:00Z,70h,8\n"
             "c,2021-01-14T20:00:00Z,70h,8\n");
  write_temp(perjob, sizeof(perjob), "");
  char carbon[80];
  snprintf(carbon, sizeof(carbon), "DE=%s", trace);
  char *out, *err;
  int rc = run(&out, &err, 12, "--jobs", jobs, "--cluster", cluster, "--carbon",
               carbon, "--policy", "agnostic,carbonshift,oracle,bound",
               "--json", "--jobs-out", perjob);
  ck_assert_msg(rc == 0, "%s", err);
  cJSON *j = cJSON_Parse(out);
  ck_assert_ptr_nonnull(j);
  size_t len;
  char *lines = tu_read_file(perjob, &len);
  char f[12][48];
  ck_assert(job_line(lines, "agnostic", "c", f));
  ck_assert_str_eq(f[8], "uncovered");
  ck_assert(job_line(lines, "oracle", "c", f));
  ck_assert_str_eq(f[8], "ran");
  ck_assert_int_eq((int)num(policy(j, "agnostic"), "notRun"), 1);
  ck_assert_int_eq((int)num(policy(j, "oracle"), "notRun"), 0);
  /* The oracle's saving over a and b, from the per-job emissions. */
  double base = 0, orc = 0;
  for (int k = 0; k < 2; k++) {
    const char *id = k ? "b" : "a";
    ck_assert(job_line(lines, "agnostic", id, f));
    base += strtod(f[10], NULL) + strtod(f[11], NULL);
    ck_assert(job_line(lines, "oracle", id, f));
    orc += strtod(f[10], NULL) + strtod(f[11], NULL);
  }
  const cJSON *o = policy(j, "oracle");
  double want = 100 * (base - orc) / base;
  ck_assert_msg(fabs(num(o, "savingsPct") - want) < 2e-3, "%f vs %f",
                num(o, "savingsPct"), want);
  ck_assert(want > 0);
  ck_assert_int_eq((int)num(j, "comparedJobs"), 2);
  /* Placement and timing add up to the saving over the same jobs. */
  double split = num(o, "placementSavingKg") + num(o, "timingSavingKg");
  ck_assert_msg(fabs(split - (base - orc) / 1000) < 2e-3, "%f vs %f", split,
                (base - orc) / 1000);
  /* The bound is solved over the same two jobs (and, as b cannot start
   * before a gives the pool back, saves nothing: the oracle beats it by
   * ignoring capacity). */
  ck_assert_int_eq((int)num(policy(j, "bound"), "jobs"), 2);
  ck_assert(fabs(num(policy(j, "bound"), "savingsPct")) < 1e-6);
  cJSON_Delete(j);
  free(lines);
  free(out);
  free(err);
  /* The table says over how many jobs it compares. */
  rc = run(&out, &err, 9, "--jobs", jobs, "--cluster", cluster, "--carbon",
           carbon, "--policy", "agnostic,oracle");
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_msg(strstr(out, "savings compare the 2 jobs every policy ran"),
                "%s", out);
  free(out);
  free(err);
  unlink(trace);
  unlink(cluster);
  unlink(jobs);
  unlink(perjob);
}
END_TEST

/* Fractional requests summed as doubles would leave 0.9999999999999999 of
 * one GPU free after a, b and c end, and big would never start (and be
 * reported as run at time 0). */
START_TEST(test_cmd_simulate_fractional_gpus_free_exactly)
{
  char cluster[64], jobs[64], perjob[64];
  one_pool(cluster, sizeof(cluster), 1);
  write_temp(jobs, sizeof(jobs),
             "id,submit,duration,gpus\n"
             "a,2020-03-02T10:00:00Z,3h,0.1\n"
             "b,2020-03-02T10:00:00Z,1h,0.2\n"
             "c,2020-03-02T10:00:00Z,2h,0.3\n"
             "big,2020-03-02T10:10:00Z,1h,1\n");
  write_temp(perjob, sizeof(perjob), "");
  char *out, *err;
  int rc = run(&out, &err, 12, "--jobs", jobs, "--cluster", cluster, "--carbon",
               trace_de, "--policy", "agnostic,carbonshift", "--json",
               "--jobs-out", perjob);
  ck_assert_msg(rc == 0, "%s", err);
  size_t len;
  char *lines = tu_read_file(perjob, &len);
  static const char *const pols[] = {"agnostic", "carbonshift"};
  for (int k = 0; k < 2; k++) {
    char f[12][48];
    ck_assert(job_line(lines, pols[k], "big", f));
    /* It starts when a, the last of the three, ends at 13:00. */
    ck_assert_str_eq(f[8], "ran");
    ck_assert_str_eq(f[3], "1583154000");
    ck_assert_str_eq(f[4], "1583157600");
  }
  cJSON *j = cJSON_Parse(out);
  ck_assert(num(policy(j, "agnostic"), "waitMeanHours") >= 0);
  cJSON_Delete(j);
  free(lines);
  free(out);
  free(err);
  unlink(cluster);
  unlink(jobs);
  unlink(perjob);
}
END_TEST

/* Two traces for one zone: refused, naming the zone and both arguments. */
START_TEST(test_cmd_simulate_duplicate_zone)
{
  char cluster[64], second[600];
  one_pool(cluster, sizeof(cluster), 8);
  snprintf(second, sizeof(second), "DE=%s", trace_de);
  char *out, *err;
  int rc = run(&out, &err, 10, "--preset", "lwa-ml", "--cluster", cluster,
               "--carbon", trace_de, "--carbon", second, "--json");
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "zone DE"), "%s", err);
  char want[700];
  snprintf(want, sizeof(want), "--carbon %s", second);
  ck_assert_msg(strstr(err, want), "%s", err);
  snprintf(want, sizeof(want), "from --carbon %s:", trace_de);
  ck_assert_msg(strstr(err, want), "%s", err);
  ck_assert_str_eq(out, "");
  free(out);
  free(err);
  unlink(cluster);
}
END_TEST

/* Hourly rows on 1 January, then none until 10 February: the trace once
 * held the last row for 40 days, so a job in between was replayed on an
 * invented intensity. It is now dropped and counted apart from the jobs
 * outside the traces, and stderr says where the hole is. */
START_TEST(test_cmd_simulate_drops_jobs_reaching_a_hole)
{
  char *text = malloc(64 + 20 * 24 * 32);
  size_t n = (size_t)snprintf(text, 64, "Time,Carbon Intensity\n");
  for (int h = 0; h < 24; h++)
    n += (size_t)snprintf(text + n, 32, "2023-01-01 %02d:00:00,%d\n", h,
                          100 + h);
  for (int h = 0; h < 19 * 24; h++)
    n += (size_t)snprintf(text + n, 32, "2023-02-%02d %02d:00:00,%d\n",
                          10 + h / 24, h % 24, 200 + h % 24);
  char trace[64], jobs[64];
  write_temp(trace, sizeof(trace), text);
  free(text);
  write_temp(jobs, sizeof(jobs),
             "id,submit,duration,gpus\n"
             "gap,2023-01-20T10:00:00Z,2h,1\n"
             "feb,2023-02-15T10:00:00Z,2h,1\n"
             "late,2023-03-20T10:00:00Z,2h,1\n");
  char *out, *err;
  int rc = run(&out, &err, 8, "--jobs", jobs, "--carbon", trace, "--policy",
               "agnostic,oracle", "--json");
  ck_assert_msg(rc == 0, "%s", err);
  cJSON *j = cJSON_Parse(out);
  ck_assert_ptr_nonnull(j);
  const cJSON *sc = cJSON_GetObjectItem(j, "scenario");
  ck_assert_int_eq((int)num(sc, "jobCount"), 1);
  ck_assert_int_eq((int)num(sc, "jobsInTraceHoles"), 1);
  ck_assert_int_eq((int)num(sc, "jobsOutsideTraces"), 1);
  ck_assert_msg(strstr(err, "1 hole in the trace") &&
                    strstr(err, "from 2023-01-02T01:00:00Z to "
                                "2023-02-10T00:00:00Z"),
                "%s", err);
  cJSON_Delete(j);
  free(out);
  free(err);
  unlink(trace);
  unlink(jobs);
}
END_TEST

/* --csv once showed figures over fewer jobs than the file held without a
 * word about the rest; stderr now gives every count left out. */
START_TEST(test_cmd_simulate_csv_warns_of_jobs_left_out)
{
  char jobs[64];
  write_temp(jobs, sizeof(jobs),
             "id,submit,duration,gpus\n"
             "in,2020-03-02T10:00:00Z,1h,1\n"
             "late,2031-03-02T10:00:00Z,1h,1\n"
             "none,2020-03-02T10:00:00Z,1h,0\n");
  char *out, *err;
  int rc = run(&out, &err, 8, "--jobs", jobs, "--carbon", trace_de, "--policy",
               "agnostic", "--csv");
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_msg(strstr(err, "1 jobs replayed; left out: 1 outside the carbon "
                            "traces, 0 reaching their holes, 1 unreplayable"),
                "%s", err);
  free(out);
  free(err);
  unlink(jobs);
}
END_TEST

/* The baseline captures nothing of the bound's saving, so the table says
 * nothing about it. */
START_TEST(test_cmd_simulate_table_no_capture_for_baseline)
{
  char *out, *err;
  int rc = run(&out, &err, 9, "--preset", "lwa-nightly", "--window", "2h",
               "--carbon", trace_de, "--policy", "agnostic,oracle,bound");
  ck_assert_msg(rc == 0, "%s", err);
  const char *a = strstr(out, "\nagnostic ");
  ck_assert_ptr_nonnull(a);
  const char *next = strchr(a + 1, '\n');
  ck_assert_ptr_nonnull(next);
  ck_assert_msg(strncmp(next + 1, "oracle ", 7) == 0, "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "of the bound's saving"));
  free(out);
  free(err);
}
END_TEST

/* The CSV leaves what a row lacks empty, never "nan". */
START_TEST(test_cmd_simulate_csv_blank_not_nan)
{
  char *out, *err;
  int rc =
      run(&out, &err, 10, "--preset", "lwa-nightly", "--window", "2h",
          "--carbon", trace_de, "--policy", "agnostic,oracle,bound", "--csv");
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_msg(!strstr(out, "nan") && !strstr(out, "inf"), "%s", out);
  /* The bound has no waits: its line ends with two empty fields and its
   * misses. */
  const char *b = strstr(out, "\nbound,");
  ck_assert_ptr_nonnull(b);
  ck_assert_msg(strstr(b, ",,,0"), "%s", b);
  free(out);
  free(err);
}
END_TEST

/* A bound over --bound-max has no figures: the headline savingsPct was once
 * 0 (as if solved with no saving) and its CSV line empty without a word.
 * Now the JSON says null and the CSV's note column says why. */
START_TEST(test_cmd_simulate_unsolved_bound_says_so)
{
  char *out, *err;
  int rc = run(&out, &err, 12, "--preset", "lwa-nightly", "--window", "2h",
               "--carbon", trace_de, "--policy", "agnostic,bound",
               "--bound-max", "1", "--json");
  ck_assert_msg(rc == 0, "%s", err);
  cJSON *j = cJSON_Parse(out);
  ck_assert_ptr_nonnull(j);
  ck_assert_str_eq(cJSON_GetObjectItem(j, "headlinePolicy")->valuestring,
                   "bound");
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "savingsPct")));
  cJSON_Delete(j);
  free(out);
  free(err);
  rc = run(&out, &err, 12, "--preset", "lwa-nightly", "--window", "2h",
           "--carbon", trace_de, "--policy", "agnostic,bound", "--bound-max",
           "1", "--csv");
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_msg(strstr(out, ",compared_total_kg,note\n"), "%s", out);
  const char *b = strstr(out, "\nbound,");
  ck_assert_ptr_nonnull(b);
  /* Every figure empty, then the note (quoted: it holds commas). */
  ck_assert_msg(!strncmp(b,
                         "\nbound,,,,,,,,,,,,,,,,,\"not solved: the LP would "
                         "have ",
                         54),
                "%s", b);
  ck_assert_msg(strstr(b, "over the limit of 1"), "%s", b);
  free(out);
  free(err);
}
END_TEST

/* --jobs-out quotes a job id or pool name holding a comma, a quote, CR or
 * LF, so the simulator's own CSV reader splits every line into the header's
 * 12 fields and gets the names back as they were. */
START_TEST(test_cmd_simulate_jobs_out_quotes_names)
{
  char cluster[64], jobs[64], perjob[64];
  write_temp(cluster, sizeof(cluster),
             "{\"pools\": [{\"name\": \"de \\\"a100\\\", rack 1\", "
             "\"zone\": \"DE\", \"gpu\": \"A100-SXM4-80GB\", \"nodes\": 1, "
             "\"gpusPerNode\": 8, \"installed\": \"2021-06\"}]}");
  write_temp(jobs, sizeof(jobs),
             "id,submit,duration,gpus\n"
             "\"train, big\",2020-03-02T10:00:00Z,1h,2\n"
             "\"say \"\"hi\"\"\",2020-03-02T11:00:00Z,1h,2\n"
             "plain,2020-03-02T12:00:00Z,1h,2\n");
  write_temp(perjob, sizeof(perjob), "");
  char *out, *err;
  int rc = run(&out, &err, 12, "--jobs", jobs, "--cluster", cluster, "--carbon",
               trace_de, "--policy", "agnostic,carbonshift", "--csv",
               "--jobs-out", perjob);
  ck_assert_msg(rc == 0, "%s", err);
  size_t len;
  char *lines = tu_read_file(perjob, &len);
  static const char *const ids[] = {"train, big", "say \"hi\"", "plain"};
  int seen[3] = {0}, n = 0;
  for (char *line = lines, *next; *line; line = next) {
    next = strchr(line, '\n');
    ck_assert_ptr_nonnull(next);
    *next++ = '\0';
    char *f[CS_SIM_CSV_MAX_FIELDS];
    const char *why = NULL;
    size_t nf = cs_sim_trace_split_csv(line, f, &why);
    ck_assert_msg(nf == 12, "line %d: %zu fields (%s)", n + 1, nf,
                  why ? why : "");
    if (n++ == 0)
      continue;
    ck_assert_str_eq(f[8], "ran");
    ck_assert_str_eq(f[5], "de \"a100\", rack 1");
    ck_assert_str_eq(f[6], "DE");
    for (int i = 0; i < 3; i++)
      seen[i] += !strcmp(f[1], ids[i]);
  }
  ck_assert_int_eq(n, 1 + 2 * 3);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(seen[i] == 2, "%s seen %d times", ids[i], seen[i]);
  /* Split in place above: read again to see the quoting itself. A field
   * that needs none is written as it is. */
  free(lines);
  lines = tu_read_file(perjob, &len);
  ck_assert_ptr_nonnull(strstr(lines, "\nagnostic,plain,"));
  ck_assert_ptr_nonnull(strstr(lines, "\nagnostic,\"say \"\"hi\"\"\","));
  free(lines);
  free(out);
  free(err);
  unlink(cluster);
  unlink(jobs);
  unlink(perjob);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("cmd_simulate");
  TCase *t = tcase_create("core");
  tcase_add_checked_fixture(t, setup, NULL);
  tcase_set_timeout(t, 30);
  tcase_add_test(t, test_cmd_simulate_lwa_nightly_savings_pct);
  tcase_add_test(t, test_cmd_simulate_generic_jobs_csv_and_jobs_out);
  tcase_add_test(t, test_cmd_simulate_bad_arguments);
  tcase_add_test(t, test_cmd_simulate_savings_over_jobs_every_policy_ran);
  tcase_add_test(t, test_cmd_simulate_fractional_gpus_free_exactly);
  tcase_add_test(t, test_cmd_simulate_duplicate_zone);
  tcase_add_test(t, test_cmd_simulate_drops_jobs_reaching_a_hole);
  tcase_add_test(t, test_cmd_simulate_table_no_capture_for_baseline);
  tcase_add_test(t, test_cmd_simulate_csv_blank_not_nan);
  tcase_add_test(t, test_cmd_simulate_unsolved_bound_says_so);
  tcase_add_test(t, test_cmd_simulate_csv_warns_of_jobs_left_out);
  tcase_add_test(t, test_cmd_simulate_jobs_out_quotes_names);
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
