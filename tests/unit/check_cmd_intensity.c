#include <check.h>
#include <stdarg.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/util/clock.h"
#include "cmd/carbonshift/cmd_intensity.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/testutil.h"

static fh_server *srv;

static void setup(void)
{
  srv = fh_start();
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.fixture = "electricitymaps-latest.json"});
  fh_set(srv, "/v3/carbon-intensity/forecast",
         (fh_reply){.fixture = "electricitymaps-forecast.json"});
  fh_set(srv, "/v3/carbon-intensity/history",
         (fh_reply){.fixture = "electricitymaps-history.json"});
  fh_set(srv, "/login", (fh_reply){.fixture = "watttime-login.json"});
  fh_set(srv, "/v3/forecast", (fh_reply){.fixture = "watttime-forecast.json"});
  fh_set(srv, "/intensity", (fh_reply){.fixture = "uk-intensity.json"});
  fh_set(srv, "/intensity/2023-11-02T10:00Z/fw48h",
         (fh_reply){.fixture = "uk-fw48h.json"});
  char url[128];
  snprintf(url, sizeof(url), "%s/v3", fh_url(srv));
  setenv("CARBONSHIFT_ELECTRICITYMAPS_URL", url, 1);
  setenv("CARBONSHIFT_ELECTRICITYMAPS_TOKEN", "tok", 1);
  setenv("CARBONSHIFT_WATTTIME_URL", fh_url(srv), 1);
  setenv("CARBONSHIFT_WATTTIME_USERNAME", "u", 1);
  setenv("CARBONSHIFT_WATTTIME_PASSWORD", "p", 1);
  setenv("CARBONSHIFT_UKGRID_URL", fh_url(srv), 1);
  unsetenv("CARBONSHIFT_FILE_TRACES");
  unsetenv("CARBONSHIFT_CARBON_ROUTES");
  unsetenv("CARBONSHIFT_CARBON_SIGNAL_TYPE");
  /* The fixtures date from 2023: replayed as the docs say, with the age
   * limit raised (the test of that limit sets its own clock). */
  setenv("CARBONSHIFT_CARBON_MAX_OBSERVATION_AGE", "100y", 1);
}

static void teardown(void)
{
  fh_stop(srv);
  srv = NULL;
  cs_clock_set_fixed(0);
}

/* Runs the command with stdout captured into *out and, when err is not
 * NULL, stderr into *err (caller frees). */
static int vrun(char **out, char **err, int argc, va_list ap)
{
  char *argv[16];
  argv[0] = "intensity";
  for (int i = 1; i < argc; i++)
    argv[i] = va_arg(ap, char *);
  argv[argc] = NULL;
  return tu_run_command(cs_cmd_intensity, argc, argv, out, err);
}

static int run(char **out, int argc, ...)
{
  va_list ap;
  va_start(ap, argc);
  int rc = vrun(out, NULL, argc, ap);
  va_end(ap);
  return rc;
}

static int run_err(char **out, char **err, int argc, ...)
{
  va_list ap;
  va_start(ap, argc);
  int rc = vrun(out, err, argc, ap);
  va_end(ap);
  return rc;
}

static cJSON *parse_one(const char *s)
{
  /* Exactly one object and a newline. */
  size_t n = strlen(s);
  ck_assert_int_gt(n, 2);
  ck_assert_int_eq(s[n - 1], '\n');
  ck_assert_ptr_null(strchr(s, '\n') + 1 == s + n ? NULL : s);
  cJSON *j = cJSON_ParseWithLength(s, n);
  ck_assert_msg(j != NULL, "not JSON: %s", s);
  return j;
}

/* The one JSON object printed has `provider`'s current `value`. */
static void assert_answer(const char *out, const char *provider, double value)
{
  cJSON *j = parse_one(out);
  ck_assert_str_eq(cJSON_GetObjectItem(j, "provider")->valuestring, provider);
  ck_assert_double_eq(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "current"), "value")
          ->valuedouble,
      value);
  cJSON_Delete(j);
}

