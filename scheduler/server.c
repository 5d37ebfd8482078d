#include "scheduler/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"
#include "carbon/util/pool.h"
#include "scheduler/head_watch.h"
#include "scheduler/tls_certs.h"

/* Names of the settings as the configuration spells them, so an error
 * reply or log line tells the operator which knob to turn. */
#define OPT_MAX_BODY "http.maxBodyBytes"
#define OPT_REQUEST_TIMEOUT "http.requestTimeout"
#define OPT_HEADER_TIMEOUT "http.headerTimeout"
#define OPT_STREAM_BODY "http.streamBodyBytes"

#define M_REQUESTS "carbonshift_http_requests_total"
#define M_DURATION "carbonshift_http_request_duration_seconds"
#define M_OPEN "carbonshift_http_open_connections"
#define M_QUEUED "carbonshift_http_queued_decisions"
#define M_HEAD_CUTS "carbonshift_http_header_timeouts_total"
#define M_SKIPPED "carbonshift_http_skipped_decisions_total"

/* GnuTLS priorities: TLS 1.3 and 1.2 only, otherwise GnuTLS' defaults. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* Largest PEM file read for TLS material. */
/* Longest path kept for logs. */
#define MAX_LOG_PATH 256
/* During a graceful stop, how long open connections must stay quiet
 * before the server stops: a request already sent on a kept-alive
 * connection may take a while to be read on a busy or CPU-throttled node
 * (CFS quota periods are 100 ms), and it would be cut if the server
 * stopped first. */
#define DRAIN_QUIET_MS 500
/* After the graceful stop's deadline, how long the replies of decisions
 * then finished or refused get to be sent before the server stops. */
#define DRAIN_FLUSH_MS 1000
/* Bound on the /readyz detail the handler may append. */
#define MAX_READY_DETAIL (64u << 10)
/* A decision parsing a body that is still arriving is woken when this
 * much more has come (or all of it), not for every read. */
#define FEED_BATCH (256u << 10)
/* How often such a decision, waiting, checks whether the server is
 * cutting requests short (the graceful stop's deadline has passed). */
#define FEED_POLL_MS 100u

typedef enum route {
  R_OTHER,
  R_FILTER,
  R_PRIORITIZE,
  R_PREEMPT,
  R_HEALTHZ,
  R_READYZ,
  R_METRICS
} route;

static const char *const route_label[] = {
    "other", "filter", "prioritize", "preempt", "healthz", "readyz", "metrics"};

/* The extender verbs: POST routes whose body a decision thread reads. */
static bool is_verb(route r)
{
  return r == R_FILTER || r == R_PRIORITIZE || r == R_PREEMPT;
}

static cs_verb verb_of(route r)
{
  return r == R_FILTER    ? CS_VERB_FILTER
         : r == R_PREEMPT ? CS_VERB_PREEMPT
                          : CS_VERB_PRIORITIZE;
}

/* libmicrohttpd's first message while one daemon starts (a bind or TLS
 * set-up problem), kept for cs_server_new's error; a daemon's own, so
 * that the other's messages cannot take its place. */
typedef struct start_log {
  atomic_bool starting;
  char err[512];
} start_log;

struct cs_server {
  struct MHD_Daemon *daemon;
  struct MHD_Daemon *probe_daemon; /* NULL without a probe listener */
  int probe_fd;
  unsigned probe_port;
  cs_pool *deciders; /* runs h.handle, off the connection threads */
  cs_head_watch *heads;
  uint64_t header_timeout_ns;
  cs_server_handler h;
  cs_metrics *metrics;
  char *prefix; /* normalised: "" or "/a/b" */
  size_t max_body;
  size_t stream_min;    /* bodies this large are parsed as they arrive */
  unsigned max_streams; /* decisions waiting on bodies at once */
  atomic_uint streams;  /* such decisions now */
  atomic_bool cutting;  /* past the stop deadline: waits on bodies end */
  uint64_t request_timeout_ns;
  bool mtls;
  cs_tls_certs *certs; /* the serving pair, reloaded on renewal */
  cs_tls_trust *trust; /* the client CA (mTLS), reloaded on renewal */
  char *ca_pem;        /* the client CA at start: makes MHD ask for one */
  unsigned port;
  int listen_fd;
  uint64_t id_seed;
  atomic_uint_fast64_t id_seq;
  atomic_bool draining;
  atomic_long open_conns; /* the gauge moves by +-1 in the registry */
  long max_conns;
  atomic_bool at_limit;
  bool stopped;
  /* Serialises reading the decision queue's length with setting its gauge,
   * so that a stale reading never lands after a newer one. */
  pthread_mutex_t queued_mu;
  /* In-flight requests, for the graceful shutdown. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned inflight;
  uint64_t started;
  /* Each daemon's messages while it starts, reported by cs_server_new. */
  start_log main_log, probe_log;
  cs_head_watch *probe_heads; /* the probe listener's connections */
};

/* Per connection: the result of the client-certificate check, done once
 * per TLS session rather than once per request. */
typedef struct conn {
  int peer; /* 0 unchecked, 1 verified, -1 refused */
  char peer_err[160];
  cs_head_slot *slot;   /* in `watch` */
  cs_head_watch *watch; /* s->heads, or s->probe_heads */
} conn;

static conn *conn_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* Where an extender request is on its way through the decision pool. */
typedef enum stage {
  STAGE_NONE = 0,  /* not handed to the pool */
  STAGE_STREAMING, /* handed to the pool while its body is still arriving */
  STAGE_QUEUED,    /* connection suspended, decision queued or running */
  STAGE_DONE       /* `decided` holds the reply; connection resumed */
} stage;

typedef struct request {
  cs_pool_job job; /* first: the pool hands back &job */
  cs_server *srv;
  struct MHD_Connection *conn;
  _Atomic stage stage;
  cs_reply decided;
  uint64_t start_ns;
  route r;
  char method[16];
  char path[MAX_LOG_PATH + 1];
  char reqid[65];
  char remote[INET6_ADDRSTRLEN + 8];
  cs_buf body;
  int status;   /* 0 until a reply is chosen */
  size_t bytes; /* reply body bytes */
  char *err;    /* why the request failed, for the access log */
  bool replied; /* a response was queued */
  bool probe;   /* on the probe listener: not counted as in flight */
  /* Parsing while receiving (see "decisions" below). */
  size_t expected; /* the Content-Length; 0 when there was none */
  bool streaming;  /* the decision started before the body was in */
  pthread_mutex_t feed_mu;
  pthread_cond_t feed_cv;
  size_t feed_have; /* body bytes the decision may read */
  size_t feed_want; /* the decision wants waking once feed_have is this */
  bool feed_closed; /* no more bytes will come: the connection is gone */
  cs_jscan_feed feed;
  atomic_int meet; /* body in, decision done: the second resumes */
  atomic_int refs; /* on_completed's and the decision's */
} request;

/* ---- helpers ---------------------------------------------------------- */

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines
 * (deadline_in). */
static void cond_init_monotonic(pthread_cond_t *cv)
{
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* The CLOCK_MONOTONIC time `ms` from now, for timed waits. */
static struct timespec deadline_in(unsigned ms)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The servers with HTTPS in this process, by listening port. GnuTLS gives
 * the certificate callback nothing but the session; the local port of its
 * socket (libmicrohttpd hands GnuTLS the socket itself) names the
 * server. */
#define MAX_TLS_SERVERS 16
static pthread_mutex_t tls_servers_mu = PTHREAD_MUTEX_INITIALIZER;
typedef struct tls_server {
  unsigned port;
  cs_tls_certs *certs;
} tls_server;
static tls_server tls_servers[MAX_TLS_SERVERS];
static size_t ntls_servers;

static bool tls_register(unsigned port, cs_tls_certs *certs)
{
  pthread_mutex_lock(&tls_servers_mu);
  bool ok = ntls_servers < MAX_TLS_SERVERS;
  if (ok)
    tls_servers[ntls_servers++] = (tls_server){port, certs};
  pthread_mutex_unlock(&tls_servers_mu);
  return ok;
}

static void tls_unregister(cs_tls_certs *certs)
{
  pthread_mutex_lock(&tls_servers_mu);
  for (size_t i = 0; i < ntls_servers; i++)
    if (tls_servers[i].certs == certs) {
      tls_servers[i] = tls_servers[--ntls_servers];
      break;
    }
  pthread_mutex_unlock(&tls_servers_mu);
}

static unsigned session_port(gnutls_session_t ss)
{
  struct sockaddr_storage a;
  socklen_t al = sizeof(a);
  int fd = gnutls_transport_get_int(ss);
  if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0)
    return 0;
  return a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
         : a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port)
                                  : 0;
}

