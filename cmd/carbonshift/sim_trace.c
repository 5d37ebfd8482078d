#include "cmd/carbonshift/sim_trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/readfile.h"
#include "carbon/util/parse.h"

void cs_sim_trace_free(cs_sim_trace *t)
{
  if (!t)
    return;
  free(t->at);
  free(t->g);
  free(t->cum);
  free(t->holes);
  free(t);
}

int64_t cs_sim_trace_end(const cs_sim_trace *t)
{
  return t->len ? t->at[t->len - 1] + t->step : 0;
}

int cs_sim_trace_covers(const cs_sim_trace *t, int64_t from, int64_t to)
{
  return t->len && from >= t->at[0] && to <= cs_sim_trace_end(t) &&
         from <= to && !cs_sim_trace_meets_hole(t, from, to);
}

size_t cs_sim_trace_index(const cs_sim_trace *t, int64_t at)
{
  size_t lo = 0, hi = t->len;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->at[mid] <= at)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

int cs_sim_trace_meets_hole(const cs_sim_trace *t, int64_t from, int64_t to)
{
  if (!t->nholes || to < from)
    return 0;
  /* The last second of [from, to), or the instant. */
  int64_t last = to > from ? to - 1 : from;
  size_t i = cs_sim_trace_index(t, from), j = cs_sim_trace_index(t, last);
  /* A hole after any of rows i .. j - 1 lies between from and last; one
   * after row j is met when `last` is past that row's hold. */
  if (t->holes[j] != t->holes[i])
    return 1;
  return j + 1 < t->len && last >= t->at[j] && last - t->at[j] >= t->max_hold;
}

/* The integral from the trace's start to x (x within the trace). */
static double integral_to(const cs_sim_trace *t, int64_t x)
{
  size_t i = cs_sim_trace_index(t, x);
  return t->cum[i] + t->g[i] * (double)(x - t->at[i]);
}

double cs_sim_trace_integral(const cs_sim_trace *t, int64_t from, int64_t to)
{
  return integral_to(t, to) - integral_to(t, from);
}

