#include <check.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/jscan.h"
#include "carbon/util/jtree.h"

static cJSON *parse(const char *json)
{
  return cs_jtree_parse(json, strlen(json), NULL);
}

/* cJSON alone ends "6h\u0000junk" at the NUL; through jtree the value is
 * whole, the NUL shown as U+FFFD, in keys as in values. */
START_TEST(test_jtree_shows_escaped_nul)
{
  static const char doc[] =
      "{\"a\\u0000b\":\"6h\\u0000junk\",\"n\":[\"\\u0000\"]}";
  cJSON *plain = cJSON_Parse(doc);
  ck_assert_str_eq(plain->child->valuestring, "6h");
  cJSON_Delete(plain);

  cJSON *j = parse(doc);
  ck_assert_ptr_nonnull(j);
  ck_assert_str_eq(j->child->string, "a\xEF\xBF\xBD"
                                     "b");
  ck_assert_str_eq(j->child->valuestring, "6h\xEF\xBF\xBDjunk");
  ck_assert_str_eq(cJSON_GetArrayItem(j->child->next, 0)->valuestring,
                   "\xEF\xBF\xBD");
  cJSON_Delete(j);
}
END_TEST

/* Only escapes are rewritten: the text "\u0000" of an escaped backslash is
 * a value of its own, and the input is never changed. */
START_TEST(test_jtree_leaves_other_text)
{
  char doc[] = "{\"k\":\"\\\\u0000\",\"m\":\"\\\\\\u0000\",\"u0000\":1}";
  char before[sizeof(doc)];
  memcpy(before, doc, sizeof(doc));
  cJSON *j = parse(doc);
  ck_assert_ptr_nonnull(j);
  ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "k")->valuestring,
                   "\\u0000");
  ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "m")->valuestring,
                   "\\\xEF\xBF\xBD");
  ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(j, "u0000"));
  ck_assert_mem_eq(doc, before, sizeof(doc));
  cJSON_Delete(j);
}
END_TEST

/* The same answers as cJSON otherwise: invalid text refused, and with
 * `end`, where the value stopped, in the caller's text. */
START_TEST(test_jtree_end_and_errors)
{
  ck_assert_ptr_null(parse("{\"a\":\"\\u0000\""));
  ck_assert_ptr_null(parse("\"\\ud800\\u0000\"")); /* no low surrogate */
  ck_assert_ptr_null(cs_jtree_parse("", 0, NULL));
  /* One whole value, white space around it allowed. */
  static const char *const trailing[] = {"{\"a\":1}garbage", "{\"a\":1}{}",
                                         "[1] x", "{\"a\":\"\\u0000\"}]"};
  for (size_t i = 0; i < sizeof(trailing) / sizeof(*trailing); i++)
    ck_assert_msg(parse(trailing[i]) == NULL, "%s accepted", trailing[i]);
  static const char nul_after[] = "{}\0";
  ck_assert_ptr_null(cs_jtree_parse(nul_after, sizeof(nul_after), NULL));
  cJSON *ok = parse(" \t{\"a\":1}\r\n ");
  ck_assert_ptr_nonnull(ok);
  cJSON_Delete(ok);
  static const char two[] = "{\"a\":\"\\u0000\"} trailing";
  const char *end = NULL;
  cJSON *j = cs_jtree_parse(two, strlen(two), &end);
  ck_assert_ptr_nonnull(j);
  ck_assert_ptr_eq(end, two + strlen("{\"a\":\"\\u0000\"}"));
  cJSON_Delete(j);
  static const char bad[] = "[1,\"\\u0000\",}";
  end = NULL;
  ck_assert_ptr_null(cs_jtree_parse(bad, strlen(bad), &end));
  ck_assert(end >= bad && end <= bad + strlen(bad));
}
END_TEST

/* Facts read from the bytes (jscan) and from a tree (cJSON) agree. */
START_TEST(test_jtree_agrees_with_unquote_cstr)
{
  static const char *const lits[] = {"\"6h\\u0000junk\"", "\"\\u0000\"",
                                     "\"a\\\\u0000\"", "\"plain\"",
                                     "\"x\\u0000\\u0000y\""};
  for (size_t i = 0; i < sizeof(lits) / sizeof(*lits); i++) {
    char doc[64], out[64];
    size_t len;
    snprintf(doc, sizeof(doc), "[%s]", lits[i]);
    cJSON *j = parse(doc);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(
        cs_json_unquote_cstr(lits[i], strlen(lits[i]), out, sizeof(out), &len),
        CS_OK);
    ck_assert_str_eq(out, j->child->valuestring);
    ck_assert_uint_eq(len, strlen(j->child->valuestring));
    cJSON_Delete(j);
  }
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("jtree");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_jtree_shows_escaped_nul);
  tcase_add_test(tc, test_jtree_leaves_other_text);
  tcase_add_test(tc, test_jtree_end_and_errors);
  tcase_add_test(tc, test_jtree_agrees_with_unquote_cstr);
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
