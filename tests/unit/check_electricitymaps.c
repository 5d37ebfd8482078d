#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/electricitymaps.h"
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
}

static void teardown(void)
{
  fh_stop(srv);
  srv = NULL;
}

static cs_provider *make(const char *factor, long timeout_ms)
{
  char base[128], err[256];
  snprintf(base, sizeof(base), "%s/v3", fh_url(srv));
  cs_electricitymaps_opts o = {.base_url = base,
                               .token = "sekrit-token",
                               .emission_factor_type = factor,
                               .timeout_ms = timeout_ms};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_OK);
  return p;
}

/* The estimated flag: only an explicit false is a measurement. */
START_TEST(test_electricitymaps_current_estimated_unless_false)
{
  static const struct {
    const char *flag; /* the isEstimated member, or "" for none */
    bool estimated;
  } cases[] = {{"\"isEstimated\":false,", false},
               {"\"isEstimated\":true,", true},
               {"\"isEstimated\":null,", true},
               {"", true}};
  cs_provider *p = make(NULL, 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char body[256];
    snprintf(body, sizeof(body),
             "{\"zone\":\"DE\",\"carbonIntensity\":300,%s"
             "\"datetime\":\"2023-03-14T23:00:00.000Z\"}",
             cases[i].flag);
    fh_push(srv, "/v3/carbon-intensity/latest", (fh_reply){.body = body});
    cs_signal v;
    ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_OK);
    ck_assert_msg(v.estimated == cases[i].estimated, "%s", body);
  }
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_current_fixture)
{
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 360);
  ck_assert_int_eq(v.factor, CS_FACTOR_LIFECYCLE); /* as asked */
  ck_assert_int_eq(v.observed_at, 1678834800);     /* 2023-03-14T23:00:00Z */
  ck_assert_int_eq(v.fetched_at, 1678836000);
  ck_assert(v.estimated);
  ck_assert_int_eq(v.type, CS_SIGNAL_AVERAGE);
  ck_assert_str_eq(v.provider, "electricitymaps");
  ck_assert_str_eq(v.zone, "DE");
  ck_assert(p->ops->remote);
  char *q = fh_last_query(srv, "/v3/carbon-intensity/latest");
  ck_assert_str_eq(q, "zone=DE&emissionFactorType=lifecycle&"
                      "shouldUseFallbackCallerLookup=false");
  free(q);
  char *h = fh_last_header(srv, "/v3/carbon-intensity/latest", "auth-token");
  ck_assert_str_eq(h, "sekrit-token");
  free(h);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_forecast_fixture)
{
  cs_provider *p = make(NULL, 0);
  cs_series s = {0};
  int64_t from = 1678838400; /* 2023-03-15T00:00:00Z */
  ck_assert_int_eq(p->ops->forecast(p, "DE", from, from + 86400, &s), CS_OK);
  ck_assert_uint_eq(s.len, 24);
  ck_assert_int_eq(s.step, 3600);
  ck_assert_int_eq(s.points[0].at, from);
  ck_assert_double_eq(s.points[0].g_per_kwh, 366);
  ck_assert_double_eq(s.points[1].g_per_kwh, 375);
  ck_assert_int_eq(s.points[23].at, from + 23 * 3600);
  ck_assert_double_eq(s.points[23].g_per_kwh, 489);
  ck_assert_int_eq(s.type, CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(s.generated_at, 1678835520); /* updatedAt 23:12:00Z */
  /* No history was needed for a window inside the forecast. */
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/history"), 0);
  cs_series_free(&s);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_forecast_history_skips_null)
{
  cs_provider *p = make(NULL, 0);
  cs_series s = {0};
  int64_t from = 1678752000; /* 2023-03-14T00:00:00Z, in the history */
  ck_assert_int_eq(p->ops->forecast(p, "DE", from, from + 2 * 86400, &s),
                   CS_OK);
  /* 24 history hours with one null, then 24 forecast hours. */
  ck_assert_uint_eq(s.len, 23 + 24);
  ck_assert_int_eq(s.points[0].at, from);
  ck_assert_double_eq(s.points[0].g_per_kwh, 241);
  ck_assert_int_eq(s.points[4].at, 1678766400); /* 04:00 */
  ck_assert_int_eq(s.points[5].at, 1678773600); /* 06:00: 05:00 was null */
  ck_assert_int_eq(s.points[23].at, 1678838400);
  ck_assert_double_eq(s.points[23].g_per_kwh, 366);
  double mean;
  /* The null hour is a hole, never filled in with 04:00's value: nothing
   * is in force during it, and no mean across it is made up. */
  ck_assert_int_eq(cs_series_index_at(&s, 1678771800), -1); /* 05:30 */
  ck_assert_int_eq(cs_series_window_mean(&s, 1678766400, 7200, &mean),
                   CS_ENOTFOUND); /* 04:00-06:00 */
  ck_assert_int_eq(cs_series_window_mean(&s, 1678770000, 1800, &mean),
                   CS_ENOTFOUND); /* inside it */
  ck_assert_int_eq(cs_series_window_mean(&s, 1678766400, 3600, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, s.points[4].g_per_kwh, 1e-9);
  ck_assert_int_eq(cs_series_window_mean(&s, 1678838400, 7200, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, (366 + 375) / 2.0, 1e-9);
  cs_series_free(&s);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_current_unauthorized)
{
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.status = 401,
                     .fixture = "electricitymaps-unauthorized.json"});
  cs_provider *p = make(NULL, 0);
  cs_signal v = {.g_per_kwh = -1};
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "FR", 1678836000, &v), CS_EAUTH);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(
      strstr(log, "the token does not grant access to zone FR"));
  ck_assert_ptr_null(strstr(log, "sekrit-token"));
  free(log);
  ck_assert_double_eq(v.g_per_kwh, -1); /* nothing written */
  cs_provider_free(p);
}
END_TEST

