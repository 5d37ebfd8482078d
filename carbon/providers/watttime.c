#include "carbon/providers/watttime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/remote.h"
#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/parse.h"

#define LBS_TO_G_PER_KWH 0.45359237 /* 1 lb/MWh = 453.59237 g / 1000 kWh */
#define REGION_TTL_S 86400
#define TOKEN_TTL_S (25 * 60) /* tokens expire after 30 minutes */
#define MAX_REGIONS 64
/* The most history a forecast is completed with: what a window asked from
 * before the forecast needs is minutes (the API serves up to 32 days). */
#define HISTORY_MAX_S 86400

typedef struct region_entry {
  char loc[CS_ZONE_MAX];
  char region[64];
  int64_t at; /* when resolved (Unix s) */
} region_entry;

typedef struct wt {
  cs_provider base;
  cs_remote r;
  char *user, *password;
  char signal[16];
  cs_signal_type type;
  int horizon;
  pthread_mutex_t mu; /* guards token and regions */
  char *token;
  int64_t token_at;
  region_entry regions[MAX_REGIONS];
  size_t nregions;
} wt;

void cs_watttime_opts_from_env(cs_watttime_opts *o)
{
  const char *u = getenv("CARBONSHIFT_WATTTIME_URL");
  const char *n = getenv("CARBONSHIFT_WATTTIME_USERNAME");
  const char *p = getenv("CARBONSHIFT_WATTTIME_PASSWORD");
  if (u && *u)
    o->base_url = u;
  if (n && *n)
    o->username = n;
  if (p && *p)
    o->password = p;
}

cs_err cs_watttime_to_g_per_kwh(const char *units, double v, double *out)
{
  if (strcmp(units, "lbs_co2_per_mwh") == 0) {
    *out = v * LBS_TO_G_PER_KWH;
    return CS_OK;
  }
  if (strcmp(units, "kg_co2_per_mwh") == 0 ||
      strcmp(units, "g_co2_per_kwh") == 0) {
    *out = v;
    return CS_OK;
  }
  if (strcmp(units, "percentile") == 0)
    return CS_EUNSUPPORTED;
  return CS_EINVAL;
}

static void scrub_free(char *s)
{
  if (s) {
    memset(s, 0, strlen(s));
    free(s);
  }
}

/* Logs in with HTTP Basic and stores a fresh token. Call with mu held. */
static cs_err login_locked(wt *w, char *err, size_t errcap)
{
  cJSON *j = NULL;
  const char *tok;
  cs_err rc = cs_remote_get_json(&w->r, "/login", NULL, 0, w->user, w->password,
                                 &j, NULL, err, errcap);
  if (rc == CS_OK)
    rc = cs_remote_str(j, "token", "login response", &tok, err, errcap);
  if (rc == CS_OK && (!*tok || strpbrk(tok, "\r\n"))) {
    snprintf(err, errcap, "login response.token: empty or has a line break");
    rc = CS_EPARSE;
  }
  if (rc == CS_OK) {
    scrub_free(w->token);
    w->token = cs_asprintf("Authorization: Bearer %s", tok);
    w->token_at = cs_clock_now();
  }
  cJSON_Delete(j);
  return rc;
}

/* Copies the Authorization header, logging in when there is no token, it is
 * old, or `renew` asks for a new one. */
static cs_err auth_header(wt *w, bool renew, char **hdr, char *err,
                          size_t errcap)
{
  cs_err rc = CS_OK;
  pthread_mutex_lock(&w->mu);
  if (renew || !w->token || cs_clock_now() - w->token_at > TOKEN_TTL_S)
    rc = login_locked(w, err, errcap);
  if (rc == CS_OK)
    *hdr = cs_strdup(w->token);
  pthread_mutex_unlock(&w->mu);
  return rc;
}