/* GnuTLS's certificate callback (MHD_OPTION_HTTPS_CERT_CALLBACK): the
 * server's current pair, reloaded when its files changed.
 * It also stops the session naming the client CA in its certificate
 * request: the name GnuTLS would send is the CA's at start, and a client
 * that picks its certificate by issuer name (Go's crypto/tls given
 * Config.Certificates) would present none once the CA file holds a
 * renewed CA under another name. client-go (kube-scheduler) presents its
 * certificate whatever the request names. The CA as it is now judges what
 * is presented (verify_peer). The callback runs while
 * the ClientHello is processed, before any certificate request is
 * written, in TLS 1.2 and 1.3 alike (test_server_mtls_follows_renewed_ca). */
static int serve_certificate(gnutls_session_t ss, const gnutls_datum_t *req_ca,
                             int nreqs, const gnutls_pk_algorithm_t *algos,
                             int nalgos, gnutls_pcert_st **pcert,
                             unsigned int *npcert, gnutls_privkey_t *key)
{
  (void)req_ca;
  (void)nreqs;
  (void)algos;
  (void)nalgos;
  cs_tls_certs *certs = NULL;
  unsigned port = session_port(ss);
  pthread_mutex_lock(&tls_servers_mu);
  for (size_t i = 0; i < ntls_servers && !certs; i++)
    if (tls_servers[i].port == port)
      certs = tls_servers[i].certs;
  pthread_mutex_unlock(&tls_servers_mu);
  if (!certs)
    return -1;
  gnutls_certificate_send_x509_rdn_sequence(ss, 1);
  cs_tls_certs_get(certs, pcert, npcert, key);
  return 0;
}

/* Parses "ADDR:PORT" (see server.h) into a socket address. */
static cs_err parse_listen(const char *addr, struct sockaddr_storage *ss,
                           socklen_t *sslen, bool *any6, char *err,
                           size_t errlen)
{
  const char *expect = "expected ADDR:PORT such as 127.0.0.1:8080, "
                       "[::1]:8443 or :8080";
  char host[INET6_ADDRSTRLEN + 1];
  const char *port_s;
  *any6 = false;
  if (!addr || !*addr) {
    set_err(err, errlen, "listen address is empty: %s", expect);
    return CS_EINVAL;
  }
  if (addr[0] == '[') {
    const char *close_br = strchr(addr, ']');
    if (!close_br || close_br[1] != ':' ||
        (size_t)(close_br - addr - 1) >= sizeof(host)) {
      set_err(err, errlen, "listen address \"%s\": %s", addr, expect);
      return CS_EINVAL;
    }
    memcpy(host, addr + 1, (size_t)(close_br - addr - 1));
    host[close_br - addr - 1] = '\0';
    port_s = close_br + 2;
  } else {
    const char *colon = strrchr(addr, ':');
    if (!colon || strchr(addr, ':') != colon ||
        (size_t)(colon - addr) >= sizeof(host)) {
      set_err(err, errlen,
              "listen address \"%s\": %s (IPv6 addresses go in brackets)", addr,
              expect);
      return CS_EINVAL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    port_s = colon + 1;
  }
  int64_t port;
  if (cs_parse_int64(port_s, &port, NULL) || port < 0 || port > 65535) {
    set_err(err, errlen,
            "listen address \"%s\": port \"%s\" is not a number in "
            "0..65535",
            addr, port_s);
    return CS_EINVAL;
  }
  memset(ss, 0, sizeof(*ss));
  if (strcmp(host, "localhost") == 0)
    snprintf(host, sizeof(host), "127.0.0.1");
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (!*host || strcmp(host, "::") == 0) {
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    v6->sin6_port = htons((uint16_t)port);
    *sslen = sizeof(*v6);
    *any6 = true;
  } else if (addr[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr)) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *sslen = sizeof(*v4);
  } else if (addr[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr)) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *sslen = sizeof(*v6);
  } else {
    set_err(err, errlen,
            "listen address \"%s\": \"%s\" is not a numeric IP address "
            "(or localhost); %s",
            addr, host, expect);
    return CS_EINVAL;
  }
  return CS_OK;
}

static cs_err open_listener(const char *addr, int *fd_out, unsigned *port,
                            bool *v6, char *err, size_t errlen)
{
  struct sockaddr_storage ss;
  socklen_t sslen;
  bool any6;
  cs_err rc = parse_listen(addr, &ss, &sslen, &any6, err, errlen);
  if (rc)
    return rc;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 && any6 && errno == EAFNOSUPPORT) {
    /* ":PORT" on a host without IPv6 (ipv6.disable=1): IPv4 alone. */
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in_port_t p = ((struct sockaddr_in6 *)&ss)->sin6_port;
    memset(&ss, 0, sizeof(ss));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = p;
    sslen = sizeof(*in);
    any6 = false;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  }
  *v6 = ss.ss_family == AF_INET6;
  if (fd < 0) {
    set_err(err, errlen, "cannot listen on %s: socket: %s", addr,
            strerror(errno));
    return CS_EIO;
  }
  int one = 1, v6only = any6 ? 0 : 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (*v6)
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    set_err(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
    close(fd);
    return CS_EIO;
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof(bound);
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
    set_err(err, errlen, "cannot listen on %s: getsockname: %s", addr,
            strerror(errno));
    close(fd);
    return CS_EIO;
  }
  *port = ntohs(bound.ss_family == AF_INET6
                    ? ((struct sockaddr_in6 *)&bound)->sin6_port
                    : ((struct sockaddr_in *)&bound)->sin_port);
  *fd_out = fd;
  return CS_OK;
}

/* "/a//b/" -> "/a/b"; "" and "/" -> "". */
static char *normalise_prefix(const char *p)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  for (const char *q = p ? p : ""; *q; q++) {
    if (*q == '/' && (b.len == 0 || b.data[b.len - 1] == '/'))
      continue;
    if (b.len == 0)
      cs_buf_putc(&b, '/');
    cs_buf_putc(&b, *q);
  }
  if (b.len && b.data[b.len - 1] == '/')
    b.data[--b.len] = '\0';
  return cs_buf_release(&b, NULL);
}

/* Matches the request path against the routes. The path is compared with
 * runs of '/' collapsed and one trailing '/' ignored, the way a scheduler
 * configured with urlPrefix ".../" or a verb "filter/" would send it. */
static route match_route(const cs_server *s, const char *url)
{
  char norm[MAX_LOG_PATH + 1];
  size_t n = 0;
  for (const char *q = url; *q; q++) {
    if (*q == '/' && n && norm[n - 1] == '/')
      continue;
    if (n == MAX_LOG_PATH)
      return R_OTHER;
    norm[n++] = *q;
  }
  if (n > 1 && norm[n - 1] == '/')
    n--;
  norm[n] = '\0';
  const char *rest = norm;
  bool prefixed = false;
  size_t pl = strlen(s->prefix);
  if (pl && strncmp(norm, s->prefix, pl) == 0 && norm[pl] == '/') {
    rest = norm + pl;
    prefixed = true;
  }
  if (strcmp(rest, "/healthz") == 0)
    return R_HEALTHZ;
  if (strcmp(rest, "/readyz") == 0)
    return R_READYZ;
  if (strcmp(rest, "/metrics") == 0)
    return R_METRICS;
  if (pl && !prefixed)
    return R_OTHER;
  if (strcmp(rest, "/filter") == 0)
    return R_FILTER;
  if (strcmp(rest, "/prioritize") == 0)
    return R_PRIORITIZE;
  if (strcmp(rest, "/preempt") == 0)
    return R_PREEMPT;
  return R_OTHER;
}

/* application/json, any case, optional parameters after ';'. */
static bool is_json(const char *ct)
{
  static const char want[] = "application/json";
  if (!ct)
    return false;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
    return false;
  ct += sizeof(want) - 1;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  return *ct == '\0' || *ct == ';';
}

/* A client's X-Request-Id is echoed only when it is short and plain, so it
 * can go into logs and headers as is. */
static bool sane_request_id(const char *id)
{
  size_t n = 0;
  if (!id)
    return false;
  for (; id[n]; n++) {
    char c = id[n];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
              c == ':';
    if (!ok || n >= 64)
      return false;
  }
  return n > 0;
}

