#include "carbon/util/clock.h"

#include <stdatomic.h>
#include <time.h>

static atomic_llong fixed_now = 0;

int64_t cs_clock_now(void)
{
  long long f = atomic_load(&fixed_now);
  if (f)
    return f;
  return (int64_t)time(NULL);
}

void cs_clock_set_fixed(int64_t unix_seconds)
{
  atomic_store(&fixed_now, (long long)unix_seconds);
}

uint64_t cs_clock_mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t cs_time_floor(int64_t t, int64_t step)
{
  int64_t r = t % step;
  return r < 0 ? t - r - step : t - r;
}
