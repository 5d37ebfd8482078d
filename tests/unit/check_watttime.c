#include <check.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carbon/providers/watttime.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/testutil.h"

static fh_server *srv;

static void setup(void)
{
  srv = fh_start();
  fh_set(srv, "/login", (fh_reply){.fixture = "watttime-login.json"});
  fh_set(srv, "/v3/forecast", (fh_reply){.fixture = "watttime-forecast.json"});
  fh_set(srv, "/v3/region-from-loc",
         (fh_reply){.fixture = "watttime-region-from-loc.json"});
}

static void teardown(void)
{
  fh_stop(srv);
  srv = NULL;
}

static cs_provider *make_account(const char *user, const char *password,
                                 const char *signal)
{
  char err[256];
  cs_watttime_opts o = {.base_url = fh_url(srv),
                        .username = user,
                        .password = password,
                        .signal_type = signal,
                        .timeout_ms = 2000};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_watttime_new(&o, &p, err, sizeof(err)), CS_OK);
  return p;
}

static cs_provider *make(const char *signal)
{
  return make_account("alice", "pa55", signal);
}

START_TEST(test_watttime_current_converts_lbs)
{
  fh_push(srv, "/v3/forecast",
          (fh_reply){.fixture = "watttime-forecast-now.json"});
  cs_provider *p = make(NULL);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_double_eq_tol(v.g_per_kwh, 428.6 * 0.45359237, 1e-9);
  ck_assert_int_eq(v.observed_at, 1686268800); /* 2023-06-09T00:00:00Z */
  ck_assert_int_eq(v.type, CS_SIGNAL_MARGINAL);
  ck_assert_int_eq(v.factor, CS_FACTOR_DIRECT);
  ck_assert_str_eq(v.provider, "watttime");
  char *q = fh_last_query(srv, "/v3/forecast");
  ck_assert_str_eq(q, "region=CAISO_NORTH&signal_type=co2_moer&"
                      "horizon_hours=0");
  free(q);
  /* Logged in with Basic auth, then used the Bearer token. */
  char *b = fh_last_header(srv, "/login", "Authorization");
  ck_assert_str_eq(b, "Basic YWxpY2U6cGE1NQ==");
  free(b);
  char *t = fh_last_header(srv, "/v3/forecast", "Authorization");
  ck_assert_str_eq(t, "Bearer eyJhbGciOiJIUzI1NiJ9.fixture.signature");
  free(t);
  /* The token is reused. */
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_int_eq(fh_hits(srv, "/login"), 1);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_forecast_fixture)
{
  cs_provider *p = make(NULL);
  cs_series s = {0};
  int64_t from = 1686268800;
  ck_assert_int_eq(p->ops->forecast(p, "CAISO_NORTH", from, from + 86400, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 288);
  ck_assert_int_eq(s.step, 300);
  ck_assert_int_eq(s.points[1].at, from + 300);
  ck_assert_double_eq_tol(s.points[1].g_per_kwh, 432.3 * 0.45359237, 1e-9);
  ck_assert_int_eq(s.points[287].at, from + 287 * 300);
  ck_assert_double_eq_tol(s.points[287].g_per_kwh, 104.3 * 0.45359237, 1e-9);
  ck_assert_int_eq(s.generated_at, from); /* meta.generated_at */
  char *q = fh_last_query(srv, "/v3/forecast");
  ck_assert_ptr_nonnull(strstr(q, "horizon_hours=24"));
  free(q);
  /* The window starts with the forecast: no history is asked for. */
  ck_assert_int_eq(fh_hits(srv, "/v3/historical"), 0);
  cs_series_free(&s);
  /* A window inside the forecast is sliced. */
  ck_assert_int_eq(
      p->ops->forecast(p, "CAISO_NORTH", from + 3600, from + 7200, &s), CS_OK);
  ck_assert_uint_eq(s.len, 12);
  ck_assert_int_eq(s.points[0].at, from + 3600);
  cs_series_free(&s);
  cs_provider_free(p);
}
END_TEST

/* /v3/historical in the shape the API answers (the forecast's: `meta` and
 * `data`), 15 minutes up to and including the forecast fixture's first
 * point (2023-06-09T00:00:00Z). */
static const char history_body[] =
    "{\"data\":["
    "{\"point_time\":\"2023-06-08T23:45:00+00:00\",\"value\":500.0},"
    "{\"point_time\":\"2023-06-08T23:50:00+00:00\",\"value\":510.0},"
    "{\"point_time\":\"2023-06-08T23:55:00+00:00\",\"value\":null},"
    "{\"point_time\":\"2023-06-09T00:00:00+00:00\",\"value\":999.0}],"
    "\"meta\":{\"data_point_period_seconds\":300,\"region\":"
    "\"CAISO_NORTH\",\"warnings\":[],\"signal_type\":\"co2_moer\","
    "\"model\":{\"date\":\"2023-03-01\"},\"units\":"
    "\"lbs_co2_per_mwh\"}}";

/* A window from before the forecast's first point (a pod judged at its
 * planned start, minutes ago) is completed from measured history; the
 * forecast's own point wins where both have one, and a null stays a hole. */
START_TEST(test_watttime_forecast_completed_from_history)
{
  fh_set(srv, "/v3/historical", (fh_reply){.body = history_body});
  cs_provider *p = make(NULL);
  cs_series s = {0};
  int64_t first = 1686268800, from = first - 900;
  ck_assert_int_eq(p->ops->forecast(p, "CAISO_NORTH", from, first + 3600, &s),
                   CS_OK);
  char *q = fh_last_query(srv, "/v3/historical");
  ck_assert_str_eq(q, "region=CAISO_NORTH&signal_type=co2_moer&"
                      "start=2023-06-08T23:45:00Z&end=2023-06-09T00:00:00Z");
  free(q);
  ck_assert_uint_eq(s.len, 2 + 12);
  ck_assert_int_eq(s.points[0].at, from);
  ck_assert_double_eq_tol(s.points[0].g_per_kwh, 500.0 * 0.45359237, 1e-9);
  ck_assert_int_eq(s.points[1].at, from + 300);
  ck_assert_int_eq(s.points[2].at, first);
  ck_assert_double_eq_tol(s.points[2].g_per_kwh, 428.6 * 0.45359237, 1e-9);
  /* 23:55 had no value: the window from 23:45 is known for 10 minutes. */
  double mean;
  int64_t known;
  ck_assert_int_eq(cs_series_prefix_mean(&s, from, 3600, &mean, &known), CS_OK);
  ck_assert_int_eq(known, 600);
  ck_assert_double_eq_tol(mean, 505.0 * 0.45359237, 1e-9);
  cs_series_free(&s);
  /* A window from within a period asks from that period's start, so that
   * the point covering the window's start is in the answer. */
  ck_assert_int_eq(
      p->ops->forecast(p, "CAISO_NORTH", from + 100, first + 3600, &s), CS_OK);
  q = fh_last_query(srv, "/v3/historical");
  ck_assert_ptr_nonnull(strstr(q, "&start=2023-06-08T23:45:00Z&"));
  free(q);
  ck_assert_int_eq(s.points[0].at, from);
  cs_series_free(&s);
  /* History is asked for a day back at most. */
  ck_assert_int_eq(
      p->ops->forecast(p, "CAISO_NORTH", first - 7 * 86400, first, &s), CS_OK);
  q = fh_last_query(srv, "/v3/historical");
  ck_assert_ptr_nonnull(strstr(q, "&start=2023-06-08T00:00:00Z&"));
  free(q);
  cs_series_free(&s);
  cs_provider_free(p);
}
END_TEST

/* Without history (a failure, another region's answer) the forecast alone
 * is served and the failure logged; nothing before it is filled in. */
START_TEST(test_watttime_forecast_history_failure_keeps_forecast)
{
  const fh_reply bad[] = {
      {.status = 500, .body = "{\"error\":\"internal\"}"},
      {.status = 403, .body = "{\"error\":\"no access to historical\"}"},
      {.body = "{\"data\":[],\"meta\":{\"region\":\"CAISO_NORTH\","
               "\"signal_type\":\"co2_moer\",\"units\":"
               "\"lbs_co2_per_mwh\"}}"},
      {.body = "{\"data\":[{\"point_time\":\"2023-06-08T23:45:00Z\","
               "\"value\":1}],\"meta\":{\"region\":\"PJM_DC\","
               "\"signal_type\":\"co2_moer\",\"units\":"
               "\"lbs_co2_per_mwh\"}}"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    fh_set(srv, "/v3/historical", bad[i]);
    cs_provider *p = make(NULL);
    cs_series s = {0};
    int64_t first = 1686268800;
    fh_log_capture();
    ck_assert_int_eq(
        p->ops->forecast(p, "CAISO_NORTH", first - 900, first + 3600, &s),
        CS_OK);
    char *log = fh_log_take();
    ck_assert_msg(strstr(log, "Carbon provider request failed") &&
                      strstr(log, "\"provider\":\"watttime\"") &&
                      strstr(log, "/v3/historical from 2023-06-08T23:45:00Z "
                                  "to 2023-06-09T00:00:00Z: "),
                  "case %zu: %s", i, log);
    free(log);
    ck_assert_uint_eq(s.len, 12);
    ck_assert_int_eq(s.points[0].at, first);
    cs_series_free(&s);
    cs_provider_free(p);
  }
}
END_TEST

START_TEST(test_watttime_current_relogin_on_401)
{
  cs_provider *p = make(NULL);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  fh_push(srv, "/v3/forecast",
          (fh_reply){.status = 401, .body = "{\"error\":\"expired\"}"});
  fh_push(srv, "/v3/forecast",
          (fh_reply){.fixture = "watttime-forecast-now.json"});
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_int_eq(fh_hits(srv, "/login"), 2);
  ck_assert_double_eq_tol(v.g_per_kwh, 428.6 * 0.45359237, 1e-9);
  /* Only once: two 401s in a row are an auth failure. */
  fh_push(srv, "/v3/forecast", (fh_reply){.status = 401, .body = "{}"});
  fh_push(srv, "/v3/forecast", (fh_reply){.status = 401, .body = "{}"});
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_EAUTH);
  ck_assert_int_eq(fh_hits(srv, "/login"), 3);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_current_bad_login)
{
  fh_push(srv, "/login", (fh_reply){.status = 403, .body = "Forbidden"});
  cs_provider *p = make(NULL);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_EAUTH);
  ck_assert_int_eq(fh_hits(srv, "/v3/forecast"), 0);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_bad_login_quoting_credentials_redacted)
{
  /* A login refusal that echoes our Authorization header ("alice:pa55" in
   * base64) or the password itself: neither reaches the log. */
  const char *bodies[] = {
      "{\"error\":\"bad credentials in Basic YWxpY2U6cGE1NQ==\"}",
      "{\"error\":\"password pa55 is wrong\"}"};
  for (size_t i = 0; i < 2; i++) {
    fh_push(srv, "/login", (fh_reply){.status = 403, .body = bodies[i]});
    cs_provider *p = make(NULL);
    cs_signal v;
    fh_log_capture();
    ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                     CS_EAUTH);
    char *log = fh_log_take();
    ck_assert_msg(!strstr(log, "YWxpY2U6cGE1NQ") && !strstr(log, "pa55"),
                  "case %zu: %s", i, log);
    ck_assert_msg(
        strstr(log, i ? "password <redacted> is wrong" : "in Basic <redacted>"),
        "case %zu: %s", i, log);
    free(log);
    cs_provider_free(p);
  }
}
END_TEST

