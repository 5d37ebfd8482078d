#include "carbon/zones.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/signal.h"
#include "carbon/util/alloc.h"

#define MAX_ENTRIES 1024
#define MAX_REGION 64

/* Built-in regions. The location of every region and the reason for its
 * zone are in docs/zones.md ("Cloud regions to grid zones"); zone ids are
 * Electricity Maps zone keys. Regions whose site or balancing area could not
 * be pinned down are left out rather than guessed. */
static const char *const builtin_regions[][2] = {
    /* AWS */
    {"us-east-1", "US-MIDA-PJM"},
    {"us-east-2", "US-MIDA-PJM"},
    {"us-west-1", "US-CAL-CISO"},
    {"us-west-2", "US-NW-PACW"},
    {"ca-central-1", "CA-QC"},
    {"ca-west-1", "CA-AB"},
    {"sa-east-1", "BR-CS"},
    {"eu-central-1", "DE"},
    {"eu-central-2", "CH"},
    {"eu-west-1", "IE"},
    {"eu-west-2", "GB"},
    {"eu-west-3", "FR"},
    {"eu-south-1", "IT-NO"},
    {"eu-south-2", "ES"},
    {"eu-north-1", "SE-SE3"},
    {"ap-northeast-1", "JP-TK"},
    {"ap-northeast-2", "KR"},
    {"ap-northeast-3", "JP-KN"},
    {"ap-southeast-1", "SG"},
    {"ap-southeast-2", "AU-NSW"},
    {"ap-southeast-4", "AU-VIC"},
    {"ap-south-1", "IN-WE"},
    {"ap-east-1", "HK"},
    {"af-south-1", "ZA"},
    {"me-central-1", "AE"},
    {"il-central-1", "IL"},
    /* Google Cloud */
    {"us-central1", "US-MIDW-MISO"},
    {"us-east1", "US-CAR-SCEG"},
    {"us-east4", "US-MIDA-PJM"},
    {"us-east5", "US-MIDA-PJM"},
    {"us-west1", "US-NW-PACW"},
    {"us-west2", "US-CAL-CISO"},
    {"us-west3", "US-NW-PACE"},
    {"us-west4", "US-NW-NEVP"},
    {"us-south1", "US-TEX-ERCO"},
    {"northamerica-northeast1", "CA-QC"},
    {"northamerica-northeast2", "CA-ON"},
    {"southamerica-east1", "BR-CS"},
    {"southamerica-west1", "CL-SEN"},
    {"europe-west1", "BE"},
    {"europe-west2", "GB"},
    {"europe-west3", "DE"},
    {"europe-west4", "NL"},
    {"europe-west6", "CH"},
    {"europe-west8", "IT-NO"},
    {"europe-west9", "FR"},
    {"europe-west10", "DE"},
    {"europe-west12", "IT-NO"},
    {"europe-north1", "FI"},
    {"europe-north2", "SE-SE3"},
    {"europe-central2", "PL"},
    {"europe-southwest1", "ES"},
    {"asia-northeast1", "JP-TK"},
    {"asia-northeast2", "JP-KN"},
    {"asia-northeast3", "KR"},
    {"asia-southeast1", "SG"},
    {"asia-east1", "TW"},
    {"asia-east2", "HK"},
    {"asia-south1", "IN-WE"},
    {"australia-southeast1", "AU-NSW"},
    {"australia-southeast2", "AU-VIC"},
    {"me-west1", "IL"},
    {"africa-south1", "ZA"},
    /* Microsoft Azure */
    {"eastus", "US-MIDA-PJM"},
    {"eastus2", "US-MIDA-PJM"},
    {"centralus", "US-MIDW-MISO"},
    {"southcentralus", "US-TEX-ERCO"},
    {"westus", "US-CAL-CISO"},
    {"westus3", "US-SW-AZPS"},
    {"canadacentral", "CA-ON"},
    {"canadaeast", "CA-QC"},
    {"brazilsouth", "BR-CS"},
    {"northeurope", "IE"},
    {"westeurope", "NL"},
    {"uksouth", "GB"},
    {"ukwest", "GB"},
    {"francecentral", "FR"},
    {"germanywestcentral", "DE"},
    {"switzerlandnorth", "CH"},
    {"norwayeast", "NO-NO1"},
    {"swedencentral", "SE-SE3"},
    {"polandcentral", "PL"},
    {"italynorth", "IT-NO"},
    {"spaincentral", "ES"},
    {"japaneast", "JP-TK"},
    {"japanwest", "JP-KN"},
    {"koreacentral", "KR"},
    {"southeastasia", "SG"},
    {"eastasia", "HK"},
    {"australiaeast", "AU-NSW"},
    {"australiasoutheast", "AU-VIC"},
    {"centralindia", "IN-WE"},
    {"southindia", "IN-SO"},
    {"uaenorth", "AE"},
    {"southafricanorth", "ZA"},
};

