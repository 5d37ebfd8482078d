#include "cmd/carbonshift/cmd_intensity.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/providers/electricitymaps.h"
#include "carbon/providers/file.h"
#include "carbon/providers/ukgrid.h"
#include "carbon/providers/watttime.h"
#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"

#define MAX_PROVIDERS 4
#define MAX_TRACES 32
#define FORECAST_SPAN_S (72 * 3600)

static const char usage[] =
    "usage: carbonshift intensity --zone ZONE [--provider NAME] [--forecast]\n"
    "                             [--json] [--at TIME] [--config FILE]\n"
    "  Fetches the grid carbon intensity of ZONE now from the configured\n"
    "  providers (electricitymaps, watttime, ukgrid, file; the first that\n"
    "  answers) and prints it; --forecast adds the series from the current\n"
    "  period on. --at asks for another instant (RFC 3339), which only the\n"
    "  file provider honours.\n";

/* Parses CARBONSHIFT_FILE_TRACES ("ZONE=PATH,ZONE=PATH") into traces that
 * point into `buf` (a copy the caller frees); (size_t)-1 when an item is
 * not ZONE=PATH. */
static size_t parse_traces(const char *spec, char **buf, cs_file_trace *t,
                           const char *column)
{
  size_t n = 0;
  *buf = cs_strdup(spec);
  for (char *item = *buf; item && *item && n < MAX_TRACES;) {
    char *comma = strchr(item, ',');
    if (comma)
      *comma = '\0';
    char *eq = strchr(item, '=');
    if (!eq || eq == item || !eq[1])
      return (size_t)-1;
    *eq = '\0';
    t[n++] = (cs_file_trace){.zone = item, .path = eq + 1, .column = column};
    item = comma ? comma + 1 : NULL;
  }
  return n;
}

/* Builds the providers configured through the environment, in preference
 * order; with `only`, just that one (an error when it is not configured). */
static int build(const char *only, cs_provider **out, size_t *n)
{
  char err[512] = "";
  *n = 0;
  bool want_all = !only;
  if (want_all || strcmp(only, "electricitymaps") == 0) {
    cs_electricitymaps_opts o = {0};
    cs_electricitymaps_opts_from_env(&o);
    if (o.token || !want_all) {
      if (cs_electricitymaps_new(&o, &out[*n], err, sizeof(err)) != CS_OK)
        goto bad;
      (*n)++;
    }
  }
  if (want_all || strcmp(only, "watttime") == 0) {
    cs_watttime_opts o = {0};
    cs_watttime_opts_from_env(&o);
    if ((o.username && o.password) || !want_all) {
      if (cs_watttime_new(&o, &out[*n], err, sizeof(err)) != CS_OK)
        goto bad;
      (*n)++;
    }
  }
  if (want_all || strcmp(only, "ukgrid") == 0) {
    cs_ukgrid_opts o = {0};
    cs_ukgrid_opts_from_env(&o);
    if (cs_ukgrid_new(&o, &out[*n], err, sizeof(err)) != CS_OK)
      goto bad;
    (*n)++;
  }
  const char *traces = getenv("CARBONSHIFT_FILE_TRACES");
  if ((want_all && traces && *traces) ||
      (!want_all && strcmp(only, "file") == 0)) {
    cs_file_trace t[MAX_TRACES];
    char *buf = NULL;
    cs_file_opts o = {.traces = t};
    o.ntraces = parse_traces(traces ? traces : "", &buf, t,
                             getenv("CARBONSHIFT_FILE_COLUMN"));
    if (o.ntraces == (size_t)-1) {
      snprintf(err, sizeof(err),
               "CARBONSHIFT_FILE_TRACES: \"%.200s\", expected "
               "ZONE=PATH[,ZONE=PATH...]",
               traces ? traces : "");
      free(buf);
      goto bad;
    }
    const char *rf = getenv("CARBONSHIFT_FILE_REPLAY_FROM");
    const char *expected = NULL;
    if (rf && *rf && cs_parse_rfc3339(rf, &o.replay_from, &expected)) {
      snprintf(err, sizeof(err),
               "CARBONSHIFT_FILE_REPLAY_FROM: \"%.40s\", expected %s", rf,
               expected);
      free(buf);
      goto bad;
    }
    cs_err rc = cs_file_new(&o, &out[*n], err, sizeof(err));
    free(buf);
    if (rc != CS_OK)
      goto bad;
    (*n)++;
  }
  if (!*n) {
    snprintf(err, sizeof(err),
             "unknown provider \"%.40s\", expected "
             "electricitymaps, watttime, ukgrid or file",
             only ? only : "");
    goto bad;
  }
  return 0;
bad:
  for (size_t i = 0; i < *n; i++)
    cs_provider_free(out[i]);
  *n = 0;
  fprintf(stderr, "carbonshift intensity: %s\n", err);
  return 2;
}

