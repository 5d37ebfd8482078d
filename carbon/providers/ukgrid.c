#include "carbon/providers/ukgrid.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/remote.h"
#include "carbon/util/alloc.h"
#include "carbon/util/parse.h"

#define MAX_ZONES 64
#define PERIOD_S 1800

typedef enum kind { NATIONAL, REGION, POSTCODE } kind;

typedef struct target {
  kind k;
  char arg[16]; /* region id or outward postcode, as asked for */
  int region;   /* the region id, for REGION */
} target;

typedef struct mapping {
  char zone[CS_ZONE_MAX];
  target t;
} mapping;

typedef struct uk {
  cs_provider base;
  cs_remote r;
  mapping map[MAX_ZONES];
  size_t nmap;
} uk;

void cs_ukgrid_opts_from_env(cs_ukgrid_opts *o)
{
  const char *u = getenv("CARBONSHIFT_UKGRID_URL");
  if (u && *u)
    o->base_url = u;
}

static bool parse_region(const char *s, target *t)
{
  int64_t id;
  if (cs_parse_int64(s, &id, NULL) != CS_OK || id < 1 || id > 17)
    return false;
  t->k = REGION;
  t->region = (int)id;
  snprintf(t->arg, sizeof(t->arg), "%d", t->region);
  return true;
}

/* An outward code: 2 to 4 letters and digits, starting with a letter. */
static bool parse_postcode(const char *s, target *t)
{
  size_t n = strlen(s);
  if (n < 2 || n > 4 || !isalpha((unsigned char)s[0]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]))
      return false;
  t->k = POSTCODE;
  for (size_t i = 0; i <= n; i++)
    t->arg[i] = (char)toupper((unsigned char)s[i]);
  return true;
}

static bool parse_target(const char *s, target *t)
{
  memset(t, 0, sizeof(*t));
  if (strcmp(s, "national") == 0) {
    t->k = NATIONAL;
    return true;
  }
  if (strncmp(s, "regionid:", 9) == 0)
    return parse_region(s + 9, t);
  if (strncmp(s, "postcode:", 9) == 0)
    return parse_postcode(s + 9, t);
  return false;
}

static bool zone_target(const uk *u, const char *zone, target *t)
{
  for (size_t i = 0; i < u->nmap; i++) {
    if (strcmp(u->map[i].zone, zone) == 0) {
      *t = u->map[i].t;
      return true;
    }
  }
  memset(t, 0, sizeof(*t));
  if (strcmp(zone, "GB") == 0) {
    t->k = NATIONAL;
    return true;
  }
  if (strncmp(zone, "GB-REGION-", 10) == 0)
    return parse_region(zone + 10, t);
  if (strncmp(zone, "GB-POSTCODE-", 12) == 0)
    return parse_postcode(zone + 12, t);
  return false;
}

/* CS_EPARSE when a regional answer names another region than the one
 * asked for (its `regionid`, or for a postcode its `postcode`): another
 * place's figures must never be served as this one's (remote.h). An absent
 * member passes; a postcode's region is the API's to choose. */
static cs_err same_region(const cJSON *d, const target *t, char *err,
                          size_t errcap)
{
  if (t->k == POSTCODE)
    return cs_remote_same_zone(d, "postcode", "response.data", t->arg, err,
                               errcap);
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(d, "regionid");
  if (!id || cJSON_IsNull(id))
    return CS_OK;
  if (!cJSON_IsNumber(id)) {
    snprintf(err, errcap, "response.data.regionid: found %s, expected a number",
             cs_remote_type_name(id));
    return CS_EPARSE;
  }
  if (id->valuedouble != t->region) {
    snprintf(err, errcap,
             "response.data.regionid: the answer is for %g, expected %s",
             id->valuedouble, t->arg);
    return CS_EPARSE;
  }
  return CS_OK;
}

/* The periods array of a response: data[] (national) or data.data[] /
 * data[0].data[] (regional: `data` as an object or one-element array). */
static cs_err periods(const cJSON *j, const target *t, const cJSON **out,
                      char *err, size_t errcap)
{
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
  if (t->k == NATIONAL)
    return cs_remote_array(j, "data", "response", out, err, errcap);
  if (cJSON_IsArray(d)) {
    if (cJSON_GetArraySize(d) != 1) {
      snprintf(err, errcap,
               "response.data: an array of %d regions, expected one",
               cJSON_GetArraySize(d));
      return CS_EPARSE;
    }
    d = cJSON_GetArrayItem(d, 0);
  }
  if (!cJSON_IsObject(d)) {
    snprintf(err, errcap,
             "response.data: found %s, expected a region object or a "
             "one-element array of it",
             cs_remote_type_name(d));
    return CS_EPARSE;
  }
  cs_err rc = same_region(d, t, err, errcap);
  if (rc != CS_OK)
    return rc;
  return cs_remote_array(d, "data", "response.data", out, err, errcap);
}

