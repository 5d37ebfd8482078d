/* The span scanner. Its string scanning reads eight bytes at a time; the
 * offset tests put every kind of special byte at every offset of long
 * strings, so a byte the word test missed would show as an accepted bad
 * string or a wrong span. The surrogate test holds an input the fuzz target
 * tests/fuzz/fuzz_jscan.c found. Member names compare and strings decode as
 * cJSON reads them. Well-formed requests are covered through check_codec.c.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <sanitizer/asan_interface.h> /* no-ops outside the sanitizer build */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/jscan.h"
#include "carbon/util/jtree.h"
#include "testutil.h"

/* Scans one whole document; CS_OK when it is a valid value and only white
 * space follows. */
static cs_err scan(const char *doc, size_t len, size_t *span)
{
  cs_jscan s;
  const char *at;
  cs_jscan_init(&s, doc, len, 0);
  cs_err rc = cs_jscan_skip(&s, &at, span);
  if (!rc)
    rc = cs_jscan_finish(&s);
  return rc;
}

/* "aaaa...<ins>...aaaa" with `ins` at offset `at` of a 40-byte body. */
static size_t build(char *out, size_t at, const char *ins)
{
  char body[64];
  memset(body, 'a', 40);
  body[40] = '\0';
  size_t il = strlen(ins);
  memcpy(body + at, ins, il);
  return (size_t)snprintf(out, 80, "\"%s\"", body);
}

START_TEST(test_jscan_skip_control_byte_at_every_offset)
{
  for (size_t at = 0; at < 40; at++) {
    for (unsigned c = 0; c < 0x20; c++) {
      char doc[80], ins[2] = {(char)c, 0};
      size_t len = build(doc, at, c ? ins : "x");
      if (!c)
        doc[1 + at] = '\0'; /* a NUL byte inside the string */
      ck_assert_msg(scan(doc, len, NULL) == CS_EPARSE,
                    "byte 0x%02x at offset %zu was accepted", c, at);
    }
  }
}
END_TEST

START_TEST(test_jscan_skip_escapes_at_every_offset)
{
  static const char *const good[] = {"\\\"", "\\\\",    "\\/",
                                     "\\n",  "\\u00e9", "\\t"};
  static const char *const bad[] = {"\\x", "\\u12g4", "\\'"};
  for (size_t at = 0; at + 6 <= 40; at++) {
    char doc[80];
    for (size_t k = 0; k < sizeof(good) / sizeof(*good); k++) {
      size_t len = build(doc, at, good[k]), span = 0;
      ck_assert_msg(scan(doc, len, &span) == CS_OK, "%s at %zu refused",
                    good[k], at);
      ck_assert_uint_eq(span, len);
    }
    for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
      size_t len = build(doc, at, bad[k]);
      ck_assert_msg(scan(doc, len, NULL) == CS_EPARSE, "%s at %zu accepted",
                    bad[k], at);
    }
  }
}
END_TEST

START_TEST(test_jscan_skip_high_bytes_are_plain)
{
  /* UTF-8 and DEL need no escape; the word test must not stop on them
   * wrongly nor let a control byte behind them through. */
  char doc[80];
  size_t len = build(doc, 3, "\xc3\xa9\x7f\xe2\x82\xac\xf0\x9f\x98\x80");
  ck_assert_int_eq(scan(doc, len, NULL), CS_OK);
  len = build(doc, 3, "\xc3\xa9\x7f\xe2\x82\xac\x01");
  ck_assert_int_eq(scan(doc, len, NULL), CS_EPARSE);
}
END_TEST

START_TEST(test_jscan_skip_escaped_quote_ends_nowhere)
{
  /* An escaped quote is not the end; the real end follows. */
  const char doc[] = "{\"k\":\"abcdefgh\\\"ijklmnopqrstuvwx\",\"n\":1}";
  size_t span = 0;
  ck_assert_int_eq(scan(doc, sizeof(doc) - 1, &span), CS_OK);
  ck_assert_uint_eq(span, sizeof(doc) - 1);
  const char open[] = "\"abcdefghijklmnop\\\"";
  ck_assert_int_eq(scan(open, sizeof(open) - 1, NULL), CS_EPARSE);
}
END_TEST

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

