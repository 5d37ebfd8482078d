#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scheduler/head_watch.h"

static atomic_int cuts;
static char last_remote[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_cut(void *ctx, const char *remote, uint64_t waited_ns)
{
  (void)ctx;
  ck_assert_uint_ge(waited_ns, 200000000u);
  pthread_mutex_lock(&mu);
  snprintf(last_remote, sizeof(last_remote), "%s", remote);
  pthread_mutex_unlock(&mu);
  atomic_fetch_add(&cuts, 1);
}

/* True when the peer of sv[1] saw its connection end within ms. */
static bool ended(int fd, int ms)
{
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0)
    return false;
  char b;
  return recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

/* The count once it reaches `want`, or as it is after `ms`: the watch
 * shuts a connection down before it calls back (which logs), so a peer can
 * see the end first. */
static int count_reaching(atomic_int *count, int want, int ms)
{
  for (int i = 0; i < ms && atomic_load(count) < want; i++)
    usleep(1000);
  return atomic_load(count);
}

/* Socket pairs stand for connections: the watch shuts down its end, and
 * the other end reads end-of-stream. An idle slot is cut after the
 * timeout, a busy one never, one made idle again gets a fresh timeout,
 * and a removed one is left alone. */
START_TEST(test_head_watch_cuts_only_idle_overdue)
{
  cs_head_watch *w;
  ck_assert_int_eq(cs_head_watch_new(200000000u, on_cut, NULL, &w), CS_OK);
  int idle[2], busy[2], again[2], gone[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, idle), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, busy), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, again), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, gone), 0);
  cs_head_slot *si = cs_head_watch_add(w, idle[0], "10.0.0.1:5000");
  cs_head_slot *sb = cs_head_watch_add(w, busy[0], "10.0.0.2:5000");
  cs_head_slot *sa = cs_head_watch_add(w, again[0], "10.0.0.3:5000");
  cs_head_slot *sg = cs_head_watch_add(w, gone[0], "10.0.0.4:5000");
  cs_head_watch_busy(w, sb);
  cs_head_watch_remove(w, sg);
  cs_head_watch_busy(w, sa);
  usleep(150000);
  cs_head_watch_idle(w, sa); /* its deadline is now 200 ms from here */
  ck_assert(ended(idle[1], 1000));
  ck_assert_int_ge(count_reaching(&cuts, 1, 1000), 1);
  pthread_mutex_lock(&mu);
  ck_assert_str_eq(last_remote, "10.0.0.1:5000");
  pthread_mutex_unlock(&mu);
  ck_assert(ended(again[1], 1000));
  ck_assert(!ended(busy[1], 400));
  ck_assert(!ended(gone[1], 10));
  ck_assert_int_eq(count_reaching(&cuts, 2, 1000), 2);
  cs_head_watch_remove(w, si);
  cs_head_watch_remove(w, sa);
  cs_head_watch_free(w); /* frees sb too */
  for (int i = 0; i < 2; i++) {
    close(idle[i]);
    close(busy[i]);
    close(again[i]);
    close(gone[i]);
  }
}
END_TEST

/* A cut callback that opens a fresh connection, as a server's accept can
 * while the watch logs: the fresh slot's idle_since is later than the
 * time the check started with, and must not count as overdue. */
typedef struct fresh {
  cs_head_watch *w;
  int pair[2];
  cs_head_slot *slot;
  atomic_int cuts;
} fresh;

static void add_on_cut(void *ctx, const char *remote, uint64_t waited_ns)
{
  (void)remote;
  (void)waited_ns;
  fresh *f = ctx;
  if (atomic_fetch_add(&f->cuts, 1) == 0)
    f->slot = cs_head_watch_add(f->w, f->pair[0], "10.0.0.9:5000");
}

START_TEST(test_head_watch_slot_added_during_cut_not_cut)
{
  fresh f = {0};
  int old[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, old), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, f.pair), 0);
  ck_assert_int_eq(cs_head_watch_new(500000000u, add_on_cut, &f, &f.w), CS_OK);
  cs_head_slot *so = cs_head_watch_add(f.w, old[0], "10.0.0.8:5000");
  ck_assert(ended(old[1], 2000));
  ck_assert_int_eq(count_reaching(&f.cuts, 1, 1000), 1);
  /* The fresh slot has its whole 500 ms: untouched 200 ms later. */
  ck_assert(!ended(f.pair[1], 200));
  ck_assert_int_eq(atomic_load(&f.cuts), 1);
  ck_assert(ended(f.pair[1], 2000)); /* and cut once it is overdue */
  ck_assert_int_eq(count_reaching(&f.cuts, 2, 1000), 2);
  cs_head_watch_remove(f.w, so);
  cs_head_watch_remove(f.w, f.slot);
  cs_head_watch_free(f.w);
  for (int i = 0; i < 2; i++) {
    close(old[i]);
    close(f.pair[i]);
  }
}
END_TEST

START_TEST(test_head_watch_refuses_zero_timeout)
{
  cs_head_watch *w = (cs_head_watch *)&w;
  ck_assert_int_eq(cs_head_watch_new(0, NULL, NULL, &w), CS_EINVAL);
  ck_assert_ptr_null(w);
  cs_head_watch_free(NULL);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("head_watch");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_head_watch_cuts_only_idle_overdue);
  tcase_add_test(tc, test_head_watch_slot_added_during_cut_not_cut);
  tcase_add_test(tc, test_head_watch_refuses_zero_timeout);
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
