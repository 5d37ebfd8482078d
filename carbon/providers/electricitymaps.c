#include "carbon/providers/electricitymaps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/remote.h"
#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/parse.h"

typedef struct em {
  cs_provider base;
  cs_remote r;
  char *auth_header; /* "auth-token: ..." */
  char factor[16];
  bool disable_estimations;
} em;

/* The basis the API was asked for (and checked to answer in). */
static cs_factor_basis factor_of(const em *e)
{
  return strcmp(e->factor, "direct") == 0 ? CS_FACTOR_DIRECT
                                          : CS_FACTOR_LIFECYCLE;
}

void cs_electricitymaps_opts_from_env(cs_electricitymaps_opts *o)
{
  const char *u = getenv("CARBONSHIFT_ELECTRICITYMAPS_URL");
  const char *t = getenv("CARBONSHIFT_ELECTRICITYMAPS_TOKEN");
  if (u && *u)
    o->base_url = u;
  if (t && *t)
    o->token = t;
}

/* The query every call carries after zone=. */
static void common_query(const em *e, const char *zone, cs_buf *path,
                         const char *endpoint)
{
  cs_buf_puts(path, endpoint);
  cs_buf_puts(path, "?zone=");
  cs_http_escape(path, zone);
  cs_buf_printf(path, "&emissionFactorType=%s", e->factor);
  cs_buf_puts(path, "&shouldUseFallbackCallerLookup=false");
  if (e->disable_estimations)
    cs_buf_puts(path, "&disableEstimations=true");
}

static cs_err get(em *e, const char *zone, const char *endpoint, cJSON **out,
                  char *err, size_t errcap)
{
  cs_buf path;
  cs_buf_init(&path, 1024);
  common_query(e, zone, &path, endpoint);
  const char *h[] = {e->auth_header};
  cs_err rc = cs_buf_error(&path);
  if (rc == CS_OK) {
    rc = cs_remote_get_json(&e->r, path.data, h, 1, NULL, NULL, out, NULL, err,
                            errcap);
    if (rc == CS_OK)
      rc = cs_remote_same_zone(*out, "zone", "response", zone, err, errcap);
    if (rc != CS_OK) {
      cJSON_Delete(*out);
      *out = NULL;
    }
  } else
    snprintf(err, errcap, "zone \"%.48s\" makes the URL too long", zone);
  cs_buf_free(&path);
  return rc;
}

/* One point object. CS_ENOTFOUND (no error text) for a null intensity. */
static cs_err parse_point(const em *e, const cJSON *p, const char *what,
                          int64_t *at, double *g, bool *estimated, char *err,
                          size_t errcap)
{
  if (!cJSON_IsObject(p)) {
    snprintf(err, errcap, "%s: found %s, expected an object", what,
             cs_remote_type_name(p));
    return CS_EPARSE;
  }
  cs_err rc = cs_remote_time(p, "datetime", what, at, err, errcap);
  if (rc != CS_OK)
    return rc;
  rc = cs_remote_num(p, "carbonIntensity", what, true, g, err, errcap);
  if (rc != CS_OK)
    return rc;
  if (*g < 0 || *g > CS_INTENSITY_MAX) {
    snprintf(err, errcap,
             "%s.carbonIntensity: %g is %s, expected gCO2eq/kWh from 0 to %g",
             what, *g, *g < 0 ? "negative" : "more than any grid emits",
             CS_INTENSITY_MAX);
    return CS_EPARSE;
  }
  const cJSON *est = cJSON_GetObjectItemCaseSensitive(p, "isEstimated");
  if (est && !cJSON_IsBool(est) && !cJSON_IsNull(est)) {
    snprintf(err, errcap, "%s.isEstimated: found %s, expected true or false",
             what, cs_remote_type_name(est));
    return CS_EPARSE;
  }
  /* Only an explicit false claims a measurement: a value whose flag is
   * null or missing is shown as estimated, the weaker claim. */
  if (estimated)
    *estimated = !cJSON_IsFalse(est);
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(p, "emissionFactorType");
  if (cJSON_IsString(f) && strcmp(f->valuestring, e->factor) != 0) {
    snprintf(err, errcap,
             "%s.emissionFactorType: \"%.20s\", expected \"%s\" as requested",
             what, f->valuestring, e->factor);
    return CS_EPARSE;
  }
  return CS_OK;
}