/* Member names compare as cJSON_GetObjectItemCaseSensitive compares them in
 * a tree from cs_jtree_parse: decoded, an escaped NUL shown as U+FFFD, so a
 * name with a NUL is no shorter name. */
START_TEST(test_jscan_key_is_agrees_with_cjson)
{
  char longkey[201], longlit[260], nulltail[300];
  memset(longkey, 'k', 200);
  longkey[200] = '\0';
  snprintf(longlit, sizeof(longlit), "\"%.198s\\u006b\\u006b\"", longkey);
  snprintf(nulltail, sizeof(nulltail), "\"pue\\u0000%s\"", longkey);
  static const char *const keys[] = {"pue", "", "pu", "pue\n"};
  const char *const lits[] = {
      "\"pue\"",    "\"p\\u0075e\"", "\"pue\\u0000\"",   nulltail,
      "\"pu\"",     "\"puee\"",      "\"\\u0000pue\"",   "\"\"",
      "\"pue\\n\"", "\"p\\/ue\"",    "\"pu\\u0065\\n\"", longlit,
  };
  for (size_t i = 0; i < sizeof(lits) / sizeof(*lits); i++) {
    char doc[400];
    snprintf(doc, sizeof(doc), "{%s:1}", lits[i]);
    cJSON *j = cs_jtree_parse(doc, strlen(doc), NULL);
    ck_assert_ptr_nonnull(j);
    for (size_t k = 0; k <= sizeof(keys) / sizeof(*keys); k++) {
      const char *key = k < sizeof(keys) / sizeof(*keys) ? keys[k] : longkey;
      bool want = cJSON_GetObjectItemCaseSensitive(j, key) != NULL;
      ck_assert_msg(cs_json_key_is(lits[i], strlen(lits[i]), key) == want,
                    "%s vs \"%.8s\": want %d", lits[i], key, want);
    }
    cJSON_Delete(j);
  }
  ck_assert(cs_json_key_is(longlit, strlen(longlit), longkey));
  ck_assert(!cs_json_key_is(nulltail, strlen(nulltail), "pue"));
  static const char nul_end[] = "\"pue\\u0000\"";
  ck_assert(!cs_json_key_is(nul_end, strlen(nul_end), "pue"));
  ck_assert(cs_json_key_is(nul_end, strlen(nul_end), "pue\xEF\xBF\xBD"));
}
END_TEST

/* An escaped NUL no longer ends the string: it shows as U+FFFD, and the
 * whole string has to fit. */
START_TEST(test_jscan_unquote_cstr_shows_nul)
{
  char lit[320], out[8];
  size_t n = (size_t)snprintf(lit, sizeof(lit), "\"ab\\u0000%0300d\"", 0);
  size_t len = 99;
  ck_assert_int_eq(cs_json_unquote(lit, n, out, sizeof(out), &len), CS_ETOOBIG);
  ck_assert_int_eq(cs_json_unquote_cstr(lit, n, out, sizeof(out), &len),
                   CS_ETOOBIG);
  ck_assert_int_eq(
      cs_json_unquote_cstr("\"ab\\u0000c\"", 11, out, sizeof(out), &len),
      CS_OK);
  ck_assert_str_eq(out, "ab\xEF\xBF\xBD"
                        "c");
  ck_assert_uint_eq(len, 6);
  ck_assert_int_eq(
      cs_json_unquote_cstr("\"abcdefghi\"", 11, out, sizeof(out), &len),
      CS_ETOOBIG);
}
END_TEST

