#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/ukgrid.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/testutil.h"

#define T0 1698919200 /* 2023-11-02T10:00:00Z */

static fh_server *srv;

static void setup(void)
{
  srv = fh_start();
  fh_set(srv, "/intensity", (fh_reply){.fixture = "uk-intensity.json"});
  fh_set(srv, "/intensity/2023-11-02T10:00Z/fw48h",
         (fh_reply){.fixture = "uk-fw48h.json"});
  fh_set(srv, "/regional/intensity/2023-11-02T10:00Z/fw48h/regionid/13",
         (fh_reply){.fixture = "uk-regional-fw48h-regionid-13.json"});
}

static void teardown(void)
{
  fh_stop(srv);
  srv = NULL;
}

static cs_provider *make(const cs_ukgrid_zone *zones, size_t n)
{
  char err[256];
  cs_ukgrid_opts o = {
      .base_url = fh_url(srv), .zones = zones, .nzones = n, .timeout_ms = 2000};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_ukgrid_new(&o, &p, err, sizeof(err)), CS_OK);
  return p;
}

START_TEST(test_ukgrid_current_prefers_actual)
{
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "GB", T0 + 600, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 128); /* actual, not the forecast 132 */
  ck_assert(!v.estimated);
  ck_assert_int_eq(v.observed_at, T0);
  ck_assert_int_eq(v.type, CS_SIGNAL_AVERAGE);
  ck_assert_int_eq(v.factor, CS_FACTOR_DIRECT); /* NESO's factors */
  ck_assert_str_eq(v.provider, "ukgrid");
  /* Without an actual the forecast is used, marked estimated. */
  fh_push(srv, "/intensity",
          (fh_reply){.body = "{\"data\":[{\"from\":\"2023-11-02T10:30Z\","
                             "\"to\":\"2023-11-02T11:00Z\",\"intensity\":{"
                             "\"forecast\":140,\"actual\":null,\"index\":"
                             "\"moderate\"}}]}"});
  ck_assert_int_eq(p->ops->current(p, "GB", T0 + 1900, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 140);
  ck_assert(v.estimated);
  ck_assert_int_eq(v.observed_at, T0 + 1800);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_ukgrid_forecast_national)
{
  cs_provider *p = make(NULL, 0);
  cs_series s = {0};
  /* Any time in the first half hour asks from its start. */
  ck_assert_int_eq(p->ops->forecast(p, "GB", T0 + 60, T0 + 48 * 3600, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 76);
  ck_assert_int_eq(s.step, 1800);
  ck_assert_int_eq(s.points[0].at, T0);
  ck_assert_double_eq(s.points[0].g_per_kwh, 128);
  ck_assert_int_eq(s.points[2].at, T0 + 3600);
  ck_assert_double_eq(s.points[2].g_per_kwh, 138);
  ck_assert_int_eq(s.points[75].at, 1699054200); /* 2023-11-03T23:30Z */
  ck_assert_double_eq(s.points[75].g_per_kwh, 142);
  cs_series_free(&s);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_ukgrid_forecast_regional_object_and_array)
{
  cs_ukgrid_zone z[] = {{.zone = "london", .target = "regionid:13"}};
  cs_provider *p = make(z, 1);
  cs_series s = {0};
  ck_assert_int_eq(p->ops->forecast(p, "london", T0, T0 + 48 * 3600, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 76);
  ck_assert_double_eq(s.points[0].g_per_kwh, 137);
  ck_assert_double_eq(s.points[75].g_per_kwh, 152);
  cs_series_free(&s);
  /* The same through the GB-REGION-13 zone name. */
  ck_assert_int_eq(p->ops->forecast(p, "GB-REGION-13", T0, T0 + 48 * 3600, &s),
                   CS_OK);
  ck_assert_uint_eq(s.len, 76);
  cs_series_free(&s);
  /* Current regional value, `data` as a one-element array. */
  fh_set(srv, "/regional/regionid/13",
         (fh_reply){.body = "{\"data\":[{\"regionid\":13,\"shortname\":"
                            "\"London\",\"data\":[{\"from\":\"2023-11-02T10:"
                            "00Z\",\"to\":\"2023-11-02T10:30Z\",\"intensity\":"
                            "{\"forecast\":137,\"index\":\"moderate\"}}]}]}"});
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "london", T0 + 5, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 137);
  ck_assert(v.estimated);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_ukgrid_current_postcode)
{
  fh_set(srv, "/regional/postcode/RG10",
         (fh_reply){.body = "{\"data\":[{\"regionid\":12,\"data\":[{\"from\":"
                            "\"2023-11-02T10:00Z\",\"to\":\"2023-11-02T10:30Z"
                            "\",\"intensity\":{\"forecast\":99,\"index\":"
                            "\"low\"}}]}]}"});
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  ck_assert_int_eq(p->ops->current(p, "GB-POSTCODE-rg10", T0, &v), CS_OK);
  ck_assert_double_eq(v.g_per_kwh, 99);
  ck_assert_int_eq(p->ops->current(p, "DE", T0, &v), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "GB-REGION-18", T0, &v), CS_ENOTFOUND);
  cs_provider_free(p);
}
END_TEST

