#include "scheduler/kube.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "carbon/util/hash.h"
#include "carbon/util/http.h"
#include "carbon/util/jtree.h"
#include "carbon/util/version.h"
#include "carbon/util/log.h"
#include "carbon/util/readfile.h"

#define KUBECONFIG_MAX_BYTES (1u << 20)
#define YAML_MAX_DEPTH 32
#define TOKEN_MAX_BYTES (64u << 10)
#define ERRBODY_MAX_BYTES (64u << 10)
#define EVENT_NOTE_MAX 1024
#define EVENT_FIELD_MAX 128
#define REPORTING_CONTROLLER "carbonshift.io/extender"

/* ---------------------------------------------------------------- errors */

static void seterr(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t cap, const char *fmt, ...)
{
  if (!err || !cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ YAML tree */

/* A kubeconfig as a tree of scalars, mappings and sequences. Mapping items
 * alternate key, value; keys are scalars. Anchors and aliases are refused:
 * kubeconfigs written by kubectl never use them. */
typedef enum ytype { Y_SCALAR, Y_MAP, Y_SEQ } ytype;

typedef struct ynode {
  ytype type;
  char *str;  /* scalars */
  bool plain; /* a scalar without quotes: may be a bool or a null */
  bool null;  /* a plain ~, null, Null or NULL: YAML's null, not a string */
  struct ynode **items;
  size_t n;
  size_t line; /* 1-based, for messages */
} ynode;

static void ynode_free(ynode *y)
{
  if (!y)
    return;
  for (size_t i = 0; i < y->n; i++)
    ynode_free(y->items[i]);
  free(y->items);
  free(y->str);
  free(y);
}

static void ynode_push(ynode *parent, ynode *child)
{
  parent->items =
      cs_realloc(parent->items, (parent->n + 1) * sizeof(*parent->items));
  parent->items[parent->n++] = child;
}

/* Builds the node that starts with `ev` (already taken from the parser). */
static cs_err yaml_build(yaml_parser_t *p, yaml_event_t *ev, int depth,
                         ynode **out, char *err, size_t cap)
{
  cs_err rc = CS_OK;
  ynode *y = cs_calloc(1, sizeof(*y));
  y->line = ev->start_mark.line + 1;
  if (depth > YAML_MAX_DEPTH) {
    seterr(err, cap, "line %zu: nested deeper than %d levels", y->line,
           YAML_MAX_DEPTH);
    rc = CS_EPARSE;
    goto out;
  }
  switch (ev->type) {
  case YAML_SCALAR_EVENT:
    y->type = Y_SCALAR;
    y->str =
        cs_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
    y->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    y->null = y->plain &&
              (strcmp(y->str, "~") == 0 || strcmp(y->str, "null") == 0 ||
               strcmp(y->str, "Null") == 0 || strcmp(y->str, "NULL") == 0);
    goto out;
  case YAML_ALIAS_EVENT:
    seterr(err, cap, "line %zu: YAML aliases are not supported", y->line);
    rc = CS_EPARSE;
    goto out;
  case YAML_MAPPING_START_EVENT:
    y->type = Y_MAP;
    break;
  case YAML_SEQUENCE_START_EVENT:
    y->type = Y_SEQ;
    break;
  default:
    seterr(err, cap, "line %zu: unexpected YAML structure", y->line);
    rc = CS_EPARSE;
    goto out;
  }
  for (;;) {
    yaml_event_t child;
    if (!yaml_parser_parse(p, &child)) {
      seterr(err, cap, "line %zu column %zu: %s", p->problem_mark.line + 1,
             p->problem_mark.column + 1,
             p->problem ? p->problem : "YAML syntax error");
      rc = CS_EPARSE;
      goto out;
    }
    if (child.type == YAML_MAPPING_END_EVENT ||
        child.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&child);
      break;
    }
    ynode *c = NULL;
    rc = yaml_build(p, &child, depth + 1, &c, err, cap);
    yaml_event_delete(&child);
    if (rc)
      goto out;
    if (y->type == Y_MAP && y->n % 2 == 0 && c->type != Y_SCALAR) {
      seterr(err, cap, "line %zu: mapping keys must be plain strings", c->line);
      ynode_free(c);
      rc = CS_EPARSE;
      goto out;
    }
    ynode_push(y, c);
  }
out:
  if (rc) {
    ynode_free(y);
    y = NULL;
  }
  *out = y;
  return rc;
}

/* Parses one YAML document into a tree; an empty document is an error. */
static cs_err yaml_load(const char *text, size_t len, ynode **out, char *err,
                        size_t cap)
{
  cs_err rc = CS_OK;
  yaml_parser_t p;
  yaml_event_t ev;
  *out = NULL;
  if (!yaml_parser_initialize(&p)) {
    seterr(err, cap, "cannot start the YAML parser");
    return CS_EINTERNAL;
  }
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  for (;;) {
    if (!yaml_parser_parse(&p, &ev)) {
      seterr(err, cap, "line %zu column %zu: %s", p.problem_mark.line + 1,
             p.problem_mark.column + 1,
             p.problem ? p.problem : "YAML syntax error");
      rc = CS_EPARSE;
      goto out;
    }
    yaml_event_type_t t = ev.type;
    if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
      yaml_event_delete(&ev);
      continue;
    }
    if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    rc = yaml_build(&p, &ev, 0, out, err, cap);
    yaml_event_delete(&ev);
    break;
  }
  if (!rc && !*out) {
    seterr(err, cap, "the file is empty");
    rc = CS_EPARSE;
  }
out:
  yaml_parser_delete(&p);
  return rc;
}

static const ynode *ymap_get(const ynode *m, const char *key)
{
  if (!m || m->type != Y_MAP)
    return NULL;
  for (size_t i = 0; i + 1 < m->n; i += 2)
    if (strcmp(m->items[i]->str, key) == 0)
      return m->items[i + 1];
  return NULL;
}

/* The scalar under `key`, NULL when absent or empty; CS_EINVAL when present
 * but not a scalar. */
static cs_err ymap_str(const ynode *m, const char *key, const char **out)
{
  const ynode *v = ymap_get(m, key);
  *out = NULL;
  if (!v)
    return CS_OK;
  if (v->type != Y_SCALAR)
    return CS_EINVAL;
  /* Empty or null is absent, as in client-go: `token: ~` is no token,
   * not the token "~". */
  if (v->str[0] && !v->null)
    *out = v->str;
  return CS_OK;
}

/* Refuses a cluster field the client does not implement, or does not
 * know: ignored, `proxy-url` would connect around the proxy, and a
 * mistyped `certificate-authority` would trust the system's CAs instead
 * of the one meant. `disable-compression` is honoured by doing nothing
 * (the client never asks for compression); `extensions` are ignored, as
 * their purpose is to carry data for other tools. */
static cs_err check_cluster_fields(const ynode *cl, const char *path,
                                   const char *cluster, char *err, size_t cap)
{
  static const char *const known[] = {"server",
                                      "certificate-authority",
                                      "certificate-authority-data",
                                      "insecure-skip-tls-verify",
                                      "tls-server-name",
                                      "disable-compression",
                                      "extensions"};
  static const char *const unsupported[] = {"proxy-url"};
  for (size_t i = 0; i + 1 < cl->n; i += 2) {
    const char *field = cl->items[i]->str; /* keys are scalars */
    bool ok = false;
    for (size_t j = 0; j < sizeof(known) / sizeof(*known); j++)
      ok = ok || strcmp(field, known[j]) == 0;
    if (ok)
      continue;
    for (size_t j = 0; j < sizeof(unsupported) / sizeof(*unsupported); j++)
      if (strcmp(field, unsupported[j]) == 0) {
        seterr(err, cap,
               "kubeconfig %s: clusters[name=%s].cluster.%s: not supported, "
               "expected the API server reached directly at `server`",
               path, cluster, field);
        return CS_EUNSUPPORTED;
      }
    seterr(err, cap,
           "kubeconfig %s: clusters[name=%s].cluster.%.64s: unknown field, "
           "expected server, certificate-authority[-data], "
           "insecure-skip-tls-verify, tls-server-name, disable-compression "
           "or extensions",
           path, cluster, field);
    return CS_EINVAL;
  }
  return CS_OK;
}

/* --------------------------------------------------------------- helpers */

typedef struct blob {
  unsigned char *p;
  size_t n;
} blob;

static int b64val(int c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Standard base64 with padding; white space is skipped. */
static cs_err b64_decode(const char *s, blob *out)
{
  size_t len = strlen(s);
  unsigned char *o = cs_malloc(len / 4 * 3 + 3);
  size_t n = 0, pad = 0;
  unsigned acc = 0;
  int bits = 0, chars = 0;
  for (const char *c = s; *c; c++) {
    if (*c == ' ' || *c == '\n' || *c == '\r' || *c == '\t')
      continue;
    if (*c == '=') {
      pad++;
      chars++;
      continue;
    }
    int v = b64val((unsigned char)*c);
    if (v < 0 || pad)
      goto bad;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    chars++;
    if (bits >= 8) {
      bits -= 8;
      o[n++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (chars == 0 || chars % 4 || pad > 2)
    goto bad;
  out->p = o;
  out->n = n;
  return CS_OK;
bad:
  free(o);
  return CS_EINVAL;
}

static bool is_pem(const blob *b)
{
  static const char mark[] = "-----BEGIN ";
  if (b->n < sizeof(mark))
    return false;
  /* The marker may follow leading white space or a comment. */
  for (size_t i = 0; i + sizeof(mark) - 1 <= b->n; i++)
    if (memcmp(b->p + i, mark, sizeof(mark) - 1) == 0)
      return true;
  return false;
}

/* A copy of s[0, n) without the white space around it. */
static char *trim_dup(const char *s, size_t n)
{
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
               s[n - 1] == '\t'))
    n--;
  while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
    s++;
    n--;
  }
  return cs_strndup(s, n);
}

/* What keeps `tok` from being a bearer token, or NULL: a control byte
 * (CR, LF, NUL, ...) would end the Authorization header early and start
 * another of the token's choosing. `where` gets the offending byte's
 * offset and value, never the token. */
static const char *token_problem(const char *tok, char *where, size_t cap)
{
  for (size_t i = 0; tok[i]; i++) {
    unsigned char c = (unsigned char)tok[i];
    if (c < 0x20 || c == 0x7f) {
      snprintf(where, cap, "byte %zu is the control character 0x%02x", i, c);
      return where;
    }
  }
  return NULL;
}

static char *join_path(const char *dir, const char *path)
{
  if (!path)
    return NULL;
  if (path[0] == '/' || !dir || !dir[0])
    return cs_strdup(path);
  return cs_asprintf("%s/%s", dir, path);
}

/* Whether an http(s) URL has user information ("user:password@") before
 * its host. */
static bool url_has_userinfo(const char *url)
{
  const char *auth = url ? strstr(url, "://") : NULL;
  if (!auth)
    return false;
  auth += 3;
  return memchr(auth, '@', strcspn(auth, "/?#")) != NULL;
}

/* A DNS label or subdomain, as Kubernetes names are; refusing anything else
 * keeps caller-supplied names from changing the request path. */
static bool valid_name(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.'))
      return false;
  }
  return true;
}

/* `h` continued over the field `s` (NULL: empty) and a 0xff after it, a
 * byte UTF-8 text never holds, so that ("ab", "c") and ("a", "bc") differ.
 * For the dedup table. */
static uint64_t hash_field(uint64_t h, const char *s)
{
  h = cs_hash_add(h, s, s ? strlen(s) : 0);
  return cs_hash_add(h, "\xff", 1);
}

static double mono_s(void)
{
  return (double)cs_clock_mono_ns() / 1e9;
}

/* ---------------------------------------------------------------- client */

/* One queued request for the worker: an Event, or (patch set) a merge
 * patch of a pod's annotations. */
typedef struct ev_item {
  char *ns, *pod, *uid, *reason, *action, *note;
  char *patch; /* merge-patch body; NULL for an Event */
  bool warning;
  int64_t at_s;
  long at_us;
} ev_item;

typedef struct dedup_entry {
  uint64_t key;  /* ns, pod, reason */
  uint64_t note; /* note text */
  double last;   /* monotonic seconds of the last queued Event */
} dedup_entry;

typedef enum watch_state {
  WS_INIT = 0,
  WS_LISTING,
  WS_WATCHING,
  WS_FAILING
} watch_state;

struct cs_kube {
  cs_kube_config cfg; /* scalars only; string members are cleared */
  cs_metrics *metrics;
  char *server; /* no trailing slash */
  char *ns;
  char *context;
  bool in_cluster;
  cs_kube_auth auth;
  bool insecure;
  /* A kubeconfig's tls-server-name: requests go to req_base, the server's
   * URL with this name as its host (libcurl sends it as SNI and verifies
   * the certificate against it), while connect_to still connects to the
   * server's own host and host_header names it, as client-go does. */
  char *tls_server_name;
  char *req_base;
  struct curl_slist *connect_to;
  char *host_header;
  char *ca_file;
  blob ca_data;
  char *cert_file, *key_file;
  blob cert_data, key_data;
  char instance[EVENT_FIELD_MAX + 1];

