#include "cmd/carbonshift/sim_forecast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/hash.h"
#include "carbon/util/parse.h"

typedef struct sim_provider {
  cs_provider base; /* first: the registry sees a cs_provider */
  size_t n;
  cs_sim_trace *const *traces;
  double **fc; /* per trace: forecast value per row */
} sim_provider;

/* splitmix64: small, fast, and the same on every platform. */
static uint64_t next_u64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
  return ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s)
{
  double u = uniform(s), v = uniform(s);
  return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* A zone's noise is drawn from the run's seed mixed with FNV-1a of the
 * zone's name, started from 1469598103934665603: FNV's offset basis short
 * of its last digit, kept because the noisy results in docs/benchmarks.md
 * were drawn with it, and the real basis draws other noise (DE ±8 h at 5 %
 * would give 12.078 % instead of 12.054 %). */
#define ZONE_SEED_BASIS 1469598103934665603ULL

static uint64_t zone_seed(uint64_t seed, const char *zone)
{
  return seed ^ cs_hash_add(ZONE_SEED_BASIS, zone, strlen(zone));
}

static const cs_sim_trace *find(const sim_provider *sp, const char *zone,
                                size_t *k)
{
  for (size_t i = 0; i < sp->n; i++)
    if (zone && strcmp(sp->traces[i]->zone, zone) == 0) {
      *k = i;
      return sp->traces[i];
    }
  return NULL;
}

static cs_err sim_current(cs_provider *p, const char *zone, int64_t now,
                          cs_signal *out)
{
  const sim_provider *sp = (const sim_provider *)p;
  size_t k;
  const cs_sim_trace *t = find(sp, zone, &k);
  if (!t || !cs_sim_trace_covers(t, now, now))
    return CS_ENOTFOUND;
  size_t i = cs_sim_trace_index(t, now);
  cs_signal s = {0};
  s.g_per_kwh = t->g[i];
  s.type = CS_SIGNAL_AVERAGE;
  snprintf(s.provider, sizeof(s.provider), "sim");
  snprintf(s.zone, sizeof(s.zone), "%s", t->zone);
  s.observed_at = t->at[i];
  s.fetched_at = now;
  *out = s;
  return CS_OK;
}

static cs_err sim_series(cs_provider *p, const char *zone, int64_t from,
                         int64_t to, cs_series *out)
{
  const sim_provider *sp = (const sim_provider *)p;
  size_t k;
  const cs_sim_trace *t = find(sp, zone, &k);
  if (!t)
    return CS_ENOTFOUND;
  if (to <= from)
    return CS_EINVAL;
  if (to <= t->at[0] || from >= cs_sim_trace_end(t))
    return CS_ENOTFOUND;
  size_t a = cs_sim_trace_index(t, from), b = a;
  while (b < t->len && t->at[b] < to)
    b++;
  memset(out, 0, sizeof(*out));
  out->len = b - a;
  out->points = cs_malloc((out->len + 1) * sizeof(*out->points));
  for (size_t i = a; i < b; i++)
    out->points[i - a] = (cs_point){t->at[i], sp->fc[k][i]};
  out->step = t->step;
  out->max_hold = t->max_hold; /* the trace's holes are holes here too */
  out->type = CS_SIGNAL_AVERAGE;
  snprintf(out->provider, sizeof(out->provider), "sim");
  snprintf(out->zone, sizeof(out->zone), "%s", t->zone);
  return CS_OK;
}

static void sim_free(cs_provider *p)
{
  sim_provider *sp = (sim_provider *)p;
  for (size_t i = 0; i < sp->n; i++)
    free(sp->fc[i]);
  free(sp->fc);
  free(sp);
}

static const cs_provider_ops sim_ops = {.name = "sim",
                                        .current = sim_current,
                                        .forecast = sim_series,
                                        .remote = false,
                                        .free = sim_free};

cs_err cs_sim_forecast_new(cs_sim_trace *const *traces, size_t n,
                           const cs_sim_forecast_params *p, cs_provider **out)
{
  if (!(p->sigma_rel >= 0) || !(p->phi >= 0 && p->phi < 1))
    return CS_EINVAL;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(traces[i]->zone, traces[j]->zone) == 0)
        return CS_EINVAL;
  sim_provider *sp = cs_calloc(1, sizeof(*sp));
  sp->base.ops = &sim_ops;
  sp->n = n;
  sp->traces = traces;
  sp->fc = cs_calloc(n + 1, sizeof(*sp->fc));
  for (size_t k = 0; k < n; k++) {
    const cs_sim_trace *t = traces[k];
    double sigma = p->sigma_rel * t->mean, e = 0;
    double innov = sqrt(1 - p->phi * p->phi);
    uint64_t s = zone_seed(p->seed, t->zone);
    sp->fc[k] = cs_malloc((t->len + 1) * sizeof(double));
    for (size_t i = 0; i < t->len; i++) {
      double noise = 0;
      if (p->noise == CS_SIM_NOISE_GAUSS)
        noise = sigma * normal(&s);
      else if (p->noise == CS_SIM_NOISE_AR1)
        noise = e =
            i ? p->phi * e + innov * sigma * normal(&s) : sigma * normal(&s);
      /* An intensity is never negative: noise that would make it so is
       * cut at zero. */
      double v = t->g[i] + noise;
      sp->fc[k][i] = v > 0 ? v : 0;
    }
  }
  *out = &sp->base;
  return CS_OK;
}

