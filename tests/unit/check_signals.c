#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carbon/providers/electricitymaps.h"
#include "carbon/providers/file.h"
#include "carbon/providers/watttime.h"
#include "carbon/signals.h"
#include "carbon/util/log.h"
#include "carbon/util/clock.h"
#include "carbon/util/metrics.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/testutil.h"

#define NOW 1678836000      /* 2023-03-14T23:20:00Z, 20 min after "latest" */
#define FILE_DE_2300 359.63 /* em-2023/DE.csv LCA at 2023-03-14 23:00 */

static fh_server *srv;

static void setup(void)
{
  cs_clock_set_fixed(NOW);
  srv = fh_start();
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.fixture = "electricitymaps-latest.json"});
  fh_set(srv, "/v3/carbon-intensity/forecast",
         (fh_reply){.fixture = "electricitymaps-forecast.json"});
  fh_set(srv, "/v3/carbon-intensity/history",
         (fh_reply){.fixture = "electricitymaps-history.json"});
  fh_set(srv, "/login", (fh_reply){.fixture = "watttime-login.json"});
  fh_set(srv, "/v3/forecast", (fh_reply){.fixture = "watttime-forecast.json"});
}

static void teardown(void)
{
  fh_release(srv);
  fh_stop(srv);
  srv = NULL;
  cs_clock_set_fixed(0);
}

static cs_provider *em(long timeout_ms)
{
  char base[128], err[256];
  snprintf(base, sizeof(base), "%s/v3", fh_url(srv));
  cs_electricitymaps_opts o = {
      .base_url = base, .token = "t", .timeout_ms = timeout_ms};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_electricitymaps_new(&o, &p, err, sizeof(err)), CS_OK);
  return p;
}

static cs_provider *file_de(void)
{
  char path[1024], err[512];
  snprintf(path, sizeof(path), "%s/data/carbon/em-2023/DE.csv",
           tu_shared_dir());
  cs_file_trace t[] = {{.zone = "DE", .path = path}};
  cs_file_opts o = {.traces = t, .ntraces = 1};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_file_new(&o, &p, err, sizeof(err)), CS_OK);
  return p;
}

/* A registry routing DE to electricitymaps, then (with_file) the trace. */
static cs_signals *registry(bool with_file, const cs_signals_opts *o,
                            long timeout_ms)
{
  cs_signals *s = cs_signals_new(CS_SIGNAL_AVERAGE);
  cs_signals_set_opts(s, o);
  ck_assert_int_eq(cs_signals_add_provider(s, em(timeout_ms)), CS_OK);
  if (with_file)
    ck_assert_int_eq(cs_signals_add_provider(s, file_de()), CS_OK);
  const char *chain[] = {"electricitymaps", "file"};
  ck_assert_int_eq(cs_signals_set_route(s, "DE", chain, with_file ? 2 : 1),
                   CS_OK);
  return s;
}

static cJSON *status(cs_signals *s, int64_t now, bool *healthy)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  *healthy = cs_signals_status(s, now, &b);
  ck_assert_int_eq(cs_buf_error(&b), CS_OK);
  cJSON *j = cJSON_ParseWithLength(b.data, b.len);
  ck_assert_ptr_nonnull(j);
  cs_buf_free(&b);
  return j;
}

static const char *zone_served_by(cJSON *j, const char *zone)
{
  cJSON *z;
  cJSON_ArrayForEach(z, cJSON_GetObjectItem(j, "zones"))
  {
    if (strcmp(cJSON_GetObjectItem(z, "zone")->valuestring, zone) == 0) {
      cJSON *by = cJSON_GetObjectItem(z, "servedBy");
      return cJSON_IsString(by) ? by->valuestring : "(none)";
    }
  }
  return "(zone missing)";
}

static const char *signal_state(cJSON *j, const char *provider)
{
  cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "signals"))
  {
    if (strcmp(cJSON_GetObjectItem(e, "provider")->valuestring, provider) == 0)
      return cJSON_GetObjectItem(e, "state")->valuestring;
  }
  return "(missing)";
}

