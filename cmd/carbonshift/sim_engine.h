/* sim_engine.h: replays jobs on a cluster under one policy, event by event
 * (arrivals, planned starts, job ends) with GPU capacity per pool:
 *   agnostic     carbon-blind: starts each job at submission, or as soon as
 *                GPUs free up (FIFO), on the least-allocated pool that fits,
 *                as kube-scheduler's default LeastAllocated scoring would;
 *   carbonshift  the service's policy (scheduler/policy.h) on the pools with
 *                room: filter (budgets, waiting for a window) then
 *                prioritize; a deferred job is looked at again at its planned
 *                start, a job without room when GPUs free up, as the
 *                scheduler re-queues pods;
 *   oracle       per job, with perfect foresight of the real trace and of
 *                the true runtime, the pool and start of least emissions,
 *                ignoring capacity (the planner over the real trace).
 * Emissions are accounted on the real trace, with the estimate's energy and
 * embodied share for the true runtime.
 * Thread-safe: a run shares nothing but the read-only world and the
 * (thread-safe) signals registry.
 * Ownership: the world and everything it points to is borrowed; outcomes are
 * written into the caller's array (one per job). */
#ifndef CS_SIM_ENGINE_H
#define CS_SIM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/carbonshift/sim_cluster.h"
#include "cmd/carbonshift/sim_jobs.h"
#include "cmd/carbonshift/sim_trace.h"
#include "scheduler/estimate.h"
#include "scheduler/policy.h"

typedef enum cs_sim_policy {
  CS_SIM_AGNOSTIC = 0,
  CS_SIM_CARBONSHIFT,
  CS_SIM_ORACLE
} cs_sim_policy;

const char *cs_sim_policy_name(cs_sim_policy p);

typedef struct cs_sim_world {
  const cs_sim_jobs *jobs; /* sorted by earliest start */
  const cs_sim_cluster *cluster;
  cs_sim_trace *const *traces; /* real intensity, one per zone */
  size_t ntraces;
  const cs_estimate_params *estimate;
  cs_policy_params policy; /* signals: the simulator's provider */
  /* Called now and then with jobs decided so far; may be NULL. */
  void (*progress)(void *ctx, size_t done, size_t total);
  void *progress_ctx;
} cs_sim_world;

/* The zero value is CS_SIM_NOT_STARTED, so an outcome nothing decided is
 * never mistaken for a run (and counts in notRun). */
typedef enum cs_sim_fate {
  CS_SIM_NOT_STARTED = 0, /* still waiting when the replay ended */
  CS_SIM_RAN,
  CS_SIM_REJECTED,  /* the policy kept it pending for good (budget) */
  CS_SIM_UNCOVERED, /* its run left the carbon traces */
  CS_SIM_NO_FIT     /* no pool can ever hold it */
} cs_sim_fate;

typedef struct cs_sim_outcome {
  cs_sim_fate fate;
  int pool; /* -1 when it did not run */
  int64_t start, end;
  double workers;    /* pods the job runs as (GPUs over a node's) */
  double energy_kwh; /* facility energy */
  double operational_g;
  double embodied_g;
  double gpu_hours;
} cs_sim_outcome;

/* Runs `policy` over the world; `out` has one entry per job, in job order.
 * GPUs are counted in thousandths of a GPU (a request is rounded to the
 * nearest thousandth, at least one), so that what jobs give back is exactly
 * what they took. CS_EINVAL when a pool's zone has no trace. */
cs_err cs_sim_engine_run(const cs_sim_world *w, cs_sim_policy policy,
                         cs_sim_outcome *out) CS_MUST_USE;

/* Accounts job `job` run on `pool` from `start` (what-if: the split of
 * savings into placement and timing). */
void cs_sim_engine_account(const cs_sim_world *w, size_t job, size_t pool,
                           int64_t start, cs_sim_outcome *out);

/* The trace of a zone, or NULL. */
const cs_sim_trace *cs_sim_engine_trace(const cs_sim_world *w,
                                        const char *zone);

/* The latest start a job may have on a pool whose runtime is `runtime_s`:
 * its max-delay after its earliest start and early enough for its
 * deadline; its earliest start when it has neither (or cannot make it). */
int64_t cs_sim_engine_latest(const cs_sim_job *j, double runtime_s);

#endif
