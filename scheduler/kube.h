/* kube.h: a small Kubernetes API client: connects in-cluster or through a
 * kubeconfig, watches Nodes (list, watch, bookmarks, backoff, relist on 410)
 * into a sink, patches Pod annotations and emits events.k8s.io/v1 Events.
 * Thread-safe: yes; the watch and the sender of Events and queued patches
 * run on their own threads, every call may come from any thread.
 * Ownership: the config and its strings are borrowed for the duration of
 * cs_kube_new (the client copies what it keeps, except `metrics` and the
 * sink's ctx, which must outlive the client); cJSON passed to sinks is
 * borrowed for the duration of the callback. */
#ifndef CS_KUBE_H
#define CS_KUBE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/error.h"
#include "carbon/util/http.h"
#include "carbon/util/metrics.h"

typedef struct cs_kube cs_kube;

/* How the client finds the API server (the values of kube.mode). */
typedef enum cs_kube_mode {
  CS_KUBE_AUTO = 0,   /* resolved by cs_kube_choose_mode */
  CS_KUBE_IN_CLUSTER, /* the Pod's service account */
  CS_KUBE_KUBECONFIG, /* the file named by `kubeconfig`, which must be set */
  CS_KUBE_OFF         /* no API server; cs_kube_new refuses it */
} cs_kube_mode;

/* Resolves CS_KUBE_AUTO: CS_KUBE_KUBECONFIG when `kubeconfig` (a path) is
 * set and not empty, as in client-go, where an explicit kubeconfig beats
 * the in-cluster configuration; else CS_KUBE_IN_CLUSTER when
 * `service_host` (the value of KUBERNETES_SERVICE_HOST) is set and not
 * empty; else CS_KUBE_OFF. Other modes are returned as they are.
 * $KUBECONFIG and ~/.kube/config are never consulted: a scheduler
 * extender must not quietly connect to whatever cluster the shell that
 * started it points at. Pure: reads no environment itself. */
cs_kube_mode cs_kube_choose_mode(cs_kube_mode mode, const char *kubeconfig,
                                 const char *service_host);

#define CS_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct cs_kube_config {
  cs_kube_mode mode;
  const char *kubeconfig; /* path; needed by KUBECONFIG, first for AUTO */
  const char *context;    /* NULL or "": the current-context */
  const char *sa_dir;     /* in-cluster files (token, ca.crt, namespace) */
  /* Replaces the server URL found in-cluster or in the kubeconfig (tests,
   * or a local proxy); NULL: none. */
  const char *server;
  double request_timeout_s; /* patch, Event (10); list pages: 6 times */
  int watch_timeout_s;      /* timeoutSeconds asked of the server (300) */
  int watch_idle_s; /* a watch silent this long is renewed (150; 0: never) */
  double backoff_initial_s; /* watch/list retry backoff start (1) */
  double backoff_max_s;     /* and cap (30); each delay is jittered */
  int list_page_size;       /* `limit` of each list page (250) */
  size_t max_line_bytes;    /* cap on one watch event line (4 MiB) */
  size_t max_body_bytes;    /* cap on one response body (64 MiB) */
  /* false: cs_kube_emit_event does nothing; queued patches are still sent */
  bool events_enabled;
  size_t event_queue_cap;      /* pending Events and patches; more drop (256) */
  double event_dedup_window_s; /* same pod+reason+note not re-sent (600) */
  double event_min_interval_s; /* per pod+reason, any note (30) */
  size_t event_dedup_cap;      /* entries remembered for dedup (4096) */
  /* After an Event or patch failed in a way that may pass (429, 5xx, no
   * answer), the next items get one try each for this long (30). */
  double send_outage_s;
  const char *reporting_instance; /* NULL: the host name */
  cs_metrics *metrics;            /* NULL: no metrics */
} cs_kube_config;

/* Fills *c with the defaults above. */
void cs_kube_config_defaults(cs_kube_config *c);

/* Resolves the configuration (reads the kubeconfig or the service-account
 * files) and starts the sender of Events and queued patches (always, even
 * with events_enabled false). On failure *out is NULL and err (if
 * errcap > 0) names the file, the key and what was expected. */
cs_err cs_kube_new(const cs_kube_config *cfg, cs_kube **out, char *err,
                   size_t errcap) CS_MUST_USE;
/* Resolves the configuration as cs_kube_new does and lets it go: the
 * kubeconfig (or the service-account files) is read and checked, nothing
 * is started or sent. The same errors as cs_kube_new. */
cs_err cs_kube_check(const cs_kube_config *cfg, char *err,
                     size_t errcap) CS_MUST_USE;
/* Stops the watch and the sender. Queued Events and patches get half a
 * second to go out first; what is left is dropped, counted and logged. */
void cs_kube_free(cs_kube *k);

typedef enum cs_kube_auth {
  CS_KUBE_AUTH_NONE = 0,
  CS_KUBE_AUTH_TOKEN,      /* a literal token */
  CS_KUBE_AUTH_TOKEN_FILE, /* re-read when it changes and after a 401 */
  CS_KUBE_AUTH_CLIENT_CERT
} cs_kube_auth;

/* What the client resolved, for logs and tests (never the secrets). */
typedef struct cs_kube_info {
  char server[CS_HTTP_URL_MAX + 1]; /* whole: the kubeconfig's is checked */
  char ns[254];      /* default namespace ("default" when none given) */
  char context[254]; /* "" in-cluster */
  bool in_cluster;
  cs_kube_auth auth;
  bool insecure; /* insecure-skip-tls-verify */
  bool has_ca;   /* a CA bundle (file or data) is configured */
} cs_kube_info;

void cs_kube_get_info(const cs_kube *k, cs_kube_info *out);