START_TEST(test_signals_current_fallback_order)
{
  cs_signals *s = registry(true, NULL, 2000);
  cs_signal v;
  /* Before the first fetch: the next provider answers. */
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
  ck_assert_str_eq(v.provider, "file");
  ck_assert_double_eq(v.g_per_kwh, FILE_DE_2300);
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/latest"), 0);
  /* After it: the first provider, from the cache. */
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  int hits = fh_hits(srv, "/v3/carbon-intensity/latest");
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
  ck_assert_str_eq(v.provider, "electricitymaps");
  ck_assert_double_eq(v.g_per_kwh, 360);
  ck_assert(v.estimated);
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/latest"), hits);
  bool healthy;
  cJSON *j = status(s, NOW, &healthy);
  ck_assert(healthy);
  ck_assert_str_eq(zone_served_by(j, "DE"), "electricitymaps");
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "ok");
  cJSON_Delete(j);

  /* The provider fails: the last good value is served, degraded. */
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 500, .body = "down"});
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EHTTP);
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW + 3600, &v), CS_OK);
  ck_assert_str_eq(v.provider, "electricitymaps");
  ck_assert_double_eq(v.g_per_kwh, 360);
  j = status(s, NOW + 3600, &healthy);
  ck_assert(!healthy);
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "failing");
  ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "degraded")));
  cJSON_Delete(j);

  /* Past max age (1 h after the last good fetch): the next provider. */
  int64_t later = NOW + 3600 + 1;
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, later, &v), CS_OK);
  ck_assert_str_eq(v.provider, "file");
  ck_assert_int_eq(v.observed_at, 1678838400); /* the 2023-03-15 00:00 row */
  j = status(s, later, &healthy);
  ck_assert(!healthy);
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "stale");
  ck_assert_str_eq(zone_served_by(j, "DE"), "file");
  cJSON_Delete(j);
  /* Asking that provider alone gives nothing: never an invented number. */
  ck_assert_int_eq(cs_signals_current(s, "DE", "electricitymaps", later, &v),
                   CS_ENOTFOUND);
  cs_signals_free(s);
}
END_TEST

START_TEST(test_signals_current_neutral_without_fallback)
{
  cs_signals *s = registry(false, NULL, 2000);
  cs_signal v;
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_ENOTFOUND);
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.fixture = "electricitymaps-latest.json", .truncate = 50});
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EPARSE);
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_ENOTFOUND);
  bool healthy;
  cJSON *j = status(s, NOW, &healthy);
  ck_assert(!healthy);
  /* Its forecast came in: decisions take the zone from it alone. */
  ck_assert_str_eq(zone_served_by(j, "DE"), "electricitymaps");
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "stale");
  cJSON_Delete(j);
  /* Once the forecast is too old as well, nothing serves the zone. */
  j = status(s, NOW + 3601, &healthy);
  ck_assert_str_eq(zone_served_by(j, "DE"), "(none)");
  cJSON_Delete(j);
  cs_signals_free(s);
  /* A zone the provider does not serve (404 for its latest value and its
   * forecast) is neutral, not an outage. */
  s = registry(false, NULL, 2000);
  fh_reply unknown = {.status = 404, .body = "{\"message\":\"unknown zone\"}"};
  fh_set(srv, "/v3/carbon-intensity/latest", unknown);
  fh_set(srv, "/v3/carbon-intensity/forecast", unknown);
  fh_set(srv, "/v3/carbon-intensity/history", unknown);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_ENOTFOUND);
  j = status(s, NOW, &healthy);
  ck_assert(healthy);
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "notServed");
  ck_assert_str_eq(zone_served_by(j, "DE"), "(none)");
  cJSON_Delete(j);
  cs_signals_free(s);
}
END_TEST

/* /readyz tells an outage from a zone a provider does not serve by what
 * the provider says, not by the status alone. */
START_TEST(test_signals_status_not_served_only_when_said)
{
  /* Electricity Maps configured without /v3: every request is a 404 that
   * names no zone. A failure, reported degraded. */
  cs_signals *s = cs_signals_new(CS_SIGNAL_AVERAGE);
  char err[256];
  cs_electricitymaps_opts eo = {.base_url = fh_url(srv), .token = "t"};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_electricitymaps_new(&eo, &p, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(cs_signals_add_provider(s, p), CS_OK);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EHTTP);
  bool healthy;
  cJSON *j = status(s, NOW, &healthy);
  ck_assert(!healthy);
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "stale");
  cJSON_Delete(j);
  cs_signals_free(s);
  /* WattTime's "No coverage available" for coordinates: not served, not
   * degraded. */
  fh_set(srv, "/v3/region-from-loc",
         (fh_reply){.status = 400,
                    .fixture = "watttime-region-from-loc-error.json"});
  s = cs_signals_new(CS_SIGNAL_MARGINAL);
  cs_watttime_opts wo = {
      .base_url = fh_url(srv), .username = "u", .password = "p"};
  ck_assert_int_eq(cs_watttime_new(&wo, &p, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(cs_signals_add_provider(s, p), CS_OK);
  ck_assert_int_eq(cs_signals_refresh_now(s, "0,0", NULL, NOW), CS_ENOTFOUND);
  j = status(s, NOW, &healthy);
  ck_assert(healthy);
  ck_assert_str_eq(signal_state(j, "watttime"), "notServed");
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "degraded")));
  cJSON_Delete(j);
  cs_signals_free(s);
  /* An answer without a figure for a zone it covers (a null
   * carbonIntensity, as in an outage): a failure, degraded, not "not
   * served", which would hide the outage behind neutral scores. */
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":null,"
                            "\"datetime\":\"2023-03-14T23:00:00.000Z\"}"});
  s = cs_signals_new(CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(cs_signals_add_provider(s, em(2000)), CS_OK);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EPARSE);
  j = status(s, NOW, &healthy);
  ck_assert(!healthy);
  ck_assert_str_ne(signal_state(j, "electricitymaps"), "notServed");
  cJSON_Delete(j);
  cs_signals_free(s);
}
END_TEST

