#include "cmd/carbonshift/sim_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/readfile.h"
#include "carbon/util/parse.h"
#include "cmd/carbonshift/sim_trace.h"

#define DAY 86400
#define WEEK (7 * DAY)

void cs_sim_jobs_free(cs_sim_jobs *j)
{
  free(j->v);
  memset(j, 0, sizeof(*j));
}

static cs_sim_job *push(cs_sim_jobs *j, size_t *cap)
{
  if (j->n == *cap) {
    *cap = *cap ? *cap * 2 : 1024;
    j->v = cs_realloc(j->v, *cap * sizeof(*j->v));
  }
  cs_sim_job *job = &j->v[j->n];
  memset(job, 0, sizeof(*job));
  job->seq = j->n++;
  return job;
}

int64_t cs_sim_year_start(int year)
{
  /* Days from 1970-01-01 to year-01-01 (proleptic Gregorian). */
  int64_t y = year - 1;
  int64_t days = 365 * (y - 1969) + (y / 4 - 1969 / 4) -
                 (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400);
  return days * DAY;
}

/* 0 = Monday ... 6 = Sunday. 1970-01-01 was a Thursday. */
static int weekday(int64_t t)
{
  int64_t d = t >= 0 ? t / DAY : (t - DAY + 1) / DAY;
  return (int)(((d + 3) % 7 + 7) % 7);
}

static int64_t day_start(int64_t t)
{
  int64_t r = t % DAY;
  return r < 0 ? t - r - DAY : t - r;
}

/* ---- files ------------------------------------------------------------- */

static cs_err parse_time(const char *s, int64_t *out)
{
  char buf[40];
  if (strlen(s) == 19 && s[10] == ' ') {
    snprintf(buf, sizeof(buf), "%.10sT%.8sZ", s, s + 11);
    return cs_parse_rfc3339(buf, out, NULL);
  }
  return cs_parse_rfc3339(s, out, NULL);
}

/* Seconds as a plain number, 0 to CS_DURATION_MAX_S (100y). The cap is
 * cs_parse_duration's: the engine and the planner add durations to Unix
 * seconds in int64, which a value such as 1e300 would overflow. */
static cs_err parse_plain_seconds(const char *s, double *out)
{
  double v;
  if (cs_parse_double(s, &v, NULL) != CS_OK || !(v >= 0) ||
      v > CS_DURATION_MAX_S)
    return CS_EINVAL;
  *out = v;
  return CS_OK;
}

/* Seconds as a plain number, or a duration such as "36h"; at most 100y
 * either way. */
static cs_err parse_seconds(const char *s, double *out)
{
  double v;
  if (cs_parse_double(s, &v, NULL) == CS_OK)
    return parse_plain_seconds(s, out);
  return cs_parse_duration(s, out, NULL);
}

enum {
  COL_ID,
  COL_SUBMIT,
  COL_DUR,
  COL_GPUS,
  COL_DELAY,
  COL_DEADLINE,
  COL_BUDGET,
  COL_EXPECTED,
  NCOLS
};
static const char *const col_names[NCOLS] = {
    "id",        "submit",   "duration", "gpus",
    "max_delay", "deadline", "budget",   "expected_duration"};

typedef struct reader {
  const char *path;
  bool philly;
  int col[NCOLS]; /* generic: field index of each column; -1 absent */
  size_t nf;      /* the header's field count, every row's */
  char *err;
  size_t errcap;
} reader;

static cs_err header(reader *r, char **f, size_t nf)
{
  r->nf = nf;
  if (nf >= 3 && !strcmp(f[0], "timestamp") && !strcmp(f[1], "duration") &&
      !strcmp(f[2], "num_gpus")) {
    r->philly = true;
    return CS_OK;
  }
  for (int c = 0; c < NCOLS; c++)
    r->col[c] = -1;
  for (size_t i = 0; i < nf; i++) {
    int c = 0;
    while (c < NCOLS && strcmp(f[i], col_names[c]))
      c++;
    if (c == NCOLS) {
      snprintf(r->err, r->errcap,
               "%s:1: unknown column \"%.40s\": expected id, submit, "
               "duration, gpus, max_delay, deadline, budget, "
               "expected_duration (or the Philly header)",
               r->path, f[i]);
      return CS_EPARSE;
    }
    if (r->col[c] >= 0) {
      /* Which of the two a row's value would come from is a guess. */
      snprintf(r->err, r->errcap,
               "%s:1: column \"%s\" given twice (fields %d and %zu): "
               "expected each column once",
               r->path, col_names[c], r->col[c] + 1, i + 1);
      return CS_EPARSE;
    }
    r->col[c] = (int)i;
  }
  for (int c = 0; c <= COL_GPUS; c++)
    if (r->col[c] < 0) {
      snprintf(r->err, r->errcap,
               "%s:1: the header lacks column \"%s\" (required: id, submit, "
               "duration, gpus)",
               r->path, col_names[c]);
      return CS_EPARSE;
    }
  return CS_OK;
}

