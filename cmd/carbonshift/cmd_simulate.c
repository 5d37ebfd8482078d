#include "cmd/carbonshift/cmd_simulate.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/signals.h"
#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/parse.h"
#include "cmd/carbonshift/config.h"
#include "cmd/carbonshift/sim_bound.h"
#include "cmd/carbonshift/sim_cluster.h"
#include "cmd/carbonshift/sim_engine.h"
#include "cmd/carbonshift/sim_forecast.h"
#include "cmd/carbonshift/sim_jobs.h"
#include "cmd/carbonshift/sim_report.h"
#include "cmd/carbonshift/sim_trace.h"

#define MAX_TRACES 16
#define LWA_GPU "CONSTANT-1KW"

void cs_cmd_simulate_help(FILE *out)
{
  fputs(
      "Usage: carbonshift simulate (--jobs FILE | --preset lwa-nightly\n"
      "         --window DUR | --preset lwa-ml [--deadline RULE])\n"
      "         --carbon [ZONE=]FILE... [--cluster FILE] [--forecast SPEC]\n"
      "         [--policy LIST] [--slack DUR] [--horizon DUR] [--year YEAR]\n"
      "         [--from DATE] [--to DATE] [--seed N] [--seeds N]\n"
      "         [--bound-slot DUR] [--bound-max N] [--json | --csv]\n"
      "         [--jobs-out FILE]\n\n"
      "Replays jobs over carbon traces on a cluster of node pools under\n"
      "carbon-blind, carbonshift (the service's policy), per-job oracle and\n"
      "LP-bound scheduling, and reports energy, emissions and savings\n"
      "(compared over the jobs every policy ran; the others count in each\n"
      "policy's \"not run\").\n\n"
      "  --jobs FILE        Philly trace CSV, or id,submit,duration,gpus\n"
      "                     [,max_delay,deadline,budget,expected_duration]\n"
      "  --preset P         lwa-nightly (one 30-minute job at 01:00 daily,\n"
      "                     movable by --window either way) or lwa-ml (3,387\n"
      "                     jobs of 4-90 h, deadline next workday 09:00)\n"
      "  --window DUR       lwa-nightly's window, e.g. 8h\n"
      "  --deadline RULE    lwa-ml: next-workday (default) or semi-weekly\n"
      "  --carbon [Z=]FILE  a zone's trace (repeatable); the zone defaults to\n"
      "                     the file name (DE.csv is DE)\n"
      "  --cluster FILE     node pools as JSON (docs/benchmarks.md); without\n"
      "                     it, one pool of constant 1 kW GPUs in the only\n"
      "                     zone, PUE 1, no embodied carbon, never full\n"
      "  --forecast SPEC    perfect (default), gauss:5%, ar1:10%[:0.9]\n"
      "  --seed N           seed of the noise and of lwa-ml's jobs (default\n"
      "                     1); --seeds N averages the carbonshift policy\n"
      "                     over N noise seeds from it\n"
      "  --policy LIST      comma-separated among agnostic, carbonshift,\n"
      "                     oracle, bound (default: all four)\n"
      "  --slack DUR        max-delay given to jobs whose max_delay is blank\n"
      "  --horizon DUR      forecast horizon of the policy (default 72h, as\n"
      "                     the service)\n"
      "  --year YEAR        move jobs by whole weeks into YEAR\n"
      "  --from/--to DATE   keep jobs whose earliest start is in [from, to)\n"
      "  --bound-slot DUR   the LP's slot (default 1h); --bound-max N columns\n"
      "  --json, --csv      machine-readable output, one of them (default: a\n"
      "                     table)\n"
      "  --jobs-out FILE    also write every job's start, end, pool and\n"
      "                     emissions under each policy run, as CSV (with\n"
      "                     --seeds, the last seed's run)\n\n"
      "A progress bar is drawn on stderr when it is a terminal. The model,\n"
      "the file formats and the published comparisons: docs/benchmarks.md.\n",
      out);
}

