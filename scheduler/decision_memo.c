#include "scheduler/decision_memo.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/hash.h"

/* One pod and verb: keys are kept as 64-bit hashes, so entries have a
 * fixed size. Two keys with one hash share an entry and push each other
 * out, which only costs full lines. */
typedef struct memo_entry {
  uint64_t fingerprint;
  int64_t logged_at; /* when the full line was written */
  uint64_t repeats;
  char request_id[CS_MEMO_REQUEST_ID_MAX + 1];
} memo_entry;

/* The keys and the last-seen times sit in arrays of their own, apart from
 * the entries: a lookup scans 8 bytes per pod (32 KiB when full), not the
 * entries' 100. */
struct cs_decision_memo {
  pthread_mutex_t mu;
  int64_t window_s;
  size_t n, cap;
  uint64_t *keys;
  int64_t *seen_at; /* the last note, for forgetting the stalest */
  memo_entry *entries;
};

cs_decision_memo *cs_decision_memo_new(size_t capacity, int64_t window_s)
{
  cs_decision_memo *m = cs_calloc(1, sizeof(*m));
  pthread_mutex_init(&m->mu, NULL);
  m->window_s = window_s;
  m->cap = capacity ? capacity : 1;
  m->keys = cs_calloc(m->cap, sizeof(*m->keys));
  m->seen_at = cs_calloc(m->cap, sizeof(*m->seen_at));
  m->entries = cs_calloc(m->cap, sizeof(*m->entries));
  return m;
}

void cs_decision_memo_free(cs_decision_memo *m)
{
  if (!m)
    return;
  pthread_mutex_destroy(&m->mu);
  free(m->keys);
  free(m->seen_at);
  free(m->entries);
  free(m);
}

/* The index of `key`'s entry, or of the slot it takes: a free one, else
 * that of the pod seen least recently. */
static size_t find_slot(cs_decision_memo *m, uint64_t key, bool *found)
{
  for (size_t i = 0; i < m->n; i++)
    if (m->keys[i] == key) {
      *found = true;
      return i;
    }
  *found = false;
  if (m->n < m->cap)
    return m->n++;
  size_t stalest = 0;
  for (size_t i = 1; i < m->n; i++)
    if (m->seen_at[i] < m->seen_at[stalest])
      stalest = i;
  return stalest;
}

bool cs_decision_memo_note(cs_decision_memo *m, const char *key,
                           uint64_t fingerprint, const char *request_id,
                           int64_t now, cs_memo_same *same)
{
  uint64_t k = cs_hash_str(key);
  bool found, repeat = false;
  pthread_mutex_lock(&m->mu);
  size_t i = find_slot(m, k, &found);
  memo_entry *e = &m->entries[i];
  /* A clock set back counts as the window passed: the next line is in
   * full rather than pointing at one "from the future". */
  if (found && e->fingerprint == fingerprint && now >= e->logged_at &&
      now - e->logged_at < m->window_s) {
    repeat = true;
    e->repeats++;
    snprintf(same->request_id, sizeof(same->request_id), "%s", e->request_id);
    same->logged_at = e->logged_at;
    same->repeats = e->repeats;
  } else {
    m->keys[i] = k;
    e->fingerprint = fingerprint;
    e->logged_at = now;
    e->repeats = 0;
    snprintf(e->request_id, sizeof(e->request_id), "%s", request_id);
  }
  m->seen_at[i] = now;
  pthread_mutex_unlock(&m->mu);
  return repeat;
}
