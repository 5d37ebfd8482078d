/* sim_jobs.h: the jobs a simulation replays: read from the Philly trace
 * format (`timestamp,duration,num_gpus,gpu_time,cluster`), from the generic
 * CSV (`id,submit,duration,gpus` plus optional `max_delay`, `deadline`,
 * `budget`, `expected_duration`), or generated as the Let's Wait Awhile
 * workloads (nightly jobs, and ML training jobs with next-workday
 * deadlines); then shifted onto the carbon year and given a uniform slack.
 * Thread-safe: a job list is plain data.
 * Ownership: the caller owns a cs_sim_jobs (cs_sim_jobs_free); paths are
 * borrowed. */
#ifndef CS_SIM_JOBS_H
#define CS_SIM_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/error.h"

#define CS_SIM_JOBS_MAX 2000000
#define CS_SIM_JOBS_MAX_BYTES (256u << 20)
/* The most GPUs one job may ask for: more is a data error, and would only
 * ever be "no pool large enough". */
#define CS_SIM_GPUS_MAX 1000000.0

typedef struct cs_sim_job {
  char id[24];
  int64_t submit;       /* nominal submission: the baseline starts it then */
  int64_t earliest;     /* earliest allowed start (<= submit) */
  double duration_s;    /* true runtime on the reference GPU */
  double expected_s;    /* the user's estimate the policy sees */
  double gpus;          /* accelerators requested */
  double max_delay_s;   /* after `earliest`, when given */
  bool max_delay_given; /* false: blank, so --slack may give one; given
                           0: the job may not wait */
  int64_t deadline;     /* finish by; 0: none */
  double budget_g;      /* carbon budget; 0: none */
  size_t seq;           /* input order, the last tie-break when sorting */
} cs_sim_job;

typedef struct cs_sim_jobs {
  cs_sim_job *v;
  size_t n;
  size_t skipped; /* rows read but not replayable (no GPU, no duration) */
} cs_sim_jobs;

void cs_sim_jobs_free(cs_sim_jobs *j);

/* Reads a jobs file; the format is recognised from its header. `err`
 * names the line and field on CS_EPARSE. */
cs_err cs_sim_jobs_load(const char *path, cs_sim_jobs *out, char *err,
                        size_t errcap) CS_MUST_USE;

/* Let's Wait Awhile scenario I: a job of 30 minutes and one GPU every day
 * of `year` at 01:00 UTC (365 of them, as the artefact), movable by
 * `window_s` either way. */
void cs_sim_jobs_lwa_nightly(int year, double window_s, cs_sim_jobs *out);

typedef enum cs_sim_lwa_deadline {
  CS_SIM_LWA_NEXT_WORKDAY = 0, /* 09:00 of the next workday */
  CS_SIM_LWA_SEMI_WEEKLY       /* the next Monday or Thursday 09:00 */
} cs_sim_lwa_deadline;

/* Let's Wait Awhile scenario II: `n` jobs of 4 to 89.5 hours in 30-minute
 * steps, submitted on the workdays of `year` between 09:00 and 16:30 in
 * 30-minute steps, days drawn uniformly; the deadline follows the
 * artefact's rule from the job's original finish time. Seeded. */
void cs_sim_jobs_lwa_ml(int year, size_t n, cs_sim_lwa_deadline rule,
                        uint64_t seed, cs_sim_jobs *out);

/* Moves every job by whole weeks so that the earliest start lands in
 * `year` (the day of week and time of day are kept): the nearest whole
 * number of weeks between the two years' starts, a week more or less when
 * that would carry the earliest start across New Year. Returns the shift
 * in seconds. */
int64_t cs_sim_jobs_shift_to_year(cs_sim_jobs *j, int year);

/* Gives every job whose max-delay was not given `slack_s` of it (a job with
 * its own keeps it, an explicit 0 included). */
void cs_sim_jobs_set_slack(cs_sim_jobs *j, double slack_s);

/* Keeps the jobs whose earliest start lies in [from, to). */
void cs_sim_jobs_window(cs_sim_jobs *j, int64_t from, int64_t to);

/* Sorts by earliest start, then submit, then input order. */
void cs_sim_jobs_sort(cs_sim_jobs *j);

/* Unix seconds of 00:00 UTC on 1 January of `year`. */
int64_t cs_sim_year_start(int year);

#endif
