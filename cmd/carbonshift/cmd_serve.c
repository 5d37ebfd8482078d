#include "cmd/carbonshift/cmd_serve.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "carbon/gpu_catalog.h"
#include "carbon/signals.h"
#include "carbon/util/alloc.h"
#include "carbon/util/version.h"
#include "carbon/util/log.h"
#include "carbon/util/metrics.h"
#include "carbon/zones.h"
#include "cmd/carbonshift/carbon_setup.h"
#include "cmd/carbonshift/config.h"
#include "scheduler/decision.h"
#include "scheduler/estimate.h"
#include "scheduler/kube.h"
#include "scheduler/node_cache.h"
#include "scheduler/node_facts.h"
#include "scheduler/server.h"

/* Allocations at least this large are mapped on their own (see serve):
 * the size from which carbon/util/buf.c keeps a freed block for reuse.
 * Smaller ones, such as a names-only call's node array, stay in the heap,
 * where reuse is free. */
#define MMAP_THRESHOLD (8 << 20)

/* Everything the running service owns, freed in reverse order. */
typedef struct service {
  cs_config *cfg;
  cs_gpu_catalog *catalog;
  cs_zone_map *zones;
  cs_zone_pue *zone_pue;
  cs_facts_params facts;
  cs_estimate_params estimate;
  cs_signals *signals;
  cs_metrics *metrics;
  cs_kube *kube;         /* NULL: no API server configured */
  cs_node_cache *nodes;  /* fed by the Node watch; NULL without kube */
  cs_decision_sink sink; /* Events and plan annotations through kube */
  cs_decider *decider;
  cs_server *server;
} service;

void cs_cmd_serve_help(FILE *out)
{
  cs_buf flags;
  cs_buf_init(&flags, 1 << 16);
  cs_config_flags_usage(&flags);
  fprintf(out,
          "Usage: carbonshift serve [--config FILE] [--listen ADDR:PORT]\n"
          "         [--probe-listen ADDR:PORT]\n"
          "         [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
          "         [--kubeconfig FILE] [-v N] [--set NAME=VALUE]...\n"
          "         [--print-config]\n\n"
          "Serves the kube-scheduler extender (POST /filter, /prioritize) "
          "and\n/healthz, /readyz, /metrics until SIGTERM, SIGINT or SIGHUP "
          "(a graceful stop;\na second signal stops at once); "
          "--probe-listen adds a plain-HTTP port for\n/healthz and /readyz "
          "alone.\n\n"
          "Flags:\n%s"
          "  --print-config        print the effective configuration as "
          "JSON, each value\n"
          "                        with its source, secrets redacted; then "
          "exit\n\n"
          "Every setting can also come from the JSON file or a "
          "CARBONSHIFT_* variable;\n"
          "precedence: defaults < file < environment < flags. "
          "'carbonshift help config'\nlists them all.\n",
          flags.data ? flags.data : "");
  cs_buf_free(&flags);
}