static uint64_t splitmix64(uint64_t x)
{
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/* 32 hex digits: unique within the process (a counter), and across
 * processes with overwhelming probability (a random seed). */
static void new_request_id(cs_server *s, char out[65])
{
  uint64_t n = atomic_fetch_add(&s->id_seq, 1);
  uint64_t a = splitmix64(s->id_seed ^ n), b = splitmix64(a ^ n);
  snprintf(out, 65, "%016llx%016llx", (unsigned long long)a,
           (unsigned long long)b);
}

static void remote_addr(struct MHD_Connection *c, char *out, size_t n)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  out[0] = '\0';
  if (!ci || !ci->client_addr)
    return;
  const struct sockaddr *sa = ci->client_addr;
  char ip[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
    snprintf(out, n, "%s:%u", ip, ntohs(v4->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
    snprintf(out, n, "[%s]:%u", ip, ntohs(v6->sin6_port));
  }
}

/* ---- replies ---------------------------------------------------------- */

/* Queues `resp` (NULL: out of memory) with the common headers. */
static enum MHD_Result queue_response(cs_server *s, struct MHD_Connection *c,
                                      request *rq, int status,
                                      struct MHD_Response *resp, size_t len,
                                      const char *content_type,
                                      const char *allow)
{
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  MHD_add_response_header(resp, "X-Request-Id", rq->reqid);
  if (allow)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  if (atomic_load(&s->draining))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  rq->status = status;
  /* The access line's bytes are the body sent: none for HEAD, which MHD
   * answers with the headers of the GET alone. */
  rq->bytes = strcmp(rq->method, MHD_HTTP_METHOD_HEAD) == 0 ? 0 : len;
  rq->replied = r == MHD_YES;
  return r;
}

/* Queues a reply; `body` (malloc'd) is handed to MHD. */
static enum MHD_Result queue(cs_server *s, struct MHD_Connection *c,
                             request *rq, int status, char *body, size_t len,
                             const char *content_type, const char *allow)
{
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!resp)
    free(body);
  return queue_response(s, c, rq, status, resp, len, content_type, allow);
}

/* What a reply in pieces points into, freed with the response. */
typedef struct piece_owner {
  char *own;
  cs_buf request_body; /* freed as a cs_buf: its memory may serve the next */
} piece_owner;

static void free_piece_owner(void *cls)
{
  piece_owner *o = cls;
  free(o->own);
  cs_buf_free(&o->request_body);
  free(o);
}

/* Queues a reply given in pieces of its own body and of the request body
 * (cs_reply_piece), sent as they are, without joining them: a filter
 * reply echoes tens of megabytes of Nodes. The request body moves into
 * the response, which frees it once sent. */
static enum MHD_Result queue_pieces(cs_server *s, struct MHD_Connection *c,
                                    request *rq, cs_reply *reply)
{
  struct MHD_IoVec *iov =
      cs_malloc((reply->npieces ? reply->npieces : 1) * sizeof(*iov));
  size_t n = 0, len = 0;
  for (size_t i = 0; i < reply->npieces; i++) {
    const cs_reply_piece *p = &reply->pieces[i];
    if (!p->len)
      continue;
    iov[n].iov_base = p->echo ? p->echo : reply->body + p->off;
    iov[n++].iov_len = p->len;
    len += p->len;
  }
  piece_owner *o = cs_malloc(sizeof(*o));
  o->own = reply->body;
  o->request_body = rq->body; /* moved: the request's is left empty */
  cs_buf_init(&rq->body, 0);
  struct MHD_Response *resp =
      MHD_create_response_from_iovec(iov, (unsigned)n, free_piece_owner, o);
  free(iov);
  free(reply->pieces);
  if (!resp)
    free_piece_owner(o);
  return queue_response(s, c, rq, reply->status, resp, len, "application/json",
                        NULL);
}

static enum MHD_Result reply_error(cs_server *s, struct MHD_Connection *c,
                                   request *rq, int status, const char *allow,
                                   const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Replies {"Error": "..."} and remembers the text for the access log. */
static enum MHD_Result reply_error(cs_server *s, struct MHD_Connection *c,
                                   request *rq, int status, const char *allow,
                                   const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  free(rq->err);
  rq->err = cs_strdup(msg);
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '{');
  cs_json_str(&b, "Error", msg);
  cs_json_close(&b, '}');
  size_t len;
  char *body = cs_buf_release(&b, &len);
  return queue(s, c, rq, status, body, len, "application/json", allow);
}

/* ---- mTLS --------------------------------------------------------------- */

/* MHD (built on GnuTLS in Debian) only *requests* a client certificate when
 * given a trust list; it lets clients without one through. So the check is
 * ours: a chain to the configured CA, valid now, for TLS client auth. */
static bool verify_peer(cs_server *s, struct MHD_Connection *c, char *why,
                        size_t n)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (!ci || !ci->tls_session) {
    snprintf(why, n, "no TLS session");
    return false;
  }
  unsigned int count = 0;
  const gnutls_datum_t *certs =
      gnutls_certificate_get_peers(ci->tls_session, &count);
  if (!certs || count == 0) {
    snprintf(why, n, "no client certificate presented");
    return false;
  }
  return cs_tls_trust_verify(s->trust, certs, count, why, n);
}

/* ---- request life cycle ----------------------------------------------- */

static void request_begin(cs_server *s)
{
  pthread_mutex_lock(&s->mu);
  s->inflight++;
  s->started++;
  pthread_mutex_unlock(&s->mu);
}