double cs_sim_forecast_value(const cs_provider *p, size_t k, size_t i)
{
  const sim_provider *sp = (const sim_provider *)p;
  return sp->fc[k][i];
}

/* "5%" or "0.05": a share. */
static cs_err parse_share(const char *s, double *out)
{
  char buf[32];
  size_t n = strlen(s);
  if (!n || n >= sizeof(buf))
    return CS_EINVAL;
  memcpy(buf, s, n + 1);
  double scale = 1;
  if (buf[n - 1] == '%') {
    buf[n - 1] = '\0';
    scale = 0.01;
  }
  double v;
  if (cs_parse_double(buf, &v, NULL) != CS_OK || v < 0 || v * scale > 10)
    return CS_EINVAL;
  *out = v * scale;
  return CS_OK;
}

cs_err cs_sim_forecast_parse(const char *s, cs_sim_forecast_params *out,
                             const char **expected)
{
  static const char form[] =
      "perfect, gauss:SIGMA or ar1:SIGMA[:PHI], SIGMA a share of the mean "
      "(\"5%\" or \"0.05\"), PHI in [0, 1)";
  cs_sim_forecast_params p = {
      .noise = CS_SIM_NOISE_NONE, .phi = 0.9, .seed = out->seed};
  char buf[64];
  if (expected)
    *expected = form;
  if (strlen(s) >= sizeof(buf))
    return CS_EINVAL;
  snprintf(buf, sizeof(buf), "%s", s);
  char *sigma = strchr(buf, ':');
  if (sigma)
    *sigma++ = '\0';
  if (!strcmp(buf, "perfect") && !sigma) {
    *out = p;
    return CS_OK;
  }
  if (!sigma)
    return CS_EINVAL;
  char *phi = strchr(sigma, ':');
  if (phi)
    *phi++ = '\0';
  if (!strcmp(buf, "gauss") && !phi)
    p.noise = CS_SIM_NOISE_GAUSS;
  else if (!strcmp(buf, "ar1"))
    p.noise = CS_SIM_NOISE_AR1;
  else
    return CS_EINVAL;
  if (parse_share(sigma, &p.sigma_rel) != CS_OK)
    return CS_EINVAL;
  if (phi &&
      (cs_parse_double(phi, &p.phi, NULL) != CS_OK || p.phi < 0 || p.phi >= 1))
    return CS_EINVAL;
  if (p.sigma_rel == 0)
    p.noise = CS_SIM_NOISE_NONE;
  *out = p;
  return CS_OK;
}
