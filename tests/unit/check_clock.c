/* check_clock.c: the pinned clock, and cs_time_floor() on both sides of
 * 1970 and at period boundaries. */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "carbon/util/clock.h"

START_TEST(test_time_floor_rounds_down_to_the_period)
{
  /* 2026-12-04T20:31:07Z within the hour 20:00Z and the 5-minute 20:30Z */
  ck_assert_int_eq(cs_time_floor(1796416267, 3600), 1796414400);
  ck_assert_int_eq(cs_time_floor(1796416267, 300), 1796416200);
  ck_assert_int_eq(cs_time_floor(1796416267, 1), 1796416267);
}
END_TEST

START_TEST(test_time_floor_keeps_a_boundary)
{
  ck_assert_int_eq(cs_time_floor(1796414400, 3600), 1796414400);
  ck_assert_int_eq(cs_time_floor(0, 3600), 0);
  ck_assert_int_eq(cs_time_floor(-3600, 3600), -3600);
}
END_TEST

/* Before 1970, t % step is negative: the floor is still the earlier
 * boundary, never the later one. */
START_TEST(test_time_floor_before_1970_rounds_down)
{
  ck_assert_int_eq(cs_time_floor(-1, 3600), -3600);
  ck_assert_int_eq(cs_time_floor(-3599, 3600), -3600);
  ck_assert_int_eq(cs_time_floor(-3601, 3600), -7200);
  ck_assert_int_eq(cs_time_floor(-301, 300), -600);
}
END_TEST

/* Pinned to 2001, far from any real "now", so unpinning shows. */
START_TEST(test_clock_fixed_then_unpinned)
{
  cs_clock_set_fixed(1000000000);
  ck_assert_int_eq(cs_clock_now(), 1000000000);
  cs_clock_set_fixed(0);
  int64_t real = (int64_t)time(NULL);
  ck_assert_int_ge(cs_clock_now(), real);
  ck_assert_int_le(cs_clock_now(), real + 2);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("clock");
  TCase *tc = tcase_create("clock");
  tcase_add_test(tc, test_time_floor_rounds_down_to_the_period);
  tcase_add_test(tc, test_time_floor_keeps_a_boundary);
  tcase_add_test(tc, test_time_floor_before_1970_rounds_down);
  tcase_add_test(tc, test_clock_fixed_then_unpinned);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
