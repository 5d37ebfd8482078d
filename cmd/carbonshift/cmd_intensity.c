#include "cmd/carbonshift/cmd_intensity.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/signals.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "cmd/carbonshift/carbon_setup.h"
#include "cmd/carbonshift/config.h"

#define FORECAST_SPAN_S (72 * 3600)

void cs_cmd_intensity_help(FILE *out)
{
  fputs("Usage: carbonshift intensity --zone ZONE [--provider NAME] "
        "[--forecast]\n"
        "         [--json] [--at TIME] [--config FILE] [--set NAME=VALUE]...\n"
        "\n"
        "Fetches the grid carbon intensity of ZONE now, synchronously, from "
        "the\n"
        "configured providers (carbon.routes for ZONE, else every configured\n"
        "provider in order; values of another signal type than "
        "carbon.signalType\n"
        "are skipped unless --provider names the provider) and prints it.\n"
        "As in serve, a network provider's value for a period that began "
        "more\n"
        "than carbon.maxObservationAge ago is refused as stale and the next\n"
        "provider answers.\n"
        "--forecast adds the series from the current period on (72 h at "
        "most).\n"
        "--json prints one object: {zone, provider, signalType,\n"
        "emissionFactor (lifecycle, direct or unstated), unit,\n"
        "current: {at, value, estimated}, forecast: [{at, value}]}, times in "
        "UTC.\n"
        "--at TIME (RFC 3339) asks about another instant: builtin (its model "
        "at\n"
        "that hour), static (the same value, as of that hour) and file (the "
        "trace\n"
        "replay) answer for it; the network providers (electricitymaps,\n"
        "watttime, ukgrid) always answer for the present.\n"
        "Exit status: 0 printed, 1 no value or no forecast, 2 usage or\n"
        "configuration error. Providers are configured as for serve\n"
        "('carbonshift help config'); serve's own flags (--listen, --tls-*,\n"
        "--probe-listen, --kubeconfig) are refused here.\n",
        out);
}

/* The providers to ask for `zone`, in order: --provider alone, else the
 * zone's route (or "*"), else all. Returns how many. */
static size_t chain_for(const cs_config *c, const char *zone, const char *only,
                        cs_provider **ps, size_t n, cs_provider **chain)
{
  const cs_config_route *r = NULL;
  size_t k = 0;
  if (only) {
    for (size_t i = 0; i < n; i++)
      if (!strcmp(ps[i]->ops->name, only))
        chain[k++] = ps[i];
    return k;
  }
  for (size_t i = 0; i < c->ncarbon_routes; i++) {
    if (!strcmp(c->carbon_routes[i].zone, zone))
      r = &c->carbon_routes[i];
    else if (!r && !strcmp(c->carbon_routes[i].zone, "*"))
      r = &c->carbon_routes[i];
  }
  if (!r) {
    memcpy(chain, ps, n * sizeof(*chain));
    return n;
  }
  for (size_t i = 0; i < r->nproviders; i++)
    for (size_t j = 0; j < n; j++)
      if (!strcmp(ps[j]->ops->name, r->providers[i]))
        chain[k++] = ps[j];
  return k;
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
  cs_json_str(&b, "emissionFactor", cs_factor_basis_name(v->factor));
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
  printf("zone %s: %.2f gCO2eq/kWh at %s (%s, %s%s%s%s)\n", zone, v->g_per_kwh,
         ts, v->provider, cs_signal_type_name(v->type),
         v->factor != CS_FACTOR_UNSTATED ? ", " : "",
         v->factor != CS_FACTOR_UNSTATED ? cs_factor_basis_name(v->factor) : "",
         v->estimated ? ", estimated" : "");
  if (!forecast)
    return;
  printf("forecast (%zu points):\n", f->len);
  for (size_t i = 0; i < f->len; i++) {
    cs_format_rfc3339(f->points[i].at, ts);
    printf("  %s  %.2f\n", ts, f->points[i].g_per_kwh);
  }
}

static int usage_error(const char *fmt, const char *arg)
{
  fputs("carbonshift intensity: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("; see 'carbonshift help intensity'\n", stderr);
  return 2;
}

/* Whether `a` is the flag of a setting only `serve` acts on: those of
 * its listeners, TLS and Kubernetes client. Taking them here would let a
 * user believe they changed the answer. */
static bool serve_only_flag(const char *a)
{
  static const char *const sections[] = {"listen", "http", "tls", "kube"};
  const char *name = cs_config_flag_setting(a);
  if (!name)
    return false;
  size_t n = strcspn(name, ".");
  for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++)
    if (strlen(sections[k]) == n && !strncmp(name, sections[k], n))
      return true;
  return false;
}

