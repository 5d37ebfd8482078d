#include "scheduler/node_facts.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "carbon/util/clock.h"
#include "carbon/util/parse.h"

const char *cs_zone_source_name(cs_zone_source s)
{
  switch (s) {
  case CS_ZONE_FROM_LABEL:
    return "label";
  case CS_ZONE_FROM_REGION:
    return "region";
  case CS_ZONE_FROM_DEFAULT:
    return "default";
  case CS_ZONE_NONE:
    break;
  }
  return "none";
}

void cs_problems_add(char *problems, size_t cap, const char *fmt, ...)
{
  size_t len = strnlen(problems, cap);
  if (len + 1 >= cap)
    return;
  if (len) {
    int n = snprintf(problems + len, cap - len, "; ");
    if (n < 0 || (size_t)n >= cap - len)
      return;
    len += (size_t)n;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(problems + len, cap - len, fmt, ap);
  va_end(ap);
}

/* The string value of key in obj: NULL when absent; *bad set when present
 * but not a string. */
static const char *str_member(const cJSON *obj, const char *key, bool *bad)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v)
    return NULL;
  if (!cJSON_IsString(v)) {
    *bad = true;
    return NULL;
  }
  return v->valuestring;
}

/* Looks a key up in annotations, then labels. Records a problem when the
 * value is not a string. */
static const char *node_value(cs_node_facts *f, const cJSON *ann,
                              const cJSON *labels, const char *key)
{
  bool bad = false;
  const char *v = str_member(ann, key, &bad);
  if (!v && !bad)
    v = str_member(labels, key, &bad);
  if (bad)
    cs_problems_add(f->problems, sizeof(f->problems),
                    "%s: expected a string value", key);
  return v;
}

static bool valid_zone_id(const char *z)
{
  size_t n = strlen(z);
  if (n == 0 || n >= CS_ZONE_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)z[i]) && z[i] != '-' && z[i] != '_')
      return false;
  return true;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
  snprintf(dst, cap, "%s", src);
}

static void read_zone(const cs_facts_params *p, cs_node_facts *f,
                      const cJSON *ann, const cJSON *labels)
{
  const char *zone = node_value(f, ann, labels, CS_LABEL_GRID_ZONE);
  if (zone) {
    if (valid_zone_id(zone)) {
      copy_str(f->zone, sizeof(f->zone), zone);
      f->zone_source = CS_ZONE_FROM_LABEL;
      return;
    }
    cs_problems_add(f->problems, sizeof(f->problems),
                    "label %s=\"%.64s\": expected a grid zone id such as DE "
                    "or US-CAL-CISO (letters, digits, '-', '_')",
                    CS_LABEL_GRID_ZONE, zone);
  }
  bool bad = false;
  const char *region = str_member(labels, CS_LABEL_REGION, &bad);
  if (region && p->zones) {
    const char *mapped = cs_zone_map_lookup(p->zones, region);
    if (mapped) {
      copy_str(f->zone, sizeof(f->zone), mapped);
      f->zone_source = CS_ZONE_FROM_REGION;
      return;
    }
    cs_problems_add(f->problems, sizeof(f->problems),
                    "label %s=\"%.64s\": region not in the zone map (add it "
                    "under zones.regions)",
                    CS_LABEL_REGION, region);
  }
  if (p->default_zone && *p->default_zone) {
    copy_str(f->zone, sizeof(f->zone), p->default_zone);
    f->zone_source = CS_ZONE_FROM_DEFAULT;
  }
}

static void read_gpu(const cs_facts_params *p, cs_node_facts *f,
                     const cJSON *ann, const cJSON *labels,
                     const cJSON *allocatable)
{
  static const char *const model_keys[] = {
      CS_LABEL_GPU_MODEL, CS_LABEL_GFD_PRODUCT, CS_LABEL_AMD_PRODUCT};
  for (size_t i = 0; i < sizeof(model_keys) / sizeof(*model_keys); i++) {
    const char *label = node_value(f, ann, labels, model_keys[i]);
    if (!label)
      continue;
    copy_str(f->gpu_label, sizeof(f->gpu_label), label);
    f->gpu = p->catalog ? cs_gpu_catalog_find(p->catalog, label) : NULL;
    if (!f->gpu)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "label %s=\"%.64s\": GPU model not in the catalog (add "
                      "it under gpus in the configuration)",
                      model_keys[i], label);
    break;
  }

  static const char *const resources[] = {"nvidia.com/gpu", "amd.com/gpu"};
  for (size_t i = 0; i < 2; i++) {
    bool bad = false;
    const char *q = str_member(allocatable, resources[i], &bad);
    if (!q && !bad)
      continue;
    const char *expected = "a quantity string";
    double n = 0;
    if (bad || cs_parse_quantity(q, &n, &expected) != CS_OK ||
        fabs(n) > CS_GPU_COUNT_MAX || n != trunc(n)) {
      cs_problems_add(f->problems, sizeof(f->problems),
                      "allocatable %s=\"%.32s\": expected a whole number of "
                      "devices such as 8",
                      resources[i], q ? q : "(not a string)");
      continue;
    }
    if (n > 0) {
      f->gpus = n;
      copy_str(f->gpu_resource, sizeof(f->gpu_resource), resources[i]);
      break;
    }
  }
}