static int by_value(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The most common spacing between rows (the shortest of equally common
 * ones), an hour for a single row: the step the last row holds for, and
 * the unit of CS_SIM_TRACE_HOLD_STEPS. Any spacing counts, so that the
 * hole rule suits a daily trace as it suits a 15-minute one. */
static int64_t common_step(const int64_t *at, size_t len)
{
  if (len < 2)
    return 3600;
  int64_t *d = cs_malloc((len - 1) * sizeof(*d));
  for (size_t i = 1; i < len; i++)
    d[i - 1] = at[i] - at[i - 1];
  qsort(d, len - 1, sizeof(*d), by_value);
  int64_t best = d[0];
  size_t best_n = 0;
  for (size_t i = 0, run; i < len - 1; i += run) {
    for (run = 1; i + run < len - 1 && d[i + run] == d[i]; run++)
      ;
    if (run > best_n) {
      best_n = run;
      best = d[i];
    }
  }
  free(d);
  return best;
}

/* Marks the holes: spacings longer than CS_SIM_TRACE_HOLD_STEPS steps. */
static void find_holes(cs_sim_trace *t)
{
  t->max_hold = CS_SIM_TRACE_HOLD_STEPS * t->step;
  t->holes = cs_malloc(t->len * sizeof(*t->holes));
  t->holes[0] = 0;
  int64_t longest = 0;
  for (size_t i = 1; i < t->len; i++) {
    int64_t gap = t->at[i] - t->at[i - 1];
    bool hole = gap > t->max_hold;
    t->holes[i] = t->holes[i - 1] + hole;
    if (hole && gap > longest) {
      longest = gap;
      t->longest_hole_row = i - 1;
    }
  }
  t->nholes = t->holes[t->len - 1];
}

/* The prefix sums and the mean. Across a hole a row counts for max_hold
 * only: the hole adds nothing to the mean, and no integral the caller may
 * take (one that meets no hole) spans it, so the sums stay exact. */
static void finish(cs_sim_trace *t)
{
  find_holes(t);
  t->cum = cs_malloc((t->len + 1) * sizeof(*t->cum));
  t->cum[0] = 0;
  int64_t span = t->step;
  for (size_t i = 1; i < t->len; i++) {
    int64_t held = t->at[i] - t->at[i - 1];
    held = held > t->max_hold ? t->max_hold : held;
    t->cum[i] = t->cum[i - 1] + t->g[i - 1] * (double)held;
    span += held;
  }
  double total = t->cum[t->len - 1] + t->g[t->len - 1] * (double)t->step;
  t->mean = span > 0 ? total / (double)span : 0;
}

cs_err cs_sim_trace_from(const char *zone, const int64_t *at, const double *g,
                         size_t len, int64_t step, cs_sim_trace **out)
{
  if (!len || step <= 0 || !zone || strlen(zone) >= CS_ZONE_MAX)
    return CS_EINVAL;
  for (size_t i = 0; i < len; i++)
    if ((i && at[i] <= at[i - 1]) || !(g[i] >= 0))
      return CS_EINVAL;
  cs_sim_trace *t = cs_calloc(1, sizeof(*t));
  snprintf(t->zone, sizeof(t->zone), "%s", zone);
  t->at = cs_malloc(len * sizeof(*t->at));
  t->g = cs_malloc(len * sizeof(*t->g));
  memcpy(t->at, at, len * sizeof(*at));
  memcpy(t->g, g, len * sizeof(*g));
  t->len = len;
  t->step = step;
  finish(t);
  *out = t;
  return CS_OK;
}

size_t cs_sim_trace_split_csv(char *line, char **fields, const char **why)
{
  size_t n = 0;
  char *p = line;
  for (;;) {
    if (n == CS_SIM_CSV_MAX_FIELDS) {
      *why = "over 16 fields";
      return 0;
    }
    /* A quoted field is copied down over its quotes, so `out` trails `p`;
     * an unquoted one is left where it is. */
    char *out = p;
    fields[n++] = out;
    if (*p == '"') {
      for (p++;; p++) {
        if (!*p) {
          *why = "an unterminated quote";
          return 0;
        }
        if (*p == '"' && p[1] != '"')
          break;
        if (*p == '"')
          p++;
        *out++ = *p;
      }
      p++;
      if (*p && *p != ',') {
        *why = "text after a closing quote";
        return 0;
      }
    } else {
      for (; *p && *p != ','; p++, out++)
        if (*p == '"') {
          *why = "a quote inside an unquoted field";
          return 0;
        }
    }
    char end = *p;
    *out = '\0';
    if (!end)
      return n;
    p++;
  }
}

char *cs_sim_csv_record_end(char *p, size_t *breaks)
{
  bool quoted = false; /* "" inside a quoted field toggles twice */
  size_t n = 0;
  for (; *p; p++) {
    if (*p == '"')
      quoted = !quoted;
    else if (*p == '\n' && !quoted)
      break;
    else if (*p == '\n')
      n++;
  }
  *breaks = n;
  return p;
}

/* "YYYY-MM-DD HH:MM:SS" (treated as UTC) or RFC 3339. */
static cs_err parse_time(const char *s, int64_t *out)
{
  char buf[40];
  size_t n = strlen(s);
  if (n == 19 && s[10] == ' ') {
    snprintf(buf, sizeof(buf), "%.10sT%.8sZ", s, s + 11);
    return cs_parse_rfc3339(buf, out, NULL);
  }
  return cs_parse_rfc3339(s, out, NULL);
}

/* What a trace's header may be, for messages. */
static const char accepted_headers[] =
    "expected \"Time,Carbon Intensity\" (Let's Wait Awhile) or an "
    "Electricity Maps export (\"Datetime (UTC),...,Carbon Intensity "
    "gCO\xe2\x82\x82"
    "eq/kWh (LCA),...\"), intensities in gCO2/kWh, gCO2e/kWh or gCO2eq/kWh";

/* Whether `unit` (one word of a column name, parentheses stripped) is
 * grams of CO2(e) per kWh, with an ASCII 2 or a subscript two. */
static bool is_gram_per_kwh(const char *unit, size_t n)
{
  static const char *const units[] = {"gCO2/kWh", "gCO2e/kWh", "gCO2eq/kWh"};
  char ascii[32];
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < sizeof(ascii); i++, k++) {
    if (i + 3 <= n && !strncmp(unit + i, "\xe2\x82\x82", 3)) {
      ascii[k] = '2'; /* U+2082 SUBSCRIPT TWO */
      i += 2;
    } else {
      ascii[k] = unit[i];
    }
  }
  ascii[k] = '\0';
  for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++)
    if (!strcmp(ascii, units[i]))
      return true;
  return false;
}

