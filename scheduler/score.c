#include "scheduler/score.h"

#include <math.h>

void cs_score_nodes(const cs_estimate *estimates, size_t n, bool neutral_all,
                    int *scores)
{
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (neutral_all || !estimates[i].known)
      continue;
    if (estimates[i].total_g < lo)
      lo = estimates[i].total_g;
    if (estimates[i].total_g > hi)
      hi = estimates[i].total_g;
  }
  for (size_t i = 0; i < n; i++) {
    if (neutral_all || !estimates[i].known) {
      scores[i] = CS_SCORE_NEUTRAL;
    } else if (hi == lo) {
      scores[i] = CS_SCORE_MAX; /* all known nodes tie for the best */
    } else {
      double s = CS_SCORE_MAX * (hi - estimates[i].total_g) / (hi - lo);
      long r = lround(s);
      scores[i] = (int)(r < 0 ? 0 : r > CS_SCORE_MAX ? CS_SCORE_MAX : r);
    }
  }
}