typedef struct opts {
  const char *jobs, *preset, *cluster, *deadline, *jobs_out;
  const char *carbon[MAX_TRACES];
  size_t ncarbon;
  double window_s, slack_s, horizon_s, bound_slot_s;
  size_t bound_max;
  int year;
  int64_t from, to;              /* 0: not given */
  const char *from_arg, *to_arg; /* as given, for messages */
  cs_sim_forecast_params fc;
  const char *fc_text;
  uint64_t seed;
  int seeds;
  bool want[4]; /* agnostic, carbonshift, oracle, bound */
  bool json, csv;
} opts;

static int usage(const char *fmt, const char *a, const char *b)
{
  fputs("carbonshift simulate: ", stderr);
  fprintf(stderr, fmt, a, b);
  fputs("; see 'carbonshift help simulate'\n", stderr);
  return 2;
}

/* Returns 0 to run, 2 after a usage error, and -1 when -h or --help asked
 * for the usage (printed on stdout). */
/* Whether `a` is an option that takes a value. */
static bool valued_option(const char *a)
{
  static const char *const names[] = {
      "--jobs",     "--preset", "--cluster", "--jobs-out", "--deadline",
      "--carbon",   "--window", "--slack",   "--horizon",  "--bound-slot",
      "--forecast", "--seed",   "--seeds",   "--year",     "--bound-max",
      "--from",     "--to",     "--policy"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (!strcmp(a, names[i]))
      return true;
  return false;
}

static int parse_args(int argc, char **argv, opts *o)
{
  o->fc_text = "perfect";
  o->seed = 1;
  o->seeds = 1;
  o->deadline = "next-workday";
  o->want[0] = o->want[1] = o->want[2] = o->want[3] = true;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char *exp = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cs_cmd_simulate_help(stdout);
      return -1;
    }
    bool flag = !strcmp(a, "--json") || !strcmp(a, "--csv");
    if (!flag && !valued_option(a))
      return usage("unknown argument \"%s\"%s", a, "");
    if (!flag && !v)
      return usage("%s needs a value%s", a, "");
    if (!strcmp(a, "--json"))
      o->json = true;
    else if (!strcmp(a, "--csv"))
      o->csv = true;
    else if (!strcmp(a, "--jobs"))
      o->jobs = v;
    else if (!strcmp(a, "--preset")) {
      if (strcmp(v, "lwa-nightly") && strcmp(v, "lwa-ml"))
        return usage("--preset \"%s\": expected lwa-nightly or lwa-ml%s", v,
                     "");
      o->preset = v;
    } else if (!strcmp(a, "--cluster"))
      o->cluster = v;
    else if (!strcmp(a, "--jobs-out"))
      o->jobs_out = v;
    else if (!strcmp(a, "--deadline")) {
      if (strcmp(v, "next-workday") && strcmp(v, "semi-weekly"))
        return usage("--deadline \"%s\": expected next-workday or "
                     "semi-weekly%s",
                     v, "");
      o->deadline = v;
    } else if (!strcmp(a, "--carbon")) {
      if (o->ncarbon == MAX_TRACES)
        return usage("--carbon: at most 16 traces%s%s", "", "");
      o->carbon[o->ncarbon++] = v;
    } else if (!strcmp(a, "--window") || !strcmp(a, "--slack") ||
               !strcmp(a, "--horizon") || !strcmp(a, "--bound-slot")) {
      double s = 0;
      /* A bare 0 is no duration at all, as "--slack 0" means. */
      if (strcmp(v, "0") && cs_parse_duration(v, &s, &exp) != CS_OK)
        return usage("%s \"%s\": expected a duration such as 8h", a, v);
      *(!strcmp(a, "--window")    ? &o->window_s
        : !strcmp(a, "--slack")   ? &o->slack_s
        : !strcmp(a, "--horizon") ? &o->horizon_s
                                  : &o->bound_slot_s) = s;
    } else if (!strcmp(a, "--forecast")) {
      o->fc_text = v;
    } else if (!strcmp(a, "--seed") || !strcmp(a, "--seeds") ||
               !strcmp(a, "--year") || !strcmp(a, "--bound-max")) {
      int64_t n;
      bool seeds = !strcmp(a, "--seeds"), year = !strcmp(a, "--year");
      if (cs_parse_int64(v, &n, &exp) != CS_OK || n < 0 ||
          (seeds && (n < 1 || n > 100)) || (year && (n < 1970 || n > 2200))) {
        char why[160];
        snprintf(why, sizeof(why), "%s \"%.60s\": expected %s", a, v,
                 seeds  ? "a whole number from 1 to 100"
                 : year ? "a year from 1970 to 2200"
                        : "a whole number, 0 or more");
        return usage("%s%s", why, "");
      }
      if (!strcmp(a, "--seed"))
        o->seed = (uint64_t)n;
      else if (!strcmp(a, "--seeds"))
        o->seeds = (int)n;
      else if (!strcmp(a, "--year"))
        o->year = (int)n;
      else
        o->bound_max = (size_t)n;
    } else if (!strcmp(a, "--from") || !strcmp(a, "--to")) {
      int64_t t;
      if (cs_parse_date(v, &t, NULL) != CS_OK &&
          cs_parse_rfc3339(v, &t, NULL) != CS_OK)
        return usage("%s \"%s\": expected YYYY-MM-DD or RFC 3339", a, v);
      bool from = !strcmp(a, "--from");
      *(from ? &o->from : &o->to) = t;
      *(from ? &o->from_arg : &o->to_arg) = v;
    } else if (!strcmp(a, "--policy")) {
      static const char *names[] = {"agnostic", "carbonshift", "oracle",
                                    "bound"};
      memset(o->want, 0, sizeof(o->want));
      char buf[128];
      snprintf(buf, sizeof(buf), "%s", v);
      for (char *s = buf, *e; s; s = e) {
        e = strchr(s, ',');
        if (e)
          *e++ = '\0';
        int k = 0;
        while (k < 4 && strcmp(s, names[k]))
          k++;
        if (k == 4)
          return usage("--policy \"%s\": expected agnostic, carbonshift, "
                       "oracle or bound%s",
                       s, "");
        o->want[k] = true;
      }
    } else {
      return usage("unknown argument \"%s\"%s", a, "");
    }
    if (!flag)
      i++;
  }
  const char *exp;
  o->fc.seed = o->seed;
  if (cs_sim_forecast_parse(o->fc_text, &o->fc, &exp) != CS_OK)
    return usage("--forecast \"%s\": expected %s", o->fc_text, exp);
  if (!o->jobs == !o->preset)
    return usage("give either --jobs or --preset%s%s", "", "");
  if (o->json && o->csv)
    return usage("give --json or --csv, not both%s%s", "", "");
  /* An empty range would replay nothing, and say only that no job lies
   * within the traces. */
  if (o->from && o->to && o->from >= o->to)
    return usage("--from %s is not before --to %s: expected --from earlier "
                 "than --to",
                 o->from_arg, o->to_arg);
  if (!o->ncarbon)
    return usage("give at least one --carbon trace%s%s", "", "");
  if (o->preset && !strcmp(o->preset, "lwa-nightly") && !(o->window_s > 0))
    return usage("--preset lwa-nightly needs --window, e.g. 8h%s%s", "", "");
  if (!o->cluster && o->ncarbon != 1)
    return usage("without --cluster, give exactly one --carbon trace%s%s", "",
                 "");
  return 0;
}