static cs_err bad(reader *r, size_t line, const char *field, const char *value,
                  const char *expected)
{
  snprintf(r->err, r->errcap, "%s:%zu: %s \"%.40s\": expected %s", r->path,
           line, field, value, expected);
  return CS_EPARSE;
}

static const char *field(reader *r, char **f, size_t nf, int c)
{
  int i = r->col[c];
  return i >= 0 && (size_t)i < nf && f[i][0] ? f[i] : NULL;
}

static cs_err row(reader *r, char **f, size_t nf, size_t line, cs_sim_jobs *out,
                  size_t *cap)
{
  cs_sim_job j = {0};
  if (nf != r->nf) {
    snprintf(r->err, r->errcap, "%s:%zu: %zu fields, but the header has %zu",
             r->path, line, nf, r->nf);
    return CS_EPARSE;
  }
  if (r->philly) {
    if (nf < 3)
      return bad(r, line, "row", f[0], "timestamp,duration,num_gpus,...");
    if (parse_time(f[0], &j.submit) != CS_OK)
      return bad(r, line, "timestamp", f[0], "YYYY-MM-DD HH:MM:SS (UTC)");
    if (parse_plain_seconds(f[1], &j.duration_s))
      return bad(r, line, "duration", f[1], "seconds, 0 to 3153600000 (100y)");
    if (cs_parse_double(f[2], &j.gpus, NULL) != CS_OK || j.gpus < 0 ||
        j.gpus > CS_SIM_GPUS_MAX)
      return bad(r, line, "num_gpus", f[2], "a GPU count from 0 to 1000000");
    snprintf(j.id, sizeof(j.id), "%zu", line - 1);
  } else {
    const char *v;
    snprintf(j.id, sizeof(j.id), "%s",
             field(r, f, nf, COL_ID) ? f[r->col[COL_ID]] : "");
    if (!(v = field(r, f, nf, COL_SUBMIT)) || parse_time(v, &j.submit))
      return bad(r, line, "submit", v ? v : "",
                 "RFC 3339 or YYYY-MM-DD HH:MM:SS (UTC)");
    if (!(v = field(r, f, nf, COL_DUR)) || parse_seconds(v, &j.duration_s))
      return bad(r, line, "duration", v ? v : "",
                 "seconds or 36h, 90m, at most 100y");
    if (!(v = field(r, f, nf, COL_GPUS)) || cs_parse_double(v, &j.gpus, NULL) ||
        j.gpus < 0 || j.gpus > CS_SIM_GPUS_MAX)
      return bad(r, line, "gpus", v ? v : "", "a GPU count from 0 to 1000000");
    if ((v = field(r, f, nf, COL_DELAY)) && parse_seconds(v, &j.max_delay_s))
      return bad(r, line, "max_delay", v, "seconds or 6h, 1d, at most 100y");
    j.max_delay_given = v != NULL;
    if ((v = field(r, f, nf, COL_DEADLINE)) && parse_time(v, &j.deadline))
      return bad(r, line, "deadline", v, "RFC 3339 or YYYY-MM-DD HH:MM:SS");
    if (v && j.deadline <= j.submit)
      return bad(r, line, "deadline", v, "a time after the job's submit");
    if ((v = field(r, f, nf, COL_BUDGET)) &&
        cs_parse_mass(v, &j.budget_g, NULL))
      return bad(r, line, "budget", v, "a mass such as 500g, 12.5kg, 1.2t");
    if ((v = field(r, f, nf, COL_EXPECTED)) && parse_seconds(v, &j.expected_s))
      return bad(r, line, "expected_duration", v,
                 "seconds or 36h, 90m, at most 100y");
  }
  if (!(j.gpus > 0) || !(j.duration_s > 0)) {
    out->skipped++;
    return CS_OK;
  }
  /* Under a second, energy and emissions round to nothing: no training
   * job is that short, so it is a unit slip (milliseconds?). */
  if (j.duration_s < 1) {
    snprintf(r->err, r->errcap,
             "%s:%zu: duration %g s: expected at least 1 s (0 skips the row)",
             r->path, line, j.duration_s);
    return CS_EPARSE;
  }
  if (j.expected_s > 0 && j.expected_s < 1) {
    snprintf(r->err, r->errcap,
             "%s:%zu: expected_duration %g s: expected at least 1 s (or "
             "blank: the true duration)",
             r->path, line, j.expected_s);
    return CS_EPARSE;
  }
  if (out->n >= CS_SIM_JOBS_MAX) {
    snprintf(r->err, r->errcap, "%s: over %d jobs", r->path, CS_SIM_JOBS_MAX);
    return CS_ETOOBIG;
  }
  j.earliest = j.submit;
  if (!(j.expected_s > 0))
    j.expected_s = j.duration_s;
  cs_sim_job *slot = push(out, cap);
  j.seq = slot->seq;
  *slot = j;
  return CS_OK;
}