  pthread_mutex_t tok_mu;
  char *token;
  char *token_path;
  struct stat tok_st;
  /* The file's state when it last failed to load (tok_bad): not re-read
   * until it changes again or a 401 forces it, so that one bad rotation
   * is one log line, not one per request. */
  bool tok_bad;
  struct stat tok_bad_st;

  pthread_mutex_t st_mu;
  cs_kube_stats st;

  atomic_bool stop;
  pthread_mutex_t stop_mu;
  pthread_cond_t stop_cv;

  bool watch_running;
  pthread_t watch_thr;
  cs_kube_node_sink sink;
  watch_state wstate;
  _Atomic int64_t watch_retry_after; /* s, from the last list or watch; -1 */
  char last_err[256];

  bool ev_running;
  pthread_t ev_thr;
  pthread_mutex_t ev_mu;
  pthread_cond_t ev_cv;
  pthread_cond_t ev_idle_cv; /* the queue emptied and nothing is in flight */
  bool ev_busy;              /* the sender is sending one */
  ev_item *queue;
  size_t qhead, qlen;
  dedup_entry *dedup;
  size_t ndedup;
  unsigned ev_seq;
  bool ev_failing;
  /* When the last item failed in a way that may pass (0: it did not):
   * while recent, the next gets one try (send_item). */
  double send_outage_at;
  /* Items the stop cut in flight or between tries: counted dropped by
   * the sender, logged by cs_kube_free with what is left queued. */
  atomic_size_t cut_patches, cut_events;
};

void cs_kube_config_defaults(cs_kube_config *c)
{
  memset(c, 0, sizeof(*c));
  c->mode = CS_KUBE_AUTO;
  c->sa_dir = CS_KUBE_SA_DIR;
  c->request_timeout_s = 10;
  c->watch_timeout_s = 300;
  c->watch_idle_s = 150;
  c->send_outage_s = 30;
  c->backoff_initial_s = 1;
  c->backoff_max_s = 30;
  c->list_page_size = 250;
  c->max_line_bytes = 4u << 20;
  c->max_body_bytes = 64u << 20;
  c->events_enabled = true;
  c->event_queue_cap = 256;
  c->event_dedup_window_s = 600;
  c->event_min_interval_s = 30;
  c->event_dedup_cap = 4096;
}

#define STAT_ADD(k, field)                                                     \
  do {                                                                         \
    pthread_mutex_lock(&(k)->st_mu);                                           \
    (k)->st.field++;                                                           \
    pthread_mutex_unlock(&(k)->st_mu);                                         \
  } while (0)

static void metric_add(cs_kube *k, const char *name, const char *l1,
                       const char *l2)
{
  if (!k->metrics)
    return;
  const char *lv[2] = {l1, l2};
  cs_metrics_add(k->metrics, name, lv, 1);
}

static void declare_metrics(cs_kube *k)
{
  static const struct {
    const char *name, *help, *labels;
  } fams[] = {
      {"carbonshift_kube_requests_total",
       "Kubernetes API requests by verb and HTTP status (0: no answer)",
       "verb,code"},
      {"carbonshift_kube_watch_restarts_total",
       "Node watches that ended other than by the server's timeout, by "
       "reason (dropped, gone, unauthorized, error, badEvent, endedAtOnce: "
       "ended cleanly within a second without an event, idle: silent for "
       "150 s, renewed)",
       "reason"},
      {"carbonshift_kube_node_lists_total",
       "Node list attempts by reason (initial, gone) and result (complete, "
       "failed)",
       "reason,result"},
      {"carbonshift_kube_events_total",
       "Pod Events by result (sent, failed, dropped, suppressed)", "result"},
      {"carbonshift_kube_patches_total",
       "Pod annotation patches by result (sent, failed, dropped)", "result"},
  };
  if (!k->metrics)
    return;
  for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
    cs_err rc = cs_metrics_declare(k->metrics, fams[i].name, CS_METRIC_COUNTER,
                                   fams[i].help, fams[i].labels, NULL, 0);
    if (rc)
      cs_log_error("Cannot declare a Kubernetes client metric",
                   cs_strerror(rc));
  }
}

/* ----------------------------------------------------------------- token */