/* Everything a simulation owns. */
typedef struct sim {
  cs_config *cfg;
  cs_gpu_catalog *catalog;
  cs_sim_trace *traces[MAX_TRACES];
  size_t ntraces;
  cs_sim_jobs jobs;
  cs_sim_cluster cluster;
  cs_estimate_params est;
  cs_facts_params facts;
  size_t dropped;  /* jobs outside the traces */
  size_t in_holes; /* jobs within them but reaching one of their holes */
} sim;

/* Keeps the jobs whose whole window and forecast horizon lie in every
 * pool's trace and meet none of its holes: nothing is invented past a
 * trace's end or across missing data. The rest are counted, apart. */
static void keep_covered_jobs(sim *s, const cs_sim_trace *const *pool_trace,
                              double stretch, double horizon)
{
  size_t k = 0;
  for (size_t i = 0; i < s->jobs.n; i++) {
    const cs_sim_job *j = &s->jobs.v[i];
    double reach = j->max_delay_s + stretch * j->duration_s + horizon;
    int64_t from = j->earliest - 3600, end = j->earliest + (int64_t)reach;
    if (j->deadline > end)
      end = j->deadline;
    bool inside = true, hole = false;
    for (size_t p = 0; p < s->cluster.n && inside; p++) {
      const cs_sim_trace *t = pool_trace[p];
      inside = from >= t->at[0] && end <= cs_sim_trace_end(t);
      hole = hole || cs_sim_trace_meets_hole(t, from, end);
    }
    if (!inside)
      s->dropped++;
    else if (hole)
      s->in_holes++;
    else
      s->jobs.v[k++] = *j;
  }
  s->jobs.n = k;
}

