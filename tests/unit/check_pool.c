#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "carbon/util/pool.h"

typedef struct job {
  cs_pool_job base; /* first: the pool hands back &base */
  int id;
  atomic_int *order_next; /* shared: where the next finished job goes */
  int *order;             /* ids in the order they ran */
  atomic_bool *gate;      /* the job waits while *gate is false */
  atomic_bool started, ran, cancelled;
} job;

static void run(cs_pool_job *j)
{
  job *x = (job *)j;
  atomic_store(&x->started, true);
  while (x->gate && !atomic_load(x->gate))
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  if (x->order)
    x->order[atomic_fetch_add(x->order_next, 1)] = x->id;
  atomic_store(&x->ran, true);
}

static void cancel(cs_pool_job *j)
{
  atomic_store(&((job *)j)->cancelled, true);
}

static void wait_started(job *j)
{
  for (int i = 0; i < 5000 && !atomic_load(&j->started); i++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  ck_assert(atomic_load(&j->started));
}

START_TEST(test_pool_runs_in_submission_order)
{
  cs_pool *p;
  ck_assert_int_eq(cs_pool_new(1, "test-pool", &p), CS_OK);
  enum { N = 200 };
  static job jobs[N];
  int order[N];
  atomic_int next = 0;
  for (int i = 0; i < N; i++) {
    jobs[i] =
        (job){.base.run = run, .id = i, .order_next = &next, .order = order};
    ck_assert(cs_pool_submit(p, &jobs[i].base));
  }
  cs_pool_free(p); /* runs what is queued, then joins */
  ck_assert_int_eq(atomic_load(&next), N);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(order[i], i);
}
END_TEST

/* Every thread works: two jobs that each wait for the other to have
 * started can only both finish with two threads. */
static atomic_bool both_started;
static atomic_int started_count;

static void run_meeting(cs_pool_job *j)
{
  (void)j;
  atomic_fetch_add(&started_count, 1);
  for (int i = 0; i < 5000 && atomic_load(&started_count) < 2; i++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  if (atomic_load(&started_count) >= 2)
    atomic_store(&both_started, true);
}

START_TEST(test_pool_threads_run_jobs_side_by_side)
{
  cs_pool *p;
  ck_assert_int_eq(cs_pool_new(2, "test-pool", &p), CS_OK);
  cs_pool_job a = {.run = run_meeting}, b = {.run = run_meeting};
  ck_assert(cs_pool_submit(p, &a));
  ck_assert(cs_pool_submit(p, &b));
  cs_pool_free(p);
  ck_assert(atomic_load(&both_started));
}
END_TEST

static void *open_later(void *gate)
{
  nanosleep(&(struct timespec){0, 50000000}, NULL);
  atomic_store((atomic_bool *)gate, true);
  return NULL;
}

START_TEST(test_pool_stop_cancels_queued_waits_for_running)
{
  cs_pool *p;
  ck_assert_int_eq(cs_pool_new(1, "test-pool", &p), CS_OK);
  atomic_bool gate = false;
  job busy = {.base.run = run, .gate = &gate};
  job queued[3];
  ck_assert(cs_pool_submit(p, &busy.base));
  wait_started(&busy);
  for (int i = 0; i < 3; i++) {
    queued[i] = (job){.base.run = run};
    ck_assert(cs_pool_submit(p, &queued[i].base));
  }
  ck_assert_uint_eq(cs_pool_queued(p), 3);
  /* The running job finishes only after stop has begun waiting for it. */
  pthread_t opener;
  ck_assert_int_eq(pthread_create(&opener, NULL, open_later, &gate), 0);
  cs_pool_stop(p, cancel);
  ck_assert(atomic_load(&busy.ran));
  for (int i = 0; i < 3; i++) {
    ck_assert(atomic_load(&queued[i].cancelled));
    ck_assert(!atomic_load(&queued[i].started));
  }
  job late = {.base.run = run};
  ck_assert(!cs_pool_submit(p, &late.base));
  cs_pool_stop(p, cancel); /* idempotent */
  cs_pool_free(p);
  ck_assert(!atomic_load(&late.started) && !atomic_load(&late.cancelled));
  pthread_join(opener, NULL);
}
END_TEST

START_TEST(test_pool_refuses_bad_sizes)
{
  cs_pool *p = (cs_pool *)&p;
  ck_assert_int_eq(cs_pool_new(0, "x", &p), CS_EINVAL);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(cs_pool_new(1025, "x", &p), CS_EINVAL);
  ck_assert_ptr_null(p);
  cs_pool_free(NULL);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_pool_runs_in_submission_order);
  tcase_add_test(tc, test_pool_threads_run_jobs_side_by_side);
  tcase_add_test(tc, test_pool_stop_cancels_queued_waits_for_running);
  tcase_add_test(tc, test_pool_refuses_bad_sizes);
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