START_TEST(test_cmd_intensity_electricitymaps_json)
{
  char *out;
  int rc = run(&out, 7, "--provider", "electricitymaps", "--zone", "DE",
               "--forecast", "--json");
  ck_assert_int_eq(rc, 0);
  cJSON *j = parse_one(out);
  ck_assert_str_eq(cJSON_GetObjectItem(j, "zone")->valuestring, "DE");
  ck_assert_str_eq(cJSON_GetObjectItem(j, "provider")->valuestring,
                   "electricitymaps");
  ck_assert_str_eq(cJSON_GetObjectItem(j, "signalType")->valuestring,
                   "average");
  ck_assert_str_eq(cJSON_GetObjectItem(j, "unit")->valuestring, "gCO2eq/kWh");
  cJSON *cur = cJSON_GetObjectItem(j, "current");
  ck_assert_str_eq(cJSON_GetObjectItem(cur, "at")->valuestring,
                   "2023-03-14T23:00:00Z");
  ck_assert_double_eq(cJSON_GetObjectItem(cur, "value")->valuedouble, 360);
  ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cur, "estimated")));
  cJSON *f = cJSON_GetObjectItem(j, "forecast");
  /* From the current hour (history) through the 24 forecast hours. */
  ck_assert_int_eq(cJSON_GetArraySize(f), 25);
  cJSON *p1 = cJSON_GetArrayItem(f, 1), *p24 = cJSON_GetArrayItem(f, 24);
  ck_assert_str_eq(cJSON_GetObjectItem(p1, "at")->valuestring,
                   "2023-03-15T00:00:00Z");
  ck_assert_double_eq(cJSON_GetObjectItem(p1, "value")->valuedouble, 366);
  ck_assert_str_eq(cJSON_GetObjectItem(p24, "at")->valuestring,
                   "2023-03-15T23:00:00Z");
  ck_assert_double_eq(cJSON_GetObjectItem(p24, "value")->valuedouble, 489);
  cJSON_Delete(j);
  free(out);
}
END_TEST

START_TEST(test_cmd_intensity_watttime_json)
{
  /* The current value's horizon_hours=0 request gets one point, as from
   * the real API; the forecast request then gets the whole fixture. */
  fh_push(srv, "/v3/forecast",
          (fh_reply){.fixture = "watttime-forecast-now.json"});
  char *out;
  int rc = run(&out, 7, "--provider", "watttime", "--zone", "CAISO_NORTH",
               "--forecast", "--json");
  ck_assert_int_eq(rc, 0);
  cJSON *j = parse_one(out);
  ck_assert_str_eq(cJSON_GetObjectItem(j, "signalType")->valuestring,
                   "marginal");
  cJSON *cur = cJSON_GetObjectItem(j, "current");
  ck_assert_str_eq(cJSON_GetObjectItem(cur, "at")->valuestring,
                   "2023-06-09T00:00:00Z");
  ck_assert_double_eq_tol(cJSON_GetObjectItem(cur, "value")->valuedouble,
                          194.41, 1e-9); /* 428.6 lbs/MWh */
  cJSON *f = cJSON_GetObjectItem(j, "forecast");
  ck_assert_int_eq(cJSON_GetArraySize(f), 288);
  cJSON *last = cJSON_GetArrayItem(f, 287);
  ck_assert_str_eq(cJSON_GetObjectItem(last, "at")->valuestring,
                   "2023-06-09T23:55:00Z");
  ck_assert_double_eq_tol(cJSON_GetObjectItem(last, "value")->valuedouble,
                          47.31, 1e-9); /* 104.3 lbs/MWh */
  cJSON_Delete(j);
  free(out);
}
END_TEST

START_TEST(test_cmd_intensity_ukgrid_json)
{
  char *out;
  int rc = run(&out, 7, "--provider", "ukgrid", "--zone", "GB", "--forecast",
               "--json");
  ck_assert_int_eq(rc, 0);
  cJSON *j = parse_one(out);
  cJSON *cur = cJSON_GetObjectItem(j, "current");
  ck_assert_double_eq(cJSON_GetObjectItem(cur, "value")->valuedouble, 128);
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cur, "estimated")));
  ck_assert_str_eq(cJSON_GetObjectItem(cur, "at")->valuestring,
                   "2023-11-02T10:00:00Z");
  ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "forecast")), 76);
  cJSON_Delete(j);
  free(out);
}
END_TEST

