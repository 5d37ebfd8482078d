#include "scheduler/node_facts.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/parse.h"

const char *cs_zone_source_name(cs_zone_source s)
{
  switch (s) {
  case CS_ZONE_FROM_LABEL:
    return "label";
  case CS_ZONE_FROM_REGION:
    return "region";
  case CS_ZONE_FROM_DEFAULT:
    return "default";
  case CS_ZONE_NONE:
    break;
  }
  return "none";
}

/* Ends a problems text that had no room for one more. */
#define MORE_PROBLEMS "; more problems not shown"

void cs_problems_add(char *problems, size_t cap, const char *fmt, ...)
{
  size_t len = strnlen(problems, cap), mlen = strlen(MORE_PROBLEMS);
  if (len + 1 >= cap ||
      (len >= mlen && strcmp(problems + len - mlen, MORE_PROBLEMS) == 0))
    return;
  char piece[CS_PROBLEMS_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(piece, sizeof(piece), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t sep = len ? 2 : 0;
  /* Each problem leaves room for the marker, so that one that does not
   * fit can always say so; a first one is cut rather than lost. */
  if (len + sep + (size_t)n + mlen < cap || (!len && mlen + 1 >= cap)) {
    snprintf(problems + len, cap - len, "%s%s", sep ? "; " : "", piece);
  } else if (!len) {
    snprintf(problems, cap, "%.*s%s", (int)(cap - mlen - 1), piece,
             MORE_PROBLEMS);
  } else {
    snprintf(problems + len, cap - len, "%s", MORE_PROBLEMS);
  }
}

const char *cs_problem_value(const char *v, char out[CS_SHOWN_CAP])
{
  size_t n = strlen(v);
  if (n <= CS_SHOWN_MAX)
    return v;
  n = CS_SHOWN_MAX - 3;
  while (n && ((unsigned char)v[n] & 0xC0) == 0x80)
    n--; /* never cut a UTF-8 sequence */
  snprintf(out, CS_SHOWN_CAP, "%.*s\xe2\x80\xa6", (int)n, v);
  return out;
}

/* A member name with its length, so that plain names compare without
 * decoding. */
typedef struct key {
  const char *s;
  size_t n;
} key;
#define KEY(s)                                                                 \
  {                                                                            \
    s, sizeof(s) - 1                                                           \
  }

static const key node_keys[CS_NODE_KEYS] = {
    [CS_KEY_GRID_ZONE] = KEY(CS_LABEL_GRID_ZONE),
    [CS_KEY_GPU_MODEL] = KEY(CS_LABEL_GPU_MODEL),
    [CS_KEY_GFD_PRODUCT] = KEY(CS_LABEL_GFD_PRODUCT),
    [CS_KEY_AMD_PRODUCT] = KEY(CS_LABEL_AMD_PRODUCT),
    [CS_KEY_GFD_COUNT] = KEY(CS_LABEL_GFD_COUNT),
    [CS_KEY_REGION] = KEY(CS_LABEL_REGION),
    [CS_KEY_INSTALLED] = KEY(CS_ANN_INSTALLED),
    [CS_KEY_LIFETIME] = KEY(CS_ANN_LIFETIME),
    [CS_KEY_EMBODIED] = KEY(CS_ANN_EMBODIED),
    [CS_KEY_PUE] = KEY(CS_ANN_PUE),
};
static const key resource_keys[CS_NODE_RESOURCES] = {
    [CS_RES_NVIDIA] = KEY("nvidia.com/gpu"),
    [CS_RES_AMD] = KEY("amd.com/gpu"),
};
enum { META_NAME, META_LABELS, META_ANNOTATIONS, META_KEYS };
static const key meta_keys[META_KEYS] = {
    [META_NAME] = KEY("name"),
    [META_LABELS] = KEY("labels"),
    [META_ANNOTATIONS] = KEY("annotations"),
};

/* ---- Collecting from cJSON trees (the node cache's watch objects) ------- */

static cs_node_field json_field(const cJSON *obj, const char *name)
{
  cs_node_field f = {0};
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (v && !cJSON_IsString(v))
    f.kind = CS_FIELD_BAD;
  else if (v && v->valuestring)
    f = (cs_node_field){v->valuestring, strlen(v->valuestring), CS_FIELD_TEXT};
  return f;
}

/* Collects keys[0..n) from obj, which may be NULL; *bad when obj is there
 * but not an object (null allowed when null_ok). */
static void json_members(const cJSON *obj, const key *keys, size_t n,
                         bool null_ok, cs_node_field *out, bool *bad)
{
  if (obj && !cJSON_IsObject(obj) && !(null_ok && cJSON_IsNull(obj))) {
    *bad = true;
    return;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = json_field(obj, keys[i].s);
}

void cs_node_fields_from_json(const cJSON *metadata, const cJSON *allocatable,
                              cs_node_fields *out)
{
  memset(out, 0, sizeof(*out));
  out->name = json_field(metadata, "name");
  json_members(cJSON_GetObjectItemCaseSensitive(metadata, "labels"), node_keys,
               CS_NODE_KEYS, true, out->labels, &out->labels_bad);
  json_members(cJSON_GetObjectItemCaseSensitive(metadata, "annotations"),
               node_keys, CS_NODE_KEYS, true, out->annotations,
               &out->annotations_bad);
  json_members(allocatable, resource_keys, CS_NODE_RESOURCES, false,
               out->allocatable, &out->allocatable_bad);
}

/* ---- Collecting from the scanner (the bytes of a request) -------------- */

/* The index in keys[0..n) of the member name lit[0..len), or n. */
static size_t key_index(const char *lit, size_t len, const key *keys, size_t n)
{
  bool plain = !memchr(lit, '\\', len);
  for (size_t i = 0; i < n; i++) {
    if (plain
            ? len - 2 == keys[i].n && memcmp(lit + 1, keys[i].s, keys[i].n) == 0
            : cs_json_key_is(lit, len, keys[i].s))
      return i;
  }
  return n;
}

/* Consumes the value at the scanner into *f. */
static cs_err scan_field(cs_jscan *s, cs_node_field *f)
{
  bool str = cs_jscan_peek(s) == CS_JSTRING;
  const char *at;
  size_t len;
  cs_err rc = cs_jscan_skip(s, &at, &len);
  if (rc)
    return rc;
  if (!str)
    *f = (cs_node_field){NULL, 0, CS_FIELD_BAD};
  else if (memchr(at, '\\', len))
    *f = (cs_node_field){at, len, CS_FIELD_JSON};
  else /* the scanner let no control byte, so no NUL, through */
    *f = (cs_node_field){at + 1, len - 2, CS_FIELD_TEXT};
  return CS_OK;
}

/* Steps to the next member of an object; *i gets the index of its name in
 * keys[0..n), or n. */
static cs_err next_member(cs_jscan *s, const key *keys, size_t n, size_t *i,
                          bool *more)
{
  const char *lit;
  size_t len;
  cs_err rc = cs_jscan_next_key_lit(s, &lit, &len, more);
  if (rc == CS_OK && *more)
    *i = key_index(lit, len, keys, n);
  return rc;
}

/* Consumes the object at the scanner, keeping the first member of each
 * name in keys[0..n) in out[0..n). */
static cs_err scan_members(cs_jscan *s, const key *keys, size_t n,
                           cs_node_field *out)
{
  size_t i;
  bool more;
  cs_err rc = cs_jscan_enter_object(s);
  while (rc == CS_OK && (rc = next_member(s, keys, n, &i, &more)) == CS_OK &&
         more)
    rc = i < n && out[i].kind == CS_FIELD_ABSENT ? scan_field(s, &out[i])
                                                 : cs_jscan_skip(s, NULL, NULL);
  return rc;
}

/* Consumes labels or annotations: an object, null, or (*bad) anything else.
 */
static cs_err scan_map(cs_jscan *s, cs_node_field *out, bool *bad)
{
  cs_jtype t = cs_jscan_peek(s);
  if (t == CS_JOBJECT)
    return scan_members(s, node_keys, CS_NODE_KEYS, out);
  *bad = t != CS_JNULL && t != CS_JEND; /* CS_JEND: skip explains it */
  return cs_jscan_skip(s, NULL, NULL);
}

cs_err cs_node_fields_scan_metadata(cs_jscan *s, cs_node_fields *out)
{
  size_t i;
  bool more, seen[META_KEYS] = {false};
  out->name = (cs_node_field){0};
  memset(out->labels, 0, sizeof(out->labels));
  memset(out->annotations, 0, sizeof(out->annotations));
  out->labels_bad = out->annotations_bad = false;
  cs_err rc = cs_jscan_enter_object(s);
  while (rc == CS_OK &&
         (rc = next_member(s, meta_keys, META_KEYS, &i, &more)) == CS_OK &&
         more) {
    if (i == META_KEYS || seen[i]) {
      rc = cs_jscan_skip(s, NULL, NULL);
      continue;
    }
    seen[i] = true;
    if (i == META_NAME)
      rc = scan_field(s, &out->name);
    else if (i == META_LABELS)
      rc = scan_map(s, out->labels, &out->labels_bad);
    else
      rc = scan_map(s, out->annotations, &out->annotations_bad);
  }
  return rc;
}

cs_err cs_node_fields_scan_allocatable(cs_jscan *s, cs_node_fields *out)
{
  memset(out->allocatable, 0, sizeof(out->allocatable));
  out->allocatable_bad = false;
  return scan_members(s, resource_keys, CS_NODE_RESOURCES, out->allocatable);
}

/* ---- From fields to facts ---------------------------------------------- */

/* Room for a field's value as a C string: buf, or heap for a long one. */
typedef struct text {
  char *heap;
  char buf[256];
} text;

static void text_free(text *t)
{
  free(t->heap);
  t->heap = NULL;
}

/* The value of f as cJSON's valuestring would hold it (decoded, an escaped
 * NUL shown as U+FFFD: jtree.h), in t; NULL when f is not a string. Release t
 * with text_free.
 */
static const char *field_text(const cs_node_field *f, text *t)
{
  t->heap = NULL;
  if (f->kind != CS_FIELD_TEXT && f->kind != CS_FIELD_JSON)
    return NULL;
  char *out = t->buf;
  size_t n;
  if (f->len >= sizeof(t->buf)) /* decoding never makes a string longer */
    out = t->heap = cs_malloc(f->len + 1);
  if (f->kind == CS_FIELD_TEXT) {
    memcpy(out, f->at, f->len);
    out[f->len] = '\0';
    return out;
  }
  if (cs_json_unquote_cstr(f->at, f->len, out, f->len + 1, &n) == CS_OK)
    return out;
  text_free(t); /* only a literal the scanner refuses fails to decode */
  return NULL;
}

/* Looks a key up in annotations, then labels; `*where` names the one it
 * came from ("annotation" or "label"), for the messages. Records a
 * problem when the value is not a string. */
static const char *node_value(cs_node_facts *f, const cs_node_fields *in,
                              cs_node_key k, text *t, const char **where)
{
  const cs_node_field *v = &in->annotations[k];
  *where = "annotation";
  if (v->kind == CS_FIELD_ABSENT) {
    v = &in->labels[k];
    *where = "label";
  }
  if (v->kind == CS_FIELD_BAD)
    cs_problems_add(f->problems, sizeof(f->problems),
                    "%s %s: expected a string value", *where, node_keys[k].s);
  return field_text(v, t);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
  snprintf(dst, cap, "%s", src);
}

static void read_zone(const cs_facts_params *p, cs_node_facts *f,
                      const cs_node_fields *in)
{
  text t;
  const char *where;
  const char *zone = node_value(f, in, CS_KEY_GRID_ZONE, &t, &where);
  if (zone && cs_zone_id_valid(zone)) {
    copy_str(f->zone, sizeof(f->zone), zone);
    f->zone_source = CS_ZONE_FROM_LABEL;
  } else if (zone) {
    cs_problems_add(f->problems, sizeof(f->problems),
                    "%s %s=\"%s\": expected a grid zone id such as DE, "
                    "US-CAL-CISO or CAISO_NORTH (letters, digits, '-', '_'), "
                    "or lat,lon (an annotation: labels cannot hold a comma)",
                    where, CS_LABEL_GRID_ZONE, CS_SHOWN(zone));
  }
  text_free(&t);
  if (f->zone_source)
    return;
  const char *region = field_text(&in->labels[CS_KEY_REGION], &t);
  if (region && p->zones) {
    const char *mapped = cs_zone_map_lookup(p->zones, region);
    if (mapped) {
      copy_str(f->zone, sizeof(f->zone), mapped);
      f->zone_source = CS_ZONE_FROM_REGION;
    } else {
      cs_problems_add(f->problems, sizeof(f->problems),
                      "label %s=\"%s\": region not in the zone map (add "
                      "it under zones.regions)",
                      CS_LABEL_REGION, CS_SHOWN(region));
    }
  }
  text_free(&t);
  if (!f->zone_source && p->default_zone && *p->default_zone) {
    copy_str(f->zone, sizeof(f->zone), p->default_zone);
    f->zone_source = CS_ZONE_FROM_DEFAULT;
  }
}

static void read_gpu(const cs_facts_params *p, cs_node_facts *f,
                     const cs_node_fields *in)
{
  static const cs_node_key model_keys[] = {CS_KEY_GPU_MODEL, CS_KEY_GFD_PRODUCT,
                                           CS_KEY_AMD_PRODUCT};
  text t;
  for (size_t i = 0; i < sizeof(model_keys) / sizeof(*model_keys); i++) {
    const char *where;
    const char *label = node_value(f, in, model_keys[i], &t, &where);
    if (!label)
      continue;
    copy_str(f->gpu_label, sizeof(f->gpu_label), label);
    f->gpu = p->catalog ? cs_gpu_catalog_find(p->catalog, label) : NULL;
    const char *kind = NULL;
    const cs_gpu_model *whole =
        f->gpu || !p->catalog
            ? NULL
            : cs_gpu_catalog_partition_of(p->catalog, label, &kind);
    if (whole)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": a %s of %s, whose share of the "
                      "card's power and throughput is not known (add this "
                      "label under gpus in the configuration with its own "
                      "figures)",
                      where, node_keys[model_keys[i]].s, CS_SHOWN(label), kind,
                      whole->name);
    else if (!f->gpu)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": GPU model not in the catalog (add "
                      "it under gpus in the configuration)",
                      where, node_keys[model_keys[i]].s, CS_SHOWN(label));
    text_free(&t);
    break;
  }

  for (size_t i = 0; i < CS_NODE_RESOURCES; i++) {
    if (in->allocatable[i].kind == CS_FIELD_ABSENT)
      continue;
    const char *q = field_text(&in->allocatable[i], &t);
    const char *expected = "a quantity string";
    double n = 0;
    bool ok = q && cs_parse_quantity(q, &n, &expected) == CS_OK &&
              fabs(n) <= CS_GPU_COUNT_MAX && n == trunc(n);
    if (!ok)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "allocatable %s=\"%s\": expected a whole number of "
                      "devices such as 8",
                      resource_keys[i].s, q ? CS_SHOWN(q) : "(not a string)");
    text_free(&t);
    if (ok && n > 0) {
      f->gpus = n;
      copy_str(f->gpu_resource, sizeof(f->gpu_resource), resource_keys[i].s);
      break;
    }
  }
  if (f->gpus > 0)
    return;
  const char *where;
  const char *q = node_value(f, in, CS_KEY_GFD_COUNT, &t, &where);
  if (q) {
    const char *expected = "a whole number";
    double n = 0;
    if (cs_parse_quantity(q, &n, &expected) == CS_OK && n > 0 &&
        n <= CS_GPU_COUNT_MAX && n == trunc(n)) {
      f->gpus = n;
      copy_str(f->gpu_resource, sizeof(f->gpu_resource), "nvidia.com/gpu");
    } else {
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s " CS_LABEL_GFD_COUNT "=\"%s\": expected a whole "
                      "number of GPUs such as 8",
                      where, CS_SHOWN(q));
    }
  }
  text_free(&t);
}

