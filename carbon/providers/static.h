/* static.h: provider "static": fixed intensities per zone set by the
 * operator in configuration. Values are marked estimated (an operator's
 * figure, not a measurement of the current grid), so nothing downstream
 * mistakes them for live data; forecasts are the same value every hour.
 * Thread-safe: yes once constructed (read-only).
 * Ownership: the zones array and its strings are copied; the provider is
 * owned by the caller until handed to cs_signals_add_provider. */
#ifndef CS_STATIC_H
#define CS_STATIC_H

#include <stddef.h>

#include "carbon/signal.h"

typedef struct cs_static_zone {
  const char *zone;
  double g_per_kwh;
} cs_static_zone;

#define CS_STATIC_MAX_ZONES 1024
#define CS_STATIC_MAX_SPAN (366 * 24 * 3600)

/* A "static" provider serving `n` zones with signal type `type`.
 * CS_EINVAL: NULL zones with n > 0, an empty zone or one of CS_ZONE_MAX
 * bytes or more, a duplicate zone, a value that is negative, NaN or
 * infinite, or an unknown type; CS_ETOOBIG: n > CS_STATIC_MAX_ZONES. *out is
 * written only on success. */
cs_err cs_static_new(const cs_static_zone *zones, size_t n, cs_signal_type type,
                     cs_provider **out) CS_MUST_USE;

#endif