cs_err cs_sim_jobs_load(const char *path, cs_sim_jobs *out, char *err,
                        size_t errcap)
{
  memset(out, 0, sizeof(*out));
  char *data = NULL;
  size_t len, cap = 0, lineno = 0;
  reader r = {.path = path, .err = err, .errcap = errcap};
  bool have_header = false;
  cs_err rc = cs_sim_trace_read_file(path, CS_SIM_JOBS_MAX_BYTES, "a jobs file",
                                     &data, &len, err, errcap);
  if (rc)
    return rc;
  size_t nul = cs_text_nul_line(data, len);
  if (nul) {
    snprintf(err, errcap, "%s: NUL byte at line %zu: expected a text file",
             path, nul);
    rc = CS_EPARSE;
    goto out;
  }
  for (char *line = cs_text_skip_bom(data); line && *line;) {
    size_t breaks;
    char *nl = cs_sim_csv_record_end(line, &breaks);
    char *next_line = *nl ? nl + 1 : NULL;
    *nl = '\0';
    size_t ll = (size_t)(nl - line);
    if (ll && line[ll - 1] == '\r')
      line[--ll] = '\0';
    lineno++; /* the line the record starts on, for messages */
    if (ll) {
      char *f[CS_SIM_CSV_MAX_FIELDS];
      const char *why = NULL;
      size_t nf = cs_sim_trace_split_csv(line, f, &why);
      if (!nf) {
        snprintf(err, errcap, "%s:%zu: %s", path, lineno, why);
        rc = CS_EPARSE;
        goto out;
      }
      rc = have_header ? row(&r, f, nf, lineno, out, &cap) : header(&r, f, nf);
      have_header = true;
      if (rc)
        goto out;
    }
    lineno += breaks;
    line = next_line;
  }
  if (!out->n) {
    if (!have_header)
      snprintf(err, errcap,
               "%s: the file is empty, expected a header line "
               "and job rows",
               path);
    else if (!out->skipped)
      snprintf(err, errcap, "%s: no job rows after the header", path);
    else
      snprintf(err, errcap,
               "%s: no replayable jobs (%zu rows without GPUs or duration)",
               path, out->skipped);
    rc = CS_EPARSE;
  }
out:
  free(data);
  if (rc)
    cs_sim_jobs_free(out);
  else
    cs_sim_jobs_sort(out);
  return rc;
}

/* ---- the Let's Wait Awhile workloads ------------------------------------ */

void cs_sim_jobs_lwa_nightly(int year, double window_s, cs_sim_jobs *out)
{
  memset(out, 0, sizeof(*out));
  size_t cap = 0;
  int64_t t0 = cs_sim_year_start(year);
  for (int d = 0; d < 365; d++) {
    cs_sim_job *j = push(out, &cap);
    snprintf(j->id, sizeof(j->id), "night-%03d", d + 1);
    j->submit = t0 + (int64_t)d * DAY + 3600;
    j->earliest = j->submit - (int64_t)window_s;
    j->duration_s = j->expected_s = 1800;
    j->gpus = 1;
    j->max_delay_s = 2 * window_s;
    j->max_delay_given = true;
  }
}

static uint64_t next_u64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
  return (size_t)(next_u64(s) % n);
}

/* The artefact's rule (dos-group/lets-wait-awhile, strategy.py,
 * _forecast_duration) from the original finish time `oft`: Saturday -> 09:00
 * two days on; Sunday or after 17:00 -> 09:00 the next day; before 09:00 ->
 * 09:00 that day; otherwise no slack. */
static int64_t next_workday(int64_t oft)
{
  int wd = weekday(oft);
  int64_t d = day_start(oft), minute = (oft - d) / 60;
  if (wd == 5)
    return d + 2 * DAY + 9 * 3600;
  if (wd == 6 || minute > 17 * 60)
    return d + DAY + 9 * 3600;
  if (minute < 9 * 60)
    return d + 9 * 3600;
  return oft;
}