static void read_hardware(const cs_facts_params *p, cs_node_facts *f,
                          const cs_node_fields *in)
{
  const char *expected = NULL, *where;
  text t;
  const char *v = node_value(f, in, CS_KEY_INSTALLED, &t, &where);
  if (v) {
    int64_t at;
    if (cs_parse_date(v, &at, &expected) != CS_OK)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": expected %s", where, CS_ANN_INSTALLED,
                      CS_SHOWN(v), expected);
    else if (at > cs_clock_now())
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": expected a date in the past", where,
                      CS_ANN_INSTALLED, CS_SHOWN(v));
    else if (at <= 0)
      /* 0 means "age unknown" to the estimate: an epoch date would pass
       * for none, without a word. */
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": expected a date after 1970-01-01", where,
                      CS_ANN_INSTALLED, CS_SHOWN(v));
    else
      f->installed_at = at;
  }
  text_free(&t);

  f->lifetime_s = p->default_lifetime_s;
  v = node_value(f, in, CS_KEY_LIFETIME, &t, &where);
  if (v) {
    double s;
    if (cs_parse_duration(v, &s, &expected) != CS_OK)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": expected %s", where, CS_ANN_LIFETIME,
                      CS_SHOWN(v), expected);
    else if (s < CS_NODE_MIN_LIFETIME_S)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": expected a lifetime of at "
                      "least 30d, such as 6y",
                      where, CS_ANN_LIFETIME, CS_SHOWN(v));
    else
      f->lifetime_s = s;
  }
  text_free(&t);

  v = node_value(f, in, CS_KEY_EMBODIED, &t, &where);
  if (v) {
    double kg;
    if (cs_parse_double(v, &kg, &expected) != CS_OK || !(kg > 0) || kg > 1e6)
      cs_problems_add(f->problems, sizeof(f->problems),
                      "%s %s=\"%s\": expected the node's embodied "
                      "carbon in kgCO2e, a number above 0 and at most "
                      "1000000, such as 2500",
                      where, CS_ANN_EMBODIED, CS_SHOWN(v));
    else
      f->embodied_kg = kg;
  }
  text_free(&t);
}

