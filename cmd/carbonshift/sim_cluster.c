#include "cmd/carbonshift/sim_cluster.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/parse.h"

void cs_sim_cluster_free(cs_sim_cluster *c)
{
  free(c->pools);
  memset(c, 0, sizeof(*c));
}

static void base_facts(cs_node_facts *f, const char *name, const char *zone,
                       const cs_gpu_model *gpu, double gpus)
{
  memset(f, 0, sizeof(*f));
  snprintf(f->name, sizeof(f->name), "%s", name);
  snprintf(f->zone, sizeof(f->zone), "%s", zone);
  f->zone_source = CS_ZONE_FROM_LABEL;
  f->gpu = gpu;
  snprintf(f->gpu_label, sizeof(f->gpu_label), "%s", gpu ? gpu->name : "");
  snprintf(f->gpu_resource, sizeof(f->gpu_resource), "nvidia.com/gpu");
  f->gpus = gpus;
}

void cs_sim_cluster_single(const char *zone, const cs_gpu_model *model,
                           double gpus, double pue, cs_sim_cluster *out)
{
  out->n = 1;
  out->pools = cs_calloc(1, sizeof(*out->pools));
  cs_sim_pool *p = &out->pools[0];
  snprintf(p->name, sizeof(p->name), "%s", zone);
  base_facts(&p->facts, zone, zone, model, gpus);
  p->facts.pue = pue;
  p->facts.pue_source = CS_PUE_FROM_NODE;
  p->facts.lifetime_s = 6 * 365 * 86400.0;
  p->nodes = 1;
  p->capacity = gpus;
}

typedef struct ctx {
  char *err;
  size_t errcap;
  size_t i;
  const char *pool;
} ctx;

static cs_err fail(ctx *c, const char *field, const char *value,
                   const char *expected)
{
  snprintf(c->err, c->errcap, "pools[%zu] (%s): %s = %.60s: expected %s", c->i,
           c->pool, field, value, expected);
  return CS_EINVAL;
}

/* A string member, or NULL when absent; fails on a non-string. */
static cs_err get_str(ctx *c, const cJSON *o, const char *key, const char **out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = NULL;
  if (!v)
    return CS_OK;
  if (!cJSON_IsString(v))
    return fail(c, key, "(not a string)", "a string");
  *out = v->valuestring;
  return CS_OK;
}

static cs_err get_num(ctx *c, const cJSON *o, const char *key, double lo,
                      double hi, double *out, const char *expected)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    return CS_OK;
  char text[32];
  snprintf(text, sizeof(text), "%g", cJSON_IsNumber(v) ? v->valuedouble : 0);
  if (!cJSON_IsNumber(v))
    return fail(c, key, "(not a number)", expected);
  if (!isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
    return fail(c, key, text, expected);
  *out = v->valuedouble;
  return CS_OK;
}