/* The next Thursday 09:00 when finishing from Monday after 09:00 to
 * Thursday 09:00, else the next Monday 09:00. */
static int64_t semi_weekly(int64_t oft)
{
  int wd = weekday(oft);
  int64_t d = day_start(oft), minute = (oft - d) / 60;
  bool to_thu = (wd == 0 && minute > 9 * 60) || wd == 1 || wd == 2 ||
                (wd == 3 && minute <= 9 * 60);
  int days = to_thu ? (7 - wd + 3) % 7 : (7 - wd) % 7;
  int64_t t = d + (int64_t)days * DAY + 9 * 3600;
  return t < oft ? t + 7 * DAY : t;
}

void cs_sim_jobs_lwa_ml(int year, size_t n, cs_sim_lwa_deadline rule,
                        uint64_t seed, cs_sim_jobs *out)
{
  memset(out, 0, sizeof(*out));
  size_t cap = 0, ndays = 0;
  int64_t t0 = cs_sim_year_start(year), t1 = cs_sim_year_start(year + 1);
  int64_t days[372];
  for (int64_t d = t0; d < t1 - DAY + 1 && ndays < 372; d += DAY)
    if (weekday(d) < 5)
      days[ndays++] = d;
  uint64_t s = seed;
  for (size_t i = 0; i < n; i++) {
    cs_sim_job *j = push(out, &cap);
    snprintf(j->id, sizeof(j->id), "ml-%zu", i + 1);
    int64_t day = days[below(&s, ndays)];
    j->submit = j->earliest = day + 9 * 3600 + (int64_t)below(&s, 16) * 1800;
    j->duration_s = j->expected_s = 4 * 3600 + (double)below(&s, 172) * 1800;
    j->gpus = 1;
    int64_t oft = j->submit + (int64_t)j->duration_s;
    j->deadline =
        rule == CS_SIM_LWA_SEMI_WEEKLY ? semi_weekly(oft) : next_workday(oft);
  }
  cs_sim_jobs_sort(out);
}

/* ---- transformations ---------------------------------------------------- */

int64_t cs_sim_jobs_shift_to_year(cs_sim_jobs *j, int year)
{
  if (!j->n)
    return 0;
  int64_t first = j->v[0].earliest;
  for (size_t i = 1; i < j->n; i++)
    if (j->v[i].earliest < first)
      first = j->v[i].earliest;
  int src = 1970 + (int)(first / (365.2425 * DAY));
  while (cs_sim_year_start(src) > first)
    src--;
  while (cs_sim_year_start(src + 1) <= first)
    src++;
  int64_t delta = cs_sim_year_start(year) - cs_sim_year_start(src);
  int64_t weeks = (delta + (delta >= 0 ? WEEK / 2 : -WEEK / 2)) / WEEK;
  int64_t shift = weeks * WEEK;
  /* Rounding to the nearest week can carry a job of early January into
   * the previous December, or one of late December into the next January:
   * a week more or less keeps the first job in `year`, as promised. */
  if (first + shift < cs_sim_year_start(year))
    shift += WEEK;
  else if (first + shift >= cs_sim_year_start(year + 1))
    shift -= WEEK;
  for (size_t i = 0; i < j->n; i++) {
    j->v[i].submit += shift;
    j->v[i].earliest += shift;
    if (j->v[i].deadline)
      j->v[i].deadline += shift;
  }
  return shift;
}

void cs_sim_jobs_set_slack(cs_sim_jobs *j, double slack_s)
{
  for (size_t i = 0; i < j->n; i++)
    if (!j->v[i].max_delay_given) {
      j->v[i].max_delay_s = slack_s;
      j->v[i].max_delay_given = true;
    }
}

void cs_sim_jobs_window(cs_sim_jobs *j, int64_t from, int64_t to)
{
  size_t k = 0;
  for (size_t i = 0; i < j->n; i++)
    if (j->v[i].earliest >= from && j->v[i].earliest < to)
      j->v[k++] = j->v[i];
  j->n = k;
}

static int by_start(const void *a, const void *b)
{
  const cs_sim_job *x = a, *y = b;
  if (x->earliest != y->earliest)
    return x->earliest < y->earliest ? -1 : 1;
  if (x->submit != y->submit)
    return x->submit < y->submit ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void cs_sim_jobs_sort(cs_sim_jobs *j)
{
  /* qsort is not stable: `seq` makes the order total. */
  qsort(j->v, j->n, sizeof(*j->v), by_start);
}
