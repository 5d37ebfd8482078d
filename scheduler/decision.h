/* decision.h: one extender call from request body to reply. It decodes the
 * request (codec), reads node and pod facts, estimates each candidate's
 * emissions, scores or filters, writes the reply, logs one decision line and
 * updates the metrics. The HTTP server calls it; nothing here knows HTTP
 * beyond the status code of the reply.
 * Thread-safe: cs_decider_handle and cs_decider_ready may run on many threads
 * at once.
 * Ownership: the decider borrows the signals, catalog, zone map, node cache
 * and metrics given at creation (they must outlive it); the request body is
 * borrowed; the reply body is owned by the caller (free). */
#ifndef CS_DECISION_H
#define CS_DECISION_H

#include <stdbool.h>
#include <stddef.h>

#include "carbon/planner.h"
#include "carbon/util/buf.h"
#include "carbon/util/jscan.h"
#include "carbon/util/metrics.h"
#include "scheduler/estimate.h"
#include "scheduler/node_facts.h"
#include "scheduler/pod_facts.h"

/* The extender verbs carbonshift answers. Preempt judges kube-scheduler's
 * proposed evictions with the filter's policy: a node stays a candidate
 * only where the pod would pass the filter once room is made, so no pod is
 * evicted for one that carbonshift keeps waiting or over budget. */
typedef enum cs_verb {
  CS_VERB_FILTER,
  CS_VERB_PRIORITIZE,
  CS_VERB_PREEMPT
} cs_verb;

const char *cs_verb_name(cs_verb v); /* "filter", "prioritize", "preempt" */

/* One piece of a reply given in pieces: `len` bytes from `echo` (a pointer
 * into the request body) or, when echo is NULL, from the reply's own
 * body[off..off+len). */
typedef struct cs_reply_piece {
  const char *echo;
  size_t off, len;
} cs_reply_piece;

typedef struct cs_reply {
  int status; /* HTTP status: 200, or 400 for a request that cannot be
                 decoded (body then is {"Error": "..."}) */
  char *body; /* JSON, owned by the caller */
  size_t len;
  /* With a status of 400 or more: the text of the body's "Error", for the
   * access log line; "" otherwise. */
  char error[256];
  /* Set by the caller before the call: the request body stays valid and
   * unchanged until the reply has been sent, so the reply may point into
   * it instead of copying. A filter reply in full-object mode then echoes
   * the kept Nodes (tens of megabytes) as pieces of the request body:
   * `pieces` (owned by the caller, free) lists what to send in order, and
   * body holds only the bytes around them. NULL: body[0..len) is the
   * whole reply. */
  bool echo_ok;
  cs_reply_piece *pieces;
  size_t npieces;
} cs_reply;

typedef struct cs_node_cache cs_node_cache;

/* Where decisions are made visible in the cluster: Events on the pod and
 * annotations that store its plan. main wires it to the Kubernetes client;
 * both calls must return at once (queue, never block on the network). */
typedef struct cs_decision_sink {
  void *ctx;
  /* type is "Normal" or "Warning"; reason is CarbonDeferred,
   * CarbonBudgetExceeded, CarbonInvalidAnnotation, CarbonPlaced or
   * CarbonPreemptionDeclined. */
  void (*event)(void *ctx, const cs_pod_facts *pod, const char *type,
                const char *reason, const char *note);
  void (*annotate)(void *ctx, const cs_pod_facts *pod, const char *const *keys,
                   const char *const *values, size_t n);
} cs_decision_sink;

typedef struct cs_decider_deps {
  struct cs_signals *signals;         /* required */
  const cs_facts_params *facts;       /* required */
  const cs_estimate_params *estimate; /* required */
  cs_plan_params plan;                /* margins for waiting */
  int64_t forecast_horizon_s;         /* how far ahead to plan; 0: 72h */
  cs_node_cache *nodes;               /* NULL: names-only nodes unknown */
  cs_metrics *metrics;                /* NULL: no metrics */
  const cs_decision_sink *sink;       /* NULL: decisions only logged */
  size_t log_names_max; /* node names per Decision-line entry; 0: all */
  /* A decision the same as the last one logged in full for its pod and
   * verb, less than this long after it, is logged as a short line that
   * points at it (scheduler/decision_memo.h); 0: every line in full. */
  int64_t log_repeat_window_s;
} cs_decider_deps;

typedef struct cs_decider cs_decider;

cs_decider *cs_decider_new(const cs_decider_deps *deps);
void cs_decider_free(cs_decider *d);

/* Handles one call. Never fails: any problem becomes a well-formed reply
 * (400 with a JSON Error for undecodable input; a neutral answer and a
 * logged error for internal trouble). With a feed (carbon/util/jscan.h),
 * the body is still arriving: body[0..len) is what is there, and the
 * decode waits on the feed for the rest. The time spent waiting is not
 * counted in the decision's duration. */
void cs_decider_handle(cs_decider *d, cs_verb verb, const char *body,
                       size_t len, const cs_jscan_feed *feed,
                       const char *request_id, cs_reply *out);

/* Readiness for GET /readyz: appends a JSON object describing the signals
 * and node cache to `detail`; false when the service should not take
 * traffic. */
bool cs_decider_ready(cs_decider *d, cs_buf *detail);

#endif
