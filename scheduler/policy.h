/* policy.h: carbonshift's scheduling policy for one pod at one instant,
 * free of any wire format: given the pod's facts and each candidate node's
 * facts, it looks up grid signals, estimates each node's emissions, scores
 * nodes (prioritize), and decides the filter: malformed annotations, carbon
 * budgets, and waiting for a greener window through the planner. The
 * extender (scheduler/decision.c) and the simulator (carbonshift simulate)
 * both call it, so the policy exists once.
 * Thread-safe: a cs_policy_call belongs to one thread; calls share nothing
 * but the (thread-safe) signals registry.
 * Ownership: the params, pod facts and node names are borrowed for the
 * call's life; a call owns its node table, zone table, forecasts and reasons
 * until cs_policy_end. */
#ifndef CS_POLICY_H
#define CS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/planner.h"
#include "carbon/signal.h"
#include "scheduler/estimate.h"
#include "scheduler/node_facts.h"
#include "scheduler/pod_facts.h"

struct cs_signals;

typedef enum cs_verdict {
  CS_PASS = 0,
  CS_FAIL,             /* FailedNodes: preemption may help */
  CS_FAIL_UNRESOLVABLE /* FailedAndUnresolvableNodes: it cannot */
} cs_verdict;

/* kube-scheduler tries a pod it was told to wait again within about 5.5
 * minutes (podMaxInUnschedulablePodsDuration, 5 min, checked every 30 s),
 * plus its backoff of up to 10 s: a wait is planned to end at least this
 * long before the latest start, or the pod could start after it and miss
 * its deadline or overrun its max-delay. Starting now may use the latest
 * start itself. */
#define CS_POLICY_WAIT_MARGIN_S (6 * 60)

typedef struct cs_policy_params {
  struct cs_signals *signals;         /* required */
  const cs_estimate_params *estimate; /* required */
  cs_plan_params plan;                /* margins for waiting */
  int64_t forecast_horizon_s;         /* how far ahead to plan; 0: 72h */
  /* A planned wait ends at least this long before the latest start:
   * CS_POLICY_WAIT_MARGIN_S behind kube-scheduler; 0 in the simulator,
   * whose scheduler tries a pod again at its planned start exactly. */
  int64_t wait_margin_s;
} cs_policy_params;

/* A zone's intensity over a run of one length from one instant (the
 * call's `at` or `now`; cs_plan_intensity_now). */
typedef struct cs_run_mean {
  int64_t from;
  int64_t runtime_s;
  bool ok; /* false: neither a forecast nor a current value */
  double mean;
  int64_t forecast_s; /* how much of the run the forecast covered */
} cs_run_mean;

#define CS_RUN_MEANS_MAX 8

/* One zone's data, looked up once per call, from one provider. */
typedef struct cs_zone_eval {
  char zone[CS_ZONE_MAX];
  bool found; /* a current value, in `sig` */
  cs_signal sig;
  bool has_forecast;
  cs_series forecast;
  /* While the call's `at` is a planned start before its `now`: the zone's
   * data as a call judged at `now` takes it, which can come from another
   * provider, since cs_signals_zone_data picks one by what it says for the
   * instant judged. est_now is made from it, and settle_at puts it in place
   * of the fields above when the call is judged at now after all. */
  bool found_now;
  cs_signal sig_now;
  bool has_forecast_now;
  cs_series forecast_now;
  /* Means already taken, by start and run length: the nodes of a zone
   * share a few GPU models, so thousands of nodes need a few means. */
  cs_run_mean means[CS_RUN_MEANS_MAX];
  size_t nmeans;
} cs_zone_eval;

/* What a call keeps of each node: compact, since a call may carry thousands
 * of nodes. */
