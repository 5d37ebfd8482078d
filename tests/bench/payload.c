#include "tests/bench/payload.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Node kinds, in the proportions a mixed GPU fleet might have: the same
 * models, regions and annotations as the shared fixture's five nodes. */
typedef struct kind {
  const char *prefix;  /* name prefix */
  const char *region;  /* topology.kubernetes.io/region */
  const char *grid;    /* carbonshift.io/grid-zone label, or NULL */
  const char *product; /* nvidia.com/gpu.product, NULL: CPU node */
  const char *family;
  const char *pue; /* carbonshift.io/pue annotation, or NULL */
  int first_year;  /* hardware-installed years drawn from here */
} kind;

static const kind kinds[] = {
    {"gpu-h100-fra", "europe-west3", NULL, "NVIDIA-H100-80GB-HBM3", "hopper",
     NULL, 2023},
    {"gpu-a100-fra", "europe-west3", NULL, "NVIDIA-A100-SXM4-80GB", "ampere",
     NULL, 2020},
    {"gpu-v100-osl", "europe-north2", "NO", "Tesla-V100-SXM2-32GB", "volta",
     NULL, 2018},
    {"gpu-l4-mad", "europe-southwest1", NULL, "NVIDIA-L4", "ada-lovelace",
     "1.08", 2022},
    {"cpu-only-fra", "europe-west3", NULL, NULL, NULL, NULL, 2019},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const teams[] = {"ml", "infra", "data", "serving"};

/* splitmix64: a fixed sequence per node, so payloads are reproducible. */
static uint64_t next(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void hex(char *out, size_t nbytes, uint64_t *s)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < nbytes; i++) {
    uint64_t v = next(s);
    out[2 * i] = digits[v & 15];
    out[2 * i + 1] = digits[(v >> 4) & 15];
  }
  out[2 * nbytes] = '\0';
}

void bp_node_name(size_t i, char *out, size_t cap)
{
  snprintf(out, cap, "%s-%05zu", kinds[i % NKINDS].prefix, i);
}

static void str_pair(cs_buf *b, const char *key, const char *v)
{
  cs_json_str(b, key, v);
}

static void condition(cs_buf *b, const char *type, const char *status,
                      const char *reason, const char *message)
{
  cs_json_open(b, NULL, '{');
  str_pair(b, "type", type);
  str_pair(b, "status", status);
  str_pair(b, "lastHeartbeatTime", "2026-11-22T08:00:00Z");
  str_pair(b, "lastTransitionTime", "2026-11-22T08:00:00Z");
  str_pair(b, "reason", reason);
  str_pair(b, "message", message);
  cs_json_close(b, '}');
}

static void resources(cs_buf *b, const char *key, const kind *k, bool alloc)
{
  cs_json_open(b, key, '{');
  str_pair(b, "cpu", alloc ? "95500m" : "96");
  str_pair(b, "memory", alloc ? "1045966180Ki" : "1056451940Ki");
  str_pair(b, "pods", "110");
  str_pair(b, "ephemeral-storage", "3750770180Ki");
  str_pair(b, "hugepages-1Gi", "0");
  str_pair(b, "hugepages-2Mi", "0");
  if (k->product)
    str_pair(b, "nvidia.com/gpu", "8");
  cs_json_close(b, '}');
}

