#include "cmd/carbonshift/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carbon/signal.h"
#include "carbon/util/alloc.h"
#include "carbon/gpu_catalog.h"
#include "carbon/util/http.h"
#include "carbon/util/jtree.h"
#include "carbon/util/parse.h"
#include "carbon/util/readfile.h"
#include "carbon/zones.h"
#include "scheduler/kube.h"

extern char **environ;

/* carbon.signalType is stored as the index of its choice. */
_Static_assert(CS_SIGNAL_AVERAGE == 0 && CS_SIGNAL_MARGINAL == 1,
               "carbon.signalType choices follow cs_signal_type");

typedef enum kind {
  K_STRING,   /* text, optionally checked by `check` */
  K_PATH,     /* a file; must be readable when set */
  K_SECRET,   /* text never shown; only from env or its ...File setting */
  K_BOOL,     /* true | false */
  K_INT,      /* whole number within [min, max] */
  K_SIZE,     /* bytes: 1048576, 64Ki, 128Mi, 1Gi, within [min, max] */
  K_DOUBLE,   /* number within [min, max] */
  K_DURATION, /* cs_parse_duration, seconds within [min, max] */
  K_ENUM,     /* one of `choices`, stored as its index */
  K_JSON      /* an object or array read by `load` */
} kind;

typedef struct ctx ctx;
typedef struct setting setting;

/* Returns NULL when `s` is acceptable, else what was expected: for a NULL
 * `s`, the expected form; for a bad value, that same form, or a text
 * saying what is wrong with it (shown before the form). */
typedef const char *(*check_fn)(const char *s);

/* Reads a JSON setting into fresh arrays stored at *items and *n (which
 * are zeroed on entry). Problems go to the context (naming the path inside
 * the value); returns false when there was any. */
typedef bool (*load_fn)(ctx *x, const setting *s, const char *source,
                        const cJSON *v, void *items, size_t *n);
typedef void (*drop_fn)(void *items, size_t n);

struct setting {
  const char *name; /* dotted, lowerCamelCase segments */
  kind type;
  size_t off;       /* of the value in cs_config */
  size_t off_n;     /* K_JSON: of the element count */
  const char *def;  /* default, written as a user would write it */
  const char *flag; /* "--listen"; one letter ("--v") also as "-v" */
  double min, max;  /* numbers, sizes, durations (s), K_JSON numbers */
  const char *const *choices; /* K_ENUM, NULL-terminated */
  check_fn check;             /* K_STRING */
  load_fn load;               /* K_JSON */
  drop_fn drop;               /* K_JSON */
  const char *secret_of; /* K_PATH: the secret whose value the file holds */
  const char *help;
};

#define F(field) offsetof(cs_config, field)
#define FN(field) offsetof(cs_config, field), offsetof(cs_config, n##field)

static const char *check_listen(const char *s);
static const char *check_listen_or_empty(const char *s);
static const char *check_prefix(const char *s);
static const char *check_zone(const char *s);
static const char *check_nonempty(const char *s);
static const char *check_url(const char *s);
static bool plain_region(const char *s)
{
  size_t n = strlen(s);
  if (!n || n > 63)
    return false;
  for (const char *p = s; *p; p++)
    if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
      return false;
  return true;
}

static bool load_regions(ctx *, const setting *, const char *, const cJSON *,
                         void *, size_t *);
static bool load_numbers(ctx *, const setting *, const char *, const cJSON *,
                         void *, size_t *);
static bool load_routes(ctx *, const setting *, const char *, const cJSON *,
                        void *, size_t *);
static bool load_gpus(ctx *, const setting *, const char *, const cJSON *,
                      void *, size_t *);
static bool load_zone_strings(ctx *, const setting *, const char *,
                              const cJSON *, void *, size_t *);
static const char *check_time_or_empty(const char *s);
static void drop_pairs(void *, size_t);
static void drop_numbers(void *, size_t);
static void drop_routes(void *, size_t);
static void drop_gpus(void *, size_t);

static const char *const signal_types[] = {"average", "marginal", NULL};
static const char *const emission_factor_types[] = {"lifecycle", "direct",
                                                    NULL};
static const char *const watttime_signals[] = {"co2_moer", "co2_aoer", NULL};
static const char *const trace_columns[] = {"lca", "direct", NULL};
/* Indexes match cs_kube_mode (scheduler/kube.h). */
static const char *const kube_modes[] = {"auto", "inCluster", "kubeconfig",
                                         "off", NULL};
_Static_assert(sizeof(kube_modes) / sizeof(kube_modes[0]) == CS_KUBE_OFF + 2,
               "one kube.mode choice per cs_kube_mode");

#define KI 1024.0
#define MI (1024.0 * 1024)
#define GI (1024.0 * 1024 * 1024)
#define MIN 60.0
#define HOUR 3600.0
#define DAY 86400.0
#define YEAR (365 * 86400.0)

/* THE table. Adding a setting: one field in cs_config (config.h), one row
 * here, then regenerate docs/configuration.md (carbonshift
 * config-reference). The environment variable is derived from the name
 * (CARBONSHIFT_ + upper snake case); the flag is optional. */
