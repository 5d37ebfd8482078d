#include "cmd/carbonshift/sim_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static bool missed(const cs_sim_job *j, const cs_sim_outcome *o)
{
  if (j->deadline > 0 && o->end > j->deadline)
    return true;
  return j->max_delay_given && o->start > j->earliest + (int64_t)j->max_delay_s;
}

void cs_sim_report_row(const cs_sim_world *w, const char *policy,
                       const cs_sim_outcome *o, cs_sim_row *row)
{
  memset(row, 0, sizeof(*row));
  row->policy = policy;
  row->solved = true;
  row->savings_pct = row->captured_pct = NAN;
  size_t n = w->jobs->n;
  double *waits = cs_malloc((n + 1) * sizeof(*waits));
  double wsum = 0;
  for (size_t i = 0; i < n; i++) {
    const cs_sim_job *j = &w->jobs->v[i];
    if (o[i].fate != CS_SIM_RAN) {
      row->not_run++;
      continue;
    }
    row->gpu_hours += o[i].gpu_hours;
    row->energy_kwh += o[i].energy_kwh;
    row->operational_g += o[i].operational_g;
    row->embodied_g += o[i].embodied_g;
    double wait = (double)(o[i].start - j->submit);
    waits[row->jobs++] = wait;
    wsum += wait;
    row->deadline_misses += missed(j, &o[i]);
  }
  row->total_g = row->operational_g + row->embodied_g;
  if (row->jobs) {
    qsort(waits, row->jobs, sizeof(*waits), cmp_double);
    row->wait_mean_s = wsum / (double)row->jobs;
    size_t k = (size_t)ceil(0.95 * (double)row->jobs);
    row->wait_p95_s = waits[k ? k - 1 : 0];
  }
  free(waits);
}

void cs_sim_report_tally_init(cs_sim_tally *t, size_t jobs)
{
  memset(t, 0, sizeof(*t));
  t->n = jobs;
  t->operational_g = cs_calloc(jobs + 1, sizeof(double));
  t->embodied_g = cs_calloc(jobs + 1, sizeof(double));
  t->placement_g = cs_calloc(jobs + 1, sizeof(double));
  t->timing_g = cs_calloc(jobs + 1, sizeof(double));
  t->latest_end = cs_calloc(jobs + 1, sizeof(int64_t));
}

void cs_sim_report_tally_free(cs_sim_tally *t)
{
  free(t->operational_g);
  free(t->embodied_g);
  free(t->placement_g);
  free(t->timing_g);
  free(t->latest_end);
  memset(t, 0, sizeof(*t));
}

void cs_sim_report_tally_add(cs_sim_tally *t, const cs_sim_world *w,
                             const cs_sim_outcome *o,
                             const cs_sim_outcome *agnostic,
                             unsigned char *common)
{
  t->runs++;
  for (size_t i = 0; i < t->n; i++) {
    if (o[i].fate == CS_SIM_RAN && o[i].end > t->latest_end[i])
      t->latest_end[i] = o[i].end;
    if (o[i].fate != CS_SIM_RAN ||
        (agnostic && agnostic[i].fate != CS_SIM_RAN)) {
      common[i] = 0;
      continue;
    }
    t->operational_g[i] += o[i].operational_g;
    t->embodied_g[i] += o[i].embodied_g;
    if (!agnostic)
      continue;
    double base = agnostic[i].operational_g + agnostic[i].embodied_g;
    double mine = o[i].operational_g + o[i].embodied_g;
    cs_sim_outcome what_if;
    cs_sim_engine_account(w, i, (size_t)o[i].pool, agnostic[i].start, &what_if);
    double here = what_if.fate == CS_SIM_RAN
                      ? what_if.operational_g + what_if.embodied_g
                      : mine;
    t->placement_g[i] += base - here;
    t->timing_g[i] += here - mine;
  }
}

