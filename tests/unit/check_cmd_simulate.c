/* `carbonshift simulate` as a user runs it: the command and its
 * savingsPct, the CSV, --jobs-out with the generic job format and a cluster
 * file, and a specific message for each kind of bad argument. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/util/log.h"
#include "cmd/carbonshift/cmd_simulate.h"
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
       {"--preset", "lwa-ml", "--carbon", "X", "--bogus", "1"},
       "unknown argument \"--bogus\""},
      {1,
       {"--preset", "lwa-ml", "--carbon", "/nonexistent/DE.csv"},
       "--carbon /nonexistent/DE.csv"},
      {1,
       {"--jobs", "/nonexistent/jobs.csv", "--carbon", "TRACE"},
       "--jobs /nonexistent/jobs.csv: cannot be read"},
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

static Suite *suite(void)
{
  Suite *s = suite_create("cmd_simulate");
  TCase *t = tcase_create("core");
  tcase_add_checked_fixture(t, setup, NULL);
  tcase_set_timeout(t, 30);
  tcase_add_test(t, test_cmd_simulate_lwa_nightly_savings_pct);
  tcase_add_test(t, test_cmd_simulate_generic_jobs_csv_and_jobs_out);
  tcase_add_test(t, test_cmd_simulate_bad_arguments);
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
