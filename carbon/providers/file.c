#include "carbon/providers/file.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "carbon/util/readfile.h"

#define MAX_TRACE_BYTES (256u << 20)
#define MAX_TRACES 64
#define MAX_FIELDS 32
#define LBS_TO_G_PER_KWH 0.45359237

typedef struct trace {
  char zone[CS_ZONE_MAX];
  cs_series s;     /* trace times; NaN marks a missing value */
  bool *estimated; /* per point, or NULL */
} trace;

typedef struct file_provider {
  cs_provider base;
  trace traces[MAX_TRACES];
  size_t ntraces;
  int64_t shift; /* service time = trace time + shift */
} file_provider;

/* Splits one CSV line in place (double quotes allowed around a field, ""
 * inside one). Returns the field count, or -1 for a broken quote. */
static int split(char *line, char **fields, int max)
{
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max)
      return -1;
    if (*p == '"') {
      char *w = ++p;
      fields[n++] = w;
      for (;;) {
        if (!*p)
          return -1;
        if (*p == '"' && p[1] == '"') {
          *w++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          *w++ = *p++;
        }
      }
      *w = '\0';
      if (*p == ',') {
        p++;
        continue;
      }
      if (*p)
        return -1;
      return n;
    }
    fields[n++] = p;
    char *c = strchr(p, ',');
    if (!c)
      return n;
    *c = '\0';
    p = c + 1;
  }
}

static cs_err parse_time(const char *s, int64_t *out)
{
  /* "YYYY-MM-DD hh:mm:ss" is UTC; RFC 3339 carries its own offset. */
  char tmp[40];
  size_t n = strlen(s);
  if (n == 19 && s[10] == ' ') {
    memcpy(tmp, s, n);
    tmp[n] = 'Z';
    tmp[n + 1] = '\0';
    s = tmp;
  }
  return cs_parse_rfc3339(s, out, NULL);
}

/* A WattTime region code (CAISO_NORTH, Caiso_North, PJM_DC): letters,
 * digits, '_' and '-', and nothing that names a unit or an intensity. */
static bool region_like(const char *s)
{
  if (!*s)
    return false;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
      return false;
  static const char *const units[] = {"intensity", "kwh", "mwh", "co2"};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strcasestr(s, units[i]))
      return false;
  return true;
}