/* GET with the Bearer token; on 401 logs in again once and retries. */
static cs_err authed_get(wt *w, const char *path, cJSON **out, char *err,
                         size_t errcap)
{
  char *hdr = NULL;
  cs_err rc = auth_header(w, false, &hdr, err, errcap);
  long status = 0;
  if (rc == CS_OK) {
    const char *h[] = {hdr};
    rc = cs_remote_get_json(&w->r, path, h, 1, NULL, NULL, out, &status, err,
                            errcap);
  }
  if (rc == CS_EAUTH && status == 401) {
    scrub_free(hdr);
    hdr = NULL;
    rc = auth_header(w, true, &hdr, err, errcap);
    if (rc == CS_OK) {
      const char *h[] = {hdr};
      rc = cs_remote_get_json(&w->r, path, h, 1, NULL, NULL, out, &status, err,
                              errcap);
    }
  }
  scrub_free(hdr);
  return rc;
}

/* "lat,lon" with plain decimals in range. */
/* A whole coordinate in plain decimal ("38.58", "-121.49"): digits, one
 * point and a leading minus only, all of it read ("1-2" and "1.2.3" are
 * not coordinates; strtod alone would take their first part). */
static bool plain_decimal(const char *s, double *out)
{
  for (const char *c = s; *c; c++)
    if (!isdigit((unsigned char)*c) && *c != '.' && !(*c == '-' && c == s))
      return false;
  char *end;
  *out = strtod(s, &end);
  return end != s && *end == '\0';
}

static bool parse_loc(const char *zone, char *lat, char *lon, size_t cap)
{
  const char *comma = strchr(zone, ',');
  if (!comma || (size_t)(comma - zone) >= cap || strlen(comma + 1) >= cap)
    return false;
  memcpy(lat, zone, (size_t)(comma - zone));
  lat[comma - zone] = '\0';
  snprintf(lon, cap, "%s", comma + 1);
  double a, b;
  return plain_decimal(lat, &a) && plain_decimal(lon, &b) && a >= -90 &&
         a <= 90 && b >= -180 && b <= 180;
}

static bool region_code(const char *s)
{
  if (!*s || strlen(s) >= 64)
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
      return false;
  return true;
}

/* The WattTime region for `zone`. */
static cs_err resolve(wt *w, const char *zone, char region[64], char *err,
                      size_t errcap)
{
  char lat[32], lon[32];
  if (!parse_loc(zone, lat, lon, sizeof(lat))) {
    if (!region_code(zone)) {
      snprintf(err, errcap,
               "zone \"%.48s\": expected a WattTime region code such as "
               "CAISO_NORTH or coordinates lat,lon",
               zone);
      return CS_ENOTFOUND;
    }
    snprintf(region, 64, "%s", zone);
    return CS_OK;
  }
  int64_t now = cs_clock_now();
  pthread_mutex_lock(&w->mu);
  for (size_t i = 0; i < w->nregions; i++) {
    if (strcmp(w->regions[i].loc, zone) == 0 &&
        now - w->regions[i].at < REGION_TTL_S) {
      snprintf(region, 64, "%s", w->regions[i].region);
      pthread_mutex_unlock(&w->mu);
      return CS_OK;
    }
  }
  pthread_mutex_unlock(&w->mu);
  char path[256];
  snprintf(path, sizeof(path),
           "/v3/region-from-loc?latitude=%s&longitude=%s&signal_type=%s", lat,
           lon, w->signal);
  cJSON *j = NULL;
  const char *reg;
  cs_err rc = authed_get(w, path, &j, err, errcap);
  if (rc == CS_OK)
    rc = cs_remote_str(j, "region", "region-from-loc response", &reg, err,
                       errcap);
  if (rc == CS_OK && !region_code(reg)) {
    snprintf(err, errcap,
             "region-from-loc response.region: \"%.64s\" is not "
             "a region code",
             reg);
    rc = CS_EPARSE;
  }
  if (rc == CS_OK) {
    snprintf(region, 64, "%s", reg);
    pthread_mutex_lock(&w->mu);
    size_t slot = w->nregions < MAX_REGIONS ? w->nregions++ : 0;
    for (size_t i = 0; i < w->nregions; i++)
      if (strcmp(w->regions[i].loc, zone) == 0 ||
          w->regions[i].at < w->regions[slot].at)
        slot = i;
    snprintf(w->regions[slot].loc, CS_ZONE_MAX, "%s", zone);
    snprintf(w->regions[slot].region, 64, "%s", reg);
    w->regions[slot].at = now;
    pthread_mutex_unlock(&w->mu);
  }
  cJSON_Delete(j);
  return rc;
}