static const setting settings[] = {
    {.name = "listen",
     .type = K_STRING,
     .off = F(listen),
     .def = "127.0.0.1:8080",
     .flag = "--listen",
     .check = check_listen,
     .help = "Address and port the HTTP(S) server listens on (port 0: any "
             "free port)"},
    {.name = "http.probeListen",
     .type = K_STRING,
     .off = F(http_probe_listen),
     .def = "",
     .flag = "--probe-listen",
     .check = check_listen_or_empty,
     .help = "Second address and port, plain HTTP, that answers only GET "
             "/healthz and /readyz, with its own thread and connections, "
             "for kubelet probes; empty: none"},
    {.name = "pathPrefix",
     .type = K_STRING,
     .off = F(path_prefix),
     .def = "",
     .check = check_prefix,
     .help = "URL path prefix for /filter, /prioritize and /preempt, as the "
             "extender's urlPrefix ends"},
    {.name = "tls.certFile",
     .type = K_PATH,
     .off = F(tls_cert_file),
     .def = "",
     .flag = "--tls-cert",
     .help = "PEM server certificate (chain); enables HTTPS. Needs "
             "tls.keyFile"},
    {.name = "tls.keyFile",
     .type = K_PATH,
     .off = F(tls_key_file),
     .def = "",
     .flag = "--tls-key",
     .help = "PEM private key of tls.certFile"},
    {.name = "tls.clientCAFile",
     .type = K_PATH,
     .off = F(tls_client_ca_file),
     .def = "",
     .flag = "--tls-client-ca",
     .help = "PEM CA bundle; when set, clients must present a certificate it "
             "signed (mTLS). Re-read when it changes. Needs tls.certFile and "
             "tls.keyFile"},
    {.name = "http.maxBodyBytes",
     .type = K_SIZE,
     .off = F(http_max_body_bytes),
     .def = "128Mi",
     .min = KI,
     .max = GI,
     .help = "Largest request body accepted; larger bodies get 413"},
    {.name = "http.maxHeaderBytes",
     .type = K_SIZE,
     .off = F(http_max_header_bytes),
     .def = "64Ki",
     .min = 4 * KI,
     .max = 16 * MI,
     .help = "Memory for one connection's request line and headers"},
    {.name = "http.maxConnections",
     .type = K_INT,
     .off = F(http_max_connections),
     .def = "1024",
     .min = 1,
     .max = 100000,
     .help = "Concurrent connections served; further clients wait in the "
             "kernel backlog until one closes"},
    {.name = "http.threads",
     .type = K_INT,
     .off = F(http_threads),
     .def = "0",
     .min = 0,
     .max = 1024,
     .help = "Threads reading and writing connections (TLS included); 0 "
             "means one per CPU the process may run on (its affinity mask; "
             "set this under a CPU limit)"},
    {.name = "http.decisionThreads",
     .type = K_INT,
     .off = F(http_decision_threads),
     .def = "0",
     .min = 0,
     .max = 1024,
     .help = "Threads deciding filter and prioritize requests; 0 means one "
             "per CPU the process may run on (as http.threads)"},
    {.name = "http.streamBodyBytes",
     .type = K_SIZE,
     .off = F(http_stream_body_bytes),
     .def = "1Mi",
     .min = 0,
     .max = GI,
     .help = "Request bodies this large (with a Content-Length) are parsed "
             "while they arrive, by at most decisionThreads - 1 decisions "
             "at once; 0 turns it off"},
    {.name = "http.connectionTimeout",
     .type = K_DURATION,
     .off = F(http_connection_timeout_s),
     .def = "30s",
     .min = 1,
     .max = HOUR,
     .help = "Idle connections are closed after this long"},
    {.name = "http.requestTimeout",
     .type = K_DURATION,
     .off = F(http_request_timeout_s),
     .def = "10s",
     .min = 0.1,
     .max = 10 * MIN,
     .help = "Longest time from a request's headers to its last body "
             "byte; slower requests are cut (408)"},
    {.name = "http.headerTimeout",
     .type = K_DURATION,
     .off = F(http_header_timeout_s),
     .def = "30s",
     .min = 0.1,
     .max = HOUR,
     .help = "Longest time from a connection becoming idle (opened, or its "
             "last reply sent) to a complete request head; slower clients "
             "are disconnected"},
    {.name = "shutdownGracePeriod",
     .type = K_DURATION,
     .off = F(shutdown_grace_period_s),
     .def = "20s",
     .min = 1,
     .max = HOUR,
     .help = "On SIGTERM, how long in-flight requests may take to finish"},
    {.name = "log.verbosity",
     .type = K_INT,
     .off = F(log_verbosity),
     .def = "0",
     .flag = "--v",
     .min = 0,
     .max = 10,
     .help = "Log lines with a higher level are dropped (0: decisions, "
             "start-up and errors only)"},
    {.name = "log.decisionNames",
     .type = K_INT,
     .off = F(log_decision_names),
     .def = "0",
     .min = 0,
     .max = 100000,
     .help = "Node names listed per entry of the Decision line; an entry "
             "with more gives the rest as a count (moreNames). 0 lists "
             "every node"},
    {.name = "log.decisionRepeatSeconds",
     .type = K_INT,
     .off = F(log_decision_repeat_s),
     .def = "300",
     .min = 0,
     .max = 24 * HOUR,
     .help = "A decision the same as the last one logged in full for its "
             "pod and verb, within this many seconds of it, is logged as a "
             "short Decision line naming that one (sameAs, repeats) instead "
             "of every node's numbers again; 0 logs every line in full"},
    {.name = "estimate.referenceGpu",
     .type = K_STRING,
     .off = F(estimate_reference_gpu),
     .def = "A100-SXM4-80GB",
     .check = check_nonempty,
     .help = "GPU model that pods' carbonshift.io/expected-duration refers "
             "to; must be in the GPU catalog (after `gpus`)"},
    {.name = "estimate.defaultDuration",
     .type = K_DURATION,
     .off = F(estimate_default_duration_s),
     .def = "1h",
     .min = 1,
     .max = 5 * YEAR,
     .help = "Runtime assumed for pods without "
             "carbonshift.io/expected-duration, to rank nodes and plan a "
             "max-delay (logged as defaulted; a malformed value, or a budget "
             "or deadline without one, is an annotation problem)"},
    {.name = "estimate.serverEmbodiedKg",
     .type = K_DOUBLE,
     .off = F(estimate_server_embodied_kg),
     .def = "1000",
     .min = 0,
     .max = 100000,
     .help = "Embodied carbon of a GPU server without its GPUs, kg CO2e"},
    {.name = "estimate.gpuEmbodiedKg",
     .type = K_DOUBLE,
     .off = F(estimate_gpu_embodied_kg),
     .def = "150",
     .min = 0,
     .max = 10000,
     .help = "Embodied carbon per GPU card when the catalog has no figure, "
             "kg CO2e"},
    {.name = "nodes.defaultLifetime",
     .type = K_DURATION,
     .off = F(nodes_default_lifetime_s),
     .def = "6y",
     .min = 30 * DAY,
     .max = 30 * YEAR,
     .help = "Expected service life of nodes without "
             "carbonshift.io/expected-lifetime"},
    {.name = "nodes.defaultPue",
     .type = K_DOUBLE,
     .off = F(nodes_default_pue),
     .def = "1.2",
     .min = 1.0,
     .max = 3.0,
     .help = "Power usage effectiveness of nodes without carbonshift.io/pue "
             "or a zones.pue entry"},
    {.name = "nodes.defaultZone",
     .type = K_STRING,
     .off = F(nodes_default_zone),
     .def = "",
     .check = check_zone,
     .help = "Grid zone of nodes with neither a zone label nor a known "
             "region; empty: such nodes are unknown (neutral)"},
    {.name = "zones.regions",
     .type = K_JSON,
     .off = FN(zones_regions),
     .def = "{}",
     .load = load_regions,
     .drop = drop_pairs,
     .help = "Object mapping cloud regions (topology.kubernetes.io/region) "
             "to grid zones; extends and overrides the built-in map"},
    {.name = "zones.pue",
     .type = K_JSON,
     .off = FN(zones_pue),
     .def = "{}",
     .min = 1.0,
     .max = 3.0,
     .load = load_numbers,
     .drop = drop_numbers,
     .help = "Object mapping grid zones to the PUE of data centres there"},
    {.name = "gpus",
     .type = K_JSON,
     .off = FN(gpus),
     .def = "[]",
     .load = load_gpus,
     .drop = drop_gpus,
     .help = "Array of GPU models {name, vendor, labels[], powerWatts, "
             "tensorTflops, memoryGb, relativeThroughput, embodiedKg, "
             "devicesPerCard} that extend the catalog or override fields of "
             "a model; figures are per card"},
    {.name = "carbon.signalType",
     .type = K_ENUM,
     .off = F(carbon_signal_type),
     .def = "average",
     .choices = signal_types,
     .help = "Signal nodes are ranked on: average (accounting) or marginal "
             "(operating emissions rate); never mixed"},
    {.name = "carbon.static",
     .type = K_JSON,
     .off = FN(carbon_static),
     .def = "{}",
     .min = 0,
     .max = 3000,
     .load = load_numbers,
     .drop = drop_numbers,
     .help = "Object mapping grid zones to fixed intensities in gCO2e/kWh "
             "(the `static` provider)"},
    {.name = "carbon.routes",
     .type = K_JSON,
     .off = FN(carbon_routes),
     .def = "{}",
     .load = load_routes,
     .drop = drop_routes,
     .help = "Object mapping a zone (or \"*\" for all others) to the "
             "providers to ask, in order; without routes every configured "
             "provider is tried"},
    {.name = "carbon.refreshInterval",
     .type = K_DURATION,
     .off = F(carbon_refresh_interval_s),
     .def = "5m",
     .min = 10,
     .max = DAY,
     .help = "How often each remote provider and zone is fetched (plus or "
             "minus 10% jitter; failures back off exponentially); the "
             "forecast fetched spans plan.forecastHorizon. Less than "
             "carbon.maxAge over 1.1"},
    {.name = "carbon.maxAge",
     .type = K_DURATION,
     .off = F(carbon_max_age_s),
     .def = "1h",
     .min = MIN,
     .max = 7 * DAY,
     .help = "How long after its last successful fetch a provider's value "
             "(and forecast) is still served while fetches fail; then the "
             "next provider in the route answers"},
    {.name = "carbon.maxObservationAge",
     .type = K_DURATION,
     .off = F(carbon_max_observation_age_s),
     .def = "3h",
     .min = MIN,
     .max = 100 * YEAR,
     .help = "A fetched value whose period began longer ago than this is "
             "refused as stale, and a cached one stops serving once this "
             "old; a forecast is held to it from when it was made "
             "(Electricity Maps updatedAt, WattTime meta.generated_at). Raise "
             "it to replay recorded responses"},
    {.name = "carbon.requestTimeout",
     .type = K_DURATION,
     .off = F(carbon_request_timeout_s),
     .def = "10s",
     .min = 0.1,
     .max = 2 * MIN,
     .help = "Longest time one request to a carbon provider may take"},
    {.name = "plan.minSaving",
     .type = K_DOUBLE,
     .off = F(plan_min_saving),
     .def = "0.05",
     .min = 0,
     .max = 1,
     .help = "A pod waits only if the planned start saves at least this "
             "share of its emissions against starting now (0.05 = 5 %)"},
    {.name = "plan.minSavingGrams",
     .type = K_DOUBLE,
     .off = F(plan_min_saving_g),
     .def = "100",
     .min = 0,
     .max = 1e9,
     .help = "... and at least this many grams CO2e"},
    {.name = "plan.replanMargin",
     .type = K_DOUBLE,
     .off = F(plan_replan_margin),
     .def = "0.05",
     .min = 0,
     .max = 1,
     .help = "A kept plan yields only to a new one better by this share "
             "(no flapping as forecasts move)"},
    {.name = "plan.forecastHorizon",
     .type = K_DURATION,
     .off = F(plan_forecast_horizon_s),
     .def = "72h",
     .min = HOUR,
     .max = 30 * 24 * HOUR,
     .help = "How far ahead forecasts are asked for when planning"},
    {.name = "kube.mode",
     .type = K_ENUM,
     .off = F(kube_mode),
     .def = "auto",
     .choices = kube_modes,
     .help = "How to reach the API server: inCluster (service account), "
             "kubeconfig (kube.kubeconfig, required), off, or auto: "
             "kubeconfig when kube.kubeconfig is set, else inCluster when "
             "KUBERNETES_SERVICE_HOST is set, else off ($KUBECONFIG and "
             "~/.kube/config are never read)"},
    {.name = "kube.kubeconfig",
     .type = K_PATH,
     .off = F(kube_kubeconfig),
     .def = "",
     .flag = "--kubeconfig",
     .help = "kubeconfig file (token or client-certificate users)"},
    {.name = "kube.context",
     .type = K_STRING,
     .off = F(kube_context),
     .def = "",
     .help = "kubeconfig context; empty: current-context"},
    {.name = "kube.requestTimeout",
     .type = K_DURATION,
     .off = F(kube_request_timeout_s),
     .def = "10s",
     .min = 1,
     .max = 5 * 60,
     .help = "Time limit of one API request (a patch or an Event); each "
             "Node list page gets 6 times as long"},
    {.name = "kube.watchTimeout",
     .type = K_DURATION,
     .off = F(kube_watch_timeout_s),
     .def = "5m",
     .min = 10,
     .max = HOUR,
     .help = "Server-side timeout of one Node watch; it is then resumed"},
    {.name = "kube.backoffMax",
     .type = K_DURATION,
     .off = F(kube_backoff_max_s),
     .def = "30s",
     .min = 1,
     .max = HOUR,
     .help = "Longest wait between reconnection attempts"},
    {.name = "events.enabled",
     .type = K_BOOL,
     .off = F(events_enabled),
     .def = "true",
     .help = "Create Events on pods for carbonshift's decisions (pod "
             "annotation patches are sent either way)"},
    {.name = "events.queueSize",
     .type = K_INT,
     .off = F(events_queue_size),
     .def = "256",
     .min = 1,
     .max = 100000,
     .help = "Events and pod patches waiting to be sent, a quarter of it "
             "kept for patches (Events fill at most the rest); more are "
             "dropped and counted"},
    {.name = "events.dedupWindow",
     .type = K_DURATION,
     .off = F(events_dedup_window_s),
     .def = "10m",
     .min = 1,
     .max = 24 * HOUR,
     .help = "The same pod, reason and message are sent once per window"},
    {.name = "electricitymaps.url",
     .type = K_STRING,
     .off = F(electricitymaps_url),
     .def = "https://api.electricitymaps.com/v3",
     .check = check_url,
     .help = "Base URL of the Electricity Maps API, with its version: "
             "paths such as /carbon-intensity/latest follow it"},
    {.name = "electricitymaps.token",
     .type = K_SECRET,
     .off = F(electricitymaps_token),
     .def = "",
     .help = "Electricity Maps API token (secret)"},
    {.name = "electricitymaps.tokenFile",
     .type = K_PATH,
     .off = F(electricitymaps_token_file),
     .def = "",
     .secret_of = "electricitymaps.token",
     .help = "File holding electricitymaps.token (a mounted Secret)"},
    {.name = "electricitymaps.emissionFactorType",
     .type = K_ENUM,
     .off = F(electricitymaps_emission_factor_type),
     .def = "lifecycle",
     .choices = emission_factor_types,
     .help = "Electricity Maps emission factors: lifecycle (with upstream "
             "emissions) or direct (combustion only)"},
    {.name = "watttime.url",
     .type = K_STRING,
     .off = F(watttime_url),
     .def = "https://api.watttime.org",
     .check = check_url,
     .help = "Base URL of the WattTime API (login is at /login, data at /v3)"},
    {.name = "watttime.username",
     .type = K_STRING,
     .off = F(watttime_username),
     .def = "",
     .help = "WattTime account name. Needs watttime.password or "
             "watttime.passwordFile"},
    {.name = "watttime.password",
     .type = K_SECRET,
     .off = F(watttime_password),
     .def = "",
     .help = "WattTime password (secret). Needs watttime.username"},
    {.name = "watttime.passwordFile",
     .type = K_PATH,
     .off = F(watttime_password_file),
     .def = "",
     .secret_of = "watttime.password",
     .help = "File holding watttime.password (a mounted Secret)"},
    {.name = "watttime.signalType",
     .type = K_ENUM,
     .off = F(watttime_signal_type),
     .def = "co2_moer",
     .choices = watttime_signals,
     .help = "WattTime signal: co2_moer (marginal) or co2_aoer (average); "
             "must match carbon.signalType to be used for ranking"},
    {.name = "watttime.horizonHours",
     .type = K_INT,
     .off = F(watttime_horizon_hours),
     .def = "24",
     .min = 1,
     .max = 72,
     .help = "Hours of WattTime forecast fetched"},
    {.name = "ukgrid.url",
     .type = K_STRING,
     .off = F(ukgrid_url),
     .def = "https://api.carbonintensity.org.uk",
     .check = check_url,
     .help = "Base URL of the UK Carbon Intensity API, without a version: "
             "paths such as /intensity follow it"},
    {.name = "ukgrid.zones",
     .type = K_JSON,
     .off = FN(ukgrid_zones),
     .def = "{}",
     .load = load_zone_strings,
     .drop = drop_pairs,
     .help = "Object mapping zones to UK Carbon Intensity areas: "
             "\"national\", \"regionid:<1..17>\" or \"postcode:<outward "
             "code>\" (GB, GB-REGION-<n> and GB-POSTCODE-<code> need no "
             "entry)"},
    {.name = "file.traces",
     .type = K_JSON,
     .off = FN(file_traces),
     .def = "{}",
     .load = load_zone_strings,
     .drop = drop_pairs,
     .help = "Object mapping zones to trace files the `file` provider "
             "replays (Electricity Maps export, Time,Carbon Intensity, or "
             "WattTime MOER CSV)"},
    {.name = "file.column",
     .type = K_ENUM,
     .off = F(file_column),
     .def = "lca",
     .choices = trace_columns,
     .help = "Column of an Electricity Maps export the `file` provider "
             "reads: lca (life cycle) or direct"},
    {.name = "file.replayFrom",
     .type = K_STRING,
     .off = F(file_replay_from),
     .def = "",
     .check = check_time_or_empty,
     .help = "Trace instant (RFC 3339) shown at the service's start, so "
             "replays are repeatable; empty: trace times are real times"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Provider names carbon.routes may refer to. */
static const char *const provider_names[] = {
    "builtin", "static", "file", "electricitymaps", "watttime", "ukgrid", NULL};

struct cs_config_meta {
  char *source[NSETTINGS];
  char *shown[NSETTINGS]; /* K_DURATION: the text the value was given as */
  cJSON *json[NSETTINGS]; /* K_JSON: the effective value */
  bool in_file[NSETTINGS];
};

struct ctx {
  cs_config *c;
  cs_buf *errors;
  size_t nerrors;
  cs_buf *warnings;
};

typedef struct flag_entry {
  int idx;    /* setting, or -1 for a --set of an unknown name */
  char *name; /* for --set: the name as given */
  char *value;
  char *source;
} flag_entry;

struct cs_config_flags {
  char *config_file;
  flag_entry *v;
  size_t n;
};

/* ---- small helpers ---- */

static void *field(const cs_config *c, size_t off)
{
  return (char *)c + off;
}

static int find_setting(const char *name)
{
  for (size_t i = 0; i < NSETTINGS; i++)
    if (strcmp(settings[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* CARBONSHIFT_ + upper snake case: "tls.clientCAFile" gives
 * CARBONSHIFT_TLS_CLIENT_CA_FILE. */
static void env_name(const char *name, char *out, size_t cap)
{
  size_t n = (size_t)snprintf(out, cap, "CARBONSHIFT_");
  for (const char *p = name; *p && n + 2 < cap; p++) {
    char c = *p;
    if (c == '.') {
      out[n++] = '_';
      continue;
    }
    if (isupper((unsigned char)c) && p > name) {
      char prev = p[-1], next = p[1];
      if (islower((unsigned char)prev) || isdigit((unsigned char)prev) ||
          (isupper((unsigned char)prev) && islower((unsigned char)next)))
        out[n++] = '_';
    }
    out[n++] = (char)toupper((unsigned char)c);
  }
  out[n] = '\0';
}

static const char *closest_setting(const char *s)
{
  const char *names[NSETTINGS];
  for (size_t i = 0; i < NSETTINGS; i++)
    names[i] = settings[i].name;
  return cs_closest_name(s, names, NSETTINGS);
}

/* Appends " (did you mean X?)" or nothing. */
static void hint(cs_buf *b, const char *suggestion)
{
  if (suggestion)
    cs_buf_printf(b, " (did you mean %s?)", suggestion);
}

/* How a value is shown in messages: text quoted as JSON, JSON as written
 * (shortened), secrets never. */
static void show(cs_buf *b, const setting *s, const char *text,
                 const cJSON *json)
{
  if (s && s->type == K_SECRET) {
    cs_buf_puts(b, "<redacted>");
    return;
  }
  if (text) {
    size_t n = strlen(text);
    cs_json_quote(b, text, n > 200 ? 200 : n);
    return;
  }
  /* cJSON prints an overflowed number (1e400) as null, which is not what
   * the user wrote. */
  if (cJSON_IsNumber(json) && !isfinite(json->valuedouble)) {
    cs_buf_puts(b, "<a number beyond the range of a double>");
    return;
  }
  char *p = json ? cJSON_PrintUnformatted(json) : NULL;
  if (!p) {
    cs_buf_puts(b, "?");
    return;
  }
  size_t n = strlen(p);
  if (n > 80) {
    cs_buf_append(b, p, 77);
    cs_buf_puts(b, "...");
  } else {
    cs_buf_append(b, p, n);
  }
  free(p);
}

/* Appends s with control bytes written as \xNN: keys and values from the
 * file may hold line breaks, and every problem must stay one line. */
static void put_text(cs_buf *b, const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      cs_buf_printf(b, "\\x%02x", c);
    else
      cs_buf_putc(b, (char)c);
  }
}

/* Appends an unknown setting's name, quoted and cut to 200 bytes. */
static void put_name(cs_buf *b, const char *name)
{
  size_t n = strlen(name);
  cs_json_quote(b, name, n > 200 ? 200 : n);
}

/* One error line: "config: PATH = VALUE (SOURCE): MESSAGE". */
static void failv(ctx *x, const setting *s, const char *path, const char *text,
                  const cJSON *json, const char *source, const char *fmt,
                  va_list ap)
{
  cs_buf *b = x->errors;
  x->nerrors++;
  if (!b)
    return;
  cs_buf_puts(b, "config: ");
  put_text(b, path ? path : s->name);
  if (text || json) {
    cs_buf_puts(b, " = ");
    show(b, s, text, json);
  }
  if (source)
    cs_buf_printf(b, " (%s)", source);
  cs_buf_puts(b, ": ");
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  put_text(b, msg);
  cs_buf_putc(b, '\n');
}

static void fail(ctx *x, const setting *s, const char *path, const char *text,
                 const cJSON *json, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void fail(ctx *x, const setting *s, const char *path, const char *text,
                 const cJSON *json, const char *source, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  failv(x, s, path, text, json, source, fmt, ap);
  va_end(ap);
}

/* Writes a bound the way users write it: sizes with binary suffixes,
 * durations with units, numbers with %g. */
static void format_bound(const setting *s, double v, char *out, size_t cap)
{
  if (s->type == K_SIZE) {
    static const struct {
      const char *suffix;
      double mult;
    } units[] = {{"Gi", GI}, {"Mi", MI}, {"Ki", KI}};
    for (size_t i = 0; i < 3; i++) {
      if (v >= units[i].mult && fmod(v, units[i].mult) == 0) {
        snprintf(out, cap, "%.0f%s", v / units[i].mult, units[i].suffix);
        return;
      }
    }
    snprintf(out, cap, "%.0f", v);
  } else if (s->type == K_DURATION) {
    if (v >= YEAR && fmod(v, YEAR) == 0) {
      snprintf(out, cap, "%.0fy", v / YEAR);
    } else if (v < 1) {
      snprintf(out, cap, "%gs", v);
    } else {
      char tmp[32];
      cs_format_duration(v, tmp);
      snprintf(out, cap, "%s", tmp);
    }
  } else {
    snprintf(out, cap, "%g", v);
  }
}

/* What a setting's value must look like, for messages and docs. */
static void expectation(const setting *s, char *out, size_t cap)
{
  char lo[32], hi[32];
  format_bound(s, s->min, lo, sizeof(lo));
  format_bound(s, s->max, hi, sizeof(hi));
  switch (s->type) {
  case K_STRING:
    snprintf(out, cap, "%s", s->check ? s->check(NULL) : "a string");
    break;
  case K_PATH:
    snprintf(out, cap, "a path to a readable file");
    break;
  case K_SECRET:
    snprintf(out, cap, "a secret string");
    break;
  case K_BOOL:
    snprintf(out, cap, "true or false");
    break;
  case K_INT:
    snprintf(out, cap, "a whole number between %s and %s", lo, hi);
    break;
  case K_SIZE:
    snprintf(out, cap,
             "a size in bytes such as 67108864 or 64Mi, between %s and %s", lo,
             hi);
    break;
  case K_DOUBLE:
    snprintf(out, cap, "a number between %s and %s", lo, hi);
    break;
  case K_DURATION:
    snprintf(out, cap,
             "a duration such as 30s, 5m or 1h30m (units s, m, h, d, w, y), "
             "between %s and %s",
             lo, hi);
    break;
  case K_ENUM: {
    size_t n = (size_t)snprintf(out, cap, "one of");
    for (size_t i = 0; s->choices[i] && n < cap; i++)
      n += (size_t)snprintf(out + n, cap - n, "%s %s", i ? "," : "",
                            s->choices[i]);
    break;
  }
  case K_JSON:
    snprintf(out, cap, "a JSON %s", s->load == load_gpus ? "array" : "object");
    break;
  }
}

/* ---- string validators: check(NULL) returns the general expectation ---- */

static const char *check_listen(const char *s)
{
  static const char form[] =
      "an address as HOST:PORT such as 127.0.0.1:8080, 0.0.0.0:8443, "
      "[::]:8080 or :8080 (port 0..65535)";
  if (!s)
    return form;
  const char *colon = strrchr(s, ':');
  if (!colon)
    return form;
  size_t hostlen = (size_t)(colon - s);
  if (hostlen && s[0] == '[') {
    if (s[hostlen - 1] != ']' || hostlen < 3)
      return form;
    for (size_t i = 1; i + 1 < hostlen; i++)
      if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
        return form;
  } else {
    if (hostlen > 253)
      return form;
    for (size_t i = 0; i < hostlen; i++)
      if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
        return form;
  }
  int64_t port;
  if (strlen(colon + 1) > 5 || cs_parse_int64(colon + 1, &port, NULL) ||
      colon[1] == '-' || port > 65535)
    return form;
  return NULL;
}

static const char *check_listen_or_empty(const char *s)
{
  if (s && !*s)
    return NULL;
  const char *form = check_listen(s);
  return form ? "empty, or an address as for listen, such as :8081" : NULL;
}

static const char *check_prefix(const char *s)
{
  static const char form[] =
      "empty, or a URL path such as /carbonshift (leading slash, no "
      "trailing slash)";
  if (!s)
    return form;
  if (!*s)
    return NULL;
  size_t n = strlen(s);
  if (s[0] != '/' || s[n - 1] == '/' || n > 200 || strstr(s, "//"))
    return form;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("/-._~", *p))
      return form;
  return NULL;
}

/* NULL when s is a zone id (cs_zone_id_valid), or empty and that is
 * allowed. */
static const char *check_zone_id(const char *s, bool allow_empty)
{
  if (!*s)
    return allow_empty ? NULL : "";
  return cs_zone_id_valid(s) ? NULL : "";
}

static const char *check_zone(const char *s)
{
  static const char form[] =
      "empty, or a grid zone id such as DE, US-CAL-CISO or CAISO_NORTH "
      "(letters, digits, '-' and '_'), or lat,lon";
  if (!s || check_zone_id(s, true))
    return form;
  return NULL;
}

static const char *check_nonempty(const char *s)
{
  if (!s || !*s)
    return "a non-empty string";
  return NULL;
}

static const char *check_time_or_empty(const char *s)
{
  static const char form[] =
      "empty, or an RFC 3339 time such as 2023-07-01T00:00:00Z";
  int64_t t;
  if (!s)
    return form;
  return !*s || cs_parse_rfc3339(s, &t, NULL) == CS_OK ? NULL : form;
}

/* The form, for NULL; NULL for a good URL; else what is wrong with it. */
static const char *check_url(const char *s)
{
  static const char form[] =
      "an http:// or https:// URL such as https://api.example.com";
  return s ? cs_http_url_problem(s) : form;
}

/* ---- reading one value ---- */

static char **str_field(cs_config *c, const setting *s)
{
  return (char **)field(c, s->off);
}

/* The file-backed setting that fills a secret, or NULL. */
static const setting *secret_file_of(const setting *secret)
{
  for (size_t i = 0; i < NSETTINGS; i++)
    if (settings[i].secret_of && !strcmp(settings[i].secret_of, secret->name))
      return &settings[i];
  return NULL;
}

/* A JSON scalar as the text the string parsers read, or NULL when its JSON
 * type cannot be right for the setting. */
static bool json_text(const setting *s, const cJSON *v, char *buf, size_t cap,
                      const char **text)
{
  switch (s->type) {
  case K_BOOL:
    if (!cJSON_IsBool(v))
      return false;
    *text = cJSON_IsTrue(v) ? "true" : "false";
    return true;
  case K_INT:
  case K_SIZE:
  case K_DOUBLE:
    if (cJSON_IsNumber(v)) {
      double d = v->valuedouble;
      if (s->type != K_DOUBLE && d == floor(d) && fabs(d) < 9e15)
        snprintf(buf, cap, "%.0f", d);
      else
        snprintf(buf, cap, "%.17g", d);
      *text = buf;
      return true;
    }
    if (s->type == K_SIZE && cJSON_IsString(v)) {
      *text = v->valuestring;
      return true;
    }
    return false;
  default:
    if (!cJSON_IsString(v))
      return false;
    *text = v->valuestring;
    return true;
  }
}

static bool parse_size(const char *t, double *out)
{
  int64_t i;
  if (cs_parse_int64(t, &i, NULL) == CS_OK) {
    *out = (double)i;
    return true;
  }
  double q;
  /* Quantities with a unit; "m" (milli) never makes a byte count. */
  if (cs_parse_quantity(t, &q, NULL) != CS_OK || strchr(t, 'm') ||
      q != floor(q))
    return false;
  *out = q;
  return true;
}

/* Parses one JSON document that only white space may follow; on failure
 * *errat is the byte offset of the problem. Never uses cJSON_GetErrorPtr,
 * which is not thread-safe. */
static cJSON *parse_json(const char *text, size_t len, size_t *errat)
{
  const char *end = NULL;
  cJSON *v = cs_jtree_parse(text, len, &end);
  const char *p = end ? end : text + len;
  if (v) {
    while (p < text + len && isspace((unsigned char)*p))
      p++;
    if (p == text + len)
      return v;
    cJSON_Delete(v);
  }
  *errat = (size_t)(p - text);
  return NULL;
}

/* Reads `text` (from the environment or a flag) or `json` (from the file)
 * into setting `idx`. On success the value and its source replace the
 * previous ones. */
static void apply(ctx *x, size_t idx, const char *text, const cJSON *json,
                  const char *source)
{
  const setting *s = &settings[idx];
  cs_config *c = x->c;
  struct cs_config_meta *m = c->meta;
  char expected[512], num[64];
  expectation(s, expected, sizeof(expected));

  if (s->type == K_SECRET && strncmp(source, "env ", 4) != 0 &&
      strcmp(source, "default") != 0) {
    const setting *f = secret_file_of(s);
    char env[128];
    env_name(s->name, env, sizeof(env));
    fail(x, s, NULL, text, json, source,
         "secrets are read only from the environment (%s) or a mounted file "
         "(%s), never from flags or the configuration file",
         env, f ? f->name : "none");
    return;
  }

  if (s->type == K_JSON) {
    cJSON *owned = NULL;
    if (text) {
      size_t off = 0;
      owned = parse_json(text, strlen(text), &off);
      if (!owned) {
        fail(x, s, NULL, text, NULL, source,
             "expected %s; invalid JSON at offset %zu", expected, off);
        return;
      }
      json = owned;
    }
    void *items = NULL;
    size_t n = 0;
    bool ok = s->load(x, s, source, json, &items, &n);
    if (!ok) {
      s->drop(items, n);
      cJSON_Delete(owned);
      return;
    }
    void **pitems = (void **)field(c, s->off);
    size_t *pn = (size_t *)field(c, s->off_n);
    s->drop(*pitems, *pn);
    *pitems = items;
    *pn = n;
    cJSON_Delete(m->json[idx]);
    m->json[idx] = owned ? owned : cJSON_Duplicate(json, true);
    goto done;
  }

  const char *t = text;
  if (!t && !json_text(s, json, num, sizeof(num), &t)) {
    fail(x, s, NULL, NULL, json, source, "expected %s", expected);
    return;
  }

  switch (s->type) {
  case K_STRING:
  case K_PATH:
  case K_SECRET: {
    size_t len = strlen(t);
    if (len > CS_CONFIG_STRING_MAX) {
      fail(x, s, NULL, t, NULL, source,
           "is %zu bytes long, expected %s of at most %u bytes", len, expected,
           CS_CONFIG_STRING_MAX);
      return;
    }
    if (memchr(t, '\n', len)) {
      fail(x, s, NULL, t, NULL, source, "expected %s on one line", expected);
      return;
    }
    const char *why = s->check ? s->check(t) : NULL;
    if (why && why != s->check(NULL)) { /* a check that says what is wrong */
      fail(x, s, NULL, t, NULL, source, "%s, expected %s", why, expected);
      return;
    }
    if (why) {
      fail(x, s, NULL, t, NULL, source, "expected %s", expected);
      return;
    }
    char **p = str_field(c, s);
    free(*p);
    *p = cs_strdup(t);
    break;
  }
  case K_BOOL: {
    bool v;
    if (!strcmp(t, "true"))
      v = true;
    else if (!strcmp(t, "false"))
      v = false;
    else {
      fail(x, s, NULL, t, text ? NULL : json, source, "expected %s", expected);
      return;
    }
    *(bool *)field(c, s->off) = v;
    break;
  }
  case K_INT:
  case K_SIZE: {
    double v = 0;
    int64_t i = 0;
    bool ok = s->type == K_SIZE ? parse_size(t, &v)
                                : cs_parse_int64(t, &i, NULL) == CS_OK;
    if (s->type == K_INT)
      v = (double)i;
    if (!ok || v < s->min || v > s->max) {
      fail(x, s, NULL, text ? t : NULL, text ? NULL : json, source,
           "expected %s", expected);
      return;
    }
    *(int64_t *)field(c, s->off) = (int64_t)v;
    break;
  }
  case K_DOUBLE:
  case K_DURATION: {
    double v = 0;
    bool ok = s->type == K_DOUBLE ? cs_parse_double(t, &v, NULL) == CS_OK
                                  : cs_parse_duration(t, &v, NULL) == CS_OK;
    if (!ok || v < s->min || v > s->max) {
      fail(x, s, NULL, text ? t : NULL, text ? NULL : json, source,
           "expected %s", expected);
      return;
    }
    *(double *)field(c, s->off) = v;
    if (s->type == K_DURATION) {
      free(m->shown[idx]);
      m->shown[idx] = cs_strdup(t);
    }
    break;
  }
  case K_ENUM: {
    int found = -1;
    for (int i = 0; s->choices[i]; i++)
      if (!strcmp(s->choices[i], t))
        found = i;
    if (found < 0) {
      fail(x, s, NULL, t, NULL, source, "expected %s", expected);
      return;
    }
    *(int *)field(c, s->off) = found;
    break;
  }
  case K_JSON:
    break;
  }
done:
  free(m->source[idx]);
  m->source[idx] = cs_strdup(source);
}

/* ---- JSON settings ---- */

static char *path_of(const setting *s, const char *member, int index)
{
  if (member)
    return cs_asprintf("%s.%s", s->name, member);
  return cs_asprintf("%s[%d]", s->name, index);
}

static bool want_object(ctx *x, const setting *s, const char *source,
                        const cJSON *v)
{
  if (cJSON_IsObject(v))
    return true;
  char expected[256];
  expectation(s, expected, sizeof(expected));
  fail(x, s, NULL, NULL, v, source, "expected %s", expected);
  return false;
}

/* Whether member m of object obj repeats the key of an earlier member,
 * and then reports it at path. cJSON keeps both, and the loaders would
 * silently take the last; a duplicate is as likely a typo in the other
 * key, so neither wins. */
static bool repeated_key(ctx *x, const setting *s, const char *path,
                         const cJSON *obj, const cJSON *m, const char *source)
{
  for (const cJSON *p = obj->child; p && p != m; p = p->next) {
    if (!strcmp(p->string, m->string)) {
      fail(x, s, path, NULL, NULL, source,
           "the key \"%.60s\" is given more than once; give it once",
           m->string);
      return true;
    }
  }
  return false;
}

/* The object loaders below keep the members that were fine even when
 * others were not, and return true once the value is an object: the bad
 * members' errors fail the load all the same, so such a value is never
 * served, but the checks made after loading (the file provider reading
 * file.traces, the routes' providers) must see the good ones, or their
 * problems would only show in the next run. */
static bool load_regions(ctx *x, const setting *s, const char *source,
                         const cJSON *v, void *items, size_t *n)
{
  if (!want_object(x, s, source, v))
    return false;
  cs_config_pair *out =
      cs_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*out));
  *(cs_config_pair **)items = out;
  const cJSON *m;
  cJSON_ArrayForEach(m, v)
  {
    char *path = path_of(s, m->string, 0);
    if (repeated_key(x, s, path, v, m, source))
      ;
    else if (!plain_region(m->string))
      fail(x, s, path, NULL, NULL, source,
           "expected the key to be a cloud region such as eu-west-1 (1 to "
           "63 of a-z, 0-9 and '-')");
    else if (!cJSON_IsString(m) || check_zone_id(m->valuestring, false))
      fail(x, s, path, NULL, m, source,
           "expected a grid zone id such as \"DE\" or \"US-CAL-CISO\"");
    else {
      out[*n].key = cs_strdup(m->string);
      out[*n].value = cs_strdup(m->valuestring);
      (*n)++;
    }
    free(path);
  }
  return true;
}

/* An object mapping grid zones to non-empty strings (ukgrid.zones,
 * file.traces); the provider checks the values when it is built. */
static bool load_zone_strings(ctx *x, const setting *s, const char *source,
                              const cJSON *v, void *items, size_t *n)
{
  if (!want_object(x, s, source, v))
    return false;
  cs_config_pair *out =
      cs_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*out));
  *(cs_config_pair **)items = out;
  const cJSON *m;
  cJSON_ArrayForEach(m, v)
  {
    char *path = path_of(s, m->string, 0);
    if (repeated_key(x, s, path, v, m, source))
      ;
    else if (check_zone_id(m->string, false))
      fail(x, s, path, NULL, NULL, source,
           "expected the key to be a grid zone id such as DE or GB-REGION-13");
    else if (!cJSON_IsString(m) || !*m->valuestring ||
             strlen(m->valuestring) > 1000)
      fail(x, s, path, NULL, m, source,
           "expected a non-empty string of at most 1000 bytes");
    else {
      out[*n].key = cs_strdup(m->string);
      out[*n].value = cs_strdup(m->valuestring);
      (*n)++;
    }
    free(path);
  }
  return true;
}

static bool load_numbers(ctx *x, const setting *s, const char *source,
                         const cJSON *v, void *items, size_t *n)
{
  if (!want_object(x, s, source, v))
    return false;
  cs_config_number *out =
      cs_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*out));
  *(cs_config_number **)items = out;
  bool pue = s->off == offsetof(cs_config, zones_pue);
  const cJSON *m;
  cJSON_ArrayForEach(m, v)
  {
    char *path = path_of(s, m->string, 0);
    if (repeated_key(x, s, path, v, m, source))
      ;
    else if (check_zone_id(m->string, false))
      fail(x, s, path, NULL, NULL, source,
           "expected the key to be a grid zone id such as DE or US-CAL-CISO");
    else if (!cJSON_IsNumber(m) || m->valuedouble < s->min ||
             m->valuedouble > s->max)
      fail(x, s, path, NULL, m, source, "expected %s between %g and %g",
           pue ? "a PUE" : "an intensity in gCO2e/kWh", s->min, s->max);
    else {
      out[*n].key = cs_strdup(m->string);
      out[*n].value = m->valuedouble;
      (*n)++;
    }
    free(path);
  }
  return true;
}

