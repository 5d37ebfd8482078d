#include "carbon/util/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "carbon/util/hash.h"
#include "carbon/util/log.h"

/* One labelled series. Label values are stored sanitised (valid UTF-8,
 * truncated), so two updates that sanitise to the same text share a
 * series and the rendering never shows duplicates. */
typedef struct series {
  struct series *next; /* hash chain */
  uint64_t hash;
  char **values;
  double value;      /* counter, gauge */
  uint64_t *buckets; /* histogram: per-bucket counts, nbounds + 1 (+Inf) */
  double sum;
  uint64_t count;
} series;

typedef struct family {
  char *name;
  char *help;
  cs_metric_kind kind;
  size_t nlabels;
  char **labels;
  double *bounds;
  size_t nbounds;
  series **table; /* chained hash table, tsize a power of two */
  size_t tsize;
  size_t nseries;
  bool warned;
} family;

struct cs_metrics {
  pthread_mutex_t mu;
  family **fams; /* declaration order */
  size_t nfams;
  size_t afams;
  family **index; /* open addressing by name, isize a power of two */
  size_t isize;
};

cs_metrics *cs_metrics_new(void)
{
  cs_metrics *m = cs_calloc(1, sizeof(*m));
  pthread_mutex_init(&m->mu, NULL);
  m->isize = 64;
  m->index = cs_calloc(m->isize, sizeof(*m->index));
  return m;
}

static void free_values(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void free_series(family *f, series *s)
{
  free_values(s->values, f->nlabels);
  free(s->buckets);
  free(s);
}

static void free_family(family *f)
{
  for (size_t i = 0; i < f->tsize; i++) {
    series *s = f->table[i];
    while (s) {
      series *next = s->next;
      free_series(f, s);
      s = next;
    }
  }
  free(f->table);
  free_values(f->labels, f->nlabels);
  free(f->name);
  free(f->help);
  free(f->bounds);
  free(f);
}

void cs_metrics_free(cs_metrics *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->nfams; i++)
    free_family(m->fams[i]);
  free(m->fams);
  free(m->index);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static family *find_family(cs_metrics *m, const char *name)
{
  size_t mask = m->isize - 1;
  size_t i = (size_t)cs_hash_str(name) & mask;
  while (m->index[i]) {
    if (strcmp(m->index[i]->name, name) == 0)
      return m->index[i];
    i = (i + 1) & mask;
  }
  return NULL;
}

static void index_insert(family **index, size_t isize, family *f)
{
  size_t mask = isize - 1;
  size_t i = (size_t)cs_hash_str(f->name) & mask;
  while (index[i])
    i = (i + 1) & mask;
  index[i] = f;
}

static void add_family(cs_metrics *m, family *f)
{
  if (m->nfams == m->afams) {
    m->afams = m->afams ? m->afams * 2 : 16;
    m->fams = cs_realloc(m->fams, m->afams * sizeof(*m->fams));
  }
  m->fams[m->nfams++] = f;
  if (m->nfams * 2 > m->isize) {
    size_t isize = m->isize * 2;
    family **index = cs_calloc(isize, sizeof(*index));
    for (size_t i = 0; i < m->nfams; i++)
      index_insert(index, isize, m->fams[i]);
    free(m->index);
    m->index = index;
    m->isize = isize;
    return;
  }
  index_insert(m->index, m->isize, f);
}

static bool valid_name(const char *s, bool colon)
{
  if (!*s)
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (colon && c == ':') || (p != s && c >= '0' && c <= '9');
    if (!ok)
      return false;
  }
  return true;
}

/* Splits "a,b,c" into names; validates each. */
static cs_err split_labels(const char *labels, cs_metric_kind kind, char ***out,
                           size_t *n)
{
  cs_err rc = CS_OK;
  char **v = NULL;
  size_t count = 0;
  const char *p = labels ? labels : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *name = cs_strndup(p, len);
    v = cs_realloc(v, (count + 1) * sizeof(*v));
    v[count++] = name;
    if (!valid_name(name, false) || strncmp(name, "__", 2) == 0 ||
        (kind == CS_METRIC_HISTOGRAM && strcmp(name, "le") == 0)) {
      rc = CS_EINVAL;
      goto out;
    }
    for (size_t i = 0; i + 1 < count; i++)
      if (strcmp(v[i], name) == 0) {
        rc = CS_EINVAL;
        goto out;
      }
    p += len;
    if (*p == ',') {
      p++;
      if (!*p) { /* trailing comma */
        rc = CS_EINVAL;
        goto out;
      }
    }
  }
