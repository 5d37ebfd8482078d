#include "scheduler/head_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"

/* Longest pause between two checks: a connection is cut at most this long
 * after its deadline (or a quarter of the timeout, when that is less). */
#define MAX_CHECK_NS 1000000000ull

struct cs_head_slot {
  cs_head_slot *prev, *next;
  int fd;
  bool busy;           /* a request is in progress */
  bool cut;            /* shut down by the watch already */
  uint64_t idle_since; /* monotonic ns */
  char remote[64];
};

struct cs_head_watch {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* stop */
  cs_head_slot *head;
  uint64_t timeout_ns, check_ns;
  cs_head_cut_fn cut;
  void *ctx;
  bool stopping;
  pthread_t thread;
};

/* The first connection past its deadline and not cut yet, or NULL. A slot
 * idle since after `now` is not overdue: `now - idle_since`, unsigned,
 * would wrap to a huge wait. */
static cs_head_slot *overdue(cs_head_watch *w, uint64_t now)
{
  for (cs_head_slot *s = w->head; s; s = s->next)
    if (!s->busy && !s->cut && s->idle_since <= now &&
        now - s->idle_since >= w->timeout_ns)
      return s;
  return NULL;
}

/* Cuts the connections past their deadline. Called and returns with the
 * lock held; drops it around the callback, which logs. The clock is read
 * under the lock, each time it is taken again: slots added or made idle
 * while the callback ran have a later idle_since than a time read
 * before. */
static void check(cs_head_watch *w)
{
  for (;;) {
    uint64_t now = cs_clock_mono_ns();
    cs_head_slot *s = overdue(w, now);
    if (!s)
      break;
    /* Under the lock, so the connection cannot have been removed, and its
     * descriptor not closed and reused. */
    (void)shutdown(s->fd, SHUT_RDWR);
    s->cut = true;
    if (!w->cut)
      continue;
    char remote[sizeof(s->remote)];
    snprintf(remote, sizeof(remote), "%s", s->remote);
    uint64_t waited = now - s->idle_since;
    pthread_mutex_unlock(&w->mu);
    w->cut(w->ctx, remote, waited);
    pthread_mutex_lock(&w->mu);
  }
}

static void *watch_main(void *arg)
{
  cs_head_watch *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stopping) {
    check(w);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t ns = (uint64_t)t.tv_nsec + w->check_ns;
    t.tv_sec += (time_t)(ns / 1000000000ull);
    t.tv_nsec = (long)(ns % 1000000000ull);
    while (!w->stopping &&
           pthread_cond_timedwait(&w->cv, &w->mu, &t) != ETIMEDOUT)
      ;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

cs_err cs_head_watch_new(uint64_t timeout_ns, cs_head_cut_fn cut, void *ctx,
                         cs_head_watch **out)
{
  *out = NULL;
  if (!timeout_ns)
    return CS_EINVAL;
  cs_head_watch *w = cs_calloc(1, sizeof(*w));
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  w->timeout_ns = timeout_ns;
  w->check_ns = timeout_ns / 4 < MAX_CHECK_NS ? timeout_ns / 4 : MAX_CHECK_NS;
  if (!w->check_ns)
    w->check_ns = 1;
  w->cut = cut;
  w->ctx = ctx;
  if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return CS_EIO;
  }
  (void)pthread_setname_np(w->thread, "cs-head-watch");
  *out = w;
  return CS_OK;
}

cs_head_slot *cs_head_watch_add(cs_head_watch *w, int fd, const char *remote)
{
  cs_head_slot *s = cs_calloc(1, sizeof(*s));
  s->fd = fd;
  snprintf(s->remote, sizeof(s->remote), "%s", remote ? remote : "");
  pthread_mutex_lock(&w->mu);
  /* Read under the lock, as check reads its time: a check then never sees
   * an idle_since later than its own now. */
  s->idle_since = cs_clock_mono_ns();
  s->next = w->head;
  if (w->head)
    w->head->prev = s;
  w->head = s;
  pthread_mutex_unlock(&w->mu);
  return s;
}

void cs_head_watch_busy(cs_head_watch *w, cs_head_slot *s)
{
  pthread_mutex_lock(&w->mu);
  s->busy = true;
  pthread_mutex_unlock(&w->mu);
}

void cs_head_watch_idle(cs_head_watch *w, cs_head_slot *s)
{
  pthread_mutex_lock(&w->mu);
  s->busy = false;
  s->idle_since = cs_clock_mono_ns(); /* under the lock: see check */
  pthread_mutex_unlock(&w->mu);
}

void cs_head_watch_remove(cs_head_watch *w, cs_head_slot *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&w->mu);
  if (s->prev)
    s->prev->next = s->next;
  else
    w->head = s->next;
  if (s->next)
    s->next->prev = s->prev;
  pthread_mutex_unlock(&w->mu);
  free(s);
}

void cs_head_watch_free(cs_head_watch *w)
{
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  for (cs_head_slot *s = w->head, *next; s; s = next) {
    next = s->next;
    free(s);
  }
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