/* Says on stderr that a trace has holes, and where the longest is: what a
 * replay leaves out should not go unnoticed. */
static void warn_holes(const char *arg, const cs_sim_trace *t)
{
  if (!t->nholes)
    return;
  size_t r = t->longest_hole_row;
  char from[21], to[21], len[32];
  cs_format_rfc3339(t->at[r] + t->max_hold, from);
  cs_format_rfc3339(t->at[r + 1], to);
  cs_format_duration((double)(t->at[r + 1] - t->at[r] - t->max_hold), len);
  fprintf(stderr,
          "carbonshift simulate: --carbon %s: %zu hole%s in the trace (rows "
          "more than %d steps apart), the longest %s from %s to %s: no "
          "intensity is assumed there, and jobs that would reach one are "
          "dropped and counted (jobsInTraceHoles)\n",
          arg, t->nholes, t->nholes == 1 ? "" : "s", CS_SIM_TRACE_HOLD_STEPS,
          len, from, to);
}

static int load(const opts *o, sim *s)
{
  char err[512];
  s->cfg = cs_config_defaults();
  s->catalog = cs_gpu_catalog_new();
  for (size_t i = 0; i < o->ncarbon; i++) {
    const char *eq = strchr(o->carbon[i], '=');
    char zone[CS_ZONE_MAX] = "";
    const char *path = o->carbon[i];
    if (eq && (size_t)(eq - path) < sizeof(zone)) {
      snprintf(zone, sizeof(zone), "%.*s", (int)(eq - path), path);
      path = eq + 1;
    }
    if (cs_sim_trace_load(path, zone, &s->traces[s->ntraces], err,
                          sizeof(err)) != CS_OK) {
      fprintf(stderr, "carbonshift simulate: --carbon %s\n", err);
      return 1;
    }
    s->ntraces++;
    warn_holes(o->carbon[i], s->traces[i]);
    /* A zone has one trace: with two, which one a pool reads would depend
     * on the order of the flags. */
    for (size_t k = 0; k < i; k++)
      if (!strcmp(s->traces[k]->zone, s->traces[i]->zone)) {
        fprintf(stderr,
                "carbonshift simulate: --carbon %s: zone %s already has a "
                "trace, from --carbon %s: expected one trace per zone (name "
                "another zone with ZONE=FILE)\n",
                o->carbon[i], s->traces[i]->zone, o->carbon[k]);
        return 1;
      }
  }
  int year = o->year;
  if (!year) {
    int64_t t = s->traces[0]->at[s->traces[0]->len / 2];
    for (year = 1970; cs_sim_year_start(year + 1) <= t; year++)
      ;
  }
  bool lwa = !o->cluster;
  if (lwa) {
    /* The papers' constant power: one 1 kW device, PUE 1, no embodied
     * carbon, as reference GPU so runtimes are the jobs' durations. */
    cs_gpu_model m = {
        .name = LWA_GPU, .vendor = "none", .power_w = 1000, .tensor_tflops = 1};
    if (cs_gpu_catalog_set(s->catalog, &m, NULL, 0) != CS_OK)
      return 1;
    s->est = (cs_estimate_params){
        .reference_gpu = cs_gpu_catalog_find(s->catalog, LWA_GPU),
        .default_duration_s = s->cfg->estimate_default_duration_s};
    cs_sim_cluster_single(s->traces[0]->zone, s->est.reference_gpu, 1e6, 1.0,
                          &s->cluster);
  } else {
    s->est = (cs_estimate_params){
        .reference_gpu =
            cs_gpu_catalog_find(s->catalog, s->cfg->estimate_reference_gpu),
        .default_duration_s = s->cfg->estimate_default_duration_s,
        .server_embodied_kg = s->cfg->estimate_server_embodied_kg,
        .gpu_embodied_kg = s->cfg->estimate_gpu_embodied_kg};
    s->facts = (cs_facts_params){.catalog = s->catalog,
                                 .default_pue = s->cfg->nodes_default_pue,
                                 .default_lifetime_s =
                                     s->cfg->nodes_default_lifetime_s};
    char *text = NULL;
    size_t len;
    cs_err read =
        cs_sim_trace_read_file(o->cluster, CS_SIM_CLUSTER_MAX_BYTES,
                               "a cluster file", &text, &len, err, sizeof(err));
    if (read != CS_OK) {
      fprintf(stderr, "carbonshift simulate: --cluster %s\n", err);
      return 1;
    }
    cs_err rc = cs_sim_cluster_parse(text, len, s->catalog, &s->facts,
                                     &s->cluster, err, sizeof(err));
    free(text);
    if (rc) {
      fprintf(stderr, "carbonshift simulate: --cluster %s: %s\n", o->cluster,
              err);
      return 1;
    }
  }
  if (o->jobs) {
    if (cs_sim_jobs_load(o->jobs, &s->jobs, err, sizeof(err)) != CS_OK) {
      fprintf(stderr, "carbonshift simulate: --jobs %s\n", err);
      return 1;
    }
    if (o->year)
      cs_sim_jobs_shift_to_year(&s->jobs, year);
  } else if (!strcmp(o->preset, "lwa-nightly")) {
    cs_sim_jobs_lwa_nightly(year, o->window_s, &s->jobs);
  } else {
    cs_sim_jobs_lwa_ml(year, 3387,
                       strcmp(o->deadline, "semi-weekly")
                           ? CS_SIM_LWA_NEXT_WORKDAY
                           : CS_SIM_LWA_SEMI_WEEKLY,
                       o->seed, &s->jobs);
  }
  if (o->slack_s > 0)
    cs_sim_jobs_set_slack(&s->jobs, o->slack_s);
  if (o->from || o->to)
    cs_sim_jobs_window(&s->jobs, o->from, o->to ? o->to : INT64_MAX);
  cs_sim_jobs_sort(&s->jobs);
  const cs_sim_trace *pool_trace[CS_SIM_CLUSTER_MAX_POOLS];
  for (size_t p = 0; p < s->cluster.n; p++) {
    const cs_sim_trace *t = NULL;
    for (size_t i = 0; i < s->ntraces; i++)
      if (!strcmp(s->traces[i]->zone, s->cluster.pools[p].facts.zone))
        t = s->traces[i];
    if (!t) {
      fprintf(stderr,
              "carbonshift simulate: pool %s is in zone %s, which no "
              "--carbon trace serves\n",
              s->cluster.pools[p].name, s->cluster.pools[p].facts.zone);
      return 1;
    }
    pool_trace[p] = t;
  }
  /* The slowest pool stretches a runtime the most. */
  double stretch = 1;
  for (size_t p = 0; p < s->cluster.n; p++) {
    double v =
        cs_gpu_speed_vs(s->cluster.pools[p].facts.gpu, s->est.reference_gpu);
    double f = v > 0 ? 1 / v : 1;
    stretch = f > stretch ? f : stretch;
  }
  double horizon = o->horizon_s > 0 ? o->horizon_s : 72 * 3600.0;
  keep_covered_jobs(s, pool_trace, stretch, horizon);
  if (!s->jobs.n) {
    fprintf(stderr,
            "carbonshift simulate: no job lies within the carbon traces "
            "(%zu outside them, %zu reaching their holes; check --year)\n",
            s->dropped, s->in_holes);
    return 1;
  }
  return 0;
}

