/* fuzz_pod_facts: a Pod object (JSON) through cs_pod_facts_read, which reads
 * its resources and the carbonshift.io annotations. Invariants: the facts
 * are finite and non-negative, strings are terminated, a malformed
 * annotation is reported as a problem naming it. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "carbon/util/jtree.h"
#include "scheduler/pod_facts.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cJSON *pod = cs_jtree_parse((const char *)data, size, NULL);
  if (!pod)
    return 0;
  cs_pod_facts f;
  cs_err rc = cs_pod_facts_read(pod, 3600, &f);
  if (!cJSON_IsObject(pod)) {
    FZ_ASSERT(rc == CS_EINVAL);
  } else if (rc == CS_OK) {
    FZ_ASSERT(memchr(f.ns, 0, sizeof(f.ns)) &&
              memchr(f.name, 0, sizeof(f.name)));
    FZ_ASSERT(memchr(f.uid, 0, sizeof(f.uid)));
    FZ_ASSERT(memchr(f.problems, 0, sizeof(f.problems)));
    FZ_ASSERT(isfinite(f.gpus) && f.gpus >= 0);
    FZ_ASSERT(isfinite(f.duration_s) && f.duration_s > 0);
    FZ_ASSERT(isfinite(f.max_delay_s) && f.max_delay_s >= 0);
    FZ_ASSERT(isfinite(f.budget_g) && f.budget_g >= 0);
    FZ_ASSERT(f.on_exceeded <= CS_ON_EXCEEDED_ALLOW);
    FZ_ASSERT(cs_on_exceeded_name(f.on_exceeded) != NULL);
  }
  cJSON_Delete(pod);
  return 0;
}