void bp_node(cs_buf *b, size_t i)
{
  const kind *k = &kinds[i % NKINDS];
  uint64_t s = 0x5eed0000ull + i;
  char name[64], t[256], uid[40], h[129];
  bp_node_name(i, name, sizeof(name));
  hex(h, 16, &s);
  snprintf(uid, sizeof(uid), "%.8s-%.4s-4%.3s-8%.3s-%.12s", h, h + 8, h + 12,
           h + 15, h + 18);

  cs_json_open(b, NULL, '{');
  cs_json_open(b, "metadata", '{');
  str_pair(b, "name", name);
  str_pair(b, "uid", uid);
  snprintf(t, sizeof(t), "%" PRIu64, 480000 + (uint64_t)i);
  str_pair(b, "resourceVersion", t);
  str_pair(b, "creationTimestamp", "2025-01-10T12:00:00Z");
  cs_json_open(b, "labels", '{');
  str_pair(b, "kubernetes.io/arch", "amd64");
  str_pair(b, "kubernetes.io/os", "linux");
  str_pair(b, "kubernetes.io/hostname", name);
  str_pair(b, "node.kubernetes.io/instance-type", "bare-metal");
  str_pair(b, "topology.kubernetes.io/region", k->region);
  snprintf(t, sizeof(t), "%s-%c", k->region, (char)('a' + next(&s) % 3));
  str_pair(b, "topology.kubernetes.io/zone", t);
  if (k->grid)
    str_pair(b, "carbonshift.io/grid-zone", k->grid);
  if (k->product) {
    str_pair(b, "nvidia.com/gpu.present", "true");
    str_pair(b, "nvidia.com/gpu.product", k->product);
    str_pair(b, "nvidia.com/gpu.count", "8");
    str_pair(b, "nvidia.com/gpu.memory", "81559");
    str_pair(b, "nvidia.com/cuda.driver.major", "560");
    str_pair(b, "nvidia.com/gpu.family", k->family);
  }
  cs_json_close(b, '}');
  cs_json_open(b, "annotations", '{');
  str_pair(b, "node.alpha.kubernetes.io/ttl", "0");
  str_pair(b, "volumes.kubernetes.io/controller-managed-attach-detach", "true");
  snprintf(t, sizeof(t), "%d-%02d", k->first_year + (int)(next(&s) % 3),
           1 + (int)(next(&s) % 12));
  str_pair(b, "carbonshift.io/hardware-installed", t);
  if (k->pue)
    str_pair(b, "carbonshift.io/pue", k->pue);
  cs_json_close(b, '}');
  cs_json_close(b, '}');

  cs_json_open(b, "spec", '{');
  snprintf(t, sizeof(t), "10.%zu.%zu.0/24", 64 + i / 65536, (i / 256) % 256);
  str_pair(b, "podCIDR", t);
  cs_json_open(b, "podCIDRs", '[');
  str_pair(b, NULL, t);
  cs_json_close(b, ']');
  cs_json_open(b, "taints", '[');
  if (k->product) {
    cs_json_open(b, NULL, '{');
    str_pair(b, "key", "nvidia.com/gpu");
    str_pair(b, "value", "present");
    str_pair(b, "effect", "NoSchedule");
    cs_json_close(b, '}');
  }
  cs_json_close(b, ']');
  cs_json_close(b, '}');

  cs_json_open(b, "status", '{');
  resources(b, "capacity", k, false);
  resources(b, "allocatable", k, true);
  cs_json_open(b, "conditions", '[');
  condition(b, "MemoryPressure", "False", "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available");
  condition(b, "DiskPressure", "False", "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure");
  condition(b, "PIDPressure", "False", "KubeletHasSufficientPID",
            "kubelet has sufficient PID available");
  condition(b, "Ready", "True", "KubeletReady",
            "kubelet is posting ready status");
  cs_json_close(b, ']');
  cs_json_open(b, "addresses", '[');
  cs_json_open(b, NULL, '{');
  str_pair(b, "type", "InternalIP");
  snprintf(t, sizeof(t), "10.%zu.%zu.%zu", i / 65536, (i / 256) % 256, i % 256);
  str_pair(b, "address", t);
  cs_json_close(b, '}');
  cs_json_open(b, NULL, '{');
  str_pair(b, "type", "Hostname");
  str_pair(b, "address", name);
  cs_json_close(b, '}');
  cs_json_close(b, ']');
  cs_json_open(b, "daemonEndpoints", '{');
  cs_json_open(b, "kubeletEndpoint", '{');
  cs_json_int(b, "Port", 10250);
  cs_json_close(b, '}');
  cs_json_close(b, '}');
  cs_json_open(b, "nodeInfo", '{');
  hex(h, 16, &s);
  str_pair(b, "machineID", h);
  hex(h, 16, &s);
  str_pair(b, "systemUUID", h);
  hex(h, 16, &s);
  str_pair(b, "bootID", h);
  str_pair(b, "kernelVersion", "6.1.0-27-amd64");
  str_pair(b, "osImage", "Debian GNU/Linux 12 (bookworm)");
  str_pair(b, "containerRuntimeVersion", "containerd://1.7.22");
  str_pair(b, "kubeletVersion", "v1.34.2");
  str_pair(b, "kubeProxyVersion", "");
  str_pair(b, "operatingSystem", "linux");
  str_pair(b, "architecture", "amd64");
  cs_json_close(b, '}');
  cs_json_open(b, "images", '[');
  size_t nimages = 40 + next(&s) % 8;
  for (size_t j = 0; j < nimages; j++) {
    const char *team = teams[next(&s) % 4];
    cs_json_open(b, NULL, '{');
    cs_json_open(b, "names", '[');
    hex(h, 32, &s);
    snprintf(t, sizeof(t), "registry.example.org/%s/img%zu@sha256:%s", team, j,
             h);
    str_pair(b, NULL, t);
    snprintf(t, sizeof(t), "registry.example.org/%s/img%zu:v%d.%d", team, j,
             (int)(next(&s) % 10), (int)(next(&s) % 20));
    str_pair(b, NULL, t);
    cs_json_close(b, ']');
    cs_json_int(b, "sizeBytes", (int64_t)(50000000 + next(&s) % 8000000000ull));
    cs_json_close(b, '}');
  }
  cs_json_close(b, ']');
  cs_json_close(b, '}');
  cs_json_close(b, '}');
}