/* A provider failing behind the one serving a zone (no routes: every
 * remote provider is asked about every zone) shows in its signal's state,
 * but neither the zone nor the whole is degraded by it. */
START_TEST(test_signals_status_failing_fallback_degrades_nothing)
{
  fh_set(srv, "/v3/forecast",
         (fh_reply){.status = 400, .body = "{\"error\":\"unknown region\"}"});
  cs_signals *s = cs_signals_new(CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(cs_signals_add_provider(s, em(2000)), CS_OK);
  char err[256];
  cs_watttime_opts wo = {.base_url = fh_url(srv),
                         .username = "u",
                         .password = "p",
                         .signal_type = "co2_aoer"};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_watttime_new(&wo, &p, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(cs_signals_add_provider(s, p), CS_OK);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  bool healthy;
  cJSON *j = status(s, NOW, &healthy);
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "ok");
  ck_assert_str_eq(signal_state(j, "watttime"), "stale");
  ck_assert_str_eq(zone_served_by(j, "DE"), "electricitymaps");
  ck_assert_msg(healthy, "%s", cJSON_PrintUnformatted(j));
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "degraded")));
  cJSON_Delete(j);
  /* Once the serving provider fails too, the zone is degraded. */
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 500, .body = "{}"});
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EHTTP);
  j = status(s, NOW, &healthy);
  ck_assert(!healthy);
  cJSON_Delete(j);
  cs_signals_free(s);
}
END_TEST

START_TEST(test_signals_current_stale_timestamp_refused)
{
  cs_signals *s = registry(true, NULL, 2000);
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":999,"
                            "\"datetime\":\"2023-03-12T23:00:00.000Z\","
                            "\"isEstimated\":false}"});
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_ESTALE);
  cs_signal v;
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
  ck_assert_str_eq(v.provider, "file");
  ck_assert_double_eq(v.g_per_kwh, FILE_DE_2300);
  cs_signals_free(s);
  /* With a longer limit, the same answer is accepted. */
  cs_signals_opts o = {.max_observation_age_s = 3 * 86400};
  s = registry(true, &o, 2000);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
  ck_assert_str_eq(v.provider, "electricitymaps");
  ck_assert_double_eq(v.g_per_kwh, 999);
  cs_signals_free(s);
}
END_TEST

/* A period that begins hours after now (local time sent as UTC: 05:00
 * "Z" at 23:20) is not the one in force now: refused, logged with both
 * times, and the next provider answers; so is a forecast made in the
 * future. A few minutes ahead (clock skew) passes. */
START_TEST(test_signals_current_future_timestamp_refused)
{
  cs_signals *s = registry(true, NULL, 2000);
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":999,"
                            "\"datetime\":\"2023-03-15T05:00:00.000Z\","
                            "\"isEstimated\":false}"});
  fh_log_capture();
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_msg(strstr(log, "\"msg\":\"Carbon provider returned a value for "
                            "a period that has not begun\",\"provider\":"
                            "\"electricitymaps\",\"zone\":\"DE\",\"time\":"
                            "\"2023-03-15T05:00:00Z\",\"now\":"
                            "\"2023-03-14T23:20:00Z\",\"aheadSeconds\":20400"),
                "%s", log);
  free(log);
  cs_signal v;
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
  ck_assert_str_eq(v.provider, "file");
  cs_signals_free(s);

  cs_signals_opts o = {0};
  cs_signal ahead = {.observed_at = NOW + 300};
  ck_assert_int_eq(cs_signals_check_observation(&o, &ahead, NOW), CS_OK);
  cs_series f = {.generated_at = NOW + 3600};
  fh_log_capture();
  ck_assert_int_eq(cs_signals_check_forecast(&o, &f, NOW), CS_EPARSE);
  log = fh_log_take();
  ck_assert_ptr_nonnull(
      strstr(log, "Carbon provider returned a forecast made in the future"));
  free(log);
  f.generated_at = NOW + 300;
  ck_assert_int_eq(cs_signals_check_forecast(&o, &f, NOW), CS_OK);
}
END_TEST

/* A cached value serves while the observation itself is young enough
 * (carbon.maxObservationAge), not only while its fetch is recent: the
 * value checked at its fetch goes on ageing, and once too old the next
 * provider in the route answers, without a fetch. */
