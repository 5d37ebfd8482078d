#include "tests/unit/prom_testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"

static bool name_char(char c, bool first)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c == ':' || (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p. */
static char *read_name(const char **p, const char *end)
{
  const char *s = *p;
  while (*p < end && name_char(**p, *p == s))
    (*p)++;
  return *p > s ? cs_strndup(s, (size_t)(*p - s)) : NULL;
}

static bool read_number(const char **p, const char *end, double *out)
{
  const char *s = *p;
  while (*p < end && **p != ' ' && **p != '\n')
    (*p)++;
  size_t n = (size_t)(*p - s);
  char tmp[64];
  if (n == 0 || n >= sizeof(tmp))
    return false;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  if (strcmp(tmp, "+Inf") == 0) {
    *out = INFINITY;
    return true;
  }
  if (strcmp(tmp, "-Inf") == 0) {
    *out = -INFINITY;
    return true;
  }
  if (strcmp(tmp, "NaN") == 0) {
    *out = NAN;
    return true;
  }
  char *e;
  *out = strtod(tmp, &e);
  return *e == '\0' && tmp[0] != ' ';
}

static tu_prom_family *family_of(tu_prom *p, const char *name)
{
  for (size_t i = 0; i < p->nfams; i++)
    if (strcmp(p->fams[i].name, name) == 0)
      return &p->fams[i];
  return NULL;
}

const tu_prom_family *tu_prom_family_get(const tu_prom *p, const char *name)
{
  return family_of((tu_prom *)p, name);
}

/* The family a sample name belongs to, considering histogram suffixes. */
static tu_prom_family *sample_family(tu_prom *p, const char *name)
{
  tu_prom_family *f = family_of(p, name);
  if (f && strcmp(f->type, "histogram") != 0)
    return f;
  static const char *const sfx[] = {"_bucket", "_sum", "_count"};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(name), k = strlen(sfx[i]);
    if (n <= k || strcmp(name + n - k, sfx[i]) != 0)
      continue;
    char *base = cs_strndup(name, n - k);
    f = family_of(p, base);
    free(base);
    if (f && strcmp(f->type, "histogram") == 0)
      return f;
  }
  return NULL;
}

static char *unescape(const char **p, const char *end, bool quoted)
{
  char *out = cs_malloc((size_t)(end - *p) + 1);
  size_t n = 0;
  while (*p < end) {
    char c = **p;
    if (quoted && c == '"')
      break;
    if (!quoted && c == '\n')
      break;
    if (quoted && c == '\n')
      goto bad;
    if (c == '\\') {
      if (*p + 1 >= end)
        goto bad;
      char e = (*p)[1];
      if (e == 'n')
        out[n++] = '\n';
      else if (e == '\\')
        out[n++] = '\\';
      else if (e == '"' && quoted)
        out[n++] = '"';
      else
        goto bad;
      *p += 2;
      continue;
    }
    out[n++] = c;
    (*p)++;
  }
  out[n] = '\0';
  return out;
bad:
  free(out);
  return NULL;
}

static void set_err(char *err, size_t errlen, int line, const char *what)
{
  if (err)
    snprintf(err, errlen, "line %d: %s", line, what);
}

static bool labels_equal_except_le(const tu_prom_sample *a,
                                   const tu_prom_sample *b)
{
  size_t na = 0, nb = 0;
  for (size_t i = 0; i < a->nlabels; i++) {
    if (strcmp(a->lnames[i], "le") == 0)
      continue;
    na++;
    bool found = false;
    for (size_t j = 0; j < b->nlabels; j++)
      if (strcmp(a->lnames[i], b->lnames[j]) == 0 &&
          strcmp(a->lvalues[i], b->lvalues[j]) == 0)
        found = true;
    if (!found)
      return false;
  }
  for (size_t j = 0; j < b->nlabels; j++)
    if (strcmp(b->lnames[j], "le") != 0)
      nb++;
  return na == nb;
}

