#include "cmd/carbonshift/sim_cluster.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/jtree.h"
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

/* A number member in [lo, hi] (a whole one when `whole`: a count of nodes
 * or GPUs), left as it was when absent. */
static cs_err get_num(ctx *c, const cJSON *o, const char *key, double lo,
                      double hi, bool whole, double *out, const char *expected)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v)
    return CS_OK;
  if (!cJSON_IsNumber(v))
    return fail(c, key, "(not a number)", expected);
  double x = v->valuedouble;
  char text[32];
  snprintf(text, sizeof(text), "%g", x);
  if (!isfinite(x) || x < lo || x > hi || (whole && x != floor(x)))
    return fail(c, key, text, expected);
  *out = x;
  return CS_OK;
}

/* Refuses a member of object `o` whose key is not in keys[0, n) (naming
 * the closest one) or that repeats an earlier key. cJSON keeps every
 * member and a lookup finds the first, so a mistyped or repeated key would
 * otherwise be ignored without a word. `where` begins the message,
 * `listed` is the keys as text for it. */
static cs_err check_keys(const cJSON *o, const char *const *keys, size_t n,
                         const char *where, const char *listed, char *err,
                         size_t errcap)
{
  for (const cJSON *m = o->child; m; m = m->next) {
    size_t k = 0;
    while (k < n && strcmp(m->string, keys[k]))
      k++;
    if (k == n) {
      const char *guess = cs_closest_name(m->string, keys, n);
      snprintf(err, errcap, "%s: unknown key \"%.40s\"%s%s%s: expected %s",
               where, m->string, guess ? " (did you mean " : "",
               guess ? guess : "", guess ? "?)" : "", listed);
      return CS_EINVAL;
    }
    for (const cJSON *e = o->child; e != m; e = e->next)
      if (!strcmp(e->string, m->string)) {
        snprintf(err, errcap, "%s: key \"%s\" given twice: expected it once",
                 where, m->string);
        return CS_EINVAL;
      }
  }
  return CS_OK;
}

static cs_err check_pool_keys(ctx *c, const cJSON *o)
{
  static const char *const keys[] = {"name",     "zone",        "gpu",
                                     "nodes",    "gpusPerNode", "installed",
                                     "lifetime", "pue",         "embodiedKg"};
  char where[96];
  snprintf(where, sizeof(where), "pools[%zu] (%s)", c->i, c->pool);
  return check_keys(o, keys, sizeof(keys) / sizeof(*keys), where,
                    "name, zone, gpu, nodes, gpusPerNode, installed, "
                    "lifetime, pue or embodiedKg",
                    c->err, c->errcap);
}

static cs_err read_pool(ctx *c, const cJSON *o, const cs_gpu_catalog *catalog,
                        const cs_facts_params *d, cs_sim_pool *p)
{
  const char *name, *zone, *gpu, *installed, *lifetime;
  cs_err rc;
  if (!cJSON_IsObject(o))
    return fail(c, "pool", "(not an object)", "an object");
  if ((rc = get_str(c, o, "name", &name)))
    return rc;
  c->pool = name ? name : "?";
  if ((rc = check_pool_keys(c, o)) || (rc = get_str(c, o, "zone", &zone)) ||
      (rc = get_str(c, o, "gpu", &gpu)) ||
      (rc = get_str(c, o, "installed", &installed)) ||
      (rc = get_str(c, o, "lifetime", &lifetime)))
    return rc;
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
  static const char nodes_form[] = "a whole number of nodes, 1 to 1000000",
                    gpn_form[] = "a whole number of GPUs, 1 to 64";
  if ((rc = get_num(c, o, "nodes", 1, 1e6, true, &nodes, nodes_form)) ||
      (rc = get_num(c, o, "gpusPerNode", 1, 64, true, &gpn, gpn_form)) ||
      (rc = get_num(c, o, "pue", 1, 3, false, &pue, "a PUE from 1 to 3")) ||
      (rc = get_num(c, o, "embodiedKg", 0, 1e6, false, &emb,
                    "kg CO2e of one whole node, >= 0")))
    return rc;
  if (!(nodes > 0))
    return fail(c, "nodes", "(missing)", nodes_form);
  if (!(gpn > 0))
    return fail(c, "gpusPerNode", "(missing)", gpn_form);
  snprintf(p->name, sizeof(p->name), "%s", name);
  base_facts(&p->facts, name, zone, m, gpn);
  p->facts.pue = pue;
  p->facts.pue_source = cJSON_GetObjectItemCaseSensitive(o, "pue")
                            ? CS_PUE_FROM_NODE
                            : CS_PUE_DEFAULT;
  p->facts.embodied_kg = emb;
  p->facts.lifetime_s = d->default_lifetime_s;
  /* The floor the service puts on a node's lifetime annotation. */
  if (lifetime && (cs_parse_duration(lifetime, &p->facts.lifetime_s, NULL) ||
                   p->facts.lifetime_s < CS_NODE_MIN_LIFETIME_S))
    return fail(c, "lifetime", lifetime,
                "a duration of at least 30d, such as 6y");
  if (installed && cs_parse_date(installed, &p->facts.installed_at, NULL) &&
      cs_parse_rfc3339(installed, &p->facts.installed_at, NULL))
    return fail(c, "installed", installed, "YYYY-MM, YYYY-MM-DD or RFC 3339");
  p->nodes = nodes;
  p->capacity = nodes * gpn;
  return CS_OK;
}

/* Parses all of json[0, len) as one JSON value: text after it (a second
 * value, stray characters, a NUL) is refused, not ignored. */
static cs_err parse_whole(const char *json, size_t len, cJSON **root, char *err,
                          size_t errcap)
{
  const char *end = json;
  if (len > CS_SIM_CLUSTER_MAX_BYTES) {
    snprintf(err, errcap, "over the 1 MiB cap on a cluster");
    return CS_ETOOBIG;
  }
  *root = cs_jtree_parse(json, len, &end);
  if (!*root) {
    snprintf(err, errcap, "not valid JSON (at byte %zu)", (size_t)(end - json));
    return CS_EPARSE;
  }
  while (end < json + len && *end && strchr(" \t\r\n", *end))
    end++;
  if (end < json + len) {
    snprintf(err, errcap,
             "text after the JSON value at byte %zu: expected one object",
             (size_t)(end - json));
    return CS_EPARSE;
  }
  return CS_OK;
}

cs_err cs_sim_cluster_parse(const char *json, size_t len,
                            const cs_gpu_catalog *catalog,
                            const cs_facts_params *defaults,
                            cs_sim_cluster *out, char *err, size_t errcap)
{
  memset(out, 0, sizeof(*out));
  cs_err rc = CS_OK;
  cJSON *root = NULL;
  static const char pools_form[] =
      "expected {\"pools\": [...]} with 1 to 64 pools";
  static const char *const top_keys[] = {"pools"};
  if ((rc = parse_whole(json, len, &root, err, errcap)))
    goto out;
  if (!cJSON_IsObject(root)) {
    snprintf(err, errcap, "not an object: %s", pools_form);
    rc = CS_EINVAL;
    goto out;
  }
  if ((rc = check_keys(root, top_keys, 1, "the cluster", "pools", err, errcap)))
    goto out;
  const cJSON *pools = cJSON_GetObjectItemCaseSensitive(root, "pools");
  int n = cJSON_GetArraySize(pools);
  if (!cJSON_IsArray(pools) || n < 1 || n > CS_SIM_CLUSTER_MAX_POOLS) {
    snprintf(err, errcap, "%s", pools_form);
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
