/* score.h: turns per-node emission estimates into extender scores: the
 * lowest estimate gets 10, the highest 0, the rest in proportion, rounded
 * to integers, so equal estimates always get equal scores. Nodes without an
 * estimate get the neutral score, and so does every node when the pod is not
 * carbonshift's to rank (no accelerator requested, or opted out).
 * Thread-safe: yes (pure function).
 * Ownership: arrays are borrowed; scores are written into the caller's. */
#ifndef CS_SCORE_H
#define CS_SCORE_H

#include <stdbool.h>
#include <stddef.h>

#include "scheduler/estimate.h"

#define CS_SCORE_MAX 10
/* The middle of the scale: neither rewarded nor penalised. Every node of a
 * call getting the same score leaves the scheduler's own ranking as it was. */
#define CS_SCORE_NEUTRAL 5

void cs_score_nodes(const cs_estimate *estimates, size_t n, bool neutral_all,
                    int *scores);

#endif
