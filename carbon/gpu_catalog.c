#include "carbon/gpu_catalog.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"

/* Hard caps: configuration extends the catalog, it must not grow it without
 * bound. */
#define MAX_MODELS 256
#define MAX_LABELS 32 /* per model */
#define MAX_NAME 64
#define MAX_LABEL 128

/* Built-in models. Every figure comes from the vendor's datasheet named in
 * docs/gpus.md; tensor_tflops is the dense (no sparsity) FP16/BF16 tensor
 * figure, i.e. half of the "with sparsity" number NVIDIA prints for Ampere
 * and later. embodied_kg stays 0 (the configured default) because no source
 * gives a per-card figure that excludes the rest of the server; see
 * docs/gpus.md. Labels are the node-label values NVIDIA GPU Feature Discovery
 * (`nvidia.com/gpu.product`: the NVML device name with spaces turned into
 * '-') and AMD's node labeller (`amd.com/gpu.product-name`: the sysfs
 * product_name with spaces turned into '_') write for the model. */
typedef struct builtin_model {
  const char *name, *vendor;
  double power_w, tensor_tflops, memory_gb;
  const char *labels[6];
} builtin_model;

static const builtin_model builtin_models[] = {
    {"V100-SXM2-32GB", "NVIDIA", 300, 125, 32, {"Tesla-V100-SXM2-32GB"}},
    {"V100-PCIE-32GB", "NVIDIA", 250, 112, 32, {"Tesla-V100-PCIE-32GB"}},
    {"T4", "NVIDIA", 70, 65, 16, {"Tesla-T4"}},
    {"A100-SXM4-40GB", "NVIDIA", 400, 312, 40, {"NVIDIA-A100-SXM4-40GB"}},
    {"A100-SXM4-80GB", "NVIDIA", 400, 312, 80, {"NVIDIA-A100-SXM4-80GB"}},
    {"A100-PCIE-40GB", "NVIDIA", 250, 312, 40, {"NVIDIA-A100-PCIE-40GB"}},
    {"A100-PCIE-80GB", "NVIDIA", 300, 312, 80, {"NVIDIA-A100-80GB-PCIe"}},
    {"A10", "NVIDIA", 150, 125, 24, {"NVIDIA-A10"}},
    {"A30", "NVIDIA", 165, 165, 24, {"NVIDIA-A30"}},
    {"A40", "NVIDIA", 300, 149.7, 48, {"NVIDIA-A40"}},
    {"L4", "NVIDIA", 72, 121, 24, {"NVIDIA-L4"}},
    {"L40S", "NVIDIA", 350, 362, 48, {"NVIDIA-L40S"}},
    {"H100-SXM5-80GB",
     "NVIDIA",
     700,
     989,
     80,
     {"NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-SXM5-80GB"}},
    {"H100-PCIE-80GB", "NVIDIA", 350, 756, 80, {"NVIDIA-H100-PCIe"}},
    {"H100-NVL-94GB", "NVIDIA", 400, 835, 94, {"NVIDIA-H100-NVL"}},
    {"H200-SXM-141GB",
     "NVIDIA",
     700,
     989,
     141,
     {"NVIDIA-H200", "NVIDIA-H200-141GB-HBM3e"}},
    {"B200", "NVIDIA", 1000, 2250, 180, {"NVIDIA-B200"}},
    {"MI250X", "AMD", 560, 383, 128, {"AMD_Instinct_MI250X"}},
    {"MI300X",
     "AMD",
     750,
     1307.4,
     192,
     {"AMD_Instinct_MI300X", "AMD_Instinct_MI300X_OAM"}},
    {"MI325X",
     "AMD",
     1000,
     1307.4,
     256,
     {"AMD_Instinct_MI325X", "AMD_Instinct_MI325X_OAM"}},
};

/* Built-in models whose card shows more than one schedulable device. */
static const struct {
  const char *name;
  unsigned devices;
} multi_device_models[] = {
    {"MI250X", 2}, /* two GCDs, each an amd.com/gpu (AMD's device plugin) */
};

static unsigned builtin_devices_per_card(const char *name)
{
  for (size_t i = 0;
       i < sizeof(multi_device_models) / sizeof(multi_device_models[0]); i++)
    if (!strcmp(multi_device_models[i].name, name))
      return multi_device_models[i].devices;
  return 0;
}

typedef struct entry {
  cs_gpu_model m; /* m.name and m.vendor point into the strings below */
  char *name, *vendor;
  char *labels[MAX_LABELS];
  size_t nlabels;
} entry;

struct cs_gpu_catalog {
  /* Entries are allocated one by one so that pointers handed out stay valid
   * when the array of pointers grows. */
  entry *models[MAX_MODELS];
  size_t n;
};

/* Label values differ only in case and in the separator the tool chose
 * ('-' for GFD, '_' for AMD, ' ' in NVML and sysfs names). */