static void request_end(cs_server *s)
{
  pthread_mutex_lock(&s->mu);
  s->inflight--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static const char *method_allow(route r)
{
  return is_verb(r) ? "POST" : "GET, HEAD";
}

static bool method_ok(route r, const char *method)
{
  if (is_verb(r))
    return strcmp(method, MHD_HTTP_METHOD_POST) == 0;
  return strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
         strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* 405 with the methods the route takes. */
static enum MHD_Result reply_bad_method(cs_server *s, struct MHD_Connection *c,
                                        request *rq)
{
  return reply_error(s, c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, method_allow(rq->r),
                     "method %s is not allowed on %s; use %s", rq->method,
                     rq->path, method_allow(rq->r));
}

/* First call for a request: headers are in, the body is not. Everything
 * that can be refused without the body is refused here, so a refused
 * request's body is never read. */
static enum MHD_Result begin(cs_server *s, struct MHD_Connection *c,
                             request *rq, const char *url)
{
  /* Probes are exempt from the client certificate: kubelet's HTTPS probes
   * cannot present one, and the answers reveal nothing sensitive. */
  bool probe =
      (rq->r == R_HEALTHZ || rq->r == R_READYZ) && method_ok(rq->r, rq->method);
  if (s->mtls && !probe) {
    conn *cn = conn_of(c);
    if (cn && cn->peer == 0)
      cn->peer = verify_peer(s, c, cn->peer_err, sizeof(cn->peer_err)) ? 1 : -1;
    if (!cn || cn->peer < 0)
      return reply_error(s, c, rq, MHD_HTTP_FORBIDDEN, NULL,
                         "a client certificate signed by the configured "
                         "client CA is required (%s)",
                         cn ? cn->peer_err : "no connection state");
  }
  if (rq->r == R_OTHER)
    return reply_error(s, c, rq, MHD_HTTP_NOT_FOUND, NULL,
                       "no route for %s%s; the extender answers POST "
                       "%s/filter, %s/prioritize and %s/preempt, GET "
                       "/healthz, /readyz and /metrics",
                       rq->path, strlen(url) > MAX_LOG_PATH ? "..." : "",
                       s->prefix, s->prefix, s->prefix);
  if (!method_ok(rq->r, rq->method))
    return reply_bad_method(s, c, rq);
  if (!is_verb(rq->r))
    return MHD_YES;
  const char *ct =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  if (!is_json(ct)) {
    char shown[80];
    snprintf(shown, sizeof(shown), "%s", ct ? ct : "");
    return reply_error(s, c, rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                       ct ? "Content-Type \"%s\" is not supported; send "
                            "application/json"
                          : "Content-Type is missing%s; send "
                            "application/json",
                       shown);
  }
  const char *cl =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
  if (cl) {
    /* MHD has already refused a malformed Content-Length. */
    unsigned long long n = strtoull(cl, NULL, 10);
    if (n > s->max_body)
      return reply_error(s, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                         "request body of %llu bytes exceeds the limit of "
                         "%zu bytes (" OPT_MAX_BODY ")",
                         n, s->max_body);
    cs_buf_reserve(&rq->body, (size_t)n);
    rq->expected = (size_t)n;
  }
  return MHD_YES;
}

/* ---- decisions ---------------------------------------------------------
 *
 * An extender request whose body is in is handed to the decision pool and
 * its connection suspended, so the connection threads go on reading other
 * bodies and answering probes while it is decided. The decision thread
 * stores the reply and resumes the connection; libmicrohttpd then calls
 * on_request again, which queues that reply. A suspended connection is
 * neither polled nor timed out, so the request outlives the decision.
 *
 * A large body (http.streamBodyBytes or more, with a Content-Length) is
 * handed over as soon as its first bytes are in, so that parsing overlaps
 * receiving instead of following it: the codec's scanner reads what has
 * arrived and waits on the request's feed for the rest, while the
 * connection thread goes on appending to the body buffer, which was
 * reserved whole and so never moves. Such a request waits for two events:
 * its body is complete (the connection thread then suspends the
 * connection) and its decision is done; whichever comes second resumes the
 * connection (`meet`). When the connection dies first, on_completed closes
 * the feed, so that the scanner fails at once, and whichever of the two
 * lets go of the request last frees it (`refs`). At most max_streams
 * decisions wait on bodies at once, so that decision threads remain for
 * the bodies that are complete. */

static void queued_gauge(cs_server *s)
{
  pthread_mutex_lock(&s->queued_mu);
  cs_metrics_set(s->metrics, M_QUEUED, NULL,
                 (double)cs_pool_queued(s->deciders));
  pthread_mutex_unlock(&s->queued_mu);
}

static void request_free(request *rq)
{
  if (rq->streaming) {
    pthread_cond_destroy(&rq->feed_cv);
    pthread_mutex_destroy(&rq->feed_mu);
  }
  cs_buf_free(&rq->body);
  free(rq->decided.body);
  free(rq->decided.pieces);
  free(rq->err);
  free(rq);
}

/* Lets go of a request; the last holder frees it. Only a streaming
 * request has two. */
static void request_release(request *rq)
{
  if (!rq->streaming || atomic_fetch_sub(&rq->refs, 1) == 1)
    request_free(rq);
}

/* The decision thread's side of the feed: see cs_jscan_feed. */
static const char *feed_wait(void *ctx, const char *end)
{
  request *rq = ctx;
  size_t have = (size_t)(end - rq->body.data);
  pthread_mutex_lock(&rq->feed_mu);
  rq->feed_want =
      rq->expected - have > FEED_BATCH ? have + FEED_BATCH : rq->expected;
  while (rq->feed_have <= have && rq->feed_have < rq->expected &&
         !rq->feed_closed && !atomic_load(&rq->srv->cutting)) {
    struct timespec t = deadline_in(FEED_POLL_MS);
    pthread_cond_timedwait(&rq->feed_cv, &rq->feed_mu, &t);
  }
  size_t now = rq->feed_have;
  pthread_mutex_unlock(&rq->feed_mu);
  return rq->body.data + (now > have ? now : have);
}

/* The connection thread's side: publishes what has been appended, or that
 * nothing more will come. */
static void feed_publish(request *rq, bool closed)
{
  pthread_mutex_lock(&rq->feed_mu);
  rq->feed_have = rq->body.len;
  rq->feed_closed = rq->feed_closed || closed;
  bool wake = rq->feed_closed || rq->feed_have >= rq->feed_want;
  pthread_mutex_unlock(&rq->feed_mu);
  if (wake)
    pthread_cond_signal(&rq->feed_cv);
}

/* Resumes the connection with the decided reply, unless the other of the
 * two events a streaming request waits for is still to come. */
static void meet_or_resume(request *rq)
{
  if (rq->streaming && atomic_fetch_add(&rq->meet, 1) == 0)
    return;
  atomic_store(&rq->stage, STAGE_DONE);
  MHD_resume_connection(rq->conn);
}

static void decision_done(request *rq)
{
  bool streaming = rq->streaming;
  if (streaming)
    atomic_fetch_sub(&rq->srv->streams, 1);
  meet_or_resume(rq);
  if (streaming) /* the connection's hold is let go in on_completed */
    request_release(rq);
}

/* The 503 of a request that is not decided, with `why` as its Error. */
static void answer_undecided(request *rq, const char *why)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '{');
  cs_json_str(&b, "Error", why);
  cs_json_close(&b, '}');
  rq->decided.status = MHD_HTTP_SERVICE_UNAVAILABLE;
  rq->decided.body = cs_buf_release(&b, &rq->decided.len);
}

/* Whether the client of a request whose body is in has closed its side
 * while the decision waited in the queue: kube-scheduler gives up on a call
 * after its httpTimeout and closes the connection. The suspended connection
 * is not read meanwhile, so the socket is asked directly. */
static bool client_gone(const request *rq)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci)
    return false;
  struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* A decision whose caller has gone is not made: nobody reads its answer,
 * and its Event or planned start would land on a pod the scheduler has
 * since placed without it. Under overload this also keeps the queue from
 * filling with calls already given up on. */
static void skip_decision(request *rq, cs_verb verb)
{
  const char *why = "the client closed the connection before its decision "
                    "started (past its timeout?): not decided";
  cs_buf *l = cs_log_begin(0, "Decision skipped");
  cs_json_str(l, "requestId", rq->reqid);
  cs_json_str(l, "verb", cs_verb_name(verb));
  cs_json_str(l, "err", why);
  cs_log_end(l);
  answer_undecided(rq, why);
  snprintf(rq->decided.error, sizeof(rq->decided.error), "%s", why);
  cs_metrics_add(rq->srv->metrics, M_SKIPPED, NULL, 1);
}

static void run_decision(cs_pool_job *job)
{
  request *rq = (request *)job;
  cs_server *s = rq->srv;
  queued_gauge(s);
  rq->decided.echo_ok = true; /* the body is kept until the reply is sent */
  cs_verb verb = verb_of(rq->r);
  if (!rq->streaming && client_gone(rq)) {
    skip_decision(rq, verb);
  } else if (rq->streaming) {
    pthread_mutex_lock(&rq->feed_mu);
    size_t have = rq->feed_have;
    pthread_mutex_unlock(&rq->feed_mu);
    s->h.handle(s->h.ctx, verb, rq->body.data, have, &rq->feed, rq->reqid,
                &rq->decided);
  } else {
    const char *body = rq->body.data ? rq->body.data : "";
    s->h.handle(s->h.ctx, verb, body, rq->body.len, NULL, rq->reqid,
                &rq->decided);
  }
  decision_done(rq);
}

/* The pool is stopping (graceful stop past its deadline, or the server
 * freed): a decision not started is answered 503. */
static void cancel_decision(cs_pool_job *job)
{
  request *rq = (request *)job;
  answer_undecided(rq, "shutting down: the decision was not started");
  decision_done(rq); /* resumes at once unless the body is still coming */
}

static enum MHD_Result start_decision(cs_server *s, struct MHD_Connection *c,
                                      request *rq)
{
  rq->srv = s;
  rq->conn = c;
  rq->job.run = run_decision;
  atomic_store(&rq->stage, STAGE_QUEUED);
  MHD_suspend_connection(c);
  if (!cs_pool_submit(s->deciders, &rq->job))
    cancel_decision(&rq->job); /* resumes at once */
  queued_gauge(s);
  return MHD_YES;
}

/* Whether the body now arriving should be parsed as it arrives: it is large
 * enough to gain, its whole size is known and reserved, and a stream slot
 * is free (taken here). */
static bool stream_wanted(cs_server *s, request *rq)
{
  if (!is_verb(rq->r) || !rq->expected || rq->expected < s->stream_min ||
      rq->body.len >= rq->expected || rq->body.alloc <= rq->expected ||
      cs_buf_error(&rq->body))
    return false;
  unsigned n = atomic_load(&s->streams);
  do {
    if (n >= s->max_streams)
      return false;
  } while (!atomic_compare_exchange_weak(&s->streams, &n, n + 1));
  return true;
}

/* Hands a request whose body has begun to arrive to the pool, with the
 * connection left running to receive the rest. */
static enum MHD_Result start_streaming(cs_server *s, struct MHD_Connection *c,
                                       request *rq)
{
  rq->srv = s;
  rq->conn = c;
  rq->job.run = run_decision;
  rq->streaming = true;
  pthread_mutex_init(&rq->feed_mu, NULL);
  cond_init_monotonic(&rq->feed_cv);
  rq->feed_have = rq->body.len;
  rq->feed = (cs_jscan_feed){feed_wait, rq};
  atomic_store(&rq->refs, 2);
  atomic_store(&rq->stage, STAGE_STREAMING);
  if (!cs_pool_submit(s->deciders, &rq->job))
    cancel_decision(&rq->job);
  queued_gauge(s);
  return MHD_YES;
}

/* The last byte of a streaming request's body is in: the connection waits,
 * suspended, for the decision, unless it is done already. */
static enum MHD_Result stream_complete(struct MHD_Connection *c, request *rq)
{
  atomic_store(&rq->stage, STAGE_QUEUED);
  MHD_suspend_connection(c);
  meet_or_resume(rq);
  return MHD_YES;
}

