/* carbon_setup.h: turns the carbon settings of a cs_config into providers
 * (static, file, electricitymaps, watttime, ukgrid, builtin, in that order
 * of preference) and cache options, for `serve` and `intensity` alike.
 * A remote provider is built when its credentials are set or a route names
 * it; file when it has traces or a route names it.
 * Thread-safe: no (start-up only).
 * Ownership: the config is borrowed; providers returned belong to the
 * caller (cs_provider_free or cs_signals_add_provider). */
#ifndef CS_CARBON_SETUP_H
#define CS_CARBON_SETUP_H

#include <stddef.h>

#include "carbon/signals.h"
#include "carbon/util/buf.h"
#include "cmd/carbonshift/config.h"

#define CS_CARBON_SETUP_MAX 8

/* Builds the configured providers into out[0..*n) (at most
 * CS_CARBON_SETUP_MAX). `force` (may be NULL) names one provider to build
 * even when nothing asks for it (`intensity --provider`). Each problem is
 * one "config: ..." line in `errors`. */
void cs_carbon_setup_providers(const cs_config *c, const char *force,
                               cs_provider **out, size_t *n, cs_buf *errors);

/* The cache and refresh options the settings give. */
void cs_carbon_setup_opts(const cs_config *c, cs_signals_opts *o);

#endif