static void sim_free(sim *s)
{
  cs_sim_jobs_free(&s->jobs);
  cs_sim_cluster_free(&s->cluster);
  for (size_t i = 0; i < s->ntraces; i++)
    cs_sim_trace_free(s->traces[i]);
  cs_gpu_catalog_free(s->catalog);
  cs_config_free(s->cfg);
}

/* Runs one policy; for carbonshift, builds the signals registry around the
 * simulator's provider with the given noise seed. */
/* The service's planner margins, except for the Let's Wait Awhile presets:
 * there a job "movable by ±H" is modelled as submitted H hours before its
 * nominal time, and the baseline runs at the nominal time, so a job that
 * declines to wait for a small saving would start H hours early rather
 * than at the baseline's time. The presets therefore use the paper's rule
 * (always take the forecast minimum), i.e. zero margins. */
static cs_plan_params plan_margins(const opts *o, const cs_config *cfg)
{
  if (o->preset)
    return (cs_plan_params){0};
  return (cs_plan_params){.min_saving_rel = cfg->plan_min_saving,
                          .min_saving_abs_g = cfg->plan_min_saving_g,
                          .replan_rel = cfg->plan_replan_margin};
}

static cs_err run_policy(const opts *o, sim *s, cs_sim_policy p, uint64_t seed,
                         cs_sim_outcome *out, double *seconds)
{
  cs_signals *signals = cs_signals_new(CS_SIGNAL_AVERAGE);
  cs_sim_forecast_params fp = o->fc;
  fp.seed = seed;
  cs_provider *prov = NULL;
  cs_err rc = cs_sim_forecast_new(s->traces, s->ntraces, &fp, &prov);
  if (rc == CS_OK)
    rc = cs_signals_add_provider(signals, prov);
  if (rc != CS_OK) {
    cs_provider_free(prov);
    cs_signals_free(signals);
    return rc;
  }
  cs_sim_world w = {.jobs = &s->jobs,
                    .cluster = &s->cluster,
                    .traces = s->traces,
                    .ntraces = s->ntraces,
                    .estimate = &s->est,
                    /* The service's own defaults, margins included. */
                    .policy = {.signals = signals,
                               .estimate = &s->est,
                               .plan = plan_margins(o, s->cfg),
                               .forecast_horizon_s = (int64_t)o->horizon_s},
                    .progress = cs_sim_report_progress,
                    .progress_ctx = (void *)cs_sim_policy_name(p)};
  uint64_t t0 = cs_clock_mono_ns();
  rc = cs_sim_engine_run(&w, p, out);
  *seconds = (double)(cs_clock_mono_ns() - t0) / 1e9;
  cs_sim_report_progress_done();
  cs_signals_free(signals);
  return rc;
}

