/* clock.h: the service's notion of "now", injectable for tests and replays.
 * By default it is the system's real-time clock; cs_clock_set_fixed() pins it
 * (0 unpins). cs_clock_mono_ns() is a monotonic clock for measuring
 * durations and is never faked.
 * Thread-safe: yes (atomics).
 * Ownership: no pointers cross this interface. */
#ifndef CS_CLOCK_H
#define CS_CLOCK_H

#include <stdint.h>

int64_t cs_clock_now(void); /* Unix seconds */
void cs_clock_set_fixed(int64_t unix_seconds);
uint64_t cs_clock_mono_ns(void);

#endif
