/* tu_deadline.h: the absolute CLOCK_REALTIME instant `ms` milliseconds from
 * now, for pthread_cond_timedwait on a default condition variable, as the
 * fake servers wait. Header-only, so that a fake server needs no other test
 * object (the bench links fake_kube.o alone).
 * Thread-safe: yes. */
#ifndef TU_DEADLINE_H
#define TU_DEADLINE_H

#include <time.h>

static inline struct timespec tu_deadline_ms(long ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

#endif