static int usage_error(const char *fmt, const char *arg)
{
  fputs("carbonshift serve: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("; see 'carbonshift help serve'\n", stderr);
  return 2;
}

/* Reports why the catalog would refuse gpus[i] (g), each problem on its
 * own line naming the field; false when there is none it can tell. */
static bool gpu_problems(const cs_gpu_catalog *cat, const cs_config *c,
                         size_t i, const cs_config_gpu *g, cs_buf *errors)
{
  char path[64];
  bool found = false;
  const cs_gpu_model *self = cs_gpu_catalog_find(cat, g->name);
  snprintf(path, sizeof(path), "gpus[%zu].name", i);
  if (self && !cs_gpu_catalog_same_name(self->name, g->name)) {
    cs_config_error(errors, c, path, g->name,
                    "expected a model name: this is a node label of %s "
                    "(override that model under its own name)",
                    self->name);
    return true;
  }
  for (size_t k = 0; k < g->nlabels; k++) {
    const cs_gpu_model *owner = cs_gpu_catalog_find(cat, g->labels[k]);
    if (owner && owner != self) {
      snprintf(path, sizeof(path), "gpus[%zu].labels[%zu]", i, k);
      cs_config_error(errors, c, path, g->labels[k],
                      "expected a label that names no other model: it "
                      "names %s",
                      owner->name);
      found = true;
    }
  }
  if (!self) {
    bool power = g->power_w > 0,
         speed = g->tensor_tflops > 0 || g->relative_throughput > 0;
    snprintf(path, sizeof(path), "gpus[%zu]", i);
    if (!power || !speed) {
      cs_config_error(errors, c, path, g->name,
                      "expected %s%s%s%s: a model not in the built-in "
                      "catalog needs its power and its speed (docs/gpus.md)",
                      power ? "" : "powerWatts",
                      !power && !speed ? ", and " : "",
                      speed ? "" : "tensorTflops or relativeThroughput",
                      power != speed ? " as well" : "");
      found = true;
    }
  }
  return found;
}

/* Adds gpus[i] (g) to the catalog; false, with the problems reported,
 * when it cannot be. */
static bool add_gpu(cs_gpu_catalog *cat, const cs_config *c, size_t i,
                    const cs_config_gpu *g, cs_buf *errors)
{
  if (g->invalid)
    return false; /* its errors are reported already */
  if (gpu_problems(cat, c, i, g, errors))
    return false;
  cs_gpu_model m = {.name = g->name,
                    .vendor = g->vendor,
                    .power_w = g->power_w,
                    .tensor_tflops = g->tensor_tflops,
                    .memory_gb = g->memory_gb,
                    .relative_throughput = g->relative_throughput,
                    .embodied_kg = g->embodied_kg,
                    .devices_per_card = (unsigned)g->devices_per_card};
  cs_err rc =
      cs_gpu_catalog_set(cat, &m, (const char *const *)g->labels, g->nlabels);
  if (rc == CS_OK)
    return true;
  char path[32];
  snprintf(path, sizeof(path), "gpus[%zu]", i);
  cs_config_error(errors, c, path, g->name, "%s",
                  rc == CS_ETOOBIG ? "the catalog is full (256 models), or "
                                     "the model has too many labels (32)"
                                   : "the GPU catalog refused the model");
  return false;
}

/* The GPU catalog with the configured models, and the reference GPU.
 * Every element of gpus is checked, so one run reports them all; the
 * reference is not reported missing when it names an element that was. */
static void build_catalog(service *sv, cs_buf *errors)
{
  const cs_config *c = sv->cfg;
  sv->catalog = cs_gpu_catalog_new();
  bool ref_reported = false;
  for (size_t i = 0; i < c->ngpus; i++) {
    const cs_config_gpu *g = &c->gpus[i];
    if (!add_gpu(sv->catalog, c, i, g, errors))
      ref_reported =
          ref_reported ||
          (g->name && !strcasecmp(g->name, c->estimate_reference_gpu));
  }
  const cs_gpu_model *ref =
      cs_gpu_catalog_find(sv->catalog, c->estimate_reference_gpu);
  if (!ref && !ref_reported)
    cs_config_error(errors, c, "estimate.referenceGpu",
                    c->estimate_reference_gpu,
                    "expected a GPU model in the catalog, such as "
                    "A100-SXM4-80GB or H100-SXM5-80GB (docs/gpus.md), or one "
                    "added under gpus");
  /* A measured throughput is only ever divided by the reference's own
   * (cs_gpu_speed_vs): without one the model could never be estimated. */
  for (size_t i = 0; ref && !(ref->relative_throughput > 0) && i < c->ngpus;
       i++) {
    if (c->gpus[i].invalid || !(c->gpus[i].relative_throughput > 0) ||
        cs_gpu_catalog_find(sv->catalog, c->gpus[i].name) == ref)
      continue;
    char path[48], value[32];
    snprintf(path, sizeof(path), "gpus[%zu].relativeThroughput", i);
    snprintf(value, sizeof(value), "%g", c->gpus[i].relative_throughput);
    cs_config_error(errors, c, path, value,
                    "expected a relativeThroughput in the same unit for "
                    "the reference GPU too (estimate.referenceGpu=%s has "
                    "none): a measured throughput is only compared with "
                    "another measured one",
                    ref->name);
  }
  sv->estimate = (cs_estimate_params){
      .reference_gpu = ref,
      .default_duration_s = c->estimate_default_duration_s,
      .server_embodied_kg = c->estimate_server_embodied_kg,
      .gpu_embodied_kg = c->estimate_gpu_embodied_kg,
  };
}

static void build_zones(service *sv, cs_buf *errors)
{
  const cs_config *c = sv->cfg;
  sv->zones = cs_zone_map_new();
  for (size_t i = 0; i < c->nzones_regions; i++) {
    const cs_config_pair *p = &c->zones_regions[i];
    if (cs_zone_map_set(sv->zones, p->key, p->value) != CS_OK) {
      char *path = cs_asprintf("zones.regions.%s", p->key);
      cs_config_error(errors, c, path, p->value,
                      "the zone map refused the entry (over 1024 entries?)");
      free(path);
    }
  }
  sv->zone_pue = cs_calloc(c->nzones_pue + 1, sizeof(*sv->zone_pue));
  for (size_t i = 0; i < c->nzones_pue; i++)
    sv->zone_pue[i] = (cs_zone_pue){.zone = c->zones_pue[i].key,
                                    .pue = c->zones_pue[i].value};
  sv->facts = (cs_facts_params){
      .catalog = sv->catalog,
      .zones = sv->zones,
      .default_zone = c->nodes_default_zone,
      .default_pue = c->nodes_default_pue,
      .zone_pue = sv->zone_pue,
      .nzone_pue = c->nzones_pue,
      .default_lifetime_s = c->nodes_default_lifetime_s,
  };
}

static void add_provider(service *sv, cs_provider *p, cs_buf *errors)
{
  if (cs_signals_add_provider(sv->signals, p) != CS_OK) {
    cs_config_error(errors, sv->cfg, "carbon.routes", NULL,
                    "provider %s could not be added", p->ops->name);
    cs_provider_free(p);
  }
}

/* The configured providers (cmd/carbonshift/carbon_setup.h), the cache
 * options and the routes. The refresher starts in run(), with the metrics. */
static void build_signals(service *sv, cs_buf *errors)
{
  const cs_config *c = sv->cfg;
  cs_signal_type type = (cs_signal_type)c->carbon_signal_type;
  sv->signals = cs_signals_new(type);
  cs_signals_opts so;
  cs_carbon_setup_opts(c, &so);
  cs_signals_set_opts(sv->signals, &so);
  cs_provider *ps[CS_CARBON_SETUP_MAX];
  size_t n = 0;
  bool marginal = false;
  cs_carbon_setup_providers(c, NULL, ps, &n, errors);
  for (size_t i = 0; i < n; i++) {
    const char *name = ps[i]->ops->name;
    if (!strcmp(name, "static") || !strcmp(name, "file") ||
        (!strcmp(name, "watttime") && c->watttime_signal_type == 0))
      marginal = true; /* may serve marginal values */
    add_provider(sv, ps[i], errors);
  }
  for (size_t i = 0; i < c->ncarbon_routes; i++) {
    const cs_config_route *r = &c->carbon_routes[i];
    cs_err rc = cs_signals_set_route(
        sv->signals, r->zone, (const char *const *)r->providers, r->nproviders);
    if (rc != CS_OK) {
      char *path = cs_asprintf("carbon.routes.%s", r->zone);
      cs_config_error(errors, c, path, NULL,
                      "names a provider that is not configured");
      free(path);
    }
  }
  if (type == CS_SIGNAL_MARGINAL && !marginal) {
    cs_buf *l = cs_log_begin(0, "No provider gives marginal signals");
    cs_json_str(l, "err",
                "carbon.signalType is marginal but only average providers "
                "are configured: every node is neutral");
    cs_log_end(l);
  }
  /* The opposite case: WattTime's signal is not the one ranked, so it is
   * fetched for every zone routed to it and never used. */
  bool wt_marginal = c->watttime_signal_type == 0; /* co2_moer */
  for (size_t i = 0; i < n; i++)
    if (!strcmp(ps[i]->ops->name, "watttime") &&
        wt_marginal != (type == CS_SIGNAL_MARGINAL)) {
      cs_buf *l = cs_log_begin(0, "WattTime's signal is not the one ranked");
      cs_json_str(l, "watttimeSignalType",
                  wt_marginal ? "co2_moer" : "co2_aoer");
      cs_json_str(l, "rankingSignal", cs_signal_type_name(type));
      cs_json_str(l, "err",
                  wt_marginal ? "watttime answers marginal values, which are "
                                "never ranked with carbon.signalType average: "
                                "set watttime.signalType to co2_aoer, or "
                                "carbon.signalType to marginal"
                              : "watttime answers average values, which are "
                                "never ranked with carbon.signalType "
                                "marginal: set watttime.signalType to "
                                "co2_moer, or carbon.signalType to average");
      cs_log_end(l);
    }
}

/* The decision sink's calls, forwarded to the API client's queue: they
 * return at once, whatever the API server does. */
static void sink_event(void *ctx, const cs_pod_facts *pod, const char *type,
                       const char *reason, const char *note)
{
  cs_kube_event ev = {.ns = pod->ns,
                      .pod = pod->name,
                      .uid = pod->uid,
                      .reason = reason,
                      .action = "Schedule",
                      .note = note,
                      .warning = strcmp(type, "Warning") == 0};
  if (cs_kube_emit_event(ctx, &ev) == CS_EINVAL)
    cs_log_error("Cannot describe the pod in an Event", "invalid name");
}

static void sink_annotate(void *ctx, const cs_pod_facts *pod,
                          const char *const *keys, const char *const *values,
                          size_t n)
{
  /* A full queue is counted by the client; the plan is made again. */
  if (cs_kube_patch_pod_annotations_async(ctx, pod->ns, pod->name, pod->uid,
                                          keys, values, n) == CS_EINVAL)
    cs_log_error("Cannot annotate the pod", "invalid name");
}

/* Whether the service talks to an API server, and how. */
static cs_kube_mode kube_mode(const cs_config *c)
{
  return cs_kube_choose_mode((cs_kube_mode)c->kube_mode, c->kube_kubeconfig,
                             getenv("KUBERNETES_SERVICE_HOST"));
}

/* The client settings of the configuration, for starting and for checking. */
static cs_kube_config kube_config(const cs_config *c, cs_kube_mode mode)
{
  cs_kube_config kc;
  cs_kube_config_defaults(&kc);
  kc.mode = mode;
  kc.kubeconfig = *c->kube_kubeconfig ? c->kube_kubeconfig : NULL;
  kc.context = *c->kube_context ? c->kube_context : NULL;
  kc.request_timeout_s = c->kube_request_timeout_s;
  kc.watch_timeout_s = (int)c->kube_watch_timeout_s;
  kc.backoff_max_s = c->kube_backoff_max_s;
  kc.events_enabled = c->events_enabled;
  kc.event_queue_cap = (size_t)c->events_queue_size;
  kc.event_dedup_window_s = c->events_dedup_window_s;
  return kc;
}

/* Connects to the API server when configured: the Node watch feeds the node
 * cache that names-only calls need, and decisions become Events and pod
 * annotations. Returns false when a configured connection cannot be made. */
static bool start_kube(service *sv)
{
  const cs_config *c = sv->cfg;
  cs_kube_mode mode = kube_mode(c);
  if (mode == CS_KUBE_OFF) {
    cs_buf *l = cs_log_begin(0, "No Kubernetes API server configured");
    cs_json_str(l, "err",
                "names-only requests (nodeCacheCapable) get "
                "neutral scores and no Events or pod annotations are "
                "sent; set kube.kubeconfig, or run in a Pod");
    cs_log_end(l);
    return true;
  }
  cs_kube_config kc = kube_config(c, mode);
  kc.metrics = sv->metrics;
  char err[512] = "";
  if (cs_kube_new(&kc, &sv->kube, err, sizeof(err)) != CS_OK) {
    cs_log_error("Cannot configure the Kubernetes API client", err);
    return false;
  }
  sv->nodes = cs_node_cache_new(&sv->facts);
  cs_kube_node_sink nodes = cs_node_cache_sink(sv->nodes);
  if (cs_kube_start_node_watch(sv->kube, &nodes) != CS_OK) {
    cs_log_error("Cannot start the Node watch", "thread creation failed");
    return false;
  }
  sv->sink = (cs_decision_sink){
      .ctx = sv->kube, .event = sink_event, .annotate = sink_annotate};
  cs_kube_info info;
  cs_kube_get_info(sv->kube, &info);
  /* Not "Watching nodes": that is the watch thread's line for each watch
   * it opens; this one says the feature is on, once. */
  cs_buf *l = cs_log_begin(0, "Node watch started");
  cs_json_str(l, "server", info.server);
  cs_json_bool(l, "inCluster", info.in_cluster);
  cs_json_bool(l, "events", c->events_enabled);
  cs_log_end(l);
  return true;
}

static void service_free(service *sv)
{
  cs_server_free(sv->server);
  cs_decider_free(sv->decider);
  cs_kube_free(sv->kube); /* stops the watch before the cache goes */
  cs_node_cache_free(sv->nodes);
  cs_signals_free(sv->signals);
  cs_metrics_free(sv->metrics);
  free(sv->zone_pue);
  cs_zone_map_free(sv->zones);
  cs_gpu_catalog_free(sv->catalog);
  cs_config_free(sv->cfg);
}

static void handle(void *ctx, cs_verb verb, const char *body, size_t len,
                   const cs_jscan_feed *feed, const char *request_id,
                   cs_reply *out)
{
  cs_decider_handle(ctx, verb, body, len, feed, request_id, out);
}

static bool ready(void *ctx, cs_buf *detail)
{
  return cs_decider_ready(ctx, detail);
}

/* Writes each "config: ..." line of `text` to stderr, or as log lines. */
static void log_lines(const cs_buf *text, const char *msg)
{
  const char *p = text->len ? text->data : "";
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    cs_buf *l = cs_log_begin(0, msg);
    cs_json_strn(l, "err", p, n);
    cs_log_end(l);
    p += n + (nl ? 1 : 0);
  }
}