static enum MHD_Result reply_decision(cs_server *s, struct MHD_Connection *c,
                                      request *rq)
{
  cs_reply reply = rq->decided;
  rq->decided = (cs_reply){0};
  if (!reply.body || reply.status < 100 || reply.status > 599) {
    free(reply.body);
    free(reply.pieces);
    cs_log_error("Decision produced no reply", "internal error");
    return reply_error(s, c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                       "internal error: the decision produced no reply");
  }
  if (reply.status == MHD_HTTP_SERVICE_UNAVAILABLE && !rq->err)
    rq->err = cs_strdup("shutting down: the decision was not started");
  /* A refusal's reason goes in the access line too, as for the ones the
   * server makes itself (404, 405, 413, 415). */
  if (reply.status >= 400 && reply.error[0] && !rq->err)
    rq->err = cs_strdup(reply.error);
  if (reply.pieces)
    return queue_pieces(s, c, rq, &reply);
  return queue(s, c, rq, reply.status, reply.body, reply.len,
               "application/json", NULL);
}

static enum MHD_Result dispatch(cs_server *s, struct MHD_Connection *c,
                                request *rq)
{
  cs_buf b;
  switch (rq->r) {
  case R_FILTER:
  case R_PRIORITIZE:
  case R_PREEMPT:
    switch (atomic_load(&rq->stage)) {
    case STAGE_NONE:
      return start_decision(s, c, rq);
    case STAGE_STREAMING:
      return stream_complete(c, rq);
    case STAGE_QUEUED: /* not resumed by us: nothing to do yet */
      return MHD_YES;
    case STAGE_DONE:
      break;
    }
    return reply_decision(s, c, rq);
  case R_HEALTHZ:
    return queue(s, c, rq, MHD_HTTP_OK, cs_strdup("{\"status\":\"ok\"}"), 15,
                 "application/json", NULL);
  case R_READYZ: {
    if (atomic_load(&s->draining))
      return reply_error(s, c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                         "shutting down");
    cs_buf detail;
    cs_buf_init(&detail, MAX_READY_DETAIL);
    bool ready = s->h.ready ? s->h.ready(s->h.ctx, &detail) : true;
    cs_buf_init(&b, 0);
    cs_json_open(&b, NULL, '{');
    if (!ready)
      cs_json_str(&b, "Error", "not ready");
    cs_json_str(&b, "status", ready ? "ready" : "not ready");
    if (detail.len && !cs_buf_error(&detail))
      cs_json_raw(&b, "detail", detail.data, detail.len);
    cs_json_close(&b, '}');
    cs_buf_free(&detail);
    if (!ready) {
      free(rq->err);
      rq->err = cs_strdup("not ready");
    }
    size_t len;
    char *body = cs_buf_release(&b, &len);
    return queue(s, c, rq, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                 body, len, "application/json", NULL);
  }
  case R_METRICS: {
    cs_buf_init(&b, 0);
    cs_metrics_render(s->metrics, &b);
    size_t len;
    char *body = cs_buf_release(&b, &len);
    return queue(s, c, rq, MHD_HTTP_OK, body, len,
                 "text/plain; version=0.0.4; charset=utf-8", NULL);
  }
  default:
    return reply_error(s, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no route");
  }
}

static request *request_new(cs_server *s, struct MHD_Connection *c,
                            const char *url, const char *method, bool probe)
{
  request *rq = cs_calloc(1, sizeof(*rq));
  rq->probe = probe;
  rq->start_ns = cs_clock_mono_ns();
  snprintf(rq->method, sizeof(rq->method), "%s", method);
  snprintf(rq->path, sizeof(rq->path), "%s", url);
  cs_buf_init(&rq->body, s->max_body);
  rq->r = match_route(s, url);
  const char *id =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
  if (sane_request_id(id))
    snprintf(rq->reqid, sizeof(rq->reqid), "%s", id);
  else
    new_request_id(s, rq->reqid);
  remote_addr(c, rq->remote, sizeof(rq->remote));
  conn *cn = conn_of(c);
  if (cn && cn->slot)
    cs_head_watch_busy(cn->watch, cn->slot);
  /* Probes are not waited for by the graceful stop, and would keep it
   * from seeing the main listener's connections quiet. */
  if (!probe)
    request_begin(s);
  return rq;
}

/* Set on the thread running the access handler when it ends a request on
 * purpose by returning MHD_NO (a body over the cap or too slow, or one
 * not wanted): the access line says why, so libmicrohttpd's "Application
 * reported internal error, closing connection", which it logs right after,
 * on the same thread, is not. Its logger gets no connection to tell the
 * cases apart, hence a thread-local. */
static _Thread_local bool cut_on_purpose;

static enum MHD_Result cut_request(void)
{
  cut_on_purpose = true;
  return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
  cs_server *s = cls;
  request *rq = *req_cls;
  cut_on_purpose = false;
  if (!rq) {
    rq = request_new(s, c, url, method, false);
    *req_cls = rq;
    return begin(s, c, rq, url);
  }
  if (*upload_data_size) {
    if (rq->replied)
      return cut_request(); /* a refused request's body is not read */
    if (cs_clock_mono_ns() - rq->start_ns > s->request_timeout_ns) {
      /* A reply cannot be queued while the body is still arriving in this
       * libmicrohttpd; the connection is closed and the log and metric
       * say why. */
      rq->status = MHD_HTTP_REQUEST_TIMEOUT;
      free(rq->err);
      rq->err =
          cs_asprintf("request body not received within %llu ms "
                      "(" OPT_REQUEST_TIMEOUT "); connection closed",
                      (unsigned long long)(s->request_timeout_ns / 1000000));
      return cut_request();
    }
    if (*upload_data_size > s->max_body - rq->body.len) {
      rq->status = MHD_HTTP_CONTENT_TOO_LARGE;
      free(rq->err);
      rq->err = cs_asprintf("request body exceeds the limit of %zu bytes "
                            "(" OPT_MAX_BODY "); connection closed",
                            s->max_body);
      return cut_request();
    }
    cs_buf_append(&rq->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    if (rq->streaming)
      feed_publish(rq, false);
    else if (stream_wanted(s, rq))
      return start_streaming(s, c, rq);
    return MHD_YES;
  }
  if (rq->replied)
    return MHD_YES;
  return dispatch(s, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  cs_server *s = cls;
  request *rq = *req_cls;
  if (!rq)
    return;
  *req_cls = NULL;
  uint64_t ns = cs_clock_mono_ns() - rq->start_ns;
  char code[8];
  snprintf(code, sizeof(code), "%d", rq->status);
  const char *verb = route_label[rq->r];
  const char *lv[] = {verb, code};
  cs_metrics_add(s->metrics, M_REQUESTS, lv, 1);
  cs_metrics_observe(s->metrics, M_DURATION, lv, (double)ns / 1e9);

  bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
  if (!ok && !rq->err) {
    static const char *const why[] = {
        "",
        "connection error",
        "connection timed out (http.connectionTimeout)",
        "server shutting down",
        "connection read error",
        "client closed the connection"};
    rq->err = cs_strdup((unsigned)toe < sizeof(why) / sizeof(why[0])
                            ? why[toe]
                            : "request terminated");
  }
  int v = (rq->status >= 400 || rq->status == 0 || !ok) ? 0 : 1;
  cs_buf *line = cs_log_begin(v, "HTTP request");
  cs_json_str(line, "method", rq->method);
  cs_json_str(line, "path", rq->path);
  cs_json_int(line, "status", rq->status);
  cs_json_int(line, "bytes", (int64_t)rq->bytes);
  cs_json_num(line, "durationMs", (double)ns / 1e6, 3);
  cs_json_str(line, "requestId", rq->reqid);
  cs_json_str(line, "remote", rq->remote);
  if (rq->streaming)
    cs_json_bool(line, "streamed", true);
  if (rq->err)
    cs_json_str(line, "err", rq->err);
  cs_log_end(line);

  conn *cn = conn_of(c);
  if (cn && cn->slot)
    cs_head_watch_idle(cn->watch, cn->slot);
  if (rq->streaming)
    feed_publish(rq, true); /* a decision still reading the body stops */
  bool probe = rq->probe;
  request_release(rq);
  if (!probe)
    request_end(s);
}

/* The probe listener's access handler: GET and HEAD of /healthz and
 * /readyz, answered on its own thread as on the main listener; anything
 * else is refused from the head, and a body is never read. */
static enum MHD_Result on_probe_request(void *cls, struct MHD_Connection *c,
                                        const char *url, const char *method,
                                        const char *version,
                                        const char *upload_data,
                                        size_t *upload_data_size,
                                        void **req_cls)
{
  cs_server *s = cls;
  request *rq = *req_cls;
  cut_on_purpose = false;
  if (!rq) {
    rq = request_new(s, c, url, method, true);
    *req_cls = rq;
    if (rq->r != R_HEALTHZ && rq->r != R_READYZ) {
      rq->r = R_OTHER;
      return reply_error(s, c, rq, MHD_HTTP_NOT_FOUND, NULL,
                         "no route for %s%s on the probe listener "
                         "(http.probeListen), which answers GET /healthz "
                         "and /readyz only",
                         rq->path, strlen(url) > MAX_LOG_PATH ? "..." : "");
    }
    if (!method_ok(rq->r, rq->method))
      return reply_bad_method(s, c, rq);
    return MHD_YES;
  }
  if (*upload_data_size) {
    free(rq->err);
    rq->err = cs_strdup("a probe request has no body; connection closed");
    return cut_request();
  }
  if (rq->replied)
    return MHD_YES;
  return dispatch(s, c, rq);
}

/* A connection opened or closed: its state, under the head watch `w`. */
static void conn_track(struct MHD_Connection *c, void **sock_cls,
                       enum MHD_ConnectionNotificationCode toe,
                       cs_head_watch *w)
{
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    conn *cn = cs_calloc(1, sizeof(conn));
    *sock_cls = cn;
    cn->watch = w;
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (fd) {
      char remote[INET6_ADDRSTRLEN + 8];
      remote_addr(c, remote, sizeof(remote));
      cn->slot = cs_head_watch_add(w, fd->connect_fd, remote);
    }
    return;
  }
  conn *cn = *sock_cls;
  if (cn)
    cs_head_watch_remove(cn->watch, cn->slot); /* before the socket closes */
  free(cn);
  *sock_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sock_cls,
                          enum MHD_ConnectionNotificationCode toe)
{
  cs_server *s = cls;
  conn_track(c, sock_cls, toe, s->heads);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    /* The gauge is moved, not set to n: two threads setting their own n
     * could land out of order and leave it off by one until the next
     * connection event. */
    long n = atomic_fetch_add(&s->open_conns, 1) + 1;
    cs_metrics_add(s->metrics, M_OPEN, NULL, 1);
    /* At the limit libmicrohttpd stops accepting: new clients wait in the
     * kernel's backlog until a connection closes. Say so once per
     * episode. */
    if (n >= s->max_conns && !atomic_exchange(&s->at_limit, true)) {
      cs_buf *line = cs_log_begin(0, "HTTP connection limit reached");
      cs_json_int(line, "openConnections", n);
      cs_json_str(line, "err",
                  "new connections wait until one closes "
                  "(http.maxConnections)");
      cs_log_end(line);
    }
    return;
  }
  long n = atomic_fetch_sub(&s->open_conns, 1) - 1;
  cs_metrics_add(s->metrics, M_OPEN, NULL, -1);
  if (n < s->max_conns)
    atomic_store(&s->at_limit, false);
}

/* The probe listener's connections: under their own head watch, and not
 * counted against http.maxConnections. */
static void on_probe_connection(void *cls, struct MHD_Connection *c,
                                void **sock_cls,
                                enum MHD_ConnectionNotificationCode toe)
{
  cs_server *s = cls;
  conn_track(c, sock_cls, toe, s->probe_heads);
}

/* A head watch shut a connection down: say so, as no request exists to
 * log. */
static void log_head_cut(const char *remote, uint64_t waited_ns,
                         const char *err)
{
  cs_buf *line = cs_log_begin(0, "HTTP request head too slow");
  cs_json_str(line, "remote", remote);
  cs_json_num(line, "waitedMs", (double)waited_ns / 1e6, 0);
  cs_json_str(line, "err", err);
  cs_log_end(line);
}

static void on_probe_head_cut(void *ctx, const char *remote, uint64_t waited_ns)
{
  (void)ctx;
  char err[160];
  snprintf(err, sizeof(err),
           "no complete request head within %u s of the connection becoming "
           "idle on the probe listener (http.probeListen); connection closed",
           CS_SERVER_PROBE_IDLE_TIMEOUT_S);
  log_head_cut(remote, waited_ns, err);
}

static void on_head_cut(void *ctx, const char *remote, uint64_t waited_ns)
{
  cs_server *s = ctx;
  cs_metrics_add(s->metrics, M_HEAD_CUTS, NULL, 1);
  char err[160];
  snprintf(err, sizeof(err),
           "no complete request head within %llu ms of the connection "
           "becoming idle (" OPT_HEADER_TIMEOUT "); connection closed",
           (unsigned long long)(s->header_timeout_ns / 1000000));
  log_head_cut(remote, waited_ns, err);
}

/* MHD's own messages: bind and TLS set-up problems while starting (kept
 * for cs_server_new's error), refused connections, TLS handshake failures
 * and heads over the limit afterwards; not the one for a request we cut
 * (cut_on_purpose). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  start_log *start = cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
    msg[--n] = '\0';
  static const char app_error[] = "Application reported internal error";
  if (cut_on_purpose && strncmp(msg, app_error, sizeof(app_error) - 1) == 0) {
    cut_on_purpose = false;
    return;
  }
  if (atomic_load(&start->starting) && !start->err[0])
    snprintf(start->err, sizeof(start->err), "%s", msg);
  cs_buf *line = cs_log_begin(0, "HTTP server message");
  cs_json_str(line, "detail", msg);
  cs_log_end(line);
}

/* ---- set-up ------------------------------------------------------------- */

static cs_err declare_metrics(cs_metrics *m)
{
  static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                   0.005,  0.01,    0.025,  0.05,  0.1,
                                   0.25,   0.5,     1,      2.5,   5};
  cs_err rc = cs_metrics_declare(
      m, M_REQUESTS, CS_METRIC_COUNTER,
      "HTTP requests by route (verb: filter, prioritize, preempt, healthz, "
      "readyz, "
      "metrics, other) and status code (0: connection closed before a "
      "reply).",
      "verb,code", NULL, 0);
  if (!rc)
    rc = cs_metrics_declare(
        m, M_DURATION, CS_METRIC_HISTOGRAM,
        "Time from a request's headers to its reply being sent, by route "
        "and status code.",
        "verb,code", buckets, sizeof(buckets) / sizeof(buckets[0]));
  if (!rc)
    rc = cs_metrics_declare(m, M_OPEN, CS_METRIC_GAUGE,
                            "Open HTTP connections (http.maxConnections is "
                            "the limit).",
                            "", NULL, 0);
  if (!rc)
    rc = cs_metrics_declare(m, M_HEAD_CUTS, CS_METRIC_COUNTER,
                            "Connections closed because a request head "
                            "was not complete in time (http.headerTimeout).",
                            "", NULL, 0);
  if (!rc)
    rc = cs_metrics_declare(m, M_SKIPPED, CS_METRIC_COUNTER,
                            "Extender requests not decided because their "
                            "client had closed the connection while they "
                            "waited for a decision thread.",
                            "", NULL, 0);
  if (!rc)
    rc = cs_metrics_declare(m, M_QUEUED, CS_METRIC_GAUGE,
                            "Extender requests received and waiting for a "
                            "decision thread (http.decisionThreads).",
                            "", NULL, 0);
  return rc;
}