typedef enum { CI_NONE, CI_PLAIN, CI_LCA } ci_kind;

/* Classifies one header field: CI_NONE when it is not an intensity column
 * (it does not start with "Carbon Intensity"); CI_LCA for one marked
 * "(LCA)"; CI_PLAIN for any other, bare or with "(direct)". Every other
 * word after the name must be a gCO2(e/eq)/kWh unit, bare or in
 * parentheses; -1 with the reason in `why` when one is not. */
static int intensity_column(const char *name, char *why, size_t whycap)
{
  static const char prefix[] = "Carbon Intensity";
  if (strncmp(name, prefix, sizeof(prefix) - 1))
    return CI_NONE;
  const char *p = name + sizeof(prefix) - 1;
  if (*p && *p != ' ')
    return CI_NONE; /* "Carbon Intensityfoo" is another name */
  int kind = CI_PLAIN;
  while (*p) {
    while (*p == ' ')
      p++;
    size_t n = strcspn(p, " ");
    if (!n)
      break;
    if (n == 5 && !strncmp(p, "(LCA)", 5))
      kind = CI_LCA;
    else if (!(n == 8 && !strncmp(p, "(direct)", 8))) {
      const char *u = p;
      size_t un = n;
      if (un >= 2 && u[0] == '(' && u[un - 1] == ')')
        u++, un -= 2;
      if (!is_gram_per_kwh(u, un)) {
        snprintf(why, whycap,
                 "column \"%.60s\": unit \"%.*s\" is not gCO2/kWh, "
                 "gCO2e/kWh or gCO2eq/kWh",
                 name, (int)(un > 40 ? 40 : un), u);
        return -1;
      }
    }
    p += n;
  }
  return kind;
}

/* The index of the intensity column a header names, or -1 with the reason
 * in `why`. The first column must be the time, "Time" or "Datetime (UTC)";
 * of the intensity columns, the one marked (LCA), else the only one. Two
 * unmarked ones, or two marked (LCA), are ambiguous and refused rather than
 * one picked. Other columns are ignored. */
static int header_value_column(char **fields, size_t nf, char *why,
                               size_t whycap)
{
  if (strcmp(fields[0], "Time") && strcmp(fields[0], "Datetime (UTC)")) {
    snprintf(why, whycap,
             "first column \"%.40s\" is not \"Time\" or "
             "\"Datetime (UTC)\"",
             fields[0]);
    return -1;
  }
  int col[CI_LCA + 1] = {-1, -1, -1};
  size_t count[CI_LCA + 1] = {0};
  for (size_t i = 1; i < nf; i++) {
    int kind = intensity_column(fields[i], why, whycap);
    if (kind < 0)
      return -1;
    if (kind != CI_NONE && !count[kind]++)
      col[kind] = (int)i;
  }
  if (count[CI_LCA] == 1)
    return col[CI_LCA];
  if (!count[CI_LCA] && count[CI_PLAIN] == 1)
    return col[CI_PLAIN];
  if (!count[CI_LCA] && !count[CI_PLAIN])
    snprintf(why, whycap, "no \"Carbon Intensity\" column");
  else
    snprintf(why, whycap,
             "%zu \"Carbon Intensity\" columns, %zu of them marked (LCA): "
             "ambiguous",
             count[CI_LCA] + count[CI_PLAIN], count[CI_LCA]);
  return -1;
}

static void zone_from_path(const char *path, char *zone, size_t cap)
{
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot ? (size_t)(dot - base) : strlen(base);
  snprintf(zone, cap, "%.*s", (int)n, base);
}

cs_err cs_sim_trace_read_file(const char *path, size_t cap, const char *kind,
                              char **data, size_t *len, char *err,
                              size_t errcap)
{
  char why[128];
  cs_err rc = cs_read_file(path, cap, data, len, why, sizeof(why));
  if (rc == CS_ETOOBIG)
    snprintf(err, errcap, "%s: over the %zu MiB cap on %s", path, cap >> 20,
             kind);
  else if (rc)
    snprintf(err, errcap, "%s: cannot be read: %s", path, why);
  return rc;
}

