/* clock.h: the service's notion of "now", injectable for tests and replays.
 * By default it is the system's real-time clock; cs_clock_set_fixed() pins it
 * (0 unpins). cs_clock_mono_ns() is a monotonic clock for measuring
 * durations and is never faked. cs_time_floor() is the one rounding of a
 * time down to the start of its period (an hour, a forecast step).
 * Thread-safe: yes (atomics).
 * Ownership: no pointers cross this interface. */
#ifndef CS_CLOCK_H
#define CS_CLOCK_H

#include <stdint.h>

int64_t cs_clock_now(void); /* Unix seconds */
void cs_clock_set_fixed(int64_t unix_seconds);
uint64_t cs_clock_mono_ns(void);

/* The start of the `step`-second period holding t: the largest multiple of
 * step at or before t, also for times before 1970 (C's % truncates toward
 * zero, so t - t % step alone would round those up). step must be > 0. */
int64_t cs_time_floor(int64_t t, int64_t step);

#endif
