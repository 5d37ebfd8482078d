/* node_facts.h: what carbonshift needs to know about a Node, read from its
 * labels, annotations and allocatable resources: grid zone, GPU model and
 * count, installation date, expected lifetime, embodied-carbon override and
 * PUE. Malformed values are recorded as problems (annotation, value, expected
 * form), and nothing is guessed: a bad GPU model or count leaves that fact
 * unknown (the node is scored neutral); a bad zone falls back to
 * the region, then the default zone; a bad PUE to the zone's, then the
 * default; a bad lifetime to the default; a bad embodied figure to the
 * computed one; a bad installation date to no age (docs/annotations.md has
 * the table). A value that is not a string counts as absent, except that
 * an annotation that is present, usable or not, hides the label of the
 * same key. Reading
 * is two steps: collect the few strings the facts come from (cs_node_fields,
 * from a cJSON tree or straight from the scanned bytes of a request), then
 * turn them into facts (cs_node_facts_from_fields), one function for both.
 * Thread-safe: yes (pure functions of their inputs).
 * Ownership: params and the cJSON and byte inputs are borrowed; a fields
 * struct borrows from the tree or bytes it was collected from, which must
 * outlive it; the facts struct is caller-owned plain data whose `gpu`
 * pointer borrows from the catalog. */
#ifndef CS_NODE_FACTS_H
#define CS_NODE_FACTS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "carbon/gpu_catalog.h"
#include "carbon/signal.h"
#include "carbon/util/jscan.h"
#include "carbon/zones.h"

/* Labels and annotations carbonshift reads on Nodes. */
#define CS_LABEL_GRID_ZONE "carbonshift.io/grid-zone"
#define CS_LABEL_GPU_MODEL "carbonshift.io/gpu-model"
#define CS_LABEL_REGION "topology.kubernetes.io/region"
#define CS_LABEL_GFD_PRODUCT "nvidia.com/gpu.product"
/* GPU Feature Discovery's count of the node's GPUs: read when allocatable
 * has none, as on a node whose GPUs Dynamic Resource Allocation serves
 * (the DRA driver's ResourceSlices, with pods still asking for
 * nvidia.com/gpu through a DeviceClass's extendedResourceName). */
#define CS_LABEL_GFD_COUNT "nvidia.com/gpu.count"
#define CS_LABEL_AMD_PRODUCT "amd.com/gpu.product-name"
#define CS_ANN_INSTALLED "carbonshift.io/hardware-installed"
#define CS_ANN_LIFETIME "carbonshift.io/expected-lifetime"
#define CS_ANN_EMBODIED "carbonshift.io/embodied-kgco2e"
#define CS_ANN_PUE "carbonshift.io/pue"

#define CS_NODE_NAME_MAX 254
/* The shortest expected lifetime a node may declare (30 days): below it
 * the embodied share per hour would be implausibly large, so the
 * annotation is refused, and so is a simulated pool's "lifetime". */
#define CS_NODE_MIN_LIFETIME_S (30 * 86400.0)
/* Device counts above this are refused as malformed (no node or pod has
 * that many accelerators). */
#define CS_GPU_COUNT_MAX 1048576
#define CS_PROBLEMS_MAX 768

typedef struct cs_zone_pue {
  const char *zone;
  double pue;
} cs_zone_pue;

typedef struct cs_facts_params {
  const cs_gpu_catalog *catalog;
  const cs_zone_map *zones;
  const char *default_zone; /* NULL or "": no default */
  double default_pue;
  const cs_zone_pue *zone_pue; /* per-zone PUE, overrides the default */
  size_t nzone_pue;
  double default_lifetime_s;
} cs_facts_params;

typedef enum cs_zone_source {
  CS_ZONE_NONE = 0,
  CS_ZONE_FROM_LABEL,  /* carbonshift.io/grid-zone */
  CS_ZONE_FROM_REGION, /* topology.kubernetes.io/region via the zone map */
  CS_ZONE_FROM_DEFAULT /* the configured default zone */
} cs_zone_source;

const char *cs_zone_source_name(cs_zone_source s);

typedef enum cs_pue_source {
  CS_PUE_DEFAULT = 0,
  CS_PUE_FROM_ZONE,
  CS_PUE_FROM_NODE
} cs_pue_source;

typedef struct cs_node_facts {
  /* What a decision reads of every node comes first, so a names-only
   * call over thousands of cached nodes touches few cache lines each. */
  const cs_gpu_model *gpu; /* NULL: no GPU label, or not in the catalog */
  double gpus;             /* allocatable accelerators; 0 if none */
  int64_t installed_at;    /* Unix s; 0 unknown */
  double lifetime_s;       /* expected service life */
  double embodied_kg;      /* node total from the annotation; 0: derive */
  double pue;
  cs_pue_source pue_source;
  cs_zone_source zone_source;
  char zone[CS_ZONE_MAX];
  char name[CS_NODE_NAME_MAX];
  char problems[CS_PROBLEMS_MAX]; /* "; "-separated, empty when none */
  char gpu_label[96];             /* the label value the model was read from */
  char gpu_resource[32];          /* "nvidia.com/gpu", "amd.com/gpu" or "" */
} cs_node_facts;