START_TEST(test_signals_cached_value_ages_out)
{
  cs_signals_opts o = {.max_observation_age_s = 1800};
  cs_signals *s = registry(true, &o, 2000);
  /* "latest" was observed at 23:00, 20 min before NOW. */
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  cs_signal v;
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
  ck_assert_str_eq(v.provider, "electricitymaps");
  int hits = fh_hits(srv, "/v3/carbon-intensity/latest");
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW + 15 * 60, &v), CS_OK);
  ck_assert_str_eq(v.provider, "file");
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/latest"), hits);
  cs_signals_free(s);
}
END_TEST

/* A forecast says when it was made (Electricity Maps' updatedAt): an old
 * one is refused as a current value is, so it cannot make its provider
 * the zone's when the current value is refused too; the next provider in
 * the route answers. */
START_TEST(test_signals_stale_forecast_falls_through)
{
  size_t len;
  char *fc =
      tu_read_shared("fixtures/providers/electricitymaps-forecast.json", &len);
  char *at = strstr(fc, "\"updatedAt\": \"2023-03-14T23:12:00.000Z\"");
  ck_assert_ptr_nonnull(at);
  memcpy(strstr(at, "2023-03-14T23"), "2023-03-14T10", 13); /* 13 h old */
  fh_set(srv, "/v3/carbon-intensity/forecast", (fh_reply){.body = fc});
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":999,"
                            "\"datetime\":\"2023-03-12T23:00:00.000Z\","
                            "\"isEstimated\":false}"});
  cs_signals *s = registry(true, NULL, 2000);
  FILE *log = tmpfile();
  cs_log_set_fd(fileno(log));
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_ESTALE);
  cs_log_set_fd(STDOUT_FILENO);
  char logged[8192];
  rewind(log);
  logged[fread(logged, 1, sizeof(logged) - 1, log)] = '\0';
  fclose(log);
  ck_assert_msg(strstr(logged, "\"msg\":\"Carbon provider returned a stale "
                               "forecast\",\"provider\":\"electricitymaps\","
                               "\"zone\":\"DE\",\"ageSeconds\":47280"),
                "%s", logged);
  cs_signal v;
  cs_series f = {0};
  bool cur, has_fc;
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, NOW - 3600,
                                        NOW + 72 * 3600, &v, &cur, &f, &has_fc),
                   CS_OK);
  ck_assert(cur);
  ck_assert_str_eq(v.provider, "file");
  cs_series_free(&f);
  cs_signals_free(s);
  free(fc);
}
END_TEST

/* A registry ranking `type` with the fake server's WattTime alone. */
static cs_signals *watttime_registry(cs_signal_type type)
{
  cs_signals *s = cs_signals_new(type);
  char err[256];
  cs_watttime_opts o = {
      .base_url = fh_url(srv), .username = "u", .password = "p"};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_watttime_new(&o, &p, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(cs_signals_add_provider(s, p), CS_OK);
  return s;
}

START_TEST(test_signals_current_refuses_mixed_types)
{
  cs_signals *s = watttime_registry(CS_SIGNAL_AVERAGE);
  cs_clock_set_fixed(1686268900);
  ck_assert_int_eq(cs_signals_refresh_now(s, "CAISO_NORTH", NULL, 1686268900),
                   CS_OK);
  cs_signal v;
  /* A marginal value is cached but never ranked with average ones. */
  ck_assert_int_eq(cs_signals_current(s, "CAISO_NORTH", NULL, 1686268900, &v),
                   CS_ENOTFOUND);
  cs_series f = {0};
  bool cur, fc;
  ck_assert_int_eq(cs_signals_zone_data(s, "CAISO_NORTH", 1686268900,
                                        1686268900, 1686268800,
                                        1686268800 + 3600, &v, &cur, &f, &fc),
                   CS_ENOTFOUND);
  cs_signals_free(s);
}
END_TEST

/* WattTime's forecast begins when it was generated, every 5 minutes: the
 * refresher asks from CS_SIGNALS_FORECAST_BACK_S back, so the cache holds
 * measured values from there, and a decision judging a pod from its
 * planned start minutes ago finds that start covered. */
START_TEST(test_signals_watttime_forecast_reaches_planned_start)
{
  const int64_t generated = 1686268800; /* the fixture's first point, 00:00 */
  const int64_t now = generated + 7 * 60, planned = generated - 3 * 60;
  fh_set(srv, "/v3/historical",
         (fh_reply){.body =
                        "{\"data\":[{\"point_time\":\"2023-06-08T23:50:00Z\","
                        "\"value\":600},{\"point_time\":"
                        "\"2023-06-08T23:55:00Z\",\"value\":700}],"
                        "\"meta\":{\"region\":\"CAISO_NORTH\",\"signal_"
                        "type\":\"co2_moer\",\"units\":\"g_co2_per_kwh\","
                        "\"data_point_period_seconds\":300}}"});
  cs_signals *s = watttime_registry(CS_SIGNAL_MARGINAL);
  cs_clock_set_fixed(now);
  ck_assert_int_eq(cs_signals_refresh_now(s, "CAISO_NORTH", NULL, now), CS_OK);
  char *q = fh_last_query(srv, "/v3/historical");
  ck_assert_ptr_nonnull(q);
  /* 15 min before 00:07 is 23:52, in the period from 23:50. */
  ck_assert_ptr_nonnull(strstr(q, "&start=2023-06-08T23:50:00Z&"));
  free(q);
  cs_signal v;
  cs_series f = {0};
  bool cur, fc;
  ck_assert_int_eq(cs_signals_zone_data(s, "CAISO_NORTH", now, planned,
                                        now - CS_SIGNALS_FORECAST_BACK_S,
                                        now + 3600, &v, &cur, &f, &fc),
                   CS_OK);
  ck_assert(cur && fc);
  long i = cs_series_index_at(&f, planned);
  ck_assert_int_ge(i, 0);
  ck_assert_double_eq(f.points[i].g_per_kwh, 700);
  cs_series_free(&f);
  cs_signals_free(s);
}
END_TEST

START_TEST(test_signals_forecast_from_cache)
{
  cs_signals *s = registry(false, NULL, 2000);
  cs_series f = {0};
  cs_signal v;
  bool cur, fc;
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, 1678838400,
                                        1678838400 + 7200, &v, &cur, &f, &fc),
                   CS_ENOTFOUND);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  int hits = fh_hits(srv, "/v3/carbon-intensity/forecast");
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, 1678838400,
                                        1678838400 + 7200, &v, &cur, &f, &fc),
                   CS_OK);
  ck_assert(cur && fc);
  ck_assert_uint_eq(f.len, 2);
  ck_assert_int_eq(f.points[0].at, 1678838400);
  ck_assert_double_eq(f.points[0].g_per_kwh, 366);
  ck_assert_double_eq(f.points[1].g_per_kwh, 375);
  ck_assert_str_eq(f.provider, "electricitymaps");
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/forecast"), hits);
  cs_series_free(&f);
  cs_signals_free(s);
}
END_TEST

