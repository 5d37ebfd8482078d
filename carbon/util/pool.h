/* pool.h: a fixed set of threads running jobs from one FIFO queue. The HTTP
 * server hands decisions to it so that the threads reading and writing
 * connections never compute: a 50 MB request being decided does not stop
 * other connections' bodies being read, or /healthz being answered.
 * Thread-safe: yes; any thread may submit. cs_pool_stop and cs_pool_free
 * must not be called from a job.
 * Ownership: jobs are the caller's (usually embedded in the caller's own
 * struct, so submitting never allocates) and must stay valid until their
 * function, or the cancel function given to cs_pool_stop, has run. */
#ifndef CS_POOL_H
#define CS_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/error.h"

typedef struct cs_pool_job {
  struct cs_pool_job *next; /* the pool's; do not touch */
  void (*run)(struct cs_pool_job *job);
} cs_pool_job;

typedef struct cs_pool cs_pool;

/* Starts `threads` threads (1..1024), named `name` (at most 15 bytes
 * are kept, as Linux does). */
cs_err cs_pool_new(unsigned threads, const char *name,
                   cs_pool **out) CS_MUST_USE;

/* Queues job->run(job), to run in submission order. False, with the job
 * not queued, once cs_pool_stop has begun. */
bool cs_pool_submit(cs_pool *p, cs_pool_job *job) CS_MUST_USE;

/* Jobs waiting for a thread (not counting those running). */
size_t cs_pool_queued(cs_pool *p);

/* Stops taking jobs; calls cancel(job) (from the calling thread) for each
 * job still queued, or runs them when cancel is NULL; waits for the jobs
 * running to finish and joins the threads. Idempotent. */
void cs_pool_stop(cs_pool *p, void (*cancel)(cs_pool_job *job));

/* Stops the pool (running queued jobs) if that was not done, and frees
 * it. NULL is ignored. */
void cs_pool_free(cs_pool *p);

#endif
