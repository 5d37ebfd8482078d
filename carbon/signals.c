#include "carbon/signals.h"

#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"

#define MAX_PROVIDERS 16
#define MAX_ROUTES 256

typedef struct route {
  char zone[CS_ZONE_MAX];
  size_t n;
  cs_provider *chain[MAX_PROVIDERS];
} route;

struct cs_signals {
  cs_signal_type ranking_type;
  cs_provider *providers[MAX_PROVIDERS];
  size_t nproviders;
  route routes[MAX_ROUTES];
  size_t nroutes;
};

cs_signals *cs_signals_new(cs_signal_type ranking_type)
{
  cs_signals *s = cs_calloc(1, sizeof(*s));
  s->ranking_type = ranking_type;
  return s;
}

void cs_signals_free(cs_signals *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->nproviders; i++)
    cs_provider_free(s->providers[i]);
  free(s);
}

cs_signal_type cs_signals_ranking_type(const cs_signals *s)
{
  return s->ranking_type;
}

static cs_provider *find_provider(const cs_signals *s, const char *name)
{
  for (size_t i = 0; i < s->nproviders; i++)
    if (strcmp(s->providers[i]->ops->name, name) == 0)
      return s->providers[i];
  return NULL;
}

cs_err cs_signals_add_provider(cs_signals *s, cs_provider *p)
{
  if (!p || s->nproviders == MAX_PROVIDERS || find_provider(s, p->ops->name))
    return CS_EINVAL;
  s->providers[s->nproviders++] = p;
  return CS_OK;
}

cs_err cs_signals_set_route(cs_signals *s, const char *zone,
                            const char *const *providers, size_t n)
{
  if (!zone || strlen(zone) >= CS_ZONE_MAX || n > MAX_PROVIDERS)
    return CS_EINVAL;
  route r = {0};
  memcpy(r.zone, zone, strlen(zone) + 1);
  for (size_t i = 0; i < n; i++) {
    r.chain[i] = find_provider(s, providers[i]);
    if (!r.chain[i])
      return CS_ENOTFOUND;
  }
  r.n = n;
  for (size_t i = 0; i < s->nroutes; i++) {
    if (strcmp(s->routes[i].zone, zone) == 0) {
      s->routes[i] = r;
      return CS_OK;
    }
  }
  if (s->nroutes == MAX_ROUTES)
    return CS_ETOOBIG;
  s->routes[s->nroutes++] = r;
  return CS_OK;
}

/* The providers to ask for `zone`, in order. */
static size_t chain_for(cs_signals *s, const char *zone, const char *only,
                        cs_provider **out)
{
  if (only) {
    out[0] = find_provider(s, only);
    return out[0] ? 1 : 0;
  }
  const route *wild = NULL;
  for (size_t i = 0; i < s->nroutes; i++) {
    if (strcmp(s->routes[i].zone, zone) == 0) {
      memcpy(out, s->routes[i].chain, s->routes[i].n * sizeof(*out));
      return s->routes[i].n;
    }
    if (strcmp(s->routes[i].zone, "*") == 0)
      wild = &s->routes[i];
  }
  if (wild) {
    memcpy(out, wild->chain, wild->n * sizeof(*out));
    return wild->n;
  }
  memcpy(out, s->providers, s->nproviders * sizeof(*out));
  return s->nproviders;
}

cs_err cs_signals_current(cs_signals *s, const char *zone, const char *only,
                          int64_t now, cs_signal *out)
{
  if (!zone || !*zone)
    return CS_ENOTFOUND;
  cs_provider *chain[MAX_PROVIDERS];
  size_t n = chain_for(s, zone, only, chain);
  for (size_t i = 0; i < n; i++) {
    cs_signal v;
    if (chain[i]->ops->current(chain[i], zone, now, &v) != CS_OK)
      continue;
    if (v.type != s->ranking_type)
      continue; /* never rank on a mix of signal types */
    *out = v;
    return CS_OK;
  }
  return CS_ENOTFOUND;
}

cs_err cs_signals_forecast(cs_signals *s, const char *zone, const char *only,
                           int64_t from, int64_t to, cs_series *out)
{
  if (!zone || !*zone)
    return CS_ENOTFOUND;
  cs_provider *chain[MAX_PROVIDERS];
  size_t n = chain_for(s, zone, only, chain);
  for (size_t i = 0; i < n; i++) {
    if (!chain[i]->ops->forecast)
      continue;
    cs_series f = {0};
    if (chain[i]->ops->forecast(chain[i], zone, from, to, &f) != CS_OK)
      continue;
    if (f.type != s->ranking_type || !f.len) {
      cs_series_free(&f);
      continue;
    }
    *out = f;
    return CS_OK;
  }
  return CS_ENOTFOUND;
}

bool cs_signals_status(cs_signals *s, int64_t now, cs_buf *out)
{
  (void)now;
  cs_json_open(out, NULL, '{');
  cs_json_str(out, "rankingSignal", cs_signal_type_name(s->ranking_type));
  cs_json_open(out, "providers", '[');
  for (size_t i = 0; i < s->nproviders; i++)
    cs_json_str(out, NULL, s->providers[i]->ops->name);
  cs_json_close(out, ']');
  cs_json_close(out, '}');
  return true;
}
