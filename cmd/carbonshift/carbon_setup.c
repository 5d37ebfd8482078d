#include "cmd/carbonshift/carbon_setup.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/builtin.h"
#include "carbon/providers/electricitymaps.h"
#include "carbon/providers/file.h"
#include "carbon/providers/static.h"
#include "carbon/providers/ukgrid.h"
#include "carbon/providers/watttime.h"
#include "carbon/util/alloc.h"
#include "carbon/util/parse.h"

/* Whether a route names provider `name`, or it is forced. */
static bool wanted(const cs_config *c, const char *force, const char *name)
{
  if (force && !strcmp(force, name))
    return true;
  for (size_t i = 0; i < c->ncarbon_routes; i++)
    for (size_t k = 0; k < c->carbon_routes[i].nproviders; k++)
      if (!strcmp(c->carbon_routes[i].providers[k], name))
        return true;
  return false;
}

static void keep(cs_err rc, cs_provider *p, cs_provider **out, size_t *n,
                 cs_buf *errors, const cs_config *c, const char *setting,
                 const char *err)
{
  if (rc == CS_OK && *n < CS_CARBON_SETUP_MAX) {
    out[(*n)++] = p;
    return;
  }
  if (rc == CS_OK)
    cs_provider_free(p);
  cs_config_error(errors, c, setting, NULL, "%s", err);
}

static void build_static(const cs_config *c, cs_provider **out, size_t *n,
                         cs_buf *errors)
{
  cs_static_zone *z = cs_calloc(c->ncarbon_static + 1, sizeof(*z));
  for (size_t i = 0; i < c->ncarbon_static; i++)
    z[i] = (cs_static_zone){.zone = c->carbon_static[i].key,
                            .g_per_kwh = c->carbon_static[i].value};
  cs_provider *p = NULL;
  cs_err rc = cs_static_new(z, c->ncarbon_static,
                            (cs_signal_type)c->carbon_signal_type, &p);
  char err[128];
  snprintf(err, sizeof(err), "the static provider refused it: %s",
           cs_strerror(rc));
  keep(rc, p, out, n, errors, c, "carbon.static", err);
  free(z);
}

static void build_file(const cs_config *c, cs_provider **out, size_t *n,
                       cs_buf *errors)
{
  static const char *const columns[] = {"lca", "direct"};
  cs_file_trace *t = cs_calloc(c->nfile_traces + 1, sizeof(*t));
  for (size_t i = 0; i < c->nfile_traces; i++)
    t[i] = (cs_file_trace){.zone = c->file_traces[i].key,
                           .path = c->file_traces[i].value,
                           .column = columns[c->file_column]};
  cs_file_opts o = {.traces = t, .ntraces = c->nfile_traces};
  if (*c->file_replay_from &&
      cs_parse_rfc3339(c->file_replay_from, &o.replay_from, NULL) != CS_OK)
    o.replay_from = 0; /* validated by the table already */
  char err[512] = "";
  cs_provider *p = NULL;
  cs_err rc = cs_file_new(&o, &p, err, sizeof(err));
  keep(rc, p, out, n, errors, c, "file.traces", err);
  free(t);
}

void cs_carbon_setup_providers(const cs_config *c, const char *force,
                               cs_provider **out, size_t *n, cs_buf *errors)
{
  static const char *const factors[] = {"lifecycle", "direct"};
  static const char *const wt_signals[] = {"co2_moer", "co2_aoer"};
  long timeout_ms = (long)(c->carbon_request_timeout_s * 1000 + 0.5);
  char err[512];
  cs_provider *p;
  cs_err rc;
  *n = 0;
  if (c->ncarbon_static || wanted(c, force, "static"))
    build_static(c, out, n, errors);
  if (c->nfile_traces || wanted(c, force, "file"))
    build_file(c, out, n, errors);
  if (*c->electricitymaps_token || wanted(c, force, "electricitymaps")) {
    cs_electricitymaps_opts o = {
        .base_url = c->electricitymaps_url,
        .token = c->electricitymaps_token,
        .emission_factor_type =
            factors[c->electricitymaps_emission_factor_type],
        .timeout_ms = timeout_ms,
    };
    p = NULL;
    err[0] = '\0';
    rc = cs_electricitymaps_new(&o, &p, err, sizeof(err));
    keep(rc, p, out, n, errors, c, "electricitymaps.token", err);
  }
  if ((*c->watttime_username && *c->watttime_password) ||
      wanted(c, force, "watttime")) {
    cs_watttime_opts o = {
        .base_url = c->watttime_url,
        .username = c->watttime_username,
        .password = c->watttime_password,
        .signal_type = wt_signals[c->watttime_signal_type],
        .horizon_hours = (int)c->watttime_horizon_hours,
        .timeout_ms = timeout_ms,
    };
    p = NULL;
    err[0] = '\0';
    rc = cs_watttime_new(&o, &p, err, sizeof(err));
    keep(rc, p, out, n, errors, c, "watttime.username", err);
  }
  if (c->nukgrid_zones || wanted(c, force, "ukgrid")) {
    cs_ukgrid_zone *z = cs_calloc(c->nukgrid_zones + 1, sizeof(*z));
    for (size_t i = 0; i < c->nukgrid_zones; i++)
      z[i] = (cs_ukgrid_zone){.zone = c->ukgrid_zones[i].key,
                              .target = c->ukgrid_zones[i].value};
    cs_ukgrid_opts o = {.base_url = c->ukgrid_url,
                        .zones = z,
                        .nzones = c->nukgrid_zones,
                        .timeout_ms = timeout_ms};
    p = NULL;
    err[0] = '\0';
    rc = cs_ukgrid_new(&o, &p, err, sizeof(err));
    keep(rc, p, out, n, errors, c, "ukgrid.zones", err);
    free(z);
  }
  keep(CS_OK, cs_builtin_new(), out, n, errors, c, "carbon.routes",
       "too many providers");
}

void cs_carbon_setup_opts(const cs_config *c, cs_signals_opts *o)
{
  *o = (cs_signals_opts){
      .ttl_s = (int64_t)(c->carbon_refresh_interval_s + 0.5),
      .max_age_s = (int64_t)(c->carbon_max_age_s + 0.5),
      .max_observation_age_s = (int64_t)(c->carbon_max_observation_age_s + 0.5),
      .horizon_s = (int64_t)(c->plan_forecast_horizon_s + 0.5),
  };
}