START_TEST(test_jscan_next_key_lit_spans_names)
{
  static const char doc[] = "{ \"a\\n\" : 1 , \"b\":{\"c\":2}}";
  cs_jscan s;
  const char *lit;
  size_t len;
  bool more;
  cs_jscan_init(&s, doc, sizeof(doc) - 1, 0);
  ck_assert_int_eq(cs_jscan_enter_object(&s), CS_OK);
  ck_assert_int_eq(cs_jscan_next_key_lit(&s, &lit, &len, &more), CS_OK);
  ck_assert(more);
  ck_assert_uint_eq(len, 5);
  ck_assert(memcmp(lit, "\"a\\n\"", 5) == 0);
  ck_assert_int_eq(cs_jscan_skip(&s, NULL, NULL), CS_OK);
  ck_assert_int_eq(cs_jscan_next_key_lit(&s, &lit, &len, &more), CS_OK);
  ck_assert(more && len == 3 && memcmp(lit, "\"b\"", 3) == 0);
  ck_assert_int_eq(cs_jscan_skip(&s, NULL, NULL), CS_OK);
  ck_assert_int_eq(cs_jscan_next_key_lit(&s, &lit, &len, &more), CS_OK);
  ck_assert(!more);
  ck_assert_int_eq(cs_jscan_finish(&s), CS_OK);
  /* A name without its colon is a syntax error, as with next_key. */
  cs_jscan_init(&s, "{\"a\" 1}", 7, 0);
  ck_assert_int_eq(cs_jscan_enter_object(&s), CS_OK);
  ck_assert_int_eq(cs_jscan_next_key_lit(&s, &lit, &len, &more), CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(s.err, "expected ':'"));
}
END_TEST

/* ---- a body that arrives in pieces ----------------------------------- */

/* Hands out the document `step` bytes at a time (the steps cycle through
 * `steps`), as a socket would, without threads: wait() returns at once.
 * The bytes not handed out yet are poisoned, so in the sanitizer build a
 * scanner that read past what it was given would stop the test. */
typedef struct pieces {
  const char *full_end; /* set by walk_doc, on its copy */
  const size_t *steps;
  size_t nsteps, i;
  int waits_after_end; /* calls once everything was handed out */
} pieces;

static const char *pieces_wait(void *ctx, const char *end)
{
  pieces *pc = ctx;
  if (end >= pc->full_end) {
    pc->waits_after_end++;
    return end;
  }
  size_t step = pc->steps[pc->i++ % pc->nsteps];
  size_t left = (size_t)(pc->full_end - end);
  size_t n = step < left ? step : left;
  ASAN_UNPOISON_MEMORY_REGION(end, n);
  return end + n;
}

/* Walks a whole document with every entry point the codec uses (peek,
 * enter, keys as literals and decoded, elements, skip, finish), writing
 * what it saw, with offsets, into `trace`; the result of the walk last. */
static cs_err walk(cs_jscan *s, cs_buf *trace, int depth)
{
  cs_jtype t = cs_jscan_peek(s);
  cs_buf_printf(trace, "%d@%zu ", (int)t, (size_t)(s->p - s->start));
  bool more = true;
  cs_err rc = CS_OK;
  if (t == CS_JOBJECT && depth % 2 == 0) {
    if ((rc = cs_jscan_enter_object(s)))
      return rc;
    for (int i = 0; !rc; i++) {
      const char *lit;
      size_t len;
      char key[16];
      if (i % 2)
        rc = cs_jscan_next_key(s, key, sizeof(key), &more);
      else
        rc = cs_jscan_next_key_lit(s, &lit, &len, &more);
      if (rc || !more)
        break;
      if (i % 2)
        cs_buf_printf(trace, "k:%s ", key);
      else
        cs_buf_printf(trace, "k@%zu+%zu ", (size_t)(lit - s->start), len);
      rc = walk(s, trace, depth + 1);
    }
    return rc;
  }
  if (t == CS_JARRAY && depth % 2 == 0) {
    if ((rc = cs_jscan_enter_array(s)))
      return rc;
    while (!(rc = cs_jscan_next_elem(s, &more)) && more)
      if ((rc = walk(s, trace, depth + 1)))
        break;
    return rc;
  }
  const char *at;
  size_t len;
  if ((rc = cs_jscan_skip(s, &at, &len)))
    return rc;
  cs_buf_printf(trace, "v@%zu+%zu ", (size_t)(at - s->start), len);
  return CS_OK;
}