/* A zone's data for a decision comes from one provider: the first with a
 * current value or a forecast that says what holds now. */
START_TEST(test_signals_zone_data_from_one_provider)
{
  cs_signal v;
  cs_series f;
  bool cur, fc;
  /* Both from Electricity Maps (its forecast begins with the measured
   * history, so it covers now), not the trace behind it. */
  cs_signals *s = registry(true, NULL, 2000);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, NOW - 3600,
                                        NOW + 72 * 3600, &v, &cur, &f, &fc),
                   CS_OK);
  ck_assert(cur && fc);
  ck_assert_str_eq(v.provider, "electricitymaps");
  ck_assert_str_eq(f.provider, "electricitymaps");
  ck_assert_int_ge(cs_series_index_at(&f, NOW), 0);
  cs_series_free(&f);
  cs_signals_free(s);
  /* Its latest value refused as stale, its forecast still good: the zone
   * keeps Electricity Maps' forecast and has no current value, rather
   * than the trace's figures. */
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.body = "{\"zone\":\"DE\",\"carbonIntensity\":999,"
                            "\"datetime\":\"2023-03-12T23:00:00.000Z\","
                            "\"isEstimated\":false}"});
  s = registry(true, NULL, 2000);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_ESTALE);
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, NOW - 3600,
                                        NOW + 72 * 3600, &v, &cur, &f, &fc),
                   CS_OK);
  ck_assert(!cur && fc);
  ck_assert_str_eq(f.provider, "electricitymaps");
  cs_series_free(&f);
  /* Judged from an instant before that forecast begins (a planned start
   * in the past), it says nothing of the run's start: the trace answers. */
  int64_t first = 0;
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, NOW - 3600,
                                        NOW + 3600, &v, &cur, &f, &fc),
                   CS_OK);
  first = f.points[0].at;
  cs_series_free(&f);
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, first - 60, NOW - 3600,
                                        NOW + 3600, &v, &cur, &f, &fc),
                   CS_OK);
  ck_assert(cur);
  ck_assert_str_eq(v.provider, "file");
  cs_series_free(&f);
  /* /readyz names the same provider, says it serves a forecast alone, and
   * marks the zone degraded (its latest value is failing). */
  bool healthy;
  cJSON *j = status(s, NOW, &healthy);
  ck_assert_str_eq(zone_served_by(j, "DE"), "electricitymaps");
  cJSON *z;
  bool forecast_only = false, degraded = false;
  cJSON_ArrayForEach(z, cJSON_GetObjectItem(j, "zones"))
  {
    if (!strcmp(cJSON_GetObjectItem(z, "zone")->valuestring, "DE")) {
      forecast_only = cJSON_IsTrue(cJSON_GetObjectItem(z, "forecastOnly"));
      degraded = cJSON_IsTrue(cJSON_GetObjectItem(z, "degraded"));
    }
  }
  ck_assert(forecast_only && degraded && !healthy);
  cJSON_Delete(j);
  /* A forecast that does not reach back to now does not make a provider
   * the zone's: here the trace, with both, answers. */
  ck_assert_int_eq(cs_signals_zone_data(s, "DE", NOW, NOW, NOW + 86400,
                                        NOW + 2 * 86400, &v, &cur, &f, &fc),
                   CS_OK);
  ck_assert(cur);
  ck_assert_str_eq(v.provider, "file");
  ck_assert(!fc || !strcmp(f.provider, "file"));
  cs_series_free(&f);
  /* A failing forecast fetch is shown on its signal, apart from the state
   * of the current value. */
  fh_set(srv, "/v3/carbon-intensity/forecast",
         (fh_reply){.status = 500, .body = "down"});
  ck_assert_int_ne(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_OK);
  j = status(s, NOW, &healthy);
  bool shown = false;
  cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "signals"))
  {
    cJSON *fe = cJSON_GetObjectItem(e, "lastForecastError");
    shown |= !strcmp(cJSON_GetObjectItem(e, "provider")->valuestring,
                     "electricitymaps") &&
             cJSON_IsString(fe);
  }
  ck_assert(shown);
  cJSON_Delete(j);
  ck_assert_int_eq(cs_signals_zone_data(s, "XX", NOW, NOW, NOW - 3600,
                                        NOW + 3600, &v, &cur, &f, &fc),
                   CS_ENOTFOUND);
  ck_assert(!cur && !fc);
  cs_signals_free(s);
}
END_TEST