/* The shared fixture's training pod, compact: 8 GPUs for an expected 36 h,
 * movable by up to 12 h, with a 120 kg budget. */
static const char pod_json[] =
    "{\"metadata\":{\"name\":\"llm-pretrain-7b-x2k9q\",\"generateName\":"
    "\"llm-pretrain-7b-\",\"namespace\":\"ml-research\",\"uid\":\"7c1a2c5e-"
    "3f7d-4d0e-9c1b-6a0f3e2b9d11\",\"resourceVersion\":\"481203\","
    "\"creationTimestamp\":\"2026-11-20T09:12:44Z\",\"labels\":{\"batch."
    "kubernetes.io/job-name\":\"llm-pretrain-7b\",\"job-name\":\"llm-"
    "pretrain-7b\",\"app\":\"trainer\"},\"annotations\":{\"carbonshift.io/"
    "expected-duration\":\"36h\",\"carbonshift.io/max-delay\":\"12h\","
    "\"carbonshift.io/carbon-budget\":\"120kg\"},\"ownerReferences\":[{"
    "\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":\"llm-pretrain-"
    "7b\",\"uid\":\"0d6d1c52-6a3e-4b7e-9a59-2f7a3c3e1b10\",\"controller\":"
    "true,\"blockOwnerDeletion\":true}]},\"spec\":{\"containers\":[{\"name\":"
    "\"trainer\",\"image\":\"registry.example.org/ml/trainer:2.4.1\","
    "\"command\":[\"torchrun\",\"--nproc-per-node\",\"8\",\"train.py\"],"
    "\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"8\",\"memory\":"
    "\"480Gi\"},\"requests\":{\"cpu\":\"48\",\"memory\":\"480Gi\",\"nvidia."
    "com/gpu\":\"8\"}},\"terminationMessagePath\":\"/dev/termination-log\","
    "\"terminationMessagePolicy\":\"File\",\"imagePullPolicy\":"
    "\"IfNotPresent\"}],\"restartPolicy\":\"Never\","
    "\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":\"ClusterFirst\","
    "\"serviceAccountName\":\"default\",\"securityContext\":{},"
    "\"schedulerName\":\"carbonshift-scheduler\",\"tolerations\":[{\"key\":"
    "\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"},{"
    "\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
    "\"effect\":\"NoExecute\",\"tolerationSeconds\":300}],\"priority\":0,"
    "\"enableServiceLinks\":true,\"preemptionPolicy\":"
    "\"PreemptLowerPriority\"},\"status\":{\"phase\":\"Pending\","
    "\"qosClass\":\"Burstable\"}}";

void bp_pod(cs_buf *b)
{
  cs_json_raw(b, "Pod", pod_json, sizeof(pod_json) - 1);
}

void bp_args_nodes(cs_buf *b, size_t n)
{
  cs_json_open(b, NULL, '{');
  bp_pod(b);
  cs_json_open(b, "Nodes", '{');
  cs_json_raw(b, "metadata", "{}", 2);
  cs_json_open(b, "items", '[');
  for (size_t i = 0; i < n; i++)
    bp_node(b, i);
  cs_json_close(b, ']');
  cs_json_close(b, '}');
  cs_json_null(b, "NodeNames");
  cs_json_close(b, '}');
}

void bp_args_names(cs_buf *b, size_t n)
{
  char name[64];
  cs_json_open(b, NULL, '{');
  bp_pod(b);
  cs_json_null(b, "Nodes");
  cs_json_open(b, "NodeNames", '[');
  for (size_t i = 0; i < n; i++) {
    bp_node_name(i, name, sizeof(name));
    cs_json_str(b, NULL, name);
  }
  cs_json_close(b, ']');
  cs_json_close(b, '}');
}

void bp_node_list(cs_buf *b, size_t from, size_t to, const char *rv,
                  const char *cont)
{
  cs_json_open(b, NULL, '{');
  cs_json_str(b, "apiVersion", "v1");
  cs_json_str(b, "kind", "NodeList");
  cs_json_open(b, "metadata", '{');
  cs_json_str(b, "resourceVersion", rv);
  if (cont)
    cs_json_str(b, "continue", cont);
  cs_json_close(b, '}');
  cs_json_open(b, "items", '[');
  for (size_t i = from; i < to; i++)
    bp_node(b, i);
  cs_json_close(b, ']');
  cs_json_close(b, '}');
}