/* GET `path` (/v3/forecast or /v3/historical: the same shape, `meta` and
 * `data`) for `region` and parse it into a series in g/kWh; `name` names
 * the series in the error when it is empty. */
static cs_err fetch_points(wt *w, const char *zone, const char *region,
                           const char *path, const char *name, cs_series *out,
                           char *err, size_t errcap)
{
  /* MOER and AOER are emission rates of generation: combustion. */
  cs_series s = {.type = w->type, .factor = CS_FACTOR_DIRECT};
  cJSON *j = NULL;
  cs_err rc = authed_get(w, path, &j, err, errcap);
  if (rc != CS_OK)
    goto out;
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "meta"), *data;
  const char *units, *sig;
  if (!cJSON_IsObject(meta)) {
    snprintf(err, errcap, "response.meta: found %s, expected an object",
             cs_remote_type_name(meta));
    rc = CS_EPARSE;
    goto out;
  }
  rc = cs_remote_same_zone(meta, "region", "meta", region, err, errcap);
  if (rc != CS_OK)
    goto out;
  rc = cs_remote_str(meta, "units", "meta", &units, err, errcap);
  if (rc != CS_OK)
    goto out;
  rc = cs_remote_str(meta, "signal_type", "meta", &sig, err, errcap);
  if (rc != CS_OK)
    goto out;
  if (strcmp(sig, w->signal) != 0) {
    snprintf(err, errcap, "meta.signal_type: \"%.32s\", expected \"%s\"", sig,
             w->signal);
    rc = CS_EPARSE;
    goto out;
  }
  double probe;
  cs_err urc = cs_watttime_to_g_per_kwh(units, 1, &probe);
  if (urc != CS_OK) {
    snprintf(err, errcap,
             "meta.units: \"%.40s\", expected lbs_co2_per_mwh, "
             "kg_co2_per_mwh or g_co2_per_kwh%s",
             units,
             urc == CS_EUNSUPPORTED ? " (a percentile is an index, not an "
                                      "intensity)"
                                    : "");
    rc = urc;
    goto out;
  }
  double period = 300;
  const cJSON *ps =
      cJSON_GetObjectItemCaseSensitive(meta, "data_point_period_seconds");
  if (ps) {
    rc = cs_remote_num(meta, "data_point_period_seconds", "meta", false,
                       &period, err, errcap);
    if (rc == CS_OK && (period < 1 || period > 86400)) {
      snprintf(err, errcap,
               "meta.data_point_period_seconds: %g, expected 1..86400", period);
      rc = CS_EPARSE;
    }
    if (rc != CS_OK)
      goto out;
  }
  /* When the forecast was made: a stuck model keeps serving an old one
   * (cs_series.generated_at). Absent from /v3/historical. */
  const cJSON *gen = cJSON_GetObjectItemCaseSensitive(meta, "generated_at");
  if (gen && !cJSON_IsNull(gen)) {
    rc = cs_remote_time(meta, "generated_at", "meta", &s.generated_at, err,
                        errcap);
    if (rc != CS_OK)
      goto out;
  }
  rc = cs_remote_array(j, "data", "response", &data, err, errcap);
  if (rc != CS_OK)
    goto out;
  int i = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, data)
  {
    char what[32];
    snprintf(what, sizeof(what), "data[%d]", i++);
    int64_t at;
    double v;
    rc = cs_remote_time(p, "point_time", what, &at, err, errcap);
    if (rc == CS_OK)
      rc = cs_remote_num(p, "value", what, true, &v, err, errcap);
    if (rc == CS_ENOTFOUND) {
      rc = CS_OK;
      continue; /* a null value is skipped, never filled in */
    }
    if (rc != CS_OK)
      goto out;
    if (v < 0 && w->type == CS_SIGNAL_AVERAGE) {
      snprintf(err, errcap, "%s.value: %g is negative", what, v);
      rc = CS_EPARSE;
      goto out;
    }
    if (s.len && at <= s.points[s.len - 1].at) {
      char t[21], prev[21];
      cs_format_rfc3339(at, t);
      cs_format_rfc3339(s.points[s.len - 1].at, prev);
      snprintf(err, errcap,
               "%s.point_time: %s, expected a time after the previous "
               "point's %s (points in time order, no duplicates)",
               what, t, prev);
      rc = CS_EPARSE;
      goto out;
    }
    double g;
    if (cs_watttime_to_g_per_kwh(units, v, &g) != CS_OK) {
      rc = CS_EINTERNAL;
      goto out;
    }
    if (g > CS_INTENSITY_MAX || g < -CS_INTENSITY_MAX) {
      snprintf(err, errcap,
               "%s.value: %g %s is %g gCO2/kWh, more than any grid emits "
               "(expected at most %g)",
               what, v, units, g, CS_INTENSITY_MAX);
      rc = CS_EPARSE;
      goto out;
    }
    cs_series_push(&s, at, g);
  }
  /* Empty for a region it covers: a failure (no coverage is an error it
   * names, "No coverage available"). */
  if (!s.len) {
    snprintf(err, errcap, "the %s for region %s is empty", name, region);
    rc = CS_EPARSE;
    goto out;
  }
  s.step = (int64_t)period;
  snprintf(s.provider, sizeof(s.provider), "%s", w->base.ops->name);
  snprintf(s.zone, sizeof(s.zone), "%s", zone);
  *out = s;
  s.points = NULL;