static bool wait_until(bool (*cond)(void *), void *arg, int ms)
{
  for (int i = 0; i < ms / 10; i++) {
    if (cond(arg))
      return true;
    struct timespec ts = {.tv_nsec = 10000000};
    nanosleep(&ts, NULL);
  }
  return cond(arg);
}

static bool has_value(void *arg)
{
  cs_signal v;
  return cs_signals_current(arg, "DE", NULL, NOW, &v) == CS_OK &&
         strcmp(v.provider, "electricitymaps") == 0;
}

static int hang_hits_before;
static bool second_request_arrived(void *arg)
{
  return fh_hits(srv, "/v3/carbon-intensity/latest") > hang_hits_before;
}

START_TEST(test_signals_current_fast_while_provider_hangs)
{
  cs_signals_opts o = {.ttl_s = 1, .jitter = 0.01, .backoff_min_s = 1};
  cs_signals *s = registry(false, &o, 4000);
  ck_assert_int_eq(cs_signals_start(s, NULL), CS_OK);
  /* The refresher fetches the routed zone on its own. */
  ck_assert(wait_until(has_value, s, 5000));
  /* Then the provider hangs. */
  fh_set(
      srv, "/v3/carbon-intensity/latest",
      (fh_reply){.fixture = "electricitymaps-latest.json", .hang_ms = 20000});
  hang_hits_before = fh_hits(srv, "/v3/carbon-intensity/latest");
  ck_assert(wait_until(second_request_arrived, NULL, 5000));
  int hits = fh_hits(srv, "/v3/carbon-intensity/latest");
  uint64_t worst = 0;
  for (int i = 0; i < 2000; i++) {
    cs_signal v;
    uint64_t t0 = cs_clock_mono_ns();
    ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_OK);
    uint64_t d = cs_clock_mono_ns() - t0;
    if (d > worst)
      worst = d;
    ck_assert_double_eq(v.g_per_kwh, 360);
    if (i % 100 == 0) {
      struct timespec ts = {.tv_nsec = 1000000};
      nanosleep(&ts, NULL);
    }
  }
  ck_assert_msg(worst < 10000000ull * tu_slowdown(),
                "worst cs_signals_current: %.3f ms", worst / 1e6);
  /* One fetch in flight per key: the TTL passed, no second request. */
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/latest"), hits);
  fh_release(srv);
  cs_signals_free(s);
}
END_TEST

static bool three_hits(void *arg)
{
  return fh_hits(srv, "/v3/carbon-intensity/latest") >= 3;
}

static bool first_request_arrived(void *arg)
{
  return fh_hits(srv, "/v3/carbon-intensity/latest") > 0;
}

/* A graceful stop does not wait for a hanging provider's timeout, logs no
 * provider failure for what it called off, and leaves the cache as it
 * was. */
