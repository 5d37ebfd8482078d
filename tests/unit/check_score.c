#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "scheduler/score.h"

START_TEST(test_score_linear_lowest_ten)
{
  double e[4] = {100, 200, 150, 124};
  int s[4];
  cs_score_lowest(e, 4, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 0);
  ck_assert_int_eq(s[2], 5);
  ck_assert_int_eq(s[3], 8); /* 10 * 76/100 = 7.6 rounds to 8 */
}
END_TEST

START_TEST(test_score_ties_equal_scores)
{
  double e[3] = {50, 50, 90};
  int s[3];
  cs_score_lowest(e, 3, s);
  ck_assert_int_eq(s[0], s[1]);
  ck_assert_int_eq(s[0], 10);
  double same[2] = {7, 7};
  cs_score_lowest(same, 2, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 10);
}
END_TEST

START_TEST(test_score_unknown_neutral)
{
  double e[3] = {10, NAN, 30};
  int s[3];
  cs_score_lowest(e, 3, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], CS_SCORE_NEUTRAL);
  ck_assert_int_eq(s[2], 0);
  double none[2] = {NAN, NAN};
  cs_score_lowest(none, 2, s);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(s[i], CS_SCORE_NEUTRAL);
}
END_TEST

START_TEST(test_score_order_independent)
{
  double a[3] = {1, 2, 3};
  double b[3] = {3, 1, 2};
  int sa[3], sb[3];
  cs_score_lowest(a, 3, sa);
  cs_score_lowest(b, 3, sb);
  ck_assert_int_eq(sa[0], sb[1]);
  ck_assert_int_eq(sa[1], sb[2]);
  ck_assert_int_eq(sa[2], sb[0]);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("score");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_score_linear_lowest_ten);
  tcase_add_test(tc, test_score_ties_equal_scores);
  tcase_add_test(tc, test_score_unknown_neutral);
  tcase_add_test(tc, test_score_order_independent);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