static const char *signal_name(int sig)
{
  return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP";
}

/* Set once the server has stopped: a second signal then cuts only the
 * clean-up (the Node watch, Events still queued for the API server). */
static atomic_bool server_stopped;

/* After the first stop signal: a second SIGTERM or SIGINT ends the process
 * at once, for whoever will not wait out the graceful stop (Ctrl-C twice).
 * Not SIGHUP: a closing terminal sends it twice (the shell passes its own
 * on, and the kernel sends the foreground group another), which would cut
 * the very stop it asked for. */
static void *await_second_signal(void *arg)
{
  (void)arg;
  sigset_t hurry;
  sigemptyset(&hurry);
  sigaddset(&hurry, SIGTERM);
  sigaddset(&hurry, SIGINT);
  int sig = 0;
  while (sigwait(&hurry, &sig) != 0)
    ;
  bool stopped = atomic_load(&server_stopped);
  cs_buf *l = cs_log_begin(0, stopped ? "Second signal, exiting before the "
                                        "clean-up ends"
                                      : "Second signal, stopping at once");
  cs_json_str(l, "signal", signal_name(sig));
  cs_json_str(l, "err",
              stopped ? "Events and plan annotations still queued "
                        "for the API server are dropped"
                      : "requests in flight are cut");
  cs_log_end(l);
  _exit(1);
  return NULL;
}

