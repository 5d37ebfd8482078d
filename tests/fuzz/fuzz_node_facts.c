/* fuzz_node_facts: a Node object (JSON) through cs_node_facts_read, which
 * reads its labels, the carbonshift.io annotations and the allocatable
 * accelerators. Invariants: the facts are finite and in range, the zone and
 * labels are terminated, and the GPU model, when set, is a catalog entry. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "scheduler/node_facts.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cJSON *node = cJSON_ParseWithLength((const char *)data, size);
  if (!node)
    return 0;
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  const cJSON *alloc = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(node, "status"), "allocatable");
  const cs_facts_params *p = fz_facts_params();
  cs_node_facts f;
  if (cs_node_facts_read(p, meta, alloc, &f) == CS_OK) {
    FZ_ASSERT(f.name[0] && memchr(f.name, 0, sizeof(f.name)));
    FZ_ASSERT(memchr(f.zone, 0, sizeof(f.zone)));
    FZ_ASSERT(memchr(f.gpu_label, 0, sizeof(f.gpu_label)));
    FZ_ASSERT(memchr(f.problems, 0, sizeof(f.problems)));
    FZ_ASSERT(isfinite(f.gpus) && f.gpus >= 0);
    FZ_ASSERT(isfinite(f.lifetime_s) && f.lifetime_s > 0);
    FZ_ASSERT(isfinite(f.embodied_kg) && f.embodied_kg >= 0);
    FZ_ASSERT(isfinite(f.pue) && f.pue >= 1);
    FZ_ASSERT(f.zone_source <= CS_ZONE_FROM_DEFAULT);
    FZ_ASSERT(f.zone_source == CS_ZONE_NONE || f.zone[0]);
    if (f.gpu) {
      bool found = false;
      for (size_t i = 0; i < cs_gpu_catalog_count(p->catalog); i++)
        found |= cs_gpu_catalog_at(p->catalog, i) == f.gpu;
      FZ_ASSERT(found);
    }
  }
  cJSON_Delete(node);
  return 0;
}