static bool known_provider(const char *name)
{
  for (size_t i = 0; provider_names[i]; i++)
    if (!strcmp(provider_names[i], name))
      return true;
  return false;
}

static bool load_routes(ctx *x, const setting *s, const char *source,
                        const cJSON *v, void *items, size_t *n)
{
  if (!want_object(x, s, source, v))
    return false;
  cs_config_route *out =
      cs_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*out));
  *(cs_config_route **)items = out;
  size_t nproviders = 0;
  while (provider_names[nproviders])
    nproviders++;
  const cJSON *m;
  cJSON_ArrayForEach(m, v)
  {
    char *path = path_of(s, m->string, 0);
    size_t errs = x->nerrors;
    if (repeated_key(x, s, path, v, m, source))
      ;
    else if (strcmp(m->string, "*") != 0 && check_zone_id(m->string, false))
      fail(x, s, path, NULL, NULL, source,
           "expected the key to be a grid zone id such as DE, or \"*\"");
    else if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0)
      fail(x, s, path, NULL, m, source,
           "expected a non-empty array of provider names (%s, %s, %s, %s, "
           "%s, %s)",
           provider_names[0], provider_names[1], provider_names[2],
           provider_names[3], provider_names[4], provider_names[5]);
    else {
      int i = 0;
      const cJSON *p;
      cJSON_ArrayForEach(p, m)
      {
        char *ppath = cs_asprintf("%s[%d]", path, i);
        if (!cJSON_IsString(p) || !known_provider(p->valuestring)) {
          const char *guess =
              cJSON_IsString(p)
                  ? cs_closest_name(p->valuestring, provider_names, nproviders)
                  : NULL;
          fail(x, s, ppath, NULL, p, source,
               "expected a provider name (%s, %s, %s, %s, %s or %s)%s%s%s",
               provider_names[0], provider_names[1], provider_names[2],
               provider_names[3], provider_names[4], provider_names[5],
               guess ? "; did you mean " : "", guess ? guess : "",
               guess ? "?" : "");
        } else {
          for (const cJSON *q = m->child; q != p; q = q->next)
            if (cJSON_IsString(q) && !strcmp(q->valuestring, p->valuestring))
              fail(x, s, ppath, NULL, p, source,
                   "expected each provider at most once per zone");
        }
        free(ppath);
        i++;
      }
      if (x->nerrors == errs) {
        cs_config_route *r = &out[*n];
        r->zone = cs_strdup(m->string);
        r->nproviders = (size_t)cJSON_GetArraySize(m);
        r->providers = cs_calloc(r->nproviders, sizeof(char *));
        size_t k = 0;
        cJSON_ArrayForEach(p, m) r->providers[k++] = cs_strdup(p->valuestring);
        (*n)++;
      }
    }
    free(path);
  }
  return true;
}