cs_err cs_sim_trace_load(const char *path, const char *zone, cs_sim_trace **out,
                         char *err, size_t errcap)
{
  char *data = NULL;
  size_t len = 0;
  cs_sim_trace *t = NULL;
  cs_err rc = cs_sim_trace_read_file(path, CS_SIM_TRACE_MAX_BYTES,
                                     "a trace file", &data, &len, err, errcap);
  if (rc)
    return rc;
  size_t nul = cs_text_nul_line(data, len);
  if (nul) {
    snprintf(err, errcap, "%s: NUL byte at line %zu: expected a text file",
             path, nul);
    free(data);
    return CS_EPARSE;
  }
  t = cs_calloc(1, sizeof(*t));
  if (zone && zone[0])
    snprintf(t->zone, sizeof(t->zone), "%s", zone);
  else
    zone_from_path(path, t->zone, sizeof(t->zone));
  size_t cap = 0;
  int value_col = -1;
  size_t lineno = 0, header_fields = 0;
  char *line = cs_text_skip_bom(data);
  while (line && *line) {
    size_t breaks;
    char *nl = cs_sim_csv_record_end(line, &breaks);
    char *next_line = *nl ? nl + 1 : NULL;
    *nl = '\0';
    size_t ll = (size_t)(nl - line);
    if (ll && line[ll - 1] == '\r')
      line[--ll] = '\0';
    lineno++; /* the line the record starts on, for messages */
    char *fields[CS_SIM_CSV_MAX_FIELDS];
    const char *why = NULL;
    if (!ll)
      goto next;
    size_t nf = cs_sim_trace_split_csv(line, fields, &why);
    if (!nf) {
      snprintf(err, errcap, "%s:%zu: %s", path, lineno, why);
      rc = CS_EPARSE;
      goto out;
    }
    if (value_col < 0) {
      char why_header[256];
      value_col =
          header_value_column(fields, nf, why_header, sizeof(why_header));
      if (value_col < 0) {
        snprintf(err, errcap, "%s:%zu: %s; %s", path, lineno, why_header,
                 accepted_headers);
        rc = CS_EPARSE;
        goto out;
      }
      header_fields = nf;
      goto next;
    }
    if (nf != header_fields) {
      snprintf(err, errcap, "%s:%zu: %zu fields, but the header has %zu", path,
               lineno, nf, header_fields);
      rc = CS_EPARSE;
      goto out;
    }
    int64_t at;
    double g;
    if (parse_time(fields[0], &at) != CS_OK) {
      snprintf(err, errcap,
               "%s:%zu: time \"%.40s\": expected YYYY-MM-DD HH:MM:SS (UTC) "
               "or RFC 3339",
               path, lineno, fields[0]);
      rc = CS_EPARSE;
      goto out;
    }
    if (cs_parse_double(fields[value_col], &g, NULL) != CS_OK || g < 0 ||
        g > CS_INTENSITY_MAX) {
      snprintf(err, errcap,
               "%s:%zu: intensity \"%.40s\": expected a number of gCO2e/kWh "
               "from 0 to %.0f (no grid emits more: a unit or data error?)",
               path, lineno, fields[value_col], CS_INTENSITY_MAX);
      rc = CS_EPARSE;
      goto out;
    }
    if (t->len && at <= t->at[t->len - 1]) {
      snprintf(err, errcap,
               "%s:%zu: time %s is not after the previous row's: rows must "
               "be in strictly increasing time order",
               path, lineno, fields[0]);
      rc = CS_EPARSE;
      goto out;
    }
    if (t->len == cap) {
      if (cap >= CS_SIM_TRACE_MAX_ROWS) {
        snprintf(err, errcap, "%s: over %d rows", path, CS_SIM_TRACE_MAX_ROWS);
        rc = CS_ETOOBIG;
        goto out;
      }
      cap = cap ? cap * 2 : 4096;
      t->at = cs_realloc(t->at, cap * sizeof(*t->at));
      t->g = cs_realloc(t->g, cap * sizeof(*t->g));
    }
    t->at[t->len] = at;
    t->g[t->len++] = g;
  next:
    lineno += breaks;
    line = next_line;
  }
  if (!t->len) {
    snprintf(err, errcap, "%s: no data rows", path);
    rc = CS_EPARSE;
    goto out;
  }
  t->step = common_step(t->at, t->len);
  finish(t);
out:
  free(data);
  if (rc) {
    cs_sim_trace_free(t);
    return rc;
  }
  *out = t;
  return CS_OK;
}
