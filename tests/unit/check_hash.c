/* check_hash.c: FNV-1a 64 against the published test vectors (Landon Curt
 * Noll's test_fnv.c), and the incremental form against the one-shot one. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/hash.h"

typedef struct vector {
  const char *in;
  size_t len; /* with any NUL inside or at the end */
  uint64_t want;
} vector;

static const vector vectors[] = {
    {"", 0, 0xcbf29ce484222325ULL},
    {"a", 1, 0xaf63dc4c8601ec8cULL},
    {"b", 1, 0xaf63df4c8601f1a5ULL},
    {"c", 1, 0xaf63de4c8601eff2ULL},
    {"foo", 3, 0xdcb27518fed9d577ULL},
    {"foobar", 6, 0x85944171f73967e8ULL},
    {"chongo was here!\n", 17, 0x46810940eff5f915ULL},
    {"\0", 1, 0xaf63bd4c8601b7dfULL},
    {"a\0", 2, 0x089be207b544f1e4ULL},
    {"foobar\0", 7, 0x34531ca7168b8f38ULL},
};
#define NVECTORS (sizeof(vectors) / sizeof(vectors[0]))

START_TEST(test_hash_bytes_published_vectors)
{
  for (size_t i = 0; i < NVECTORS; i++)
    ck_assert_msg(cs_hash_bytes(vectors[i].in, vectors[i].len) ==
                      vectors[i].want,
                  "vector %zu", i);
}
END_TEST

/* cs_hash_str stops at the NUL: the vectors without one inside. */
START_TEST(test_hash_str_published_vectors)
{
  for (size_t i = 0; i < NVECTORS; i++)
    if (strlen(vectors[i].in) == vectors[i].len)
      ck_assert_msg(cs_hash_str(vectors[i].in) == vectors[i].want, "vector %zu",
                    i);
}
END_TEST

/* Bytes past 0x7f are mixed in as unsigned, whatever the sign of char. */
START_TEST(test_hash_str_high_bytes_unsigned)
{
  ck_assert(cs_hash_str("\xff") == 0xaf64724c8602eb6eULL);
  ck_assert(cs_hash_str("z\xc3\xbcrich") == 0xfe8bb21e6544b7a0ULL);
  ck_assert(cs_hash_bytes("\x80\xff\x00\x7f", 4) == 0x7d83f4abf79470edULL);
}
END_TEST

/* A hash continued piece by piece is that of the pieces put together,
 * wherever they are cut. */
START_TEST(test_hash_add_pieces_equal_whole)
{
  for (size_t i = 0; i < NVECTORS; i++) {
    const vector *v = &vectors[i];
    for (size_t cut = 0; cut <= v->len; cut++) {
      uint64_t h = cs_hash_add(CS_HASH_INIT, v->in, cut);
      h = cs_hash_add(h, v->in + cut, v->len - cut);
      ck_assert_msg(h == v->want, "vector %zu cut at %zu", i, cut);
    }
  }
}
END_TEST

START_TEST(test_hash_add_no_bytes_is_identity)
{
  ck_assert(cs_hash_add(CS_HASH_INIT, NULL, 0) == CS_HASH_INIT);
  ck_assert(cs_hash_add(12345, "x", 0) == 12345);
  ck_assert(cs_hash_bytes(NULL, 0) == CS_HASH_INIT);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("hash");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_hash_bytes_published_vectors);
  tcase_add_test(tc, test_hash_str_published_vectors);
  tcase_add_test(tc, test_hash_str_high_bytes_unsigned);
  tcase_add_test(tc, test_hash_add_pieces_equal_whole);
  tcase_add_test(tc, test_hash_add_no_bytes_is_identity);
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
