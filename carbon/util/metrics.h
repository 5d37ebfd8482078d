/* metrics.h: a small Prometheus registry: counters, gauges and histograms in
 * labelled families, rendered in the text exposition format 0.0.4 for
 * GET /metrics. Families are declared once at start-up; updates look up the
 * series by label values (a hash lookup under one mutex) and create it on
 * first use.
 * Thread-safe: yes; every call may come from any thread.
 * Ownership: the registry copies names, help texts and label values; a NULL
 * registry makes every update a no-op (for tools and tests). */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/buf.h"
#include "carbon/util/error.h"

typedef enum cs_metric_kind {
  CS_METRIC_COUNTER,
  CS_METRIC_GAUGE,
  CS_METRIC_HISTOGRAM
} cs_metric_kind;

/* Series per family are capped (label values can come from the network);
 * updates that would create more are dropped and logged once. */
#define CS_METRICS_MAX_SERIES 10000
/* Label values longer than this are truncated (at a UTF-8 boundary). */
#define CS_METRICS_MAX_LABEL_VALUE 256

typedef struct cs_metrics cs_metrics;

cs_metrics *cs_metrics_new(void);
void cs_metrics_free(cs_metrics *m);

/* Declares a family. `labels` is a comma-separated list of label names
 * ("verb,code"), or "" for none. Histograms take their upper bucket bounds
 * in strictly increasing order, finite (+Inf is implicit). Declaring the
 * same name twice with the same shape is allowed and does nothing; with a
 * different shape it is CS_EINVAL. Names follow Prometheus' rules
 * ([a-zA-Z_:][a-zA-Z0-9_:]*; label names without ':' and not "__..."; no
 * "le" label on a histogram). */
cs_err cs_metrics_declare(cs_metrics *m, const char *name, cs_metric_kind kind,
                          const char *help, const char *labels,
                          const double *buckets, size_t nbuckets) CS_MUST_USE;

/* Label values are given in the declared order, as many as declared (NULL
 * when the family has no labels). An update of an undeclared family, of the
 * wrong kind (observe on a counter, a negative counter delta, set on a
 * counter) or with a NULL label value is dropped and logged once per
 * family. Invalid UTF-8 in label values is replaced by U+FFFD. */
void cs_metrics_add(cs_metrics *m, const char *name,
                    const char *const *label_values, double delta);
void cs_metrics_set(cs_metrics *m, const char *name,
                    const char *const *label_values, double value);
void cs_metrics_observe(cs_metrics *m, const char *name,
                        const char *const *label_values, double value);
/* Removes one series (a gauge for a zone no longer served, say). */
void cs_metrics_remove(cs_metrics *m, const char *name,
                       const char *const *label_values);

/* For a gauge that describes one thing under labels that change (the zone
 * intensity, labelled by the provider now serving it): sets the series
 * `label_values` to `value` and removes every other series whose first
 * `nkey` label values are the same. With !present, removes them all, so a
 * zone that is no longer known shows no number rather than an old one. */
void cs_metrics_set_replacing(cs_metrics *m, const char *name,
                              const char *const *label_values, size_t nkey,
                              bool present, double value);

/* Reads one series: the value of a counter or gauge, the observation count
 * of a histogram. CS_ENOTFOUND when the family or series does not exist. */
cs_err cs_metrics_get(cs_metrics *m, const char *name,
                      const char *const *label_values, double *out) CS_MUST_USE;

/* Declares and sets carbonshift_build_info{version,compiler} = 1. */
cs_err cs_metrics_build_info(cs_metrics *m, const char *version) CS_MUST_USE;

/* Appends the whole registry in the Prometheus text format: families in
 * declaration order, series sorted by label values. */
void cs_metrics_render(cs_metrics *m, cs_buf *out);

#endif