/* The server options of the configuration, for starting and for checking. */
static cs_server_opts server_opts(const cs_config *c)
{
  return (cs_server_opts){
      .listen = c->listen,
      .path_prefix = c->path_prefix,
      .tls_cert_file = *c->tls_cert_file ? c->tls_cert_file : NULL,
      .tls_key_file = *c->tls_key_file ? c->tls_key_file : NULL,
      .tls_client_ca_file =
          *c->tls_client_ca_file ? c->tls_client_ca_file : NULL,
      .max_body_bytes = (size_t)c->http_max_body_bytes,
      .max_header_bytes = (size_t)c->http_max_header_bytes,
      .threads = (unsigned)c->http_threads,
      .decision_threads = (unsigned)c->http_decision_threads,
      .stream_body_bytes = c->http_stream_body_bytes
                               ? (size_t)c->http_stream_body_bytes
                               : SIZE_MAX,
      .connection_timeout_s = (unsigned)(c->http_connection_timeout_s + 0.5),
      .request_timeout_ms = (unsigned)(c->http_request_timeout_s * 1000 + 0.5),
      .header_timeout_ms = (unsigned)(c->http_header_timeout_s * 1000 + 0.5),
      .max_connections = (unsigned)c->http_max_connections,
      .probe_listen = c->http_probe_listen,
  };
}