/* The "err" member of every log line in `log` must not hold `needle`, and
 * one of them must hold `want`: the log lines are JSON, so the message is
 * compared as it was decoded, the form a reader sees. */
static void assert_err_clean(const char *log, const char *needle,
                             const char *want, const char *what)
{
  bool found = false;
  for (const char *l = log; *l;) {
    const char *nl = strchr(l, '\n');
    size_t n = nl ? (size_t)(nl - l) : strlen(l);
    cJSON *j = cJSON_ParseWithLength(l, n);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "err");
    if (cJSON_IsString(e)) {
      ck_assert_msg(!strstr(e->valuestring, needle), "%s: %s", what,
                    e->valuestring);
      found = found || strstr(e->valuestring, want);
    }
    cJSON_Delete(j);
    l += n + (nl ? 1 : 0);
  }
  ck_assert_msg(found, "%s: no \"%s\" in %s", what, want, log);
}

START_TEST(test_watttime_bad_login_escaped_credentials_redacted)
{
  /* A password with a quote, a backslash and a non-ASCII letter: an API
   * quoting it in JSON spells it escaped (\", \\, \u00e9 or the raw UTF-8
   * bytes), so the scrub must know every spelling, and the decoded message
   * must be scrubbed too. The last body is truncated JSON, shown as text. */
  const char *pw = "s3cr\"et\\pw\xc3\xa9";
  const char *bodies[] = {
      "{\"error\":\"password s3cr\\\"et\\\\pw\\u00e9 is wrong\"}",
      "{\"error\":\"password s3cr\\\"et\\\\pw\xc3\xa9 is wrong\"}",
      "{\"error\":\"password \\u0073\\u0033cr\\\"et\\\\pw\\u00E9 is wrong\"}",
      "{\"error\":\"password s3cr\\\"et\\\\pw\\u00e9 is wrong"};
  for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
    fh_push(srv, "/login", (fh_reply){.status = 403, .body = bodies[i]});
    cs_provider *p = make_account("alice", pw, NULL);
    cs_signal v;
    fh_log_capture();
    ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                     CS_EAUTH);
    char *log = fh_log_take();
    char what[16];
    snprintf(what, sizeof(what), "case %zu", i);
    assert_err_clean(log, "s3cr", "password <redacted> is wrong", what);
    free(log);
    cs_provider_free(p);
  }
}
END_TEST