/* Where the Node watch delivers what it learns. Called on the watch thread
 * only, one call at a time. A relist calls relist_begin, upsert for every
 * listed Node, then relist_end, which drops Nodes not upserted since
 * relist_begin and marks the view synced; a relist that fails midway is
 * started again from relist_begin. */
typedef struct cs_kube_node_sink {
  void *ctx;
  void (*relist_begin)(void *ctx);
  cs_err (*upsert)(void *ctx, const cJSON *node); /* a full v1.Node */
  void (*remove)(void *ctx, const char *name);
  void (*relist_end)(void *ctx);
} cs_kube_node_sink;

/* Starts the Node watch thread (once per client; CS_EBUSY if running). The
 * sink is copied; its ctx must outlive the client. cs_kube_free stops it. */
cs_err cs_kube_start_node_watch(cs_kube *k,
                                const cs_kube_node_sink *sink) CS_MUST_USE;

/* Feeds a watch response body (status 200) to the decoder the watch thread
 * runs, in pieces of `chunk` bytes as the network may cut it (0: at once):
 * events go to `sink`, resourceVersions and counters to the client. For
 * tests and the fuzz target; CS_EBUSY while the watch thread runs. CS_OK
 * when the body was taken whole (a last line without its newline is
 * dropped, as when a connection ends); CS_EPARSE at a malformed event,
 * CS_ETOOBIG at a line over max_line_bytes, CS_EHTTP at an ERROR event (410
 * Gone included), with err saying which. */
cs_err cs_kube_watch_feed(cs_kube *k, const cs_kube_node_sink *sink,
                          const char *body, size_t len, size_t chunk, char *err,
                          size_t errcap) CS_MUST_USE;

/* Feeds one NodeList page (a list response body) to the code the watch
 * thread runs for each page: relist_begin when `first`, then upsert per
 * item; *cont gets the continue token (the caller frees it) or NULL after
 * the last page, which also sets the client's resourceVersion. For tests
 * and the fuzz target; CS_EBUSY while the watch thread runs, CS_EPARSE (err
 * says why) for a body that is not a NodeList. */
cs_err cs_kube_list_feed(cs_kube *k, const cs_kube_node_sink *sink,
                         const char *body, size_t len, bool first, char **cont,
                         char *err, size_t errcap) CS_MUST_USE;

/* Merge-patches metadata.annotations of a Pod: keys[i] = values[i], or
 * removes keys[i] when values[i] is NULL. With a `uid` (NULL or "": none)
 * the patch names it too, so that the API server refuses it for another
 * Pod of the same name (deleted and created again meanwhile) instead of
 * giving that one this one's plan. Blocks for at most the request
 * timeout. CS_ENOTFOUND: no such Pod; CS_EAUTH: refused (401/403);
 * CS_EHTTP: another HTTP error (409 or 422 for another uid); CS_EIO: no
 * answer. */
cs_err cs_kube_patch_pod_annotations(cs_kube *k, const char *ns,
                                     const char *name, const char *uid,
                                     const char *const *keys,
                                     const char *const *values,
                                     size_t n) CS_MUST_USE;
/* The same, queued for the worker that sends Events (which runs whether or
 * not Events are enabled, sharing their queue): returns at once, never
 * waits on the API server. CS_EBUSY when the queue is full (dropped and
 * counted as patches_dropped). */
cs_err cs_kube_patch_pod_annotations_async(cs_kube *k, const char *ns,
                                           const char *name, const char *uid,
                                           const char *const *keys,
                                           const char *const *values,
                                           size_t n) CS_MUST_USE;

/* An Event about a Pod. Strings are borrowed for the call. */
typedef struct cs_kube_event {
  const char *ns, *pod, *uid; /* uid may be NULL or "" */
  const char *reason;         /* CarbonDeferred, CarbonBudgetExceeded, ... */
  const char *action;         /* machine-readable, e.g. Defer, Filter */
  const char *note;           /* human-readable, cut to 1 kB */
  bool warning;               /* type Warning instead of Normal */
} cs_kube_event;

/* Queues an Event for the sender thread and returns at once. CS_OK when
 * queued, or suppressed as a duplicate (same pod and reason with the same
 * note within the dedup window, or any note within the minimum interval),
 * or when Events are disabled; CS_EBUSY when the queue is full (the Event is
 * dropped and counted); CS_EINVAL when a required field is missing. */
cs_err cs_kube_emit_event(cs_kube *k, const cs_kube_event *ev) CS_MUST_USE;

/* The longest resourceVersion the client keeps. The value is opaque (an
 * etcd revision, 20 digits at most, in practice); a longer one is refused
 * as a malformed answer rather than cut, which would resume the watch
 * from some other version. */
#define CS_KUBE_RV_MAX 63

/* Counters since cs_kube_new (the same numbers feed the metrics). */
typedef struct cs_kube_stats {
  uint64_t lists;          /* complete Node lists (initial and relists) */
  uint64_t relists_gone;   /* relists caused by 410 Gone */
  uint64_t watch_restarts; /* watches that ended other than by timeout */
  uint64_t watch_events;   /* ADDED/MODIFIED/DELETED applied */
  uint64_t bookmarks;
  uint64_t token_reloads;
  uint64_t events_sent, events_failed, events_dropped, events_suppressed;
  uint64_t patches_sent, patches_failed, patches_dropped; /* both forms */
  uint64_t requests_ok, requests_failed;
  char resource_version[CS_KUBE_RV_MAX + 1]; /* where the watch stands */
} cs_kube_stats;

void cs_kube_get_stats(cs_kube *k, cs_kube_stats *out);

/* Formats a time as the API's MicroTime ("2006-01-02T15:04:05.000000Z"). */
void cs_kube_format_micro_time(int64_t unix_s, long usec, char out[static 28]);

#endif
