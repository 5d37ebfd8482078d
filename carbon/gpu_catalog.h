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

#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/error.h"

typedef struct cs_gpu_model {
  const char *name;     /* canonical, e.g. "H100-SXM5-80GB" */
  const char *vendor;   /* "NVIDIA", "AMD" */
  double power_w;       /* board power (TDP), or a measured figure */
  double tensor_tflops; /* dense FP16/BF16 tensor TFLOPS, no sparsity */
  double memory_gb;
  /* Measured training throughput in any unit consistent across models
   * (e.g. samples/s on one benchmark); 0 means "use tensor_tflops". Only
   * compared with another model's relative_throughput (cs_gpu_speed_vs). */
  double relative_throughput;
  double embodied_kg; /* per card; 0 means "use the configured default" */
  /* The devices Kubernetes schedules (nvidia.com/gpu, amd.com/gpu) that one
   * card shows; 0 means 1. The MI250X has 2: ROCm and AMD's device plugin
   * show each of its two compute dies (GCDs) as a GPU, so a pod asking for
   * one gets half a card. Every figure above is per card; the cs_gpu_device_*
   * functions give a device's share. */
  unsigned devices_per_card;
} cs_gpu_model;

/* The most devices one card may show (cs_gpu_catalog_set). */
#define CS_GPU_MAX_DEVICES_PER_CARD 8

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
 * "Tesla-V100-SXM2-32GB") or AMD's labeller writes it. Case-insensitive.
 * NULL when unknown, and for a partitioned GPU (a MIG slice or a shared
 * GPU, see cs_gpu_catalog_partition_of) unless that very label was
 * configured as a model of its own: a device of it is not a whole card,
 * and its share of the card's power and throughput is not known. */
const cs_gpu_model *cs_gpu_catalog_find(const cs_gpu_catalog *c,
                                        const char *name_or_label);

/* Whether two names or labels are the same to cs_gpu_catalog_find and
 * cs_gpu_catalog_set: equal but for case, with '-', '_' and ' ' alike. */
bool cs_gpu_catalog_same_name(const char *a, const char *b);

/* For a label GFD writes for a partitioned GPU, "<product>-SHARED"
 * (time-slicing or MPS) or "<product>-MIG-<profile>" (the MIG single
 * strategy), the model of the whole card, and in `*kind` "MIG slice" or
 * "shared GPU"; NULL otherwise. For messages only: the estimate never uses
 * the whole card's figures for a part of it. */
const cs_gpu_model *cs_gpu_catalog_partition_of(const cs_gpu_catalog *c,
                                                const char *label,
                                                const char **kind);

/* The training speed of one device of `m` relative to one device of the
 * reference model `ref` (the runtime on m is the runtime on ref divided by
 * it), each card's figure shared among its devices: the ratio of their
 * relative_throughput when both have one, else of their tensor_tflops. 0
 * (unknown) when only one of the two has a measured relative_throughput:
 * the figures are in different units and no ratio of them means anything. */
double cs_gpu_speed_vs(const cs_gpu_model *m, const cs_gpu_model *ref);

/* One device's throughput figure, relative_throughput if set, else
 * tensor_tflops, over devices_per_card (for display; runtimes are scaled
 * by cs_gpu_speed_vs). */
double cs_gpu_throughput(const cs_gpu_model *m);

/* devices_per_card, at least 1. */
unsigned cs_gpu_devices_per_card(const cs_gpu_model *m);
/* Power of one schedulable device, in W: the card's over its devices. */
double cs_gpu_device_power_w(const cs_gpu_model *m);

/* Iteration over all models (for docs and --print-config). */
size_t cs_gpu_catalog_count(const cs_gpu_catalog *c);
const cs_gpu_model *cs_gpu_catalog_at(const cs_gpu_catalog *c, size_t i);
/* The node-label values of model i (borrowed, valid until the next
 * cs_gpu_catalog_set or cs_gpu_catalog_free); returns their number. */
size_t cs_gpu_catalog_labels(const cs_gpu_catalog *c, size_t i,
                             const char *const **labels);

#endif
