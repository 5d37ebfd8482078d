#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "scheduler/plan_memo.h"

/* A start is given back while it is ahead, and forgotten by a start of 0
 * or one not after now. */
START_TEST(test_plan_memo_put_get_forget)
{
  cs_plan_memo *m = cs_plan_memo_new(8);
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 100), 0);
  cs_plan_memo_put(m, "uid-a", 500, 100);
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 100), 500);
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 499), 500);
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 500), 0); /* it has come */
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-b", 100), 0);
  cs_plan_memo_put(m, "uid-a", 700, 200); /* a new plan replaces it */
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 200), 700);
  cs_plan_memo_put(m, "uid-a", 0, 300); /* not deferred any more */
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 300), 0);
  cs_plan_memo_put(m, "uid-a", 300, 300); /* a start now is no wait */
  ck_assert_int_eq(cs_plan_memo_get(m, "uid-a", 299), 0);
  cs_plan_memo_put(m, "", 900, 300); /* a pod without a UID is not kept */
  ck_assert_int_eq(cs_plan_memo_get(m, "", 300), 0);
  cs_plan_memo_free(m);
}
END_TEST

/* Full, the memo makes room from a pod whose start has passed before the
 * one put longest ago. */
START_TEST(test_plan_memo_full_forgets_passed_then_oldest)
{
  cs_plan_memo *m = cs_plan_memo_new(3);
  cs_plan_memo_put(m, "old", 1000, 10);
  cs_plan_memo_put(m, "soon", 60, 20);
  cs_plan_memo_put(m, "mid", 1000, 30);
  cs_plan_memo_put(m, "new-1", 1000, 100); /* "soon" has passed */
  ck_assert_int_eq(cs_plan_memo_get(m, "old", 100), 1000);
  ck_assert_int_eq(cs_plan_memo_get(m, "mid", 100), 1000);
  ck_assert_int_eq(cs_plan_memo_get(m, "new-1", 100), 1000);
  cs_plan_memo_put(m, "new-2", 1000, 110); /* none passed: "old" goes */
  ck_assert_int_eq(cs_plan_memo_get(m, "old", 110), 0);
  ck_assert_int_eq(cs_plan_memo_get(m, "mid", 110), 1000);
  ck_assert_int_eq(cs_plan_memo_get(m, "new-2", 110), 1000);
  cs_plan_memo_free(m);
}
END_TEST

/* Many pods: each gets its own start back. */
START_TEST(test_plan_memo_many_pods)
{
  cs_plan_memo *m = cs_plan_memo_new(4096);
  char uid[40];
  for (int i = 0; i < 4096; i++) {
    snprintf(uid, sizeof(uid), "pod-%d", i);
    cs_plan_memo_put(m, uid, 10000 + i, 1);
  }
  for (int i = 0; i < 4096; i++) {
    snprintf(uid, sizeof(uid), "pod-%d", i);
    ck_assert_int_eq(cs_plan_memo_get(m, uid, 2), 10000 + i);
  }
  cs_plan_memo_free(m);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("plan_memo");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_plan_memo_put_get_forget);
  tcase_add_test(tc, test_plan_memo_full_forgets_passed_then_oldest);
  tcase_add_test(tc, test_plan_memo_many_pods);
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
