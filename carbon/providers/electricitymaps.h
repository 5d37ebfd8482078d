/* electricitymaps.h: the Electricity Maps API v3 as a carbon provider
 * (average, consumption-based intensity in gCO2eq/kWh): the latest value,
 * the last 24 h of history and the forecast for a zone id such as "DE".
 * Thread-safe: yes; the provider keeps no per-request state.
 * Ownership: option strings are copied by cs_electricitymaps_new; the
 * returned provider belongs to the caller (cs_provider_free) until handed to
 * cs_signals_add_provider. The token is never logged. */
#ifndef CS_ELECTRICITYMAPS_H
#define CS_ELECTRICITYMAPS_H

#include <stdbool.h>

#include "carbon/signal.h"

#define CS_ELECTRICITYMAPS_DEFAULT_URL "https://api.electricitymaps.com/v3"

typedef struct cs_electricitymaps_opts {
  const char *base_url;             /* NULL: the default above */
  const char *token;                /* required: the auth-token header */
  const char *emission_factor_type; /* "lifecycle" (NULL) or "direct" */
  bool disable_estimations;         /* send disableEstimations=true */
  long timeout_ms;                  /* per request; 0: 10 s */
} cs_electricitymaps_opts;

/* Fills base_url and token from CARBONSHIFT_ELECTRICITYMAPS_URL and
 * CARBONSHIFT_ELECTRICITYMAPS_TOKEN where set (pointers into the
 * environment). */
void cs_electricitymaps_opts_from_env(cs_electricitymaps_opts *o);

/* CS_EINVAL for a bad URL or emission factor type, CS_EAUTH without a
 * token; `err` says which. */
cs_err cs_electricitymaps_new(const cs_electricitymaps_opts *o,
                              cs_provider **out, char *err,
                              size_t errcap) CS_MUST_USE;

#endif