static cs_err em_current(cs_provider *p, const char *zone, int64_t now,
                         cs_signal *out)
{
  em *e = (em *)p;
  char err[CS_REMOTE_ERR_MAX] = "";
  cJSON *j = NULL;
  cs_err rc = get(e, zone, "/carbon-intensity/latest", &j, err, sizeof(err));
  if (rc != CS_OK)
    goto out;
  cs_signal v = {
      .type = CS_SIGNAL_AVERAGE, .factor = factor_of(e), .fetched_at = now};
  rc = parse_point(e, j, "latest", &v.observed_at, &v.g_per_kwh, &v.estimated,
                   err, sizeof(err));
  /* No figure for a zone it answers for: an outage, a failure (a zone it
   * does not serve it names in an error). */
  if (rc == CS_ENOTFOUND) {
    snprintf(err, sizeof(err), "latest.carbonIntensity is null for zone %s",
             zone);
    rc = CS_EPARSE;
    goto out;
  }
  if (rc != CS_OK)
    goto out;
  snprintf(v.provider, sizeof(v.provider), "%s", p->ops->name);
  snprintf(v.zone, sizeof(v.zone), "%s", zone);
  *out = v;
out:
  if (rc != CS_OK)
    cs_remote_log_failure(p->ops->name, zone, rc, err);
  cJSON_Delete(j);
  return rc;
}

/* Appends the non-null points of `arr` to s, keeping times strictly
 * increasing; points at or before `after` are skipped. */
static cs_err append_points(const em *e, const cJSON *arr, const char *name,
                            int64_t after, int64_t before, cs_series *s,
                            char *err, size_t errcap)
{
  int i = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, arr)
  {
    char what[48];
    snprintf(what, sizeof(what), "%s[%d]", name, i++);
    int64_t at;
    double g;
    cs_err rc = parse_point(e, p, what, &at, &g, NULL, err, errcap);
    if (rc == CS_ENOTFOUND)
      continue; /* null intensity: skipped, never filled in */
    if (rc != CS_OK)
      return rc;
    if (at <= after || at >= before)
      continue;
    if (s->len && at <= s->points[s->len - 1].at) {
      char t[21], prev[21];
      cs_format_rfc3339(at, t);
      cs_format_rfc3339(s->points[s->len - 1].at, prev);
      snprintf(err, errcap,
               "%s.datetime: %s, expected a time after the previous "
               "point's %s (points in time order, no duplicates)",
               what, t, prev);
      return CS_EPARSE;
    }
    cs_series_push(s, at, g);
  }
  return CS_OK;
}

static int64_t guess_step(const cs_series *s)
{
  int64_t step = 3600;
  for (size_t i = 1; i < s->len; i++) {
    int64_t d = s->points[i].at - s->points[i - 1].at;
    if (d > 0 && d < step)
      step = d;
  }
  return step;
}

