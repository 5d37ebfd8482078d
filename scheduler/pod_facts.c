#include "scheduler/pod_facts.h"

#include <math.h>
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

/* Reads q, a GPU quantity at where's `resource`, into *n: a whole number
 * of devices from 0 to CS_GPU_COUNT_MAX. Anything else is a problem that
 * shows the value, and *n is 0: a fraction or a typo never passes for a
 * count, nor silently for none. */
static void gpu_count(cs_pod_facts *f, const cJSON *q, const char *where,
                      const char *resource, double *n)
{
  const char *expected;
  bool str = cJSON_IsString(q);
  if (str && cs_parse_quantity(q->valuestring, n, &expected) == CS_OK &&
      *n >= 0 && *n <= CS_GPU_COUNT_MAX && *n == trunc(*n))
    return;
  *n = 0;
  cs_problems_add(f->problems, sizeof(f->problems),
                  "%s %s=%s%s%s: expected a whole number of devices such as "
                  "\"8\"",
                  where, resource, str ? "\"" : "",
                  str ? CS_SHOWN(q->valuestring) : "(not a string)",
                  str ? "\"" : "");
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
    char where[64];
    snprintf(where, sizeof(where), "%s[%d]", kind, index);
    gpu_count(f, q, where, gpu_resources[r], &out[r]);
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
    double n = 0;
    if (q)
      gpu_count(f, q, "spec.overhead", gpu_resources[r], &n);
    need += n;
    if (need > 0 && f->gpus == 0) {
      f->gpus = need;
      snprintf(f->gpu_resource, sizeof(f->gpu_resource), "%s",
               gpu_resources[r]);
    }
  }
}

const char *cs_on_exceeded_name(cs_on_exceeded v)
{
  switch (v) {
  case CS_ON_EXCEEDED_REJECT:
    return "reject";
  case CS_ON_EXCEEDED_ALLOW:
    return "allow";
  case CS_ON_EXCEEDED_WAIT:
    break;
  }
  return "wait";
}

/* The string value of an annotation; NULL when absent. A value that is not a
 * string is recorded as a problem. */
static const char *annotation(cs_pod_facts *f, const cJSON *ann,
                              const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, key);
  if (!v)
    return NULL;
  if (!cJSON_IsString(v)) {
    cs_problems_add(f->problems, sizeof(f->problems),
                    "annotation %s: expected a string value", key);
    return NULL;
  }
  return v->valuestring;
}

static void bad_annotation(cs_pod_facts *f, const char *key, const char *v,
                           const char *expected)
{
  cs_problems_add(f->problems, sizeof(f->problems),
                  "annotation %s=\"%s\": expected %s", key, CS_SHOWN(v),
                  expected);
}

/* The annotations that shape time shifting and budgets. */
static void read_scheduling(cs_pod_facts *f, const cJSON *ann)
{
  const char *expected;
  const char *v = annotation(f, ann, CS_ANN_MAX_DELAY);
  if (v && cs_parse_duration(v, &f->max_delay_s, &expected) != CS_OK)
    bad_annotation(f, CS_ANN_MAX_DELAY, v, expected);

  /* 0 means "no deadline" to the policy: a time at or before the epoch
   * (1970-01-01T00:00:00Z, or earlier with an offset) would silently be
   * none, so it is refused like any other bad time. */
  v = annotation(f, ann, CS_ANN_DEADLINE);
  if (v && cs_parse_rfc3339(v, &f->deadline, &expected) != CS_OK) {
    f->deadline = 0;
    bad_annotation(f, CS_ANN_DEADLINE, v, expected);
  } else if (v && f->deadline <= 0) {
    f->deadline = 0;
    bad_annotation(f, CS_ANN_DEADLINE, v,
                   "an RFC 3339 time after the Unix epoch");
  }

  v = annotation(f, ann, CS_ANN_BUDGET);
  if (v && cs_parse_mass(v, &f->budget_g, &expected) != CS_OK) {
    f->budget_g = 0;
    bad_annotation(f, CS_ANN_BUDGET, v, expected);
  }

  v = annotation(f, ann, CS_ANN_ON_EXCEEDED);
  if (v) {
    if (strcmp(v, "wait") == 0)
      f->on_exceeded = CS_ON_EXCEEDED_WAIT;
    else if (strcmp(v, "reject") == 0)
      f->on_exceeded = CS_ON_EXCEEDED_REJECT;
    else if (strcmp(v, "allow") == 0)
      f->on_exceeded = CS_ON_EXCEEDED_ALLOW;
    else
      bad_annotation(f, CS_ANN_ON_EXCEEDED, v, "one of wait, reject or allow");
  }

  /* Our own annotation: a bad value is a problem but not the user's; the
   * plan is simply made again. */
  v = annotation(f, ann, CS_ANN_PLANNED_START);
  if (v && cs_parse_rfc3339(v, &f->planned_start, &expected) != CS_OK)
    f->planned_start = 0;
}