out:
  if (rc) {
    free_values(v, count);
    v = NULL;
    count = 0;
  }
  *out = v;
  *n = count;
  return rc;
}

static bool same_shape(const family *f, cs_metric_kind kind, char **labels,
                       size_t nlabels, const double *buckets, size_t nbuckets)
{
  if (f->kind != kind || f->nlabels != nlabels)
    return false;
  for (size_t i = 0; i < nlabels; i++)
    if (strcmp(f->labels[i], labels[i]) != 0)
      return false;
  if (kind != CS_METRIC_HISTOGRAM)
    return true;
  if (f->nbounds != nbuckets)
    return false;
  for (size_t i = 0; i < nbuckets; i++)
    if (f->bounds[i] != buckets[i])
      return false;
  return true;
}

static series *new_series(family *f, char **values, uint64_t hash);

cs_err cs_metrics_declare(cs_metrics *m, const char *name, cs_metric_kind kind,
                          const char *help, const char *labels,
                          const double *buckets, size_t nbuckets)
{
  cs_err rc = CS_OK;
  char **lv = NULL;
  size_t nl = 0;
  if (!m)
    return CS_OK;
  if (!name || !valid_name(name, true) || !help)
    return CS_EINVAL;
  if (kind != CS_METRIC_COUNTER && kind != CS_METRIC_GAUGE &&
      kind != CS_METRIC_HISTOGRAM)
    return CS_EINVAL;
  if (kind == CS_METRIC_HISTOGRAM) {
    if (nbuckets && !buckets)
      return CS_EINVAL;
    for (size_t i = 0; i < nbuckets; i++)
      if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1]))
        return CS_EINVAL;
  } else {
    nbuckets = 0;
  }
  rc = split_labels(labels, kind, &lv, &nl);
  if (rc)
    return rc;

  pthread_mutex_lock(&m->mu);
  family *f = find_family(m, name);
  if (f) {
    rc = same_shape(f, kind, lv, nl, buckets, nbuckets) ? CS_OK : CS_EINVAL;
    free_values(lv, nl);
    goto out;
  }
  f = cs_calloc(1, sizeof(*f));
  f->name = cs_strdup(name);
  f->help = cs_strdup(help);
  f->kind = kind;
  f->labels = lv;
  f->nlabels = nl;
  if (nbuckets) {
    f->bounds = cs_malloc(nbuckets * sizeof(*f->bounds));
    memcpy(f->bounds, buckets, nbuckets * sizeof(*f->bounds));
  }
  f->nbounds = nbuckets;
  f->tsize = 16;
  f->table = cs_calloc(f->tsize, sizeof(*f->table));
  add_family(m, f);
  /* A family without labels has exactly one series: show it from the
   * start (a counter at 0 is information; a missing one is not). */
  if (nl == 0)
    (void)new_series(f, NULL, CS_HASH_INIT);
out:
  pthread_mutex_unlock(&m->mu);
  return rc;
}

/* True when v can be stored as is: valid UTF-8 within the length cap. */
static bool clean_value(const char *v)
{
  size_t n = strlen(v);
  if (n > CS_METRICS_MAX_LABEL_VALUE)
    return false;
  for (size_t i = 0; i < n;) {
    size_t l = cs_utf8_len(v + i, n - i);
    if (!l)
      return false;
    i += l;
  }
  return true;
}

static char *sanitize_value(const char *v)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  size_t n = strlen(v);
  for (size_t i = 0; i < n;) {
    size_t l = cs_utf8_len(v + i, n - i);
    const char *piece = l ? v + i : "\xEF\xBF\xBD";
    size_t plen = l ? l : 3;
    if (b.len + plen > CS_METRICS_MAX_LABEL_VALUE)
      break;
    cs_buf_append(&b, piece, plen);
    i += l ? l : 1;
  }
  return cs_buf_release(&b, NULL);
}

static uint64_t hash_values(const char *const *values, size_t n)
{
  uint64_t h = CS_HASH_INIT;
  for (size_t i = 0; i < n; i++) /* with the NUL, to part the values */
    h = cs_hash_add(h, values[i], strlen(values[i]) + 1);
  return h;
}

