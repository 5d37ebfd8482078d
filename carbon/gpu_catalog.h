/* gpu_catalog.h: accelerator models and the figures the estimate needs:
 * board power, dense FP16/BF16 tensor throughput (the proxy for training
 * speed), memory, and embodied carbon per card. Built in from vendor
 * datasheets (sources in docs/gpus.md), then overridden or extended from
 * configuration, including measured power or relative training throughput.
 * Node labels are matched to a model by cs_gpu_catalog_find.
 * Thread-safe: lookups are safe from any thread once configuration is done;
 * cs_gpu_catalog_set is not.
 * Ownership: the catalog owns its models; returned pointers are borrowed and
 * valid until cs_gpu_catalog_free. Strings passed in are copied. */
#ifndef CS_GPU_CATALOG_H
#define CS_GPU_CATALOG_H

#include <stddef.h>

#include "carbon/util/error.h"

typedef struct cs_gpu_model {
  const char *name;     /* canonical, e.g. "H100-SXM5-80GB" */
  const char *vendor;   /* "NVIDIA", "AMD" */
  double power_w;       /* board power (TDP), or a measured figure */
  double tensor_tflops; /* dense FP16/BF16 tensor TFLOPS, no sparsity */
  double memory_gb;
  /* Measured training throughput relative to other models (any consistent
   * unit); 0 means "use tensor_tflops". When set for any model it must be
   * set for every model compared with it. */
  double relative_throughput;
  double embodied_kg; /* per card; 0 means "use the configured default" */
} cs_gpu_model;

typedef struct cs_gpu_catalog cs_gpu_catalog;

/* A catalog holding the built-in models. */
cs_gpu_catalog *cs_gpu_catalog_new(void);
void cs_gpu_catalog_free(cs_gpu_catalog *c);

/* Adds a model, or replaces the non-zero fields of an existing one with the
 * same canonical name (case-insensitive). `labels` lists extra node-label
 * values that mean this model. CS_EINVAL: empty or unprintable name or label, a
 * negative or non-finite figure, a new model without power_w or without
 * tensor_tflops/relative_throughput, or a name or label that already means
 * another model; CS_ETOOBIG: over 256 models or 32 labels per model. On error
 * the catalog is unchanged. */
cs_err cs_gpu_catalog_set(cs_gpu_catalog *c, const cs_gpu_model *m,
                          const char *const *labels,
                          size_t nlabels) CS_MUST_USE;

/* Finds a model by canonical name or by a node-label value as NVIDIA GPU
 * Feature Discovery (`nvidia.com/gpu.product`, e.g. "NVIDIA-H100-80GB-HBM3",
 * "Tesla-V100-SXM2-32GB", with "-SHARED" or MIG suffixes) or AMD's labeller
 * writes it. Case-insensitive. NULL when unknown. */
const cs_gpu_model *cs_gpu_catalog_find(const cs_gpu_catalog *c,
                                        const char *name_or_label);

/* Training throughput used to scale runtimes: relative_throughput if set,
 * else tensor_tflops. */
double cs_gpu_throughput(const cs_gpu_model *m);

/* Iteration over all models (for docs and --print-config). */
size_t cs_gpu_catalog_count(const cs_gpu_catalog *c);
const cs_gpu_model *cs_gpu_catalog_at(const cs_gpu_catalog *c, size_t i);
/* The node-label values of model i (borrowed, valid until the next
 * cs_gpu_catalog_set or cs_gpu_catalog_free); returns their number. */
size_t cs_gpu_catalog_labels(const cs_gpu_catalog *c, size_t i,
                             const char *const **labels);

#endif