static void scenario_json(const opts *o, const sim *s, cs_buf *b)
{
  cs_json_open(b, NULL, '{');
  cs_json_str(b, "jobs", o->jobs ? o->jobs : o->preset);
  if (o->window_s > 0)
    cs_json_num(b, "windowHours", o->window_s / 3600, 2);
  cs_json_int(b, "jobCount", (int64_t)s->jobs.n);
  cs_json_int(b, "jobsOutsideTraces", (int64_t)s->dropped);
  cs_json_int(b, "jobsInTraceHoles", (int64_t)s->in_holes);
  cs_json_int(b, "jobsUnreplayable", (int64_t)s->jobs.skipped);
  cs_json_open(b, "carbon", '[');
  for (size_t i = 0; i < s->ntraces; i++) {
    cs_json_open(b, NULL, '{');
    cs_json_str(b, "zone", s->traces[i]->zone);
    cs_json_num(b, "meanGPerKwh", s->traces[i]->mean, 1);
    cs_json_close(b, '}');
  }
  cs_json_close(b, ']');
  cs_json_str(b, "cluster", o->cluster ? o->cluster : "single constant pool");
  cs_json_str(b, "forecast", o->fc_text);
  cs_json_int(b, "seed", (int64_t)o->seed);
  cs_json_int(b, "seeds", o->seeds);
  cs_json_num(b, "slackHours", o->slack_s / 3600, 2);
  cs_json_close(b, '}');
}

/* Solves the bound over the compared jobs (those every policy ran), so
 * that its saving and the share of it each policy captures are over the
 * same jobs as theirs; each job's window reaches the latest end any run
 * of any policy gave it (every noise seed's too: the tallies keep it), so
 * that the bound stays below each of them. */
