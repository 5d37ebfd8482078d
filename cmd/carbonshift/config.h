/* config.h: every setting of carbonshift, declared once in the table in
 * config.c (name, environment variable, flag, type, default, bounds,
 * validator, secrecy, help), read from defaults < JSON file < environment <
 * flags, validated in one pass that reports every error with its source, and
 * printed back (--print-config) or documented (config-reference) from the
 * same table.
 * Thread-safe: loading is not; a loaded cs_config is read-only plain data
 * that any thread may read until cs_config_free.
 * Ownership: cs_config_load hands the caller a cs_config (cs_config_free);
 * it owns every string and array it points to. Flags, environment and file
 * contents are copied; argv and envp are borrowed for the call. */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/buf.h"
#include "carbon/util/error.h"

/* The environment variable naming the configuration file when --config is
 * not given. It is not a setting itself. */
#define CS_CONFIG_ENV_FILE "CARBONSHIFT_CONFIG"
/* The hard cap on a configuration file and on a secret file. */
#define CS_CONFIG_FILE_MAX (1u << 20)
#define CS_CONFIG_SECRET_MAX (64u << 10)
/* Longest string setting given as text (a flag, a variable, the file). */
#define CS_CONFIG_STRING_MAX 4096u

/* One member of an object setting mapping names to names (zones.regions). */
typedef struct cs_config_pair {
  char *key;
  char *value;
} cs_config_pair;

/* One member of an object setting mapping names to numbers (zones.pue,
 * carbon.static). */
typedef struct cs_config_number {
  char *key;
  double value;
} cs_config_number;

/* One member of carbon.routes: a zone ("*" for every other zone) and the
 * provider names to ask, in order. */
typedef struct cs_config_route {
  char *zone;
  char **providers;
  size_t nproviders;
} cs_config_route;

/* One element of `gpus`. Numbers left at 0 were not given: the catalog's
 * figure is kept (or, for a new model, the catalog refuses it). */
typedef struct cs_config_gpu {
  /* The element had errors, already reported (name may be NULL, a bad
   * field is left at 0). Kept only when the load failed, so that the
   * checks made after loading still see the rest of the list and report
   * every problem in one run; never in a configuration that loaded. */
  bool invalid;
  char *name;
  char *vendor; /* "" when not given */
  char **labels;
  size_t nlabels;
  double power_w;
  double tensor_tflops;
  double memory_gb;
  double relative_throughput;
  double embodied_kg;
  double devices_per_card; /* 0: unset */
} cs_config_gpu;

/* Effective values. Strings are never NULL ("" means unset); durations are
 * in seconds; sizes in bytes. Field names follow the setting names. */
typedef struct cs_config {
  char *listen;             /* listen */
  char *http_probe_listen;  /* http.probeListen; "" = none */
  char *path_prefix;        /* pathPrefix */
  char *tls_cert_file;      /* tls.certFile */
  char *tls_key_file;       /* tls.keyFile */
  char *tls_client_ca_file; /* tls.clientCAFile */

  int64_t http_max_body_bytes;      /* http.maxBodyBytes */
  int64_t http_max_header_bytes;    /* http.maxHeaderBytes */
  int64_t http_max_connections;     /* http.maxConnections */
  int64_t http_threads;             /* http.threads; 0 = CPUs */
  int64_t http_decision_threads;    /* http.decisionThreads; 0 = CPUs */
  int64_t http_stream_body_bytes;   /* http.streamBodyBytes; 0 = off */
  double http_connection_timeout_s; /* http.connectionTimeout */
  double http_request_timeout_s;    /* http.requestTimeout */
  double http_header_timeout_s;     /* http.headerTimeout */
  double shutdown_grace_period_s;   /* shutdownGracePeriod */

  int64_t log_verbosity;         /* log.verbosity */
  int64_t log_decision_names;    /* log.decisionNames; 0 = every node */
  int64_t log_decision_repeat_s; /* log.decisionRepeatSeconds; 0: off */

  char *estimate_reference_gpu;       /* estimate.referenceGpu */
  double estimate_default_duration_s; /* estimate.defaultDuration */
  double estimate_server_embodied_kg; /* estimate.serverEmbodiedKg */
  double estimate_gpu_embodied_kg;    /* estimate.gpuEmbodiedKg */
  double nodes_default_lifetime_s;    /* nodes.defaultLifetime */
  double nodes_default_pue;           /* nodes.defaultPue */
  char *nodes_default_zone;           /* nodes.defaultZone; "" = none */

  cs_config_pair *zones_regions; /* zones.regions */
  size_t nzones_regions;
  cs_config_number *zones_pue; /* zones.pue */
  size_t nzones_pue;
  cs_config_gpu *gpus; /* gpus */
  size_t ngpus;

  int carbon_signal_type; /* carbon.signalType: a cs_signal_type value */
  cs_config_number *carbon_static; /* carbon.static */
  size_t ncarbon_static;
  cs_config_route *carbon_routes; /* carbon.routes */
  size_t ncarbon_routes;

  double plan_min_saving;         /* plan.minSaving */
  double plan_min_saving_g;       /* plan.minSavingGrams */
  double plan_replan_margin;      /* plan.replanMargin */
  double plan_forecast_horizon_s; /* plan.forecastHorizon */

  int kube_mode;         /* kube.mode: auto, inCluster, kubeconfig, off */
  char *kube_kubeconfig; /* kube.kubeconfig */
  char *kube_context;    /* kube.context */
  double kube_request_timeout_s; /* kube.requestTimeout */
  double kube_watch_timeout_s;   /* kube.watchTimeout */
  double kube_backoff_max_s;     /* kube.backoffMax */
  bool events_enabled;           /* events.enabled */
  int64_t events_queue_size;     /* events.queueSize */
  double events_dedup_window_s;  /* events.dedupWindow */

  char *electricitymaps_url;                /* electricitymaps.url */
  char *electricitymaps_token;              /* electricitymaps.token (secret) */
  char *electricitymaps_token_file;         /* electricitymaps.tokenFile */
  char *watttime_url;                       /* watttime.url */
  char *watttime_username;                  /* watttime.username */
  char *watttime_password;                  /* watttime.password (secret) */
  char *watttime_password_file;             /* watttime.passwordFile */
  char *ukgrid_url;                         /* ukgrid.url */
  int electricitymaps_emission_factor_type; /* electricitymaps.
                                               emissionFactorType: index of
                                               lifecycle, direct */
  int watttime_signal_type;       /* watttime.signalType: co2_moer, co2_aoer */
  int64_t watttime_horizon_hours; /* watttime.horizonHours */
  cs_config_pair *ukgrid_zones;   /* ukgrid.zones: zone -> target */
  size_t nukgrid_zones;
  cs_config_pair *file_traces; /* file.traces: zone -> path */
  size_t nfile_traces;
  int file_column;                     /* file.column: index of lca, direct */
  char *file_replay_from;              /* file.replayFrom; "" = no replay */
  double carbon_refresh_interval_s;    /* carbon.refreshInterval */
  double carbon_max_age_s;             /* carbon.maxAge */
  double carbon_max_observation_age_s; /* carbon.maxObservationAge */
  double carbon_request_timeout_s;     /* carbon.requestTimeout */

  struct cs_config_meta *meta; /* sources and raw values; private */
} cs_config;

