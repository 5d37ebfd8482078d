/* pod_facts.h: what carbonshift needs to know about a Pod: the accelerators
 * it requests (containers summed, init containers as the scheduler counts
 * them, plus pod overhead), the expected runtime on the reference GPU, and
 * whether it opted out. Malformed annotations are recorded as problems
 * naming the annotation, the value and the expected form.
 * Thread-safe: yes (pure functions of their inputs).
 * Ownership: the cJSON input is borrowed; the facts struct is caller-owned
 * plain data. */
#ifndef CS_POD_FACTS_H
#define CS_POD_FACTS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "scheduler/node_facts.h"

#define CS_ANN_DURATION "carbonshift.io/expected-duration"
#define CS_ANN_SKIP "carbonshift.io/skip"
#define CS_ANN_MAX_DELAY "carbonshift.io/max-delay"
#define CS_ANN_DEADLINE "carbonshift.io/deadline"
#define CS_ANN_BUDGET "carbonshift.io/carbon-budget"
#define CS_ANN_ON_EXCEEDED "carbonshift.io/on-budget-exceeded"
/* Written by carbonshift: the planned start and the expected saving. */
#define CS_ANN_PLANNED_START "carbonshift.io/planned-start"
#define CS_ANN_EXPECTED_SAVING "carbonshift.io/expected-saving"

typedef enum cs_on_exceeded {
  CS_ON_EXCEEDED_WAIT = 0, /* wait for a window where some node fits */
  CS_ON_EXCEEDED_REJECT,   /* stay pending */
  CS_ON_EXCEEDED_ALLOW     /* run on the lowest-emission node, and warn */
} cs_on_exceeded;

const char *cs_on_exceeded_name(cs_on_exceeded v);

typedef struct cs_pod_facts {
  char ns[64];
  char name[CS_NODE_NAME_MAX];
  char uid[48];
  int64_t created_at;    /* Unix s; 0 unknown */
  double gpus;           /* accelerators requested */
  char gpu_resource[32]; /* which resource, "" when none */
  /* Entries of spec.resourceClaims: devices claimed through Dynamic
   * Resource Allocation, which carbonshift does not count (yet). */
  int resource_claims;
  double duration_s;       /* runtime on the reference GPU */
  bool duration_defaulted; /* no (valid) annotation: the default was used */
  bool skip;               /* carbonshift.io/skip: "true" */
  double max_delay_s;      /* 0: none */
  int64_t deadline;        /* Unix s; 0: none */
  double budget_g;         /* 0: none */
  cs_on_exceeded on_exceeded;
  int64_t planned_start; /* from an earlier decision; 0: none */
  /* status.nominatedNodeName: the node a preemption made room on, which
   * kube-scheduler tries alone first; "" when none. */
  char nominated_node[CS_NODE_NAME_MAX];
  /* Every malformed carbonshift annotation, each naming the annotation, the
   * value and the expected form. A pod with any is kept pending by /filter
   * (never silently ignored) and ranked with defaults by /prioritize. */
  char problems[CS_PROBLEMS_MAX];
} cs_pod_facts;

/* Reads a Pod object. `default_duration_s` is used when the duration
 * annotation is absent or malformed (and says so). CS_EINVAL when `pod` is
 * not an object. */
cs_err cs_pod_facts_read(const cJSON *pod, double default_duration_s,
                         cs_pod_facts *out) CS_MUST_USE;

#endif