START_TEST(test_watttime_current_429_retry_after)
{
  cs_provider *p = make(NULL);
  cs_signal v;
  fh_push(srv, "/v3/forecast",
          (fh_reply){.status = 429, .retry_after = 2, .body = "{}"});
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_EBUSY);
  int hits = fh_hits(srv, "/v3/forecast");
  /* Within Retry-After no request reaches the server. */
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_EBUSY);
  ck_assert_int_eq(fh_hits(srv, "/v3/forecast"), hits);
  struct timespec ts = {.tv_sec = 2, .tv_nsec = 200000000};
  nanosleep(&ts, NULL);
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_int_eq(fh_hits(srv, "/v3/forecast"), hits + 1);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_current_units)
{
  cs_provider *p = make(NULL);
  cs_signal v;
  fh_push(srv, "/v3/forecast",
          (fh_reply){.fixture = "watttime-signal-index.json"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                   CS_EUNSUPPORTED);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(strstr(log, "meta.units: \\\"percentile\\\""));
  free(log);
  fh_push(srv, "/v3/forecast",
          (fh_reply){.body = "{\"data\":[{\"point_time\":\"2023-06-09T00:00:"
                             "00+00:00\",\"value\":1}],\"meta\":{\"units\":"
                             "\"tons_per_fortnight\",\"signal_type\":"
                             "\"co2_moer\"}}"});
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                   CS_EINVAL);
  fh_push(srv, "/v3/forecast",
          (fh_reply){.body = "{\"data\":[{\"point_time\":\"2023-06-09T00:00:"
                             "00+00:00\",\"value\":300}],\"meta\":{\"units\":"
                             "\"kg_co2_per_mwh\",\"signal_type\":"
                             "\"co2_moer\"}}"});
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 300);
  /* A figure no grid emits is a data error, refused rather than ranked. */
  fh_push(srv, "/v3/forecast",
          (fh_reply){.body = "{\"data\":[{\"point_time\":\"2023-06-09T00:00:"
                             "00+00:00\",\"value\":30000}],\"meta\":{\"units\":"
                             "\"lbs_co2_per_mwh\",\"signal_type\":"
                             "\"co2_moer\"}}"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                   CS_EPARSE);
  log = fh_log_take();
  ck_assert_msg(strstr(log, "data[0].value: 30000 lbs_co2_per_mwh is 13607.8 "
                            "gCO2/kWh, more than any grid emits (expected at "
                            "most 10000)"),
                "%s", log);
  free(log);
  double g;
  ck_assert_int_eq(cs_watttime_to_g_per_kwh("lbs_co2_per_mwh", 1000, &g),
                   CS_OK);
  ck_assert_double_eq_tol(g, 453.59237, 1e-9);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_current_region_from_loc_cached)
{
  cs_provider *p = make(NULL);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "38.58,-121.49", 1686268900, &v), CS_OK);
  ck_assert_int_eq(p->ops->current(p, "38.58,-121.49", 1686268900, &v), CS_OK);
  ck_assert_int_eq(fh_hits(srv, "/v3/region-from-loc"), 1);
  char *q = fh_last_query(srv, "/v3/region-from-loc");
  ck_assert_str_eq(q, "latitude=38.58&longitude=-121.49&signal_type=co2_moer");
  free(q);
  q = fh_last_query(srv, "/v3/forecast");
  ck_assert_ptr_nonnull(strstr(q, "region=CAISO_NORTH"));
  free(q);
  fh_push(srv, "/v3/region-from-loc",
          (fh_reply){.status = 400,
                     .fixture = "watttime-region-from-loc-error.json"});
  /* WattTime's answer for a place it does not cover: not served, an
   * answer rather than an outage. */
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "0,0", 1686268900, &v), CS_ENOTFOUND);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(strstr(log, "No coverage available"));
  free(log);
  /* Any other error, and a 404 that says nothing, is a failure. */
  fh_push(srv, "/v3/region-from-loc",
          (fh_reply){.status = 400,
                     .body = "{\"error\":\"latitude must be a number\"}"});
  ck_assert_int_eq(p->ops->current(p, "1,1", 1686268900, &v), CS_EHTTP);
  fh_push(srv, "/v3/forecast", (fh_reply){.status = 404, .body = ""});
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_EHTTP);
  ck_assert_int_eq(p->ops->current(p, "not a zone!", 1686268900, &v),
                   CS_ENOTFOUND);
  /* Coordinates that are only partly numbers are not sent to WattTime. */
  static const char *bad[] = {"1-2,3", "1.2.3,4", "-,5", ".,5", "5,--1", "5,"};
  int asked = fh_hits(srv, "/v3/region-from-loc");
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(p->ops->current(p, bad[i], 1686268900, &v) == CS_ENOTFOUND,
                  "%s", bad[i]);
  ck_assert_int_eq(fh_hits(srv, "/v3/region-from-loc"), asked);
  cs_provider_free(p);
}
END_TEST

