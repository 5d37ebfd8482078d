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

#include <stddef.h>

#include "carbon/util/error.h"

typedef struct cs_zone_map cs_zone_map;

cs_zone_map *cs_zone_map_new(void); /* with the built-in table */
void cs_zone_map_free(cs_zone_map *m);
/* Adds or overrides one region. CS_EINVAL unless the region is 1..63 of
 * [a-z0-9-] and the zone 1..47 of [A-Za-z0-9-]; CS_ETOOBIG past 1024
 * entries. */
cs_err cs_zone_map_set(cs_zone_map *m, const char *region,
                       const char *zone) CS_MUST_USE;
/* The zone for a region (exact, case-sensitive as clouds write them), or
 * NULL. */
const char *cs_zone_map_lookup(const cs_zone_map *m, const char *region);

size_t cs_zone_map_count(const cs_zone_map *m);
void cs_zone_map_at(const cs_zone_map *m, size_t i, const char **region,
                    const char **zone);

#endif