typedef struct zone_entry {
  char *region, *zone;
} zone_entry;

struct cs_zone_map {
  zone_entry *e;
  size_t n, cap;
};

/* Region names as the clouds write them: lower-case letters, digits and
 * '-' (zone ids: cs_zone_id_valid). */
static bool valid_id(const char *s, size_t max)
{
  if (!s || !*s)
    return false;
  size_t len = strnlen(s, max);
  if (len == max)
    return false;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
    if (!ok)
      return false;
  }
  return true;
}

/* A plain decimal number of degrees within [-max, max]: digits, one
 * optional leading '-', at most one '.'. */
static bool degrees(const char *s, size_t n, double max)
{
  char buf[24];
  if (n == 0 || n >= sizeof(buf))
    return false;
  size_t i = s[0] == '-', dots = 0, digits = 0;
  for (; i < n; i++) {
    if (s[i] == '.')
      dots++;
    else if (s[i] >= '0' && s[i] <= '9')
      digits++;
    else
      return false;
  }
  if (dots > 1 || digits == 0)
    return false;
  memcpy(buf, s, n);
  buf[n] = '\0';
  double v = strtod(buf, NULL);
  return v >= -max && v <= max;
}

bool cs_zone_id_valid(const char *z)
{
  if (!z)
    return false;
  size_t len = strnlen(z, CS_ZONE_MAX);
  if (len == 0 || len == CS_ZONE_MAX)
    return false;
  const char *comma = memchr(z, ',', len);
  if (comma)
    return degrees(z, (size_t)(comma - z), 90) &&
           degrees(comma + 1, len - (size_t)(comma - z) - 1, 180);
  for (size_t i = 0; i < len; i++) {
    char ch = z[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
      return false;
  }
  return true;
}

static zone_entry *find(const cs_zone_map *m, const char *region)
{
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->e[i].region, region) == 0)
      return &m->e[i];
  return NULL;
}

static void append(cs_zone_map *m, const char *region, const char *zone)
{
  if (m->n == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 128;
    m->e = cs_realloc(m->e, m->cap * sizeof(*m->e));
  }
  m->e[m->n].region = cs_strdup(region);
  m->e[m->n].zone = cs_strdup(zone);
  m->n++;
}

cs_zone_map *cs_zone_map_new(void)
{
  cs_zone_map *m = cs_calloc(1, sizeof(*m));
  size_t n = sizeof(builtin_regions) / sizeof(builtin_regions[0]);
  for (size_t i = 0; i < n; i++)
    append(m, builtin_regions[i][0], builtin_regions[i][1]);
  return m;
}

void cs_zone_map_free(cs_zone_map *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++) {
    free(m->e[i].region);
    free(m->e[i].zone);
  }
  free(m->e);
  free(m);
}

cs_err cs_zone_map_set(cs_zone_map *m, const char *region, const char *zone)
{
  if (!m || !valid_id(region, MAX_REGION) || !cs_zone_id_valid(zone))
    return CS_EINVAL;
  zone_entry *e = find(m, region);
  if (e) {
    free(e->zone);
    e->zone = cs_strdup(zone);
    return CS_OK;
  }
  if (m->n == MAX_ENTRIES)
    return CS_ETOOBIG;
  append(m, region, zone);
  return CS_OK;
}

const char *cs_zone_map_lookup(const cs_zone_map *m, const char *region)
{
  if (!m || !region)
    return NULL;
  const zone_entry *e = find(m, region);
  return e ? e->zone : NULL;
}

size_t cs_zone_map_count(const cs_zone_map *m)
{
  return m ? m->n : 0;
}

void cs_zone_map_at(const cs_zone_map *m, size_t i, const char **region,
                    const char **zone)
{
  if (!m || i >= m->n) {
    *region = NULL;
    *zone = NULL;
    return;
  }
  *region = m->e[i].region;
  *zone = m->e[i].zone;
}