/* Reads periods into s; *first_actual tells whether the first period's
 * value was a settled `actual`. */
static cs_err parse_periods(const cJSON *arr, cs_series *s, bool *first_actual,
                            char *err, size_t errcap)
{
  int i = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, arr)
  {
    char what[40];
    snprintf(what, sizeof(what), "data[%d]", i);
    int64_t from, to;
    double v;
    cs_err rc = cs_remote_time(p, "from", what, &from, err, errcap);
    if (rc == CS_OK)
      rc = cs_remote_time(p, "to", what, &to, err, errcap);
    if (rc != CS_OK)
      return rc;
    if (to <= from) {
      snprintf(err, errcap, "%s.to: not after %s.from", what, what);
      return CS_EPARSE;
    }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(p, "intensity");
    if (!cJSON_IsObject(in)) {
      snprintf(err, errcap, "%s.intensity: found %s, expected an object", what,
               cs_remote_type_name(in));
      return CS_EPARSE;
    }
    char iwhat[56];
    snprintf(iwhat, sizeof(iwhat), "%s.intensity", what);
    bool actual = true;
    rc = cs_remote_num(in, "actual", iwhat, true, &v, err, errcap);
    if (rc == CS_ENOTFOUND ||
        (rc == CS_EPARSE && !cJSON_GetObjectItemCaseSensitive(in, "actual"))) {
      actual = false;
      rc = cs_remote_num(in, "forecast", iwhat, true, &v, err, errcap);
    }
    if (rc == CS_ENOTFOUND) {
      i++;
      continue; /* neither actual nor forecast: skipped */
    }
    if (rc != CS_OK)
      return rc;
    if (v < 0 || v > CS_INTENSITY_MAX) {
      snprintf(err, errcap, "%s: %g is %s, expected gCO2/kWh from 0 to %g",
               iwhat, v, v < 0 ? "negative" : "more than any grid emits",
               CS_INTENSITY_MAX);
      return CS_EPARSE;
    }
    if (s->len && from <= s->points[s->len - 1].at) {
      char t[21], prev[21];
      cs_format_rfc3339(from, t);
      cs_format_rfc3339(s->points[s->len - 1].at, prev);
      snprintf(err, errcap,
               "%s.from: %s, expected a time after the previous "
               "period's %s (periods in time order, no duplicates)",
               what, t, prev);
      return CS_EPARSE;
    }
    if (!s->len)
      *first_actual = actual;
    cs_series_push(s, from, v);
    i++;
  }
  return CS_OK;
}

static cs_err fetch(uk *u, const char *zone, bool forecast, int64_t from,
                    cs_series *out, bool *first_actual, char *err,
                    size_t errcap)
{
  target t;
  /* NESO's factors are combustion's: nuclear and wind count as 0. */
  cs_series s = {
      .type = CS_SIGNAL_AVERAGE, .factor = CS_FACTOR_DIRECT, .step = PERIOD_S};
  cJSON *j = NULL;
  const cJSON *arr;
  if (!zone_target(u, zone, &t)) {
    snprintf(err, errcap,
             "zone \"%.48s\" is not GB, GB-REGION-<1..17>, "
             "GB-POSTCODE-<outward code> or a configured ukgrid zone",
             zone);
    return CS_ENOTFOUND;
  }
  char path[160], ts[21];
  /* The API takes ISO 8601 minutes in UTC: YYYY-MM-DDThh:mmZ. */
  cs_format_rfc3339(from, ts);
  ts[16] = 'Z';
  ts[17] = '\0';
  if (!forecast) {
    if (t.k == NATIONAL)
      snprintf(path, sizeof(path), "/intensity");
    else if (t.k == REGION)
      snprintf(path, sizeof(path), "/regional/regionid/%s", t.arg);
    else
      snprintf(path, sizeof(path), "/regional/postcode/%s", t.arg);
  } else {
    if (t.k == NATIONAL)
      snprintf(path, sizeof(path), "/intensity/%s/fw48h", ts);
    else if (t.k == REGION)
      snprintf(path, sizeof(path), "/regional/intensity/%s/fw48h/regionid/%s",
               ts, t.arg);
    else
      snprintf(path, sizeof(path), "/regional/intensity/%s/fw48h/postcode/%s",
               ts, t.arg);
  }
  cs_err rc = cs_remote_get_json(&u->r, path, NULL, 0, NULL, NULL, &j, NULL,
                                 err, errcap);
  if (rc == CS_OK)
    rc = periods(j, &t, &arr, err, errcap);
  if (rc == CS_OK)
    rc = parse_periods(arr, &s, first_actual, err, errcap);
  /* A zone the API covers that comes back empty is an outage (the API
   * has answered {"data":[]} in them), not a zone it does not serve: that
   * one it says in an error. */
  if (rc == CS_OK && !s.len) {
    snprintf(err, errcap, "no intensity for zone %s in the response", zone);
    rc = CS_EPARSE;
  }
  if (rc == CS_OK) {
    snprintf(s.provider, sizeof(s.provider), "%s", u->base.ops->name);
    snprintf(s.zone, sizeof(s.zone), "%s", zone);
    *out = s;
    s.points = NULL;
  }
  cs_series_free(&s);
  cJSON_Delete(j);
  return rc;
}

