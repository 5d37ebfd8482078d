/* Tests of the decision memo: repeats within the window, a new full line
 * after it or on any change, keys kept apart, and the bounded table
 * forgetting the pod seen least recently. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/decision_memo.h"

START_TEST(test_decision_memo_note_repeats_within_window)
{
  cs_decision_memo *m = cs_decision_memo_new(8, 300);
  cs_memo_same same;
  ck_assert(
      !cs_decision_memo_note(m, "pod-a/filter", 42, "req-1", 1000, &same));
  ck_assert(cs_decision_memo_note(m, "pod-a/filter", 42, "req-2", 1100, &same));
  ck_assert_str_eq(same.request_id, "req-1");
  ck_assert_int_eq(same.logged_at, 1000);
  ck_assert_uint_eq(same.repeats, 1);
  ck_assert(cs_decision_memo_note(m, "pod-a/filter", 42, "req-3", 1299, &same));
  ck_assert_str_eq(same.request_id, "req-1");
  ck_assert_uint_eq(same.repeats, 2);
  /* The window runs from the full line, not from the last repeat. */
  ck_assert(
      !cs_decision_memo_note(m, "pod-a/filter", 42, "req-4", 1300, &same));
  ck_assert(cs_decision_memo_note(m, "pod-a/filter", 42, "req-5", 1301, &same));
  ck_assert_str_eq(same.request_id, "req-4");
  ck_assert_uint_eq(same.repeats, 1);
  cs_decision_memo_free(m);
}
END_TEST

START_TEST(test_decision_memo_note_change_logs_in_full)
{
  cs_decision_memo *m = cs_decision_memo_new(8, 300);
  cs_memo_same same;
  ck_assert(!cs_decision_memo_note(m, "pod-a/filter", 1, "req-1", 1000, &same));
  ck_assert(!cs_decision_memo_note(m, "pod-a/filter", 2, "req-2", 1001, &same));
  /* The changed decision is the one now remembered. */
  ck_assert(cs_decision_memo_note(m, "pod-a/filter", 2, "req-3", 1002, &same));
  ck_assert_str_eq(same.request_id, "req-2");
  ck_assert(!cs_decision_memo_note(m, "pod-a/filter", 1, "req-4", 1003, &same));
  /* Another verb or pod is another key. */
  ck_assert(!cs_decision_memo_note(m, "pod-a/prioritize", 1, "r", 1004, &same));
  ck_assert(!cs_decision_memo_note(m, "pod-b/filter", 1, "r", 1004, &same));
  /* A clock set back logs in full. */
  ck_assert(!cs_decision_memo_note(m, "pod-a/filter", 1, "req-5", 900, &same));
  cs_decision_memo_free(m);
}
END_TEST

START_TEST(test_decision_memo_note_forgets_stalest_when_full)
{
  cs_decision_memo *m = cs_decision_memo_new(2, 300);
  cs_memo_same same;
  ck_assert(!cs_decision_memo_note(m, "a", 1, "ra", 1000, &same));
  ck_assert(!cs_decision_memo_note(m, "b", 1, "rb", 1001, &same));
  ck_assert(cs_decision_memo_note(m, "a", 1, "ra2", 1002, &same)); /* a seen */
  ck_assert(!cs_decision_memo_note(m, "c", 1, "rc", 1003, &same)); /* b out */
  ck_assert(cs_decision_memo_note(m, "a", 1, "ra3", 1004, &same));
  ck_assert(cs_decision_memo_note(m, "c", 1, "rc2", 1005, &same));
  ck_assert(!cs_decision_memo_note(m, "b", 1, "rb2", 1006, &same));
  cs_decision_memo_free(m);
}
END_TEST

/* A request id longer than the memo keeps is cut, never overrun. */
START_TEST(test_decision_memo_note_long_request_id_cut)
{
  cs_decision_memo *m = cs_decision_memo_new(2, 300);
  cs_memo_same same;
  char id[200];
  for (size_t i = 0; i < sizeof(id) - 1; i++)
    id[i] = 'x';
  id[sizeof(id) - 1] = '\0';
  ck_assert(!cs_decision_memo_note(m, "a", 1, id, 1000, &same));
  ck_assert(cs_decision_memo_note(m, "a", 1, "r", 1001, &same));
  ck_assert_uint_eq(strlen(same.request_id), CS_MEMO_REQUEST_ID_MAX);
  cs_decision_memo_free(m);
  cs_decision_memo_free(NULL);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("decision_memo");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_decision_memo_note_repeats_within_window);
  tcase_add_test(tc, test_decision_memo_note_change_logs_in_full);
  tcase_add_test(tc, test_decision_memo_note_forgets_stalest_when_full);
  tcase_add_test(tc, test_decision_memo_note_long_request_id_cut);
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