void cs_sim_report_compared(const cs_sim_tally *t, const unsigned char *common,
                            cs_sim_row *row)
{
  double op = 0, emb = 0, place = 0, timing = 0;
  size_t n = 0;
  for (size_t i = 0; i < t->n; i++)
    if (common[i]) {
      n++;
      op += t->operational_g[i];
      emb += t->embodied_g[i];
      place += t->placement_g[i];
      timing += t->timing_g[i];
    }
  double runs = t->runs > 0 ? t->runs : 1;
  row->compared = n;
  row->compared_operational_g = op / runs;
  row->compared_embodied_g = emb / runs;
  row->compared_g = (op + emb) / runs;
  row->placement_g = place / runs;
  row->timing_g = timing / runs;
}

void cs_sim_report_bound_row(const cs_sim_bound *b, size_t jobs, size_t total,
                             cs_sim_row *row)
{
  memset(row, 0, sizeof(*row));
  row->policy = "bound";
  row->solved = true;
  row->jobs = jobs - b->no_fit_jobs;
  row->not_run = total - row->jobs;
  row->energy_kwh = b->energy_kwh;
  row->gpu_hours = b->gpu_hours;
  row->operational_g = b->operational_g;
  row->embodied_g = b->embodied_g;
  row->total_g = b->total_g;
  /* Solved over the compared jobs: its totals are the compared ones. */
  row->compared = row->jobs;
  row->compared_operational_g = b->operational_g;
  row->compared_embodied_g = b->embodied_g;
  row->compared_g = b->total_g;
  row->savings_pct = row->captured_pct = NAN;
  row->wait_mean_s = row->wait_p95_s = NAN;
  row->placement_g = row->timing_g = NAN;
  snprintf(row->note, sizeof(row->note),
           "LP relaxation: %zu columns, %zu rows (%zu capacity); %zu jobs "
           "meet no capacity row and are solved in closed form, GLPK "
           "solves %zu columns in %.2f s",
           b->columns, b->rows, b->capacity_rows, b->closed_form_jobs,
           b->lp_columns, b->seconds);
}

void cs_sim_report_compare(cs_sim_row *rows, size_t n)
{
  const cs_sim_row *base = NULL, *bound = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(rows[i].policy, "agnostic"))
      base = &rows[i];
    if (!strcmp(rows[i].policy, "bound") && rows[i].solved)
      bound = &rows[i];
  }
  if (!base || !(base->compared_g > 0))
    return;
  if (bound && bound->compared != base->compared)
    bound = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!rows[i].solved || rows[i].compared != base->compared)
      continue;
    rows[i].savings_pct =
        100.0 * (base->compared_g - rows[i].compared_g) / base->compared_g;
    /* A bound that saves next to nothing (all jobs queued, say) makes the
     * share meaningless: below a millionth of the baseline it is not given. */
    if (bound && &rows[i] != base &&
        base->compared_g - bound->compared_g > 1e-6 * base->compared_g)
      rows[i].captured_pct = 100.0 * (base->compared_g - rows[i].compared_g) /
                             (base->compared_g - bound->compared_g);
  }
}

static void json_row(cs_buf *b, const cs_sim_row *r)
{
  cs_json_open(b, NULL, '{');
  cs_json_str(b, "policy", r->policy);
  cs_json_bool(b, "solved", r->solved);
  if (r->note[0])
    cs_json_str(b, "note", r->note);
  if (r->solved) {
    cs_json_int(b, "jobs", (int64_t)r->jobs);
    cs_json_int(b, "notRun", (int64_t)r->not_run);
    cs_json_num(b, "gpuHours", r->gpu_hours, 1);
    cs_json_num(b, "energyKwh", r->energy_kwh, 1);
    cs_json_num(b, "operationalKg", r->operational_g / 1000, 3);
    cs_json_num(b, "embodiedKg", r->embodied_g / 1000, 3);
    cs_json_num(b, "totalKg", r->total_g / 1000, 3);
    cs_json_num(b, "comparedOperationalKg", r->compared_operational_g / 1000,
                3);
    cs_json_num(b, "comparedEmbodiedKg", r->compared_embodied_g / 1000, 3);
    cs_json_num(b, "comparedTotalKg", r->compared_g / 1000, 3);
    cs_json_num(b, "savingsPct", r->savings_pct, 3);
    cs_json_num(b, "placementSavingKg", r->placement_g / 1000, 3);
    cs_json_num(b, "timingSavingKg", r->timing_g / 1000, 3);
    cs_json_num(b, "boundCapturedPct", r->captured_pct, 1);
    cs_json_num(b, "waitMeanHours", r->wait_mean_s / 3600, 3);
    cs_json_num(b, "waitP95Hours", r->wait_p95_s / 3600, 3);
    cs_json_int(b, "deadlineMisses", (int64_t)r->deadline_misses);
    cs_json_num(b, "seconds", r->runtime_s, 3);
  }
  cs_json_close(b, '}');
}