static bool same_file_state(const struct stat *a, const struct stat *b)
{
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
         a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static cs_err load_token_file(const char *path, char **tok, struct stat *st,
                              char *err, size_t cap)
{
  char *text = NULL;
  size_t len = 0;
  if (stat(path, st) != 0) {
    seterr(err, cap, "token file %s: %s", path, strerror(errno));
    return CS_EIO;
  }
  char why[128];
  cs_err rc =
      cs_read_file(path, TOKEN_MAX_BYTES, &text, &len, why, sizeof(why));
  if (rc) {
    seterr(err, cap, "token file %s: %s", path, why);
    return rc;
  }
  /* The newline that editors and `kubectl create token > file` leave at
   * the end is no part of the token. */
  *tok = trim_dup(text, len);
  free(text);
  char where[64];
  if (!(*tok)[0]) {
    seterr(err, cap, "token file %s: empty, expected a bearer token", path);
    rc = CS_EAUTH;
  } else if (token_problem(*tok, where, sizeof(where))) {
    seterr(err, cap,
           "token file %s: %s, expected a bearer token on one line of "
           "printable characters",
           path, where);
    rc = CS_EAUTH;
  }
  if (rc) {
    memset(*tok, 0, strlen(*tok));
    free(*tok);
    *tok = NULL;
  }
  return rc;
}

/* Re-reads the token file when it changed on disk, or always when `force`
 * (after a 401). Returns true when the token now differs from before. */
static bool token_refresh(cs_kube *k, bool force)
{
  if (k->auth != CS_KUBE_AUTH_TOKEN_FILE)
    return false;
  bool changed = false;
  pthread_mutex_lock(&k->tok_mu);
  struct stat st;
  bool load = false, known_bad = false;
  if (stat(k->token_path, &st) == 0) {
    known_bad = k->tok_bad && same_file_state(&st, &k->tok_bad_st);
    load = force || (!same_file_state(&st, &k->tok_st) && !known_bad);
  }
  if (load) {
    char *tok = NULL;
    char err[300];
    if (load_token_file(k->token_path, &tok, &st, err, sizeof(err)) == CS_OK) {
      changed = strcmp(tok, k->token) != 0;
      free(k->token);
      k->token = tok;
      k->tok_st = st;
      k->tok_bad = false;
    } else {
      /* Shown once per state of the file; a forced re-read of the same
       * bad file says it again only at v=1. */
      cs_buf *l =
          cs_log_begin(known_bad ? 1 : 0, "Cannot re-read the API token");
      cs_json_str(l, "err", err);
      cs_log_end(l);
      k->tok_bad = true;
      k->tok_bad_st = st;
    }
  }
  pthread_mutex_unlock(&k->tok_mu);
  if (changed) {
    STAT_ADD(k, token_reloads);
    cs_buf *l = cs_log_begin(0, "Reloaded the API token");
    cs_json_str(l, "file", k->token_path);
    cs_json_str(l, "reason", force ? "unauthorized" : "fileChanged");
    cs_log_end(l);
  }
  return changed;
}

static struct curl_slist *auth_header(cs_kube *k, struct curl_slist *h)
{
  if (k->auth != CS_KUBE_AUTH_TOKEN && k->auth != CS_KUBE_AUTH_TOKEN_FILE)
    return h;
  pthread_mutex_lock(&k->tok_mu);
  char *line = cs_asprintf("Authorization: Bearer %s", k->token);
  pthread_mutex_unlock(&k->tok_mu);
  h = curl_slist_append(h, line);
  /* The header holds a secret: wipe the temporary copy. */
  memset(line, 0, strlen(line));
  free(line);
  return h;
}

/* --------------------------------------------------------- configuration */

/* Sets req_base, connect_to and host_header for k->tls_server_name from
 * the final k->server (the kubeconfig's, or kube.server's)
 * ("https://host[:port][/path]", userinfo refused before): the request URL
 * names tls_server_name, the connection goes to host:port. An http:// server
 * has no TLS to name: refused. */
static cs_err tls_name_route(cs_kube *k, const char *kubeconfig, char *err,
                             size_t cap)
{
  if (strncmp(k->server, "https://", 8) != 0) {
    seterr(err, cap,
           "kubeconfig %s: tls-server-name \"%s\" given for %s, expected an "
           "https:// server",
           kubeconfig, k->tls_server_name, k->server);
    return CS_EINVAL;
  }
  const char *auth = k->server + 8;
  size_t alen = strcspn(auth, "/?#");
  const char *host_end =
      auth[0] == '[' ? memchr(auth, ']', alen) : memchr(auth, ':', alen);
  if (auth[0] == '[')
    host_end = host_end ? host_end + 1 : auth + alen;
  else if (!host_end)
    host_end = auth + alen;
  size_t hlen = (size_t)(host_end - auth);
  const char *port = "443";
  size_t plen = 3;
  if (host_end < auth + alen && *host_end == ':') {
    port = host_end + 1;
    plen = (size_t)(auth + alen - port);
  }
  k->req_base = cs_asprintf("https://%s:%.*s%s", k->tls_server_name, (int)plen,
                            port, auth + alen);
  char *entry = cs_asprintf("%s:%.*s:%.*s:%.*s", k->tls_server_name, (int)plen,
                            port, (int)hlen, auth, (int)plen, port);
  k->connect_to = curl_slist_append(NULL, entry);
  free(entry);
  k->host_header = cs_asprintf("Host: %.*s", (int)alen, auth);
  if (!k->connect_to) {
    seterr(err, cap, "kube: out of memory");
    return CS_EINTERNAL;
  }
  return CS_OK;
}

static cs_err kubeconfig_load(cs_kube *k, const char *path,
                              const char *want_ctx, char *err, size_t cap)
{
  cs_err rc = CS_OK;
  char *text = NULL, *dir = NULL;
  size_t len = 0;
  ynode *root = NULL;
  char yerr[256] = "";

  char why[128];
  rc = cs_read_file(path, KUBECONFIG_MAX_BYTES, &text, &len, why, sizeof(why));
  if (rc) {
    seterr(err, cap, "kubeconfig %s: %s", path, why);
    goto out;
  }
  rc = yaml_load(text, len, &root, yerr, sizeof(yerr));
  if (rc) {
    seterr(err, cap, "kubeconfig %s: %s", path, yerr);
    goto out;
  }
  if (root->type != Y_MAP) {
    seterr(err, cap, "kubeconfig %s: expected a mapping at the top level",
           path);
    rc = CS_EPARSE;
    goto out;
  }
  const char *slash = strrchr(path, '/');
  dir = slash ? cs_strndup(path, (size_t)(slash - path)) : cs_strdup("");

  const char *ctx_name = want_ctx && want_ctx[0] ? want_ctx : NULL;
  if (!ctx_name &&
      (ymap_str(root, "current-context", &ctx_name) || !ctx_name)) {
    seterr(err, cap,
           "kubeconfig %s: current-context: missing or empty, expected a "
           "context name (or set kube.context)",
           path);
    rc = CS_EINVAL;
    goto out;
  }

  /* contexts[name=ctx].context */
  const ynode *list = ymap_get(root, "contexts");
  const ynode *ctx = NULL;
  if (list && list->type != Y_SEQ) {
    seterr(err, cap, "kubeconfig %s: contexts: expected a list", path);
    rc = CS_EINVAL;
    goto out;
  }
  for (size_t i = 0; list && i < list->n && !ctx; i++) {
    const char *name = NULL;
    if (!ymap_str(list->items[i], "name", &name) && name &&
        strcmp(name, ctx_name) == 0)
      ctx = ymap_get(list->items[i], "context");
  }
  if (!ctx || ctx->type != Y_MAP) {
    seterr(err, cap,
           "kubeconfig %s: contexts: no context named \"%s\" with a "
           "`context` mapping",
           path, ctx_name);
    rc = CS_ENOTFOUND;
    goto out;
  }
  const char *cluster_name = NULL, *user_name = NULL, *ns = NULL;
  if (ymap_str(ctx, "cluster", &cluster_name) || !cluster_name) {
    seterr(err, cap,
           "kubeconfig %s: contexts[name=%s].context.cluster: missing, "
           "expected a cluster name",
           path, ctx_name);
    rc = CS_EINVAL;
    goto out;
  }
  if (ymap_str(ctx, "user", &user_name) || ymap_str(ctx, "namespace", &ns)) {
    seterr(err, cap,
           "kubeconfig %s: contexts[name=%s].context: user and namespace "
           "must be strings",
           path, ctx_name);
    rc = CS_EINVAL;
    goto out;
  }

  /* clusters[name=cluster].cluster */
  list = ymap_get(root, "clusters");
  const ynode *cl = NULL;
  for (size_t i = 0; list && list->type == Y_SEQ && i < list->n && !cl; i++) {
    const char *name = NULL;
    if (!ymap_str(list->items[i], "name", &name) && name &&
        strcmp(name, cluster_name) == 0)
      cl = ymap_get(list->items[i], "cluster");
  }
  if (!cl || cl->type != Y_MAP) {
    seterr(err, cap,
           "kubeconfig %s: clusters: no cluster named \"%s\" with a "
           "`cluster` mapping (used by context \"%s\")",
           path, cluster_name, ctx_name);
    rc = CS_ENOTFOUND;
    goto out;
  }
  const char *server = NULL, *ca = NULL, *ca_data = NULL, *insecure = NULL,
             *tls_name = NULL;
  const char *server_why = ymap_str(cl, "server", &server) ? "not a string"
                           : url_has_userinfo(server)
                               ? "has user information (user:password@), "
                                 "which is basic authentication and would be "
                                 "logged with the URL; credentials go in "
                                 "users[]"
                               : cs_http_url_problem(server);
  if (server_why) {
    seterr(err, cap,
           "kubeconfig %s: clusters[name=%s].cluster.server: %s, expected "
           "a URL such as https://10.0.0.1:6443",
           path, cluster_name, server_why);
    rc = CS_EINVAL;
    goto out;
  }
  if (ymap_str(cl, "certificate-authority", &ca) ||
      ymap_str(cl, "certificate-authority-data", &ca_data) ||
      ymap_str(cl, "insecure-skip-tls-verify", &insecure) ||
      ymap_str(cl, "tls-server-name", &tls_name)) {
    seterr(err, cap,
           "kubeconfig %s: clusters[name=%s].cluster: certificate-authority, "
           "certificate-authority-data, insecure-skip-tls-verify and "
           "tls-server-name must be strings",
           path, cluster_name);
    rc = CS_EINVAL;
    goto out;
  }
  /* A bool, as client-go reads it: 'true' in quotes is a string, which
   * client-go refuses too. */
  bool insecure_plain =
      insecure && ymap_get(cl, "insecure-skip-tls-verify")->plain;
  if (insecure &&
      ((strcmp(insecure, "true") != 0 && strcmp(insecure, "false") != 0) ||
       !insecure_plain)) {
    seterr(err, cap,
           "kubeconfig %s: clusters[name=%s].cluster.insecure-skip-tls-verify: "
           "\"%.64s\"%s, expected true or false",
           path, cluster_name, insecure,
           insecure_plain ? "" : " (quoted, so a string)");
    rc = CS_EINVAL;
    goto out;
  }
  rc = check_cluster_fields(cl, path, cluster_name, err, cap);
  if (rc)
    goto out;
  /* A DNS name as Kubernetes writes them (lower case), which a URL's host
   * holds unescaped. */
  if (tls_name && !valid_name(tls_name)) {
    seterr(err, cap,
           "kubeconfig %s: clusters[name=%s].cluster.tls-server-name: "
           "\"%.64s\", expected a DNS name in lower case such as "
           "kubernetes.default.svc",
           path, cluster_name, tls_name);
    rc = CS_EINVAL;
    goto out;
  }
  k->server = cs_strdup(server);
  k->tls_server_name = tls_name ? cs_strdup(tls_name) : NULL;
  k->insecure = insecure && strcmp(insecure, "true") == 0;
  if (k->insecure && (ca || ca_data)) {
    /* Refused as client-go refuses it: which one the file means cannot be
     * told, and the CA would be silently ignored. */
    seterr(err, cap,
           "kubeconfig %s: clusters[name=%s].cluster: "
           "insecure-skip-tls-verify is true and %s is given, expected one "
           "of them (a CA to verify the server with, or no verification)",
           path, cluster_name,
           ca_data ? "certificate-authority-data" : "certificate-authority");
    rc = CS_EINVAL;
    goto out;
  }
  if (ca_data) {
    if (b64_decode(ca_data, &k->ca_data) || !is_pem(&k->ca_data)) {
      seterr(err, cap,
             "kubeconfig %s: clusters[name=%s].cluster."
             "certificate-authority-data: expected base64-encoded PEM "
             "certificates",
             path, cluster_name);
      rc = CS_EINVAL;
      goto out;
    }
  } else if (ca) {
    k->ca_file = join_path(dir, ca);
    rc = cs_check_file(k->ca_file, why, sizeof(why));
    if (rc) {
      seterr(err, cap,
             "kubeconfig %s: clusters[name=%s].cluster.certificate-authority: "
             "%s: %s",
             path, cluster_name, k->ca_file, why);
      goto out;
    }
  }

  /* users[name=user].user; a context without a user is anonymous. */
  const ynode *us = NULL;
  if (user_name) {
    list = ymap_get(root, "users");
    for (size_t i = 0; list && list->type == Y_SEQ && i < list->n && !us; i++) {
      const char *name = NULL;
      if (!ymap_str(list->items[i], "name", &name) && name &&
          strcmp(name, user_name) == 0)
        us = ymap_get(list->items[i], "user");
    }
    if (!us || us->type != Y_MAP) {
      seterr(err, cap,
             "kubeconfig %s: users: no user named \"%s\" with a `user` "
             "mapping (used by context \"%s\")",
             path, user_name, ctx_name);
      rc = CS_ENOTFOUND;
      goto out;
    }
    const char *token = NULL, *token_file = NULL, *cert = NULL, *key = NULL,
               *cert_data = NULL, *key_data = NULL;
    if (ymap_str(us, "token", &token) ||
        ymap_str(us, "tokenFile", &token_file) ||
        ymap_str(us, "client-certificate", &cert) ||
        ymap_str(us, "client-key", &key) ||
        ymap_str(us, "client-certificate-data", &cert_data) ||
        ymap_str(us, "client-key-data", &key_data)) {
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user: token, tokenFile and the "
             "client-certificate/-key fields must be strings",
             path, user_name);
      rc = CS_EINVAL;
      goto out;
    }
    if (ymap_get(us, "exec") || ymap_get(us, "auth-provider")) {
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user.%s: credential plugins are "
             "not supported, expected token, tokenFile or "
             "client-certificate/client-key",
             path, user_name, ymap_get(us, "exec") ? "exec" : "auth-provider");
      rc = CS_EUNSUPPORTED;
      goto out;
    }
    /* Fields the client does not implement are refused: ignoring them
     * would connect as someone else (anonymously, or without the
     * impersonation asked for). The value of a field is never shown. */
    const char *unsupported = ymap_get(us, "username")   ? "username"
                              : ymap_get(us, "password") ? "password"
                                                         : NULL;
    if (unsupported) {
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user.%s: basic authentication "
             "(username and password) is not supported, expected token, "
             "tokenFile or client-certificate/client-key",
             path, user_name, unsupported);
      rc = CS_EUNSUPPORTED;
      goto out;
    }
    static const char *const impersonation[] = {"as", "as-uid", "as-groups",
                                                "as-user-extra"};
    static const char *const known[] = {"token",
                                        "tokenFile",
                                        "client-certificate",
                                        "client-key",
                                        "client-certificate-data",
                                        "client-key-data",
                                        "extensions"};
    for (size_t i = 0; i + 1 < us->n; i += 2) {
      const char *field = us->items[i]->str;
      bool imp = false, ok = false;
      for (size_t j = 0; j < sizeof(impersonation) / sizeof(*impersonation);
           j++)
        imp = imp || strcmp(field, impersonation[j]) == 0;
      for (size_t j = 0; j < sizeof(known) / sizeof(*known); j++)
        ok = ok || strcmp(field, known[j]) == 0;
      if (imp) {
        seterr(err, cap,
               "kubeconfig %s: users[name=%s].user.%s: impersonation is not "
               "supported, expected the credentials of the user to act as",
               path, user_name, field);
        rc = CS_EUNSUPPORTED;
        goto out;
      }
      if (!ok) {
        seterr(err, cap,
               "kubeconfig %s: users[name=%s].user.%.64s: unknown field, "
               "expected token, tokenFile, client-certificate[-data], "
               "client-key[-data] or extensions",
               path, user_name, field);
        rc = CS_EINVAL;
        goto out;
      }
    }
    bool has_cert = cert || cert_data, has_key = key || key_data;
    if (has_cert != has_key) {
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user: %s without %s, expected "
             "both a client certificate and its key",
             path, user_name, has_cert ? "client-certificate" : "client-key",
             has_cert ? "client-key" : "client-certificate");
      rc = CS_EINVAL;
      goto out;
    }
    if (has_cert) {
      k->auth = CS_KUBE_AUTH_CLIENT_CERT;
      const char *names[2] = {"client-certificate", "client-key"};
      const char *data[2] = {cert_data, key_data};
      const char *files[2] = {cert, key};
      blob *blobs[2] = {&k->cert_data, &k->key_data};
      char **paths[2] = {&k->cert_file, &k->key_file};
      for (int i = 0; i < 2; i++) {
        if (data[i]) {
          if (b64_decode(data[i], blobs[i]) || !is_pem(blobs[i])) {
            seterr(err, cap,
                   "kubeconfig %s: users[name=%s].user.%s-data: expected "
                   "base64-encoded PEM data",
                   path, user_name, names[i]);
            rc = CS_EINVAL;
            goto out;
          }
        } else {
          *paths[i] = join_path(dir, files[i]);
          rc = cs_check_file(*paths[i], why, sizeof(why));
          if (rc) {
            seterr(err, cap, "kubeconfig %s: users[name=%s].user.%s: %s: %s",
                   path, user_name, names[i], *paths[i], why);
            goto out;
          }
        }
      }
    }
    /* One credential: the client presents either a certificate or a
     * bearer token, and choosing one silently would connect as someone
     * the kubeconfig's author may not have meant. */
    if (token && token_file) {
      /* client-go would send the file's token while it can read it and
       * the inline one otherwise; which the author meant cannot be told. */
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user: both token and tokenFile "
             "given, expected one of them",
             path, user_name);
      rc = CS_EINVAL;
      goto out;
    }
    if ((token || token_file) && has_cert) {
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user: both %s and client "
             "certificate given, expected one of them",
             path, user_name, token ? "token" : "tokenFile");
      rc = CS_EINVAL;
      goto out;
    }
    char where[64];
    if (token && token_problem(token, where, sizeof(where))) {
      seterr(err, cap,
             "kubeconfig %s: users[name=%s].user.token: %s, expected a "
             "bearer token on one line of printable characters",
             path, user_name, where);
      rc = CS_EINVAL;
      goto out;
    }
    if (token) {
      k->auth = CS_KUBE_AUTH_TOKEN;
      k->token = cs_strdup(token);
    } else if (token_file) {
      char terr[300];
      k->auth = CS_KUBE_AUTH_TOKEN_FILE;
      k->token_path = join_path(dir, token_file);
      rc = load_token_file(k->token_path, &k->token, &k->tok_st, terr,
                           sizeof(terr));
      if (rc) {
        seterr(err, cap, "kubeconfig %s: users[name=%s].user.tokenFile: %s",
               path, user_name, terr);
        goto out;
      }
    }
  }
  k->context = cs_strdup(ctx_name);
  k->ns = cs_strdup(ns ? ns : "default");
out:
  ynode_free(root);
  free(text);
  free(dir);
  return rc;
}

static cs_err in_cluster_load(cs_kube *k, const char *sa_dir,
                              const char *server, char *err, size_t cap)
{
  cs_err rc = CS_OK;
  char *path = NULL, *text = NULL;
  size_t len = 0;
  const char *host = getenv("KUBERNETES_SERVICE_HOST");
  const char *port = getenv("KUBERNETES_SERVICE_PORT");

  k->in_cluster = true;
  if (server && server[0]) {
    k->server = cs_strdup(server);
  } else if (host && host[0] && port && port[0]) {
    bool v6 = strchr(host, ':') != NULL;
    k->server = cs_asprintf("https://%s%s%s:%s", v6 ? "[" : "", host,
                            v6 ? "]" : "", port);
    /* Checked now, not at the first request: each part alone (in the URL
     * a '/' or '@' would pass for a path or userinfo), then the whole. */
    size_t plen = strlen(port);
    bool port_ok = plen <= 5 && strspn(port, "0123456789") == plen &&
                   strtol(port, NULL, 10) >= 1 &&
                   strtol(port, NULL, 10) <= 65535;
    const char *url_why = strpbrk(host, "/@[]?#") ? "has a malformed host"
                          : !port_ok ? "has a port that is not a number from "
                                       "1 to 65535"
                                     : cs_http_url_problem(k->server);
    if (url_why) {
      seterr(err, cap,
             "in-cluster: the API server URL %.200s: %s, expected "
             "KUBERNETES_SERVICE_HOST an address or host name and "
             "KUBERNETES_SERVICE_PORT a port from 1 to 65535",
             k->server, url_why);
      rc = CS_EINVAL;
      goto out;
    }
  } else {
    seterr(err, cap,
           "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
           "must be set, expected to run in a Pod (outside one, use "
           "kube.mode=auto or kube.mode=kubeconfig with kube.kubeconfig)");
    rc = CS_EINVAL;
    goto out;
  }
  k->auth = CS_KUBE_AUTH_TOKEN_FILE;
  k->token_path = cs_asprintf("%s/token", sa_dir);
  rc = load_token_file(k->token_path, &k->token, &k->tok_st, err, cap);
  if (rc)
    goto out;
  path = cs_asprintf("%s/ca.crt", sa_dir);
  char ca_why[128];
  cs_err ca_rc = cs_check_file(path, ca_why, sizeof(ca_why));
  if (ca_rc == CS_OK) {
    k->ca_file = path;
    path = NULL;
  } else if (strncmp(k->server, "https://", 8) == 0) {
    seterr(err, cap, "in-cluster CA bundle %s: %s, expected a PEM file", path,
           ca_why);
    rc = ca_rc;
    goto out;
  }
  free(path);
  path = cs_asprintf("%s/namespace", sa_dir);
  char why[128];
  if (cs_read_file(path, 4096, &text, &len, why, sizeof(why)) == CS_OK)
    k->ns = trim_dup(text, len);
  if (!k->ns || !k->ns[0]) {
    free(k->ns);
    k->ns = cs_strdup("default");
  }
  k->context = cs_strdup("");
out:
  free(path);
  free(text);
  return rc;
}

