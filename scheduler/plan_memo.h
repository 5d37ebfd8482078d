/* plan_memo.h: the planned starts /filter decided lately, by pod UID.
 *
 * A deferred pod's plan reaches the pod as the carbonshift.io/planned-start
 * annotation through a patch sent from a queue (kube.c), and kube-scheduler
 * sends its own copy of the pod, so the scheduling cycle that deferred the
 * pod, and its preemption step (/preempt) right after, still see the pod
 * without it. The memo bridges that gap: /preempt holds a pod to the start
 * /filter just chose as it would to the annotation (cs_policy_preempt).
 * Thread-safe: yes; one mutex, held for a scan of the bounded table.
 * Ownership: the memo copies nothing it is given but a hash of the UID. */
#ifndef CS_PLAN_MEMO_H
#define CS_PLAN_MEMO_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_plan_memo cs_plan_memo;

/* A memo of at most `capacity` pods; when full, a pod whose start has
 * passed, else the one recorded longest ago, is forgotten first. */
cs_plan_memo *cs_plan_memo_new(size_t capacity);
void cs_plan_memo_free(cs_plan_memo *m);

/* Records, at `now`, that /filter deferred the pod `uid` to `start`; a
 * start of 0 (or not after now) forgets the pod: /filter did not defer it. */
void cs_plan_memo_put(cs_plan_memo *m, const char *uid, int64_t start,
                      int64_t now);

/* The start recorded for `uid` while it is still after `now`; 0 when none. */
int64_t cs_plan_memo_get(cs_plan_memo *m, const char *uid, int64_t now);

#endif