static int norm_char(char c)
{
  if (c == '_' || c == ' ')
    return '-';
  return tolower((unsigned char)c);
}

static bool same_name(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  if (alen != blen)
    return false;
  for (size_t i = 0; i < alen; i++)
    if (norm_char(a[i]) != norm_char(b[i]))
      return false;
  return true;
}

/* Position of `needle` (already lower case, '-' separators) in s[0..len),
 * or -1. */
static long find_ci(const char *s, size_t len, const char *needle)
{
  size_t nl = strlen(needle);
  for (size_t i = 0; i + nl <= len; i++) {
    size_t j = 0;
    while (j < nl && norm_char(s[i + j]) == needle[j])
      j++;
    if (j == nl)
      return (long)i;
  }
  return -1;
}

static entry *find_entry(const cs_gpu_catalog *c, const char *s, size_t len)
{
  for (size_t i = 0; i < c->n; i++) {
    entry *e = c->models[i];
    if (same_name(s, len, e->name))
      return e;
    for (size_t j = 0; j < e->nlabels; j++)
      if (same_name(s, len, e->labels[j]))
        return e;
  }
  return NULL;
}

static bool valid_figure(double v)
{
  return isfinite(v) && v >= 0;
}

static bool valid_text(const char *s, size_t max)
{
  if (!s || !*s)
    return false;
  size_t len = strnlen(s, max);
  if (len == max)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!isprint((unsigned char)s[i]))
      return false;
  return true;
}

static cs_err add_label(entry *e, const char *label)
{
  for (size_t i = 0; i < e->nlabels; i++)
    if (same_name(label, strlen(label), e->labels[i]))
      return CS_OK;
  if (same_name(label, strlen(label), e->name))
    return CS_OK;
  if (e->nlabels == MAX_LABELS)
    return CS_ETOOBIG;
  e->labels[e->nlabels++] = cs_strdup(label);
  return CS_OK;
}

static void entry_free(entry *e)
{
  if (!e)
    return;
  for (size_t i = 0; i < e->nlabels; i++)
    free(e->labels[i]);
  free(e->name);
  free(e->vendor);
  free(e);
}

static entry *entry_new(const cs_gpu_model *m)
{
  entry *e = cs_calloc(1, sizeof(*e));
  e->m = *m;
  e->name = cs_strdup(m->name);
  e->vendor = cs_strdup(m->vendor && *m->vendor ? m->vendor : "unknown");
  e->m.name = e->name;
  e->m.vendor = e->vendor;
  return e;
}

cs_gpu_catalog *cs_gpu_catalog_new(void)
{
  cs_gpu_catalog *c = cs_calloc(1, sizeof(*c));
  size_t n = sizeof(builtin_models) / sizeof(builtin_models[0]);
  for (size_t i = 0; i < n; i++) {
    const builtin_model *b = &builtin_models[i];
    cs_gpu_model m = {.name = b->name,
                      .vendor = b->vendor,
                      .power_w = b->power_w,
                      .tensor_tflops = b->tensor_tflops,
                      .memory_gb = b->memory_gb,
                      .devices_per_card = builtin_devices_per_card(b->name)};
    entry *e = entry_new(&m);
    for (size_t j = 0; j < 6 && b->labels[j]; j++)
      e->labels[e->nlabels++] = cs_strdup(b->labels[j]);
    c->models[c->n++] = e;
  }
  return c;
}

void cs_gpu_catalog_free(cs_gpu_catalog *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    entry_free(c->models[i]);
  free(c);
}

