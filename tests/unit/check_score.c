#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "scheduler/score.h"

START_TEST(test_score_in_proportion_to_lowest)
{
  double e[5] = {100, 200, 150, 124, 1000};
  int s[5];
  cs_score_lowest(e, 5, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 5);
  ck_assert_int_eq(s[2], 7); /* 10 * 100/150 = 6.7 rounds to 7 */
  ck_assert_int_eq(s[3], 8); /* 8.06 */
  ck_assert_int_eq(s[4], 1);
  double far[2] = {1, 100};
  cs_score_lowest(far, 2, s);
  ck_assert_int_eq(s[1], 0); /* 0.1 */
}
END_TEST

/* A stretched scale (lowest 10, highest 0) made a 1 % difference the
 * whole scale, and let one outlier squeeze a node 20 % above the lowest up
 * to a tie with it (10.5, 12.5 and 54 kg scored 10, 10, 0). */
START_TEST(test_score_small_gaps_small_outliers_harmless)
{
  double close[2] = {10.0, 10.1};
  int s[3];
  cs_score_lowest(close, 2, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 10);
  double outlier[3] = {10.493, 12.547, 54.038};
  cs_score_lowest(outlier, 3, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 8);
  ck_assert_int_eq(s[2], 2);
}
END_TEST

/* Zero is the lowest there is: anything above it is infinitely more. */
START_TEST(test_score_zero_lowest)
{
  double e[3] = {0, 0, 5};
  int s[3];
  cs_score_lowest(e, 3, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 10);
  ck_assert_int_eq(s[2], 0);
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
  ck_assert_int_eq(s[2], 3);
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
  tcase_add_test(tc, test_score_in_proportion_to_lowest);
  tcase_add_test(tc, test_score_small_gaps_small_outliers_harmless);
  tcase_add_test(tc, test_score_zero_lowest);
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