/* The fixtures answer for DE: served for a request about NO, they must be
 * refused rather than rank Norwegian nodes on German coal. */
START_TEST(test_electricitymaps_answer_for_another_zone_refused)
{
  cs_provider *p = make(NULL, 0);
  cs_signal v = {.g_per_kwh = -1};
  cs_series s = {0};
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "NO", 1678836000, &v), CS_EPARSE);
  ck_assert_int_eq(
      p->ops->forecast(p, "NO", 1678838400, 1678838400 + 86400, &s), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(
      strstr(log, "response.zone: the answer is for \\\"DE\\\", expected NO"));
  free(log);
  ck_assert_double_eq(v.g_per_kwh, -1);
  ck_assert_uint_eq(s.len, 0);
  /* The zone is compared as Electricity Maps spells it, in any case. */
  ck_assert_int_eq(p->ops->current(p, "de", 1678836000, &v), CS_OK);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_current_refusal_quoting_token_redacted)
{
  /* An API that quotes the credential it refuses, in a JSON message and
   * in a plain-text body: neither the error nor the log repeats it. */
  const char *bodies[] = {"{\"message\":\"token sekrit-token is not valid\"}",
                          "bad auth-token: sekrit-token (revoked)"};
  for (size_t i = 0; i < 2; i++) {
    fh_push(srv, "/v3/carbon-intensity/latest",
            (fh_reply){.status = 401,
                       .body = bodies[i],
                       .content_type = i ? "text/plain" : NULL});
    cs_provider *p = make(NULL, 0);
    cs_signal v;
    fh_log_capture();
    ck_assert_int_eq(p->ops->current(p, "FR", 1678836000, &v), CS_EAUTH);
    char *log = fh_log_take();
    ck_assert_msg(!strstr(log, "sekrit"), "case %zu: %s", i, log);
    ck_assert_msg(strstr(log, i ? "bad auth-token: <redacted> (revoked)"
                                : "token <redacted> is not valid"),
                  "case %zu: %s", i, log);
    free(log);
    cs_provider_free(p);
  }
}
END_TEST

