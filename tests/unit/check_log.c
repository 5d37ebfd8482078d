/* The JSON log lines: whole lines only, whatever else is logging, and
 * JSON a strict reader takes. */
#include <check.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/log.h"

enum { LONG_LINES = 4, BIG = 1 << 20, SHORT_WRITERS = 2, SHORT_MAX = 20000 };

static atomic_bool long_started, long_done;
static atomic_int short_count[SHORT_WRITERS];

/* Writes lines of 1 MiB, far more than a pipe takes at once (64 KiB on
 * Linux; PIPE_BUF is 4 KiB), so each takes many writes. */
static void *long_writer(void *arg)
{
  (void)arg;
  char *pad = cs_malloc(BIG + 1);
  memset(pad, 'a', BIG);
  pad[BIG] = '\0';
  atomic_store(&long_started, true);
  for (int i = 0; i < LONG_LINES; i++) {
    cs_buf *l = cs_log_begin(0, "Line");
    cs_json_int(l, "writer", 0);
    cs_json_str(l, "pad", pad);
    cs_log_end(l);
  }
  atomic_store(&long_done, true);
  free(pad);
  return NULL;
}

/* Short lines, written all the while the long ones are. */
static void *short_writer(void *arg)
{
  int id = (int)(intptr_t)arg;
  while (!atomic_load(&long_started))
    nanosleep(&(struct timespec){0, 100000}, NULL);
  int n = 0;
  while (!atomic_load(&long_done) && n < SHORT_MAX) {
    cs_buf *l = cs_log_begin(0, "Line");
    cs_json_int(l, "writer", id + 1);
    cs_log_end(l);
    n++;
  }
  atomic_store(&short_count[id], n);
  return NULL;
}

/* Reads the pipe in small pieces with pauses, so that every long write is
 * cut short and continued while short lines are waiting. */
static void *reader(void *arg)
{
  int fd = *(int *)arg;
  cs_buf *all = cs_malloc(sizeof(*all));
  cs_buf_init(all, 0);
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
      break;
    cs_buf_append(all, chunk, (size_t)n);
    nanosleep(&(struct timespec){0, 50000}, NULL);
  }
  return all;
}

START_TEST(test_log_lines_never_interleave)
{
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  cs_log_set_fd(fds[1]);
  pthread_t r, lw, sw[SHORT_WRITERS];
  ck_assert_int_eq(pthread_create(&r, NULL, reader, &fds[0]), 0);
  for (int i = 0; i < SHORT_WRITERS; i++)
    ck_assert_int_eq(
        pthread_create(&sw[i], NULL, short_writer, (void *)(intptr_t)i), 0);
  ck_assert_int_eq(pthread_create(&lw, NULL, long_writer, NULL), 0);
  pthread_join(lw, NULL);
  for (int i = 0; i < SHORT_WRITERS; i++)
    pthread_join(sw[i], NULL);
  cs_log_set_fd(STDOUT_FILENO);
  close(fds[1]);
  void *got;
  pthread_join(r, &got);
  close(fds[0]);
  cs_buf *all = got;
  cs_buf_putc(all, '\0');
  int lines = 0, per[SHORT_WRITERS + 1] = {0};
  for (char *p = all->data, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
    *nl = '\0';
    cJSON *j = cJSON_Parse(p);
    ck_assert_msg(j, "line %d is not JSON: %.80s", lines, p);
    int id = cJSON_GetObjectItem(j, "writer")->valueint;
    const cJSON *pad = cJSON_GetObjectItem(j, "pad");
    ck_assert(id != 0 ||
              (cJSON_IsString(pad) && strlen(pad->valuestring) == (size_t)BIG));
    per[id]++;
    lines++;
    cJSON_Delete(j);
  }
  ck_assert_int_eq(per[0], LONG_LINES);
  int shorts = 0;
  for (int i = 0; i < SHORT_WRITERS; i++) {
    ck_assert_int_eq(per[i + 1], atomic_load(&short_count[i]));
    shorts += per[i + 1];
  }
  ck_assert_int_gt(shorts, 0); /* they did write alongside */
  cs_buf_free(all);
  free(all);
}
END_TEST

/* Bytes that are not UTF-8 (a pod name, a URL path) never reach the line
 * as they are. */
START_TEST(test_log_line_is_utf8)
{
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  cs_log_set_fd(fds[1]);
  cs_buf *l = cs_log_begin(0, "Request");
  cs_json_str(l, "path", "/x\xff\xfe\x01y\xc3\xa9");
  cs_log_end(l);
  cs_log_set_fd(STDOUT_FILENO);
  close(fds[1]);
  char buf[512];
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  ck_assert_msg(strstr(buf, "\"path\":\"/x\\ufffd\\ufffd\\u0001y\xc3\xa9\""),
                "%s", buf);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_log_lines_never_interleave);
  tcase_add_test(tc, test_log_line_is_utf8);
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
