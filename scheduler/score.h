/* score.h: turns per-node figures where lower is better (a run's
 * emissions, or when they no longer decide, the time it takes; never
 * negative) into extender scores in proportion to the lowest:
 * 10 x lowest / figure, rounded, so the lowest gets 10, twice the lowest 5,
 * ten times 1, and equal figures always get equal scores. Unlike a scale
 * stretched between the lowest and the highest of the call, a 1 %
 * difference stays a 1 % difference (10 and 10, not 10 and 0), and one
 * outlier does not squeeze the others together at the top. A node without
 * a figure (NaN) gets the neutral score.
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