/* The forecast fixture is for CAISO_NORTH; asked about another region it
 * must be refused, not served as that region's. */
START_TEST(test_watttime_answer_for_another_region_refused)
{
  cs_provider *p = make(NULL);
  cs_signal v = {.g_per_kwh = -1};
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "PJM_DC", 1686268900, &v), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(strstr(
      log,
      "meta.region: the answer is for \\\"CAISO_NORTH\\\", expected PJM_DC"));
  free(log);
  ck_assert_double_eq(v.g_per_kwh, -1);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_current_aoer_is_average)
{
  fh_set(srv, "/v3/forecast",
         (fh_reply){.body = "{\"data\":[{\"point_time\":\"2023-06-09T00:00:00"
                            "+00:00\",\"value\":500}],\"meta\":{\"units\":"
                            "\"lbs_co2_per_mwh\",\"signal_type\":"
                            "\"co2_aoer\"}}"});
  cs_provider *p = make("co2_aoer");
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_int_eq(v.type, CS_SIGNAL_AVERAGE);
  ck_assert_double_eq_tol(v.g_per_kwh, 500 * 0.45359237, 1e-9);
  cs_provider_free(p);
  /* A moer provider refuses an aoer answer. */
  p = make(NULL);
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                   CS_EPARSE);
  cs_provider_free(p);
}
END_TEST

