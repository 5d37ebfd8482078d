/* Unit tests for carbon/providers/static: operator-set values per zone. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/static.h"

static const cs_static_zone two[] = {{"DE", 380.5}, {"onprem-1", 120}};

START_TEST(test_static_current_fields)
{
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_static_new(two, 2, CS_SIGNAL_AVERAGE, &p), CS_OK);
  ck_assert_str_eq(p->ops->name, "static");
  ck_assert(!p->ops->remote);
  cs_signal s;
  ck_assert_int_eq(p->ops->current(p, "onprem-1", 7205, &s), CS_OK);
  ck_assert_double_eq(s.g_per_kwh, 120);
  ck_assert_int_eq(s.type, CS_SIGNAL_AVERAGE);
  ck_assert_str_eq(s.provider, "static");
  ck_assert_str_eq(s.zone, "onprem-1");
  ck_assert(s.estimated);
  ck_assert_int_eq(s.observed_at, 7200);
  ck_assert_int_eq(s.fetched_at, 7205);
  ck_assert_int_eq(p->ops->current(p, "DE", 0, &s), CS_OK);
  ck_assert_double_eq(s.g_per_kwh, 380.5);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_static_current_marginal_type)
{
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_static_new(two, 1, CS_SIGNAL_MARGINAL, &p), CS_OK);
  cs_signal s;
  ck_assert_int_eq(p->ops->current(p, "DE", 0, &s), CS_OK);
  ck_assert_int_eq(s.type, CS_SIGNAL_MARGINAL);
  cs_series f = {0};
  ck_assert_int_eq(p->ops->forecast(p, "DE", 0, 3600, &f), CS_OK);
  ck_assert_int_eq(f.type, CS_SIGNAL_MARGINAL);
  cs_series_free(&f);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_static_current_unknown_zone)
{
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_static_new(two, 2, CS_SIGNAL_AVERAGE, &p), CS_OK);
  cs_signal s = {.g_per_kwh = -3};
  ck_assert_int_eq(p->ops->current(p, "FR", 0, &s), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, "de", 0, &s), CS_ENOTFOUND);
  ck_assert_int_eq(p->ops->current(p, NULL, 0, &s), CS_ENOTFOUND);
  ck_assert_double_eq(s.g_per_kwh, -3);
  cs_series f = {0};
  ck_assert_int_eq(p->ops->forecast(p, "FR", 0, 3600, &f), CS_ENOTFOUND);
  ck_assert_ptr_null(f.points);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_static_forecast_flat_over_range)
{
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_static_new(two, 2, CS_SIGNAL_AVERAGE, &p), CS_OK);
  cs_series f = {0};
  int64_t from = 1700000000 + 1234, to = from + 5 * 3600;
  ck_assert_int_eq(p->ops->forecast(p, "DE", from, to, &f), CS_OK);
  ck_assert_int_eq(f.step, 3600);
  ck_assert_str_eq(f.zone, "DE");
  ck_assert_str_eq(f.provider, "static");
  ck_assert_int_le(f.points[0].at, from);
  ck_assert_int_ge(cs_series_end(&f), to);
  ck_assert_uint_eq(f.len, 6);
  for (size_t i = 0; i < f.len; i++)
    ck_assert_double_eq(f.points[i].g_per_kwh, 380.5);
  double mean;
  ck_assert_int_eq(cs_series_window_mean(&f, from, to - from, &mean), CS_OK);
  ck_assert_double_eq_tol(mean, 380.5, 1e-9);
  cs_series_free(&f);
  ck_assert_int_eq(p->ops->forecast(p, "DE", to, to, &f), CS_EINVAL);
  ck_assert_int_eq(p->ops->forecast(p, "DE", to, from, &f), CS_EINVAL);
  ck_assert_int_eq(
      p->ops->forecast(p, "DE", 0, (int64_t)CS_STATIC_MAX_SPAN + 1, &f),
      CS_ETOOBIG);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_static_new_copies_input)
{
  char zone[8] = "NL";
  cs_static_zone z[] = {{zone, 300}};
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_static_new(z, 1, CS_SIGNAL_AVERAGE, &p), CS_OK);
  memcpy(zone, "XX", 3);
  cs_signal s;
  ck_assert_int_eq(p->ops->current(p, "NL", 0, &s), CS_OK);
  cs_provider_free(p);
}
END_TEST

START_TEST(test_static_new_rejects_bad_input)
{
  cs_provider *p = (cs_provider *)0x1;
  cs_static_zone neg[] = {{"DE", -1}};
  ck_assert_int_eq(cs_static_new(neg, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  cs_static_zone nan[] = {{"DE", NAN}};
  ck_assert_int_eq(cs_static_new(nan, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  cs_static_zone inf[] = {{"DE", INFINITY}};
  ck_assert_int_eq(cs_static_new(inf, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  cs_static_zone empty[] = {{"", 100}};
  ck_assert_int_eq(cs_static_new(empty, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  cs_static_zone null[] = {{NULL, 100}};
  ck_assert_int_eq(cs_static_new(null, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  cs_static_zone dup[] = {{"DE", 100}, {"DE", 200}};
  ck_assert_int_eq(cs_static_new(dup, 2, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  char longzone[CS_ZONE_MAX + 1];
  memset(longzone, 'Z', CS_ZONE_MAX);
  longzone[CS_ZONE_MAX] = '\0';
  cs_static_zone lz[] = {{longzone, 100}};
  ck_assert_int_eq(cs_static_new(lz, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  ck_assert_int_eq(cs_static_new(two, 2, (cs_signal_type)7, &p), CS_EINVAL);
  ck_assert_int_eq(cs_static_new(NULL, 1, CS_SIGNAL_AVERAGE, &p), CS_EINVAL);
  ck_assert_int_eq(
      cs_static_new(two, CS_STATIC_MAX_ZONES + 1, CS_SIGNAL_AVERAGE, &p),
      CS_ETOOBIG);
  ck_assert_ptr_eq(p, (cs_provider *)0x1); /* never written on error */
}
END_TEST

START_TEST(test_static_new_empty_serves_nothing)
{
  cs_provider *p = NULL;
  ck_assert_int_eq(cs_static_new(NULL, 0, CS_SIGNAL_AVERAGE, &p), CS_OK);
  cs_signal s;
  ck_assert_int_eq(p->ops->current(p, "DE", 0, &s), CS_ENOTFOUND);
  cs_provider_free(p);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("static");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_static_current_fields);
  tcase_add_test(tc, test_static_current_marginal_type);
  tcase_add_test(tc, test_static_current_unknown_zone);
  tcase_add_test(tc, test_static_forecast_flat_over_range);
  tcase_add_test(tc, test_static_new_copies_input);
  tcase_add_test(tc, test_static_new_rejects_bad_input);
  tcase_add_test(tc, test_static_new_empty_serves_nothing);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