/* --------------------------------------------------------------- HTTP */

typedef struct req {
  const char *verb; /* metric label: list, watch, patch, event */
  const char *method;
  const char *path; /* with the query */
  const char *ctype;
  const char *body;
  size_t bodylen;
  long timeout_ms; /* 0: none */
  /* > 0: the transfer ends when no body byte came for this long, with
   * `idled` set (a watch whose connection died without a word). */
  int idle_s;
  size_t (*write)(char *p, size_t sz, size_t n, void *ud);
  void *ud;
  cs_kube *k;            /* set by perform */
  curl_off_t seen_bytes; /* body bytes at the last progress call */
  uint64_t last_byte_ns; /* when they last grew (monotonic) */
  bool idled;            /* out */
  long status;           /* out: 0 when no answer */
  int64_t retry_after;   /* out: s from Retry-After, -1 when none */
  CURLcode curl;         /* out */
  char cerr[CURL_ERROR_SIZE];
} req;

/* curl's progress callback, called often while data flows and about once
 * a second when none does: ends the transfer at the stop, or when no body
 * byte came for idle_s (counted from the start of the request). */
static int xfer_check(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                      curl_off_t ultotal, curl_off_t ulnow)
{
  req *r = ud;
  if (atomic_load(&r->k->stop))
    return 1;
  if (r->idle_s <= 0)
    return 0;
  uint64_t now = cs_clock_mono_ns();
  if (dlnow != r->seen_bytes) {
    r->seen_bytes = dlnow;
    r->last_byte_ns = now;
  } else if (now - r->last_byte_ns >= (uint64_t)r->idle_s * 1000000000u) {
    r->idled = true;
    return 1;
  }
  return 0;
}

/* Retry-After, for the backoff of whoever retries: the API server's
 * priority and fairness sends it with 429, a busy one with 503. */
static size_t on_header(char *b, size_t sz, size_t n, void *ud)
{
  req *r = ud;
  static const char name[] = "retry-after:";
  if (n > sizeof(name) - 1 && strncasecmp(b, name, sizeof(name) - 1) == 0) {
    char v[64];
    size_t len = n - (sizeof(name) - 1);
    if (len >= sizeof(v))
      len = sizeof(v) - 1;
    memcpy(v, b + sizeof(name) - 1, len);
    v[len] = '\0';
    r->retry_after = cs_http_parse_retry_after(v, cs_clock_now());
  }
  return sz * n;
}

/* Makes one request on *hp, a thread's own handle, which keeps its
 * connections between requests. A request that did not end cleanly (no
 * answer, cut, timed out, broken) leaves its connection in doubt: on
 * HTTP/2, which kube-apiserver speaks over TLS, libcurl resets only the
 * stream and keeps the connection for the next request, which on a
 * connection that died without a word would wait until TCP gives up
 * (about 15 min). So such a request drops the handle and its
 * connections: the next one connects afresh. *hp is NULL when no new
 * handle could be made; the next call tries again. */
static void perform(cs_kube *k, CURL **hp, req *r)
{
  r->cerr[0] = '\0';
  r->status = 0;
  r->idled = false;
  if (!*hp && !(*hp = curl_easy_init())) {
    r->curl = CURLE_OUT_OF_MEMORY;
    metric_add(k, "carbonshift_kube_requests_total", r->verb, "0");
    STAT_ADD(k, requests_failed);
    return;
  }
  CURL *h = *hp;
  struct curl_slist *hdr = NULL;
  char *url =
      cs_asprintf("%s%s", k->req_base ? k->req_base : k->server, r->path);
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->cerr);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_USERAGENT, cs_user_agent);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, r->write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r->ud);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  r->k = k;
  r->seen_bytes = 0;
  r->last_byte_ns = cs_clock_mono_ns();
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_check);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
  r->retry_after = -1; /* this answer's alone */
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  hdr = curl_slist_append(hdr, "Accept: application/json");
  if (r->ctype) {
    char line[128];
    snprintf(line, sizeof(line), "Content-Type: %s", r->ctype);
    hdr = curl_slist_append(hdr, line);
  }
  hdr = auth_header(k, hdr);
  if (k->host_header) {
    hdr = curl_slist_append(hdr, k->host_header);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, k->connect_to);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  if (strcmp(r->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(r->body ? r->bodylen : 0));
  }
  if (k->insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (k->ca_data.p || k->ca_file) {
    /* The cluster's CA alone, as in client-go: libcurl would also trust
     * the CA directory it was built with (/etc/ssl/certs on Debian), so
     * any CA of the system could vouch for a server posing as this one. */
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    if (k->ca_data.p) {
      struct curl_blob b = {k->ca_data.p, k->ca_data.n, CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    } else {
      curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_file);
    }
  }
  if (k->auth == CS_KUBE_AUTH_CLIENT_CERT) {
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    if (k->cert_data.p) {
      struct curl_blob b = {k->cert_data.p, k->cert_data.n, CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
    } else {
      curl_easy_setopt(h, CURLOPT_SSLCERT, k->cert_file);
    }
    if (k->key_data.p) {
      struct curl_blob b = {k->key_data.p, k->key_data.n, CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
    } else {
      curl_easy_setopt(h, CURLOPT_SSLKEY, k->key_file);
    }
  }
  r->curl = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  char code[16];
  snprintf(code, sizeof(code), "%ld", r->status);
  metric_add(k, "carbonshift_kube_requests_total", r->verb, code);
  if (r->curl == CURLE_OK && r->status >= 200 && r->status < 300)
    STAT_ADD(k, requests_ok);
  else
    STAT_ADD(k, requests_failed);
  if (!strcmp(r->verb, "list") || !strcmp(r->verb, "watch"))
    atomic_store(&k->watch_retry_after, r->retry_after);
  curl_slist_free_all(hdr);
  /* The handle keeps a pointer to the header list: drop it. */
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  free(url);
  if ((r->curl != CURLE_OK || r->idled) && !atomic_load(&k->stop)) {
    curl_easy_cleanup(h);
    *hp = curl_easy_init();
  }
}

static size_t write_buf(char *p, size_t sz, size_t n, void *ud)
{
  cs_buf *b = ud;
  cs_buf_append(b, p, n);
  return cs_buf_error(b) ? 0 : n;
}

/* A buffered request; a 401 with a rotated token file is retried once with
 * the new token. */
static void request(cs_kube *k, CURL **hp, req *r, cs_buf *resp)
{
  for (int attempt = 0; attempt < 2; attempt++) {
    token_refresh(k, false);
    cs_buf_reset(resp);
    r->write = write_buf;
    r->ud = resp;
    perform(k, hp, r);
    if (!(r->curl == CURLE_OK && r->status == 401 && token_refresh(k, true)))
      break;
  }
}

/* Copies `in` into out (capacity cap) with each copy of the bearer token
 * replaced by "[token]": the message of an error answer is the server's
 * (or a proxy's) text, which may echo the request's headers. Replaced
 * before the cut to cap, which could leave a token's first bytes. */
static void redact_token(cs_kube *k, const char *in, char *out, size_t cap)
{
  bool token =
      k->auth == CS_KUBE_AUTH_TOKEN || k->auth == CS_KUBE_AUTH_TOKEN_FILE;
  if (token)
    pthread_mutex_lock(&k->tok_mu);
  size_t tn = token && k->token ? strlen(k->token) : 0;
  cs_buf b;
  cs_buf_init(&b, 0);
  const char *p = in;
  for (const char *hit = tn ? strstr(p, k->token) : NULL; hit;
       hit = strstr(p, k->token)) {
    cs_buf_append(&b, p, (size_t)(hit - p));
    cs_buf_puts(&b, "[token]");
    p = hit + tn;
  }
  if (token)
    pthread_mutex_unlock(&k->tok_mu);
  cs_buf_puts(&b, p);
  snprintf(out, cap, "%s", b.data ? b.data : "");
  cs_buf_free(&b);
}

/* A short description of a failed request for logs: the API's Status
 * message when there is one. */
static void describe_failure(cs_kube *k, const req *r, const cs_buf *body,
                             char *out, size_t cap)
{
  if (r->curl != CURLE_OK && r->status == 0) {
    snprintf(out, cap, "%s",
             r->cerr[0] ? r->cerr : curl_easy_strerror(r->curl));
    return;
  }
  cJSON *st = NULL;
  if (body && body->len)
    st = cs_jtree_parse(body->data, body->len, NULL);
  const char *msg =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "message"));
  char *text =
      cs_asprintf("HTTP %ld%s%s", r->status, msg ? ": " : "", msg ? msg : "");
  cJSON_Delete(st);
  redact_token(k, text, out, cap);
  free(text);
}

static cs_err status_err(const req *r)
{
  if (r->curl != CURLE_OK && r->status == 0)
    return r->curl == CURLE_OPERATION_TIMEDOUT ? CS_ETIMEDOUT : CS_EIO;
  if (r->status >= 200 && r->status < 300)
    return r->curl == CURLE_OK ? CS_OK : CS_EIO;
  if (r->status == 401 || r->status == 403)
    return CS_EAUTH;
  if (r->status == 404)
    return CS_ENOTFOUND;
  return CS_EHTTP;
}

/* ------------------------------------------------------------ node watch */

static bool stopping(cs_kube *k)
{
  return atomic_load(&k->stop);
}

/* Sleeps up to `s` seconds; returns early (true) when the client stops. */
static bool wait_or_stop(cs_kube *k, double s)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* stop_cv waits on it: a clock step
                                          neither stretches nor cuts it */
  double whole = (double)(int64_t)s;
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)((s - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&k->stop_mu);
  while (!atomic_load(&k->stop))
    if (pthread_cond_timedwait(&k->stop_cv, &k->stop_mu, &ts) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&k->stop_mu);
  return stopping(k);
}

static double backoff_delay(cs_kube *k, int failures, unsigned *seed);

/* The longest Retry-After the watch waits: a server's hint, not a
 * reason to stay away for hours. */
#define RETRY_AFTER_MAX_S 300

/* The delay before the watch thread's next attempt: at least the server's
 * Retry-After of the attempt that just failed, when it sent one. */
static double retry_delay(cs_kube *k, int failures, unsigned *seed)
{
  double d = backoff_delay(k, failures, seed);
  int64_t ra = atomic_exchange(&k->watch_retry_after, -1);
  if (ra > RETRY_AFTER_MAX_S)
    ra = RETRY_AFTER_MAX_S;
  return ra > d ? (double)ra : d;
}

static double backoff_delay(cs_kube *k, int failures, unsigned *seed)
{
  double d = k->cfg.backoff_initial_s;
  for (int i = 1; i < failures && d < k->cfg.backoff_max_s; i++)
    d *= 2;
  if (d > k->cfg.backoff_max_s)
    d = k->cfg.backoff_max_s;
  /* Jitter in [d/2, d) spreads the reconnects of many replicas. */
  return d * (0.5 + 0.5 * ((double)rand_r(seed) / ((double)RAND_MAX + 1)));
}

/* Whether `v`, a resourceVersion from the server, fits the client's
 * buffers; if not, err says so (where is the field's place). */
static bool rv_fits(const char *v, const char *where, char *err, size_t errcap)
{
  size_t n = strlen(v);
  if (n <= CS_KUBE_RV_MAX)
    return true;
  snprintf(err, errcap, "%s is %zu bytes, expected at most %d", where, n,
           CS_KUBE_RV_MAX);
  return false;
}

