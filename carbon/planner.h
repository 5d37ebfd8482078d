/* planner.h: chooses when a flexible job should start. For each option (a
 * candidate node: its zone's forecast, the job's energy and runtime there,
 * its latest start and the job's budget) it finds the start in
 * [now, latest start] that minimises the whole run's forecast emissions,
 * then decides whether waiting beats starting now by the configured margins,
 * keeping an earlier plan unless a new forecast improves on it by a margin.
 * The search is exact: the emissions of a run are piecewise linear in its
 * start, so only starts where the run's beginning or end meets a forecast
 * step are examined, each in O(log n).
 * Thread-safe: yes (pure function of its inputs).
 * Ownership: options and their forecasts are borrowed; the plan is caller
 * owned plain data. */
#ifndef CS_PLANNER_H
#define CS_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/signal.h"

typedef struct cs_plan_option {
  const cs_series *forecast; /* the zone's forecast; NULL when none */
  double current;            /* intensity now, g/kWh; < 0 when unknown */
  double energy_kwh;         /* facility energy of the whole run */
  double embodied_g;         /* embodied share, the same at any start */
  int64_t runtime_s;
  int64_t latest_start; /* Unix s; the run must start by then */
  double budget_g;      /* the most the run may emit; 0 = no budget */
} cs_plan_option;

typedef struct cs_plan_params {
  double min_saving_rel;   /* wait only to save at least this share, */
  double min_saving_abs_g; /* and at least this many grams */
  double replan_rel;       /* a kept plan yields only to one better by this */
} cs_plan_params;

typedef struct cs_plan {
  bool wait;              /* true: start later, at `start` */
  bool feasible;          /* some option fits its budget at some start */
  bool fits_now;          /* some option fits its budget starting now */
  bool kept;              /* the previous plan was kept (hysteresis) */
  int64_t start;          /* planned start; now when not waiting */
  size_t option;          /* the best option at `start` */
  double start_g;         /* its emissions starting at `start` */
  double start_intensity; /* its mean intensity over that run */
  size_t now_option;      /* the best option starting now (budget aside) */
  double now_g;           /* its emissions starting now; NAN when unknown */
  double now_intensity;
  bool forecast_short; /* no option's forecast covered the whole run of
                          any start from now to its latest start */
} cs_plan;

/* Plans a job. `kept_start` is the start of an earlier plan (0: none). A
 * later start is only considered when the option's forecast covers the
 * whole run from it; "now" is judged by cs_plan_intensity_now (the part
 * of the run the forecast covers, else the current value). CS_ENOTFOUND when no
 * option has any usable intensity (the caller treats the pod neutrally). */
cs_err cs_plan_window(const cs_plan_params *p, const cs_plan_option *opts,
                      size_t n, int64_t now, int64_t kept_start,
                      cs_plan *out) CS_MUST_USE;

/* cs_plan_window with "starting now" judged at `at` (at most `now`: a pod
 * shortly after its planned start is judged as starting then), while a
 * wait is planned only to a start after `now`: a start already passed is
 * no start to wait for. cs_plan_window(.., now, ..) is
 * cs_plan_window_at(.., now, now, ..). */
cs_err cs_plan_window_at(const cs_plan_params *p, const cs_plan_option *opts,
                         size_t n, int64_t at, int64_t now, int64_t kept_start,
                         cs_plan *out) CS_MUST_USE;

/* The emissions of running option `o` from `start`, when its forecast covers
 * the run: CS_ENOTFOUND otherwise. Exposed for tests and the simulator. */
cs_err cs_plan_emissions(const cs_plan_option *o, int64_t start, double *g,
                         double *mean_intensity) CS_MUST_USE;

/* The mean intensity of a run of `runtime_s` starting at `now`, as every
 * decision takes "starting now": the forecast's mean over the run when it
 * covers the run; when it covers only a first part of it (a run longer
 * than the forecast, or a hole later on), that part's mean, held for the
 * rest; else `current` held for the whole run (what an operator would
 * assume without a forecast; < 0: unknown). `*forecast_s` gets how much of
 * the run the forecast covered (0: the current value). False when neither
 * is known. Starts later than now are only planned on a forecast that
 * covers their whole run (cs_plan_emissions). */
bool cs_plan_intensity_now(const cs_series *forecast, double current,
                           int64_t now, int64_t runtime_s, double *mean,
                           int64_t *forecast_s);

#endif
