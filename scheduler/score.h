/* score.h: turns per-node figures where lower is better (a run's
 * emissions, or when they no longer decide, the time it takes) into
 * extender scores: the lowest gets 10, the highest 0, the rest in
 * proportion, rounded to integers, so equal figures always get equal
 * scores. A node without a figure (NaN) gets the neutral score.
 * Thread-safe: yes (pure function).
 * Ownership: arrays are borrowed; scores are written into the caller's. */
#ifndef CS_SCORE_H
#define CS_SCORE_H

#include <stddef.h>

#define CS_SCORE_MAX 10
/* The middle of the scale: neither rewarded nor penalised. Every node of a
 * call getting the same score leaves the scheduler's own ranking as it was. */
#define CS_SCORE_NEUTRAL 5

void cs_score_lowest(const double *values, size_t n, int *scores);

#endif