/* Command-line flags collected for cs_config_load: --config FILE,
 * --set NAME=VALUE and every setting's own flag, as `--flag VALUE` or
 * `--flag=VALUE` (one-letter flags also as `-v N`). */
typedef struct cs_config_flags cs_config_flags;

cs_config_flags *cs_config_flags_new(void);
void cs_config_flags_free(cs_config_flags *f);

/* The name of the setting that argument `arg` is the flag of ("--listen"
 * and "--listen=ADDR" give "listen", "-v" gives "log.verbosity"); NULL when
 * it is not a setting's flag. */
const char *cs_config_flag_setting(const char *arg);

/* If argv[*i] is a configuration flag, consumes it and its value (advancing
 * *i past them) and sets *taken. Other arguments are left alone with *taken
 * false. CS_EINVAL when a flag lacks its value; `err` then holds a one-line
 * message. Values are checked later, by cs_config_load, with the rest. */
cs_err cs_config_flags_take(cs_config_flags *f, int argc, char **argv, int *i,
                            bool *taken, char *err, size_t errcap) CS_MUST_USE;

/* Builds the effective configuration from the defaults, the file
 * (--config, else $CARBONSHIFT_CONFIG), the environment `envp` (NULL: the
 * process environment) and `flags` (may be NULL). Every problem becomes one
 * line "config: ..." in `errors`; the result is CS_EINVAL when there was
 * any. *out is set either way (the caller frees it): after errors it holds
 * the values that were valid, so that checks made elsewhere (the GPU
 * catalog) can still run and be reported together. Notes that are not errors
 * (an unknown CARBONSHIFT_ variable) go to `warnings` (may be NULL), one per
 * line. */
cs_err cs_config_load(const cs_config_flags *flags, char *const *envp,
                      cs_config **out, cs_buf *errors,
                      cs_buf *warnings) CS_MUST_USE;

/* The configuration holding only the defaults. */
cs_config *cs_config_defaults(void);
void cs_config_free(cs_config *c);

/* Where the effective value of setting `name` came from: "default",
 * "file /etc/carbonshift.json", "env CARBONSHIFT_LISTEN",
 * "flag --listen", "flag --set listen". NULL for an unknown name. */
const char *cs_config_source(const cs_config *c, const char *name);

/* Appends the effective configuration as one JSON object keyed by setting
 * name, each {"value": ..., "source": "..."}; secrets are "<redacted>"
 * (null when unset). */
void cs_config_print(const cs_config *c, cs_buf *out);

/* Appends one line per flag (--config, each setting's flag, --set) for
 * usage texts. */
void cs_config_flags_usage(cs_buf *out);

/* Appends the Markdown table documenting every setting (the one in
 * docs/configuration.md). */
void cs_config_reference(cs_buf *out);

/* Appends one error line in the standard form, for checks made outside
 * this module (the GPU catalog, say):
 * `config: PATH = VALUE (SOURCE): MESSAGE`, where PATH is a setting name
 * or a path inside one ("gpus[2]") and SOURCE is that setting's. The value
 * is shown quoted; pass NULL to leave out " = VALUE". */
void cs_config_error(cs_buf *errors, const cs_config *c, const char *name,
                     const char *value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