/* Records v (checked by rv_fits) as where the watch stands. */
static void set_rv(cs_kube *k, char *rv, const char *v)
{
  snprintf(rv, CS_KUBE_RV_MAX + 1, "%s", v);
  pthread_mutex_lock(&k->st_mu);
  snprintf(k->st.resource_version, sizeof(k->st.resource_version), "%s", rv);
  pthread_mutex_unlock(&k->st_mu);
}

/* Logs a failure once per streak of the same error; repeats go to v=1. */
static void log_failure(cs_kube *k, const char *what, const char *err,
                        int attempt, double retry_in)
{
  bool repeat = k->wstate == WS_FAILING && strcmp(k->last_err, err) == 0;
  cs_buf *l = cs_log_begin(repeat ? 1 : 0, what);
  cs_json_str(l, "err", err);
  cs_json_int(l, "attempt", attempt);
  cs_json_num(l, "retryInSeconds", retry_in, 3);
  cs_log_end(l);
  k->wstate = WS_FAILING;
  snprintf(k->last_err, sizeof(k->last_err), "%s", err);
}

static void enter_state(cs_kube *k, watch_state s, int failures)
{
  if (k->wstate == WS_FAILING && s != WS_FAILING) {
    cs_buf *l = cs_log_begin(0, "Node watch recovered");
    cs_json_int(l, "failedAttempts", failures);
    cs_log_end(l);
  }
  k->wstate = s;
}

/* One NodeList page into the sink (relist_begin first when `first`): *cont
 * gets the continue token (owned) or NULL, and rv the list's
 * resourceVersion after the last page. */
static cs_err list_page(cs_kube *k, const char *body, size_t len, bool first,
                        char *rv, char **cont, size_t *nodes, char *err,
                        size_t errcap)
{
  cJSON *doc = cs_jtree_parse(body, len, NULL);
  cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
  const char *lrv = cJSON_GetStringValue(
      cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));
  *cont = NULL;
  if (!doc || !cJSON_IsArray(items) || !lrv) {
    snprintf(err, errcap,
             "the NodeList is not JSON with items and "
             "metadata.resourceVersion");
    cJSON_Delete(doc);
    return CS_EPARSE;
  }
  if (!rv_fits(lrv, "the NodeList's metadata.resourceVersion", err, errcap)) {
    cJSON_Delete(doc);
    return CS_EPARSE;
  }
  if (first && k->sink.relist_begin)
    k->sink.relist_begin(k->sink.ctx);
  cJSON *it;
  cJSON_ArrayForEach(it, items)
  {
    cs_err urc = k->sink.upsert ? k->sink.upsert(k->sink.ctx, it) : CS_OK;
    if (urc) {
      cs_buf *e = cs_log_begin(0, "Cannot use a listed node");
      cs_json_str(e, "err", cs_strerror(urc));
      cs_log_end(e);
    }
    (*nodes)++;
  }
  const char *c =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "continue"));
  if (c && c[0])
    *cont = cs_strdup(c);
  else
    set_rv(k, rv, lrv);
  cJSON_Delete(doc);
  return CS_OK;
}

/* Lists every Node page by page into the sink; rv gets the list's
 * resourceVersion. */
static cs_err list_nodes(cs_kube *k, CURL **hp, char *rv, const char *reason,
                         char *err, size_t errcap)
{
  cs_err rc = CS_OK;
  cs_buf body;
  char *cont = NULL;
  size_t nodes = 0, pages = 0;
  cs_buf_init(&body, k->cfg.max_body_bytes);
  /* Only the first list is news at v0: a relist follows the line that
   * caused it (the expiry, or the failure with its retryInSeconds), and a
   * retry streak must not log at v0 on every attempt. */
  cs_buf *l = cs_log_begin(k->wstate == WS_INIT ? 0 : 1, "Listing nodes");
  cs_json_str(l, "reason", reason);
  cs_log_end(l);
  if (k->wstate != WS_FAILING)
    k->wstate = WS_LISTING;
  do {
    /* The token is opaque (base64 from kube-apiserver), so escaped, as
     * the watch's resourceVersion is; cs_http_escape has no failure
     * (out of memory aborts), where curl_easy_escape's NULL would have
     * quietly asked for the first page again. */
    cs_buf pb;
    cs_buf_init(&pb, 0);
    cs_buf_printf(&pb, "/api/v1/nodes?limit=%d", k->cfg.list_page_size);
    if (cont) {
      cs_buf_puts(&pb, "&continue=");
      cs_http_escape(&pb, cont);
    }
    char *path = cs_buf_release(&pb, NULL);
    req r = {.verb = "list",
             .method = "GET",
             .path = path,
             .timeout_ms = (long)(k->cfg.request_timeout_s * 1000 * 6)};
    request(k, hp, &r, &body);
    free(path);
    if (stopping(k)) {
      rc = CS_EBUSY;
      goto out;
    }
    if (r.curl == CURLE_WRITE_ERROR && cs_buf_error(&body)) {
      snprintf(err, errcap, "a NodeList page is larger than %zu bytes",
               k->cfg.max_body_bytes);
      rc = CS_ETOOBIG;
      goto out;
    }
    rc = status_err(&r);
    if (rc) {
      describe_failure(k, &r, &body, err, errcap);
      goto out;
    }
    free(cont);
    cont = NULL;
    rc = list_page(k, body.data, body.len, pages++ == 0, rv, &cont, &nodes, err,
                   errcap);
    if (rc)
      goto out;
  } while (cont);
  if (k->sink.relist_end)
    k->sink.relist_end(k->sink.ctx);
  STAT_ADD(k, lists);
  metric_add(k, "carbonshift_kube_node_lists_total", reason, "complete");
  l = cs_log_begin(0, "Listed nodes");
  cs_json_int(l, "nodes", (int64_t)nodes);
  cs_json_int(l, "pages", (int64_t)pages);
  cs_json_str(l, "resourceVersion", rv);
  cs_log_end(l);
out:
  free(cont);
  cs_buf_free(&body);
  return rc;
}

typedef enum wres {
  W_TIMEOUT = 0, /* the server ended the watch cleanly */
  W_DROPPED,     /* the connection broke */
  W_GONE,        /* 410: the resourceVersion is too old */
  W_AUTH,
  W_ERROR, /* an HTTP error or an ERROR event other than 410 */
  W_BADLINE,
  W_IDLE, /* established, then silent for watch_idle_s */
  W_STOP
} wres;

static const char *const wres_names[] = {"timeout",      "dropped", "gone",
                                         "unauthorized", "error",   "badEvent",
                                         "idle",         "stop"};

typedef struct wctx {
  cs_kube *k;
  CURL **hp; /* the handle of the transfer under way */
  char *rv;
  cs_buf line;
  cs_buf errbody;
  bool checked;
  long status;
  wres res;
  bool ended;    /* res is set */
  size_t events; /* ADDED, MODIFIED, DELETED and BOOKMARK applied */
  char err[256];
} wctx;

static void watch_line(wctx *w, const char *s, size_t n)
{
  cs_kube *k = w->k;
  while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
    n--;
  if (!n)
    return;
  cJSON *ev = cs_jtree_parse(s, n, NULL);
  const char *type =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
  cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
  if (!type || !cJSON_IsObject(obj)) {
    snprintf(w->err, sizeof(w->err),
             "a watch event is not JSON with type and object");
    w->res = W_BADLINE;
    w->ended = true;
    goto out;
  }
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  const char *orv = cJSON_GetStringValue(
      cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));
  /* Checked before the event is applied: one that cannot be recorded
   * ends the watch, which resumes from the last version that could. */
  if (orv && !rv_fits(orv, "a watch event's object.metadata.resourceVersion",
                      w->err, sizeof(w->err))) {
    w->res = W_BADLINE;
    w->ended = true;
    goto out;
  }
  if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
    cs_err rc = k->sink.upsert ? k->sink.upsert(k->sink.ctx, obj) : CS_OK;
    if (rc) {
      cs_buf *l = cs_log_begin(0, "Cannot use a watched node");
      cs_json_str(l, "err", cs_strerror(rc));
      cs_json_str(l, "event", type);
      cs_log_end(l);
    }
    STAT_ADD(k, watch_events);
  } else if (strcmp(type, "DELETED") == 0) {
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "name"));
    if (name && k->sink.remove)
      k->sink.remove(k->sink.ctx, name);
    STAT_ADD(k, watch_events);
  } else if (strcmp(type, "BOOKMARK") == 0) {
    STAT_ADD(k, bookmarks);
  } else if (strcmp(type, "ERROR") == 0) {
    cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
    const char *msg =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "message"));
    /* The Status's code is an HTTP status; anything else (absent, 4e102,
     * 410.5) is none, and must not be cast to an int. */
    double cd = cJSON_IsNumber(code) ? code->valuedouble : 0;
    int c = cd >= 100 && cd <= 999 && cd == (double)(int)cd ? (int)cd : 0;
    if (c)
      snprintf(w->err, sizeof(w->err), "watch ERROR event %d: %s", c,
               msg ? msg : "");
    else
      snprintf(w->err, sizeof(w->err),
               "watch ERROR event without an HTTP status code: %s",
               msg ? msg : "");
    w->res = c == 410 ? W_GONE : W_ERROR;
    w->ended = true;
    goto out;
  } else {
    /* Unknown types are skipped: newer servers may add some. */
    goto out;
  }
  w->events++; /* progress: an ERROR or unknown line is none */
  if (orv && orv[0])
    set_rv(k, w->rv, orv);
out:
  cJSON_Delete(ev);
}

static size_t watch_write(char *p, size_t sz, size_t n, void *ud)
{
  wctx *w = ud;
  if (!w->checked) {
    curl_easy_getinfo(*w->hp, CURLINFO_RESPONSE_CODE, &w->status);
    w->checked = true;
  }
  if (w->status != 200) {
    cs_buf_append(&w->errbody, p, n); /* capped; the excess is ignored */
    return n;
  }
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(p + i, '\n', n - i);
    size_t take = nl ? (size_t)(nl - (p + i)) : n - i;
    cs_buf_append(&w->line, p + i, take);
    if (cs_buf_error(&w->line)) {
      snprintf(w->err, sizeof(w->err), "a watch event is larger than %zu bytes",
               w->k->cfg.max_line_bytes);
      w->res = W_BADLINE;
      w->ended = true;
      return 0;
    }
    i += take;
    if (nl) {
      i++;
      watch_line(w, w->line.data ? w->line.data : "", w->line.len);
      cs_buf_reset(&w->line);
      if (w->ended)
        return 0;
    }
  }
  return n;
}

static wres watch_once(cs_kube *k, CURL **hp, char *rv, size_t *events,
                       char *err, size_t errcap)
{
  wctx w = {.k = k, .hp = hp, .rv = rv};
  wres res = W_ERROR;
  cs_buf_init(&w.line, k->cfg.max_line_bytes);
  cs_buf_init(&w.errbody, ERRBODY_MAX_BYTES);
  /* The version is opaque, so escaped: the server chooses its bytes. */
  cs_buf pb;
  cs_buf_init(&pb, 0);
  cs_buf_puts(&pb, "/api/v1/nodes?watch=1&allowWatchBookmarks=true"
                   "&resourceVersion=");
  cs_http_escape(&pb, rv);
  cs_buf_printf(&pb, "&timeoutSeconds=%d", k->cfg.watch_timeout_s);
  char *path = cs_buf_release(&pb, NULL);
  for (int attempt = 0; attempt < 2; attempt++) {
    token_refresh(k, false);
    w.checked = false;
    w.status = 0;
    w.ended = false;
    w.events = 0;
    cs_buf_reset(&w.line);
    cs_buf_reset(&w.errbody);
    /* The server ends the watch after timeoutSeconds, and sends a
     * BOOKMARK about every minute meanwhile (kube-apiserver's watch
     * cache); a watch silent for watch_idle_s lost its connection without
     * a word (a network partition, a node gone), or has a server that
     * sends no bookmarks: either way it is renewed, instead of waiting
     * for the overall limit 30 s after timeoutSeconds. */
    req r = {.verb = "watch",
             .method = "GET",
             .path = path,
             .timeout_ms = (long)(k->cfg.watch_timeout_s + 30) * 1000,
             .idle_s = k->cfg.watch_idle_s,
             .write = watch_write,
             .ud = &w};
    perform(k, hp, &r);
    *events = w.events;
    if (stopping(k)) {
      res = W_STOP;
      break;
    }
    if (r.idled && !w.ended) {
      /* A 200 came: the watch was established, then went silent. No
       * answer, or another status whose body stalled: a failure. */
      if (r.status == 200) {
        res = W_IDLE;
        snprintf(err, errcap, "no event or bookmark within %d s",
                 k->cfg.watch_idle_s);
      } else if (r.status == 0) {
        res = W_DROPPED;
        snprintf(err, errcap, "no answer to the watch within %d s",
                 k->cfg.watch_idle_s);
      } else {
        res = W_ERROR;
        snprintf(err, errcap,
                 "the watch was answered %ld, then nothing more came "
                 "within %d s",
                 r.status, k->cfg.watch_idle_s);
      }
      break;
    }
    if (w.ended) {
      res = w.res;
      snprintf(err, errcap, "%s", w.err);
      break;
    }
    if (r.status == 401 && attempt == 0 && token_refresh(k, true))
      continue;
    if (r.status != 200 && r.status != 0) {
      describe_failure(k, &r, &w.errbody, err, errcap);
      res = r.status == 410 ? W_GONE : r.status == 401 ? W_AUTH : W_ERROR;
      break;
    }
    if (r.curl == CURLE_OK) {
      res = W_TIMEOUT;
      break;
    }
    snprintf(err, errcap, "%s",
             r.cerr[0] ? r.cerr : curl_easy_strerror(r.curl));
    res = W_DROPPED;
    break;
  }
  free(path);
  cs_buf_free(&w.line);
  cs_buf_free(&w.errbody);
  return res;
}