typedef struct cs_node_eval {
  const cs_gpu_model *gpu;
  double gpus;
  double pue;
  int64_t installed_at;
  int zone; /* index into the call's zone table; -1: none */
  cs_zone_source zone_source;
  cs_pue_source pue_source;
  bool facts_known; /* false: nothing known about the node */
  /* The run starting now (at the call's `at`), as the planner judges it
   * (cs_plan_intensity_now): est.intensity is the zone's forecast mean
   * over the run, or over the part of it the forecast covers
   * (`forecast_s` seconds), else the current intensity (forecast_s 0).
   * Scores, budgets, messages and the decision line all use this one
   * figure. */
  cs_estimate est;
  int64_t forecast_s;
  /* The same, starting at the call's `now`, while `at` is still the
   * pod's planned start; it replaces est when no node fits then. */
  cs_estimate est_now;
  int64_t forecast_s_now;
  bool late; /* after cs_policy_filter: cannot finish by the deadline */
  int score; /* after cs_policy_prioritize */
  cs_verdict verdict; /* after cs_policy_filter */
  char *reason;       /* owned; NULL for passing nodes */
} cs_node_eval;

/* What the filter decision wants the cluster to see. */
typedef struct cs_policy_event {
  const char *type;   /* "Normal" or "Warning"; NULL: no event */
  const char *reason; /* CarbonDeferred, CarbonBudgetExceeded, ... */
  char note[CS_PROBLEMS_MAX + 128];
} cs_policy_event;

typedef struct cs_policy_call {
  const cs_policy_params *p;
  int64_t now;
  /* The instant a run "starting now" starts at: now, or for a pod with a
   * budget shortly after its planned start, that start while some node
   * fits the budget then (policy.c, judged_now, settle_at). */
  int64_t at;
  bool at_settled; /* settle_at has run */
  const cs_pod_facts *pod;
  bool neutral;   /* the pod is not ours to rank */
  bool by_finish; /* prioritize ranked by runtime (deadline_lost) */
  const char *neutral_why;
  cs_node_eval *nodes;
  size_t n;
  cs_zone_eval *zones;
  size_t nzones, zones_cap;
  /* Filter results. */
  const char *outcome;
  bool planned; /* the planner ran; `plan` holds its answer */
  cs_plan plan;
  int64_t latest_start; /* the latest over the nodes with an estimate; in
                           the past once the slack has run out */
  /* The pod has a deadline no node whose runtime is known can meet:
   * prioritize ranks by runtime, the filter warns. */
  bool deadline_lost;
  cs_policy_event event;
  bool store_plan;          /* annotate the pod with the plan below */
  char planned_start[21];   /* RFC 3339 */
  char expected_saving[32]; /* "1234g" or "unknown" */
} cs_policy_call;

void cs_policy_begin(cs_policy_call *c, const cs_policy_params *p,
                     const cs_pod_facts *pod, size_t nnodes, int64_t now);
/* Evaluates node i from its facts; NULL when nothing is known of it. */
void cs_policy_add_node(cs_policy_call *c, size_t i, const cs_node_facts *f);
/* Scores every node (0..10). Returns whether any estimate was known. */
bool cs_policy_prioritize(cs_policy_call *c);
/* Decides every node's verdict and reason. `names` name the nodes in
 * messages. */
void cs_policy_filter(cs_policy_call *c, const char *const *names);
/* The filter's judgement of a pod on the nodes a preemption would make room
 * on: cs_policy_filter over them, except that a pod whose stored plan
 * (carbonshift.io/planned-start) is still ahead is held when no candidate
 * has the data to plan by. The filter, over nodes with data, found that
 * wait; a candidate without data would otherwise be neutral and let pods
 * be evicted for a pod that is waiting. */
void cs_policy_preempt(cs_policy_call *c, const char *const *names);
void cs_policy_end(cs_policy_call *c);

/* The zone name of node i, or NULL. */
const char *cs_policy_zone_of(const cs_policy_call *c, size_t i);

/* Where a known estimate's intensity came from. */
typedef enum cs_intensity_basis {
  CS_BASIS_CURRENT,       /* the current value, held for the run */
  CS_BASIS_FORECAST_PART, /* the mean of the forecast's first part of the
                             run, held for the rest */
  CS_BASIS_FORECAST_RUN   /* the forecast's mean over the whole run */
} cs_intensity_basis;

cs_intensity_basis cs_policy_basis(const cs_node_eval *e);

#endif