static void bound_row(const opts *o, const sim *s, const cs_sim_tally *tally,
                      const unsigned char *common, cs_sim_row *row)
{
  size_t nj = s->jobs.n, n = 0;
  cs_sim_jobs jobs = {.v = cs_calloc(nj + 1, sizeof(cs_sim_job))};
  int64_t *ends = cs_calloc(nj + 1, sizeof(*ends));
  for (size_t j = 0; j < nj; j++) {
    if (!common[j])
      continue;
    jobs.v[n] = s->jobs.v[j];
    for (int p = 0; p < 3; p++)
      if (tally[p].latest_end && tally[p].latest_end[j] > ends[n])
        ends[n] = tally[p].latest_end[j];
    n++;
  }
  jobs.n = n;
  cs_sim_world w = {.jobs = &jobs,
                    .cluster = &s->cluster,
                    .traces = s->traces,
                    .ntraces = s->ntraces,
                    .estimate = &s->est};
  cs_sim_bound_params bp = {.slot_s = (int64_t)o->bound_slot_s,
                            .max_columns = o->bound_max};
  cs_sim_bound b;
  char err[512];
  uint64_t t0 = cs_clock_mono_ns();
  if (cs_sim_bound_solve(&w, ends, &bp, &b, err, sizeof(err)) == CS_OK) {
    cs_sim_report_bound_row(&b, n, nj, row);
  } else {
    memset(row, 0, sizeof(*row));
    row->policy = "bound";
    snprintf(row->note, sizeof(row->note), "%.400s", err);
  }
  row->runtime_s = (double)(cs_clock_mono_ns() - t0) / 1e9;
  free(ends);
  free(jobs.v);
}

/* Says on stderr when the compared jobs are fewer than some policy ran, so
 * that a reader of --json or --csv cannot miss it. */
static void warn_compared(const cs_sim_row *rows, size_t n)
{
  size_t compared = 0, most = 0;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(rows[i].policy, "agnostic"))
      compared = rows[i].compared;
    if (rows[i].solved && rows[i].jobs > most)
      most = rows[i].jobs;
  }
  if (compared == most)
    return;
  fprintf(stderr,
          "carbonshift simulate: savings compare the %zu jobs every policy "
          "ran, not each policy's own (not run:",
          compared);
  for (size_t i = 0; i < n; i++)
    if (rows[i].solved)
      fprintf(stderr, "%s %s %zu", i ? "," : "", rows[i].policy,
              rows[i].not_run);
  fputs(")\n", stderr);
}

/* The CSV has no room for the jobs left out before the replay (the table's
 * first line and the JSON's scenario give them): stderr says how many, so
 * that figures over fewer jobs than the file holds are not taken for all. */
static void warn_left_out(const sim *s)
{
  if (!s->dropped && !s->in_holes && !s->jobs.skipped)
    return;
  fprintf(stderr,
          "carbonshift simulate: %zu jobs replayed; left out: %zu outside the "
          "carbon traces, %zu reaching their holes, %zu unreplayable (no GPUs "
          "or no duration)\n",
          s->jobs.n, s->dropped, s->in_holes, s->jobs.skipped);
}