static void *watch_main(void *arg)
{
  cs_kube *k = arg;
  CURL *h = curl_easy_init();
  char rv[CS_KUBE_RV_MAX + 1] = "";
  char err[256];
  const char *reason = "initial";
  bool need_list = true;
  int failures = 0;
  /* 410s in a row with no progress between: a server (or proxy) that
   * gives no version to watch from would otherwise be listed in a loop. */
  int gone_streak = 0;
  unsigned seed = (unsigned)cs_clock_mono_ns() ^ (unsigned)(uintptr_t)k;
  if (!h) {
    cs_log_error("Cannot start the node watch", "curl_easy_init failed");
    return NULL;
  }
  while (!stopping(k)) {
    if (need_list) {
      err[0] = '\0';
      cs_err rc = list_nodes(k, &h, rv, reason, err, sizeof(err));
      if (stopping(k))
        break;
      if (rc) {
        failures++;
        double d = retry_delay(k, failures, &seed);
        log_failure(k, "Cannot list nodes", err, failures, d);
        metric_add(k, "carbonshift_kube_node_lists_total", reason, "failed");
        wait_or_stop(k, d);
        continue;
      }
      need_list = false;
      enter_state(k, WS_LISTING, failures);
      failures = 0;
    }
    if (k->wstate != WS_WATCHING) {
      /* A retry after a failure is v1, as the failure line announced it;
       * "Node watch recovered" says when one works. */
      cs_buf *l =
          cs_log_begin(k->wstate == WS_FAILING ? 1 : 0, "Watching nodes");
      cs_json_str(l, "resourceVersion", rv);
      cs_log_end(l);
    } else {
      cs_buf *l = cs_log_begin(2, "Renewing the node watch");
      cs_json_str(l, "resourceVersion", rv);
      cs_log_end(l);
    }
    size_t events = 0;
    uint64_t t0 = cs_clock_mono_ns();
    err[0] = '\0';
    wres res = watch_once(k, &h, rv, &events, err, sizeof(err));
    double took = (double)(cs_clock_mono_ns() - t0) / 1e9;
    if (res == W_STOP)
      break;
    /* Progress resets the backoff: an event applied, or a watch that ran
     * its course. A line alone (an ERROR event) or a watch ended at once
     * is none, so a server or proxy that ends every watch so is retried
     * with a growing backoff, logged once, not every half second. */
    /* An idle renewal ran for watch_idle_s on an established watch: as
     * much a course run as a timeout's. */
    bool progress =
        events > 0 || (res == W_TIMEOUT && took >= 1.0) || res == W_IDLE;
    if (progress) {
      enter_state(k, WS_WATCHING, failures);
      failures = 0;
      gone_streak = 0;
    }
    if (res == W_TIMEOUT && progress)
      continue;
    if (res == W_IDLE) {
      /* Renewed at once, at v1: where the connection is really gone, the
       * new watch fails and that failure is logged at v0. */
      STAT_ADD(k, watch_restarts);
      metric_add(k, "carbonshift_kube_watch_restarts_total", "idle", NULL);
      cs_buf *l = cs_log_begin(1, "Node watch silent, renewing");
      cs_json_str(l, "err", err);
      cs_json_str(l, "resourceVersion", rv);
      cs_log_end(l);
      continue;
    }
    if (res == W_TIMEOUT)
      snprintf(err, sizeof(err), "the watch ended at once without events");
    STAT_ADD(k, watch_restarts);
    /* A clean end here is no timeout: the server (or a proxy) ended the
     * watch at once, which is retried with backoff like a failure. */
    metric_add(k, "carbonshift_kube_watch_restarts_total",
               res == W_TIMEOUT ? "endedAtOnce" : wres_names[res], NULL);
    if (res == W_GONE) {
      /* The resourceVersion is too old to resume from: relist, at once
       * the first time; when the watch from the fresh list expires too,
       * after a growing backoff, and from the third on logged at v1. */
      STAT_ADD(k, relists_gone);
      gone_streak = progress ? 1 : gone_streak + 1;
      double d = gone_streak > 1 ? backoff_delay(k, gone_streak - 1, &seed) : 0;
      cs_buf *l = cs_log_begin(gone_streak > 2 ? 1 : 0,
                               "Node watch expired, relisting");
      cs_json_str(l, "err", err);
      cs_json_str(l, "resourceVersion", rv);
      if (gone_streak > 1)
        cs_json_num(l, "retryInSeconds", d, 3);
      cs_log_end(l);
      reason = "gone";
      need_list = true;
      k->wstate = WS_LISTING;
      if (d > 0 && wait_or_stop(k, d))
        break;
      continue;
    }
    failures++;
    double d = retry_delay(k, failures, &seed);
    char what[64];
    snprintf(what, sizeof(what), "Node watch %s",
             res == W_DROPPED ? "dropped" : "failed");
    log_failure(k, what, err, failures, d);
    if (wait_or_stop(k, d))
      break;
  }
  curl_easy_cleanup(h);
  return NULL;
}

/* Takes the watch's sink, unless the watch thread already runs (the feeds
 * below stand in for it and must not run beside it). */
static cs_err take_sink(cs_kube *k, const cs_kube_node_sink *sink)
{
  if (!k || !sink)
    return CS_EINVAL;
  if (k->watch_running)
    return CS_EBUSY;
  k->sink = *sink;
  return CS_OK;
}

cs_err cs_kube_watch_feed(cs_kube *k, const cs_kube_node_sink *sink,
                          const char *body, size_t len, size_t chunk, char *err,
                          size_t errcap)
{
  cs_err rc = take_sink(k, sink);
  if (rc)
    return rc;
  char rv[CS_KUBE_RV_MAX + 1];
  pthread_mutex_lock(&k->st_mu);
  snprintf(rv, sizeof(rv), "%s", k->st.resource_version);
  pthread_mutex_unlock(&k->st_mu);
  wctx w = {.k = k, .rv = rv, .checked = true, .status = 200};
  cs_buf_init(&w.line, k->cfg.max_line_bytes);
  cs_buf_init(&w.errbody, ERRBODY_MAX_BYTES);
  if (!chunk)
    chunk = len;
  for (size_t off = 0; off < len && !w.ended; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    watch_write((char *)body + off, 1, n, &w);
  }
  if (w.ended)
    rc = w.res == W_BADLINE ? (cs_buf_error(&w.line) ? CS_ETOOBIG : CS_EPARSE)
                            : CS_EHTTP;
  seterr(err, errcap, "%s", w.err);
  cs_buf_free(&w.line);
  cs_buf_free(&w.errbody);
  return rc;
}

cs_err cs_kube_list_feed(cs_kube *k, const cs_kube_node_sink *sink,
                         const char *body, size_t len, bool first, char **cont,
                         char *err, size_t errcap)
{
  *cont = NULL;
  cs_err rc = take_sink(k, sink);
  if (rc)
    return rc;
  char rv[CS_KUBE_RV_MAX + 1];
  size_t nodes = 0;
  char msg[256] = "";
  rc = list_page(k, body, len, first, rv, cont, &nodes, msg, sizeof(msg));
  seterr(err, errcap, "%s", msg);
  return rc;
}

cs_err cs_kube_start_node_watch(cs_kube *k, const cs_kube_node_sink *sink)
{
  cs_err rc = take_sink(k, sink);
  if (rc)
    return rc;
  if (pthread_create(&k->watch_thr, NULL, watch_main, k) != 0)
    return CS_EINTERNAL;
  k->watch_running = true;
  return CS_OK;
}

/* --------------------------------------------------------------- patches */

/* An item the stop cut, in flight or between tries: dropped, as what is
 * still queued, and said in cs_kube_free's one line. */
static void count_cut(cs_kube *k, bool patch)
{
  if (patch) {
    STAT_ADD(k, patches_dropped);
    metric_add(k, "carbonshift_kube_patches_total", "dropped", NULL);
    atomic_fetch_add(&k->cut_patches, 1);
  } else {
    STAT_ADD(k, events_dropped);
    metric_add(k, "carbonshift_kube_events_total", "dropped", NULL);
    atomic_fetch_add(&k->cut_events, 1);
  }
}

/* One try at a plan patch or an Event. The queued ones are tried up to
 * SEND_ATTEMPTS times when the failure is one that passes (see
 * may_pass); `last` says whether a failure now is final: counted, logged
 * and returned as it is. A failure that is not final returns CS_EBUSY,
 * uncounted, with the server's Retry-After in `retry_after` (-1: none). */
typedef struct send_try {
  int attempt; /* 1, 2, ... */
  bool last;
  int64_t retry_after; /* out */
  bool passing;        /* out: the failure was one that may pass */
} send_try;

#define SEND_ATTEMPTS 3
/* The longest wait between two tries: the sender is one thread, and the
 * Events and patches queued behind the one retried wait with it. */
#define SEND_RETRY_MAX_S 10

/* Whether a request that got no answer failed for a reason that stays:
 * the server's certificate or the client's own TLS files, or a server URL
 * this libcurl cannot use. Sent again, it fails the same way. Not
 * CURLE_UNSUPPORTED_PROTOCOL: the URL's scheme is checked at load
 * (cs_http_url_problem), and libcurl also gives it for a garbled answer
 * ("Received HTTP/0.9"), as from a proxy in the middle of a restart. */
static bool failure_lasts(CURLcode c)
{
  switch (c) {
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_CLIENTCERT:
    return true;
  default:
    return false;
  }
}

/* Whether a failed request may succeed when sent again unchanged: no
 * answer (unless for a reason that stays), or an API server (or proxy)
 * busy, throttling or between restarts. A 4xx other than 429 is the
 * request's own fault. */
static bool may_pass(const req *r)
{
  if (r->status == 0)
    return r->curl != CURLE_OK && !failure_lasts(r->curl);
  return r->status == 429 || r->status == 500 || r->status == 502 ||
         r->status == 503 || r->status == 504;
}

/* The merge patch that sets (or, for NULL values, removes) annotations. */
static cs_err annotation_patch(const char *uid, const char *const *keys,
                               const char *const *values, size_t n, cs_buf *b)
{
  if (n && (!keys || !values))
    return CS_EINVAL;
  cs_json_open(b, NULL, '{');
  cs_json_open(b, "metadata", '{');
  if (uid && uid[0]) /* immutable: a precondition on the Pod patched */
    cs_json_str(b, "uid", uid);
  cs_json_open(b, "annotations", '{');
  for (size_t i = 0; i < n; i++) {
    if (!keys[i] || !keys[i][0])
      return CS_EINVAL;
    cs_json_str(b, keys[i], values[i]); /* NULL: null, removes it */
  }
  cs_json_close(b, '}');
  cs_json_close(b, '}');
  cs_json_close(b, '}');
  return cs_buf_error(b);
}

static cs_err patch_send(cs_kube *k, CURL **hp, const char *ns,
                         const char *name, const char *body, size_t len,
                         send_try *t)
{
  cs_buf resp;
  cs_buf_init(&resp, 4u << 20);
  char *path = cs_asprintf("/api/v1/namespaces/%s/pods/%s", ns, name);
  req r = {.verb = "patch",
           .method = "PATCH",
           .path = path,
           .ctype = "application/merge-patch+json",
           .body = body,
           .bodylen = len,
           .timeout_ms = (long)(k->cfg.request_timeout_s * 1000)};
  request(k, hp, &r, &resp);
  /* A 2xx is applied, whatever became of the body after it (cut, or
   * over the cap): the answer is the Pod, which nothing here reads. */
  cs_err rc = r.status >= 200 && r.status < 300 ? CS_OK : status_err(&r);
  t->retry_after = r.retry_after;
  if (rc == CS_OK) {
    STAT_ADD(k, patches_sent);
    metric_add(k, "carbonshift_kube_patches_total", "sent", NULL);
  } else if (!stopping(k) && !t->last && may_pass(&r)) {
    rc = CS_EBUSY;
  } else if (stopping(k)) {
    /* Cut by the stop: not the API server's failure (see cs_kube_free). */
    count_cut(k, true);
  } else {
    STAT_ADD(k, patches_failed);
    metric_add(k, "carbonshift_kube_patches_total", "failed", NULL);
    char err[256];
    describe_failure(k, &r, &resp, err, sizeof(err));
    cs_buf *l = cs_log_begin(0, "Cannot annotate pod");
    cs_json_str(l, "err", err);
    cs_json_int(l, "attempts", t->attempt);
    cs_json_open(l, "pod", '{');
    cs_json_str(l, "namespace", ns);
    cs_json_str(l, "name", name);
    cs_json_close(l, '}');
    cs_log_end(l);
  }
  t->passing = may_pass(&r);
  free(path);
  cs_buf_free(&resp);
  return rc;
}