START_TEST(test_cmd_intensity_file_text)
{
  char traces[1100];
  snprintf(traces, sizeof(traces),
           "{\"DE\": \"%s/data/carbon/em-2023/DE.csv\"}", tu_shared_dir());
  setenv("CARBONSHIFT_FILE_TRACES", traces, 1);
  char *out;
  int rc = run(&out, 7, "--provider", "file", "--zone", "DE", "--at",
               "2023-07-01T12:30:00Z");
  ck_assert_int_eq(rc, 0);
  ck_assert_str_eq(out, "zone DE: 132.45 gCO2eq/kWh at 2023-07-01T12:00:00Z "
                        "(file, average, lifecycle)\n");
  free(out);
}
END_TEST

START_TEST(test_cmd_intensity_errors)
{
  char *out;
  /* No zone, unknown provider, bad --at: usage errors. */
  ck_assert_int_eq(run(&out, 2, "--json"), 2);
  free(out);
  ck_assert_int_eq(run(&out, 5, "--provider", "nope", "--zone", "DE"), 2);
  free(out);
  ck_assert_int_eq(run(&out, 5, "--zone", "DE", "--at", "noon"), 2);
  free(out);
  /* A flag only serve acts on is refused rather than ignored, in either
   * spelling. */
  char *err;
  ck_assert_int_eq(
      run_err(&out, &err, 5, "--zone", "DE", "--listen", "127.0.0.1:1"), 2);
  ck_assert_str_eq(err, "carbonshift intensity: --listen is a flag of "
                        "'carbonshift serve': intensity neither listens nor "
                        "reads Kubernetes; see 'carbonshift help intensity'\n");
  ck_assert_str_eq(out, "");
  free(out);
  free(err);
  ck_assert_int_eq(run_err(&out, &err, 4, "--kubeconfig=/x", "--zone", "DE"),
                   2);
  ck_assert_ptr_nonnull(strstr(err, "--kubeconfig is a flag of"));
  free(out);
  free(err);
  ck_assert_int_eq(
      run_err(&out, &err, 5, "--zone", "DE", "--tls-client-ca", "/ca.pem"), 2);
  ck_assert_ptr_nonnull(strstr(err, "--tls-client-ca is a flag of"));
  free(out);
  free(err);
  /* The other configuration flags are taken: the log's verbosity. */
  ck_assert_int_eq(run_err(&out, &err, 5, "--zone", "DE", "-v", "1"), 0);
  ck_assert_ptr_nonnull(strstr(out, "zone DE:"));
  free(out);
  free(err);
  /* Provider down: nothing printed, status 1. */
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 500, .body = "down"});
  ck_assert_int_eq(
      run(&out, 6, "--provider", "electricitymaps", "--zone", "DE", "--json"),
      1);
  ck_assert_str_eq(out, "");
  free(out);
  unsetenv("CARBONSHIFT_ELECTRICITYMAPS_TOKEN");
  ck_assert_int_eq(
      run(&out, 5, "--provider", "electricitymaps", "--zone", "DE"), 2);
  free(out);
}
END_TEST

