#include <check.h>
#include <stdlib.h>

#include "scheduler/score.h"

static cs_estimate known(double g)
{
  cs_estimate e = {.known = true, .total_g = g};
  return e;
}

START_TEST(test_score_nodes_linear_lowest_ten)
{
  cs_estimate e[4] = {known(100), known(200), known(150), known(124)};
  int s[4];
  cs_score_nodes(e, 4, false, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 0);
  ck_assert_int_eq(s[2], 5);
  ck_assert_int_eq(s[3], 8); /* 10 * 76/100 = 7.6 rounds to 8 */
}
END_TEST

START_TEST(test_score_nodes_ties_equal_scores)
{
  cs_estimate e[3] = {known(50), known(50), known(90)};
  int s[3];
  cs_score_nodes(e, 3, false, s);
  ck_assert_int_eq(s[0], s[1]);
  ck_assert_int_eq(s[0], 10);
  cs_estimate same[2] = {known(7), known(7)};
  cs_score_nodes(same, 2, false, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], 10);
}
END_TEST

START_TEST(test_score_nodes_unknown_neutral)
{
  cs_estimate e[3] = {known(10), {.known = false}, known(30)};
  int s[3];
  cs_score_nodes(e, 3, false, s);
  ck_assert_int_eq(s[0], 10);
  ck_assert_int_eq(s[1], CS_SCORE_NEUTRAL);
  ck_assert_int_eq(s[2], 0);
  cs_score_nodes(e, 3, true, s);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(s[i], CS_SCORE_NEUTRAL);
}
END_TEST

START_TEST(test_score_nodes_order_independent)
{
  cs_estimate a[3] = {known(1), known(2), known(3)};
  cs_estimate b[3] = {known(3), known(1), known(2)};
  int sa[3], sb[3];
  cs_score_nodes(a, 3, false, sa);
  cs_score_nodes(b, 3, false, sb);
  ck_assert_int_eq(sa[0], sb[1]);
  ck_assert_int_eq(sa[1], sb[2]);
  ck_assert_int_eq(sa[2], sb[0]);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("score");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_score_nodes_linear_lowest_ten);
  tcase_add_test(tc, test_score_nodes_ties_equal_scores);
  tcase_add_test(tc, test_score_nodes_unknown_neutral);
  tcase_add_test(tc, test_score_nodes_order_independent);
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
