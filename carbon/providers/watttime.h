/* watttime.h: the WattTime API v3 as a carbon provider: marginal (co2_moer,
 * the default) or average (co2_aoer) emissions, converted to gCO2/kWh from
 * the units the response declares. A zone is a WattTime region code
 * ("CAISO_NORTH") or coordinates "lat,lon" ("37.77,-122.42"), resolved with
 * /v3/region-from-loc and cached for a day.
 * Thread-safe: yes; the login token and region cache are under a mutex.
 * Ownership: option strings are copied by cs_watttime_new; the returned
 * provider belongs to the caller until handed to cs_signals_add_provider.
 * The password and token are never logged. */
#ifndef CS_WATTTIME_H
#define CS_WATTTIME_H

#include "carbon/signal.h"

#define CS_WATTTIME_DEFAULT_URL "https://api.watttime.org"

typedef struct cs_watttime_opts {
  const char *base_url;    /* NULL: the default above (no /v3) */
  const char *username;    /* required */
  const char *password;    /* required */
  const char *signal_type; /* "co2_moer" (NULL) or "co2_aoer" */
  int horizon_hours;       /* forecast horizon, 1..72; 0: 24 */
  long timeout_ms;         /* per request; 0: 10 s */
} cs_watttime_opts;

/* Fills base_url, username and password from CARBONSHIFT_WATTTIME_URL,
 * CARBONSHIFT_WATTTIME_USERNAME and CARBONSHIFT_WATTTIME_PASSWORD. */
void cs_watttime_opts_from_env(cs_watttime_opts *o);

cs_err cs_watttime_new(const cs_watttime_opts *o, cs_provider **out, char *err,
                       size_t errcap) CS_MUST_USE;

/* Converts a value in `units` (meta.units) to g/kWh. CS_EUNSUPPORTED for
 * "percentile" (an index, not an intensity), CS_EINVAL for anything else
 * unknown. */
cs_err cs_watttime_to_g_per_kwh(const char *units, double v,
                                double *out) CS_MUST_USE;

#endif