START_TEST(test_cmd_intensity_routes_and_signal_type)
{
  char *out;
  /* The route's first provider is down: the next one answers. */
  setenv("CARBONSHIFT_CARBON_ROUTES",
         "{\"DE\": [\"electricitymaps\", \"static\"]}", 1);
  setenv("CARBONSHIFT_CARBON_STATIC", "{\"DE\": 321}", 1);
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 503, .body = "down"});
  ck_assert_int_eq(run(&out, 4, "--zone", "DE", "--json"), 0);
  assert_answer(out, "static", 321);
  free(out);
  unsetenv("CARBONSHIFT_CARBON_STATIC");
  /* A marginal value is not an answer when ranking on average. */
  setenv("CARBONSHIFT_CARBON_ROUTES", "{\"*\": [\"watttime\"]}", 1);
  ck_assert_int_eq(run(&out, 4, "--zone", "CAISO_NORTH", "--json"), 1);
  ck_assert_str_eq(out, "");
  free(out);
  setenv("CARBONSHIFT_CARBON_SIGNAL_TYPE", "marginal", 1);
  ck_assert_int_eq(run(&out, 4, "--zone", "CAISO_NORTH", "--json"), 0);
  cJSON *j = parse_one(out);
  ck_assert_str_eq(cJSON_GetObjectItem(j, "signalType")->valuestring,
                   "marginal");
  ck_assert_ptr_null(cJSON_GetObjectItem(j, "forecast"));
  cJSON_Delete(j);
  free(out);
  /* A route naming a provider that cannot be built is a configuration
   * error. (Half a login is one already: drop both halves.) */
  unsetenv("CARBONSHIFT_WATTTIME_USERNAME");
  unsetenv("CARBONSHIFT_WATTTIME_PASSWORD");
  ck_assert_int_eq(run(&out, 4, "--zone", "CAISO_NORTH", "--json"), 2);
  free(out);
}
END_TEST

/* The command prints what the service would use: a remote value describing
 * a period that began more than carbon.maxObservationAge ago is refused
 * and the next provider of the route answers. */
START_TEST(test_cmd_intensity_stale_value_falls_through)
{
  const int64_t latest = 1678834800; /* the fixture's 2023-03-14T23:00Z */
  unsetenv("CARBONSHIFT_CARBON_MAX_OBSERVATION_AGE"); /* 3 h */
  setenv("CARBONSHIFT_CARBON_ROUTES",
         "{\"DE\": [\"electricitymaps\", \"static\"]}", 1);
  setenv("CARBONSHIFT_CARBON_STATIC", "{\"DE\": 321}", 1);
  char *out, *err;
  /* Within the limit: Electricity Maps answers. */
  cs_clock_set_fixed(latest + 3 * 3600);
  ck_assert_int_eq(run_err(&out, &err, 4, "--zone", "DE", "--json"), 0);
  assert_answer(out, "electricitymaps", 360);
  free(out);
  free(err);
  /* A second older: refused as stale, the static value answers. */
  cs_clock_set_fixed(latest + 3 * 3600 + 1);
  ck_assert_int_eq(run_err(&out, &err, 4, "--zone", "DE", "--json"), 0);
  assert_answer(out, "static", 321);
  ck_assert_msg(strstr(err, "Carbon provider returned stale data") &&
                    strstr(err, "\"ageSeconds\":10801"),
                "%s", err);
  free(out);
  free(err);
  /* Asked alone, the provider has no value to print. */
  ck_assert_int_eq(run_err(&out, &err, 6, "--provider", "electricitymaps",
                           "--zone", "DE", "--json"),
                   1);
  ck_assert_str_eq(out, "");
  ck_assert_ptr_nonnull(strstr(err, "Carbon provider returned stale data"));
  free(out);
  free(err);
  /* The limit is the configured one. */
  ck_assert_int_eq(run_err(&out, &err, 6, "--zone", "DE", "--json", "--set",
                           "carbon.maxObservationAge=4h"),
                   0);
  assert_answer(out, "electricitymaps", 360);
  free(out);
  free(err);
  unsetenv("CARBONSHIFT_CARBON_STATIC");
}
END_TEST

/* When no provider answers, the message says why for each, since some
 * (a zone they do not know) log nothing. */
START_TEST(test_cmd_intensity_no_value_says_why)
{
  char *out, *err;
  int rc = run_err(&out, &err, 5, "--provider", "builtin", "--zone", "XX");
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "no provider has a value for zone XX (builtin: "
                            "no value for the zone)"),
                "%s", err);
  free(out);
  free(err);
}
END_TEST

/* A mistyped CARBONSHIFT_ variable is said on stderr, as serve says it,
 * and the answer still comes (the variable is ignored). */
