/* sim_cluster.h: the cluster a simulation runs on, as pools of identical
 * nodes read from JSON:
 *   {"pools": [{"name": "de-a100", "zone": "DE", "gpu": "A100-SXM4-80GB",
 *               "nodes": 16, "gpusPerNode": 8, "installed": "2021-06",
 *               "lifetime": "6y", "pue": 1.3, "embodiedKg": 0}]}
 * Each pool becomes the cs_node_facts the service would read from one of
 * its nodes' labels, so the policy sees the same facts. GPUs are fungible
 * within a pool (a job takes GPUs of one pool, possibly across its nodes).
 * Thread-safe: a cluster is read-only plain data once made.
 * Ownership: the caller owns a cs_sim_cluster (cs_sim_cluster_free); facts
 * borrow GPU models from the catalog, which must outlive the cluster. */
#ifndef CS_SIM_CLUSTER_H
#define CS_SIM_CLUSTER_H

#include <stddef.h>

#include "carbon/gpu_catalog.h"
#include "scheduler/node_facts.h"

#define CS_SIM_CLUSTER_MAX_POOLS 64
#define CS_SIM_CLUSTER_MAX_BYTES (1u << 20)

typedef struct cs_sim_pool {
  char name[64];
  cs_node_facts facts; /* one node of the pool; facts.gpus = per node */
  double nodes;
  double capacity; /* GPUs in the pool */
} cs_sim_pool;

typedef struct cs_sim_cluster {
  cs_sim_pool *pools;
  size_t n;
} cs_sim_cluster;

void cs_sim_cluster_free(cs_sim_cluster *c);

/* Parses the JSON text, all of json[0, len): one object and nothing after
 * it. Defaults: lifetime and PUE from `defaults` (the service's
 * nodes.defaultLifetime and nodes.defaultPue), install date unknown,
 * embodied carbon derived. Unknown or repeated keys, fractional counts and
 * a lifetime under CS_NODE_MIN_LIFETIME_S are refused. CS_EPARSE /
 * CS_EINVAL / CS_ETOOBIG with `err` naming the pool, field, value and
 * expected form. */
cs_err cs_sim_cluster_parse(const char *json, size_t len,
                            const cs_gpu_catalog *catalog,
                            const cs_facts_params *defaults,
                            cs_sim_cluster *out, char *err,
                            size_t errcap) CS_MUST_USE;

/* One pool of `gpus` GPUs of `model` in `zone`, as the Let's Wait Awhile
 * scenarios want (capacity never binds). */
void cs_sim_cluster_single(const char *zone, const cs_gpu_model *model,
                           double gpus, double pue, cs_sim_cluster *out);

#endif