cs_err cs_kube_patch_pod_annotations(cs_kube *k, const char *ns,
                                     const char *name, const char *uid,
                                     const char *const *keys,
                                     const char *const *values, size_t n)
{
  if (!k || !valid_name(ns) || !valid_name(name))
    return CS_EINVAL;
  cs_buf body;
  cs_buf_init(&body, 1u << 20);
  cs_err rc = annotation_patch(uid, keys, values, n, &body);
  CURL *h = rc ? NULL : curl_easy_init();
  if (!rc && !h)
    rc = CS_EINTERNAL;
  send_try once = {.attempt = 1, .last = true};
  if (!rc)
    rc = patch_send(k, &h, ns, name, body.data, body.len, &once);
  if (h)
    curl_easy_cleanup(h);
  cs_buf_free(&body);
  return rc;
}

/* ---------------------------------------------------------------- events */

void cs_kube_format_micro_time(int64_t unix_s, long usec, char out[static 28])
{
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  if (usec < 0 || usec > 999999)
    usec = 0;
  char date[20];
  if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
    snprintf(date, sizeof(date), "1970-01-01T00:00:00");
  snprintf(out, 28, "%.19s.%06ldZ", date, usec);
}

static void ev_item_free(ev_item *e)
{
  free(e->ns);
  free(e->pod);
  free(e->uid);
  free(e->reason);
  free(e->action);
  free(e->note);
  free(e->patch);
  memset(e, 0, sizeof(*e));
}

/* A copy of s as the API server will read it, cut to at most max bytes
 * without splitting a UTF-8 sequence: a byte that does not begin a valid
 * one is U+FFFD (three bytes), as cs_json_quote sends it, and the limits
 * the server checks (a note of 1 KiB) count the bytes it decoded. */
static char *dup_cut(const char *s, size_t max)
{
  static const char repl[] = "\xEF\xBF\xBD";
  size_t n = strlen(s);
  cs_buf b;
  cs_buf_init(&b, 0);
  for (size_t i = 0; i < n;) {
    size_t l = cs_utf8_len(s + i, n - i);
    size_t w = l ? l : sizeof(repl) - 1;
    if (b.len + w > max)
      break;
    cs_buf_append(&b, l ? s + i : repl, w);
    i += l ? l : 1;
  }
  return cs_buf_release(&b, NULL);
}

static void event_body(cs_kube *k, const ev_item *e, unsigned seq, cs_buf *b)
{
  char when[28];
  char name[254];
  cs_kube_format_micro_time(e->at_s, e->at_us, when);
  /* client-go names Events <object>.<hex time in ns>; here the time is in
   * microseconds and a sequence keeps names unique within one process. The pod
   * name is cut to leave room for the suffix (at most 21 bytes with its '.'),
   * and a cut that ends in '-' or
   * '.' is trimmed further: "a-.x" is no DNS subdomain. */
  size_t keep = strlen(e->pod);
  if (keep > 253 - 22)
    keep = 253 - 22;
  while (keep && (e->pod[keep - 1] == '-' || e->pod[keep - 1] == '.'))
    keep--;
  snprintf(name, sizeof(name), "%.*s%s%llx%04x", (int)keep, e->pod,
           keep ? "." : "", (unsigned long long)(e->at_s * 1000000 + e->at_us),
           seq & 0xffff);
  cs_json_open(b, NULL, '{');
  cs_json_str(b, "apiVersion", "events.k8s.io/v1");
  cs_json_str(b, "kind", "Event");
  cs_json_open(b, "metadata", '{');
  cs_json_str(b, "name", name);
  cs_json_str(b, "namespace", e->ns);
  cs_json_close(b, '}');
  cs_json_str(b, "eventTime", when);
  cs_json_str(b, "reportingController", REPORTING_CONTROLLER);
  cs_json_str(b, "reportingInstance", k->instance);
  cs_json_str(b, "action", e->action);
  cs_json_str(b, "reason", e->reason);
  cs_json_str(b, "note", e->note);
  cs_json_str(b, "type", e->warning ? "Warning" : "Normal");
  cs_json_open(b, "regarding", '{');
  cs_json_str(b, "apiVersion", "v1");
  cs_json_str(b, "kind", "Pod");
  cs_json_str(b, "namespace", e->ns);
  cs_json_str(b, "name", e->pod);
  if (e->uid && e->uid[0])
    cs_json_str(b, "uid", e->uid);
  cs_json_close(b, '}');
  cs_json_close(b, '}');
}

static cs_err event_send(cs_kube *k, CURL **hp, const ev_item *e, unsigned seq,
                         send_try *t)
{
  cs_buf body, resp;
  cs_buf_init(&body, 64u << 10);
  cs_buf_init(&resp, 1u << 20);
  char *path =
      cs_asprintf("/apis/events.k8s.io/v1/namespaces/%s/events", e->ns);
  event_body(k, e, seq, &body);
  req r = {.verb = "event",
           .method = "POST",
           .path = path,
           .ctype = "application/json",
           .body = body.data,
           .bodylen = body.len,
           .timeout_ms = (long)(k->cfg.request_timeout_s * 1000)};
  if (cs_buf_error(&body) == CS_OK)
    request(k, hp, &r, &resp);
  cs_err rc = cs_buf_error(&body)                 ? cs_buf_error(&body)
              : r.status >= 200 && r.status < 300 ? CS_OK
                                                  : status_err(&r);
  t->retry_after = r.retry_after;
  /* A retry is the same Event under the same name: 409 AlreadyExists says
   * an earlier try reached the API server though its answer did not. */
  if (rc != CS_OK && t->attempt > 1 && r.status == 409)
    rc = CS_OK;
  if (rc == CS_OK) {
    STAT_ADD(k, events_sent);
    metric_add(k, "carbonshift_kube_events_total", "sent", NULL);
    if (k->ev_failing) {
      cs_log_info("Sending pod events again");
      k->ev_failing = false;
    }
  } else if (!stopping(k) && !t->last && may_pass(&r)) {
    rc = CS_EBUSY;
  } else if (stopping(k)) {
    count_cut(k, false);
  } else {
    STAT_ADD(k, events_failed);
    metric_add(k, "carbonshift_kube_events_total", "failed", NULL);
    char err[256];
    describe_failure(k, &r, &resp, err, sizeof(err));
    /* One line when sending starts failing; further failures at v=1. */
    cs_buf *l = cs_log_begin(k->ev_failing ? 1 : 0, "Cannot send a pod event");
    cs_json_str(l, "err", err);
    cs_json_int(l, "attempts", t->attempt);
    cs_json_str(l, "reason", e->reason);
    cs_json_open(l, "pod", '{');
    cs_json_str(l, "namespace", e->ns);
    cs_json_str(l, "name", e->pod);
    cs_json_close(l, '}');
    cs_log_end(l);
    k->ev_failing = true;
  }
  t->passing = may_pass(&r);
  free(path);
  cs_buf_free(&body);
  cs_buf_free(&resp);
  return rc;
}

/* Sends one queued item, trying again after 0.5 s and 1 s (or the
 * server's Retry-After, up to SEND_RETRY_MAX_S) while its failure may
 * pass. For send_outage_s after an item failed so, each item gets one
 * try: retries are for a blip, and in an outage would only hold the queue
 * up. Patches and Events share it: they go to the same API server. */
static void send_item(cs_kube *k, CURL **hp, const ev_item *e, unsigned seq)
{
  bool outage = k->send_outage_at > 0 &&
                mono_s() - k->send_outage_at < k->cfg.send_outage_s;
  int attempts = outage ? 1 : SEND_ATTEMPTS;
  send_try t = {.retry_after = -1};
  cs_err rc;
  for (t.attempt = 1;; t.attempt++) {
    t.last = t.attempt >= attempts;
    rc = e->patch
             ? patch_send(k, hp, e->ns, e->pod, e->patch, strlen(e->patch), &t)
             : event_send(k, hp, e, seq, &t);
    if (rc != CS_EBUSY)
      break;
    double delay = 0.5 * (double)(1 << (t.attempt - 1));
    if (t.retry_after > delay)
      delay = t.retry_after < SEND_RETRY_MAX_S ? (double)t.retry_after
                                               : SEND_RETRY_MAX_S;
    if (wait_or_stop(k, delay)) {
      count_cut(k, e->patch != NULL);
      return;
    }
  }
  k->send_outage_at = rc != CS_OK && t.passing ? mono_s() : 0;
}

static void *event_main(void *arg)
{
  cs_kube *k = arg;
  CURL *h = curl_easy_init();
  if (!h) {
    cs_log_error("Cannot start the event sender", "curl_easy_init failed");
    return NULL;
  }
  for (;;) {
    ev_item e;
    unsigned seq;
    pthread_mutex_lock(&k->ev_mu);
    while (k->qlen == 0 && !stopping(k))
      pthread_cond_wait(&k->ev_cv, &k->ev_mu);
    if (stopping(k)) {
      pthread_mutex_unlock(&k->ev_mu);
      break;
    }
    e = k->queue[k->qhead];
    memset(&k->queue[k->qhead], 0, sizeof(e));
    k->qhead = (k->qhead + 1) % k->cfg.event_queue_cap;
    k->qlen--;
    seq = ++k->ev_seq;
    k->ev_busy = true;
    pthread_mutex_unlock(&k->ev_mu);
    send_item(k, &h, &e, seq);
    ev_item_free(&e);
    pthread_mutex_lock(&k->ev_mu);
    k->ev_busy = false;
    if (!k->qlen)
      pthread_cond_broadcast(&k->ev_idle_cv);
    pthread_mutex_unlock(&k->ev_mu);
  }
  curl_easy_cleanup(h);
  return NULL;
}

cs_err cs_kube_emit_event(cs_kube *k, const cs_kube_event *ev)
{
  if (!k || !ev || !valid_name(ev->ns) || !valid_name(ev->pod) || !ev->reason ||
      !ev->reason[0] || !ev->action || !ev->action[0])
    return CS_EINVAL;
  if (!k->cfg.events_enabled)
    return CS_OK;
  /* The uid too: a pod created again under the same name is another. */
  uint64_t key = hash_field(CS_HASH_INIT, ev->ns);
  key = hash_field(key, ev->pod);
  key = hash_field(key, ev->uid);
  key = hash_field(key, ev->reason);
  uint64_t note = hash_field(CS_HASH_INIT, ev->note);
  double now = mono_s();
  cs_err rc = CS_OK;
  const char *result = NULL;

  pthread_mutex_lock(&k->ev_mu);
  dedup_entry *d = NULL, *oldest = NULL;
  for (size_t i = 0; i < k->ndedup; i++) {
    if (k->dedup[i].key == key) {
      d = &k->dedup[i];
      break;
    }
    if (!oldest || k->dedup[i].last < oldest->last)
      oldest = &k->dedup[i];
  }
  if (d && ((d->note == note && now - d->last < k->cfg.event_dedup_window_s) ||
            now - d->last < k->cfg.event_min_interval_s)) {
    result = "suppressed";
    goto out;
  }
  /* A quarter of the queue is kept for plan patches: Events explain, a
   * plan is state that replicas and restarts take up, and a burst of
   * Events must not crowd it out. */
  if (k->qlen >= k->cfg.event_queue_cap - k->cfg.event_queue_cap / 4) {
    result = "dropped";
    rc = CS_EBUSY;
    goto out;
  }
  if (!d) {
    if (k->ndedup < k->cfg.event_dedup_cap)
      d = &k->dedup[k->ndedup++];
    else
      d = oldest; /* the table is bounded: forget the stalest pod */
    d->key = key;
  }
  d->note = note;
  d->last = now;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ev_item *e = &k->queue[(k->qhead + k->qlen) % k->cfg.event_queue_cap];
  e->ns = cs_strdup(ev->ns);
  e->pod = cs_strdup(ev->pod);
  e->uid = cs_strdup(ev->uid ? ev->uid : "");
  e->reason = dup_cut(ev->reason, EVENT_FIELD_MAX);
  e->action = dup_cut(ev->action, EVENT_FIELD_MAX);
  e->note = dup_cut(ev->note ? ev->note : "", EVENT_NOTE_MAX);
  e->warning = ev->warning;
  /* Seconds and microseconds from one reading: time() and clock_gettime
   * can disagree by a second. A pinned clock (tests, replays) keeps its
   * seconds. */
  int64_t now_s = cs_clock_now();
  e->at_s = llabs(now_s - (int64_t)ts.tv_sec) <= 1 ? (int64_t)ts.tv_sec : now_s;
  e->at_us = ts.tv_nsec / 1000;
  k->qlen++;
  pthread_cond_signal(&k->ev_cv);
out:
  pthread_mutex_unlock(&k->ev_mu);
  if (result) {
    if (rc)
      STAT_ADD(k, events_dropped);
    else
      STAT_ADD(k, events_suppressed);
    metric_add(k, "carbonshift_kube_events_total", result, NULL);
  }
  return rc;
}