START_TEST(test_cmd_intensity_warns_unknown_variable)
{
  setenv("CARBONSHIFT_CARBON_SIGNAL_TYP", "marginal", 1);
  char *out, *err;
  int rc = run_err(&out, &err, 5, "--provider", "builtin", "--zone", "DE");
  unsetenv("CARBONSHIFT_CARBON_SIGNAL_TYP");
  ck_assert_int_eq(rc, 0);
  ck_assert_msg(strstr(err, "unknown environment variable "
                            "CARBONSHIFT_CARBON_SIGNAL_TYP (did you mean "
                            "CARBONSHIFT_CARBON_SIGNAL_TYPE?)"),
                "%s", err);
  ck_assert_ptr_nonnull(strstr(out, "zone DE:"));
  free(out);
  free(err);
}
END_TEST

/* --at, as 'carbonshift help intensity' says: builtin and static answer
 * for the asked hour (and file, test_cmd_intensity_file_text), a network
 * provider for the present whatever --at says. */
START_TEST(test_cmd_intensity_at_which_providers)
{
  char *out;
  static const char *const ats[] = {"2025-01-15T03:30:00Z",
                                    "2025-06-01T12:10:00Z"};
  static const char *const hours[] = {"2025-01-15T03:00:00Z",
                                      "2025-06-01T12:00:00Z"};
  double builtin[2];
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(run(&out, 8, "--provider", "builtin", "--zone", "DE",
                         "--at", ats[i], "--json"),
                     0);
    cJSON *j = parse_one(out);
    cJSON *cur = cJSON_GetObjectItem(j, "current");
    ck_assert_str_eq(cJSON_GetObjectItem(cur, "at")->valuestring, hours[i]);
    builtin[i] = cJSON_GetObjectItem(cur, "value")->valuedouble;
    cJSON_Delete(j);
    free(out);
    ck_assert_int_eq(run(&out, 10, "--provider", "static", "--zone", "DE",
                         "--at", ats[i], "--json", "--set",
                         "carbon.static={\"DE\": 321}"),
                     0);
    j = parse_one(out);
    cur = cJSON_GetObjectItem(j, "current");
    ck_assert_str_eq(cJSON_GetObjectItem(cur, "at")->valuestring, hours[i]);
    ck_assert_double_eq(cJSON_GetObjectItem(cur, "value")->valuedouble, 321);
    cJSON_Delete(j);
    free(out);
    ck_assert_int_eq(run(&out, 8, "--provider", "electricitymaps", "--zone",
                         "DE", "--at", ats[i], "--json"),
                     0);
    j = parse_one(out);
    cur = cJSON_GetObjectItem(j, "current");
    ck_assert_str_eq(cJSON_GetObjectItem(cur, "at")->valuestring,
                     "2023-03-14T23:00:00Z");
    cJSON_Delete(j);
    free(out);
  }
  /* A winter night and a summer noon in DE differ in the model. */
  ck_assert(builtin[0] != builtin[1]);
  char *help;
  size_t len;
  FILE *f = open_memstream(&help, &len);
  cs_cmd_intensity_help(f);
  fclose(f);
  ck_assert_msg(strstr(help, "builtin (its model at\nthat hour), static") &&
                    strstr(help, "always answer for the present"),
                "%s", help);
  free(help);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("cmd_intensity");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_cmd_intensity_electricitymaps_json);
  tcase_add_test(tc, test_cmd_intensity_warns_unknown_variable);
  tcase_add_test(tc, test_cmd_intensity_no_value_says_why);
  tcase_add_test(tc, test_cmd_intensity_watttime_json);
  tcase_add_test(tc, test_cmd_intensity_ukgrid_json);
  tcase_add_test(tc, test_cmd_intensity_file_text);
  tcase_add_test(tc, test_cmd_intensity_errors);
  tcase_add_test(tc, test_cmd_intensity_routes_and_signal_type);
  tcase_add_test(tc, test_cmd_intensity_stale_value_falls_through);
  tcase_add_test(tc, test_cmd_intensity_at_which_providers);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