void cs_sim_report_json(cs_buf *out, const char *scenario,
                        const cs_sim_row *rows, size_t n, const char *headline)
{
  double head = NAN;
  size_t compared = 0;
  for (size_t i = 0; i < n; i++) {
    if (headline && !strcmp(rows[i].policy, headline) && rows[i].solved)
      head = rows[i].savings_pct; /* null for a bound not solved */
    if (!strcmp(rows[i].policy, "agnostic"))
      compared = rows[i].compared;
  }
  cs_json_open(out, NULL, '{');
  cs_json_str(out, "headlinePolicy", headline);
  cs_json_num(out, "savingsPct", head, 3);
  cs_json_int(out, "comparedJobs", (int64_t)compared);
  cs_json_raw(out, "scenario", scenario, strlen(scenario));
  cs_json_open(out, "policies", '[');
  for (size_t i = 0; i < n; i++)
    json_row(out, &rows[i]);
  cs_json_close(out, ']');
  cs_json_close(out, '}');
}

/* Writes one string field as RFC 4180 says: in double quotes, with every
 * inner quote doubled, when it holds a comma, a quote, CR or LF (a pool
 * name or job id may); as it is otherwise, so the common case stays
 * readable. cs_sim_trace_split_csv reads either back to the same text. */
static void csv_str(FILE *out, const char *s)
{
  if (!s[strcspn(s, ",\"\r\n")]) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

/* ",<v>" with `decimals`, or "," alone for a figure the row lacks. */
static void csv_num(FILE *out, double v, int decimals)
{
  if (isfinite(v))
    fprintf(out, ",%.*f", decimals, v);
  else
    fputc(',', out);
}

void cs_sim_report_csv(FILE *out, const cs_sim_row *rows, size_t n)
{
  fputs("policy,jobs,not_run,gpu_hours,energy_kwh,operational_kg,"
        "embodied_kg,total_kg,savings_pct,placement_saving_kg,"
        "timing_saving_kg,bound_captured_pct,wait_mean_h,wait_p95_h,"
        "deadline_misses,compared_jobs,compared_total_kg,note\n",
        out);
  for (size_t i = 0; i < n; i++) {
    const cs_sim_row *r = &rows[i];
    csv_str(out, r->policy);
    if (!r->solved) {
      /* No figures to give; the note says why. */
      char why[sizeof(r->note) + 16];
      snprintf(why, sizeof(why), "not solved: %s", r->note);
      fputs(",,,,,,,,,,,,,,,,,", out);
      csv_str(out, why);
      fputc('\n', out);
      continue;
    }
    fprintf(out, ",%zu,%zu", r->jobs, r->not_run);
    csv_num(out, r->gpu_hours, 1);
    csv_num(out, r->energy_kwh, 1);
    csv_num(out, r->operational_g / 1000, 3);
    csv_num(out, r->embodied_g / 1000, 3);
    csv_num(out, r->total_g / 1000, 3);
    csv_num(out, r->savings_pct, 3);
    csv_num(out, r->placement_g / 1000, 3);
    csv_num(out, r->timing_g / 1000, 3);
    csv_num(out, r->captured_pct, 1);
    csv_num(out, r->wait_mean_s / 3600, 3);
    csv_num(out, r->wait_p95_s / 3600, 3);
    fprintf(out, ",%zu,%zu", r->deadline_misses, r->compared);
    csv_num(out, r->compared_g / 1000, 3);
    fputc(',', out);
    csv_str(out, r->note);
    fputc('\n', out);
  }
}

/* A column of the table: the figure, or "-" for one the row lacks. */
static void table_num(FILE *out, int width, int decimals, double v)
{
  if (isfinite(v))
    fprintf(out, " %*.*f", width, decimals, v);
  else
    fprintf(out, " %*s", width, "-");
}

void cs_sim_report_table(FILE *out, const cs_sim_row *rows, size_t n)
{
  size_t compared = 0;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(rows[i].policy, "agnostic"))
      compared = rows[i].compared;
  fprintf(out,
          "savings compare the %zu jobs every policy ran (a job one of "
          "them did not run counts in its \"not run\")\n",
          compared);
  fprintf(out, "%-12s %8s %8s %11s %11s %12s %10s %8s %8s %8s %9s %9s %7s\n",
          "policy", "jobs", "not run", "GPU-hours", "energy kWh", "operat. kg",
          "embod. kg", "saving%", "place kg", "time kg", "wait h", "p95 h",
          "misses");
  for (size_t i = 0; i < n; i++) {
    const cs_sim_row *r = &rows[i];
    if (!r->solved) {
      fprintf(out, "%-12s not solved: %s\n", r->policy, r->note);
      continue;
    }
    fprintf(out, "%-12s %8zu %8zu", r->policy, r->jobs, r->not_run);
    table_num(out, 11, 1, r->gpu_hours);
    table_num(out, 11, 1, r->energy_kwh);
    table_num(out, 12, 1, r->operational_g / 1000);
    table_num(out, 10, 1, r->embodied_g / 1000);
    table_num(out, 8, 2, r->savings_pct);
    table_num(out, 8, 1, r->placement_g / 1000);
    table_num(out, 8, 1, r->timing_g / 1000);
    table_num(out, 9, 2, r->wait_mean_s / 3600);
    table_num(out, 9, 2, r->wait_p95_s / 3600);
    fprintf(out, " %7zu\n", r->deadline_misses);
    if (!isnan(r->captured_pct))
      fprintf(out, "%-12s captures %.1f%% of the bound's saving\n", "",
              r->captured_pct);
    if (r->note[0])
      fprintf(out, "%-12s %s\n", "", r->note);
  }
}