cs_err cs_file_load(const char *path, const char *column, cs_series *out,
                    bool **estimated, char *err, size_t errcap)
{
  cs_err rc = CS_OK;
  char *data = NULL;
  size_t dlen = 0;
  cs_series s = {0};
  bool *est = NULL;
  size_t est_cap = 0;
  if (estimated)
    *estimated = NULL;
  const char *col = column ? column : "lca";
  if (strcmp(col, "lca") != 0 && strcmp(col, "direct") != 0) {
    snprintf(err, errcap, "%s: column \"%.20s\", expected lca or direct", path,
             col);
    rc = CS_EINVAL;
    goto out;
  }
  char why[128];
  rc = cs_read_file(path, MAX_TRACE_BYTES, &data, &dlen, why, sizeof(why));
  if (rc != CS_OK) {
    snprintf(err, errcap, "%s: %s", path, why);
    goto out;
  }
  /* The rows are read as C strings: a NUL would end the file early. */
  size_t nul = cs_text_nul_line(data, dlen);
  if (nul) {
    snprintf(err, errcap, "%s:%zu: a NUL byte; expected a text CSV file", path,
             nul);
    rc = CS_EINVAL;
    goto out;
  }
  char *p = cs_text_skip_bom(data);
  int ti = 0, vi = 1, ei = -1, nfields = 2;
  double scale = 1;
  size_t lineno = 0;
  char *fields[MAX_FIELDS];
  while (*p) {
    char *line = p, *nl = strchr(p, '\n');
    if (nl) {
      *nl = '\0';
      p = nl + 1;
    } else {
      p += strlen(p);
    }
    lineno++;
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r')
      line[--len] = '\0';
    if (lineno > 1 && !len)
      continue; /* blank lines, usually the last */
    int n = split(line, fields, MAX_FIELDS);
    if (n < 0) {
      snprintf(err, errcap, "%s:%zu: broken quoting or over %d columns", path,
               lineno, MAX_FIELDS);
      rc = CS_EPARSE;
      goto out;
    }
    if (lineno == 1) {
      if (strcmp(fields[0], "Datetime (UTC)") == 0) {
        vi = ei = -1;
        char want[64];
        snprintf(want, sizeof(want),
                 "Carbon Intensity gCO\xe2\x82\x82"
                 "eq/kWh (%s)",
                 strcmp(col, "lca") == 0 ? "LCA" : "direct");
        for (int i = 0; i < n; i++) {
          if (strcmp(fields[i], want) == 0)
            vi = i;
          if (strcmp(fields[i], "Data Estimated") == 0)
            ei = i;
        }
        if (vi < 0) {
          snprintf(err, errcap,
                   "%s:1: an Electricity Maps export without the column "
                   "\"%s\"",
                   path, want);
          rc = CS_EPARSE;
          goto out;
        }
        nfields = n;
        s.type = CS_SIGNAL_AVERAGE;
        s.factor =
            strcmp(col, "lca") == 0 ? CS_FACTOR_LIFECYCLE : CS_FACTOR_DIRECT;
      } else if (n == 2 && strcmp(fields[0], "Time") == 0 &&
                 strcmp(fields[1], "Carbon Intensity") == 0) {
        s.type = CS_SIGNAL_AVERAGE;
      } else if (n == 2 && (strcmp(fields[0], "time") == 0 ||
                            strcmp(fields[0], "oootime") == 0)) {
        /* "oootime" is how the vessim copy of the WattTime data set names
         * its time column. Its values are converted from lbs/MWh, so a
         * second column that does not read as a region would be a
         * silently wrong unit ("time,Carbon Intensity" in g/kWh). */
        if (!region_like(fields[1])) {
          snprintf(err, errcap,
                   "%s:1: header \"%.20s,%.40s\": a WattTime file names its "
                   "region in the second column (\"time,CAISO_NORTH\", MOER "
                   "in lbs CO2/MWh); for g/kWh use \"Time,Carbon Intensity\"",
                   path, fields[0], fields[1]);
          rc = CS_EPARSE;
          goto out;
        }
        s.type = CS_SIGNAL_MARGINAL;
        s.factor = CS_FACTOR_DIRECT;
        scale = LBS_TO_G_PER_KWH;
      } else {
        snprintf(err, errcap,
                 "%s:1: unknown header \"%.60s\", expected an Electricity "
                 "Maps export, \"Time,Carbon Intensity\" or WattTime "
                 "\"time,<region>\"",
                 path, fields[0]);
        rc = CS_EPARSE;
        goto out;
      }
      continue;
    }
    if (n != nfields) {
      snprintf(err, errcap, "%s:%zu: %d columns, expected %d", path, lineno, n,
               nfields);
      rc = CS_EPARSE;
      goto out;
    }
    int64_t at;
    if (parse_time(fields[ti], &at) != CS_OK) {
      snprintf(err, errcap,
               "%s:%zu: time \"%.40s\", expected YYYY-MM-DD hh:mm:ss (UTC)",
               path, lineno, fields[ti]);
      rc = CS_EPARSE;
      goto out;
    }
    if (s.len && at <= s.points[s.len - 1].at) {
      snprintf(err, errcap, "%s:%zu: time %s is not after the previous row",
               path, lineno, fields[ti]);
      rc = CS_EPARSE;
      goto out;
    }
    double v = NAN;
    if (*fields[vi]) {
      if (cs_parse_double(fields[vi], &v, NULL) != CS_OK || v < 0) {
        snprintf(err, errcap,
                 "%s:%zu: intensity \"%.40s\", expected a number >= 0", path,
                 lineno, fields[vi]);
        rc = CS_EPARSE;
        goto out;
      }
      v *= scale;
      if (v > CS_INTENSITY_MAX) {
        snprintf(err, errcap,
                 "%s:%zu: intensity \"%.40s\" is %.0f gCO2e/kWh, expected "
                 "at most %.0f (no grid emits more: a unit or data error?)",
                 path, lineno, fields[vi], v, CS_INTENSITY_MAX);
        rc = CS_EPARSE;
        goto out;
      }
    }
    bool e = false;
    if (ei >= 0) {
      if (strcmp(fields[ei], "true") == 0) {
        e = true;
      } else if (strcmp(fields[ei], "false") != 0 && *fields[ei]) {
        snprintf(err, errcap,
                 "%s:%zu: Data Estimated \"%.20s\", expected true or false",
                 path, lineno, fields[ei]);
        rc = CS_EPARSE;
        goto out;
      }
    }
    cs_series_push(&s, at, v);
    if (estimated && ei >= 0) {
      if (s.len > est_cap) {
        est_cap = est_cap ? est_cap * 2 : 1024;
        est = cs_realloc(est, est_cap * sizeof(*est));
      }
      est[s.len - 1] = e;
    }
  }
  if (s.len < 2) {
    snprintf(err, errcap, "%s: %zu data rows, expected at least 2", path,
             s.len);
    rc = CS_EPARSE;
    goto out;
  }
  /* The last point holds for the trace's usual spacing (the most common
   * gap). */
  int64_t best = 0;
  size_t best_n = 0;
  for (size_t i = 1; i < s.len && i < 64; i++) {
    int64_t d = s.points[i].at - s.points[i - 1].at;
    size_t cnt = 0;
    for (size_t k = 1; k < s.len && k < 64; k++)
      cnt += s.points[k].at - s.points[k - 1].at == d;
    if (cnt > best_n) {
      best_n = cnt;
      best = d;
    }
  }
  s.step = best;
  *out = s;
  s.points = NULL;
  if (estimated) {
    *estimated = est;
    est = NULL;
  }
out:
  cs_series_free(&s);
  free(est);
  free(data);
  return rc;
}

