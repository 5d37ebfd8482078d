#include "scheduler/score.h"

#include <math.h>

void cs_score_lowest(const double *values, size_t n, int *scores)
{
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (isnan(values[i]))
      continue;
    if (values[i] < lo)
      lo = values[i];
    if (values[i] > hi)
      hi = values[i];
  }
  for (size_t i = 0; i < n; i++) {
    if (isnan(values[i])) {
      scores[i] = CS_SCORE_NEUTRAL;
    } else if (hi == lo) {
      scores[i] = CS_SCORE_MAX; /* all known nodes tie for the best */
    } else {
      double s = CS_SCORE_MAX * (hi - values[i]) / (hi - lo);
      long r = lround(s);
      scores[i] = (int)(r < 0 ? 0 : r > CS_SCORE_MAX ? CS_SCORE_MAX : r);
    }
  }
}