typedef struct gpu_field {
  const char *key;
  size_t off;
  double min, max;
  const char *what;
  bool whole; /* a count: no fraction */
} gpu_field;

static const gpu_field gpu_numbers[] = {
    {"powerWatts", offsetof(cs_config_gpu, power_w), 1, 5000,
     "a number of watts", false},
    {"tensorTflops", offsetof(cs_config_gpu, tensor_tflops), 0.1, 100000,
     "a number of dense FP16/BF16 TFLOPS", false},
    {"memoryGb", offsetof(cs_config_gpu, memory_gb), 1, 100000,
     "a number of gigabytes", false},
    {"relativeThroughput", offsetof(cs_config_gpu, relative_throughput), 0.001,
     1e6, "a relative training throughput", false},
    {"embodiedKg", offsetof(cs_config_gpu, embodied_kg), 1, 10000,
     "a number of kg CO2e per card", false},
    {"devicesPerCard", offsetof(cs_config_gpu, devices_per_card), 1,
     CS_GPU_MAX_DEVICES_PER_CARD,
     "a whole number of schedulable devices one card shows", true},
};

#define NGPU_NUMBERS (sizeof(gpu_numbers) / sizeof(gpu_numbers[0]))

static bool plain_label(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (!n || n > max)
    return false;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
      return false;
  return true;
}