/* The CPUs this process may run on: its affinity mask (a container's
 * cpuset, taskset), not every CPU of the machine. A CPU quota (a pod's
 * CPU limit) is not a mask: set http.threads and http.decisionThreads. */
static unsigned cpu_count(void)
{
  cpu_set_t set;
  long n = sched_getaffinity(0, sizeof(set), &set) == 0
               ? CPU_COUNT(&set)
               : sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

/* A socket's identity, to tell it from a later descriptor of the same
 * number. */
typedef struct sock_id {
  bool ok;
  dev_t dev;
  ino_t ino;
} sock_id;

static sock_id sock_id_of(int fd)
{
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0)
    return (sock_id){0};
  return (sock_id){true, st.st_dev, st.st_ino};
}

/* Closes a listening socket handed to a daemon that failed to start.
 * libmicrohttpd 0.9.75 closes it itself on some of those failures (TLS
 * set-up, thread creation) and not on others (options refused); by then
 * another thread may have been given the same number, which only a
 * socket of the same identity is not. */
static void close_if_same(int fd, sock_id id)
{
  sock_id now = sock_id_of(fd);
  if (id.ok && now.ok && now.dev == id.dev && now.ino == id.ino)
    close(fd);
}

/* The probe listener: one thread polling its own few connections, so
 * that neither the main listener's connection limit nor its busy threads
 * keep a kubelet probe waiting. Plain HTTP: kubelet probes carry no
 * client certificate, and the answers reveal nothing sensitive. */
