#include "carbon/util/pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "carbon/util/alloc.h"

#define MAX_THREADS 1024

struct cs_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a job was queued, or the pool is stopping */
  cs_pool_job *head, *tail;
  size_t queued;
  bool stopping;
  bool stopped;
  unsigned nthreads;
  pthread_t *threads;
};

static void *worker(void *arg)
{
  cs_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->head && !p->stopping)
      pthread_cond_wait(&p->cv, &p->mu);
    cs_pool_job *job = p->head;
    if (!job) /* stopping, and nothing left to run */
      break;
    p->head = job->next;
    if (!p->head)
      p->tail = NULL;
    p->queued--;
    pthread_mutex_unlock(&p->mu);
    job->run(job);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

cs_err cs_pool_new(unsigned threads, const char *name, cs_pool **out)
{
  *out = NULL;
  if (threads < 1 || threads > MAX_THREADS)
    return CS_EINVAL;
  cs_pool *p = cs_calloc(1, sizeof(*p));
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->threads = cs_calloc(threads, sizeof(*p->threads));
  for (unsigned i = 0; i < threads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
      cs_pool_free(p); /* stops and joins the ones started */
      return CS_EIO;
    }
    p->nthreads++;
    if (name) {
      char n[16];
      snprintf(n, sizeof(n), "%s", name);
      (void)pthread_setname_np(p->threads[i], n);
    }
  }
  *out = p;
  return CS_OK;
}

bool cs_pool_submit(cs_pool *p, cs_pool_job *job)
{
  pthread_mutex_lock(&p->mu);
  bool ok = !p->stopping;
  if (ok) {
    job->next = NULL;
    if (p->tail)
      p->tail->next = job;
    else
      p->head = job;
    p->tail = job;
    p->queued++;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return ok;
}

size_t cs_pool_queued(cs_pool *p)
{
  pthread_mutex_lock(&p->mu);
  size_t n = p->queued;
  pthread_mutex_unlock(&p->mu);
  return n;
}

void cs_pool_stop(cs_pool *p, void (*cancel)(cs_pool_job *job))
{
  pthread_mutex_lock(&p->mu);
  if (p->stopped) {
    pthread_mutex_unlock(&p->mu);
    return;
  }
  p->stopping = true;
  cs_pool_job *left = NULL;
  if (cancel) { /* take the queue, so no worker starts those jobs */
    left = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  while (left) {
    cs_pool_job *next = left->next; /* cancel may free the job */
    cancel(left);
    left = next;
  }
  for (unsigned i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  pthread_mutex_lock(&p->mu);
  p->stopped = true;
  pthread_mutex_unlock(&p->mu);
}

void cs_pool_free(cs_pool *p)
{
  if (!p)
    return;
  cs_pool_stop(p, NULL);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
}