static void load_gpu(ctx *x, const setting *s, const char *source,
                     const cJSON *e, int index, cs_config_gpu *g)
{
  static const char *const keys[] = {"name",
                                     "vendor",
                                     "labels",
                                     "powerWatts",
                                     "tensorTflops",
                                     "memoryGb",
                                     "relativeThroughput",
                                     "embodiedKg",
                                     "devicesPerCard"};
  const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
  char path[160];
  const cJSON *m;
  cJSON_ArrayForEach(m, e)
  {
    snprintf(path, sizeof(path), "%s[%d].%.60s", s->name, index, m->string);
    if (repeated_key(x, s, path, e, m, source))
      continue;
    if (!strcmp(m->string, "name")) {
      if (!cJSON_IsString(m) || !plain_label(m->valuestring, 63))
        fail(x, s, path, NULL, m, source,
             "expected a model name such as \"H100-SXM5-80GB\" (1 to 63 "
             "letters, digits, '-', '_', '.')");
      else
        g->name = cs_strdup(m->valuestring);
    } else if (!strcmp(m->string, "vendor")) {
      if (!cJSON_IsString(m) || !plain_label(m->valuestring, 31))
        fail(x, s, path, NULL, m, source,
             "expected a vendor name such as \"NVIDIA\" or \"AMD\"");
      else
        g->vendor = cs_strdup(m->valuestring);
    } else if (!strcmp(m->string, "labels")) {
      if (!cJSON_IsArray(m)) {
        fail(x, s, path, NULL, m, source,
             "expected an array of node-label values such as "
             "[\"NVIDIA-H100-80GB-HBM3\"]");
        continue;
      }
      g->labels = cs_calloc((size_t)cJSON_GetArraySize(m) + 1, sizeof(char *));
      int i = 0;
      const cJSON *l;
      cJSON_ArrayForEach(l, m)
      {
        if (!cJSON_IsString(l) || !plain_label(l->valuestring, 63)) {
          char lpath[200];
          snprintf(lpath, sizeof(lpath), "%s[%d]", path, i);
          fail(x, s, lpath, NULL, l, source,
               "expected a node-label value (1 to 63 letters, digits, '-', "
               "'_', '.')");
        } else {
          g->labels[g->nlabels++] = cs_strdup(l->valuestring);
        }
        i++;
      }
    } else {
      const gpu_field *f = NULL;
      for (size_t i = 0; i < NGPU_NUMBERS; i++)
        if (!strcmp(gpu_numbers[i].key, m->string))
          f = &gpu_numbers[i];
      if (!f) {
        const char *guess = cs_closest_name(m->string, keys, nkeys);
        fail(x, s, path, NULL, NULL, source,
             "unknown field; expected one of name, vendor, labels, "
             "powerWatts, tensorTflops, memoryGb, relativeThroughput, "
             "embodiedKg, devicesPerCard%s%s%s",
             guess ? " (did you mean " : "", guess ? guess : "",
             guess ? "?)" : "");
      } else if (!cJSON_IsNumber(m) || m->valuedouble < f->min ||
                 m->valuedouble > f->max ||
                 (f->whole && m->valuedouble != floor(m->valuedouble))) {
        fail(x, s, path, NULL, m, source, "expected %s between %g and %g",
             f->what, f->min, f->max);
      } else {
        *(double *)((char *)g + f->off) = m->valuedouble;
      }
    }
  }
  if (!g->name && !cJSON_GetObjectItemCaseSensitive(e, "name")) {
    snprintf(path, sizeof(path), "%s[%d]", s->name, index);
    fail(x, s, path, NULL, NULL, source,
         "expected a \"name\" member naming the model");
  }
  if (!g->vendor)
    g->vendor = cs_strdup("");
}

