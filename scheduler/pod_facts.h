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

typedef struct cs_pod_facts {
  char ns[64];
  char name[CS_NODE_NAME_MAX];
  char uid[48];
  int64_t created_at;      /* Unix s; 0 unknown */
  double gpus;             /* accelerators requested */
  char gpu_resource[32];   /* which resource, "" when none */
  double duration_s;       /* runtime on the reference GPU */
  bool duration_defaulted; /* no (valid) annotation: the default was used */
  bool skip;               /* carbonshift.io/skip: "true" */
  char problems[CS_PROBLEMS_MAX];
} cs_pod_facts;

/* Reads a Pod object. `default_duration_s` is used when the duration
 * annotation is absent or malformed (and says so). CS_EINVAL when `pod` is
 * not an object. */
cs_err cs_pod_facts_read(const cJSON *pod, double default_duration_s,
                         cs_pod_facts *out) CS_MUST_USE;

#endif
