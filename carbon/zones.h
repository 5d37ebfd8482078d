/* zones.h: maps cloud regions (the `topology.kubernetes.io/region` node
 * label) to grid zones as carbon providers name them (Electricity Maps zone
 * ids: "DE", "US-MIDA-PJM", ...). A built-in table covers the main AWS, GCP
 * and Azure regions (sources in docs/zones.md); configuration
 * adds entries or overrides built-in ones.
 * Thread-safe: lookups are safe from any thread once configuration is done;
 * cs_zone_map_set is not.
 * Ownership: the map owns its strings; returned pointers are borrowed and
 * valid until cs_zone_map_free. */
#ifndef CS_ZONES_H
#define CS_ZONES_H

#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/error.h"

typedef struct cs_zone_map cs_zone_map;

/* Whether `z` is a grid zone id as carbonshift takes one anywhere (node
 * labels and annotations, zones.regions, nodes.defaultZone, routes,
 * static values, traces): 1..47 bytes of letters, digits, '-' and '_'
 * (Electricity Maps keys such as US-CAL-CISO, WattTime regions such as
 * CAISO_NORTH, UK regions such as GB-REGION-13), or coordinates
 * "lat,lon" in plain decimal degrees (38.58,-121.49), which WattTime
 * resolves to its region. */
bool cs_zone_id_valid(const char *z);

cs_zone_map *cs_zone_map_new(void); /* with the built-in table */
void cs_zone_map_free(cs_zone_map *m);
/* Adds or overrides one region. CS_EINVAL unless the region is 1..63 of
 * [a-z0-9-] and the zone a valid zone id (cs_zone_id_valid); CS_ETOOBIG
 * past 1024 entries. */
cs_err cs_zone_map_set(cs_zone_map *m, const char *region,
                       const char *zone) CS_MUST_USE;
/* The zone for a region (exact, case-sensitive as clouds write them), or
 * NULL. */
const char *cs_zone_map_lookup(const cs_zone_map *m, const char *region);

size_t cs_zone_map_count(const cs_zone_map *m);
void cs_zone_map_at(const cs_zone_map *m, size_t i, const char **region,
                    const char **zone);

#endif