static char *walk_doc(const char *doc, size_t len, pieces *pc)
{
  cs_jscan s;
  cs_jscan_feed feed = {pieces_wait, pc};
  char *copy = NULL;
  if (pc) {
    copy = cs_malloc(len + 1);
    memcpy(copy, doc, len);
    ASAN_POISON_MEMORY_REGION(copy, len + 1);
    pc->full_end = copy + len;
    cs_jscan_init_feed(&s, copy, 0, &feed, 0);
  } else {
    cs_jscan_init(&s, doc, len, 0);
  }
  cs_buf trace;
  cs_buf_init(&trace, 0);
  cs_err rc = walk(&s, &trace, 0);
  if (!rc)
    rc = cs_jscan_finish(&s);
  cs_buf_printf(&trace, "| rc=%d p=%zu err=%s", (int)rc,
                (size_t)(s.p - s.start), s.err);
  if (copy) {
    ASAN_UNPOISON_MEMORY_REGION(copy, len + 1);
    free(copy);
  }
  size_t n;
  return cs_buf_release(&trace, &n);
}

/* Compares the fed walk of doc[0..len) with the whole one, for each way of
 * cutting it into pieces; a difference names the cut. */
static void check_fed_like_whole(const char *doc, size_t len)
{
  static const size_t one[] = {1}, two[] = {2}, three[] = {3}, seven[] = {7},
                      mixed[] = {5, 1, 13, 2, 64, 1, 1, 4096, 3};
  static const struct {
    const size_t *steps;
    size_t n;
  } cuts[] = {{one, 1}, {two, 1}, {three, 1}, {seven, 1}, {mixed, 9}};
  char *whole = walk_doc(doc, len, NULL);
  for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
    pieces pc = {NULL, cuts[c].steps, cuts[c].n, 0, 0};
    char *fed = walk_doc(doc, len, &pc);
    ck_assert_msg(strcmp(whole, fed) == 0,
                  "cut %zu of %.*s:\n whole: %s\n fed:   %s", c, (int)len, doc,
                  whole, fed);
    ck_assert_msg(pc.waits_after_end <= 1,
                  "the scanner asked %d times after the end",
                  pc.waits_after_end);
    free(fed);
  }
  free(whole);
}

START_TEST(test_jscan_feed_every_prefix_scans_as_whole)
{
  /* Every kind of token, with escapes, surrogate pairs and numbers long
   * enough to be cut anywhere; each prefix is also a truncated body. */
  static const char *const docs[] = {
      "{\"a\\n\" : [1, -0.25e+10, 0, 1E3, true, false, null],"
      " \"b\\u00e9\\ud83d\\ude00\":{\"c\":\"x\\\"y\\\\\",\"d\":[]},"
      " \"e\":{}, \"f\":[{\"g\":[[\"h\"]]}]}  \n",
      "[\"\\u12g4\"]",
      "{\"a\" 1}",
      "[1,]",
      "\"\\ud800 lone\"",
      "[tru, nul]",
      "-",
      "123.",
      "  42  x",
  };
  for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
    for (size_t len = 0; len <= strlen(docs[i]); len++)
      check_fed_like_whole(docs[i], len);
}
END_TEST

START_TEST(test_jscan_feed_fixture_scans_as_whole)
{
  size_t len;
  char *doc =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  check_fed_like_whole(doc, len);
  free(doc);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("jscan");
  TCase *tc = tcase_create("strings");
  tcase_add_test(tc, test_jscan_skip_control_byte_at_every_offset);
  tcase_add_test(tc, test_jscan_skip_escapes_at_every_offset);
  tcase_add_test(tc, test_jscan_skip_high_bytes_are_plain);
  tcase_add_test(tc, test_jscan_skip_escaped_quote_ends_nowhere);
  tcase_add_test(tc, test_jscan_skip_lone_surrogate_refused);
  tcase_add_test(tc, test_jscan_key_is_agrees_with_cjson);
  tcase_add_test(tc, test_jscan_unquote_cstr_shows_nul);
  tcase_add_test(tc, test_jscan_next_key_lit_spans_names);
  suite_add_tcase(s, tc);
  tc = tcase_create("feed");
  tcase_add_test(tc, test_jscan_feed_every_prefix_scans_as_whole);
  tcase_add_test(tc, test_jscan_feed_fixture_scans_as_whole);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_ENV);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