/* The carbonshift.io/ annotations a Pod may carry, without the prefix:
 * those the user sets, then those carbonshift writes. */
#define ANN_PREFIX "carbonshift.io/"
static const char *const pod_keys[] = {
    "expected-duration",  "max-delay", "deadline",      "carbon-budget",
    "on-budget-exceeded", "skip",      "planned-start", "expected-saving"};
static const char *const node_keys[] = {
    "grid-zone",         "gpu-model",       "hardware-installed",
    "expected-lifetime", "embodied-kgco2e", "pue"};

/* `s` lower-cased with '_', '.' and ' ' read as '-': how a key is
 * mistyped without being another key. */
static void normalize_key(const char *s, char *out, size_t cap)
{
  size_t n = 0;
  for (; *s && n + 1 < cap; s++) {
    char c = *s;
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    else if (c == '_' || c == '.' || c == ' ')
      c = '-';
    out[n++] = c;
  }
  out[n] = '\0';
}

/* Whether `part` (4 bytes or more) begins `whole` (at_end false) or ends
 * it. */
static bool begins_or_ends(const char *whole, const char *part, bool at_end)
{
  size_t w = strlen(whole), p = strlen(part);
  return p >= 4 && p < w &&
         strncmp(at_end ? whole + w - p : whole, part, p) == 0;
}

/* The Pod annotation `typed` (without the prefix) was most likely meant to
 * be, or NULL. In order: the same key but for case and separators; a key
 * it begins ("on-budget"), then one it ends ("budget"); the key fewest edits
 * away, at most a third of its length ("max-dealy"; not "tip" for "skip"); a
 * key it contains or that contains it. */
static const char *meant_key(const char *typed)
{
  char t[80];
  normalize_key(typed, t, sizeof(t));
  const size_t nkeys = sizeof(pod_keys) / sizeof(pod_keys[0]);
  for (size_t i = 0; i < nkeys; i++)
    if (strcmp(t, pod_keys[i]) == 0)
      return pod_keys[i];
  for (int at_end = 0; at_end < 2; at_end++)
    for (size_t i = 0; i < nkeys; i++)
      if (begins_or_ends(pod_keys[i], t, at_end))
        return pod_keys[i];
  const char *best = NULL;
  size_t best_d = SIZE_MAX, limit = strlen(t) / 3;
  for (size_t i = 0; i < nkeys; i++) {
    size_t d = cs_edit_distance(t, pod_keys[i]);
    if (d <= (limit ? limit : 1) && d < best_d) {
      best_d = d;
      best = pod_keys[i];
    }
  }
  if (best)
    return best;
  for (size_t i = 0; i < nkeys; i++)
    if (strlen(t) >= 4 && (strstr(pod_keys[i], t) || strstr(t, pod_keys[i])))
      return pod_keys[i];
  return NULL;
}

/* A carbonshift.io/ annotation carbonshift does not read on Pods is a
 * problem like a malformed value: a mistyped carbon-budget silently
 * ignored would let the job emit without its limit. */
