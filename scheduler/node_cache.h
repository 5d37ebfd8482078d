/* node_cache.h: the facts of every Node in the cluster, kept current by the
 * Kubernetes watch (scheduler/kube.h), so that names-only extender calls
 * (`nodeCacheCapable: true`) can be answered without Node objects. Facts are
 * computed once per Node change, not per request.
 * Thread-safe: yes; readers never wait on network I/O (updates take a write
 * lock only to swap entries).
 * Ownership: the cache copies what it is given; cs_node_cache_find lends
 * its facts for the time of a read. The params must outlive the cache. */
#ifndef CS_NODE_CACHE_H
#define CS_NODE_CACHE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "scheduler/kube.h"
#include "scheduler/node_facts.h"

typedef struct cs_node_cache cs_node_cache;

cs_node_cache *cs_node_cache_new(const cs_facts_params *params);
void cs_node_cache_free(cs_node_cache *c);

/* Adds or replaces a Node (a full v1.Node object). */
cs_err cs_node_cache_upsert(cs_node_cache *c, const cJSON *node) CS_MUST_USE;
void cs_node_cache_remove(cs_node_cache *c, const char *name);
/* Replaces the whole content with the items of a NodeList (after a list or
 * relist) and marks the cache synced. */
cs_err cs_node_cache_replace(cs_node_cache *c, const cJSON *items) CS_MUST_USE;

/* A relist in steps, for lists that come in pages: after relist_begin,
 * upserts mark Nodes as seen; relist_end removes every Node not seen since
 * relist_begin and marks the cache synced. */
void cs_node_cache_relist_begin(cs_node_cache *c);
void cs_node_cache_relist_end(cs_node_cache *c);

/* A sink that feeds the Node watch (cs_kube_start_node_watch) into the
 * cache; the cache must outlive the watch. */
cs_kube_node_sink cs_node_cache_sink(cs_node_cache *c);

/* Lookups without a copy (a names-only call looks up thousands): between
 * read_begin and read_end the cache does not change, and the facts
 * cs_node_cache_find returns (NULL: not known) stay valid and must not be kept
 * after read_end. Updates from the watch wait meanwhile, and readers arriving
 * after a waiting update wait for it, so an update is never starved; hold it
 * for a computation, never for I/O, and never call other cache functions in
 * between. */
void cs_node_cache_read_begin(cs_node_cache *c);
const cs_node_facts *cs_node_cache_find(cs_node_cache *c, const char *name);
/* out[i] = cs_node_cache_find(c, names[i]) for i < n, faster for many
 * names: the memory of the next few names' entries is requested while one
 * is compared, so the cache misses of a 5,000-name call overlap instead of
 * following one another. Same rules as cs_node_cache_find. */
void cs_node_cache_find_all(cs_node_cache *c, const char *const *names,
                            size_t n, const cs_node_facts **out);
void cs_node_cache_read_end(cs_node_cache *c);
size_t cs_node_cache_size(cs_node_cache *c);
/* True once a full list has been loaded. */
bool cs_node_cache_synced(cs_node_cache *c);

#endif