out:
  cs_series_free(&s);
  cJSON_Delete(j);
  return rc;
}

/* GET /v3/forecast for `zone`'s region, `horizon` hours ahead. */
static cs_err fetch_forecast(wt *w, const char *zone, int horizon,
                             char region[64], cs_series *out, char *err,
                             size_t errcap)
{
  cs_err rc = resolve(w, zone, region, err, errcap);
  if (rc != CS_OK)
    return rc;
  char path[256];
  snprintf(path, sizeof(path),
           "/v3/forecast?region=%s&signal_type=%s&horizon_hours=%d", region,
           w->signal, horizon);
  return fetch_points(w, zone, region, path, "forecast", out, err, errcap);
}

/* A forecast begins when it was generated (every 5 minutes), so a window
 * asked for from earlier (CS_SIGNALS_FORECAST_BACK_S, for a pod judged at
 * its planned start) is completed with the measured values of
 * /v3/historical from the period holding `from` (at most HISTORY_MAX_S back) to
 * the forecast's first point. Without them the forecast alone is kept and the
 * failure logged: the part before it stays unknown, never filled in. */
static void complete_from_history(wt *w, const char *zone, const char *region,
                                  int64_t from, cs_series *fc)
{
  char err[CS_REMOTE_ERR_MAX] = "", start[21], end[21], path[256];
  /* From the start of the period holding `from`: a start within a period
   * would leave out the point that covers it. */
  int64_t earliest = fc->points[0].at - HISTORY_MAX_S;
  int64_t first = from > earliest ? from : earliest;
  int64_t step = fc->step > 0 ? fc->step : 300;
  first = cs_time_floor(first, step);
  cs_format_rfc3339(first, start);
  cs_format_rfc3339(fc->points[0].at, end);
  snprintf(path, sizeof(path),
           "/v3/historical?region=%s&signal_type=%s&start=%s&end=%s", region,
           w->signal, start, end);
  cs_series h = {0};
  cs_err rc =
      fetch_points(w, zone, region, path, "history", &h, err, sizeof(err));
  if (rc != CS_OK) {
    /* The parser's errors read alike for both endpoints: say which. */
    char what[CS_REMOTE_ERR_MAX + 96];
    snprintf(what, sizeof(what), "/v3/historical from %s to %s: %s", start, end,
             err);
    cs_remote_log_failure(w->base.ops->name, zone, rc, what);
    return;
  }
  cs_series all = *fc;
  all.points = NULL;
  all.len = 0;
  for (size_t i = 0; i < h.len && h.points[i].at < fc->points[0].at; i++)
    cs_series_push(&all, h.points[i].at, h.points[i].g_per_kwh);
  for (size_t i = 0; i < fc->len; i++)
    cs_series_push(&all, fc->points[i].at, fc->points[i].g_per_kwh);
  cs_series_free(&h);
  cs_series_free(fc);
  *fc = all;
}