cs_err cs_kube_patch_pod_annotations_async(cs_kube *k, const char *ns,
                                           const char *name, const char *uid,
                                           const char *const *keys,
                                           const char *const *values, size_t n)
{
  if (!k || !valid_name(ns) || !valid_name(name))
    return CS_EINVAL;
  cs_buf body;
  cs_buf_init(&body, 1u << 20);
  cs_err rc = annotation_patch(uid, keys, values, n, &body);
  if (rc) {
    cs_buf_free(&body);
    return rc;
  }
  pthread_mutex_lock(&k->ev_mu);
  if (k->qlen >= k->cfg.event_queue_cap) {
    rc = CS_EBUSY;
  } else {
    ev_item *e = &k->queue[(k->qhead + k->qlen) % k->cfg.event_queue_cap];
    e->ns = cs_strdup(ns);
    e->pod = cs_strdup(name);
    e->patch = cs_buf_release(&body, NULL);
    k->qlen++;
    pthread_cond_signal(&k->ev_cv);
  }
  pthread_mutex_unlock(&k->ev_mu);
  cs_buf_free(&body);
  if (rc) {
    STAT_ADD(k, patches_dropped);
    metric_add(k, "carbonshift_kube_patches_total", "dropped", NULL);
  }
  return rc;
}

/* ------------------------------------------------------------ lifecycle */

cs_kube_mode cs_kube_choose_mode(cs_kube_mode mode, const char *kubeconfig,
                                 const char *service_host)
{
  if (mode != CS_KUBE_AUTO)
    return mode;
  if (kubeconfig && kubeconfig[0])
    return CS_KUBE_KUBECONFIG;
  if (service_host && service_host[0])
    return CS_KUBE_IN_CLUSTER;
  return CS_KUBE_OFF;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* cs_kube_new, and with !start cs_kube_check: the client is resolved from
 * its files, then either started or freed before anything runs. */
static cs_err kube_open(const cs_kube_config *cfg, bool start, cs_kube **out,
                        char *err, size_t errcap)
{
  cs_err rc = CS_OK;
  char *kc = NULL;
  cs_kube *k = NULL;
  *out = NULL;
  seterr(err, errcap, "%s", "");
  if (!cfg) {
    seterr(err, errcap, "no configuration");
    return CS_EINVAL;
  }
  if (cfg->request_timeout_s <= 0 || cfg->watch_timeout_s <= 0 ||
      cfg->watch_idle_s < 0 || cfg->send_outage_s < 0 ||
      cfg->backoff_initial_s <= 0 ||
      cfg->backoff_max_s < cfg->backoff_initial_s || cfg->list_page_size <= 0 ||
      cfg->max_line_bytes < 1024 || cfg->max_body_bytes < 1024 ||
      cfg->event_queue_cap == 0 || cfg->event_dedup_cap == 0 ||
      cfg->event_dedup_window_s < 0 || cfg->event_min_interval_s < 0) {
    seterr(err, errcap,
           "kube client: timeouts, backoff, page size, caps and queue sizes "
           "must be positive (start from cs_kube_config_defaults)");
    return CS_EINVAL;
  }
  pthread_once(&curl_once, curl_init_once);
  k = cs_calloc(1, sizeof(*k));
  k->cfg = *cfg;
  k->cfg.kubeconfig = k->cfg.context = k->cfg.sa_dir = k->cfg.server = NULL;
  k->cfg.reporting_instance = NULL;
  k->metrics = cfg->metrics;
  pthread_mutex_init(&k->tok_mu, NULL);
  pthread_mutex_init(&k->st_mu, NULL);
  pthread_mutex_init(&k->stop_mu, NULL);
  atomic_store(&k->watch_retry_after, -1);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&k->stop_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&k->ev_mu, NULL);
  pthread_cond_init(&k->ev_cv, NULL);
  pthread_condattr_t ica;
  pthread_condattr_init(&ica);
  pthread_condattr_setclock(&ica, CLOCK_MONOTONIC);
  pthread_cond_init(&k->ev_idle_cv, &ica);
  pthread_condattr_destroy(&ica);
  atomic_init(&k->stop, false);
  atomic_init(&k->cut_patches, 0);
  atomic_init(&k->cut_events, 0);

  const char *sa = cfg->sa_dir && cfg->sa_dir[0] ? cfg->sa_dir : CS_KUBE_SA_DIR;
  cs_kube_mode mode = cs_kube_choose_mode(cfg->mode, cfg->kubeconfig,
                                          getenv("KUBERNETES_SERVICE_HOST"));
  if (mode == CS_KUBE_OFF) {
    seterr(err, errcap,
           "kube.mode: %s: no API server to connect to, expected "
           "kube.kubeconfig set, or KUBERNETES_SERVICE_HOST set (in a Pod)",
           cfg->mode == CS_KUBE_AUTO ? "auto" : "off");
    rc = CS_EINVAL;
  } else if (mode == CS_KUBE_IN_CLUSTER) {
    rc = in_cluster_load(k, sa, cfg->server, err, errcap);
  } else if (!cfg->kubeconfig || !cfg->kubeconfig[0]) {
    seterr(err, errcap,
           "kube.kubeconfig: not set, expected the path of a kubeconfig file "
           "(kube.mode is kubeconfig; $KUBECONFIG and ~/.kube/config are not "
           "read)");
    rc = CS_EINVAL;
  } else {
    kc = cs_strdup(cfg->kubeconfig);
    rc = kubeconfig_load(k, kc, cfg->context, err, errcap);
    if (!rc && cfg->server && cfg->server[0]) {
      free(k->server);
      k->server = cs_strdup(cfg->server);
    }
  }
  if (rc)
    goto out;
  size_t sl = strlen(k->server);
  while (sl && k->server[sl - 1] == '/')
    k->server[--sl] = '\0';
  if (k->tls_server_name) {
    rc = tls_name_route(k, kc, err, errcap); /* only kubeconfigs have one */
    if (rc)
      goto out;
  }

  if (cfg->reporting_instance && cfg->reporting_instance[0])
    snprintf(k->instance, sizeof(k->instance), "%s", cfg->reporting_instance);
  else if (gethostname(k->instance, sizeof(k->instance) - 1) != 0 ||
           !k->instance[0])
    snprintf(k->instance, sizeof(k->instance), "carbonshift");
  k->instance[sizeof(k->instance) - 1] = '\0';
  if (!start)
    goto out;

  declare_metrics(k);
  k->queue = cs_calloc(k->cfg.event_queue_cap, sizeof(*k->queue));
  k->dedup = cs_calloc(k->cfg.event_dedup_cap, sizeof(*k->dedup));
  /* Started whatever events_enabled says: the same worker sends the queued
   * annotation patches, which do not depend on Events being wanted. */
  if (pthread_create(&k->ev_thr, NULL, event_main, k) != 0) {
    seterr(err, errcap, "cannot start the event and patch sender thread");
    rc = CS_EINTERNAL;
    goto out;
  }
  k->ev_running = true;
  static const char *const auth_names[] = {"none", "token", "tokenFile",
                                           "clientCertificate"};
  cs_buf *l = cs_log_begin(0, "Kubernetes API client configured");
  cs_json_str(l, "server", k->server);
  cs_json_str(l, "source", k->in_cluster ? "inCluster" : "kubeconfig");
  if (!k->in_cluster) {
    cs_json_str(l, "kubeconfig", kc);
    cs_json_str(l, "context", k->context);
  }
  cs_json_str(l, "auth", auth_names[k->auth]);
  cs_json_str(l, "namespace", k->ns);
  cs_json_bool(l, "insecureSkipTLSVerify", k->insecure);
  if (k->tls_server_name)
    cs_json_str(l, "tlsServerName", k->tls_server_name);
  cs_log_end(l);
out:
  free(kc);
  if (rc || !start) {
    cs_kube_free(k);
    k = NULL;
  }
  *out = k;
  return rc;
}

cs_err cs_kube_new(const cs_kube_config *cfg, cs_kube **out, char *err,
                   size_t errcap)
{
  return kube_open(cfg, true, out, err, errcap);
}

cs_err cs_kube_check(const cs_kube_config *cfg, char *err, size_t errcap)
{
  cs_kube *k;
  return kube_open(cfg, false, &k, err, errcap);
}

/* How long cs_kube_free waits for the Events and plan patches queued to
 * go out, within the tail the stop allows for the calls to the API server
 * (docs/operations.md, Graceful shutdown). A plan stored on the pod is what
 * another replica, or this one after its restart, takes up. */
#define DRAIN_MS 500

void cs_kube_free(cs_kube *k)
{
  if (!k)
    return;
  if (k->ev_running) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += (long)DRAIN_MS * 1000000L;
    dl.tv_sec += dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&k->ev_mu);
    while ((k->qlen || k->ev_busy) &&
           pthread_cond_timedwait(&k->ev_idle_cv, &k->ev_mu, &dl) != ETIMEDOUT)
      ;
    pthread_mutex_unlock(&k->ev_mu);
  }
  pthread_mutex_lock(&k->stop_mu);
  atomic_store(&k->stop, true);
  pthread_cond_broadcast(&k->stop_cv);
  pthread_mutex_unlock(&k->stop_mu);
  pthread_mutex_lock(&k->ev_mu);
  pthread_cond_broadcast(&k->ev_cv);
  pthread_mutex_unlock(&k->ev_mu);
  if (k->watch_running)
    pthread_join(k->watch_thr, NULL);
  if (k->ev_running)
    pthread_join(k->ev_thr, NULL);
  /* What the drain did not send is dropped, counted, and said once. */
  size_t left_patches = atomic_load(&k->cut_patches),
         left_events = atomic_load(&k->cut_events);
  for (size_t i = 0; k->queue && i < k->qlen; i++) {
    ev_item *e = &k->queue[(k->qhead + i) % k->cfg.event_queue_cap];
    if (e->patch) {
      left_patches++;
      STAT_ADD(k, patches_dropped);
      metric_add(k, "carbonshift_kube_patches_total", "dropped", NULL);
    } else {
      left_events++;
      STAT_ADD(k, events_dropped);
      metric_add(k, "carbonshift_kube_events_total", "dropped", NULL);
    }
    ev_item_free(e);
  }
  if (left_patches || left_events) {
    cs_buf *l = cs_log_begin(0, "Pod updates dropped at shutdown");
    cs_json_int(l, "patches", (int64_t)left_patches);
    cs_json_int(l, "events", (int64_t)left_events);
    cs_json_str(l, "err",
                "not sent within the half second the stop gives them; "
                "a plan not stored is made again at the "
                "pod's next try");
    cs_log_end(l);
  }
  free(k->queue);
  free(k->dedup);
  free(k->server);
  free(k->tls_server_name);
  free(k->req_base);
  curl_slist_free_all(k->connect_to);
  free(k->host_header);
  free(k->ns);
  free(k->context);
  free(k->ca_file);
  free(k->ca_data.p);
  free(k->cert_file);
  free(k->key_file);
  free(k->cert_data.p);
  if (k->key_data.p)
    memset(k->key_data.p, 0, k->key_data.n);
  free(k->key_data.p);
  if (k->token)
    memset(k->token, 0, strlen(k->token));
  free(k->token);
  free(k->token_path);
  pthread_mutex_destroy(&k->tok_mu);
  pthread_mutex_destroy(&k->st_mu);
  pthread_mutex_destroy(&k->stop_mu);
  pthread_cond_destroy(&k->stop_cv);
  pthread_mutex_destroy(&k->ev_mu);
  pthread_cond_destroy(&k->ev_cv);
  pthread_cond_destroy(&k->ev_idle_cv);
  free(k);
}

void cs_kube_get_info(const cs_kube *k, cs_kube_info *out)
{
  memset(out, 0, sizeof(*out));
  if (!k)
    return;
  snprintf(out->server, sizeof(out->server), "%s", k->server);
  snprintf(out->ns, sizeof(out->ns), "%s", k->ns);
  snprintf(out->context, sizeof(out->context), "%s",
           k->context ? k->context : "");
  out->in_cluster = k->in_cluster;
  out->auth = k->auth;
  out->insecure = k->insecure;
  out->has_ca = k->ca_file || k->ca_data.p;
}

void cs_kube_get_stats(cs_kube *k, cs_kube_stats *out)
{
  memset(out, 0, sizeof(*out));
  if (!k)
    return;
  pthread_mutex_lock(&k->st_mu);
  *out = k->st;
  pthread_mutex_unlock(&k->st_mu);
}
