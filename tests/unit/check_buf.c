#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/buf.h"

START_TEST(test_buf_json_numbers)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '[');
  cs_json_num(&b, NULL, 1.25, 1);
  cs_json_num(&b, NULL, -0.04, 1);
  cs_json_num(&b, NULL, 312.0, 3);
  cs_json_num(&b, NULL, 0.1234, 3);
  cs_json_num(&b, NULL, NAN, 2);
  cs_json_int(&b, NULL, -9223372036854775807LL - 1);
  cs_json_close(&b, ']');
  ck_assert_str_eq(b.data, "[1.3,0,312,0.123,null,-9223372036854775808]");
  cs_buf_free(&b);
}
END_TEST

START_TEST(test_buf_json_commas_and_escapes)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '{');
  cs_json_str(&b, "a", "x\"y\\z\x01");
  cs_json_open(&b, "o", '{');
  cs_json_close(&b, '}');
  cs_json_bool(&b, "t", true);
  cs_json_null(&b, "n");
  cs_json_close(&b, '}');
  ck_assert_str_eq(b.data, "{\"a\":\"x\\\"y\\\\z\\u0001\",\"o\":{},\"t\":true,"
                           "\"n\":null}");
  cs_buf_free(&b);
}
END_TEST

START_TEST(test_buf_append_cap_sticky)
{
  cs_buf b;
  cs_buf_init(&b, 8);
  cs_buf_puts(&b, "12345");
  cs_buf_puts(&b, "6789");
  ck_assert_int_eq(cs_buf_error(&b), CS_ETOOBIG);
  cs_buf_puts(&b, "x");
  ck_assert_str_eq(b.data, "12345");
  cs_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("buf");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_buf_json_numbers);
  tcase_add_test(tc, test_buf_json_commas_and_escapes);
  tcase_add_test(tc, test_buf_append_cap_sticky);
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