cs_err cs_gpu_catalog_set(cs_gpu_catalog *c, const cs_gpu_model *m,
                          const char *const *labels, size_t nlabels)
{
  if (!c || !m || !valid_text(m->name, MAX_NAME))
    return CS_EINVAL;
  if (m->vendor && *m->vendor && !valid_text(m->vendor, MAX_NAME))
    return CS_EINVAL;
  if (!valid_figure(m->power_w) || !valid_figure(m->tensor_tflops) ||
      !valid_figure(m->memory_gb) || !valid_figure(m->relative_throughput) ||
      !valid_figure(m->embodied_kg))
    return CS_EINVAL;
  if (m->devices_per_card > CS_GPU_MAX_DEVICES_PER_CARD)
    return CS_EINVAL;
  if (nlabels > MAX_LABELS || (nlabels && !labels))
    return CS_ETOOBIG;
  /* Validate every label before changing anything, so a bad call leaves the
   * catalog as it was. A label already meaning another model is refused:
   * one node label must name one model. */
  entry *e = find_entry(c, m->name, strlen(m->name));
  if (e && !same_name(m->name, strlen(m->name), e->name))
    return CS_EINVAL; /* the name is another model's label */
  for (size_t i = 0; i < nlabels; i++) {
    if (!valid_text(labels[i], MAX_LABEL))
      return CS_EINVAL;
    entry *owner = find_entry(c, labels[i], strlen(labels[i]));
    if (owner && owner != e)
      return CS_EINVAL;
  }
  if (!e) {
    /* A new model must carry what the estimate needs. */
    if (m->power_w <= 0 ||
        (m->tensor_tflops <= 0 && m->relative_throughput <= 0))
      return CS_EINVAL;
    if (c->n == MAX_MODELS)
      return CS_ETOOBIG;
    e = entry_new(m);
    c->models[c->n++] = e;
  } else {
    if (e->nlabels + nlabels > MAX_LABELS)
      return CS_ETOOBIG;
    if (m->power_w > 0)
      e->m.power_w = m->power_w;
    if (m->tensor_tflops > 0)
      e->m.tensor_tflops = m->tensor_tflops;
    if (m->memory_gb > 0)
      e->m.memory_gb = m->memory_gb;
    if (m->relative_throughput > 0)
      e->m.relative_throughput = m->relative_throughput;
    if (m->embodied_kg > 0)
      e->m.embodied_kg = m->embodied_kg;
    if (m->devices_per_card > 0)
      e->m.devices_per_card = m->devices_per_card;
    if (m->vendor && *m->vendor) {
      free(e->vendor);
      e->vendor = cs_strdup(m->vendor);
      e->m.vendor = e->vendor;
    }
  }
  for (size_t i = 0; i < nlabels; i++) {
    cs_err rc = add_label(e, labels[i]);
    if (rc)
      return rc;
  }
  return CS_OK;
}

bool cs_gpu_catalog_same_name(const char *a, const char *b)
{
  return a && b && same_name(a, strlen(a), b);
}

const cs_gpu_model *cs_gpu_catalog_find(const cs_gpu_catalog *c,
                                        const char *name_or_label)
{
  if (!c || !name_or_label)
    return NULL;
  size_t len = strnlen(name_or_label, MAX_LABEL);
  if (len == 0 || len == MAX_LABEL)
    return NULL;
  entry *e = find_entry(c, name_or_label, len);
  return e ? &e->m : NULL;
}

const cs_gpu_model *cs_gpu_catalog_partition_of(const cs_gpu_catalog *c,
                                                const char *label,
                                                const char **kind)
{
  if (!c || !label)
    return NULL;
  size_t len = strnlen(label, MAX_LABEL);
  if (len == 0 || len == MAX_LABEL)
    return NULL;
  /* GFD appends "-SHARED" when the GPU is time-sliced or shared through
   * MPS, and with the MIG "single" strategy names the slice as
   * "<product>-MIG-<profile>" (e.g. "-MIG-1g.5gb"); both at once for a
   * shared slice. */
  const char *what = NULL;
  const char *shared = "-shared";
  size_t sl = strlen(shared);
  if (len > sl && find_ci(label + len - sl, sl, shared) == 0) {
    len -= sl;
    what = "shared GPU";
  }
  long mig = find_ci(label, len, "-mig-");
  if (mig > 0) {
    len = (size_t)mig;
    what = "MIG slice";
  }
  entry *e = what ? find_entry(c, label, len) : NULL;
  if (e && kind)
    *kind = what;
  return e ? &e->m : NULL;
}

unsigned cs_gpu_devices_per_card(const cs_gpu_model *m)
{
  return m && m->devices_per_card > 1 ? m->devices_per_card : 1;
}

double cs_gpu_device_power_w(const cs_gpu_model *m)
{
  return m ? m->power_w / cs_gpu_devices_per_card(m) : 0;
}

double cs_gpu_speed_vs(const cs_gpu_model *m, const cs_gpu_model *ref)
{
  if (!m || !ref)
    return 0;
  bool mr = m->relative_throughput > 0, rr = ref->relative_throughput > 0;
  if (mr != rr)
    return 0;
  double a = cs_gpu_throughput(m), b = cs_gpu_throughput(ref);
  return a > 0 && b > 0 ? a / b : 0;
}

double cs_gpu_throughput(const cs_gpu_model *m)
{
  if (!m)
    return 0;
  double card =
      m->relative_throughput > 0 ? m->relative_throughput : m->tensor_tflops;
  return card / cs_gpu_devices_per_card(m);
}

size_t cs_gpu_catalog_count(const cs_gpu_catalog *c)
{
  return c ? c->n : 0;
}

const cs_gpu_model *cs_gpu_catalog_at(const cs_gpu_catalog *c, size_t i)
{
  if (!c || i >= c->n)
    return NULL;
  return &c->models[i]->m;
}

size_t cs_gpu_catalog_labels(const cs_gpu_catalog *c, size_t i,
                             const char *const **labels)
{
  if (!c || i >= c->n) {
    *labels = NULL;
    return 0;
  }
  *labels = (const char *const *)c->models[i]->labels;
  return c->models[i]->nlabels;
}