static const char *label(const tu_prom_sample *s, const char *name)
{
  for (size_t i = 0; i < s->nlabels; i++)
    if (strcmp(s->lnames[i], name) == 0)
      return s->lvalues[i];
  return NULL;
}

/* Checks each histogram series: cumulative buckets, +Inf last, = _count. */
static const char *check_histograms(const tu_prom *p)
{
  for (size_t i = 0; i < p->nsamples; i++) {
    const tu_prom_sample *c = &p->samples[i];
    size_t n = strlen(c->name);
    if (n < 6 || strcmp(c->name + n - 6, "_count") != 0)
      continue;
    char *base = cs_strndup(c->name, n - 6);
    const tu_prom_family *f = family_of((tu_prom *)p, base);
    if (!f || strcmp(f->type, "histogram") != 0) {
      free(base);
      continue;
    }
    char *bucket = cs_asprintf("%s_bucket", base);
    free(base);
    double prev_le = -INFINITY, prev = 0, inf = -1;
    const char *problem = NULL;
    for (size_t j = 0; j < p->nsamples && !problem; j++) {
      const tu_prom_sample *b = &p->samples[j];
      if (strcmp(b->name, bucket) != 0 || !labels_equal_except_le(b, c))
        continue;
      const char *le = label(b, "le");
      double lev;
      const char *q = le;
      if (!le || !read_number(&q, le + strlen(le), &lev))
        problem = "bucket without a valid le";
      else if (lev <= prev_le)
        problem = "bucket le not increasing";
      else if (b->value < prev)
        problem = "buckets not cumulative";
      else {
        prev_le = lev;
        prev = b->value;
        if (isinf(lev))
          inf = b->value;
      }
    }
    free(bucket);
    if (problem)
      return problem;
    if (inf < 0)
      return "histogram series without a +Inf bucket";
    if (inf != c->value)
      return "+Inf bucket differs from _count";
  }
  return NULL;
}