/* For --print-config: what starting would find wrong without serving. The
 * listen addresses' form, the TLS files, the kubeconfig or in-cluster
 * files; one line each in `errors`. A port in use is found only by
 * binding it. */
static void check_start(const cs_config *c, cs_buf *errors)
{
  char err[512] = "";
  cs_server_opts opts = server_opts(c);
  if (cs_server_check(&opts, err, sizeof(err)) != CS_OK)
    cs_buf_printf(errors, "config: %s\n", err);
  cs_kube_mode mode = kube_mode(c);
  if (mode == CS_KUBE_OFF)
    return;
  cs_kube_config kc = kube_config(c, mode);
  if (cs_kube_check(&kc, err, sizeof(err)) != CS_OK)
    cs_buf_printf(errors, "config: %s\n", err);
}

/* Serves until SIGTERM, SIGINT or SIGHUP; returns the exit status. */
static int run(service *sv)
{
  const cs_config *c = sv->cfg;
  /* Block the stop signals before any thread starts, so every server
   * thread inherits the mask and only sigwait below receives them. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  /* The terminal going away: a graceful stop too, rather than the default
   * action's abrupt one. Nothing is reloaded on it (certificates and CAs
   * are re-read when they change, scheduler/tls_certs.h). Unless SIGHUP
   * came ignored (nohup): sigwait would still take it, blocked as it is. */
  struct sigaction hup;
  if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
    sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  struct sigaction ign = {.sa_handler = SIG_IGN};
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, NULL);
  /* Full-object request bodies run to tens of megabytes. glibc raises its
   * mmap threshold to the size of every mapped block freed (up to 32 MiB),
   * so after one 10 MB body the next ones came from the heap, which keeps
   * freed memory: 16 such requests in flight left the service at over
   * 200 MiB for good. A fixed threshold keeps large blocks mapped, and
   * returned to the kernel when freed (carbon/util/buf.c keeps one of
   * them for the next request).
   * Fixing it also fixes the trim threshold, at 128 KiB, where glibc would
   * have moved it to twice the mmap threshold: every names-only call over
   * 5,000 nodes frees about 2 MB of per-call arrays, which the decision
   * thread's heap then returned to the kernel and faulted back in, zeroed,
   * on the next call (a fifth of the call's CPU). The same rule as glibc's
   * keeps them: each heap holds at most 16 MiB free before trimming. */
  (void)mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
  (void)mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD);

  sv->metrics = cs_metrics_new();
  /* The refresher fetches remote providers in the background from now on;
   * the hot path only reads its cache. */
  if (cs_signals_start(sv->signals, sv->metrics) != CS_OK) {
    cs_log_error("Cannot start the carbon signal refresher",
                 "cs_signals_start failed");
    return 1;
  }
  if (cs_metrics_build_info(sv->metrics, cs_version) != CS_OK)
    cs_log_error("Cannot publish the build information metric", "declare");
  if (!start_kube(sv))
    return 1;
  sv->decider = cs_decider_new(&(cs_decider_deps){
      .signals = sv->signals,
      .facts = &sv->facts,
      .estimate = &sv->estimate,
      .plan = {.min_saving_rel = c->plan_min_saving,
               .min_saving_abs_g = c->plan_min_saving_g,
               .replan_rel = c->plan_replan_margin},
      .forecast_horizon_s = (int64_t)c->plan_forecast_horizon_s,
      .nodes = sv->nodes,
      .metrics = sv->metrics,
      .sink = sv->kube ? &sv->sink : NULL,
      .log_names_max = (size_t)c->log_decision_names,
      .log_repeat_window_s = c->log_decision_repeat_s,
  });
  cs_server_opts opts = server_opts(c);
  cs_server_handler handler = {
      .ctx = sv->decider, .handle = handle, .ready = ready};
  char err[256] = "";
  if (cs_server_new(&opts, &handler, sv->metrics, &sv->server, err,
                    sizeof(err)) != CS_OK) {
    cs_log_error("Cannot start the server", err);
    return 1;
  }

  /* The listen address with the port actually bound (port 0 picks one). */
  const char *colon = strrchr(c->listen, ':');
  char *addr = cs_asprintf("%.*s:%u", (int)(colon - c->listen), c->listen,
                           cs_server_port(sv->server));
  cs_buf *l = cs_log_begin(0, "Serving");
  cs_json_str(l, "listen", addr);
  cs_json_str(l, "tls",
              !*c->tls_cert_file       ? "off"
              : *c->tls_client_ca_file ? "mutual"
                                       : "on");
  cs_json_str(l, "pathPrefix", c->path_prefix);
  if (*c->http_probe_listen) {
    const char *pc = strrchr(c->http_probe_listen, ':');
    char *probe =
        cs_asprintf("%.*s:%u", (int)(pc - c->http_probe_listen),
                    c->http_probe_listen, cs_server_probe_port(sv->server));
    cs_json_str(l, "probeListen", probe);
    free(probe);
  }
  cs_json_str(l, "signalType",
              cs_signal_type_name((cs_signal_type)c->carbon_signal_type));
  cs_json_str(l, "version", cs_version);
  cs_log_end(l);
  free(addr);

  int sig = 0;
  while (sigwait(&stop, &sig) != 0)
    ;
  l = cs_log_begin(0, "Shutting down");
  cs_json_str(l, "signal", signal_name(sig));
  cs_json_num(l, "gracePeriodSeconds", c->shutdown_grace_period_s, 3);
  cs_log_end(l);
  pthread_t second;
  if (pthread_create(&second, NULL, await_second_signal, NULL) == 0)
    pthread_detach(second);
  else
    cs_log_error("Cannot watch for a second stop signal; the graceful stop "
                 "runs to its end",
                 "pthread_create failed");
  /* Decisions until the stop use the cached intensities; a provider
   * request in flight would otherwise hold the exit for its timeout. */
  cs_signals_stop(sv->signals);
  cs_err rc = cs_server_shutdown(
      sv->server, (unsigned)(c->shutdown_grace_period_s * 1000 + 0.5));
  if (rc != CS_OK)
    cs_log_error("Requests were still in flight at the end of the grace "
                 "period",
                 cs_strerror(rc));
  atomic_store(&server_stopped, true);
  cs_log_info("Stopped");
  return 0;
}

