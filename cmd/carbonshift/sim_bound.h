/* sim_bound.h: the cluster-level lower bound of ../shared/docs/benchmarks.md
 * section 2: a time-indexed linear program, its LP relaxation solved with
 * GLPK. x[j,p,s] is the share of job j's work done on pool p in slot s:
 *   sum_{p,s} x = 1 for every job;
 *   x[j,p,s] <= (the part of slot s inside j's window) / runtime(j,p);
 *   sum_j gpus_j * x[j,p,s] * runtime(j,p) / slot <= GPUs of pool p;
 *   minimise sum x * (energy(j,p) * min intensity of p in slot s
 *                     + embodied(j,p)).
 * It allows preemption, migration and fractional GPUs, and prices each slot
 * at its lowest intensity, so no schedule of the same jobs in the same
 * windows emits less. A job's window runs from its earliest start to its
 * latest finish, widened to every end passed in (so the schedules of the
 * policies compared are feasible). Instances above a size limit are refused.
 * A job none of whose slots can be full is a fractional knapsack of its own
 * and is solved in closed form (cheapest slots first); GLPK gets the rest.
 * Thread-safe: yes (GLPK problem objects are per call).
 * Ownership: the world is borrowed; results are plain data. */
#ifndef CS_SIM_BOUND_H
#define CS_SIM_BOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/carbonshift/sim_engine.h"

typedef struct cs_sim_bound_params {
  int64_t slot_s;     /* slot length; 0: 3600 */
  size_t max_columns; /* refuse above; 0: 400,000 */
  bool lp_only;       /* send every job to GLPK (tests compare the two) */
} cs_sim_bound_params;

typedef struct cs_sim_bound {
  double total_g, operational_g, embodied_g, energy_kwh, gpu_hours;
  size_t columns, rows, capacity_rows;
  size_t lp_columns;       /* columns GLPK saw */
  size_t closed_form_jobs; /* jobs meeting no capacity row, solved apart */
  size_t no_fit_jobs;      /* jobs no pool can hold, left out (as by every
                            * policy) */
  double seconds;          /* solver time */
} cs_sim_bound;

/* Solves the bound. `ends` (may be NULL) holds, per job, an end the window
 * must reach. CS_ETOOBIG when the instance exceeds the limit (out->columns
 * holds its size); CS_EINTERNAL when GLPK finds no optimum (`err` says
 * why). */
cs_err cs_sim_bound_solve(const cs_sim_world *w, const int64_t *ends,
                          const cs_sim_bound_params *p, cs_sim_bound *out,
                          char *err, size_t errcap) CS_MUST_USE;

#endif