static bool load_gpus(ctx *x, const setting *s, const char *source,
                      const cJSON *v, void *items, size_t *n)
{
  if (!cJSON_IsArray(v)) {
    fail(x, s, NULL, NULL, v, source,
         "expected a JSON array of GPU model objects");
    return false;
  }
  cs_config_gpu *out =
      cs_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*out));
  *(cs_config_gpu **)items = out;
  int index = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v)
  {
    if (!cJSON_IsObject(e)) {
      char *path = path_of(s, NULL, index);
      fail(x, s, path, NULL, e, source,
           "expected an object such as {\"name\": \"H100-SXM5-80GB\", "
           "\"powerWatts\": 700}");
      free(path);
      /* A place holder, so that gpus[i] is the i-th element here too. */
      out[(*n)++] = (cs_config_gpu){.invalid = true};
    } else {
      size_t errs = x->nerrors;
      cs_config_gpu *g = &out[(*n)++];
      load_gpu(x, s, source, e, index, g);
      for (size_t k = 0; g->name && k + 1 < *n; k++) {
        if (out[k].name && !strcasecmp(out[k].name, g->name)) {
          char *path = path_of(s, NULL, index);
          fail(x, s, path, NULL, NULL, source,
               "model \"%s\" is already listed at %s[%zu]", g->name, s->name,
               k);
          free(path);
          break;
        }
      }
      g->invalid = x->nerrors != errs;
    }
    index++;
  }
  /* Kept even with errors (the load fails all the same): the GPU catalog
   * is checked after loading (cmd_serve.c), and it must see the elements
   * that are fine, or their problems would only show in the next run. */
  return true;
}

static void drop_pairs(void *items, size_t n)
{
  cs_config_pair *p = items;
  for (size_t i = 0; p && i < n; i++) {
    free(p[i].key);
    free(p[i].value);
  }
  free(p);
}

static void drop_numbers(void *items, size_t n)
{
  cs_config_number *p = items;
  for (size_t i = 0; p && i < n; i++)
    free(p[i].key);
  free(p);
}

static void drop_routes(void *items, size_t n)
{
  cs_config_route *r = items;
  for (size_t i = 0; r && i < n; i++) {
    free(r[i].zone);
    for (size_t k = 0; k < r[i].nproviders; k++)
      free(r[i].providers[k]);
    free(r[i].providers);
  }
  free(r);
}

static void drop_gpus(void *items, size_t n)
{
  cs_config_gpu *g = items;
  for (size_t i = 0; g && i < n; i++) {
    free(g[i].name);
    free(g[i].vendor);
    for (size_t k = 0; k < g[i].nlabels; k++)
      free(g[i].labels[k]);
    free(g[i].labels);
  }
  free(g);
}

/* ---- the layers ---- */

static cs_config *alloc_config(void)
{
  cs_config *c = cs_calloc(1, sizeof(*c));
  c->meta = cs_calloc(1, sizeof(*c->meta));
  for (size_t i = 0; i < NSETTINGS; i++)
    if (settings[i].type <= K_SECRET)
      *str_field(c, &settings[i]) = cs_strdup("");
  return c;
}

static void apply_defaults(ctx *x)
{
  for (size_t i = 0; i < NSETTINGS; i++) {
    if (settings[i].type == K_JSON) {
      cJSON *v = cJSON_Parse(settings[i].def);
      apply(x, i, NULL, v, "default");
      cJSON_Delete(v);
    } else {
      apply(x, i, settings[i].def, NULL, "default");
    }
  }
}

static bool has_prefix_setting(const char *prefix)
{
  size_t n = strlen(prefix);
  for (size_t i = 0; i < NSETTINGS; i++)
    if (!strncmp(settings[i].name, prefix, n) && settings[i].name[n] == '.')
      return true;
  return false;
}

static void walk_file(ctx *x, const cJSON *obj, const char *prefix,
                      const char *source)
{
  const cJSON *m;
  cJSON_ArrayForEach(m, obj)
  {
    char name[256];
    int len = snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "",
                       m->string);
    int idx = len > 0 && (size_t)len < sizeof(name) ? find_setting(name) : -1;
    if (idx >= 0) {
      if (x->c->meta->in_file[idx]) {
        fail(x, &settings[idx], NULL, NULL, m, source,
             "the setting appears more than once in the file");
        continue;
      }
      x->c->meta->in_file[idx] = true;
      apply(x, (size_t)idx, NULL, m, source);
    } else if (cJSON_IsObject(m) && (size_t)len < sizeof(name) &&
               has_prefix_setting(name)) {
      walk_file(x, m, name, source);
    } else {
      x->nerrors++;
      if (x->errors) {
        cs_buf_puts(x->errors, "config: unknown setting ");
        put_name(x->errors, name);
        cs_buf_printf(x->errors, " (%s)", source);
        hint(x->errors, closest_setting(name));
        cs_buf_putc(x->errors, '\n');
      }
    }
  }
}

static void apply_file(ctx *x, const char *path, const char *how)
{
  char why[128];
  size_t len = 0;
  char *source = cs_asprintf("file %s", path);
  char *text = NULL;
  cJSON *root = NULL;
  if (cs_read_file(path, CS_CONFIG_FILE_MAX, &text, &len, why, sizeof(why))) {
    x->nerrors++;
    cs_buf_printf(x->errors,
                  "config: cannot read the configuration file %s "
                  "(%s): %s\n",
                  path, how, why);
    goto out;
  }
  size_t off = 0;
  root = parse_json(text, len, &off);
  if (!root) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
      if (text[i] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    x->nerrors++;
    cs_buf_printf(x->errors,
                  "config: %s is not valid JSON: error at line %zu, column "
                  "%zu (byte offset %zu)\n",
                  path, line, col, off);
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    x->nerrors++;
    cs_buf_printf(x->errors,
                  "config: %s: expected a JSON object of settings such as "
                  "{\"listen\": \"0.0.0.0:8443\"}\n",
                  path);
    goto out;
  }
  walk_file(x, root, "", source);
out:
  cJSON_Delete(root);
  free(text);
  free(source);
}

static const char *env_get(char *const *envp, const char *name)
{
  size_t n = strlen(name);
  for (size_t i = 0; envp && envp[i]; i++)
    if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
      return envp[i] + n + 1;
  return NULL;
}

/* Variables Kubernetes injects for a Service named carbonshift[-...]
 * (CARBONSHIFT_SERVICE_HOST, CARBONSHIFT_PORT_8080_TCP_ADDR, ...). */
static bool service_link(const char *var, size_t n)
{
  char name[256];
  if (n >= sizeof(name))
    return false;
  memcpy(name, var, n);
  name[n] = '\0';
  if (strstr(name, "_SERVICE_HOST") || strstr(name, "_SERVICE_PORT"))
    return true;
  if (n >= 5 && !strcmp(name + n - 5, "_PORT"))
    return true;
  const char *p = strstr(name, "_PORT_");
  return p && isdigit((unsigned char)p[6]);
}