/* An API that ignores horizon_hours=0 and answers a whole forecast: the
 * current value is the point that covers now, flagged estimated (it was
 * forecast before its period began), not the forecast's first point. */
START_TEST(test_watttime_current_takes_point_covering_now)
{
  cs_provider *p = make(NULL);
  cs_signal v;
  /* The fixture starts at 00:00Z in 5-min steps; 02:01Z is in 02:00's. */
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268800 + 7260, &v),
                   CS_OK);
  ck_assert_int_eq(v.observed_at, 1686268800 + 7200);
  ck_assert_double_eq_tol(v.g_per_kwh, 450.0 * 0.45359237, 1e-9);
  ck_assert(v.estimated);
  /* Within the first period, the first point, as measured. */
  ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v), CS_OK);
  ck_assert_int_eq(v.observed_at, 1686268800);
  ck_assert(!v.estimated);
  cs_provider_free(p);
}
END_TEST

/* Points out of order or repeated are refused with both times, so that
 * the log says which point broke the order and against what. */
START_TEST(test_watttime_forecast_unsorted_names_times)
{
  cs_provider *p = make(NULL);
  cs_series s = {0};
  fh_push(srv, "/v3/forecast",
          (fh_reply){.body = "{\"data\":[{\"point_time\":\"2023-06-09T00:05:"
                             "00+00:00\",\"value\":1},{\"point_time\":"
                             "\"2023-06-09T00:05:00+00:00\",\"value\":2}],"
                             "\"meta\":{\"units\":\"lbs_co2_per_mwh\","
                             "\"signal_type\":\"co2_moer\"}}"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->forecast(p, "CAISO_NORTH", 0, INT64_MAX, &s),
                   CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_msg(strstr(log, "data[1].point_time: 2023-06-09T00:05:00Z, "
                            "expected a time after the previous point's "
                            "2023-06-09T00:05:00Z"),
                "%s", log);
  free(log);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_forecast_empty_and_null)
{
  cs_provider *p = make(NULL);
  cs_series s = {0};
  fh_push(srv, "/v3/forecast",
          (fh_reply){.body = "{\"data\":[],\"meta\":{\"units\":"
                             "\"lbs_co2_per_mwh\",\"signal_type\":"
                             "\"co2_moer\"}}"});
  /* Empty for a region it covers: an outage, a failure. */
  ck_assert_int_eq(p->ops->forecast(p, "CAISO_NORTH", 0, INT64_MAX, &s),
                   CS_EPARSE);
  fh_push(srv, "/v3/forecast",
          (fh_reply){.body = "{\"data\":[{\"point_time\":\"2023-06-09T00:00:"
                             "00+00:00\",\"value\":null},{\"point_time\":"
                             "\"2023-06-09T00:05:00+00:00\",\"value\":100}],"
                             "\"meta\":{\"units\":\"lbs_co2_per_mwh\","
                             "\"signal_type\":\"co2_moer\","
                             "\"data_point_period_seconds\":300}}"});
  ck_assert_int_eq(p->ops->forecast(p, "CAISO_NORTH", 0, INT64_MAX, &s), CS_OK);
  ck_assert_uint_eq(s.len, 1);
  ck_assert_int_eq(s.points[0].at, 1686268800 + 300);
  cs_series_free(&s);
  fh_push(srv, "/v3/forecast",
          (fh_reply){.fixture = "watttime-forecast.json", .truncate = 500});
  ck_assert_int_eq(p->ops->forecast(p, "CAISO_NORTH", 0, INT64_MAX, &s),
                   CS_EPARSE);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_watttime_new_bad_options)
{
  char err[256];
  cs_provider *p = NULL;
  cs_watttime_opts o = {
      .username = "a", .password = "b", .signal_type = "health_damage"};
  ck_assert_int_eq(cs_watttime_new(&o, &p, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "co2_moer"));
  o.signal_type = NULL;
  o.password = NULL;
  ck_assert_int_eq(cs_watttime_new(&o, &p, err, sizeof(err)), CS_EAUTH);
  o.password = "b";
  o.horizon_hours = 73;
  ck_assert_int_eq(cs_watttime_new(&o, &p, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_watttime_current_every_truncation)
{
  cs_provider *p = make(NULL);
  size_t len = fh_fixture_len("watttime-forecast-now.json");
  for (size_t k = 1; k < len; k++) {
    fh_push(srv, "/v3/forecast",
            (fh_reply){.fixture = "watttime-forecast-now.json", .truncate = k});
    cs_signal v;
    ck_assert_int_eq(p->ops->current(p, "CAISO_NORTH", 1686268900, &v),
                     CS_EPARSE);
  }
  cs_provider_free(p);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("watttime");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_watttime_current_converts_lbs);
  tcase_add_test(tc, test_watttime_forecast_fixture);
  tcase_add_test(tc, test_watttime_forecast_completed_from_history);
  tcase_add_test(tc, test_watttime_forecast_history_failure_keeps_forecast);
  tcase_add_test(tc, test_watttime_current_relogin_on_401);
  tcase_add_test(tc, test_watttime_current_bad_login);
  tcase_add_test(tc, test_watttime_bad_login_quoting_credentials_redacted);
  tcase_add_test(tc, test_watttime_bad_login_escaped_credentials_redacted);
  tcase_add_test(tc, test_watttime_current_429_retry_after);
  tcase_add_test(tc, test_watttime_current_units);
  tcase_add_test(tc, test_watttime_current_region_from_loc_cached);
  tcase_add_test(tc, test_watttime_answer_for_another_region_refused);
  tcase_add_test(tc, test_watttime_current_aoer_is_average);
  tcase_add_test(tc, test_watttime_current_takes_point_covering_now);
  tcase_add_test(tc, test_watttime_forecast_empty_and_null);
  tcase_add_test(tc, test_watttime_forecast_unsorted_names_times);
  tcase_add_test(tc, test_watttime_new_bad_options);
  tcase_add_test(tc, test_watttime_current_every_truncation);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
