/* estimate.h: the emissions of running one job on one node, following the
 * Software Carbon Intensity model (docs/scoring.md has the worked example):
 *   runtime     = duration on the reference GPU x throughput(reference)
 *                 / throughput(node GPU)
 *   operational = GPUs x power per GPU x runtime x PUE x grid intensity
 *   embodied    = node embodied carbon x (GPUs requested / GPUs in node)
 *                 x runtime / effective lifetime
 * where the effective lifetime is the longer of the expected lifetime and
 * the hardware's age when the job ends, so hardware kept in service past its
 * expected life carries a smaller hourly share, never a negative one.
 * Thread-safe: yes (pure functions).
 * Ownership: all inputs borrowed; the result is caller-owned plain data. */
#ifndef CS_ESTIMATE_H
#define CS_ESTIMATE_H

#include <stdbool.h>
#include <stdint.h>

#include "carbon/gpu_catalog.h"
#include "scheduler/node_facts.h"
#include "scheduler/pod_facts.h"

/* The longest runtime an estimate is made for (about 32 million years):
 * runtimes are added to Unix times in whole seconds (latest starts, ends,
 * forecast windows), and the configured throughputs allow a ratio that
 * would put 100 years on the reference GPU past int64 seconds. Longer is
 * "GPU throughput (runtime out of range)", unknown and neutral. */
#define CS_ESTIMATE_RUNTIME_MAX_S 1e15

typedef struct cs_estimate_params {
  const cs_gpu_model *reference_gpu; /* the GPU durations are given for */
  double default_duration_s;         /* for pods without a valid duration */
  double server_embodied_kg;         /* a GPU server without its GPUs */
  double gpu_embodied_kg; /* per card, when the catalog has no figure */
} cs_estimate_params;

typedef struct cs_estimate {
  bool known;          /* false: a fact is missing, see `unknown` */
  const char *unknown; /* static text naming what is missing */
  bool sized;          /* runtime, energy and the embodied share are
                          computed: at most the intensity is missing */
  double runtime_s;    /* on this node's GPU */
  double energy_kwh;   /* facility energy, PUE included */
  double intensity;    /* gCO2e/kWh used */
  double operational_g;
  double embodied_g;
  double total_g;
  double node_embodied_kg; /* the node's whole embodied carbon */
  double effective_lifetime_s;
} cs_estimate;

/* Estimates the job on the node at time `now` with the given grid intensity
 * (gCO2e/kWh; pass a negative value when unknown). Without an intensity
 * the estimate is unknown ("grid intensity") but still sized, so that one
 * can be applied later. */
void cs_estimate_job(const cs_estimate_params *p, const cs_pod_facts *pod,
                     const cs_node_facts *node, double intensity, int64_t now,
                     cs_estimate *out);

/* Recomputes a sized estimate's operational and total emissions with
 * another intensity (negative: unknown). An estimate that is not sized
 * stays unknown for its own reason. */
void cs_estimate_set_intensity(cs_estimate *e, double intensity);

#endif
