#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carbon/util/readfile.h"

static char dir[64];

static void setup(void)
{
  snprintf(dir, sizeof(dir), "/tmp/cs_readfile_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *data, size_t n)
{
  static char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
  return path;
}

START_TEST(test_readfile_whole_file_up_to_the_limit)
{
  char *out;
  size_t len;
  char why[128];
  const char *p = write_file("a", "abc\0def", 7);
  ck_assert_int_eq(cs_read_file(p, 7, &out, &len, why, sizeof(why)), CS_OK);
  ck_assert_uint_eq(len, 7);
  ck_assert_int_eq(memcmp(out, "abc\0def", 8), 0); /* NUL-terminated too */
  free(out);
  ck_assert_int_eq(cs_read_file(p, 6, &out, &len, why, sizeof(why)),
                   CS_ETOOBIG);
  ck_assert_ptr_null(out);
  ck_assert_str_eq(why, "is larger than 6 bytes");
  p = write_file("empty", "", 0);
  ck_assert_int_eq(cs_read_file(p, 1 << 20, &out, &len, why, sizeof(why)),
                   CS_OK);
  ck_assert_uint_eq(len, 0);
  ck_assert_str_eq(out, "");
  free(out);
}
END_TEST

/* Symbolic links to regular files are read, as in mounted Secrets. */
START_TEST(test_readfile_follows_symlinks)
{
  const char *p = write_file("target", "x", 1);
  char link[128];
  snprintf(link, sizeof(link), "%s/link", dir);
  ck_assert_int_eq(symlink(p, link), 0);
  char *out;
  size_t len;
  char why[128];
  ck_assert_int_eq(cs_read_file(link, 10, &out, &len, why, sizeof(why)), CS_OK);
  ck_assert_str_eq(out, "x");
  free(out);
}
END_TEST

/* What is not a regular file is refused before a byte is read: a device
 * would never end, a FIFO would block until a writer came. */
START_TEST(test_readfile_refuses_what_is_not_a_file)
{
  char fifo[128];
  snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *paths[] = {"/dev/zero", fifo, dir};
  const char *want[] = {"is a character device, not a regular file",
                        "is a FIFO, not a regular file",
                        "is a directory, not a regular file"};
  for (int i = 0; i < 3; i++) {
    char *out = (char *)1;
    size_t len;
    char why[128];
    ck_assert_int_eq(
        cs_read_file(paths[i], 1 << 20, &out, &len, why, sizeof(why)),
        CS_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(why, want[i]);
  }
  char why[128];
  char *out;
  ck_assert_int_eq(
      cs_read_file("/nonexistent/x", 10, &out, NULL, why, sizeof(why)), CS_EIO);
  ck_assert_str_eq(why, "No such file or directory");
}
END_TEST

START_TEST(test_readfile_limit_named_in_units)
{
  static char big[(1 << 20) + 1];
  const char *p = write_file("big", big, sizeof(big));
  char *out;
  char why[128];
  ck_assert_int_eq(cs_read_file(p, 1 << 20, &out, NULL, why, sizeof(why)),
                   CS_ETOOBIG);
  ck_assert_str_eq(why, "is larger than 1 MiB");
  ck_assert_int_eq(cs_read_file(p, 64 << 10, &out, NULL, why, sizeof(why)),
                   CS_ETOOBIG);
  ck_assert_str_eq(why, "is larger than 64 KiB");
}
END_TEST

START_TEST(test_readfile_text_helpers)
{
  ck_assert_uint_eq(cs_text_nul_line("a\nb\nc", 5), 0);
  ck_assert_uint_eq(cs_text_nul_line("a\nb\n\0c", 6), 3);
  ck_assert_uint_eq(cs_text_nul_line("\0", 1), 1);
  char bom[] = "\xef\xbb\xbfTime", plain[] = "Time";
  ck_assert_str_eq(cs_text_skip_bom(bom), "Time");
  ck_assert_ptr_eq(cs_text_skip_bom(plain), plain);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("readfile");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_readfile_whole_file_up_to_the_limit);
  tcase_add_test(tc, test_readfile_follows_symlinks);
  tcase_add_test(tc, test_readfile_refuses_what_is_not_a_file);
  tcase_add_test(tc, test_readfile_limit_named_in_units);
  tcase_add_test(tc, test_readfile_text_helpers);
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
