/* signals.h: the one place the scheduling code asks for grid intensity. It
 * holds the configured providers, routes each zone to an ordered list of
 * them (first that answers wins), and refuses values whose signal type
 * differs from the one nodes are ranked on: a marginal and an average value
 * are never compared. No answer is CS_ENOTFOUND, which callers treat as
 * neutral; a number is never invented.
 * Thread-safe: cs_signals_current/forecast/status may be called from any
 * number of threads once configuration (add_provider, set_route) is done.
 * Ownership: providers handed to cs_signals_add_provider belong to the
 * registry; output values are copied to the caller; series are owned by the
 * caller (cs_series_free). */
#ifndef CS_SIGNALS_H
#define CS_SIGNALS_H

#include "carbon/signal.h"
#include "carbon/util/buf.h"

typedef struct cs_signals cs_signals;

cs_signals *cs_signals_new(cs_signal_type ranking_type);
void cs_signals_free(cs_signals *s);
cs_signal_type cs_signals_ranking_type(const cs_signals *s);

/* Adds a provider (ownership transferred). Names must be unique. */
cs_err cs_signals_add_provider(cs_signals *s, cs_provider *p) CS_MUST_USE;
/* Routes `zone` ("*" for every zone without its own route) to providers by
 * name, in order of preference. Without any route, every provider is tried
 * in the order added. CS_ENOTFOUND names an unknown provider. */
cs_err cs_signals_set_route(cs_signals *s, const char *zone,
                            const char *const *providers, size_t n) CS_MUST_USE;

/* The value in force for `zone` at `now`. With `only` non-NULL, asks that
 * provider alone. */
cs_err cs_signals_current(cs_signals *s, const char *zone, const char *only,
                          int64_t now, cs_signal *out) CS_MUST_USE;
/* The forecast over [from, to) from the first provider that has one. */
cs_err cs_signals_forecast(cs_signals *s, const char *zone, const char *only,
                           int64_t from, int64_t to,
                           cs_series *out) CS_MUST_USE;

/* Appends a JSON object describing every provider and route's health to
 * `out`; returns false when any configured signal is degraded. */
bool cs_signals_status(cs_signals *s, int64_t now, cs_buf *out);

#endif
