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
  int *cap_row = cs_calloc((size_t)nslots * np + 1, sizeof(*cap_row));
  int nrows = (int)nj;
  for (size_t k = 0; k < (size_t)nslots * np; k++)
    if (cap_demand[k] > w->cluster->pools[k % np].capacity)
      cap_row[k] = ++nrows;
  out->rows = (size_t)nrows;
  out->capacity_rows = (size_t)nrows - nj;

  lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MIN);
  glp_add_rows(lp, nrows);
  for (size_t j = 0; j < nj; j++)
    glp_set_row_bnds(lp, (int)j + 1, GLP_FX, 1.0, 1.0);
  for (size_t k = 0; k < (size_t)nslots * np; k++)
    if (cap_row[k])
      glp_set_row_bnds(lp, cap_row[k], GLP_UP, 0,
                       w->cluster->pools[k % np].capacity);
  glp_add_cols(lp, (int)ncols);
  size_t nz = 0, nzcap = 2 * ncols + 1;
  ia = cs_malloc((nzcap + 1) * sizeof(*ia));
  ja = cs_malloc((nzcap + 1) * sizeof(*ja));
  ar = cs_malloc((nzcap + 1) * sizeof(*ar));
  double *col_energy = cs_calloc(ncols + 1, sizeof(double));
  double *col_emb = cs_calloc(ncols + 1, sizeof(double));
  double *col_op = cs_calloc(ncols + 1, sizeof(double));
  int col = 0;
  for (size_t j = 0; j < nj; j++) {
    const cs_sim_job *job = &w->jobs->v[j];
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
        col++;
        glp_set_col_bnds(lp, col, ub > 0 ? GLP_DB : GLP_FX, 0,
                         ub > 0 ? (ub < 1 ? ub : 1) : 0);
        glp_set_obj_coef(lp, col, x->energy * g + x->embodied);
        col_energy[col] = x->energy;
        col_op[col] = x->energy * g;
        col_emb[col] = x->embodied;
        nz++;
        ia[nz] = (int)j + 1, ja[nz] = col, ar[nz] = 1;
        int r = cap_row[(size_t)(s - first) * np + q];
        if (r) {
          nz++;
          ia[nz] = r, ja[nz] = col,
          ar[nz] = job->gpus * x->runtime / (double)slot;
        }
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
    out->total_g = glp_get_obj_val(lp);
    for (int c = 1; c <= col; c++) {
      double v = glp_get_col_prim(lp, c);
      out->energy_kwh += v * col_energy[c];
      out->operational_g += v * col_op[c];
      out->embodied_g += v * col_emb[c];
    }
  }
  free(col_energy);
  free(col_op);
  free(col_emb);
  free(cap_row);
out:
  if (lp)
    glp_delete_prob(lp);
  free(ia);
  free(ja);
  free(ar);
  free(cap_demand);
  free(tr);
  free(wend);
  free(info);
  return rc;
}