bool tu_prom_parse(const char *text, size_t len, tu_prom *out, char *err,
                   size_t errlen)
{
  memset(out, 0, sizeof(*out));
  const char *p = text, *end = text + len;
  int line = 0;
  if (len && text[len - 1] != '\n') {
    set_err(err, errlen, 0, "text does not end with a newline");
    return false;
  }
  while (p < end) {
    line++;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == p) {
      p++;
      continue;
    }
    if (*p == '#') {
      const char *q = p + 1;
      bool help = false, type = false;
      if ((size_t)(eol - q) > 6 && memcmp(q, " HELP ", 6) == 0)
        help = true;
      else if ((size_t)(eol - q) > 6 && memcmp(q, " TYPE ", 6) == 0)
        type = true;
      if (!help && !type) {
        p = eol + 1;
        continue;
      }
      q += 6;
      char *name = read_name(&q, eol);
      if (!name || q >= eol || *q != ' ') {
        free(name);
        set_err(err, errlen, line, "bad HELP/TYPE line");
        goto fail;
      }
      q++;
      tu_prom_family *f = family_of(out, name);
      if (!f) {
        out->fams = cs_realloc(out->fams, (out->nfams + 1) * sizeof(*f));
        f = &out->fams[out->nfams++];
        memset(f, 0, sizeof(*f));
        f->name = name;
      } else {
        free(name);
      }
      if (help) {
        if (f->help) {
          set_err(err, errlen, line, "HELP given twice");
          goto fail;
        }
        f->help = unescape(&q, eol, false);
        if (!f->help) {
          set_err(err, errlen, line, "bad escape in HELP");
          goto fail;
        }
      } else {
        if (f->type) {
          set_err(err, errlen, line, "TYPE given twice");
          goto fail;
        }
        f->type = cs_strndup(q, (size_t)(eol - q));
        if (strcmp(f->type, "counter") && strcmp(f->type, "gauge") &&
            strcmp(f->type, "histogram") && strcmp(f->type, "summary") &&
            strcmp(f->type, "untyped")) {
          set_err(err, errlen, line, "unknown TYPE");
          goto fail;
        }
      }
      p = eol + 1;
      continue;
    }
    out->samples =
        cs_realloc(out->samples, (out->nsamples + 1) * sizeof(*out->samples));
    tu_prom_sample *s = &out->samples[out->nsamples++];
    memset(s, 0, sizeof(*s));
    const char *q = p;
    s->name = read_name(&q, eol);
    if (!s->name) {
      set_err(err, errlen, line, "bad metric name");
      goto fail;
    }
    if (!sample_family(out, s->name)) {
      set_err(err, errlen, line, "sample before (or without) its TYPE");
      goto fail;
    }
    if (q < eol && *q == '{') {
      q++;
      while (q < eol && *q != '}') {
        if (s->nlabels == TU_PROM_MAX_LABELS) {
          set_err(err, errlen, line, "too many labels");
          goto fail;
        }
        char *ln = read_name(&q, eol);
        if (!ln || q + 1 >= eol || q[0] != '=' || q[1] != '"') {
          free(ln);
          set_err(err, errlen, line, "bad label");
          goto fail;
        }
        q += 2;
        s->lnames[s->nlabels] = ln;
        char *lv = unescape(&q, eol, true);
        if (!lv || q >= eol || *q != '"') {
          free(lv);
          s->lvalues[s->nlabels++] = NULL;
          set_err(err, errlen, line, "bad label value");
          goto fail;
        }
        s->lvalues[s->nlabels++] = lv;
        q++;
        if (q < eol && *q == ',')
          q++;
      }
      if (q >= eol) {
        set_err(err, errlen, line, "unterminated labels");
        goto fail;
      }
      q++;
    }
    if (q >= eol || *q != ' ') {
      set_err(err, errlen, line, "no value");
      goto fail;
    }
    q++;
    if (!read_number(&q, eol, &s->value)) {
      set_err(err, errlen, line, "bad value");
      goto fail;
    }
    if (q != eol) {
      set_err(err, errlen, line, "trailing bytes after the value");
      goto fail;
    }
    p = eol + 1;
  }
  const char *problem = check_histograms(out);
  if (problem) {
    set_err(err, errlen, 0, problem);
    goto fail;
  }
  return true;
fail:
  tu_prom_free(out);
  return false;
}

void tu_prom_free(tu_prom *p)
{
  for (size_t i = 0; i < p->nsamples; i++) {
    free(p->samples[i].name);
    for (size_t j = 0; j < p->samples[i].nlabels; j++) {
      free(p->samples[i].lnames[j]);
      free(p->samples[i].lvalues[j]);
    }
  }
  for (size_t i = 0; i < p->nfams; i++) {
    free(p->fams[i].name);
    free(p->fams[i].type);
    free(p->fams[i].help);
  }
  free(p->samples);
  free(p->fams);
  memset(p, 0, sizeof(*p));
}

bool tu_prom_get(const tu_prom *p, double *out, const char *name, ...)
{
  const char *names[TU_PROM_MAX_LABELS], *values[TU_PROM_MAX_LABELS];
  size_t n = 0;
  va_list ap;
  va_start(ap, name);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k || n == TU_PROM_MAX_LABELS)
      break;
    names[n] = k;
    values[n++] = va_arg(ap, const char *);
  }
  va_end(ap);
  for (size_t i = 0; i < p->nsamples; i++) {
    const tu_prom_sample *s = &p->samples[i];
    if (strcmp(s->name, name) != 0 || s->nlabels != n)
      continue;
    size_t matched = 0;
    for (size_t k = 0; k < n; k++) {
      const char *v = label(s, names[k]);
      if (v && strcmp(v, values[k]) == 0)
        matched++;
    }
    if (matched == n) {
      *out = s->value;
      return true;
    }
  }
  return false;
}