static cs_err uk_current(cs_provider *p, const char *zone, int64_t now,
                         cs_signal *out)
{
  char err[CS_REMOTE_ERR_MAX] = "";
  cs_series s = {0};
  bool actual = false;
  cs_err rc = fetch((uk *)p, zone, false, now, &s, &actual, err, sizeof(err));
  /* Only a settled `actual` is a measurement. */
  return cs_remote_finish_current(p->ops->name, zone, rc, &s, now, !actual, out,
                                  err);
}

static cs_err uk_forecast(cs_provider *p, const char *zone, int64_t from,
                          int64_t to, cs_series *out)
{
  char err[CS_REMOTE_ERR_MAX] = "";
  cs_series s = {0};
  bool actual;
  /* Periods start on the half hour; ask from the one containing `from`. */
  int64_t start = from - ((from % PERIOD_S) + PERIOD_S) % PERIOD_S;
  cs_err rc = fetch((uk *)p, zone, true, start, &s, &actual, err, sizeof(err));
  return cs_remote_finish_forecast(p->ops->name, zone, rc, &s, from, to, out,
                                   err, sizeof(err));
}

static void uk_free(cs_provider *p)
{
  uk *u = (uk *)p;
  cs_remote_destroy(&u->r);
  free(u);
}

static const cs_provider_ops uk_ops = {
    .name = "ukgrid",
    .current = uk_current,
    .forecast = uk_forecast,
    .remote = true,
    .free = uk_free,
};

cs_err cs_ukgrid_new(const cs_ukgrid_opts *o, cs_provider **out, char *err,
                     size_t errcap)
{
  if (o->nzones > MAX_ZONES) {
    snprintf(err, errcap, "ukgrid zones: %zu entries, at most %d", o->nzones,
             MAX_ZONES);
    return CS_ETOOBIG;
  }
  uk *u = cs_calloc(1, sizeof(*u));
  for (size_t i = 0; i < o->nzones; i++) {
    const cs_ukgrid_zone *z = &o->zones[i];
    if (!z->zone || !*z->zone || strlen(z->zone) >= CS_ZONE_MAX || !z->target ||
        !parse_target(z->target, &u->map[i].t)) {
      snprintf(err, errcap,
               "ukgrid zones[%zu]: \"%.48s\" -> \"%.48s\", expected a zone "
               "name and national, regionid:<1..17> or postcode:<outward "
               "code>",
               i, z->zone ? z->zone : "", z->target ? z->target : "");
      free(u);
      return CS_EINVAL;
    }
    snprintf(u->map[i].zone, CS_ZONE_MAX, "%s", z->zone);
  }
  u->nmap = o->nzones;
  const char *base = o->base_url ? o->base_url : CS_UKGRID_DEFAULT_URL;
  if (cs_remote_init(&u->r, uk_ops.name, base, o->timeout_ms) != CS_OK) {
    snprintf(err, errcap,
             "ukgrid URL: \"%.200s\", expected an http:// or https:// URL",
             base);
    free(u);
    return CS_EINVAL;
  }
  u->base.ops = &uk_ops;
  u->r.cancel = &u->base.cancel;
  /* The answer for an outward code the API does not know; region ids are
   * checked here, so no other error means "not served". */
  u->r.not_served_says = "No postcode match";
  *out = &u->base;
  return CS_OK;
}