/* A regional answer for another region than the one asked for is
 * refused, not served as this zone's figure. */
START_TEST(test_ukgrid_answer_for_another_region_refused)
{
  fh_set(srv, "/regional/regionid/13",
         (fh_reply){.body = "{\"data\":[{\"regionid\":12,\"data\":[{\"from\":"
                            "\"2023-11-02T10:00Z\",\"to\":\"2023-11-02T10:30Z"
                            "\",\"intensity\":{\"forecast\":99}}]}]}"});
  fh_set(srv, "/regional/postcode/RG10",
         (fh_reply){.body = "{\"data\":[{\"regionid\":12,\"postcode\":"
                            "\"SW1\",\"data\":[{\"from\":\"2023-11-02T10:00Z"
                            "\",\"to\":\"2023-11-02T10:30Z\",\"intensity\":{"
                            "\"forecast\":99}}]}]}"});
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "GB-REGION-13", T0, &v), CS_EPARSE);
  ck_assert_int_eq(p->ops->current(p, "GB-POSTCODE-RG10", T0, &v), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_msg(strstr(log, "response.data.regionid: the answer is for 12, "
                            "expected 13") &&
                    strstr(log, "response.data.postcode: the answer is for "
                                "\\\"SW1\\\", expected RG10"),
                "%s", log);
  free(log);
  cs_provider_free(p);
}
END_TEST

/* The current value for GB from `body` is refused as malformed, and the
 * failure logged says `text`. */
static void refused_with(cs_provider *p, const char *body, const char *text)
{
  cs_signal v;
  fh_push(srv, "/intensity", (fh_reply){.body = body});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "GB", T0, &v), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_msg(strstr(log, text), "%s", log);
  free(log);
}