static void read_hardware(const cs_facts_params *p, cs_node_facts *f,
                          const cJSON *ann, const cJSON *labels)
{
  const char *expected = NULL;
  const char *v = node_value(f, ann, labels, CS_ANN_INSTALLED);
  if (v) {
    int64_t t;
    if (cs_parse_date(v, &t, &expected) != CS_OK)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %s=\"%.64s\": expected %s", CS_ANN_INSTALLED,
                      v, expected);
    else if (t > cs_clock_now())
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %s=\"%.64s\": expected a date in the past",
                      CS_ANN_INSTALLED, v);
    else
      f->installed_at = t;
  }

  f->lifetime_s = p->default_lifetime_s;
  v = node_value(f, ann, labels, CS_ANN_LIFETIME);
  if (v) {
    double s;
    if (cs_parse_duration(v, &s, &expected) != CS_OK)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %s=\"%.64s\": expected %s", CS_ANN_LIFETIME,
                      v, expected);
    else if (s < 86400 * 30.0)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %s=\"%.64s\": expected a lifetime of at "
                      "least 30d, such as 6y",
                      CS_ANN_LIFETIME, v);
    else
      f->lifetime_s = s;
  }

  v = node_value(f, ann, labels, CS_ANN_EMBODIED);
  if (v) {
    double kg;
    if (cs_parse_double(v, &kg, &expected) != CS_OK || !(kg > 0) || kg > 1e6)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "annotation %s=\"%.64s\": expected the node's embodied "
                      "carbon in kgCO2e, a number above 0 and at most "
                      "1000000, such as 2500",
                      CS_ANN_EMBODIED, v);
    else
      f->embodied_kg = kg;
  }
}

static void read_pue(const cs_facts_params *p, cs_node_facts *f,
                     const cJSON *ann, const cJSON *labels)
{
  f->pue = p->default_pue;
  f->pue_source = CS_PUE_DEFAULT;
  for (size_t i = 0; i < p->nzone_pue; i++) {
    if (f->zone[0] && strcmp(p->zone_pue[i].zone, f->zone) == 0) {
      f->pue = p->zone_pue[i].pue;
      f->pue_source = CS_PUE_FROM_ZONE;
    }
  }
  const char *v = node_value(f, ann, labels, CS_ANN_PUE);
  if (!v)
    return;
  double pue;
  const char *expected;
  if (cs_parse_double(v, &pue, &expected) != CS_OK || pue < 1.0 || pue > 3.0) {
    cs_problems_add(f->problems, sizeof(f->problems),
                    "annotation %s=\"%.64s\": expected a power usage "
                    "effectiveness between 1.0 and 3.0, such as 1.2",
                    CS_ANN_PUE, v);
    return;
  }
  f->pue = pue;
  f->pue_source = CS_PUE_FROM_NODE;
}

cs_err cs_node_facts_read(const cs_facts_params *p, const cJSON *metadata,
                          const cJSON *allocatable, cs_node_facts *out)
{
  memset(out, 0, sizeof(*out));
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(metadata, "name");
  if (!cJSON_IsString(name) || !name->valuestring[0] ||
      strlen(name->valuestring) >= sizeof(out->name))
    return CS_EINVAL;
  copy_str(out->name, sizeof(out->name), name->valuestring);

  const cJSON *labels = cJSON_GetObjectItemCaseSensitive(metadata, "labels");
  const cJSON *ann = cJSON_GetObjectItemCaseSensitive(metadata, "annotations");
  if (labels && !cJSON_IsObject(labels) && !cJSON_IsNull(labels)) {
    cs_problems_add(out->problems, sizeof(out->problems),
                    "metadata.labels: expected an object");
    labels = NULL;
  }
  if (ann && !cJSON_IsObject(ann) && !cJSON_IsNull(ann)) {
    cs_problems_add(out->problems, sizeof(out->problems),
                    "metadata.annotations: expected an object");
    ann = NULL;
  }
  if (allocatable && !cJSON_IsObject(allocatable)) {
    cs_problems_add(out->problems, sizeof(out->problems),
                    "status.allocatable: expected an object");
    allocatable = NULL;
  }
  read_zone(p, out, ann, labels);
  read_gpu(p, out, ann, labels, allocatable);
  read_hardware(p, out, ann, labels);
  read_pue(p, out, ann, labels);
  return CS_OK;
}