/* Reads the command's own flags; the rest go to the configuration. */
static int parse_args(int argc, char **argv, cs_config_flags *flags,
                      const char **zone, const char **only, bool *forecast,
                      bool *json, int64_t *now)
{
  for (int i = 1; i < argc;) {
    const char *a = argv[i], *expected = NULL;
    if (!strcmp(a, "--forecast") || !strcmp(a, "--json")) {
      *(a[2] == 'f' ? forecast : json) = true;
      i++;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cs_cmd_intensity_help(stdout);
      return 0;
    } else if (!strcmp(a, "--zone") || !strcmp(a, "--provider") ||
               !strcmp(a, "--at")) {
      if (i + 1 >= argc)
        return usage_error("%s needs a value", a);
      const char *v = argv[i + 1];
      if (a[2] == 'z') {
        *zone = v;
      } else if (a[2] == 'p') {
        *only = v;
      } else if (cs_parse_rfc3339(v, now, &expected) != CS_OK) {
        fprintf(stderr, "carbonshift intensity: --at \"%s\": expected %s\n", v,
                expected);
        return 2;
      }
      i += 2;
    } else if (serve_only_flag(a)) {
      char flag[64];
      snprintf(flag, sizeof(flag), "%.*s", (int)strcspn(a, "="), a);
      return usage_error("%s is a flag of 'carbonshift serve': intensity "
                         "neither listens nor reads Kubernetes",
                         flag);
    } else {
      bool taken;
      char err[256];
      if (cs_config_flags_take(flags, argc, argv, &i, &taken, err,
                               sizeof(err)) != CS_OK)
        return usage_error("%s", err);
      if (!taken)
        return usage_error(
            a[0] == '-' ? "unknown flag %s" : "unexpected argument \"%s\"", a);
    }
  }
  if (!*zone || !**zone || strlen(*zone) >= CS_ZONE_MAX)
    return usage_error("%s", "--zone ZONE is required (a grid zone id)");
  return -1;
}

int cs_cmd_intensity(int argc, char **argv)
{
  const char *zone = NULL, *only = NULL;
  bool forecast = false, json = false;
  int64_t now = cs_clock_now();
  cs_config *cfg = NULL;
  cs_provider *ps[CS_CARBON_SETUP_MAX], *chain[CS_CARBON_SETUP_MAX];
  size_t n = 0;
  cs_series f = {0};
  cs_buf errors, warnings;
  cs_buf_init(&errors, 1 << 20);
  cs_buf_init(&warnings, 1 << 16);
  cs_config_flags *flags = cs_config_flags_new();
  int status =
      parse_args(argc, argv, flags, &zone, &only, &forecast, &json, &now);
  if (status >= 0)
    goto out;
  status = 2;
  /* Logs go to stderr so that stdout carries only the answer. */
  cs_log_set_fd(STDERR_FILENO);
  cs_err rc = cs_config_load(flags, NULL, &cfg, &errors, &warnings);
  /* A mistyped CARBONSHIFT_ variable is said, as serve says it: the
   * answer would otherwise come from settings the user did not mean. */
  fwrite(warnings.data ? warnings.data : "", 1, warnings.len, stderr);
  if (rc == CS_OK)
    cs_carbon_setup_providers(cfg, only, ps, &n, &errors);
  if (rc != CS_OK || errors.len) {
    fwrite(errors.data, 1, errors.len, stderr);
    fputs("carbonshift intensity: invalid configuration; see 'carbonshift "
          "help config'\n",
          stderr);
    goto out;
  }
  size_t nc = chain_for(cfg, zone, only, ps, n, chain);
  if (only && !nc) {
    usage_error("unknown provider \"%s\", expected static, file, "
                "electricitymaps, watttime, ukgrid or builtin",
                only);
    goto out;
  }
  status = 1;
  cs_signals_opts so;
  cs_carbon_setup_opts(cfg, &so);
  cs_signal v;
  size_t who = 0;
  /* Why each provider of the route did not answer, for the message when
   * none does: some say nothing in the log (a zone they do not know). */
  cs_buf why;
  cs_buf_init(&why, 4096);
  for (; who < nc; who++) {
    cs_provider *p = chain[who];
    cs_err prc = p->ops->current(p, zone, now, &v);
    if (prc != CS_OK) {
      cs_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", p->ops->name,
                    prc == CS_ENOTFOUND ? "no value for the zone"
                                        : cs_strerror(prc));
      continue;
    }
    /* What serve would do with it: a remote value describing a period that
     * began too long ago is refused, and the next provider answers. Remote
     * values are of the present whatever --at says, so they are aged
     * against the clock. */
    cs_err orc = p->ops->remote
                     ? cs_signals_check_observation(&so, &v, cs_clock_now())
                     : CS_OK;
    if (orc != CS_OK) {
      cs_buf_printf(&why, "%s%s: %s", why.len ? "; " : "", p->ops->name,
                    orc == CS_ESTALE ? "stale" : "dated in the future");
      continue;
    }
    if (only || v.type == (cs_signal_type)cfg->carbon_signal_type)
      break;
    cs_buf_printf(&why, "%s%s: gives the %s signal, %s asked",
                  why.len ? "; " : "", p->ops->name,
                  cs_signal_type_name(v.type),
                  cs_signal_type_name((cs_signal_type)cfg->carbon_signal_type));
  }
  if (who == nc) {
    fprintf(stderr,
            "carbonshift intensity: no provider has a value for zone %s "
            "(%s)\n",
            zone, why.len ? why.data : "no provider in its route");
    cs_buf_free(&why);
    goto out;
  }
  cs_buf_free(&why);
  status = 0;
  if (forecast) {
    cs_provider *p = chain[who];
    /* Judged as serve judges it: a remote forecast made too long ago is
     * refused. */
    if (!p->ops->forecast ||
        p->ops->forecast(p, zone, v.observed_at,
                         v.observed_at + FORECAST_SPAN_S, &f) != CS_OK ||
        (p->ops->remote &&
         cs_signals_check_forecast(&so, &f, cs_clock_now()) != CS_OK)) {
      fprintf(stderr, "carbonshift intensity: %s has no forecast for zone %s\n",
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
  cs_config_free(cfg);
  cs_config_flags_free(flags);
  cs_buf_free(&errors);
  cs_buf_free(&warnings);
  return status;
}