START_TEST(test_signals_stop_ends_fetch_in_flight)
{
  fh_set(
      srv, "/v3/carbon-intensity/latest",
      (fh_reply){.fixture = "electricitymaps-latest.json", .hang_ms = 20000});
  cs_signals *s = registry(false, NULL, 15000);
  ck_assert_int_eq(cs_signals_start(s, NULL), CS_OK);
  ck_assert(wait_until(first_request_arrived, NULL, 5000));
  fh_log_capture();
  uint64_t t0 = cs_clock_mono_ns();
  cs_signals_stop(s);
  cs_signals_free(s);
  double took = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(took < 3 * tu_slowdown(), "the stop took %.2f s", took);

  /* After the stop no request is made, and the entry is not marked
   * failing. */
  fh_reset(srv);
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.fixture = "electricitymaps-latest.json"});
  s = registry(false, NULL, 15000);
  cs_signals_stop(s);
  cs_signals_stop(s);
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_ECANCELED);
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/latest"), 0);
  bool healthy;
  cJSON *j = status(s, NOW, &healthy);
  ck_assert_str_eq(signal_state(j, "electricitymaps"), "pending");
  cJSON_Delete(j);
  cs_signals_free(s);
  char *log = fh_log_take();
  ck_assert_msg(!strstr(log, "Carbon provider request failed"), "%s", log);
  free(log);
  cs_signals_stop(NULL);
}
END_TEST

START_TEST(test_signals_refresher_backs_off)
{
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 500, .body = "down"});
  cs_signals_opts o = {
      .ttl_s = 1, .jitter = 0.01, .backoff_min_s = 1, .backoff_max_s = 60};
  cs_signals *s = registry(false, &o, 2000);
  uint64_t t0 = cs_clock_mono_ns();
  ck_assert_int_eq(cs_signals_start(s, NULL), CS_OK);
  /* Attempts at about 0 s, 1 s, 3 s, 7 s: three by 4.5 s, and still three
   * at 6 s (a fixed 1 s retry would have made six). */
  ck_assert(wait_until(three_hits, NULL, 4500));
  uint64_t until = t0 + 6000000000u, now = cs_clock_mono_ns();
  if (until > now) {
    struct timespec ts = {.tv_sec = (time_t)((until - now) / 1000000000u),
                          .tv_nsec = (long)((until - now) % 1000000000u)};
    nanosleep(&ts, NULL);
  }
  ck_assert_int_eq(fh_hits(srv, "/v3/carbon-intensity/latest"), 3);
  cs_signals_free(s);
}
END_TEST

START_TEST(test_signals_current_registers_runtime_zone)
{
  cs_signals_opts o = {.ttl_s = 60};
  cs_signals *s = cs_signals_new(CS_SIGNAL_AVERAGE);
  cs_signals_set_opts(s, &o);
  ck_assert_int_eq(cs_signals_add_provider(s, em(2000)), CS_OK);
  ck_assert_int_eq(cs_signals_start(s, NULL), CS_OK);
  cs_signal v;
  /* No route names DE: the first ask registers it and answers nothing. */
  ck_assert_int_eq(cs_signals_current(s, "DE", NULL, NOW, &v), CS_ENOTFOUND);
  ck_assert(wait_until(has_value, s, 5000));
  char *q = fh_last_query(srv, "/v3/carbon-intensity/latest");
  ck_assert_ptr_nonnull(strstr(q, "zone=DE"));
  free(q);
  cs_signals_free(s);
}
END_TEST