static void apply_env(ctx *x, char *const *envp)
{
  char env[128];
  const char *envs[NSETTINGS];
  char names[NSETTINGS][128];
  for (size_t i = 0; i < NSETTINGS; i++) {
    env_name(settings[i].name, names[i], sizeof(names[i]));
    envs[i] = names[i];
    const char *v = env_get(envp, names[i]);
    if (v) {
      snprintf(env, sizeof(env), "env %s", names[i]);
      apply(x, i, v, NULL, env);
    }
  }
  for (size_t i = 0; envp && envp[i]; i++) {
    const char *e = envp[i], *eq = strchr(e, '=');
    if (strncmp(e, "CARBONSHIFT_", 12) != 0 || !eq)
      continue;
    size_t n = (size_t)(eq - e);
    bool known =
        n == strlen(CS_CONFIG_ENV_FILE) && !strncmp(e, CS_CONFIG_ENV_FILE, n);
    for (size_t k = 0; k < NSETTINGS && !known; k++)
      known = strlen(names[k]) == n && !strncmp(names[k], e, n);
    if (known || service_link(e, n) || !x->warnings)
      continue;
    char var[128];
    snprintf(var, sizeof(var), "%.*s", (int)(n < 100 ? n : 100), e);
    cs_buf_printf(x->warnings, "config: unknown environment variable %s", var);
    hint(x->warnings, cs_closest_name(var, envs, NSETTINGS));
    cs_buf_puts(x->warnings, "; ignored\n");
  }
}

static void apply_flags(ctx *x, const cs_config_flags *f)
{
  for (size_t i = 0; f && i < f->n; i++) {
    const flag_entry *e = &f->v[i];
    if (e->idx < 0) {
      x->nerrors++;
      cs_buf_puts(x->errors, "config: unknown setting ");
      put_name(x->errors, e->name);
      cs_buf_printf(x->errors, " (%s)", e->source);
      hint(x->errors, closest_setting(e->name));
      cs_buf_putc(x->errors, '\n');
      continue;
    }
    apply(x, (size_t)e->idx, e->value, NULL, e->source);
  }
}

static bool from_default(const cs_config *c, const char *name)
{
  const char *src = cs_config_source(c, name);
  return !src || !strcmp(src, "default");
}

/* A secret file's path as messages may show it: NULL when it holds no
 * '/', because a value that is not a path may be the secret itself, pasted
 * into the wrong variable. */
static const char *secret_path_shown(const char *path)
{
  return strchr(path, '/') ? path : NULL;
}

#define SECRET_PATH_HIDDEN                                                     \
  " (the value is not shown: without a '/' it may be the secret itself "       \
  "rather than a path)"

/* Fills each secret from its ...File setting. */
static void read_secret_files(ctx *x)
{
  cs_config *c = x->c;
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    /* Only ...File settings are strings here: read the field after the
     * test, since other settings' fields are numbers. */
    if (!s->secret_of)
      continue;
    const char *path = *str_field(c, s);
    if (!*path)
      continue;
    int t = find_setting(s->secret_of);
    const char *shown = secret_path_shown(path);
    if (!from_default(c, s->secret_of)) {
      fail(x, s, NULL, shown, NULL, c->meta->source[i],
           "%s is also set (%s); set only one of them%s", s->secret_of,
           c->meta->source[t], shown ? "" : SECRET_PATH_HIDDEN);
      continue;
    }
    char why[128];
    size_t len = 0;
    char *secret = NULL;
    if (cs_read_file(path, CS_CONFIG_SECRET_MAX, &secret, &len, why,
                     sizeof(why))) {
      fail(x, s, NULL, shown, NULL, c->meta->source[i],
           "expected the path of a readable file holding %s: %s%s",
           s->secret_of, why, shown ? "" : SECRET_PATH_HIDDEN);
      continue;
    }
    /* Mounted Secrets often end with a newline that is not part of it. */
    while (len && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
      secret[--len] = '\0';
    if (!len || memchr(secret, '\n', len) || strlen(secret) != len) {
      fail(x, s, NULL, path, NULL, c->meta->source[i],
           "expected the file to hold %s on one line", s->secret_of);
      free(secret);
      continue;
    }
    char **p = str_field(c, &settings[t]);
    free(*p);
    *p = secret;
    free(c->meta->source[t]);
    c->meta->source[t] = cs_asprintf("file %s (%s)", path, s->name);
  }
}

/* Checks between settings and on the effective values only. */
static void cross_check(ctx *x)
{
  cs_config *c = x->c;
  const char *cert = c->tls_cert_file, *key = c->tls_key_file,
             *ca = c->tls_client_ca_file;
  if (*cert && !*key)
    fail(x, &settings[find_setting("tls.certFile")], NULL, cert, NULL,
         cs_config_source(c, "tls.certFile"),
         "expected tls.keyFile (--tls-key) as well: a certificate needs its "
         "private key");
  if (*key && !*cert)
    fail(x, &settings[find_setting("tls.keyFile")], NULL, key, NULL,
         cs_config_source(c, "tls.keyFile"),
         "expected tls.certFile (--tls-cert) as well: a key needs its "
         "certificate");
  if (*ca && (!*cert || !*key))
    fail(x, &settings[find_setting("tls.clientCAFile")], NULL, ca, NULL,
         cs_config_source(c, "tls.clientCAFile"),
         "expected tls.certFile and tls.keyFile as well: client "
         "certificates are only checked over HTTPS");
  const char *probe = c->http_probe_listen,
             *main_port = strrchr(c->listen, ':'),
             *probe_port = *probe ? strrchr(probe, ':') : NULL;
  if (probe_port && main_port && strcmp(probe_port, ":0") != 0 &&
      strcmp(probe_port, main_port) == 0)
    fail(x, &settings[find_setting("http.probeListen")], NULL, probe, NULL,
         cs_config_source(c, "http.probeListen"),
         "expected a port other than listen's (%s): the probe listener is a "
         "second socket",
         c->listen);
  /* A fetch comes up to 10 % late (the jitter): a value must outlive
   * that, or every zone falls to the next provider between fetches. */
  if (c->carbon_refresh_interval_s * 1.1 >= c->carbon_max_age_s) {
    char max_age[32], refresh[32], limit[32];
    cs_format_duration(c->carbon_max_age_s, max_age);
    cs_format_duration(c->carbon_refresh_interval_s, refresh);
    cs_format_duration(floor(c->carbon_max_age_s / 1.1), limit);
    fail(x, &settings[find_setting("carbon.refreshInterval")], NULL, refresh,
         NULL, cs_config_source(c, "carbon.refreshInterval"),
         "expected less than %s, carbon.maxAge (%s) over 1.1: a fetch comes "
         "up to 10%% late, and values would expire before it renews them, "
         "the zones falling to the next provider in between",
         limit, max_age);
  }
  if (c->kube_mode == CS_KUBE_KUBECONFIG && !*c->kube_kubeconfig)
    fail(x, &settings[find_setting("kube.mode")], NULL,
         kube_modes[CS_KUBE_KUBECONFIG], NULL, cs_config_source(c, "kube.mode"),
         "expected kube.kubeconfig (--kubeconfig) as well: $KUBECONFIG and "
         "~/.kube/config are not read");
  /* The WattTime provider is built only from a whole login: half of one
   * would otherwise leave the provider out without a word. A password file
   * counts as a password even when it could not be read, whose own error
   * is reported above. */
  const char *wt_user = c->watttime_username,
             *wt_file = c->watttime_password_file;
  bool wt_pass = *c->watttime_password || *wt_file;
  if (*wt_user && !wt_pass)
    fail(x, &settings[find_setting("watttime.username")], NULL, wt_user, NULL,
         cs_config_source(c, "watttime.username"),
         "expected watttime.password (CARBONSHIFT_WATTTIME_PASSWORD) or "
         "watttime.passwordFile as well: a WattTime login needs both");
  if (!*wt_user && wt_pass) {
    const char *name = *wt_file ? "watttime.passwordFile" : "watttime.password";
    fail(x, &settings[find_setting(name)], NULL,
         *wt_file ? wt_file : c->watttime_password, NULL,
         cs_config_source(c, name),
         "expected watttime.username (CARBONSHIFT_WATTTIME_USERNAME) as "
         "well: a WattTime login needs both");
  }
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    const char *path = s->type == K_PATH ? *str_field(c, s) : "";
    if (s->secret_of || !*path)
      continue;
    char why[128];
    if (cs_check_file(path, why, sizeof(why)) != CS_OK)
      fail(x, s, NULL, path, NULL, c->meta->source[i],
           "expected a readable file: %s", why);
  }
}

static void config_free_fields(cs_config *c)
{
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    if (s->type <= K_SECRET) {
      char **p = str_field(c, s);
      if (s->type == K_SECRET && *p)
        memset(*p, 0, strlen(*p));
      free(*p);
    } else if (s->type == K_JSON) {
      s->drop(*(void **)field(c, s->off), *(size_t *)field(c, s->off_n));
    }
    free(c->meta->source[i]);
    free(c->meta->shown[i]);
    cJSON_Delete(c->meta->json[i]);
  }
}

void cs_config_free(cs_config *c)
{
  if (!c)
    return;
  config_free_fields(c);
  free(c->meta);
  free(c);
}

cs_config *cs_config_defaults(void)
{
  cs_config *c = alloc_config();
  cs_buf errors;
  cs_buf_init(&errors, 64 << 10);
  ctx x = {.c = c, .errors = &errors};
  apply_defaults(&x);
  if (x.nerrors) {
    /* A default that does not pass its own validation is a bug in the
     * table; check_config catches it before any release. */
    (void)!write(STDERR_FILENO, errors.data, errors.len);
    abort();
  }
  cs_buf_free(&errors);
  return c;
}

cs_err cs_config_load(const cs_config_flags *flags, char *const *envp,
                      cs_config **out, cs_buf *errors, cs_buf *warnings)
{
  if (!envp)
    envp = environ;
  cs_config *c = cs_config_defaults();
  ctx x = {.c = c, .errors = errors, .warnings = warnings};
  const char *file = flags ? flags->config_file : NULL;
  const char *how = "--config";
  if (!file) {
    file = env_get(envp, CS_CONFIG_ENV_FILE);
    how = "env " CS_CONFIG_ENV_FILE;
    if (file && !*file)
      file = NULL;
  }
  if (file)
    apply_file(&x, file, how);
  apply_env(&x, envp);
  apply_flags(&x, flags);
  read_secret_files(&x);
  cross_check(&x);
  *out = c;
  return x.nerrors ? CS_EINVAL : CS_OK;
}

