/* prom_testutil.h: a strict parser of the Prometheus text format 0.0.4 for
 * tests that read GET /metrics or cs_metrics_render output back.
 * Thread-safe: no shared state; one tu_prom per thread.
 * Ownership: tu_prom owns its samples until tu_prom_free. */
#ifndef TU_PROM_TESTUTIL_H
#define TU_PROM_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#define TU_PROM_MAX_LABELS 8

typedef struct tu_prom_sample {
  char *name;
  size_t nlabels;
  char *lnames[TU_PROM_MAX_LABELS];
  char *lvalues[TU_PROM_MAX_LABELS]; /* unescaped */
  double value;
} tu_prom_sample;

typedef struct tu_prom_family {
  char *name;
  char *type; /* "counter", "gauge", "histogram", ... */
  char *help; /* unescaped */
} tu_prom_family;

typedef struct tu_prom {
  tu_prom_sample *samples;
  size_t nsamples;
  tu_prom_family *fams;
  size_t nfams;
} tu_prom;

/* Parses the whole text. Every line must be well-formed, every sample must
 * belong to a family announced by a TYPE line before it (histogram samples
 * by their _bucket/_sum/_count names), no family announced twice, and for
 * each histogram series the buckets must be cumulative, end with +Inf and
 * equal _count. On failure, writes the line number and problem to err. */
bool tu_prom_parse(const char *text, size_t len, tu_prom *out, char *err,
                   size_t errlen);
void tu_prom_free(tu_prom *p);

/* Finds the sample `name` whose labels are exactly the NULL-terminated list
 * of (label name, value) pairs that follows. */
bool tu_prom_get(const tu_prom *p, double *out, const char *name, ...);
const tu_prom_family *tu_prom_family_get(const tu_prom *p, const char *name);

#endif
