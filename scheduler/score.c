#include "scheduler/score.h"

#include <math.h>

void cs_score_lowest(const double *values, size_t n, int *scores)
{
  double lo = INFINITY;
  for (size_t i = 0; i < n; i++)
    if (!isnan(values[i]) && values[i] < lo)
      lo = values[i];
  for (size_t i = 0; i < n; i++) {
    double v = values[i];
    if (isnan(v)) {
      scores[i] = CS_SCORE_NEUTRAL;
    } else if (v <= lo) {
      scores[i] = CS_SCORE_MAX; /* the lowest, and any equal to it */
    } else if (!(lo > 0)) {
      scores[i] = 0; /* infinitely more than a zero */
    } else {
      long r = lround(CS_SCORE_MAX * lo / v);
      scores[i] = (int)(r < 0 ? 0 : r > CS_SCORE_MAX ? CS_SCORE_MAX : r);
    }
  }
}
