/* builtin.h: the offline default carbon signal, provider "builtin": a
 * typical hourly profile per month (12 x 24 values, UTC hours) per grid zone,
 * embedded in the binary so the service ranks nodes with no network and no
 * keys. Average (life-cycle where the source allows) gCO2e/kWh, always
 * marked estimated: it is a typical value, not a measurement. Derivation and
 * sources per zone: docs/carbon-data.md.
 * Thread-safe: yes (read-only data).
 * Ownership: cs_builtin_new returns a provider owned by the caller until
 * handed to cs_signals_add_provider; zone names returned are static. */
#ifndef CS_BUILTIN_H
#define CS_BUILTIN_H

#include <stddef.h>

#include "carbon/signal.h"

/* The "builtin" provider. Never fails (OOM aborts). */
cs_provider *cs_builtin_new(void);

/* The zones the profile covers, for docs and --print-config: zone i, or
 * NULL past the end. */
const char *cs_builtin_zone_at(size_t i);

/* Longest forecast one call returns (366 days); longer requests are
 * CS_ETOOBIG. */
#define CS_BUILTIN_MAX_SPAN (366 * 24 * 3600)

#endif