static cs_err em_forecast(cs_provider *p, const char *zone, int64_t from,
                          int64_t to, cs_series *out)
{
  em *e = (em *)p;
  char err[CS_REMOTE_ERR_MAX] = "";
  cJSON *fj = NULL, *hj = NULL;
  cs_series all = {.type = CS_SIGNAL_AVERAGE, .factor = factor_of(e)}, fc = {0};
  const cJSON *arr;
  cs_err rc = get(e, zone, "/carbon-intensity/forecast", &fj, err, sizeof(err));
  if (rc != CS_OK)
    goto out;
  rc = cs_remote_array(fj, "forecast", "response", &arr, err, sizeof(err));
  if (rc != CS_OK)
    goto out;
  /* When the forecast was made (cs_series.generated_at). */
  const cJSON *upd = cJSON_GetObjectItemCaseSensitive(fj, "updatedAt");
  if (upd && !cJSON_IsNull(upd)) {
    rc = cs_remote_time(fj, "updatedAt", "response", &all.generated_at, err,
                        sizeof(err));
    if (rc != CS_OK)
      goto out;
  }
  rc = append_points(e, arr, "forecast", INT64_MIN, INT64_MAX, &fc, err,
                     sizeof(err));
  if (rc != CS_OK)
    goto out;
  if (!fc.len) {
    rc = CS_EPARSE; /* as a null latest: a failure */
    snprintf(err, sizeof(err), "the forecast for zone %s is empty", zone);
    goto out;
  }
  fc.step = guess_step(&fc);
  /* A window starting before the forecast is completed from the last 24 h
   * of measured history. */
  if (from < fc.points[0].at) {
    char herr[CS_REMOTE_ERR_MAX] = "";
    cs_err hrc =
        get(e, zone, "/carbon-intensity/history", &hj, herr, sizeof(herr));
    if (hrc == CS_OK)
      hrc =
          cs_remote_array(hj, "history", "response", &arr, herr, sizeof(herr));
    if (hrc == CS_OK)
      hrc = append_points(e, arr, "history", INT64_MIN, fc.points[0].at, &all,
                          herr, sizeof(herr));
    if (hrc != CS_OK) {
      cs_remote_log_failure(p->ops->name, zone, hrc, herr);
      cs_series_free(&all);
    }
  }
  for (size_t i = 0; i < fc.len; i++)
    cs_series_push(&all, fc.points[i].at, fc.points[i].g_per_kwh);
  all.step = fc.step;
  snprintf(all.provider, sizeof(all.provider), "%s", p->ops->name);
  snprintf(all.zone, sizeof(all.zone), "%s", zone);
out:
  rc = cs_remote_finish_forecast(p->ops->name, zone, rc, &all, from, to, out,
                                 err, sizeof(err));
  cs_series_free(&fc);
  cJSON_Delete(fj);
  cJSON_Delete(hj);
  return rc;
}

static void em_free(cs_provider *p)
{
  em *e = (em *)p;
  cs_remote_destroy(&e->r);
  if (e->auth_header) {
    /* The token should not linger in freed memory. */
    memset(e->auth_header, 0, strlen(e->auth_header));
    free(e->auth_header);
  }
  free(e);
}

static const cs_provider_ops em_ops = {
    .name = "electricitymaps",
    .current = em_current,
    .forecast = em_forecast,
    .remote = true,
    .free = em_free,
};

cs_err cs_electricitymaps_new(const cs_electricitymaps_opts *o,
                              cs_provider **out, char *err, size_t errcap)
{
  const char *factor =
      o->emission_factor_type ? o->emission_factor_type : "lifecycle";
  if (strcmp(factor, "lifecycle") != 0 && strcmp(factor, "direct") != 0) {
    snprintf(err, errcap,
             "electricitymaps emissionFactorType: \"%.32s\", expected "
             "lifecycle or direct",
             factor);
    return CS_EINVAL;
  }
  if (!o->token || !*o->token) {
    snprintf(err, errcap,
             "electricitymaps needs a token "
             "(CARBONSHIFT_ELECTRICITYMAPS_TOKEN)");
    return CS_EAUTH;
  }
  if (strpbrk(o->token, "\r\n")) {
    snprintf(err, errcap, "electricitymaps token contains a line break");
    return CS_EINVAL;
  }
  em *e = cs_calloc(1, sizeof(*e));
  const char *base = o->base_url ? o->base_url : CS_ELECTRICITYMAPS_DEFAULT_URL;
  if (cs_remote_init(&e->r, em_ops.name, base, o->timeout_ms) != CS_OK) {
    snprintf(err, errcap,
             "electricitymaps URL: \"%.200s\", expected an http:// or "
             "https:// URL",
             base);
    free(e);
    return CS_EINVAL;
  }
  e->base.ops = &em_ops;
  e->r.cancel = &e->base.cancel;
  /* Electricity Maps' errors about the zone asked for say "zone"; a 400 or
   * 404 that does not (a base URL without /v3, a proxy) is a failure. */
  e->r.not_served_says = "zone";
  e->auth_header = cs_asprintf("auth-token: %s", o->token);
  snprintf(e->factor, sizeof(e->factor), "%s", factor);
  e->disable_estimations = o->disable_estimations;
  *out = &e->base;
  return CS_OK;
}
