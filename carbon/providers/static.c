#include "carbon/providers/static.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"

#define HOUR 3600

typedef struct static_entry {
  char zone[CS_ZONE_MAX];
  double g_per_kwh;
} static_entry;

typedef struct static_provider {
  cs_provider base; /* first: the registry sees a cs_provider */
  cs_signal_type type;
  size_t n;
  static_entry *e;
} static_provider;

static const static_entry *find_zone(const static_provider *sp,
                                     const char *zone)
{
  if (!zone)
    return NULL;
  for (size_t i = 0; i < sp->n; i++)
    if (strcmp(sp->e[i].zone, zone) == 0)
      return &sp->e[i];
  return NULL;
}

static void set_name(char *dst, size_t cap, const char *src)
{
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static cs_err static_current(cs_provider *p, const char *zone, int64_t now,
                             cs_signal *out)
{
  const static_provider *sp = (const static_provider *)p;
  const static_entry *e = find_zone(sp, zone);
  if (!e)
    return CS_ENOTFOUND;
  cs_signal s = {0};
  s.g_per_kwh = e->g_per_kwh;
  s.type = sp->type;
  set_name(s.provider, sizeof(s.provider), "static");
  set_name(s.zone, sizeof(s.zone), e->zone);
  /* The value holds at every instant; report it as of the current hour like
   * the hourly providers, so ages compare sensibly. */
  s.observed_at = cs_time_floor(now, HOUR);
  s.fetched_at = now;
  s.estimated = true;
  *out = s;
  return CS_OK;
}

static cs_err static_forecast(cs_provider *p, const char *zone, int64_t from,
                              int64_t to, cs_series *out)
{
  const static_provider *sp = (const static_provider *)p;
  const static_entry *e = find_zone(sp, zone);
  if (!e)
    return CS_ENOTFOUND;
  if (to <= from || from < INT64_MIN / 2 || to > INT64_MAX / 2)
    return CS_EINVAL;
  if (to - from > CS_STATIC_MAX_SPAN)
    return CS_ETOOBIG;
  int64_t first = cs_time_floor(from, HOUR);
  size_t n = (size_t)((to - first + HOUR - 1) / HOUR);
  cs_series s = {0};
  s.points = cs_malloc(n * sizeof(*s.points));
  for (size_t i = 0; i < n; i++) {
    s.points[i].at = first + (int64_t)i * HOUR;
    s.points[i].g_per_kwh = e->g_per_kwh;
  }
  s.len = n;
  s.step = HOUR;
  s.type = sp->type;
  set_name(s.provider, sizeof(s.provider), "static");
  set_name(s.zone, sizeof(s.zone), e->zone);
  *out = s;
  return CS_OK;
}

static void static_free(cs_provider *p)
{
  static_provider *sp = (static_provider *)p;
  free(sp->e);
  free(sp);
}

static const cs_provider_ops static_ops = {
    .name = "static",
    .current = static_current,
    .forecast = static_forecast,
    .remote = false,
    .free = static_free,
};

cs_err cs_static_new(const cs_static_zone *zones, size_t n, cs_signal_type type,
                     cs_provider **out)
{
  if (!out || (n && !zones))
    return CS_EINVAL;
  if (type != CS_SIGNAL_AVERAGE && type != CS_SIGNAL_MARGINAL)
    return CS_EINVAL;
  if (n > CS_STATIC_MAX_ZONES)
    return CS_ETOOBIG;
  for (size_t i = 0; i < n; i++) {
    const char *z = zones[i].zone;
    if (!z || !*z || strnlen(z, CS_ZONE_MAX) == CS_ZONE_MAX)
      return CS_EINVAL;
    double v = zones[i].g_per_kwh;
    if (!isfinite(v) || v < 0)
      return CS_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(zones[j].zone, z) == 0)
        return CS_EINVAL;
  }
  static_provider *sp = cs_calloc(1, sizeof(*sp));
  sp->base.ops = &static_ops;
  sp->type = type;
  sp->n = n;
  sp->e = cs_calloc(n ? n : 1, sizeof(*sp->e));
  for (size_t i = 0; i < n; i++) {
    set_name(sp->e[i].zone, sizeof(sp->e[i].zone), zones[i].zone);
    sp->e[i].g_per_kwh = zones[i].g_per_kwh;
  }
  *out = &sp->base;
  return CS_OK;
}