static cs_err start_probe_listener(cs_server *s, const cs_server_opts *o,
                                   size_t max_header, char *err, size_t errlen)
{
  bool v6 = false;
  char why[256];
  cs_err rc = open_listener(o->probe_listen, &s->probe_fd, &s->probe_port, &v6,
                            why, sizeof(why));
  if (rc) {
    set_err(err, errlen, "http.probeListen: %s", why);
    return rc;
  }
  /* A slow head holds a probe connection no longer than an idle one. */
  if (cs_head_watch_new((uint64_t)CS_SERVER_PROBE_IDLE_TIMEOUT_S * 1000000000u,
                        on_probe_head_cut, s, &s->probe_heads)) {
    set_err(err, errlen, "http.probeListen: cannot start its head watch");
    return CS_EIO;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  sock_id id = sock_id_of(s->probe_fd);
  atomic_store(&s->probe_log.starting, true);
  s->probe_daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_probe_request, s, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, &s->probe_log, MHD_OPTION_LISTEN_SOCKET, s->probe_fd,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_NOTIFY_CONNECTION, on_probe_connection, s,
      MHD_OPTION_CONNECTION_TIMEOUT, CS_SERVER_PROBE_IDLE_TIMEOUT_S,
      MHD_OPTION_CONNECTION_LIMIT, CS_SERVER_PROBE_MAX_CONNECTIONS,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, max_header, MHD_OPTION_END);
  atomic_store(&s->probe_log.starting, false);
  if (!s->probe_daemon) {
    close_if_same(s->probe_fd, id);
    s->probe_fd = -1;
    set_err(err, errlen,
            "http.probeListen: cannot start the probe listener on %s: %s",
            o->probe_listen,
            s->probe_log.err[0] ? s->probe_log.err
                                : "libmicrohttpd refused the options");
    return CS_EIO;
  }
  return CS_OK;
}

/* Stops the probe listener: last, so that /readyz answers 503 on it for
 * the whole graceful stop. */
static void stop_probe_listener(cs_server *s)
{
  if (s->probe_daemon) {
    MHD_stop_daemon(s->probe_daemon); /* closes the listening socket too */
    s->probe_daemon = NULL;
  } else if (s->probe_fd >= 0) {
    close(s->probe_fd);
  }
  s->probe_fd = -1;
}

/* The checks of options that need no file or socket. */
static cs_err check_opts(const cs_server_opts *o, char *err, size_t errlen)
{
  if (!o->tls_cert_file != !o->tls_key_file) {
    set_err(err, errlen,
            "TLS needs both a certificate file and a key file "
            "(only one was given)");
    return CS_EINVAL;
  }
  if (o->tls_client_ca_file && !o->tls_cert_file) {
    set_err(err, errlen,
            "a TLS client CA (mTLS) needs HTTPS: give a "
            "certificate and key too");
    return CS_EINVAL;
  }
  size_t max_header =
      o->max_header_bytes ? o->max_header_bytes : CS_SERVER_DEFAULT_MAX_HEADER;
  if (max_header < 4096 || max_header > (64u << 20)) {
    set_err(err, errlen,
            "http.maxHeaderBytes %zu is out of range 4096..67108864",
            max_header);
    return CS_EINVAL;
  }
  return CS_OK;
}

/* Loads the HTTPS certificate and key, and with a client CA (mTLS) its
 * trust and PEM text, which cs_server_new and cs_server_check both need:
 * the check must fail on exactly what starting would. The outputs are the
 * caller's, set as far as loading got, also on failure. */
static cs_err load_tls(const cs_server_opts *o, cs_tls_certs **certs,
                       cs_tls_trust **trust, char **ca_pem, char *err,
                       size_t errlen)
{
  uint64_t reload_ns = (uint64_t)o->tls_reload_check_ms * 1000000u;
  cs_err rc = cs_tls_certs_new(o->tls_cert_file, o->tls_key_file, reload_ns,
                               certs, err, errlen);
  if (!rc && o->tls_client_ca_file)
    rc = cs_tls_trust_new(o->tls_client_ca_file, reload_ns, trust, err, errlen);
  if (!rc && *trust)
    rc = cs_tls_read_pem("TLS client CA", o->tls_client_ca_file, ca_pem, err,
                         errlen);
  return rc;
}

cs_err cs_server_check(const cs_server_opts *o, char *err, size_t errlen)
{
  if (!o) {
    set_err(err, errlen, "server options are required");
    return CS_EINVAL;
  }
  cs_err rc = check_opts(o, err, errlen);
  struct sockaddr_storage ss;
  socklen_t sslen;
  bool any6;
  if (!rc)
    rc = parse_listen(o->listen, &ss, &sslen, &any6, err, errlen);
  if (!rc && o->probe_listen && *o->probe_listen)
    rc = parse_listen(o->probe_listen, &ss, &sslen, &any6, err, errlen);
  if (!rc && o->tls_cert_file) {
    cs_tls_certs *certs = NULL;
    cs_tls_trust *trust = NULL;
    char *ca_pem = NULL;
    rc = load_tls(o, &certs, &trust, &ca_pem, err, errlen);
    free(ca_pem);
    cs_tls_trust_free(trust);
    cs_tls_certs_free(certs);
  }
  return rc;
}

cs_err cs_server_new(const cs_server_opts *o, const cs_server_handler *h,
                     cs_metrics *metrics, cs_server **out, char *err,
                     size_t errlen)
{
  cs_err rc = CS_OK;
  cs_server *s = NULL;
  *out = NULL;
  if (!o || !h || !h->handle) {
    set_err(err, errlen, "server options and a request handler are required");
    return CS_EINVAL;
  }
  rc = check_opts(o, err, errlen);
  if (rc)
    return rc;
  size_t max_header =
      o->max_header_bytes ? o->max_header_bytes : CS_SERVER_DEFAULT_MAX_HEADER;
  s = cs_calloc(1, sizeof(*s));
  s->listen_fd = -1;
  s->probe_fd = -1;
  s->h = *h;
  s->metrics = metrics;
  s->prefix = normalise_prefix(o->path_prefix);
  s->max_body =
      o->max_body_bytes ? o->max_body_bytes : CS_SERVER_DEFAULT_MAX_BODY;
  s->request_timeout_ns =
      (uint64_t)(o->request_timeout_ms ? o->request_timeout_ms
                                       : CS_SERVER_DEFAULT_REQUEST_TIMEOUT_MS) *
      1000000u;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->queued_mu, NULL);
  cond_init_monotonic(&s->cv);
  if (getrandom(&s->id_seed, sizeof(s->id_seed), 0) != sizeof(s->id_seed))
    s->id_seed = cs_clock_mono_ns() ^ ((uint64_t)getpid() << 32);

  if (o->tls_cert_file) {
    rc = load_tls(o, &s->certs, &s->trust, &s->ca_pem, err, errlen);
    if (rc)
      goto out;
    s->mtls = s->trust != NULL;
  }
  rc = declare_metrics(metrics);
  if (rc) {
    set_err(err, errlen, "HTTP metric families clash with existing ones");
    goto out;
  }
  bool v6 = false;
  rc = open_listener(o->listen, &s->listen_fd, &s->port, &v6, err, errlen);
  if (rc)
    goto out;
  if (s->certs && !tls_register(s->port, s->certs)) {
    set_err(err, errlen, "over %d HTTPS servers in one process",
            MAX_TLS_SERVERS);
    rc = CS_ETOOBIG;
    goto out;
  }

  unsigned threads = o->threads ? o->threads : cpu_count();
  unsigned deciders = o->decision_threads ? o->decision_threads : cpu_count();
  s->stream_min = o->stream_body_bytes ? o->stream_body_bytes
                                       : CS_SERVER_DEFAULT_STREAM_BODY;
  s->max_streams = deciders > 1 ? deciders - 1 : 1;
  s->header_timeout_ns =
      (uint64_t)(o->header_timeout_ms ? o->header_timeout_ms
                                      : CS_SERVER_DEFAULT_HEADER_TIMEOUT_MS) *
      1000000u;
  if (cs_head_watch_new(s->header_timeout_ns, on_head_cut, s, &s->heads)) {
    set_err(err, errlen, "cannot start the request head watch");
    rc = CS_EIO;
    goto out;
  }
  if (cs_pool_new(deciders, "cs-decide", &s->deciders)) {
    set_err(err, errlen, "cannot start %u decision threads", deciders);
    rc = CS_EIO;
    goto out;
  }
  unsigned max_conns = o->max_connections ? o->max_connections
                                          : CS_SERVER_DEFAULT_MAX_CONNECTIONS;
  s->max_conns = max_conns;
  struct MHD_OptionItem opts[16];
  size_t n = 0;