static void print_json(const char *zone, const cs_signal *v, const cs_series *f,
                       bool forecast)
{
  cs_buf b;
  char ts[21];
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '{');
  cs_json_str(&b, "zone", zone);
  cs_json_str(&b, "provider", v->provider);
  cs_json_str(&b, "signalType", cs_signal_type_name(v->type));
  cs_json_str(&b, "unit", "gCO2eq/kWh");
  cs_json_open(&b, "current", '{');
  cs_format_rfc3339(v->observed_at, ts);
  cs_json_str(&b, "at", ts);
  cs_json_num(&b, "value", v->g_per_kwh, 3);
  cs_json_bool(&b, "estimated", v->estimated);
  cs_json_close(&b, '}');
  if (forecast) {
    cs_json_open(&b, "forecast", '[');
    for (size_t i = 0; i < f->len; i++) {
      cs_json_open(&b, NULL, '{');
      cs_format_rfc3339(f->points[i].at, ts);
      cs_json_str(&b, "at", ts);
      cs_json_num(&b, "value", f->points[i].g_per_kwh, 3);
      cs_json_close(&b, '}');
    }
    cs_json_close(&b, ']');
  }
  cs_json_close(&b, '}');
  cs_buf_putc(&b, '\n');
  fwrite(b.data, 1, b.len, stdout);
  cs_buf_free(&b);
}

static void print_text(const char *zone, const cs_signal *v, const cs_series *f,
                       bool forecast)
{
  char ts[21];
  cs_format_rfc3339(v->observed_at, ts);
  printf("zone %s: %.2f gCO2eq/kWh at %s (%s, %s%s)\n", zone, v->g_per_kwh, ts,
         v->provider, cs_signal_type_name(v->type),
         v->estimated ? ", estimated" : "");
  if (!forecast)
    return;
  printf("forecast (%zu points):\n", f->len);
  for (size_t i = 0; i < f->len; i++) {
    cs_format_rfc3339(f->points[i].at, ts);
    printf("  %s  %.2f\n", ts, f->points[i].g_per_kwh);
  }
}

int cs_cmd_intensity(int argc, char **argv)
{
  static const struct option opts[] = {
      {"zone", required_argument, NULL, 'z'},
      {"provider", required_argument, NULL, 'p'},
      {"forecast", no_argument, NULL, 'f'},
      {"json", no_argument, NULL, 'j'},
      {"at", required_argument, NULL, 'a'},
      {"config", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *zone = NULL, *only = NULL, *config = NULL, *expected = NULL;
  bool forecast = false, json = false;
  int64_t now = cs_clock_now();
  int c, status = 1;
  cs_provider *ps[MAX_PROVIDERS];
  size_t n = 0;
  cs_series f = {0};
  optind = 0; /* reinitialise getopt (glibc), so tests may call us again */
  opterr = 1;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
    case 'z':
      zone = optarg;
      break;
    case 'p':
      only = optarg;
      break;
    case 'f':
      forecast = true;
      break;
    case 'j':
      json = true;
      break;
    case 'c':
      config = optarg;
      break;
    case 'a':
      if (cs_parse_rfc3339(optarg, &now, &expected) != CS_OK) {
        fprintf(stderr, "carbonshift intensity: --at \"%s\": expected %s\n",
                optarg, expected);
        return 2;
      }
      break;
    case 'h':
      fputs(usage, stdout);
      return 0;
    default:
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind < argc || !zone || !*zone || strlen(zone) >= CS_ZONE_MAX) {
    fputs(usage, stderr);
    return 2;
  }
  if (config) {
    /* The configuration system (cmd/carbonshift/config.c) is not in this
     * tree yet; until it is, providers come from the environment. */
    fprintf(stderr, "carbonshift intensity: --config is not supported by "
                    "this build; configure providers through CARBONSHIFT_* "
                    "environment variables\n");
    return 2;
  }
  /* Logs go to stderr so that stdout carries only the answer. */
  cs_log_set_fd(STDERR_FILENO);
  if (build(only, ps, &n))
    return 2;
  cs_signal v;
  size_t who = 0;
  for (; who < n; who++)
    if (ps[who]->ops->current(ps[who], zone, now, &v) == CS_OK)
      break;
  if (who == n) {
    fprintf(stderr,
            "carbonshift intensity: no provider has a value for "
            "zone %s (see the log lines above)\n",
            zone);
    goto out;
  }
  status = 0;
  if (forecast) {
    cs_provider *p = ps[who];
    if (!p->ops->forecast ||
        p->ops->forecast(p, zone, v.observed_at,
                         v.observed_at + FORECAST_SPAN_S, &f) != CS_OK) {
      fprintf(stderr,
              "carbonshift intensity: %s has no forecast for zone "
              "%s\n",
              p->ops->name, zone);
      status = 1;
    }
  }
  if (json)
    print_json(zone, &v, &f, forecast);
  else
    print_text(zone, &v, &f, forecast);
  fflush(stdout);
out:
  cs_series_free(&f);
  for (size_t i = 0; i < n; i++)
    cs_provider_free(ps[i]);
  return status;
}
