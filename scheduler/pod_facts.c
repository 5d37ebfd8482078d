#include "scheduler/pod_facts.h"

#include <stdio.h>
#include <string.h>

#include "carbon/util/parse.h"

static const char *const gpu_resources[] = {"nvidia.com/gpu", "amd.com/gpu"};
#define NRES (sizeof(gpu_resources) / sizeof(*gpu_resources))

static void copy_member(char *dst, size_t cap, const cJSON *obj,
                        const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (cJSON_IsString(v))
    snprintf(dst, cap, "%s", v->valuestring);
}

/* The accelerators one container asks for, per resource. Requests win;
 * limits stand in for requests the API server would have defaulted (for
 * extended resources the two must be equal). */
static void container_request(cs_pod_facts *f, const cJSON *c, int index,
                              const char *kind, double out[NRES])
{
  const cJSON *res = cJSON_GetObjectItemCaseSensitive(c, "resources");
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(res, "requests");
  const cJSON *lim = cJSON_GetObjectItemCaseSensitive(res, "limits");
  for (size_t r = 0; r < NRES; r++) {
    out[r] = 0;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(req, gpu_resources[r]);
    if (!q)
      q = cJSON_GetObjectItemCaseSensitive(lim, gpu_resources[r]);
    if (!q)
      continue;
    double n;
    const char *expected;
    if (!cJSON_IsString(q) ||
        cs_parse_quantity(q->valuestring, &n, &expected) != CS_OK || n < 0 ||
        n != (double)(long long)n) {
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s[%d] %s: expected a whole number of devices such as "
                      "\"8\"",
                      kind, index, gpu_resources[r]);
      continue;
    }
    out[r] = n;
  }
}

/* Follows the scheduler's rule (resource.PodRequests): regular containers
 * and restartable init containers (sidecars) run together and add up; each
 * ordinary init container runs alone beside the sidecars started before it;
 * the pod needs the larger of the two, plus its overhead. */
static void read_gpus(const cJSON *spec, cs_pod_facts *f)
{
  double sum[NRES] = {0}, init_max[NRES] = {0}, sidecars[NRES] = {0};
  double one[NRES];
  const cJSON *c;
  int i = 0;
  const cJSON *containers =
      cJSON_GetObjectItemCaseSensitive(spec, "containers");
  if (!cJSON_IsArray(containers))
    containers = NULL;
  cJSON_ArrayForEach(c, containers)
  {
    container_request(f, c, i++, "spec.containers", one);
    for (size_t r = 0; r < NRES; r++)
      sum[r] += one[r];
  }
  i = 0;
  const cJSON *inits = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
  if (!cJSON_IsArray(inits))
    inits = NULL;
  cJSON_ArrayForEach(c, inits)
  {
    container_request(f, c, i++, "spec.initContainers", one);
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(c, "restartPolicy");
    bool sidecar =
        cJSON_IsString(policy) && strcmp(policy->valuestring, "Always") == 0;
    for (size_t r = 0; r < NRES; r++) {
      if (sidecar) {
        sidecars[r] += one[r];
        if (sidecars[r] > init_max[r])
          init_max[r] = sidecars[r];
      } else if (one[r] + sidecars[r] > init_max[r]) {
        init_max[r] = one[r] + sidecars[r];
      }
    }
  }
  const cJSON *overhead = cJSON_GetObjectItemCaseSensitive(spec, "overhead");
  for (size_t r = 0; r < NRES; r++) {
    double need = sum[r] + sidecars[r];
    if (init_max[r] > need)
      need = init_max[r];
    const cJSON *q =
        cJSON_GetObjectItemCaseSensitive(overhead, gpu_resources[r]);
    double n;
    const char *expected;
    if (cJSON_IsString(q) &&
        cs_parse_quantity(q->valuestring, &n, &expected) == CS_OK && n > 0)
      need += n;
    if (need > 0 && f->gpus == 0) {
      f->gpus = need;
      snprintf(f->gpu_resource, sizeof(f->gpu_resource), "%s",
               gpu_resources[r]);
    }
  }
}

cs_err cs_pod_facts_read(const cJSON *pod, double default_duration_s,
                         cs_pod_facts *out)
{
  memset(out, 0, sizeof(*out));
  if (!cJSON_IsObject(pod))
    return CS_EINVAL;
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
  copy_member(out->ns, sizeof(out->ns), meta, "namespace");
  copy_member(out->name, sizeof(out->name), meta, "name");
  copy_member(out->uid, sizeof(out->uid), meta, "uid");
  const cJSON *created =
      cJSON_GetObjectItemCaseSensitive(meta, "creationTimestamp");
  if (cJSON_IsString(created)) {
    const char *expected;
    if (cs_parse_rfc3339(created->valuestring, &out->created_at, &expected))
      out->created_at = 0;
  }

  read_gpus(cJSON_GetObjectItemCaseSensitive(pod, "spec"), out);

  const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
  const cJSON *dur = cJSON_GetObjectItemCaseSensitive(ann, CS_ANN_DURATION);
  out->duration_s = default_duration_s;
  out->duration_defaulted = true;
  if (dur) {
    const char *expected = "a string such as \"36h\"";
    double s;
    if (cJSON_IsString(dur) &&
        cs_parse_duration(dur->valuestring, &s, &expected) == CS_OK) {
      out->duration_s = s;
      out->duration_defaulted = false;
    } else {
      cs_problems_add(out->problems, sizeof(out->problems),
                      "annotation %s=\"%.64s\": expected %s", CS_ANN_DURATION,
                      cJSON_IsString(dur) ? dur->valuestring : "(not a string)",
                      expected);
    }
  }

  const cJSON *skip = cJSON_GetObjectItemCaseSensitive(ann, CS_ANN_SKIP);
  if (skip) {
    if (cJSON_IsString(skip) && strcmp(skip->valuestring, "true") == 0)
      out->skip = true;
    else if (!cJSON_IsString(skip) || strcmp(skip->valuestring, "false") != 0)
      cs_problems_add(out->problems, sizeof(out->problems),
                      "annotation %s=\"%.64s\": expected \"true\" or \"false\"",
                      CS_ANN_SKIP,
                      cJSON_IsString(skip) ? skip->valuestring
                                           : "(not a string)");
  }
  return CS_OK;
}
