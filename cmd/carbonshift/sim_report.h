/* sim_report.h: sums a simulation's outcomes per policy (jobs, GPU-hours,
 * energy, operational and embodied emissions, waiting times, deadline
 * misses) and compares the policies on the jobs every one of them ran
 * (savings against agnostic, their split into placement and timing, the
 * share of the bound's saving captured); prints them as a table, JSON or
 * CSV; draws a progress bar on a terminal.
 * A policy may fail to run a job another runs (a job queued for GPUs past
 * the end of a trace is uncovered under that policy only; a budget keeps a
 * job pending under carbonshift alone), so each policy's own totals cover
 * different jobs; savings are therefore computed over the compared jobs,
 * those every run of every policy ran, and the rows say how many.
 * Thread-safe: no (one report per thread).
 * Ownership: outcomes and jobs are borrowed; rows and tallies are
 * caller-owned. */
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
  /* Over the jobs this policy ran. */
  size_t jobs, not_run, deadline_misses;
  double gpu_hours, energy_kwh, operational_g, embodied_g, total_g;
  double wait_mean_s, wait_p95_s;
  /* Over the compared jobs (every policy ran them). */
  size_t compared;
  double compared_operational_g, compared_embodied_g, compared_g;
  double placement_g, timing_g; /* saving vs agnostic from where / when */
  double savings_pct;           /* vs agnostic; NAN without it */
  double captured_pct; /* of the bound's saving; NAN without it, and for
                          agnostic itself */
  double runtime_s;    /* wall time of the run */
} cs_sim_row;

/* Sums one policy's outcomes over the jobs it ran; the compared figures
 * are left 0 (cs_sim_report_compared fills them). */
void cs_sim_report_row(const cs_sim_world *w, const char *policy,
                       const cs_sim_outcome *o, cs_sim_row *row);

/* Per job, what one policy's runs emitted and the split of its saving,
 * summed over the runs (the seeds of --seeds), kept until every policy has
 * run and the compared jobs are known. */
typedef struct cs_sim_tally {
  size_t n; /* jobs */
  int runs;
  double *operational_g, *embodied_g, *placement_g, *timing_g;
  /* The latest end of each job over the runs that ran it (0: none), so
   * that the bound's windows cover every run, every seed's included. */
  int64_t *latest_end;
} cs_sim_tally;

void cs_sim_report_tally_init(cs_sim_tally *t, size_t jobs);
void cs_sim_report_tally_free(cs_sim_tally *t);
/* Adds one run's outcomes and clears common[i] for every job i the run did
 * not run (common has one entry per job, set to 1 before the first run).
 * With `agnostic`, a job both ran has its saving split into placement (the
 * policy's pool at the agnostic start) and timing (the rest); when that
 * what-if run would leave the trace, the whole saving counts as placement.
 * So placement and timing always add up to the saving. */
void cs_sim_report_tally_add(cs_sim_tally *t, const cs_sim_world *w,
                             const cs_sim_outcome *o,
                             const cs_sim_outcome *agnostic,
                             unsigned char *common);
/* Fills the row's compared figures, placement and timing: the sums over
 * the jobs with common[i] set, averaged over the tally's runs. */
void cs_sim_report_compared(const cs_sim_tally *t, const unsigned char *common,
                            cs_sim_row *row);

/* A row from the bound, solved over `jobs` jobs (the compared ones) of the
 * simulation's `total`. */
void cs_sim_report_bound_row(const cs_sim_bound *b, size_t jobs, size_t total,
                             cs_sim_row *row);
/* Fills savings_pct and captured_pct from the agnostic and bound rows, for
 * the rows compared over the same jobs as agnostic. */
void cs_sim_report_compare(cs_sim_row *rows, size_t n);

/* `scenario` is a JSON object (already encoded) describing the inputs;
 * `headline` names the policy whose savings go in the top-level
 * savingsPct (null when that row is a bound not solved); the top-level
 * comparedJobs is agnostic's `compared`. The CSV leaves a figure a row
 * lacks empty, and its last column, `note`, gives the row's note: for a
 * bound not solved, "not solved: " and why. */
void cs_sim_report_json(cs_buf *out, const char *scenario,
                        const cs_sim_row *rows, size_t n, const char *headline);
void cs_sim_report_csv(FILE *out, const cs_sim_row *rows, size_t n);
/* The table opens with the number of compared jobs. */
void cs_sim_report_table(FILE *out, const cs_sim_row *rows, size_t n);

/* One CSV line per job of one policy's run (with the header when `header`):
 * policy,id,submit,start,end,pool,zone,gpus,fate,energy_kwh,
 * operational_g,embodied_g; times in Unix seconds, start/end/pool/zone empty
 * for a job that did not run; fate one of ran, rejected, uncovered, no-fit,
 * not-started. For plots of when and where jobs ran.
 * Both CSVs quote a text field holding a comma, a quote, CR or LF as RFC 4180
 * says; cs_sim_trace_split_csv reads this one back (the summary CSV has more
 * columns than it takes). */
void cs_sim_report_jobs_csv(FILE *out, const cs_sim_world *w,
                            const char *policy, const cs_sim_outcome *o,
                            bool header);

/* A progress bar on stderr when it is a terminal; does nothing otherwise. */
void cs_sim_report_progress(void *label, size_t done, size_t total);
void cs_sim_report_progress_done(void);

#endif