START_TEST(test_electricitymaps_current_refusal_quoting_escaped_token_redacted)
{
  /* A token with a quote, a backslash and a slash, quoted back in JSON
   * (escaped, the slash as \/ the way some encoders write it) or in a
   * truncated body shown as text: the token never reaches the log. */
  const char *bodies[] = {
      "{\"message\":\"token sek\\\"rit\\\\to\\/ken is not valid\"}",
      "{\"message\":\"token \\u0073ek\\u0022rit\\u005cto/ken is not valid\"}",
      "{\"message\":\"token sek\\\"rit\\\\to\\/ken is not valid"};
  char base[128], err[256];
  snprintf(base, sizeof(base), "%s/v3", fh_url(srv));
  cs_electricitymaps_opts o = {.base_url = base, .token = "sek\"rit\\to/ken"};
  for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
    fh_push(srv, "/v3/carbon-intensity/latest",
            (fh_reply){.status = 401, .body = bodies[i]});
    cs_provider *p = NULL;
    ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_OK);
    cs_signal v;
    fh_log_capture();
    ck_assert_int_eq(p->ops->current(p, "FR", 1678836000, &v), CS_EAUTH);
    char *log = fh_log_take();
    /* The log line is JSON: decode its message before looking. */
    cJSON *j = cJSON_Parse(log);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "err");
    ck_assert_msg(cJSON_IsString(e), "case %zu: %s", i, log);
    ck_assert_msg(!strstr(e->valuestring, "sek"), "case %zu: %s", i,
                  e->valuestring);
    ck_assert_msg(strstr(e->valuestring, "token <redacted> is not valid"),
                  "case %zu: %s", i, e->valuestring);
    cJSON_Delete(j);
    free(log);
    cs_provider_free(p);
  }
}
END_TEST

START_TEST(test_electricitymaps_current_faults)
{
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.status = 500, .body = "oops"});
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EHTTP);
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.fixture = "electricitymaps-latest.json", .truncate = 60});
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":null,"
                             "\"datetime\":\"2023-03-14T23:00:00.000Z\"}"});
  /* A null figure is an outage, a failure: not "zone not served". */
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  /* A whole answer followed by more bytes (two bodies run together, a
   * garbled proxy) is no answer either. */
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":360,"
                             "\"datetime\":\"2023-03-14T23:00:00.000Z\"}"
                             "{\"zone\":\"DE\"}"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  char *joined = fh_log_take();
  ck_assert_msg(strstr(joined, "body is not valid JSON"), "%s", joined);
  free(joined);
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.body = "{\"carbonIntensity\":\"360\","
                             "\"datetime\":\"2023-03-14T23:00:00.000Z\"}"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(
      strstr(log, "latest.carbonIntensity: found a string, expected a "
                  "number"));
  free(log);
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":36000,"
                             "\"datetime\":\"2023-03-14T23:00:00.000Z\"}"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  log = fh_log_take();
  ck_assert_msg(strstr(log, "latest.carbonIntensity: 36000 is more than any "
                            "grid emits, expected gCO2eq/kWh from 0 to 10000"),
                "%s", log);
  free(log);
  /* And the good answer still parses afterwards. */
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 360);
  cs_provider_free(p);
}
END_TEST

/* "Not served" is what the API says about the zone, not a bare status: a
 * 404 without an error naming the zone is a wrong URL (here the base
 * without /v3, where every path is unknown), an outage to report. */
START_TEST(test_electricitymaps_current_not_served_only_when_said)
{
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.status = 404,
                     .body = "{\"status\":\"error\",\"message\":\"No data "
                             "available for zone XX\"}"});
  ck_assert_int_eq(p->ops->current(p, "XX", 1678836000, &v), CS_ENOTFOUND);
  fh_push(srv, "/v3/carbon-intensity/latest",
          (fh_reply){.status = 400,
                     .body = "{\"error\":\"Bad request\",\"message\":\"Zone "
                             "XX is not a valid zone\"}"});
  ck_assert_int_eq(p->ops->current(p, "XX", 1678836000, &v), CS_ENOTFOUND);
  const fh_reply bare[] = {
      {.status = 404, .body = ""},
      {.status = 404,
       .body = "<html>Not Found</html>",
       .content_type = "text/html"},
      {.status = 404, .body = "{\"message\":\"Not Found\"}"},
      {.status = 400, .body = "{\"message\":\"Invalid emissionFactorType\"}"}};
  for (size_t i = 0; i < sizeof(bare) / sizeof(*bare); i++) {
    fh_push(srv, "/v3/carbon-intensity/latest", bare[i]);
    ck_assert_msg(p->ops->current(p, "DE", 1678836000, &v) == CS_EHTTP,
                  "case %zu", i);
  }
  cs_provider_free(p);
  char err[256];
  cs_electricitymaps_opts o = {.base_url = fh_url(srv), .token = "t"};
  ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EHTTP);
  cs_series s = {0};
  ck_assert_int_eq(p->ops->forecast(p, "DE", 1678838400, 1678842000, &s),
                   CS_EHTTP);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_current_timeout)
{
  fh_push(
      srv, "/v3/carbon-intensity/latest",
      (fh_reply){.fixture = "electricitymaps-latest.json", .hang_ms = 5000});
  cs_provider *p = make(NULL, 300);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_ETIMEDOUT);
  fh_release(srv);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_forecast_empty)
{
  fh_push(srv, "/v3/carbon-intensity/forecast",
          (fh_reply){.body = "{\"zone\":\"DE\",\"forecast\":[]}"});
  cs_provider *p = make(NULL, 0);
  cs_series s = {0};
  ck_assert_int_eq(p->ops->forecast(p, "DE", 1678838400, 1678838400 + 3600, &s),
                   CS_EPARSE); /* an outage: not "zone not served" */
  ck_assert_uint_eq(s.len, 0);
  cs_provider_free(p);
}
END_TEST