static cs_err read_pool(ctx *c, const cJSON *o, const cs_gpu_catalog *catalog,
                        const cs_facts_params *d, cs_sim_pool *p)
{
  const char *name, *zone, *gpu, *installed, *lifetime;
  cs_err rc;
  if (!cJSON_IsObject(o))
    return fail(c, "pool", "(not an object)", "an object");
  if ((rc = get_str(c, o, "name", &name)) ||
      (rc = get_str(c, o, "zone", &zone)) ||
      (rc = get_str(c, o, "gpu", &gpu)) ||
      (rc = get_str(c, o, "installed", &installed)) ||
      (rc = get_str(c, o, "lifetime", &lifetime)))
    return rc;
  c->pool = name ? name : "?";
  if (!name || !name[0] || strlen(name) >= sizeof(p->name))
    return fail(c, "name", name ? name : "(missing)",
                "a name of 1 to 63 characters");
  if (!zone || !zone[0] || strlen(zone) >= CS_ZONE_MAX)
    return fail(c, "zone", zone ? zone : "(missing)",
                "a grid zone such as DE, matching a --carbon trace");
  const cs_gpu_model *m = gpu ? cs_gpu_catalog_find(catalog, gpu) : NULL;
  if (!m)
    return fail(c, "gpu", gpu ? gpu : "(missing)",
                "a GPU model in the catalog (docs/gpus.md)");
  double nodes = 0, gpn = 0, pue = d->default_pue, emb = 0;
  if ((rc = get_num(c, o, "nodes", 1, 1e6, &nodes, "1 to 1000000 nodes")) ||
      (rc = get_num(c, o, "gpusPerNode", 1, 64, &gpn, "1 to 64 GPUs")) ||
      (rc = get_num(c, o, "pue", 1, 3, &pue, "a PUE from 1 to 3")) ||
      (rc = get_num(c, o, "embodiedKg", 0, 1e6, &emb,
                    "kg CO2e of one whole node, >= 0")))
    return rc;
  if (!(nodes > 0))
    return fail(c, "nodes", "(missing)", "1 to 1000000 nodes");
  if (!(gpn > 0))
    return fail(c, "gpusPerNode", "(missing)", "1 to 64 GPUs");
  snprintf(p->name, sizeof(p->name), "%s", name);
  base_facts(&p->facts, name, zone, m, gpn);
  p->facts.pue = pue;
  p->facts.pue_source = cJSON_GetObjectItemCaseSensitive(o, "pue")
                            ? CS_PUE_FROM_NODE
                            : CS_PUE_DEFAULT;
  p->facts.embodied_kg = emb;
  p->facts.lifetime_s = d->default_lifetime_s;
  if (lifetime && cs_parse_duration(lifetime, &p->facts.lifetime_s, NULL))
    return fail(c, "lifetime", lifetime, "a duration such as 6y");
  if (installed && cs_parse_date(installed, &p->facts.installed_at, NULL) &&
      cs_parse_rfc3339(installed, &p->facts.installed_at, NULL))
    return fail(c, "installed", installed, "YYYY-MM, YYYY-MM-DD or RFC 3339");
  p->nodes = nodes;
  p->capacity = nodes * gpn;
  return CS_OK;
}

cs_err cs_sim_cluster_parse(const char *json, size_t len,
                            const cs_gpu_catalog *catalog,
                            const cs_facts_params *defaults,
                            cs_sim_cluster *out, char *err, size_t errcap)
{
  memset(out, 0, sizeof(*out));
  cs_err rc = CS_OK;
  cJSON *root =
      len <= CS_SIM_CLUSTER_MAX_BYTES ? cJSON_ParseWithLength(json, len) : NULL;
  const cJSON *pools =
      root ? cJSON_GetObjectItemCaseSensitive(root, "pools") : NULL;
  if (!root) {
    snprintf(err, errcap, "the cluster is not valid JSON (or over 1 MiB)");
    rc = CS_EPARSE;
    goto out;
  }
  int n = cJSON_GetArraySize(pools);
  if (!cJSON_IsArray(pools) || n < 1 || n > CS_SIM_CLUSTER_MAX_POOLS) {
    snprintf(err, errcap, "expected {\"pools\": [...]} with 1 to %d pools",
             CS_SIM_CLUSTER_MAX_POOLS);
    rc = CS_EINVAL;
    goto out;
  }
  out->pools = cs_calloc((size_t)n, sizeof(*out->pools));
  ctx c = {.err = err, .errcap = errcap};
  for (int i = 0; i < n; i++) {
    c.i = (size_t)i;
    c.pool = "?";
    rc = read_pool(&c, cJSON_GetArrayItem(pools, i), catalog, defaults,
                   &out->pools[i]);
    if (rc)
      goto out;
    for (int k = 0; k < i; k++)
      if (!strcmp(out->pools[k].name, out->pools[i].name)) {
        rc = fail(&c, "name", out->pools[i].name, "a name no other pool has");
        goto out;
      }
    out->n++;
  }
out:
  cJSON_Delete(root);
  if (rc)
    cs_sim_cluster_free(out);
  return rc;
}
