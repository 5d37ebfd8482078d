/* fuzz_node_facts: a Node object (JSON) through cs_node_facts_read, which
 * reads its labels, the carbonshift.io annotations and the allocatable
 * accelerators from the cJSON tree, and, as an item of a full-object
 * request, through the codec, which collects the same fields straight from
 * the bytes. Invariants: the facts are finite and in range, the zone and
 * labels are terminated, the GPU model, when set, is a catalog entry, and
 * both ways give the same facts. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "carbon/util/buf.h"
#include "carbon/util/jtree.h"
#include "scheduler/codec.h"
#include "scheduler/node_facts.h"
#include "tests/fuzz/fuzzutil.h"

/* The input as the only item of a request, through the codec. */
static void check_scanned(const uint8_t *data, size_t size)
{
  static const char head[] = "{\"Pod\":{},\"Nodes\":{\"items\":[";
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_buf_append(&b, head, sizeof(head) - 1);
  cs_buf_append(&b, data, size);
  cs_buf_puts(&b, "]}}");
  cs_wire_request r;
  char err[256];
  if (cs_codec_decode(b.data, b.len, 64, &r, err, sizeof(err)) == CS_OK) {
    for (size_t i = 0; i < r.nnodes; i++)
      fz_check_node_fields(r.nodes[i].raw, r.nodes[i].raw_len, &r.fields[i]);
    cs_codec_request_free(&r);
  }
  cs_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  check_scanned(data, size);
  cJSON *node = cs_jtree_parse((const char *)data, size, NULL);
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
