/* Tests of the span scanner on the inputs the fuzz target
 * tests/fuzz/fuzz_jscan.c found; well-formed requests are covered through
 * check_codec.c. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/jscan.h"

static cs_err skip_all(const char *json, char *err, size_t errcap)
{
  cs_jscan s;
  cs_jscan_init(&s, json, strlen(json), 0);
  cs_err rc = cs_jscan_skip(&s, NULL, NULL);
  if (rc == CS_OK)
    rc = cs_jscan_finish(&s);
  snprintf(err, errcap, "%s", s.err);
  return rc;
}

/* Found by fuzz_jscan: a lone surrogate escape passed the scanner but not
 * cJSON, so the codec answered "could not build the tree" instead of naming
 * the syntax error. The scanner now accepts exactly the pairs cJSON does. */
START_TEST(test_jscan_skip_lone_surrogate_refused)
{
  static const char *const bad[] = {
      "\"\\ude00\"",        "\"\\ud83d\"",   "\"\\ud83dx\"",
      "\"\\ud83d\\u0041\"", "[\"\\uDBFF\"]", "{\"\\udfff\":1}",
  };
  char err[128];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_msg(skip_all(bad[i], err, sizeof(err)) == CS_EPARSE, "%s",
                  bad[i]);
    ck_assert_msg(strstr(err, "surrogate") != NULL, "%s: %s", bad[i], err);
    cJSON *j = cJSON_Parse(bad[i]);
    ck_assert_msg(j == NULL, "cJSON accepts %s", bad[i]);
  }
  static const char *const good[] = {"\"\\ud83d\\ude00\"", "\"\\uDBFF\\uDFFF\"",
                                     "\"\\u00e9\\uffff\"",
                                     "\"a\\ud800\\udc00b\""};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    ck_assert_msg(skip_all(good[i], err, sizeof(err)) == CS_OK, "%s: %s",
                  good[i], err);
    cJSON *j = cJSON_Parse(good[i]);
    ck_assert_msg(j != NULL, "cJSON refuses %s", good[i]);
    cJSON_Delete(j);
  }
}
END_TEST

static Suite *jscan_suite(void)
{
  Suite *s = suite_create("jscan");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_jscan_skip_lone_surrogate_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(jscan_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