/* Points out of order are refused with both times named. */
START_TEST(test_electricitymaps_forecast_unsorted_names_times)
{
  fh_push(srv, "/v3/carbon-intensity/forecast",
          (fh_reply){.body = "{\"zone\":\"DE\",\"forecast\":["
                             "{\"carbonIntensity\":1,\"datetime\":"
                             "\"2023-03-15T01:00:00.000Z\"},"
                             "{\"carbonIntensity\":2,\"datetime\":"
                             "\"2023-03-15T00:00:00.000Z\"}]}"});
  cs_provider *p = make(NULL, 0);
  cs_series s = {0};
  fh_log_capture();
  ck_assert_int_eq(p->ops->forecast(p, "DE", 1678838400, 1678838400 + 3600, &s),
                   CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_msg(strstr(log, "forecast[1].datetime: 2023-03-15T00:00:00Z, "
                            "expected a time after the previous point's "
                            "2023-03-15T01:00:00Z"),
                "%s", log);
  free(log);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_current_direct_factor)
{
  cs_provider *p = make("direct", 0);
  cs_signal v;
  /* The fixture says lifecycle: a mismatch is an error, not a value. */
  ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  char *q = fh_last_query(srv, "/v3/carbon-intensity/latest");
  ck_assert_ptr_nonnull(strstr(q, "emissionFactorType=direct"));
  free(q);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_electricitymaps_new_bad_options)
{
  char err[256];
  cs_provider *p = NULL;
  cs_electricitymaps_opts o = {.base_url = "http://127.0.0.1:1/v3"};
  ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_EAUTH);
  o.token = "t";
  o.emission_factor_type = "marginal";
  ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "expected lifecycle or direct"));
  o.emission_factor_type = NULL;
  o.base_url = "ftp://x";
  ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_null(p);
}
END_TEST

/* Every truncation of a real answer is a parse error, never a value or a
 * crash (run under ASan in CI). */
START_TEST(test_electricitymaps_current_every_truncation)
{
  cs_provider *p = make(NULL, 0);
  size_t len = fh_fixture_len("electricitymaps-latest.json");
  for (size_t k = 1; k < len; k++) {
    fh_push(
        srv, "/v3/carbon-intensity/latest",
        (fh_reply){.fixture = "electricitymaps-latest.json", .truncate = k});
    cs_signal v;
    ck_assert_int_eq(p->ops->current(p, "DE", 1678836000, &v), CS_EPARSE);
  }
  cs_provider_free(p);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("electricitymaps");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_electricitymaps_current_fixture);
  tcase_add_test(tc, test_electricitymaps_current_estimated_unless_false);
  tcase_add_test(tc, test_electricitymaps_answer_for_another_zone_refused);
  tcase_add_test(tc, test_electricitymaps_forecast_fixture);
  tcase_add_test(tc, test_electricitymaps_forecast_unsorted_names_times);
  tcase_add_test(tc, test_electricitymaps_forecast_history_skips_null);
  tcase_add_test(tc, test_electricitymaps_current_unauthorized);
  tcase_add_test(tc,
                 test_electricitymaps_current_refusal_quoting_token_redacted);
  tcase_add_test(
      tc, test_electricitymaps_current_refusal_quoting_escaped_token_redacted);
  tcase_add_test(tc, test_electricitymaps_current_faults);
  tcase_add_test(tc, test_electricitymaps_current_not_served_only_when_said);
  tcase_add_test(tc, test_electricitymaps_current_timeout);
  tcase_add_test(tc, test_electricitymaps_forecast_empty);
  tcase_add_test(tc, test_electricitymaps_current_direct_factor);
  tcase_add_test(tc, test_electricitymaps_new_bad_options);
  tcase_add_test(tc, test_electricitymaps_current_every_truncation);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
