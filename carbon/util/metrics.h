/* metrics.h: a small Prometheus registry: counters, gauges and histograms in
 * labelled families, rendered in the text exposition format 0.0.4 for
 * GET /metrics. Families are declared once at start-up; updates look up the
 * series by label values and create it on first use.
 * Thread-safe: yes; every call may come from any thread.
 * Ownership: the registry copies names, help texts and label values; a NULL
 * registry makes every update a no-op (for tools and tests). */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stddef.h>

#include "carbon/util/buf.h"
#include "carbon/util/error.h"

typedef enum cs_metric_kind {
  CS_METRIC_COUNTER,
  CS_METRIC_GAUGE,
  CS_METRIC_HISTOGRAM
} cs_metric_kind;

typedef struct cs_metrics cs_metrics;

cs_metrics *cs_metrics_new(void);
void cs_metrics_free(cs_metrics *m);

/* Declares a family. `labels` is a comma-separated list of label names
 * ("verb,code"), or "" for none. Histograms take their upper bucket bounds
 * in increasing order (+Inf is implicit). Declaring the same name twice with
 * the same shape is allowed and does nothing. */
cs_err cs_metrics_declare(cs_metrics *m, const char *name, cs_metric_kind kind,
                          const char *help, const char *labels,
                          const double *buckets, size_t nbuckets) CS_MUST_USE;

/* Label values are given in the declared order, as many as declared. An
 * update of an undeclared family or with the wrong arity is dropped and
 * logged once. */
void cs_metrics_add(cs_metrics *m, const char *name,
                    const char *const *label_values, double delta);
void cs_metrics_set(cs_metrics *m, const char *name,
                    const char *const *label_values, double value);
void cs_metrics_observe(cs_metrics *m, const char *name,
                        const char *const *label_values, double value);
/* Removes one series (a gauge for a zone no longer served, say). */
void cs_metrics_remove(cs_metrics *m, const char *name,
                       const char *const *label_values);

/* Appends the whole registry in the Prometheus text format. */
void cs_metrics_render(cs_metrics *m, cs_buf *out);

#endif
