#include "cmd/carbonshift/sim_bound.h"

#include <glpk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"

/* One job on one pool: what the LP needs. */
typedef struct jp {
  double runtime, energy, embodied;
} jp;

static int64_t floor_div(int64_t a, int64_t b)
{
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* One column of the LP: a job's share of work on a pool in a slot. */
typedef struct bcol {
  double ub, cost, energy, op, emb, gpuh;
  double load; /* GPUs the whole job would hold in the slot, per share */
  size_t cell; /* 1 + the slot and pool's capacity cell; 0: unbounded */
} bcol;

static void add_share(const bcol *c, double x, cs_sim_bound *out)
{
  out->total_g += x * c->cost;
  out->energy_kwh += x * c->energy;
  out->operational_g += x * c->op;
  out->embodied_g += x * c->emb;
  out->gpu_hours += x * c->gpuh;
}

static int by_cost(const void *a, const void *b)
{
  const bcol *x = a, *y = b;
  return x->cost < y->cost ? -1 : x->cost > y->cost;
}

/* min sum cost*x subject to sum x = 1, 0 <= x <= ub: the cheapest columns
 * first, each up to its bound. Reorders `c`. CS_EINVAL when the bounds sum
 * below 1. */
static cs_err greedy(bcol *c, size_t n, cs_sim_bound *out)
{
  qsort(c, n, sizeof(*c), by_cost);
  double left = 1;
  for (size_t i = 0; i < n && left > 1e-12; i++) {
    double x = c[i].ub < left ? c[i].ub : left;
    add_share(&c[i], x, out);
    left -= x;
  }
  return left > 1e-9 ? CS_EINVAL : CS_OK;
}

/* The lowest intensity of the trace over [a, b). */
static double min_over(const cs_sim_trace *t, int64_t a, int64_t b)
{
  size_t i = cs_sim_trace_index(t, a);
  double m = t->g[i];
  for (i++; i < t->len && t->at[i] < b; i++)
    m = t->g[i] < m ? t->g[i] : m;
  return m;
}

cs_err cs_sim_bound_solve(const cs_sim_world *w, const int64_t *ends,
                          const cs_sim_bound_params *p, cs_sim_bound *out,
                          char *err, size_t errcap)
{
  memset(out, 0, sizeof(*out));
  const int64_t slot = p->slot_s > 0 ? p->slot_s : 3600;
  const size_t limit = p->max_columns ? p->max_columns : 400000;
  size_t nj = w->jobs->n, np = w->cluster->n;
  cs_err rc = CS_OK;
  jp *info = cs_calloc(nj * np + 1, sizeof(*info));
  int64_t *wend = cs_calloc(nj + 1, sizeof(*wend));
  const cs_sim_trace **tr = cs_calloc(np + 1, sizeof(*tr));
  glp_prob *lp = NULL;
  int *ia = NULL, *ja = NULL;
  double *ar = NULL, *cap_demand = NULL;
  bcol *cols = NULL;
  int64_t s0 = INT64_MAX, s1 = INT64_MIN;

  for (size_t q = 0; q < np; q++)
    tr[q] = cs_sim_engine_trace(w, w->cluster->pools[q].facts.zone);
  /* Windows and per-pool figures; count the columns first. */
  size_t ncols = 0;
  for (size_t j = 0; j < nj; j++) {
    const cs_sim_job *job = &w->jobs->v[j];
    wend[j] = ends ? ends[j] : 0;
    for (size_t q = 0; q < np; q++) {
      cs_sim_outcome o;
      cs_sim_engine_account(w, j, q, job->earliest, &o);
      jp *x = &info[j * np + q];
      if (o.fate != CS_SIM_RAN && o.fate != CS_SIM_UNCOVERED)
        continue;
      x->runtime = (double)(o.end - o.start);
      x->energy = o.energy_kwh;
      int64_t end = cs_sim_engine_latest(job, x->runtime) + (o.end - o.start);
      wend[j] = end > wend[j] ? end : wend[j];
    }
    for (size_t q = 0; q < np; q++) {
      jp *x = &info[j * np + q];
      if (!(x->runtime > 0) || w->cluster->pools[q].capacity < job->gpus)
        continue;
      if (!tr[q] || !cs_sim_trace_covers(tr[q], job->earliest, wend[j])) {
        snprintf(err, errcap, "job %s: its window leaves the %s trace", job->id,
                 w->cluster->pools[q].facts.zone);
        rc = CS_EINVAL;
        goto out;
      }
      /* The embodied share at the window's end: the smallest it gets. */
      cs_sim_outcome o;
      cs_sim_engine_account(w, j, q, wend[j] - (int64_t)x->runtime, &o);
      x->embodied = o.embodied_g;
      ncols += (size_t)(floor_div(wend[j] - 1, slot) -
                        floor_div(job->earliest, slot) + 1);
    }
    s0 = job->earliest < s0 ? job->earliest : s0;
    s1 = wend[j] > s1 ? wend[j] : s1;
  }
  out->columns = ncols;
  if (ncols > limit) {
    snprintf(err, errcap,
             "the LP would have %zu columns, over the limit of %zu: solve it "
             "on fewer jobs (--from/--to) or longer slots (--bound-slot)",
             ncols, limit);
    rc = CS_ETOOBIG;
    goto out;
  }
  int64_t first = floor_div(s0, slot),
          nslots = floor_div(s1 - 1, slot) - first + 1;
  /* Capacity rows only where the jobs that could use a slot could exceed
   * the pool. */
  cap_demand = cs_calloc((size_t)nslots * np + 1, sizeof(*cap_demand));
  for (size_t j = 0; j < nj; j++)
    for (size_t q = 0; q < np; q++)
      if (info[j * np + q].runtime > 0)
        for (int64_t s = floor_div(w->jobs->v[j].earliest, slot);
             s <= floor_div(wend[j] - 1, slot); s++)
          cap_demand[(size_t)(s - first) * np + q] += w->jobs->v[j].gpus;
  cols = cs_calloc(ncols + 1, sizeof(*cols));
  size_t *job_col = cs_calloc(nj + 1, sizeof(*job_col)); /* first column */
  size_t nc = 0;
  for (size_t j = 0; j < nj; j++) {
    const cs_sim_job *job = &w->jobs->v[j];
    job_col[j] = nc;
    for (size_t q = 0; q < np; q++) {
      const jp *x = &info[j * np + q];
      if (!(x->runtime > 0) || w->cluster->pools[q].capacity < job->gpus)
        continue;
      for (int64_t s = floor_div(job->earliest, slot);
           s <= floor_div(wend[j] - 1, slot); s++) {
        int64_t a = s * slot, b = a + slot;
        int64_t ca = a > job->earliest ? a : job->earliest;
        int64_t cb = b < wend[j] ? b : wend[j];
        double ub = (double)(cb - ca) / x->runtime;
        double g = min_over(tr[q], ca, cb);
        size_t k = (size_t)(s - first) * np + q;
        cols[nc++] = (bcol){
            .ub = ub > 0 ? (ub < 1 ? ub : 1) : 0,
            .cost = x->energy * g + x->embodied,
            .energy = x->energy,
            .op = x->energy * g,
            .emb = x->embodied,
            .gpuh = job->gpus * x->runtime / 3600,
            .load = job->gpus * x->runtime / (double)slot,
            .cell = cap_demand[k] > w->cluster->pools[q].capacity ? k + 1 : 0};
      }
    }
  }
  /* A job none of whose columns meets a capacity row is a problem of its
   * own: fill its cheapest columns up to their bounds (exact for that
   * fractional knapsack); only the others go to GLPK. */
  int *cell_row = cs_calloc((size_t)nslots * np + 2, sizeof(*cell_row));
  int *job_row = cs_calloc(nj + 1, sizeof(*job_row));
  int nrows = 0;
  for (size_t j = 0; j < nj; j++) {
    size_t end = j + 1 < nj ? job_col[j + 1] : nc;
    if (end == job_col[j]) { /* no pool can hold it: no policy runs it */
      out->no_fit_jobs++;
      continue;
    }
    bool coupled = p->lp_only;
    for (size_t c = job_col[j]; c < end && !coupled; c++)
      coupled = cols[c].cell != 0;
    if (coupled) {
      job_row[j] = ++nrows;
      continue;
    }
    if (greedy(&cols[job_col[j]], end - job_col[j], out) != CS_OK) {
      snprintf(err, errcap,
               "job %s: its window is too short for its runtime on every "
               "pool",
               w->jobs->v[j].id);
      rc = CS_EINTERNAL;
      goto out2;
    }
    out->closed_form_jobs++;
  }
  int njrows = nrows;
  for (size_t c = 0; c < nc; c++)
    if (cols[c].cell && !cell_row[cols[c].cell])
      cell_row[cols[c].cell] = ++nrows;
  out->rows = (size_t)nj + (size_t)(nrows - njrows);
  out->capacity_rows = (size_t)(nrows - njrows);
  if (!njrows)
    goto out2;

  lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MIN);
  glp_add_rows(lp, nrows);
  for (int r = 1; r <= njrows; r++)
    glp_set_row_bnds(lp, r, GLP_FX, 1.0, 1.0);
  for (size_t k = 1; k <= (size_t)nslots * np; k++)
    if (cell_row[k])
      glp_set_row_bnds(lp, cell_row[k], GLP_UP, 0,
                       w->cluster->pools[(k - 1) % np].capacity);
  size_t nlp = 0;
  for (size_t j = 0; j < nj; j++)
    if (job_row[j])
      nlp += (j + 1 < nj ? job_col[j + 1] : nc) - job_col[j];
  out->lp_columns = nlp;
  glp_add_cols(lp, (int)nlp);
  ia = cs_malloc((2 * nlp + 2) * sizeof(*ia));
  ja = cs_malloc((2 * nlp + 2) * sizeof(*ja));
  ar = cs_malloc((2 * nlp + 2) * sizeof(*ar));
  size_t *lp_col = cs_calloc(nlp + 1, sizeof(*lp_col));
  size_t nz = 0;
  int col = 0;
  for (size_t j = 0; j < nj; j++) {
    if (!job_row[j])
      continue;
    size_t end = j + 1 < nj ? job_col[j + 1] : nc;
    for (size_t c = job_col[j]; c < end; c++) {
      col++;
      lp_col[col] = c;
      glp_set_col_bnds(lp, col, cols[c].ub > 0 ? GLP_DB : GLP_FX, 0,
                       cols[c].ub);
      glp_set_obj_coef(lp, col, cols[c].cost);
      nz++;
      ia[nz] = job_row[j], ja[nz] = col, ar[nz] = 1;
      if (cols[c].cell) {
        nz++;
        ia[nz] = cell_row[cols[c].cell], ja[nz] = col, ar[nz] = cols[c].load;
      }
    }
  }
  glp_load_matrix(lp, (int)nz, ia, ja, ar);
  glp_smcp parm;
  glp_init_smcp(&parm);
  parm.msg_lev = GLP_MSG_OFF;
  parm.presolve = GLP_ON;
  uint64_t t0 = cs_clock_mono_ns();
  int ret = glp_simplex(lp, &parm);
  out->seconds = (double)(cs_clock_mono_ns() - t0) / 1e9;
  if (ret || glp_get_status(lp) != GLP_OPT) {
    snprintf(err, errcap,
             "GLPK found no optimum (simplex returned %d, status %d): the "
             "jobs may not fit the cluster within their windows",
             ret, glp_get_status(lp));
    rc = CS_EINTERNAL;
  } else {
    for (int c = 1; c <= col; c++)
      add_share(&cols[lp_col[c]], glp_get_col_prim(lp, c), out);
  }
  free(lp_col);
out2:
  free(cell_row);
  free(job_row);
  free(job_col);
out:
  if (lp)
    glp_delete_prob(lp);
  free(cols);
  free(ia);
  free(ja);
  free(ar);
  free(cap_demand);
  free(tr);
  free(wend);
  free(info);
  return rc;
}