START_TEST(test_signals_start_records_metrics)
{
  cs_metrics *m = cs_metrics_new();
  cs_signals_opts o = {.ttl_s = 60};
  cs_signals *s = registry(true, &o, 2000);
  ck_assert_int_eq(cs_signals_start(s, m), CS_OK);
  ck_assert(wait_until(has_value, s, 5000));
  double v;
  const char *li[] = {"DE", "electricitymaps", "average"};
  ck_assert_int_eq(
      cs_metrics_get(m, "carbonshift_grid_intensity_gco2_per_kwh", li, &v),
      CS_OK);
  ck_assert_double_eq(v, 360);
  const char *la[] = {"DE", "electricitymaps"};
  ck_assert_int_eq(cs_metrics_get(m, "carbonshift_signal_age_seconds", la, &v),
                   CS_OK);
  ck_assert_double_eq(v, NOW - 1678834800);
  const char *lf[] = {"electricitymaps", "current", "ok"};
  ck_assert_int_eq(
      cs_metrics_get(m, "carbonshift_provider_fetches_total", lf, &v), CS_OK);
  ck_assert_double_eq(v, 1);
  bool healthy;
  cJSON_Delete(status(s, NOW, &healthy));
  ck_assert(healthy);
  const char *lz[] = {"DE"};
  ck_assert_int_eq(cs_metrics_get(m, "carbonshift_zone_degraded", lz, &v),
                   CS_OK);
  ck_assert_double_eq(v, 0);
  /* An outage shows up as a failed fetch and, once stale, a degraded zone. */
  fh_set(srv, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 500, .body = "down"});
  ck_assert_int_eq(cs_signals_refresh_now(s, "DE", NULL, NOW), CS_EHTTP);
  const char *le[] = {"electricitymaps", "current", "http_error"};
  ck_assert_int_eq(
      cs_metrics_get(m, "carbonshift_provider_fetches_total", le, &v), CS_OK);
  ck_assert_double_eq(v, 1);
  cJSON_Delete(status(s, NOW + 86400, &healthy));
  ck_assert(!healthy);
  ck_assert_int_eq(cs_metrics_get(m, "carbonshift_zone_degraded", lz, &v),
                   CS_OK);
  ck_assert_double_eq(v, 1);
  /* HELP says what sets the gauge (docs/operations.md's table): not "the
   * first-choice provider", which notServed is no outage of. */
  cs_buf text;
  cs_buf_init(&text, 0);
  cs_metrics_render(m, &text);
  cs_buf_putc(&text, '\0');
  ck_assert_msg(strstr(text.data, "# HELP carbonshift_zone_degraded 1 when the "
                                  "provider serving a zone, or one ahead of "
                                  "it in the route, is failing or stale") &&
                    strstr(text.data, "(a provider reporting notServed is no "
                                      "outage)"),
                "%s", text.data);
  cs_buf_free(&text);
  cs_signals_free(s);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_series_holes_are_unknown)
{
  /* 00:00 100, 01:00 200, nothing for 02:00, 03:00 300 (until 04:00). */
  cs_series s = {.step = 3600};
  cs_series_push(&s, 0, 100);
  cs_series_push(&s, 3600, 200);
  cs_series_push(&s, 10800, 300);
  ck_assert_int_eq(cs_series_point_end(&s, 0), 3600);
  ck_assert_int_eq(cs_series_point_end(&s, 1), 7200); /* a hole follows */
  ck_assert_int_eq(cs_series_point_end(&s, 2), 14400);
  ck_assert_int_eq(cs_series_index_at(&s, 3600), 1);
  ck_assert_int_eq(cs_series_index_at(&s, 7199), 1);
  ck_assert_int_eq(cs_series_index_at(&s, 7200), -1);
  ck_assert_int_eq(cs_series_index_at(&s, 10799), -1);
  ck_assert_int_eq(cs_series_index_at(&s, 10800), 2);
  ck_assert_int_eq(cs_series_index_at(&s, 14400), -1);
  double mean;
  ck_assert_int_eq(cs_series_window_mean(&s, 0, 7200, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, 150, 1e-9);
  ck_assert_int_eq(cs_series_window_mean(&s, 0, 7201, &mean), CS_ENOTFOUND);
  ck_assert_int_eq(cs_series_window_mean(&s, 3600, 10800, &mean), CS_ENOTFOUND);
  ck_assert_int_eq(cs_series_window_mean(&s, 9000, 3600, &mean),
                   CS_ENOTFOUND); /* starts in the hole */
  ck_assert_int_eq(cs_series_window_mean(&s, 10800, 3600, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, 300, 1e-9);
  cs_series part;
  cs_series_slice(&s, 7200, 10800, &part); /* the hole alone */
  ck_assert_uint_eq(part.len, 0);
  cs_series_free(&part);
  cs_series_slice(&s, 6000, 11000, &part);
  ck_assert_uint_eq(part.len, 2);
  ck_assert_int_eq(part.points[0].at, 3600);
  ck_assert_int_eq(part.points[1].at, 10800);
  cs_series_free(&part);
  /* A source whose rows hold until the next (the simulator's traces). */
  s.max_hold = INT64_MAX;
  ck_assert_int_eq(cs_series_index_at(&s, 9000), 1);
  ck_assert_int_eq(cs_series_window_mean(&s, 0, 14400, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, (100.0 + 200 * 2 + 300) / 4, 1e-9);
  cs_series_free(&s);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("signals");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_series_holes_are_unknown);
  tcase_add_test(tc, test_signals_current_fallback_order);
  tcase_add_test(tc, test_signals_current_neutral_without_fallback);
  tcase_add_test(tc, test_signals_status_not_served_only_when_said);
  tcase_add_test(tc, test_signals_status_failing_fallback_degrades_nothing);
  tcase_add_test(tc, test_signals_current_stale_timestamp_refused);
  tcase_add_test(tc, test_signals_current_future_timestamp_refused);
  tcase_add_test(tc, test_signals_cached_value_ages_out);
  tcase_add_test(tc, test_signals_stale_forecast_falls_through);
  tcase_add_test(tc, test_signals_current_refuses_mixed_types);
  tcase_add_test(tc, test_signals_forecast_from_cache);
  tcase_add_test(tc, test_signals_watttime_forecast_reaches_planned_start);
  tcase_add_test(tc, test_signals_zone_data_from_one_provider);
  tcase_add_test(tc, test_signals_current_fast_while_provider_hangs);
  tcase_add_test(tc, test_signals_refresher_backs_off);
  tcase_add_test(tc, test_signals_stop_ends_fetch_in_flight);
  tcase_add_test(tc, test_signals_current_registers_runtime_zone);
  tcase_add_test(tc, test_signals_start_records_metrics);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
