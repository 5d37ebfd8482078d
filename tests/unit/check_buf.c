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

/* Small figures keep three significant digits; large ones their fixed
 * decimals (a 10-minute job's 0.044 kWh is not written 0). */
START_TEST(test_buf_json_numbers_significant)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '[');
  cs_json_num_sig(&b, NULL, 0.04378, 1, 3);
  cs_json_num_sig(&b, NULL, 0.00026789, 3, 3);
  cs_json_num_sig(&b, NULL, 29.47612, 3, 3);
  cs_json_num_sig(&b, NULL, 157.74, 1, 3);
  cs_json_num_sig(&b, NULL, -0.0123456, 3, 3);
  cs_json_num_sig(&b, NULL, 0, 3, 3);
  cs_json_num_sig(&b, NULL, 1e-12, 3, 3); /* past 9 decimals */
  cs_json_num_sig(&b, NULL, INFINITY, 3, 3);
  cs_json_close(&b, ']');
  ck_assert_str_eq(b.data, "[0.0438,0.000268,29.476,157.7,-0.0123,0,0,null]");
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

/* What cs_json_quote must write for byte c, one byte at a time, in a
 * string whose only non-ASCII byte is c (so that c >= 0x80 is a stray
 * byte, never part of a valid sequence). */
static void quote_byte_ref(char *out, size_t *o, unsigned char c)
{
  static const char hex[] = "0123456789abcdef";
  const char *esc = c == '"'    ? "\\\""
                    : c == '\\' ? "\\\\"
                    : c == '\n' ? "\\n"
                    : c == '\r' ? "\\r"
                    : c == '\t' ? "\\t"
                                : NULL;
  if (esc) {
    memcpy(out + *o, esc, 2);
    *o += 2;
  } else if (c < 0x20) {
    memcpy(out + *o, "\\u00", 4);
    out[*o + 4] = hex[c >> 4];
    out[*o + 5] = hex[c & 15];
    *o += 6;
  } else if (c >= 0x80) {
    memcpy(out + *o, "\\ufffd", 6);
    *o += 6;
  } else {
    out[(*o)++] = (char)c;
  }
}

/* Every byte that needs an escape, at every position of strings of every
 * length around the eight-byte words the fast path reads, and the bytes
 * next to the tested ranges (0x1f/0x20, 0x21/0x22/0x23, 0x5b/0x5c/0x5d,
 * 0x7f), which must pass unchanged; a stray 0x80 or 0xff becomes U+FFFD. */
START_TEST(test_buf_json_quote_every_position)
{
  const unsigned char probes[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f,
                                  0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c,
                                  0x5d, 0x7f, 0x80, 0xff};
  for (size_t len = 1; len <= 25; len++)
    for (size_t at = 0; at < len; at++)
      for (size_t k = 0; k < sizeof(probes); k++) {
        char in[32], want[256];
        size_t o = 0;
        memset(in, 'a' + (int)(len % 26), len);
        in[at] = (char)probes[k];
        want[o++] = '"';
        for (size_t i = 0; i < len; i++)
          quote_byte_ref(want, &o, (unsigned char)in[i]);
        want[o++] = '"';
        cs_buf b;
        cs_buf_init(&b, 0);
        cs_json_quote(&b, in, len);
        ck_assert_msg(b.len == o && !memcmp(b.data, want, o),
                      "byte 0x%02x at %zu of %zu: got %s", probes[k], at, len,
                      b.data);
        cs_buf_free(&b);
      }
}
END_TEST

/* Valid UTF-8 of every length passes unchanged at every position around
 * the fast path's words; what is not UTF-8 (a stray continuation byte, an
 * overlong form, a surrogate, a cut sequence, a byte no sequence begins
 * with) becomes one U+FFFD per byte, so that every line is JSON a strict
 * reader takes. */