/* One line per trace at start: what was read, and its holes (spacings
 * longer than the step guessed from the first rows) and rows without a
 * value, where nothing is known. Many holes usually mean an irregular trace
 * whose step was guessed wrong, so that real rows became holes: the line says
 * so. */
static void log_loaded(const trace *t, const char *path)
{
  const cs_series *s = &t->s;
  size_t holes = 0, empty = 0;
  int64_t hole_s = 0;
  for (size_t i = 0; i < s->len; i++) {
    empty += isnan(s->points[i].g_per_kwh); /* a row without a value */
    int64_t gap = i ? s->points[i].at - s->points[i - 1].at : 0;
    if (gap > s->step) {
      holes++;
      hole_s += gap - s->step;
    }
  }
  bool irregular = holes * 10 > s->len;
  cs_buf *l = cs_log_begin(0, irregular ? "Carbon trace loaded; many holes: "
                                          "is its spacing regular?"
                                        : "Carbon trace loaded");
  char from[21], to[21];
  cs_format_rfc3339(s->points[0].at, from);
  cs_format_rfc3339(cs_series_end(s), to);
  cs_json_str(l, "zone", t->zone);
  cs_json_str(l, "file", path);
  cs_json_int(l, "rows", (int64_t)s->len);
  cs_json_str(l, "from", from);
  cs_json_str(l, "to", to);
  cs_json_int(l, "stepSeconds", s->step);
  cs_json_int(l, "holes", (int64_t)holes);
  cs_json_num(l, "holeHours", (double)hole_s / 3600, 2);
  cs_json_int(l, "emptyRows", (int64_t)empty);
  cs_log_end(l);
}

static const trace *find(const file_provider *f, const char *zone)
{
  for (size_t i = 0; i < f->ntraces; i++)
    if (strcmp(f->traces[i].zone, zone) == 0)
      return &f->traces[i];
  return NULL;
}

static cs_err file_current(cs_provider *p, const char *zone, int64_t now,
                           cs_signal *out)
{
  file_provider *f = (file_provider *)p;
  const trace *t = find(f, zone);
  if (!t)
    return CS_ENOTFOUND;
  long i = cs_series_index_at(&t->s, now - f->shift);
  if (i < 0 || isnan(t->s.points[i].g_per_kwh))
    return CS_ENOTFOUND; /* outside the trace, or a gap in it */
  cs_signal v = {
      .g_per_kwh = t->s.points[i].g_per_kwh,
      .type = t->s.type,
      .factor = t->s.factor,
      .observed_at = t->s.points[i].at + f->shift,
      .fetched_at = now,
      .estimated = t->estimated ? t->estimated[i] : false,
  };
  snprintf(v.provider, sizeof(v.provider), "%s", p->ops->name);
  snprintf(v.zone, sizeof(v.zone), "%s", zone);
  *out = v;
  return CS_OK;
}

