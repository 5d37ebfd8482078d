/* sim_report.h: sums a simulation's outcomes per policy (jobs, GPU-hours,
 * energy, operational and embodied emissions, savings against agnostic and
 * the share of the bound's saving captured, waiting times, deadline misses,
 * the split of savings into placement and timing) and prints them as a
 * table, JSON or CSV; draws a progress bar on a terminal.
 * Thread-safe: no (one report per thread).
 * Ownership: outcomes and jobs are borrowed; rows are caller-owned. */
#ifndef CS_SIM_REPORT_H
#define CS_SIM_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "carbon/util/buf.h"
#include "cmd/carbonshift/sim_bound.h"
#include "cmd/carbonshift/sim_engine.h"

typedef struct cs_sim_row {
  const char *policy;
  bool solved; /* false: a bound that was not solved (see note) */
  char note[512];
  size_t jobs, not_run, deadline_misses;
  double gpu_hours, energy_kwh, operational_g, embodied_g, total_g;
  double wait_mean_s, wait_p95_s;
  double placement_g, timing_g; /* saving vs agnostic from where / when */
  double savings_pct;           /* vs agnostic; NAN without it */
  double captured_pct;          /* of the bound's saving; NAN without it */
  double runtime_s;             /* wall time of the run */
} cs_sim_row;

/* Sums one policy's outcomes. `agnostic` (may be NULL) gives the starts
 * that split the saving into placement (the policy's pool at the agnostic
 * start) and timing (the rest). */
void cs_sim_report_row(const cs_sim_world *w, const char *policy,
                       const cs_sim_outcome *o, const cs_sim_outcome *agnostic,
                       cs_sim_row *row);
/* A row from the bound. */
void cs_sim_report_bound_row(const cs_sim_bound *b, size_t jobs,
                             cs_sim_row *row);
/* Fills savings_pct and captured_pct from the agnostic and bound rows. */
void cs_sim_report_compare(cs_sim_row *rows, size_t n);

/* `scenario` is a JSON object (already encoded) describing the inputs;
 * `headline` names the policy whose savings go in the top-level
 * savingsPct. */
void cs_sim_report_json(cs_buf *out, const char *scenario,
                        const cs_sim_row *rows, size_t n, const char *headline);
void cs_sim_report_csv(FILE *out, const cs_sim_row *rows, size_t n);
void cs_sim_report_table(FILE *out, const cs_sim_row *rows, size_t n);

/* One CSV line per job of one policy's run (with the header when `header`):
 * policy,id,submit,start,end,pool,zone,gpus,fate,energy_kwh,
 * operational_g,embodied_g; times in Unix seconds, start/end/pool/zone empty
 * for a job that did not run; fate one of ran, rejected, uncovered, no-fit,
 * not-started. For plots of when and where jobs ran. */
void cs_sim_report_jobs_csv(FILE *out, const cs_sim_world *w,
                            const char *policy, const cs_sim_outcome *o,
                            bool header);

/* A progress bar on stderr when it is a terminal; does nothing otherwise. */
void cs_sim_report_progress(void *label, size_t done, size_t total);
void cs_sim_report_progress_done(void);

#endif