START_TEST(test_ukgrid_current_errors)
{
  cs_provider *p = make(NULL, 0);
  cs_signal v;
  fh_push(srv, "/intensity",
          (fh_reply){.status = 400, .fixture = "uk-error.json"});
  fh_log_capture();
  ck_assert_int_eq(p->ops->current(p, "GB", T0, &v), CS_EHTTP);
  char *log = fh_log_take();
  ck_assert_ptr_nonnull(strstr(log, "Please enter a valid ISO 8601 datetime"));
  free(log);
  /* The API's answer for an outward code it does not know: not served.
   * A 404 that says nothing (a wrong URL) is a failure. */
  fh_set(srv, "/regional/postcode/ZZ9",
         (fh_reply){.status = 400,
                    .body = "{\"error\":{\"code\":\"400 Bad Request\","
                            "\"message\":\"No postcode match can be "
                            "found.\"}}"});
  ck_assert_int_eq(p->ops->current(p, "GB-POSTCODE-ZZ9", T0, &v), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "GB-POSTCODE-ZZ8", T0, &v), CS_EHTTP);
  /* An empty answer for a zone it covers: an outage, a failure. */
  fh_push(srv, "/intensity", (fh_reply){.body = "{\"data\":[]}"});
  ck_assert_int_eq(p->ops->current(p, "GB", T0, &v), CS_EPARSE);
  refused_with(p,
               "{\"data\":[{\"from\":\"yesterday\",\"to\":"
               "\"2023-11-02T10:30Z\",\"intensity\":{\"forecast\":1}}]}",
               "data[0].from: \\\"yesterday\\\"");
  refused_with(p,
               "{\"data\":[{\"from\":\"2023-11-02T10:00Z\",\"to\":"
               "\"2023-11-02T10:30Z\",\"intensity\":{\"actual\":1e300}}]}",
               "1e+300 is more than any grid emits, expected gCO2/kWh from 0 "
               "to 10000");
  /* A member of the wrong type is named with the type found. */
  refused_with(p,
               "{\"data\":[{\"from\":\"2023-11-02T10:00Z\",\"to\":"
               "\"2023-11-02T10:30Z\",\"intensity\":[128]}]}",
               "data[0].intensity: found an array, expected an object");
  fh_push(srv, "/intensity",
          (fh_reply){.status = 503, .body = "down", .retry_after = 0});
  ck_assert_int_eq(p->ops->current(p, "GB", T0, &v), CS_EHTTP);
  cs_provider_free(p);
}
END_TEST

/* Periods out of order or repeated are refused with both times named. */
START_TEST(test_ukgrid_forecast_unsorted_names_times)
{
  fh_push(srv, "/intensity/2023-11-02T10:00Z/fw48h",
          (fh_reply){.body = "{\"data\":[{\"from\":\"2023-11-02T10:00Z\","
                             "\"to\":\"2023-11-02T10:30Z\",\"intensity\":{"
                             "\"forecast\":1}},{\"from\":\"2023-11-02T10:00Z\","
                             "\"to\":\"2023-11-02T10:30Z\",\"intensity\":{"
                             "\"forecast\":2}}]}"});
  cs_provider *p = make(NULL, 0);
  cs_series s = {0};
  fh_log_capture();
  ck_assert_int_eq(p->ops->forecast(p, "GB", T0, T0 + 3600, &s), CS_EPARSE);
  char *log = fh_log_take();
  ck_assert_msg(strstr(log, "data[1].from: 2023-11-02T10:00:00Z, expected a "
                            "time after the previous period's "
                            "2023-11-02T10:00:00Z"),
                "%s", log);
  free(log);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_ukgrid_new_bad_zone_map)
{
  char err[256];
  cs_ukgrid_zone z[] = {{.zone = "x", .target = "regionid:99"}};
  cs_ukgrid_opts o = {.zones = z, .nzones = 1};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_ukgrid_new(&o, &p, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "regionid:99"));
  ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_ukgrid_current_every_truncation)
{
  cs_provider *p = make(NULL, 0);
  size_t len = fh_fixture_len("uk-intensity.json");
  for (size_t k = 1; k < len; k++) {
    fh_push(srv, "/intensity",
            (fh_reply){.fixture = "uk-intensity.json", .truncate = k});
    cs_signal v;
    ck_assert_int_eq(p->ops->current(p, "GB", T0, &v), CS_EPARSE);
  }
  cs_provider_free(p);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("ukgrid");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_ukgrid_current_prefers_actual);
  tcase_add_test(tc, test_ukgrid_forecast_national);
  tcase_add_test(tc, test_ukgrid_forecast_unsorted_names_times);
  tcase_add_test(tc, test_ukgrid_forecast_regional_object_and_array);
  tcase_add_test(tc, test_ukgrid_current_postcode);
  tcase_add_test(tc, test_ukgrid_answer_for_another_region_refused);
  tcase_add_test(tc, test_ukgrid_current_errors);
  tcase_add_test(tc, test_ukgrid_new_bad_zone_map);
  tcase_add_test(tc, test_ukgrid_current_every_truncation);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