static void read_pue(const cs_facts_params *p, cs_node_facts *f,
                     const cs_node_fields *in)
{
  f->pue = p->default_pue;
  f->pue_source = CS_PUE_DEFAULT;
  for (size_t i = 0; i < p->nzone_pue; i++) {
    if (f->zone[0] && strcmp(p->zone_pue[i].zone, f->zone) == 0) {
      f->pue = p->zone_pue[i].pue;
      f->pue_source = CS_PUE_FROM_ZONE;
    }
  }
  text t;
  const char *where;
  const char *v = node_value(f, in, CS_KEY_PUE, &t, &where);
  double pue;
  const char *expected;
  if (!v) {
    /* nothing to read */
  } else if (cs_parse_double(v, &pue, &expected) != CS_OK || pue < 1.0 ||
             pue > 3.0) {
    cs_problems_add(f->problems, sizeof(f->problems),
                    "%s %s=\"%s\": expected a power usage "
                    "effectiveness between 1.0 and 3.0, such as 1.2",
                    where, CS_ANN_PUE, CS_SHOWN(v));
  } else {
    f->pue = pue;
    f->pue_source = CS_PUE_FROM_NODE;
  }
  text_free(&t);
}

cs_err cs_node_fields_name(const cs_node_fields *f, char *out, size_t cap)
{
  text t;
  const char *name = field_text(&f->name, &t);
  size_t len = name ? strlen(name) : 0;
  cs_err rc = !len ? CS_EINVAL : len >= cap ? CS_ETOOBIG : CS_OK;
  if (rc == CS_OK)
    memcpy(out, name, len + 1);
  text_free(&t);
  return rc;
}

cs_err cs_node_facts_from_fields(const cs_facts_params *p,
                                 const cs_node_fields *in, cs_node_facts *out)
{
  memset(out, 0, sizeof(*out));
  if (cs_node_fields_name(in, out->name, sizeof(out->name)) != CS_OK)
    return CS_EINVAL;
  if (in->labels_bad)
    cs_problems_add(out->problems, sizeof(out->problems),
                    "metadata.labels: expected an object");
  if (in->annotations_bad)
    cs_problems_add(out->problems, sizeof(out->problems),
                    "metadata.annotations: expected an object");
  if (in->allocatable_bad)
    cs_problems_add(out->problems, sizeof(out->problems),
                    "status.allocatable: expected an object");
  read_zone(p, out, in);
  read_gpu(p, out, in);
  read_hardware(p, out, in);
  read_pue(p, out, in);
  return CS_OK;
}

cs_err cs_node_facts_read(const cs_facts_params *p, const cJSON *metadata,
                          const cJSON *allocatable, cs_node_facts *out)
{
  cs_node_fields in;
  cs_node_fields_from_json(metadata, allocatable, &in);
  return cs_node_facts_from_fields(p, &in, out);
}