/* One string a fact is read from, as the Node holds it. */
typedef enum cs_field_kind {
  CS_FIELD_ABSENT = 0,
  CS_FIELD_BAD,  /* present, but not a string */
  CS_FIELD_TEXT, /* at[0..len): the value itself, no NUL in it */
  CS_FIELD_JSON  /* at[0..len): its JSON string literal, with escapes */
} cs_field_kind;

typedef struct cs_node_field {
  const char *at;
  size_t len;
  cs_field_kind kind;
} cs_node_field;

/* The labels and annotations the facts read, as indexes into
 * cs_node_fields (CS_LABEL_REGION only as a label). */
typedef enum cs_node_key {
  CS_KEY_GRID_ZONE = 0,
  CS_KEY_GPU_MODEL,
  CS_KEY_GFD_PRODUCT,
  CS_KEY_AMD_PRODUCT,
  CS_KEY_GFD_COUNT,
  CS_KEY_REGION,
  CS_KEY_INSTALLED,
  CS_KEY_LIFETIME,
  CS_KEY_EMBODIED,
  CS_KEY_PUE,
  CS_NODE_KEYS
} cs_node_key;

/* The allocatable resources read: nvidia.com/gpu, amd.com/gpu. */
enum { CS_RES_NVIDIA = 0, CS_RES_AMD, CS_NODE_RESOURCES };

/* Everything the facts of a Node are read from. Each member is the first
 * of that name, as cJSON_GetObjectItemCaseSensitive finds it; a *_bad flag
 * says the object was present but neither an object nor (for labels and
 * annotations) null, and its fields are then absent. */
typedef struct cs_node_fields {
  cs_node_field name; /* metadata.name */
  cs_node_field labels[CS_NODE_KEYS];
  cs_node_field annotations[CS_NODE_KEYS];
  cs_node_field allocatable[CS_NODE_RESOURCES];
  bool labels_bad, annotations_bad, allocatable_bad;
} cs_node_fields;

/* Collects the fields from a Node's `metadata` and `status.allocatable`
 * trees (either may be NULL). */
void cs_node_fields_from_json(const cJSON *metadata, const cJSON *allocatable,
                              cs_node_fields *out);
/* Collect from the scanner, which must be at a `metadata` object or at an
 * `allocatable` object, and consume it; fields already collected are kept
 * (the first member of a name wins). out starts zeroed. CS_EPARSE on a
 * syntax error, explained in s->err. */
cs_err cs_node_fields_scan_metadata(cs_jscan *s,
                                    cs_node_fields *out) CS_MUST_USE;
cs_err cs_node_fields_scan_allocatable(cs_jscan *s,
                                       cs_node_fields *out) CS_MUST_USE;

/* The decoded metadata.name into out[0..cap): CS_EINVAL when it is absent,
 * not a string or empty, CS_ETOOBIG when it does not fit. */
cs_err cs_node_fields_name(const cs_node_fields *f, char *out,
                           size_t cap) CS_MUST_USE;

/* The facts of one Node from its fields. Returns CS_EINVAL only when the
 * node has no usable name; every other problem is recorded in
 * out->problems and handled as the top of this file says. */
cs_err cs_node_facts_from_fields(const cs_facts_params *p,
                                 const cs_node_fields *f,
                                 cs_node_facts *out) CS_MUST_USE;
/* The same from the `metadata` and `status.allocatable` trees (either may
 * be NULL): cs_node_fields_from_json, then cs_node_facts_from_fields. */
cs_err cs_node_facts_read(const cs_facts_params *p, const cJSON *metadata,
                          const cJSON *allocatable,
                          cs_node_facts *out) CS_MUST_USE;

/* Appends "; "-separated text to a problems buffer. A problem that does not
 * fit is replaced by "; more problems not shown", which ends the text: a
 * cut never passes for the whole list. */
void cs_problems_add(char *problems, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A value as a problem quotes it: whole up to CS_SHOWN_MAX bytes, else
 * its first bytes (cut between UTF-8 sequences) and "…", in `out`.
 * CS_SHOWN(v) gives it a buffer that lives to the end of the statement's
 * block. */
#define CS_SHOWN_MAX 64
#define CS_SHOWN_CAP (CS_SHOWN_MAX + 1)
const char *cs_problem_value(const char *v, char out[CS_SHOWN_CAP]);
#define CS_SHOWN(v) cs_problem_value((v), (char[CS_SHOWN_CAP]){0})

#endif
