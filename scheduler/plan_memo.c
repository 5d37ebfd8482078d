#include "scheduler/plan_memo.h"

#include <pthread.h>
#include <stdlib.h>

#include "carbon/util/alloc.h"
#include "carbon/util/hash.h"

/* UIDs are kept as 64-bit hashes, so that a lookup scans 8 bytes a pod.
 * Two UIDs with one hash (odds about n² / 2^65) would share an entry. */
struct cs_plan_memo {
  pthread_mutex_t mu;
  size_t n, cap;
  uint64_t *keys;
  int64_t *start;
  int64_t *put_at;
};

cs_plan_memo *cs_plan_memo_new(size_t capacity)
{
  cs_plan_memo *m = cs_calloc(1, sizeof(*m));
  pthread_mutex_init(&m->mu, NULL);
  m->cap = capacity ? capacity : 1;
  m->keys = cs_calloc(m->cap, sizeof(*m->keys));
  m->start = cs_calloc(m->cap, sizeof(*m->start));
  m->put_at = cs_calloc(m->cap, sizeof(*m->put_at));
  return m;
}

void cs_plan_memo_free(cs_plan_memo *m)
{
  if (!m)
    return;
  pthread_mutex_destroy(&m->mu);
  free(m->keys);
  free(m->start);
  free(m->put_at);
  free(m);
}

/* Callers hold the lock. The index of `key`, or SIZE_MAX. */
static size_t find(const cs_plan_memo *m, uint64_t key)
{
  for (size_t i = 0; i < m->n; i++)
    if (m->keys[i] == key)
      return i;
  return SIZE_MAX;
}

/* Callers hold the lock. A slot for a new pod: a free one, else one whose
 * start has passed, else the one put longest ago. */
static size_t free_slot(cs_plan_memo *m, int64_t now)
{
  if (m->n < m->cap)
    return m->n++;
  size_t oldest = 0;
  for (size_t i = 0; i < m->n; i++) {
    if (m->start[i] <= now)
      return i;
    if (m->put_at[i] < m->put_at[oldest])
      oldest = i;
  }
  return oldest;
}

void cs_plan_memo_put(cs_plan_memo *m, const char *uid, int64_t start,
                      int64_t now)
{
  if (!uid[0])
    return;
  uint64_t key = cs_hash_str(uid);
  pthread_mutex_lock(&m->mu);
  size_t i = find(m, key);
  if (start > now) {
    if (i == SIZE_MAX)
      i = free_slot(m, now);
    m->keys[i] = key;
    m->start[i] = start;
    m->put_at[i] = now;
  } else if (i != SIZE_MAX) {
    m->start[i] = 0; /* forgotten: the slot is free for the next pod */
  }
  pthread_mutex_unlock(&m->mu);
}

int64_t cs_plan_memo_get(cs_plan_memo *m, const char *uid, int64_t now)
{
  if (!uid[0])
    return 0;
  uint64_t key = cs_hash_str(uid);
  pthread_mutex_lock(&m->mu);
  size_t i = find(m, key);
  int64_t start = i != SIZE_MAX && m->start[i] > now ? m->start[i] : 0;
  pthread_mutex_unlock(&m->mu);
  return start;
}