static cs_err wt_current(cs_provider *p, const char *zone, int64_t now,
                         cs_signal *out)
{
  char err[CS_REMOTE_ERR_MAX] = "", region[64];
  cs_series s = {0};
  cs_err rc = fetch_forecast((wt *)p, zone, 0, region, &s, err, sizeof(err));
  return cs_remote_finish_current(p->ops->name, zone, rc, &s, now, false, out,
                                  err);
}

static cs_err wt_forecast(cs_provider *p, const char *zone, int64_t from,
                          int64_t to, cs_series *out)
{
  wt *w = (wt *)p;
  char err[CS_REMOTE_ERR_MAX] = "", region[64];
  cs_series s = {0};
  cs_err rc = fetch_forecast(w, zone, w->horizon, region, &s, err, sizeof(err));
  if (rc == CS_OK && from < s.points[0].at)
    complete_from_history(w, zone, region, from, &s);
  return cs_remote_finish_forecast(p->ops->name, zone, rc, &s, from, to, out,
                                   err, sizeof(err));
}

static void wt_free(cs_provider *p)
{
  wt *w = (wt *)p;
  cs_remote_destroy(&w->r);
  scrub_free(w->user);
  scrub_free(w->password);
  scrub_free(w->token);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

static const cs_provider_ops wt_ops = {
    .name = "watttime",
    .current = wt_current,
    .forecast = wt_forecast,
    .remote = true,
    .free = wt_free,
};

cs_err cs_watttime_new(const cs_watttime_opts *o, cs_provider **out, char *err,
                       size_t errcap)
{
  const char *sig = o->signal_type ? o->signal_type : "co2_moer";
  cs_signal_type type;
  if (strcmp(sig, "co2_moer") == 0) {
    type = CS_SIGNAL_MARGINAL;
  } else if (strcmp(sig, "co2_aoer") == 0) {
    type = CS_SIGNAL_AVERAGE;
  } else {
    snprintf(err, errcap,
             "watttime signalType: \"%.32s\", expected co2_moer (marginal) "
             "or co2_aoer (average)",
             sig);
    return CS_EINVAL;
  }
  int horizon = o->horizon_hours ? o->horizon_hours : 24;
  if (horizon < 1 || horizon > 72) {
    snprintf(err, errcap, "watttime horizonHours: %d, expected 1..72", horizon);
    return CS_EINVAL;
  }
  if (!o->username || !*o->username || !o->password || !*o->password) {
    snprintf(err, errcap,
             "watttime needs CARBONSHIFT_WATTTIME_USERNAME and "
             "CARBONSHIFT_WATTTIME_PASSWORD");
    return CS_EAUTH;
  }
  wt *w = cs_calloc(1, sizeof(*w));
  const char *base = o->base_url ? o->base_url : CS_WATTTIME_DEFAULT_URL;
  if (cs_remote_init(&w->r, wt_ops.name, base, o->timeout_ms) != CS_OK) {
    snprintf(err, errcap,
             "watttime URL: \"%.200s\", expected an http:// or https:// URL",
             base);
    free(w);
    return CS_EINVAL;
  }
  w->base.ops = &wt_ops;
  w->r.cancel = &w->base.cancel;
  /* region-from-loc's answer for coordinates outside every region. */
  w->r.not_served_says = "No coverage available";
  w->user = cs_strdup(o->username);
  w->password = cs_strdup(o->password);
  snprintf(w->signal, sizeof(w->signal), "%s", sig);
  w->type = type;
  w->horizon = horizon;
  pthread_mutex_init(&w->mu, NULL);
  *out = &w->base;
  return CS_OK;
}