int cs_cmd_serve(int argc, char **argv)
{
  int status = 2;
  bool print = false;
  service sv = {0};
  cs_buf errors, warnings;
  cs_buf_init(&errors, 1 << 20);
  cs_buf_init(&warnings, 1 << 16);
  cs_config_flags *flags = cs_config_flags_new();
  for (int i = 1; i < argc;) {
    bool taken;
    char err[256];
    if (cs_config_flags_take(flags, argc, argv, &i, &taken, err, sizeof(err)) !=
        CS_OK) {
      status = usage_error("%s", err);
      goto out;
    }
    if (taken)
      continue;
    if (!strcmp(argv[i], "--print-config")) {
      print = true;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      cs_cmd_serve_help(stdout);
      status = 0;
      goto out;
    } else {
      status = usage_error(argv[i][0] == '-' ? "unknown flag %s"
                                             : "unexpected argument \"%s\"",
                           argv[i]);
      goto out;
    }
    i++;
  }

  /* With --print-config, stdout carries only the JSON document. */
  if (print)
    cs_log_set_fd(STDERR_FILENO);
  cs_err rc = cs_config_load(flags, NULL, &sv.cfg, &errors, &warnings);
  cs_log_set_verbosity((int)sv.cfg->log_verbosity);
  log_lines(&warnings, "Ignoring an unknown environment variable");
  /* The parts built from configuration add their errors to the same list,
   * so one run reports everything. */
  build_catalog(&sv, &errors);
  build_zones(&sv, &errors);
  build_signals(&sv, &errors);
  if (print && rc == CS_OK && !errors.len)
    check_start(sv.cfg, &errors);
  if (rc != CS_OK || errors.len) {
    fwrite(errors.data, 1, errors.len, stderr);
    fputs("carbonshift serve: invalid configuration; see 'carbonshift help "
          "config'\n",
          stderr);
    status = 2;
    goto out;
  }
  if (print) {
    cs_buf out;
    cs_buf_init(&out, 1 << 24);
    cs_config_print(sv.cfg, &out);
    cs_buf_putc(&out, '\n');
    status = cs_buf_error(&out) == CS_OK &&
                     fwrite(out.data, 1, out.len, stdout) == out.len
                 ? 0
                 : 1;
    cs_buf_free(&out);
    goto out;
  }
  status = run(&sv);
out:
  service_free(&sv);
  cs_config_flags_free(flags);
  cs_buf_free(&errors);
  cs_buf_free(&warnings);
  return status;
}