static series *new_series(family *f, char **values, uint64_t hash)
{
  series *s = cs_calloc(1, sizeof(*s));
  s->hash = hash;
  s->values = values;
  if (f->kind == CS_METRIC_HISTOGRAM)
    s->buckets = cs_calloc(f->nbounds + 1, sizeof(*s->buckets));
  if (f->nseries + 1 > f->tsize) {
    size_t tsize = f->tsize * 2;
    series **table = cs_calloc(tsize, sizeof(*table));
    for (size_t i = 0; i < f->tsize; i++) {
      series *c = f->table[i];
      while (c) {
        series *next = c->next;
        c->next = table[c->hash & (tsize - 1)];
        table[c->hash & (tsize - 1)] = c;
        c = next;
      }
    }
    free(f->table);
    f->table = table;
    f->tsize = tsize;
  }
  s->next = f->table[hash & (f->tsize - 1)];
  f->table[hash & (f->tsize - 1)] = s;
  f->nseries++;
  return s;
}

static void warn_once(family *f, const char *name, const char *what)
{
  if (f && f->warned)
    return;
  if (f)
    f->warned = true;
  cs_buf *line = cs_log_begin(0, "Metric update dropped");
  cs_json_str(line, "metric", name);
  cs_json_str(line, "err", what);
  cs_log_end(line);
}

/* Finds (or with create, makes) the series; NULL when the update must be
 * dropped or, without create, when there is none. Called with the mutex
 * held. Values that need sanitising are compared in their sanitised form. */
static series *lookup(family *f, const char *const *values, bool create)
{
  const char *const *use = values;
  char **copies = NULL;
  series *found = NULL;
  if (f->nlabels && !values) {
    warn_once(f, f->name, "label values missing");
    return NULL;
  }
  for (size_t i = 0; i < f->nlabels; i++) {
    if (!values[i]) {
      warn_once(f, f->name, "a label value is NULL");
      return NULL;
    }
    if (!copies && !clean_value(values[i])) {
      copies = cs_calloc(f->nlabels, sizeof(*copies));
    }
  }
  if (copies) {
    for (size_t i = 0; i < f->nlabels; i++)
      copies[i] = clean_value(values[i]) ? cs_strdup(values[i])
                                         : sanitize_value(values[i]);
    use = (const char *const *)copies;
  }
  uint64_t h = hash_values(use, f->nlabels);
  for (series *s = f->table[h & (f->tsize - 1)]; s; s = s->next) {
    if (s->hash != h)
      continue;
    size_t i = 0;
    while (i < f->nlabels && strcmp(s->values[i], use[i]) == 0)
      i++;
    if (i == f->nlabels) {
      found = s;
      goto out;
    }
  }
  if (!create)
    goto out;
  if (f->nseries >= CS_METRICS_MAX_SERIES) {
    warn_once(f, f->name, "too many series (CS_METRICS_MAX_SERIES)");
    goto out;
  }
  if (!copies && f->nlabels) {
    copies = cs_malloc(f->nlabels * sizeof(*copies));
    for (size_t i = 0; i < f->nlabels; i++)
      copies[i] = cs_strdup(values[i]);
  }
  found = new_series(f, copies, h);
  copies = NULL;
out:
  free_values(copies, f->nlabels);
  return found;
}

typedef enum op { OP_ADD, OP_SET, OP_OBSERVE } op;

static void update(cs_metrics *m, const char *name, const char *const *values,
                   double v, op o)
{
  if (!m || !name)
    return;
  pthread_mutex_lock(&m->mu);
  family *f = find_family(m, name);
  if (!f) {
    /* No family to remember the warning on: undeclared names are a
     * programming error and show up in the first test that makes one. */
    warn_once(NULL, name, "metric not declared");
    goto out;
  }
  bool ok;
  switch (o) {
  case OP_ADD:
    ok = f->kind == CS_METRIC_GAUGE ||
         (f->kind == CS_METRIC_COUNTER && v >= 0 && !isnan(v));
    break;
  case OP_SET:
    ok = f->kind == CS_METRIC_GAUGE;
    break;
  default:
    ok = f->kind == CS_METRIC_HISTOGRAM && !isnan(v);
  }
  if (!ok) {
    warn_once(f, name, "update does not fit the metric's kind");
    goto out;
  }
  series *s = lookup(f, values, true);
  if (!s)
    goto out;
  switch (o) {
  case OP_ADD:
    s->value += v;
    break;
  case OP_SET:
    s->value = v;
    break;
  default: {
    /* Binary search for the first bound >= v (le is inclusive). */
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (f->bounds[mid] >= v)
        hi = mid;
      else
        lo = mid + 1;
    }
    s->buckets[lo]++;
    s->sum += v;
    s->count++;
  }
  }