static void check_unknown_keys(cs_pod_facts *f, const cJSON *ann)
{
  const cJSON *a;
  cJSON_ArrayForEach(a, ann)
  {
    const char *k = a->string;
    if (!k || strncmp(k, ANN_PREFIX, strlen(ANN_PREFIX)) != 0)
      continue;
    const char *rest = k + strlen(ANN_PREFIX);
    bool known = false, on_nodes = false;
    for (size_t i = 0; i < sizeof(pod_keys) / sizeof(pod_keys[0]); i++)
      known |= strcmp(rest, pod_keys[i]) == 0;
    for (size_t i = 0; i < sizeof(node_keys) / sizeof(node_keys[0]); i++)
      on_nodes |= strcmp(rest, node_keys[i]) == 0;
    if (known)
      continue;
    const char *meant = on_nodes ? NULL : meant_key(rest);
    if (on_nodes)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %.80s: read on Nodes, not on Pods", k);
    else if (meant)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %.80s: not one carbonshift reads (did you "
                      "mean " ANN_PREFIX "%s?)",
                      k, meant);
    else
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %.80s: not one carbonshift reads (Pods take "
                      "expected-duration, max-delay, deadline, carbon-budget, "
                      "on-budget-exceeded and skip)",
                      k);
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
  const char *created_expected = NULL;
  /* As for the deadline, 0 means none: a time at or before the epoch is
   * none too (reported below when a max-delay needs it), not a start
   * that makes the slack look spent. */
  if (cJSON_IsString(created) &&
      (cs_parse_rfc3339(created->valuestring, &out->created_at,
                        &created_expected) ||
       out->created_at <= 0))
    out->created_at = 0;

  const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
  read_gpus(spec, out);
  const cJSON *claims =
      cJSON_GetObjectItemCaseSensitive(spec, "resourceClaims");
  out->resource_claims = cJSON_IsArray(claims) ? cJSON_GetArraySize(claims) : 0;
  copy_member(out->nominated_node, sizeof(out->nominated_node),
              cJSON_GetObjectItemCaseSensitive(pod, "status"),
              "nominatedNodeName");

  const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
  /* As for nodes: annotations that are not an object (nor null) are a
   * problem, not "none", which would drop a budget or a deadline without
   * a word. */
  if (ann && !cJSON_IsObject(ann) && !cJSON_IsNull(ann)) {
    cs_problems_add(out->problems, sizeof(out->problems),
                    "metadata.annotations: expected an object");
    ann = NULL;
  }
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
                      "annotation %s=\"%s\": expected %s", CS_ANN_DURATION,
                      cJSON_IsString(dur) ? CS_SHOWN(dur->valuestring)
                                          : "(not a string)",
                      expected);
    }
  }

  read_scheduling(out, ann);
  /* A budget and a deadline are judged on the run's length: with the
   * default one assumed, the pod could be let through over its budget or
   * after its latest start, silently. (A malformed duration is a problem
   * already.) A max-delay alone only picks a window, and says when its
   * runtime is assumed (policy.c). */
  if (!dur && out->budget_g > 0)
    cs_problems_add(out->problems, sizeof(out->problems),
                    "annotation %s needs %s as well: the run's emissions, "
                    "checked against the budget, depend on its length",
                    CS_ANN_BUDGET, CS_ANN_DURATION);
  if (!dur && out->deadline > 0)
    cs_problems_add(out->problems, sizeof(out->problems),
                    "annotation %s needs %s as well: the latest start is the "
                    "deadline less the run's length",
                    CS_ANN_DEADLINE, CS_ANN_DURATION);
  /* The API server always sets the creation time; without one (a request
   * made by hand), a max-delay would have nothing to count from. */
  if (out->max_delay_s > 0 && !out->created_at) {
    const char *what = "annotation " CS_ANN_MAX_DELAY
                       " counts from metadata.creationTimestamp, which is";
    if (cJSON_IsString(created))
      cs_problems_add(
          out->problems, sizeof(out->problems), "%s \"%s\": expected %s", what,
          CS_SHOWN(created->valuestring),
          created_expected ? created_expected : "a time after the Unix epoch");
    else
      cs_problems_add(out->problems, sizeof(out->problems), "%s %s", what,
                      created ? "not a string" : "missing");
  }

  const cJSON *skip = cJSON_GetObjectItemCaseSensitive(ann, CS_ANN_SKIP);
  if (skip) {
    if (cJSON_IsString(skip) && strcmp(skip->valuestring, "true") == 0)
      out->skip = true;
    else if (!cJSON_IsString(skip) || strcmp(skip->valuestring, "false") != 0)
      cs_problems_add(out->problems, sizeof(out->problems),
                      "annotation %s=\"%s\": expected \"true\" or \"false\"",
                      CS_ANN_SKIP,
                      cJSON_IsString(skip) ? CS_SHOWN(skip->valuestring)
                                           : "(not a string)");
  }
  check_unknown_keys(out, ann);
  return CS_OK;
}