static const char *fate_name(cs_sim_fate f)
{
  return f == CS_SIM_RAN         ? "ran"
         : f == CS_SIM_REJECTED  ? "rejected"
         : f == CS_SIM_NO_FIT    ? "no-fit"
         : f == CS_SIM_UNCOVERED ? "uncovered"
                                 : "not-started";
}

void cs_sim_report_jobs_csv(FILE *out, const cs_sim_world *w,
                            const char *policy, const cs_sim_outcome *o,
                            bool header)
{
  if (header)
    fputs("policy,id,submit,start,end,pool,zone,gpus,fate,energy_kwh,"
          "operational_g,embodied_g\n",
          out);
  for (size_t i = 0; i < w->jobs->n; i++) {
    const cs_sim_job *j = &w->jobs->v[i];
    csv_str(out, policy);
    fputc(',', out);
    csv_str(out, j->id);
    fprintf(out, ",%lld,", (long long)j->submit);
    if (o[i].fate == CS_SIM_RAN) {
      const cs_sim_pool *p = &w->cluster->pools[o[i].pool];
      fprintf(out, "%lld,%lld,", (long long)o[i].start, (long long)o[i].end);
      csv_str(out, p->name);
      fputc(',', out);
      csv_str(out, p->facts.zone);
      fputc(',', out);
    } else {
      fputs(",,,,", out);
    }
    fprintf(out, "%g,%s,%.4f,%.3f,%.3f\n", j->gpus, fate_name(o[i].fate),
            o[i].energy_kwh, o[i].operational_g, o[i].embodied_g);
  }
}

static uint64_t last_draw;
static bool drawn;

void cs_sim_report_progress(void *label, size_t done, size_t total)
{
  if (!isatty(STDERR_FILENO) || !total)
    return;
  uint64_t now = cs_clock_mono_ns();
  if (drawn && now - last_draw < 100000000ull)
    return;
  last_draw = now;
  drawn = true;
  int width = 40, fill = (int)((double)done / (double)total * width);
  fprintf(stderr, "\r%-12s [%.*s%*s] %3d%%", (const char *)label, fill,
          "########################################", width - fill, "",
          (int)(100.0 * (double)done / (double)total));
  fflush(stderr);
}

void cs_sim_report_progress_done(void)
{
  if (drawn && isatty(STDERR_FILENO)) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  drawn = false;
}
