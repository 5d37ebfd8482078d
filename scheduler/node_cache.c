#include "scheduler/node_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/hash.h"
#include "carbon/util/log.h"

/* A chained hash table of facts keyed by node name. Only the facts are
 * kept (about 1.3 kB a node), never the Node JSON: 5,000 nodes take under
 * 8 MB. */
typedef struct entry {
  struct entry *next;
  uint64_t hash;
  unsigned gen; /* the relist generation that last saw this node */
  cs_node_facts facts;
} entry;

struct cs_node_cache {
  const cs_facts_params *params;
  pthread_rwlock_t lock;
  entry **buckets;
  size_t nbuckets; /* a power of two */
  size_t n;
  unsigned gen;
  bool synced;
};

cs_node_cache *cs_node_cache_new(const cs_facts_params *params)
{
  cs_node_cache *c = cs_calloc(1, sizeof(*c));
  c->params = params;
  c->nbuckets = 64;
  c->buckets = cs_calloc(c->nbuckets, sizeof(*c->buckets));
  /* Writer-preferring: names-only calls on every decision thread could
   * otherwise hold the read side without a gap and starve the watch. */
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a,
                                PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&c->lock, &a);
  pthread_rwlockattr_destroy(&a);
  return c;
}

void cs_node_cache_free(cs_node_cache *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->nbuckets; i++) {
    entry *e = c->buckets[i];
    while (e) {
      entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(c->buckets);
  pthread_rwlock_destroy(&c->lock);
  free(c);
}

/* Callers hold the lock. */
static entry **find_slot(cs_node_cache *c, const char *name, uint64_t h)
{
  entry **p = &c->buckets[h & (c->nbuckets - 1)];
  while (*p && ((*p)->hash != h || strcmp((*p)->facts.name, name) != 0))
    p = &(*p)->next;
  return p;
}

static void grow(cs_node_cache *c)
{
  size_t nb = c->nbuckets * 2;
  entry **b = cs_calloc(nb, sizeof(*b));
  for (size_t i = 0; i < c->nbuckets; i++) {
    entry *e = c->buckets[i];
    while (e) {
      entry *next = e->next;
      e->next = b[e->hash & (nb - 1)];
      b[e->hash & (nb - 1)] = e;
      e = next;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nbuckets = nb;
}

cs_err cs_node_cache_upsert(cs_node_cache *c, const cJSON *node)
{
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  const cJSON *status = cJSON_GetObjectItemCaseSensitive(node, "status");
  const cJSON *alloc = cJSON_GetObjectItemCaseSensitive(status, "allocatable");
  /* The facts are computed before taking the lock: readers wait only for
   * the pointer swap. */
  entry *fresh = cs_calloc(1, sizeof(*fresh));
  cs_err rc =
      cs_node_facts_read(c->params, cJSON_IsObject(meta) ? meta : NULL,
                         cJSON_IsNull(alloc) ? NULL : alloc, &fresh->facts);
  if (rc) {
    free(fresh);
    return rc;
  }
  fresh->hash = cs_hash_str(fresh->facts.name);
  bool new_problems = false;

  pthread_rwlock_wrlock(&c->lock);
  fresh->gen = c->gen;
  entry **slot = find_slot(c, fresh->facts.name, fresh->hash);
  entry *old = *slot;
  if (old) {
    new_problems = strcmp(old->facts.problems, fresh->facts.problems) != 0;
    fresh->next = old->next;
    *slot = fresh;
  } else {
    new_problems = fresh->facts.problems[0] != '\0';
    fresh->next = NULL;
    *slot = fresh;
    if (++c->n > c->nbuckets)
      grow(c);
  }
  pthread_rwlock_unlock(&c->lock);
  free(old);

  if (new_problems && fresh->facts.problems[0]) {
    /* Logged once per change of the node's problems, not per request. */
    cs_buf *l = cs_log_begin(0, "Node facts incomplete");
    cs_json_str(l, "node", fresh->facts.name);
    cs_json_str(l, "problems", fresh->facts.problems);
    cs_log_end(l);
  }
  return CS_OK;
}

void cs_node_cache_remove(cs_node_cache *c, const char *name)
{
  if (!name)
    return;
  uint64_t h = cs_hash_str(name);
  pthread_rwlock_wrlock(&c->lock);
  entry **slot = find_slot(c, name, h);
  entry *e = *slot;
  if (e) {
    *slot = e->next;
    c->n--;
  }
  pthread_rwlock_unlock(&c->lock);
  free(e);
}

void cs_node_cache_relist_begin(cs_node_cache *c)
{
  pthread_rwlock_wrlock(&c->lock);
  c->gen++;
  pthread_rwlock_unlock(&c->lock);
}

void cs_node_cache_relist_end(cs_node_cache *c)
{
  entry *gone = NULL;
  pthread_rwlock_wrlock(&c->lock);
  for (size_t i = 0; i < c->nbuckets; i++) {
    entry **p = &c->buckets[i];
    while (*p) {
      entry *e = *p;
      if (e->gen != c->gen) {
        *p = e->next;
        e->next = gone;
        gone = e;
        c->n--;
      } else {
        p = &e->next;
      }
    }
  }
  c->synced = true;
  pthread_rwlock_unlock(&c->lock);
  while (gone) {
    entry *next = gone->next;
    free(gone);
    gone = next;
  }
}

cs_err cs_node_cache_replace(cs_node_cache *c, const cJSON *items)
{
  if (!cJSON_IsArray(items))
    return CS_EINVAL;
  cs_node_cache_relist_begin(c);
  const cJSON *it;
  cJSON_ArrayForEach(it, items)
  {
    /* A node without a usable name cannot be looked up; the others still
     * count. */
    if (cs_node_cache_upsert(c, it) != CS_OK)
      cs_log_error("Cannot cache a node", "the node has no usable name");
  }
  cs_node_cache_relist_end(c);
  return CS_OK;
}

void cs_node_cache_read_begin(cs_node_cache *c)
{
  pthread_rwlock_rdlock(&c->lock);
}

const cs_node_facts *cs_node_cache_find(cs_node_cache *c, const char *name)
{
  if (!name)
    return NULL;
  entry *e = *find_slot(c, name, cs_hash_str(name));
  return e ? &e->facts : NULL;
}

/* Asks for the lines of e a lookup and a decision read: the hash, the hot
 * facts, zone, name and the start of problems. A hint only (GCC and
 * Clang); elsewhere nothing. */
static void prefetch_entry(const entry *e)
{
#if defined(__GNUC__)
  __builtin_prefetch(e);
  __builtin_prefetch(e->facts.zone);
  __builtin_prefetch(e->facts.name);
  __builtin_prefetch(e->facts.problems);
#else
  (void)e;
#endif
}

void cs_node_cache_find_all(cs_node_cache *c, const char *const *names,
                            size_t n, const cs_node_facts **out)
{
  /* A pipeline AHEAD names deep: name i is hashed and its bucket's first
   * entry requested, then looked up AHEAD names later. */
  enum { AHEAD = 8 };
  uint64_t h[AHEAD];
  for (size_t i = 0; i < n + AHEAD; i++) {
    if (i >= AHEAD) {
      size_t j = i - AHEAD;
      entry *e = names[j] ? *find_slot(c, names[j], h[j % AHEAD]) : NULL;
      out[j] = e ? &e->facts : NULL;
    }
    if (i < n && names[i]) {
      h[i % AHEAD] = cs_hash_str(names[i]);
      const entry *e = c->buckets[h[i % AHEAD] & (c->nbuckets - 1)];
      if (e)
        prefetch_entry(e);
    }
  }
}

void cs_node_cache_read_end(cs_node_cache *c)
{
  pthread_rwlock_unlock(&c->lock);
}

size_t cs_node_cache_size(cs_node_cache *c)
{
  pthread_rwlock_rdlock(&c->lock);
  size_t n = c->n;
  pthread_rwlock_unlock(&c->lock);
  return n;
}

bool cs_node_cache_synced(cs_node_cache *c)
{
  pthread_rwlock_rdlock(&c->lock);
  bool s = c->synced;
  pthread_rwlock_unlock(&c->lock);
  return s;
}

static void sink_begin(void *ctx)
{
  cs_node_cache_relist_begin(ctx);
}

static cs_err sink_upsert(void *ctx, const cJSON *node)
{
  return cs_node_cache_upsert(ctx, node);
}

static void sink_remove(void *ctx, const char *name)
{
  cs_node_cache_remove(ctx, name);
}

static void sink_end(void *ctx)
{
  cs_node_cache_relist_end(ctx);
}

cs_kube_node_sink cs_node_cache_sink(cs_node_cache *c)
{
  cs_kube_node_sink s = {c, sink_begin, sink_upsert, sink_remove, sink_end};
  return s;
}