int cs_cmd_simulate(int argc, char **argv)
{
  opts o = {0};
  int status = parse_args(argc, argv, &o);
  if (status)
    return status < 0 ? 0 : status;
  sim s = {0};
  cs_sim_row rows[4];
  int row_policy[4]; /* the policy of each row; 3: the bound */
  size_t nrows = 0;
  size_t nj = 0;
  cs_sim_outcome *res[3] = {NULL, NULL, NULL};
  cs_sim_tally tally[3] = {{0}};
  unsigned char *common = NULL;
  FILE *jobs_out = NULL;
  if ((status = load(&o, &s)))
    goto out;
  if (o.jobs_out && !(jobs_out = fopen(o.jobs_out, "w"))) {
    fprintf(stderr,
            "carbonshift simulate: --jobs-out %s: cannot be written: %s\n",
            o.jobs_out, strerror(errno));
    status = 1;
    goto out;
  }
  nj = s.jobs.n;
  /* The compared jobs: cleared for every job a run of a policy did not
   * run. */
  common = cs_malloc(nj + 1);
  memset(common, 1, nj + 1);
  for (int p = 0; p < 3; p++) {
    if (!o.want[p] && !(p == 0 && (o.want[1] || o.want[2] || o.want[3])))
      continue;
    res[p] = cs_calloc(nj + 1, sizeof(cs_sim_outcome));
    cs_sim_report_tally_init(&tally[p], nj);
    double secs = 0, total = 0;
    int reps = p == CS_SIM_CARBONSHIFT ? o.seeds : 1;
    cs_sim_row acc = {0};
    for (int r = 0; r < reps; r++) {
      if (run_policy(&o, &s, (cs_sim_policy)p, o.seed + (uint64_t)r, res[p],
                     &secs) != CS_OK) {
        fprintf(stderr, "carbonshift simulate: the %s run failed\n",
                cs_sim_policy_name((cs_sim_policy)p));
        status = 1;
        goto out;
      }
      total += secs;
      cs_sim_world w = {.jobs = &s.jobs,
                        .cluster = &s.cluster,
                        .traces = s.traces,
                        .ntraces = s.ntraces,
                        .estimate = &s.est};
      cs_sim_row row;
      cs_sim_report_row(&w, cs_sim_policy_name((cs_sim_policy)p), res[p], &row);
      cs_sim_report_tally_add(&tally[p], &w, res[p], p ? res[0] : NULL, common);
      if (!r) {
        acc = row;
      } else { /* the mean over seeds of every sum */
        acc.gpu_hours += row.gpu_hours;
        acc.energy_kwh += row.energy_kwh;
        acc.operational_g += row.operational_g;
        acc.embodied_g += row.embodied_g;
        acc.total_g += row.total_g;
        acc.wait_mean_s += row.wait_mean_s;
        acc.wait_p95_s += row.wait_p95_s;
        acc.deadline_misses += row.deadline_misses;
      }
    }
    if (reps > 1) {
      acc.gpu_hours /= reps;
      acc.energy_kwh /= reps;
      acc.operational_g /= reps;
      acc.embodied_g /= reps;
      acc.total_g /= reps;
      acc.wait_mean_s /= reps;
      acc.wait_p95_s /= reps;
      acc.deadline_misses = (size_t)llround((double)acc.deadline_misses / reps);
      snprintf(acc.note, sizeof(acc.note), "mean over %d seeds from %llu", reps,
               (unsigned long long)o.seed);
    }
    acc.runtime_s = total;
    if (jobs_out) {
      cs_sim_world w = {
          .jobs = &s.jobs, .cluster = &s.cluster, .estimate = &s.est};
      cs_sim_report_jobs_csv(jobs_out, &w, cs_sim_policy_name((cs_sim_policy)p),
                             res[p], p == 0);
    }
    /* The baseline is always shown. */
    row_policy[nrows] = p;
    rows[nrows++] = acc;
  }
  for (size_t i = 0; i < nrows; i++)
    cs_sim_report_compared(&tally[row_policy[i]], common, &rows[i]);
  if (o.want[3]) {
    row_policy[nrows] = 3;
    bound_row(&o, &s, tally, common, &rows[nrows++]);
  }
  cs_sim_report_compare(rows, nrows);
  warn_compared(rows, nrows);
  const char *headline = o.want[1]   ? "carbonshift"
                         : o.want[2] ? "oracle"
                                     : rows[nrows - 1].policy;
  if (o.json) {
    cs_buf sc, b;
    cs_buf_init(&sc, 1 << 20);
    cs_buf_init(&b, 1 << 22);
    scenario_json(&o, &s, &sc);
    cs_sim_report_json(&b, sc.data, rows, nrows, headline);
    fwrite(b.data, 1, b.len, stdout);
    fputc('\n', stdout);
    cs_buf_free(&sc);
    cs_buf_free(&b);
  } else if (o.csv) {
    warn_left_out(&s);
    cs_sim_report_csv(stdout, rows, nrows);
  } else {
    printf("%zu jobs (%zu outside the carbon traces, %zu in their holes, %zu "
           "unreplayable), forecast %s\n",
           s.jobs.n, s.dropped, s.in_holes, s.jobs.skipped, o.fc_text);
    cs_sim_report_table(stdout, rows, nrows);
  }
out:
  if (jobs_out && fclose(jobs_out) && !status) {
    fprintf(stderr, "carbonshift simulate: --jobs-out %s: write failed\n",
            o.jobs_out);
    status = 1;
  }
  for (int p = 0; p < 3; p++) {
    free(res[p]);
    cs_sim_report_tally_free(&tally[p]);
  }
  free(common);
  sim_free(&s);
  return status;
}