START_TEST(test_buf_json_quote_utf8)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"\xc3\xa9", "\xc3\xa9"},                             /* é */
      {"\xe2\x82\xac", "\xe2\x82\xac"},                     /* € */
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},             /* U+1F600 */
      {"\xc0\x80", "\\ufffd\\ufffd"},                       /* overlong NUL */
      {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},            /* surrogate */
      {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* above U+10FFFF */
      {"\xe2\x82", "\\ufffd\\ufffd"},                       /* cut short */
      {"\xa9", "\\ufffd"}, /* stray continuation */
      {"\xf8", "\\ufffd"}, /* no such lead byte */
      {"\xc3\xa9\xff\"", "\xc3\xa9\\ufffd\\\""},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++)
    for (size_t pad = 0; pad <= 17; pad++)
      for (size_t tail = 0; tail <= 9; tail += 9) {
        char in[64], want[128];
        size_t il = strlen(cases[k].in), ol = strlen(cases[k].out);
        memset(in, 'p', pad);
        memcpy(in + pad, cases[k].in, il);
        memset(in + pad + il, 't', tail);
        want[0] = '"';
        memset(want + 1, 'p', pad);
        memcpy(want + 1 + pad, cases[k].out, ol);
        memset(want + 1 + pad + ol, 't', tail);
        want[1 + pad + ol + tail] = '"';
        size_t wl = pad + ol + tail + 2;
        cs_buf b;
        cs_buf_init(&b, 0);
        cs_json_quote(&b, in, pad + il + tail);
        ck_assert_msg(b.len == wl && !memcmp(b.data, want, wl),
                      "case %zu, pad %zu, tail %zu: got %s", k, pad, tail,
                      b.data);
        cs_buf_free(&b);
      }
  ck_assert_uint_eq(cs_utf8_len("\xf0\x9f\x98\x80", 3), 0); /* n counts */
  ck_assert_uint_eq(cs_utf8_len("\xf0\x9f\x98\x80", 4), 4);
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

/* A huge buffer's memory goes to the next huge buffer instead of back to
 * the kernel (one block kept, the larger one), content moved when a small
 * buffer grows into it. */
START_TEST(test_buf_huge_memory_reused)
{
  cs_buf a, b, c;
  cs_buf_init(&a, 0);
  cs_buf_reserve(&a, 20u << 20);
  memset(a.data, 'x', 20u << 20);
  char *kept = a.data;
  cs_buf_free(&a);
  ck_assert_ptr_null(a.data);

  cs_buf_init(&b, 0);
  cs_buf_puts(&b, "hi");
  cs_buf_reserve(&b, 16u << 20);
  ck_assert_ptr_eq(b.data, kept);
  ck_assert_str_eq(b.data, "hi");
  ck_assert_uint_ge(b.alloc, 20u << 20);
  cs_buf_free(&b);

  cs_buf_init(&c, 0);
  cs_buf_reserve(&c, 40u << 20); /* the kept block is too small */
  ck_assert_ptr_ne(c.data, kept);
  c.data[0] = 'c';
  char *larger = c.data;
  cs_buf_free(&c); /* kept instead of the smaller one */
  cs_buf_init(&a, 0);
  cs_buf_reserve(&a, 9u << 20);
  ck_assert_ptr_eq(a.data, larger);
  cs_buf_append(&a, "ok", 2);
  ck_assert_str_eq(a.data, "ok");
  /* A released block is the caller's, freed with free(). */
  size_t len;
  free(cs_buf_release(&a, &len));
  ck_assert_uint_eq(len, 2);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("buf");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_buf_json_numbers);
  tcase_add_test(tc, test_buf_json_numbers_significant);
  tcase_add_test(tc, test_buf_json_commas_and_escapes);
  tcase_add_test(tc, test_buf_json_quote_every_position);
  tcase_add_test(tc, test_buf_json_quote_utf8);
  tcase_add_test(tc, test_buf_append_cap_sticky);
  tcase_add_test(tc, test_buf_huge_memory_reused);
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