out:
  pthread_mutex_unlock(&m->mu);
}

void cs_metrics_add(cs_metrics *m, const char *name,
                    const char *const *label_values, double delta)
{
  update(m, name, label_values, delta, OP_ADD);
}

void cs_metrics_set(cs_metrics *m, const char *name,
                    const char *const *label_values, double value)
{
  update(m, name, label_values, value, OP_SET);
}

void cs_metrics_observe(cs_metrics *m, const char *name,
                        const char *const *label_values, double value)
{
  update(m, name, label_values, value, OP_OBSERVE);
}

void cs_metrics_remove(cs_metrics *m, const char *name,
                       const char *const *label_values)
{
  if (!m || !name)
    return;
  pthread_mutex_lock(&m->mu);
  family *f = find_family(m, name);
  series *s = f ? lookup(f, label_values, false) : NULL;
  if (s) {
    series **pp = &f->table[s->hash & (f->tsize - 1)];
    while (*pp != s)
      pp = &(*pp)->next;
    *pp = s->next;
    f->nseries--;
    free_series(f, s);
  }
  pthread_mutex_unlock(&m->mu);
}

/* Unlinks every series of f whose first nkey label values are `key`, except
 * `keep`. Stored values are sanitised, so a key that is not clean UTF-8
 * matches nothing (such a series is left in place, never wrongly
 * removed). */
static void remove_siblings(family *f, const char *const *key, size_t nkey,
                            const series *keep)
{
  for (size_t b = 0; b < f->tsize; b++) {
    series **pp = &f->table[b];
    while (*pp) {
      series *s = *pp;
      size_t i = 0;
      while (i < nkey && strcmp(s->values[i], key[i]) == 0)
        i++;
      if (s == keep || i < nkey) {
        pp = &s->next;
        continue;
      }
      *pp = s->next;
      f->nseries--;
      free_series(f, s);
    }
  }
}

void cs_metrics_set_replacing(cs_metrics *m, const char *name,
                              const char *const *label_values, size_t nkey,
                              bool present, double value)
{
  if (!m || !name || !label_values)
    return;
  pthread_mutex_lock(&m->mu);
  family *f = find_family(m, name);
  if (f && f->kind == CS_METRIC_GAUGE && nkey <= f->nlabels) {
    series *s = present ? lookup(f, label_values, true) : NULL;
    if (s)
      s->value = value;
    remove_siblings(f, label_values, nkey, s);
  } else if (f) {
    warn_once(f, name, "replacing set on a family that is not a gauge");
  }
  pthread_mutex_unlock(&m->mu);
}