#define OPT(o_, v_, p_)                                                        \
  opts[n++] = (struct MHD_OptionItem){(o_), (intptr_t)(v_), (void *)(p_)}
  OPT(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
      &s->main_log); /* first, as MHD asks */
  OPT(MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL);
  OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, s);
  OPT(MHD_OPTION_NOTIFY_CONNECTION, on_connection, s);
  OPT(MHD_OPTION_CONNECTION_TIMEOUT,
      o->connection_timeout_s ? o->connection_timeout_s
                              : CS_SERVER_DEFAULT_CONN_TIMEOUT_S,
      NULL);
  OPT(MHD_OPTION_CONNECTION_LIMIT, max_conns, NULL);
  OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, max_header, NULL);
  if (threads > 1)
    OPT(MHD_OPTION_THREAD_POOL_SIZE, threads, NULL);
  if (s->certs) {
    OPT(MHD_OPTION_HTTPS_CERT_CALLBACK, 0, serve_certificate);
    OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, TLS_PRIORITIES);
  }
  /* With a trust, libmicrohttpd asks each client for a certificate. The
   * CA given here is the one at start and verifies nothing: verify_peer
   * checks against the file as it is now (s->trust). */
  if (s->ca_pem)
    OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca_pem);
  OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
  /* poll(), not epoll: libmicrohttpd 0.9.75's epoll loop (Debian 12) can
   * leave kept-alive connections unserved until their idle timeout when a
   * hundred or more of a worker's connections become ready together (seen
   * with 128 and 512; see the thousand-connection test in
   * tests/unit/check_server.c). Each worker polls only its share of
   * http.maxConnections. */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (s->certs)
    flags |= MHD_USE_TLS;
  if (v6)
    flags |= MHD_USE_IPv6;
  sock_id id = sock_id_of(s->listen_fd);
  atomic_store(&s->main_log.starting, true);
  s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                               MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  atomic_store(&s->main_log.starting, false);
  if (!s->daemon) {
    close_if_same(s->listen_fd, id);
    s->listen_fd = -1;
    set_err(err, errlen, "cannot start the HTTP server on %s: %s", o->listen,
            s->main_log.err[0] ? s->main_log.err
                               : "libmicrohttpd refused the "
                                 "options");
    rc = CS_EIO;
    goto out;
  }
  if (o->probe_listen && *o->probe_listen) {
    rc = start_probe_listener(s, o, max_header, err, errlen);
    if (rc)
      goto out;
  }
  cs_buf *line = cs_log_begin(0, "HTTP server listening");
  cs_json_str(line, "listen", o->listen);
  cs_json_int(line, "port", s->port);
  cs_json_str(line, "pathPrefix", s->prefix);
  cs_json_bool(line, "tls", s->certs != NULL);
  cs_json_bool(line, "mtls", s->mtls);
  cs_json_int(line, "threads", threads);
  cs_json_int(line, "decisionThreads", deciders);
  if (s->stream_min != SIZE_MAX)
    cs_json_int(line, "streamBodyBytes", (int64_t)s->stream_min);
  if (s->probe_daemon) {
    cs_json_str(line, "probeListen", o->probe_listen);
    cs_json_int(line, "probePort", s->probe_port);
  }
  cs_log_end(line);
out:
  if (rc) {
    cs_server_free(s);
    s = NULL;
  }
  *out = s;
  return rc;
}

unsigned cs_server_port(const cs_server *s)
{
  return s ? s->port : 0;
}

unsigned cs_server_probe_port(const cs_server *s)
{
  return s && s->probe_daemon ? s->probe_port : 0;
}

/* Waits until no request is in flight and, while connections are still
 * open, none started during DRAIN_QUIET_MS (a request on a kept-alive
 * connection may be on its way), or until the deadline. Returns the
 * requests still in flight. */
/* Waits, with s->mu held, until no request is in flight or the deadline. */
static void wait_idle(cs_server *s, const struct timespec *deadline)
{
  int w = 0;
  while (s->inflight && w != ETIMEDOUT)
    w = pthread_cond_timedwait(&s->cv, &s->mu, deadline);
}

static unsigned drain(cs_server *s, unsigned timeout_ms)
{
  struct timespec deadline = deadline_in(timeout_ms);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    wait_idle(s, &deadline);
    /* With the listener shut, nothing new can arrive once no connection
     * is open. */
    if (s->inflight || atomic_load(&s->open_conns) == 0)
      break;
    uint64_t started = s->started;
    struct timespec grace;
    clock_gettime(CLOCK_MONOTONIC, &grace);
    grace.tv_nsec += DRAIN_QUIET_MS * 1000000L;
    while (grace.tv_nsec >= 1000000000L) {
      grace.tv_sec++;
      grace.tv_nsec -= 1000000000L;
    }
    if (grace.tv_sec > deadline.tv_sec ||
        (grace.tv_sec == deadline.tv_sec && grace.tv_nsec > deadline.tv_nsec))
      grace = deadline;
    pthread_mutex_unlock(&s->mu);
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &grace, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->started == started && !s->inflight)
      break;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > deadline.tv_sec ||
        (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
      break;
  }
  unsigned left = s->inflight;
  pthread_mutex_unlock(&s->mu);
  return left;
}

cs_err cs_server_shutdown(cs_server *s, unsigned timeout_ms)
{
  if (!s || !s->daemon || s->stopped)
    return CS_OK;
  uint64_t t0 = cs_clock_mono_ns();
  /* Quiescing only stops libmicrohttpd accepting; the kernel would still
   * complete new connections into the backlog, where they wait unserved
   * and are reset when the socket is closed. Shutting the socket down
   * stops it listening, so they are refused at once, and it is done
   * before replies say "Connection: close", so a client reconnecting
   * after one is refused too. The descriptor itself stays open until the
   * daemon's threads are gone, as libmicrohttpd requires. */
  MHD_socket fd = MHD_quiesce_daemon(s->daemon);
  if (fd != MHD_INVALID_SOCKET)
    (void)shutdown(fd, SHUT_RD);
  atomic_store(&s->draining, true);
  unsigned left = drain(s, timeout_ms);
  /* libmicrohttpd aborts when stopped with a connection suspended, so
   * every decision must have resumed its connection first: those still
   * queued are answered 503 and one running is waited for. Their replies
   * get DRAIN_FLUSH_MS to go out. A decision still waiting for the rest
   * of its body stops waiting. */
  atomic_store(&s->cutting, true);
  cs_pool_stop(s->deciders, cancel_decision);
  unsigned cut = left;
  if (left) {
    struct timespec flush = deadline_in(DRAIN_FLUSH_MS);
    pthread_mutex_lock(&s->mu);
    wait_idle(s, &flush);
    cut = s->inflight;
    pthread_mutex_unlock(&s->mu);
  }
  MHD_stop_daemon(s->daemon);
  s->daemon = NULL;
  stop_probe_listener(s);
  s->stopped = true;
  /* After quiescing, the listening socket is ours to close, and only once
   * the daemon's threads are gone. */
  if (fd != MHD_INVALID_SOCKET)
    close(fd);
  s->listen_fd = -1;
  cs_buf *line = cs_log_begin(0, left ? "HTTP server stopped with requests "
                                        "in flight"
                                      : "HTTP server stopped");
  cs_json_num(line, "durationMs", (double)(cs_clock_mono_ns() - t0) / 1e6, 1);
  cs_json_int(line, "inFlightAtDeadline", left);
  cs_json_int(line, "cutRequests", cut);
  if (left)
    cs_json_str(line, "err", "shutdown timeout reached");
  cs_log_end(line);
  return left ? CS_ETIMEDOUT : CS_OK;
}

void cs_server_free(cs_server *s)
{
  if (!s)
    return;
  atomic_store(&s->cutting, true);
  if (s->deciders)
    cs_pool_stop(s->deciders, cancel_decision); /* before the daemon stops */
  if (s->daemon)
    MHD_stop_daemon(s->daemon); /* closes the listening socket too */
  else if (s->listen_fd >= 0)
    close(s->listen_fd);
  stop_probe_listener(s);
  cs_pool_free(s->deciders);
  cs_head_watch_free(s->heads); /* every connection is closed by now */
  cs_head_watch_free(s->probe_heads);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->queued_mu);
  free(s->prefix);
  if (s->certs) {
    tls_unregister(s->certs);
    cs_tls_certs_free(s->certs);
  }
  cs_tls_trust_free(s->trust);
  free(s->ca_pem);
  free(s);
}
