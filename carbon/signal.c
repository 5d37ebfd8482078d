#include "carbon/signal.h"

#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"

const char *cs_signal_type_name(cs_signal_type t)
{
  return t == CS_SIGNAL_MARGINAL ? "marginal" : "average";
}

const char *cs_factor_basis_name(cs_factor_basis f)
{
  return f == CS_FACTOR_LIFECYCLE ? "lifecycle"
         : f == CS_FACTOR_DIRECT  ? "direct"
                                  : "unstated";
}

cs_err cs_signal_type_parse(const char *s, cs_signal_type *out)
{
  if (s && strcmp(s, "average") == 0) {
    *out = CS_SIGNAL_AVERAGE;
    return CS_OK;
  }
  if (s && strcmp(s, "marginal") == 0) {
    *out = CS_SIGNAL_MARGINAL;
    return CS_OK;
  }
  return CS_EINVAL;
}

void cs_series_free(cs_series *s)
{
  if (!s)
    return;
  free(s->points);
  s->points = NULL;
  s->len = 0;
}

void cs_series_push(cs_series *s, int64_t at, double g_per_kwh)
{
  /* Capacity is the next power of two at or above len. */
  if ((s->len & (s->len - 1)) == 0) {
    size_t cap = s->len ? s->len * 2 : 16;
    if (s->len < 16 && s->len)
      cap = 16;
    s->points = cs_realloc(s->points, cap * sizeof(*s->points));
  }
  s->points[s->len].at = at;
  s->points[s->len].g_per_kwh = g_per_kwh;
  s->len++;
}

void cs_series_slice(const cs_series *in, int64_t from, int64_t to,
                     cs_series *out)
{
  *out = *in;
  out->points = NULL;
  out->len = 0;
  for (size_t i = 0; i < in->len; i++) {
    int64_t a = in->points[i].at, b = cs_series_point_end(in, i);
    if (b > from && a < to)
      cs_series_push(out, a, in->points[i].g_per_kwh);
  }
}

long cs_series_index_at(const cs_series *s, int64_t t)
{
  if (!s->len || t < s->points[0].at || t >= cs_series_end(s))
    return -1;
  size_t lo = 0, hi = s->len;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->points[mid].at <= t)
      lo = mid;
    else
      hi = mid;
  }
  return t < cs_series_point_end(s, lo) ? (long)lo : -1;
}

int64_t cs_series_end(const cs_series *s)
{
  if (!s->len)
    return 0;
  return s->points[s->len - 1].at + s->step;
}

int64_t cs_series_point_end(const cs_series *s, size_t i)
{
  int64_t at = s->points[i].at;
  if (i + 1 == s->len)
    return at + s->step;
  int64_t next = s->points[i + 1].at;
  int64_t hold = s->max_hold > 0 ? s->max_hold : s->step;
  /* Compared as a spacing, so that a large max_hold cannot overflow. */
  return next - at <= hold ? next : at + hold;
}

/* How far [start, end) is known without a break from `start` on, and the
 * integral of the intensity over that part (g/kWh x s). Returns `start`
 * when start itself is not covered. */
static int64_t known_prefix(const cs_series *s, int64_t start, int64_t end,
                            double *sum)
{
  *sum = 0;
  long lo = cs_series_index_at(s, start);
  if (lo < 0)
    return start;          /* outside the series, or in a hole */
  int64_t covered = start; /* the window is known up to here */
  for (size_t i = (size_t)lo; i < s->len && covered < end; i++) {
    int64_t a = s->points[i].at, b = cs_series_point_end(s, i);
    if (a > covered)
      break; /* a hole */
    if (b > end)
      b = end;
    if (b > covered)
      *sum += s->points[i].g_per_kwh * (double)(b - covered);
    covered = b > covered ? b : covered;
  }
  return covered;
}

cs_err cs_series_window_mean(const cs_series *s, int64_t start,
                             int64_t duration, double *mean)
{
  if (!s->len || duration <= 0)
    return CS_ENOTFOUND;
  int64_t end = start + duration;
  if (start < s->points[0].at || end > cs_series_end(s))
    return CS_ENOTFOUND;
  double sum;
  if (known_prefix(s, start, end, &sum) < end)
    return CS_ENOTFOUND;
  *mean = sum / (double)duration;
  return CS_OK;
}

cs_err cs_series_prefix_mean(const cs_series *s, int64_t start,
                             int64_t duration, double *mean, int64_t *covered)
{
  *covered = 0;
  if (!s->len || duration <= 0)
    return CS_ENOTFOUND;
  double sum;
  int64_t known = known_prefix(s, start, start + duration, &sum) - start;
  if (known <= 0)
    return CS_ENOTFOUND;
  *mean = sum / (double)known;
  *covered = known;
  return CS_OK;
}

void cs_provider_free(cs_provider *p)
{
  if (p && p->ops->free)
    p->ops->free(p);
}

void cs_provider_cancel(cs_provider *p)
{
  if (p)
    atomic_store(&p->cancel, true);
}