cs_err cs_metrics_get(cs_metrics *m, const char *name,
                      const char *const *label_values, double *out)
{
  cs_err rc = CS_ENOTFOUND;
  if (!m || !name)
    return CS_ENOTFOUND;
  pthread_mutex_lock(&m->mu);
  family *f = find_family(m, name);
  series *s = f ? lookup(f, label_values, false) : NULL;
  if (s) {
    *out = f->kind == CS_METRIC_HISTOGRAM ? (double)s->count : s->value;
    rc = CS_OK;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

cs_err cs_metrics_build_info(cs_metrics *m, const char *version)
{
  cs_err rc = cs_metrics_declare(
      m, "carbonshift_build_info", CS_METRIC_GAUGE,
      "Always 1; the labels name the build of the running binary.",
      "version,compiler", NULL, 0);
  if (rc)
    return rc;
#ifdef __VERSION__
  const char *compiler = __VERSION__;
#else
  const char *compiler = "unknown";
#endif
  const char *values[] = {version ? version : "unknown", compiler};
  cs_metrics_set(m, "carbonshift_build_info", values, 1);
  return CS_OK;
}

/* Shortest of %.15g and %.17g that reads back exactly; Prometheus' spellings
 * for the non-finite values. */
static void put_number(cs_buf *b, double v)
{
  if (isnan(v)) {
    cs_buf_puts(b, "NaN");
    return;
  }
  if (isinf(v)) {
    cs_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char s[40];
  snprintf(s, sizeof(s), "%.15g", v);
  if (strtod(s, NULL) != v)
    snprintf(s, sizeof(s), "%.17g", v);
  cs_buf_puts(b, s);
}

static void put_escaped(cs_buf *b, const char *s, bool quote)
{
  const char *run = s;
  for (const char *p = s; *p; p++) {
    const char *esc = NULL;
    if (*p == '\\')
      esc = "\\\\";
    else if (*p == '\n')
      esc = "\\n";
    else if (*p == '"' && quote)
      esc = "\\\"";
    if (!esc)
      continue;
    cs_buf_append(b, run, (size_t)(p - run));
    cs_buf_puts(b, esc);
    run = p + 1;
  }
  cs_buf_puts(b, run);
}

/* Writes {a="x",b="y"[,le="..."]} or nothing when there are no labels. */
static void put_labels(cs_buf *b, const family *f, const series *s,
                       const double *le)
{
  if (!f->nlabels && !le)
    return;
  cs_buf_putc(b, '{');
  for (size_t i = 0; i < f->nlabels; i++) {
    if (i)
      cs_buf_putc(b, ',');
    cs_buf_puts(b, f->labels[i]);
    cs_buf_puts(b, "=\"");
    put_escaped(b, s->values[i], true);
    cs_buf_putc(b, '"');
  }
  if (le) {
    if (f->nlabels)
      cs_buf_putc(b, ',');
    cs_buf_puts(b, "le=\"");
    put_number(b, *le);
    cs_buf_putc(b, '"');
  }
  cs_buf_putc(b, '}');
}

static size_t sort_nlabels; /* guarded by the registry mutex */

static int cmp_series(const void *a, const void *b)
{
  const series *x = *(series *const *)a, *y = *(series *const *)b;
  for (size_t i = 0; i < sort_nlabels; i++) {
    int c = strcmp(x->values[i], y->values[i]);
    if (c)
      return c;
  }
  return 0;
}

static void render_family(cs_buf *out, family *f)
{
  static const char *const kinds[] = {"counter", "gauge", "histogram"};
  cs_buf_puts(out, "# HELP ");
  cs_buf_puts(out, f->name);
  cs_buf_putc(out, ' ');
  put_escaped(out, f->help, false);
  cs_buf_puts(out, "\n# TYPE ");
  cs_buf_puts(out, f->name);
  cs_buf_putc(out, ' ');
  cs_buf_puts(out, kinds[f->kind]);
  cs_buf_putc(out, '\n');
  if (!f->nseries)
    return;
  series **all = cs_malloc(f->nseries * sizeof(*all));
  size_t n = 0;
  for (size_t i = 0; i < f->tsize; i++)
    for (series *s = f->table[i]; s; s = s->next)
      all[n++] = s;
  sort_nlabels = f->nlabels;
  qsort(all, n, sizeof(*all), cmp_series);
  for (size_t i = 0; i < n; i++) {
    series *s = all[i];
    if (f->kind != CS_METRIC_HISTOGRAM) {
      cs_buf_puts(out, f->name);
      put_labels(out, f, s, NULL);
      cs_buf_putc(out, ' ');
      put_number(out, s->value);
      cs_buf_putc(out, '\n');
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t k = 0; k <= f->nbounds; k++) {
      double le = k < f->nbounds ? f->bounds[k] : INFINITY;
      cumulative += s->buckets[k];
      cs_buf_puts(out, f->name);
      cs_buf_puts(out, "_bucket");
      put_labels(out, f, s, &le);
      cs_buf_printf(out, " %llu\n", (unsigned long long)cumulative);
    }
    cs_buf_puts(out, f->name);
    cs_buf_puts(out, "_sum");
    put_labels(out, f, s, NULL);
    cs_buf_putc(out, ' ');
    put_number(out, s->sum);
    cs_buf_putc(out, '\n');
    cs_buf_puts(out, f->name);
    cs_buf_puts(out, "_count");
    put_labels(out, f, s, NULL);
    cs_buf_printf(out, " %llu\n", (unsigned long long)s->count);
  }
  free(all);
}

void cs_metrics_render(cs_metrics *m, cs_buf *out)
{
  if (!m)
    return;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->nfams; i++)
    render_family(out, m->fams[i]);
  pthread_mutex_unlock(&m->mu);
}