const char *cs_config_source(const cs_config *c, const char *name)
{
  int i = find_setting(name);
  return i < 0 ? NULL : c->meta->source[i];
}

/* ---- flags ---- */

cs_config_flags *cs_config_flags_new(void)
{
  return cs_calloc(1, sizeof(cs_config_flags));
}

void cs_config_flags_free(cs_config_flags *f)
{
  if (!f)
    return;
  for (size_t i = 0; i < f->n; i++) {
    free(f->v[i].name);
    free(f->v[i].value);
    free(f->v[i].source);
  }
  free(f->v);
  free(f->config_file);
  free(f);
}

static void add_flag(cs_config_flags *f, int idx, const char *name,
                     const char *value, char *source)
{
  f->v = cs_realloc(f->v, (f->n + 1) * sizeof(*f->v));
  f->v[f->n++] = (flag_entry){.idx = idx,
                              .name = cs_strdup(name),
                              .value = cs_strdup(value),
                              .source = source};
}

/* The flag `arg` names, in its long form ("-v=2" and "--v" are "--v"),
 * into flag; false when arg is not written as a flag. Whether it is one of
 * ours is the caller's to find. *value: after its '=', or NULL. */
static bool flag_name(const char *arg, char flag[64], const char **value)
{
  if (arg[0] != '-' || !arg[1])
    return false;
  bool dashdash = arg[1] == '-';
  const char *name = arg + (dashdash ? 2 : 1);
  const char *eq = strchr(name, '=');
  size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
  /* One dash only for one-letter flags (-v 2), as klog does. */
  if ((!dashdash && nlen != 1) || nlen + 3 > 64)
    return false;
  snprintf(flag, 64, "--%.*s", (int)nlen, name);
  *value = eq ? eq + 1 : NULL;
  return true;
}

/* The index of the setting whose flag is `flag` (long form), or -1. */
static int flag_setting(const char *flag)
{
  for (size_t k = 0; k < NSETTINGS; k++)
    if (settings[k].flag && !strcmp(settings[k].flag, flag))
      return (int)k;
  return -1;
}

const char *cs_config_flag_setting(const char *arg)
{
  char flag[64];
  const char *value;
  if (!flag_name(arg, flag, &value))
    return NULL;
  int idx = flag_setting(flag);
  return idx < 0 ? NULL : settings[idx].name;
}

cs_err cs_config_flags_take(cs_config_flags *f, int argc, char **argv, int *i,
                            bool *taken, char *err, size_t errcap)
{
  const char *arg = argv[*i];
  *taken = false;
  char flag[64];
  const char *value;
  if (!flag_name(arg, flag, &value))
    return CS_OK;
  int idx = flag_setting(flag);
  bool is_config = !strcmp(flag, "--config"), is_set = !strcmp(flag, "--set");
  if (idx < 0 && !is_config && !is_set)
    return CS_OK;
  if (!value) {
    if (*i + 1 >= argc) {
      snprintf(err, errcap, "%s needs a value%s", arg,
               is_set ? " such as --set http.threads=4" : "");
      return CS_EINVAL;
    }
    value = argv[++*i];
  }
  (*i)++;
  *taken = true;
  if (is_config) {
    free(f->config_file);
    f->config_file = cs_strdup(value);
  } else if (is_set) {
    const char *veq = strchr(value, '=');
    if (!veq || veq == value) {
      snprintf(err, errcap,
               "--set needs NAME=VALUE such as --set http.threads=4, not "
               "\"%.100s\"",
               value);
      return CS_EINVAL;
    }
    char *sname = cs_strndup(value, (size_t)(veq - value));
    add_flag(f, find_setting(sname), sname, veq + 1,
             cs_asprintf("flag --set %s", sname));
    free(sname);
  } else {
    add_flag(f, idx, settings[idx].name, value, cs_asprintf("flag %s", flag));
  }
  return CS_OK;
}

/* ---- printing ---- */

void cs_config_print(const cs_config *c, cs_buf *out)
{
  const struct cs_config_meta *m = c->meta;
  cs_json_open(out, NULL, '{');
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    cs_json_open(out, s->name, '{');
    switch (s->type) {
    case K_STRING:
    case K_PATH:
      cs_json_str(out, "value", *str_field((cs_config *)c, s));
      break;
    case K_SECRET:
      if (**str_field((cs_config *)c, s))
        cs_json_str(out, "value", "<redacted>");
      else
        cs_json_null(out, "value");
      break;
    case K_BOOL:
      cs_json_bool(out, "value", *(bool *)field(c, s->off));
      break;
    case K_INT:
    case K_SIZE:
      cs_json_int(out, "value", *(int64_t *)field(c, s->off));
      break;
    case K_DOUBLE:
      cs_json_num(out, "value", *(double *)field(c, s->off), 6);
      break;
    case K_DURATION:
      cs_json_str(out, "value", m->shown[i]);
      cs_json_num(out, "seconds", *(double *)field(c, s->off), 3);
      break;
    case K_ENUM:
      cs_json_str(out, "value", s->choices[*(int *)field(c, s->off)]);
      break;
    case K_JSON: {
      char *j = cJSON_PrintUnformatted(m->json[i]);
      if (j)
        cs_json_raw(out, "value", j, strlen(j));
      else
        cs_json_null(out, "value");
      free(j);
      break;
    }
    }
    cs_json_str(out, "source", m->source[i]);
    cs_json_close(out, '}');
  }
  cs_json_close(out, '}');
}

static const char *type_name(const setting *s)
{
  switch (s->type) {
  case K_STRING:
    return "string";
  case K_PATH:
    return "file path";
  case K_SECRET:
    return "secret";
  case K_BOOL:
    return "bool";
  case K_INT:
    return "integer";
  case K_SIZE:
    return "size (bytes)";
  case K_DOUBLE:
    return "number";
  case K_DURATION:
    return "duration";
  case K_ENUM:
    return "enum";
  case K_JSON:
    return s->load == load_gpus ? "JSON array" : "JSON object";
  }
  return "?";
}

/* Appends text for a Markdown table cell ('|' escaped). */
static void cell(cs_buf *out, const char *s)
{
  for (const char *p = s; *p; p++) {
    if (*p == '|')
      cs_buf_putc(out, '\\');
    cs_buf_putc(out, *p);
  }
}

void cs_config_reference(cs_buf *out)
{
  cs_buf_puts(out, "| Setting | Environment variable | Flag | Type | "
                   "Default | Allowed values | Meaning |\n");
  cs_buf_puts(out, "|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    char env[128], lo[32], hi[32];
    env_name(s->name, env, sizeof(env));
    cs_buf_printf(out, "| `%s` | `%s` | ", s->name, env);
    if (s->flag) {
      cs_buf_printf(out, "`%s`", s->flag);
      if (strlen(s->flag) == 3)
        cs_buf_printf(out, ", `-%s`", s->flag + 2);
    } else if (s->type == K_SECRET) {
      cs_buf_puts(out, "never (secret)");
    }
    cs_buf_printf(out, " | %s | ", type_name(s));
    if (*s->def) {
      cs_buf_puts(out, "`");
      cell(out, s->def);
      cs_buf_puts(out, "`");
    } else {
      cs_buf_puts(out, "unset");
    }
    cs_buf_puts(out, " | ");
    format_bound(s, s->min, lo, sizeof(lo));
    format_bound(s, s->max, hi, sizeof(hi));
    switch (s->type) {
    case K_INT:
    case K_SIZE:
    case K_DOUBLE:
    case K_DURATION:
      cs_buf_printf(out, "%s .. %s", lo, hi);
      break;
    case K_ENUM:
      for (size_t k = 0; s->choices[k]; k++)
        cs_buf_printf(out, "%s`%s`", k ? ", " : "", s->choices[k]);
      break;
    case K_BOOL:
      cs_buf_puts(out, "`true`, `false`");
      break;
    case K_JSON:
      if (s->load == load_numbers)
        cs_buf_printf(out, "values %s .. %s", lo, hi);
      break;
    case K_STRING: {
      const char *what = s->check ? s->check(NULL) : NULL;
      if (what)
        cell(out, what);
      break;
    }
    case K_PATH:
      cs_buf_puts(out, "a readable file");
      break;
    case K_SECRET:
      cs_buf_puts(out, "environment or file only");
      break;
    }
    cs_buf_puts(out, " | ");
    cell(out, s->help);
    cs_buf_puts(out, " |\n");
  }
}

void cs_config_error(cs_buf *errors, const cs_config *c, const char *name,
                     const char *value, const char *fmt, ...)
{
  /* "gpus[3].powerWatts" belongs to "gpus", "zones.regions.x" to
   * "zones.regions": the longest setting name that prefixes the path. */
  int idx = -1;
  size_t best = 0;
  for (size_t i = 0; i < NSETTINGS; i++) {
    size_t n = strlen(settings[i].name);
    if (n > best && !strncmp(settings[i].name, name, n) &&
        (!name[n] || name[n] == '.' || name[n] == '[')) {
      idx = (int)i;
      best = n;
    }
  }
  ctx x = {.c = (cs_config *)c, .errors = errors};
  va_list ap;
  va_start(ap, fmt);
  failv(&x, idx >= 0 ? &settings[idx] : NULL, name, value, NULL,
        c && idx >= 0 ? c->meta->source[idx] : NULL, fmt, ap);
  va_end(ap);
}

void cs_config_flags_usage(cs_buf *out)
{
  cs_buf_puts(out, "  --config FILE         JSON configuration file (else "
                   "$" CS_CONFIG_ENV_FILE ")\n");
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    if (!s->flag)
      continue;
    char left[64];
    if (strlen(s->flag) == 3)
      snprintf(left, sizeof(left), "%s, -%s N", s->flag, s->flag + 2);
    else
      snprintf(left, sizeof(left), "%s VALUE", s->flag);
    cs_buf_printf(out, "  %-21s sets %s\n", left, s->name);
  }
  cs_buf_puts(out, "  --set NAME=VALUE      any setting by name, e.g. --set "
                   "http.threads=4 (not secrets)\n");
}