static cs_err file_forecast(cs_provider *p, const char *zone, int64_t from,
                            int64_t to, cs_series *out)
{
  file_provider *f = (file_provider *)p;
  const trace *t = find(f, zone);
  if (!t || to <= from)
    return CS_ENOTFOUND;
  const cs_series *s = &t->s;
  int64_t tf = from - f->shift, tt = to - f->shift;
  long i = cs_series_index_at(s, tf);
  if (i < 0) {
    /* The window starts before the trace or in a hole of it: from the
     * first point after its start. */
    if (tt <= s->points[0].at || tf >= cs_series_end(s))
      return CS_ENOTFOUND;
    size_t lo = 0, hi = s->len;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (s->points[mid].at <= tf)
        lo = mid + 1;
      else
        hi = mid;
    }
    i = (long)lo;
  }
  cs_series r = *s;
  r.points = NULL;
  r.len = 0;
  snprintf(r.provider, sizeof(r.provider), "%s", p->ops->name);
  snprintf(r.zone, sizeof(r.zone), "%s", zone);
  for (size_t k = (size_t)i; k < s->len && s->points[k].at < tt; k++) {
    if (isnan(s->points[k].g_per_kwh))
      break; /* known only up to the first gap */
    cs_series_push(&r, s->points[k].at + f->shift, s->points[k].g_per_kwh);
  }
  if (!r.len)
    return CS_ENOTFOUND;
  *out = r;
  return CS_OK;
}

static void file_free(cs_provider *p)
{
  file_provider *f = (file_provider *)p;
  for (size_t i = 0; i < f->ntraces; i++) {
    cs_series_free(&f->traces[i].s);
    free(f->traces[i].estimated);
  }
  free(f);
}

static const cs_provider_ops file_ops = {
    .name = "file",
    .current = file_current,
    .forecast = file_forecast,
    .remote = false,
    .free = file_free,
};

cs_err cs_file_new(const cs_file_opts *o, cs_provider **out, char *err,
                   size_t errcap)
{
  if (o->ntraces > MAX_TRACES) {
    snprintf(err, errcap, "file traces: %zu, at most %d", o->ntraces,
             MAX_TRACES);
    return CS_ETOOBIG;
  }
  file_provider *f = cs_calloc(1, sizeof(*f));
  f->base.ops = &file_ops;
  int64_t start = o->start ? o->start : cs_clock_now();
  f->shift = o->replay_from ? start - o->replay_from : 0;
  for (size_t i = 0; i < o->ntraces; i++) {
    const cs_file_trace *ft = &o->traces[i];
    if (!ft->zone || !*ft->zone || strlen(ft->zone) >= CS_ZONE_MAX ||
        !ft->path || !*ft->path) {
      snprintf(err, errcap,
               "file traces[%zu]: expected a zone (under %d bytes) and a "
               "path",
               i, CS_ZONE_MAX);
      file_free(&f->base);
      return CS_EINVAL;
    }
    if (find(f, ft->zone)) {
      snprintf(err, errcap, "file traces[%zu]: zone %s appears twice", i,
               ft->zone);
      file_free(&f->base);
      return CS_EINVAL;
    }
    trace *t = &f->traces[f->ntraces];
    cs_err rc =
        cs_file_load(ft->path, ft->column, &t->s, &t->estimated, err, errcap);
    if (rc != CS_OK) {
      file_free(&f->base);
      return rc;
    }
    snprintf(t->zone, sizeof(t->zone), "%s", ft->zone);
    snprintf(t->s.zone, sizeof(t->s.zone), "%s", ft->zone);
    snprintf(t->s.provider, sizeof(t->s.provider), "%s", file_ops.name);
    log_loaded(t, ft->path);
    f->ntraces++;
  }
  *out = &f->base;
  return CS_OK;
}
