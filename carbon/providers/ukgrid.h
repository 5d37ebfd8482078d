/* ukgrid.h: the UK Carbon Intensity API (NESO) as a carbon provider:
 * average, generation-based intensity for Great Britain, half-hourly, no
 * credentials. National values prefer `actual` over `forecast` when the
 * period is settled; regional values are forecasts (marked estimated).
 * Zones: "GB" (national), "GB-REGION-<1..17>", "GB-POSTCODE-<outward code>",
 * or any name mapped to one of "national", "regionid:<n>",
 * "postcode:<outward>" in the options.
 * Thread-safe: yes.
 * Ownership: options are copied by cs_ukgrid_new; the provider belongs to
 * the caller until handed to cs_signals_add_provider. */
#ifndef CS_UKGRID_H
#define CS_UKGRID_H

#include "carbon/signal.h"

#define CS_UKGRID_DEFAULT_URL "https://api.carbonintensity.org.uk"

typedef struct cs_ukgrid_zone {
  const char *zone;   /* the zone name nodes use */
  const char *target; /* "national", "regionid:13", "postcode:RG10" */
} cs_ukgrid_zone;

typedef struct cs_ukgrid_opts {
  const char *base_url; /* NULL: the default above */
  const cs_ukgrid_zone *zones;
  size_t nzones;
  long timeout_ms; /* per request; 0: 10 s */
} cs_ukgrid_opts;

/* Fills base_url from CARBONSHIFT_UKGRID_URL. */
void cs_ukgrid_opts_from_env(cs_ukgrid_opts *o);

cs_err cs_ukgrid_new(const cs_ukgrid_opts *o, cs_provider **out, char *err,
                     size_t errcap) CS_MUST_USE;

#endif
