/* Tests for scheduler/server.c: a real server on 127.0.0.1, an ephemeral
 * port, a test handler in place of the decider, and libcurl calling it the
 * way kube-scheduler does (POST, Content-Type: application/json, 5 s
 * timeout, keep-alive). Raw sockets where curl would be too polite
 * (declared lengths, chunked bodies, slow clients). */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/hash.h"
#include "carbon/util/log.h"
#include "scheduler/server.h"
#include "scheduler/tls_certs.h"
#include "tests/unit/prom_testutil.h"
#include "tests/unit/testutil.h"
#include "tests/unit/tls_testutil.h"

/* ---- the test handler ------------------------------------------------- */

typedef struct th {
  atomic_int calls;
  atomic_bool ready;
  atomic_bool sleeping; /* a "sleep" request is inside the handler */
  atomic_int sleep_ms;
  pthread_mutex_t mu;
  char last_id[80];
  size_t last_len;
  atomic_int fed;      /* calls that got a feed: the body was still arriving */
  atomic_int waits;    /* feed waits that brought more bytes */
  atomic_int returned; /* calls that have finished */
} th;

static th H;

#define ECHO_CHUNK 997

/* A reply in pieces (cs_reply_piece): "[", the bytes after "echo" in
 * chunks of ECHO_CHUNK taken from the end backwards, "]". */
static void echo_in_pieces(const char *p, size_t n, cs_reply *out)
{
  size_t nchunks = (n + ECHO_CHUNK - 1) / ECHO_CHUNK;
  out->status = 200;
  out->body = cs_strdup("[]");
  out->len = 2;
  out->pieces = cs_calloc(nchunks + 2, sizeof(*out->pieces));
  out->pieces[out->npieces++] = (cs_reply_piece){NULL, 0, 1};
  for (size_t k = nchunks; k-- > 0;) {
    size_t at = k * ECHO_CHUNK, len = n - at < ECHO_CHUNK ? n - at : ECHO_CHUNK;
    out->pieces[out->npieces++] = (cs_reply_piece){p + at, 0, len};
  }
  out->pieces[out->npieces++] = (cs_reply_piece){NULL, 1, 1};
}

/* Replies with what it saw, so tests can check the body arrived whole:
 * {"Verb":..., "Len":n, "Sum":byte sum, "RequestId":...}. A body starting
 * with "sleep" holds the call for H.sleep_ms. A body still arriving is read
 * to its end through the feed first, as the codec's scanner would. */
static void th_handle(void *ctx, cs_verb verb, const char *body, size_t len,
                      const cs_jscan_feed *feed, const char *rid, cs_reply *out)
{
  th *t = ctx;
  atomic_fetch_add(&t->calls, 1);
  /* "quit...", arriving: done before the body is, as the codec is on a
   * syntax error near its start. */
  bool quit = feed && len >= 4 && memcmp(body, "quit", 4) == 0;
  if (feed) {
    atomic_fetch_add(&t->fed, 1);
    for (const char *end = body + len; !quit;) {
      const char *more = feed->wait(feed->ctx, end);
      if (more == end)
        break;
      ck_assert(more > end);
      atomic_fetch_add(&t->waits, 1);
      end = more;
      len = (size_t)(end - body);
    }
  }
  pthread_mutex_lock(&t->mu);
  snprintf(t->last_id, sizeof(t->last_id), "%s", rid);
  t->last_len = len;
  pthread_mutex_unlock(&t->mu);
  if (!quit) /* a whole body */
    ck_assert_int_eq(body[len], '\0');
  if (len >= 5 && memcmp(body, "sleep", 5) == 0) {
    atomic_store(&t->sleeping, true);
    usleep((useconds_t)atomic_load(&t->sleep_ms) * 1000);
  }
  if (len >= 6 && memcmp(body, "reject", 6) == 0) {
    /* What the decider does with a body it cannot decode. */
    out->status = 400;
    out->body = cs_strdup("{\"Error\":\"cannot decode it\"}");
    out->len = strlen(out->body);
    snprintf(out->error, sizeof(out->error), "cannot decode it");
    atomic_fetch_add(&t->returned, 1);
    return;
  }
  if (len >= 4 && memcmp(body, "echo", 4) == 0 && out->echo_ok) {
    echo_in_pieces(body + 4, len - 4, out);
    atomic_fetch_add(&t->returned, 1);
    return;
  }
  unsigned long sum = 0;
  for (size_t i = 0; i < len; i++)
    sum += (unsigned char)body[i];
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_json_open(&b, NULL, '{');
  cs_json_str(&b, "Verb", cs_verb_name(verb));
  cs_json_int(&b, "Len", (int64_t)len);
  cs_json_int(&b, "Sum", (int64_t)sum);
  cs_json_str(&b, "RequestId", rid);
  cs_json_close(&b, '}');
  out->status = 200;
  out->body = cs_buf_release(&b, &out->len);
  atomic_fetch_add(&t->returned, 1);
}

static bool th_ready(void *ctx, cs_buf *detail)
{
  th *t = ctx;
  bool r = atomic_load(&t->ready);
  cs_json_open(detail, NULL, '{');
  cs_json_str(detail, "signals", r ? "fresh" : "no data yet");
  cs_json_close(detail, '}');
  return r;
}

/* ---- fixtures ------------------------------------------------------------ */

static cs_metrics *M;
static cs_server *S;
static FILE *LOG;

static void setup(void)
{
  memset(&H, 0, sizeof(H));
  pthread_mutex_init(&H.mu, NULL);
  atomic_store(&H.ready, true);
  atomic_store(&H.sleep_ms, 600);
  M = cs_metrics_new();
  S = NULL;
  LOG = tmpfile();
  cs_log_set_fd(fileno(LOG));
  cs_log_set_verbosity(1);
}

static void teardown(void)
{
  cs_server_free(S);
  cs_metrics_free(M);
  cs_log_set_fd(STDOUT_FILENO);
  fclose(LOG);
}

/* Everything logged so far (static buffer). */
static const char *logged(void)
{
  static char buf[1 << 20];
  fflush(LOG);
  size_t n = (size_t)pread(fileno(LOG), buf, sizeof(buf) - 1, 0);
  buf[n < sizeof(buf) ? n : 0] = '\0';
  return buf;
}

static cs_server_opts base_opts(void)
{
  cs_server_opts o = {0};
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  return o;
}

static cs_server *start(const cs_server_opts *o)
{
  cs_server_handler h = {&H, th_handle, th_ready};
  char err[256] = "";
  cs_server *s = NULL;
  cs_err rc = cs_server_new(o, &h, M, &s, err, sizeof(err));
  if (rc)
    ck_abort_msg("server did not start: %s", err);
  ck_assert_uint_gt(cs_server_port(s), 0);
  return s;
}

/* ---- a libcurl client like kube-scheduler's ------------------------------ */

typedef struct call {
  const char *method; /* NULL: POST */
  const char *path;
  const char *ctype; /* NULL: application/json; "": no header */
  const char *body;  /* NULL: "{}" for POST */
  size_t len;        /* 0: strlen(body) */
  const char *reqid;
  bool https;
  const char *ca, *cert, *key;
  bool tls11;      /* offer TLS 1.0..1.1 only */
  bool tls12;      /* the same client, allowed TLS 1.2 too */
  long timeout_ms; /* 0: 5 s, as kube-scheduler's default */
} call;

typedef struct resp {
  CURLcode cc;
  long status;
  char body[16384];
  size_t len;
  char allow[64];
  char reqid[80];
  char ctype[128];
  char conn[32];
  long new_conns;
  char errbuf[CURL_ERROR_SIZE];
  size_t total;  /* all body bytes received, beyond `body` too */
  uint64_t hash; /* FNV-1a of all of them, in order */
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  resp *r = ud;
  size_t k = sz * n, room = sizeof(r->body) - 1 - r->len;
  r->hash = cs_hash_add(r->total ? r->hash : CS_HASH_INIT, p, k);
  r->total += k;
  memcpy(r->body + r->len, p, k < room ? k : room);
  r->len += k < room ? k : room;
  r->body[r->len] = '\0';
  return k;
}

static void header_value(const char *line, size_t n, const char *name,
                         char *out, size_t outn)
{
  size_t nl = strlen(name);
  if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return;
  const char *v = line + nl + 1;
  while (*v == ' ')
    v++;
  size_t vl = (size_t)(line + n - v);
  while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
    vl--;
  snprintf(out, outn, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  resp *r = ud;
  header_value(p, sz * n, "Allow", r->allow, sizeof(r->allow));
  header_value(p, sz * n, "X-Request-Id", r->reqid, sizeof(r->reqid));
  header_value(p, sz * n, "Content-Type", r->ctype, sizeof(r->ctype));
  header_value(p, sz * n, "Connection", r->conn, sizeof(r->conn));
  return sz * n;
}

static void prepare(CURL *h, unsigned port, const call *c, resp *r,
                    struct curl_slist **hdrs)
{
  char url[512];
  snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", c->https ? "https" : "http",
           port, c->path);
  memset(r, 0, sizeof(*r));
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   c->timeout_ms ? c->timeout_ms : 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  const char *method = c->method ? c->method : "POST";
  *hdrs = NULL;
  if (strcmp(method, "POST") == 0) {
    const char *body = c->body ? c->body : "{}";
    size_t len = c->len ? c->len : strlen(body);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    const char *ct = c->ctype ? c->ctype : "application/json";
    char line[160];
    snprintf(line, sizeof(line), "Content-Type:%s%s", *ct ? " " : "", ct);
    *hdrs = curl_slist_append(*hdrs, line);
    *hdrs = curl_slist_append(*hdrs, "Expect:");
  } else if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  if (c->reqid) {
    char line[160];
    snprintf(line, sizeof(line), "X-Request-Id: %s", c->reqid);
    *hdrs = curl_slist_append(*hdrs, line);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
  if (c->https) {
    curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cert) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
      curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
    }
    if (c->tls11 || c->tls12) {
      curl_easy_setopt(h, CURLOPT_SSLVERSION,
                       (long)(CURL_SSLVERSION_TLSv1_0 |
                              (c->tls11 ? CURL_SSLVERSION_MAX_TLSv1_1
                                        : CURL_SSLVERSION_MAX_TLSv1_2)));
      /* OpenSSL 3 refuses TLS < 1.2 at its default security level; level
       * 0 makes the client able to speak them, so a failure is the
       * server's refusal. */
      curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
    }
  }
}

static void finish(CURL *h, resp *r)
{
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->new_conns);
}

/* One exchange on handle h (kept for keep-alive) or a fresh one. */
static void do_call(CURL *h, unsigned port, const call *c, resp *r)
{
  bool own = !h;
  if (own)
    h = curl_easy_init();
  struct curl_slist *hdrs;
  prepare(h, port, c, r, &hdrs);
  r->cc = curl_easy_perform(h);
  finish(h, r);
  curl_slist_free_all(hdrs);
  if (own)
    curl_easy_cleanup(h);
}

static resp *simple(const char *method, const char *path)
{
  static resp r;
  call c = {.method = method, .path = path};
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s %s: %s", method, path, r.errbuf);
  return &r;
}

/* ---- raw sockets --------------------------------------------------------- */

static int raw_connect(unsigned port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

static void raw_send(int fd, const char *s)
{
  ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Sends as much of s as the peer takes; false once it refuses. */
static bool raw_try_send(int fd, const void *s, size_t n)
{
  return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* Reads until EOF, error or timeout; returns bytes read. */
static size_t raw_read(int fd, char *buf, size_t n, int timeout_ms,
                       bool *closed)
{
  size_t got = 0;
  uint64_t end = cs_clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  *closed = false;
  while (got + 1 < n) {
    uint64_t now = cs_clock_mono_ns();
    if (now >= end)
      break;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0)
      break;
    ssize_t k = recv(fd, buf + got, n - 1 - got, 0);
    if (k <= 0) {
      *closed = true;
      break;
    }
    got += (size_t)k;
  }
  buf[got] = '\0';
  return got;
}

/* One GET /healthz on server s (not S). */
static void simple_on(cs_server *s)
{
  resp r;
  call c = {.method = "GET", .path = "/healthz"};
  do_call(NULL, cs_server_port(s), &c, &r);
  ck_assert_int_eq(r.status, 200);
}

static double metric(const char *name, const char *verb, const char *code)
{
  double v = 0;
  const char *lv[] = {verb, code};
  if (cs_metrics_get(M, name, lv, &v) != CS_OK)
    return 0;
  return v;
}

/* Waits (up to 2 s) for a request counter to reach `want`: requests are
 * counted when they complete, which may be just after the client has read
 * the reply. */
static bool wait_metric(const char *name, const char *verb, const char *code,
                        double want)
{
  for (unsigned i = 0; i < 200 * tu_slowdown(); i++) {
    if (metric(name, verb, code) == want)
      return true;
    usleep(10000);
  }
  return false;
}

static double gauge_open(void)
{
  double v = 0;
  if (cs_metrics_get(M, "carbonshift_http_open_connections", NULL, &v))
    return -1;
  return v;
}

static double gauge_queued(void)
{
  double v = 0;
  if (cs_metrics_get(M, "carbonshift_http_queued_decisions", NULL, &v))
    return -1;
  return v;
}

/* Waits (up to 2 s) until the log contains s: access log lines are written
 * when a request completes, just after its reply went out. */
static bool wait_logged(const char *s)
{
  for (int i = 0; i < 200; i++) {
    if (strstr(logged(), s))
      return true;
    usleep(10000);
  }
  return false;
}

/* ---- tests -----------------------------------------------------------------
 */

START_TEST(test_server_filter_replies_with_handler_body)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  CURL *h = curl_easy_init();
  const char *body = "{\"Pod\":{},\"Nodes\":null,\"NodeNames\":[\"a\"]}";
  call c = {.path = "/filter", .body = body};
  resp r;
  do_call(h, cs_server_port(S), &c, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.ctype, "application/json");
  unsigned long sum = 0;
  for (const char *p = body; *p; p++)
    sum += (unsigned char)*p;
  char want[256];
  snprintf(want, sizeof(want),
           "{\"Verb\":\"filter\",\"Len\":%zu,\"Sum\":%lu,\"RequestId\":\"%s\"}",
           strlen(body), sum, r.reqid);
  ck_assert_str_eq(r.body, want);
  /* A generated id: 32 hex digits, the one the handler got. */
  ck_assert_uint_eq(strlen(r.reqid), 32);
  ck_assert_uint_eq(strspn(r.reqid, "0123456789abcdef"), 32);
  ck_assert_str_eq(H.last_id, r.reqid);
  char first_id[80];
  snprintf(first_id, sizeof(first_id), "%s", r.reqid);

  /* Keep-alive: the second call reuses the connection; the client's sane
   * request id is used and echoed. */
  call c2 = {.path = "/prioritize", .reqid = "sched-42.a:b_c"};
  do_call(h, cs_server_port(S), &c2, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_int_eq(r.new_conns, 0);
  ck_assert_str_eq(r.reqid, "sched-42.a:b_c");
  ck_assert_str_eq(H.last_id, "sched-42.a:b_c");
  ck_assert_ptr_nonnull(strstr(r.body, "\"Verb\":\"prioritize\""));
  call pre = {.path = "/preempt"};
  do_call(h, cs_server_port(S), &pre, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_ptr_nonnull(strstr(r.body, "\"Verb\":\"preempt\""));

  /* An id with odd characters or too long is replaced. */
  call c3 = {.path = "/filter", .reqid = "bad id\"x"};
  do_call(h, cs_server_port(S), &c3, &r);
  ck_assert_uint_eq(strlen(r.reqid), 32);
  ck_assert_str_ne(r.reqid, first_id);
  char longid[100];
  memset(longid, 'a', 65);
  longid[65] = '\0';
  call c4 = {.path = "/filter", .reqid = longid};
  do_call(h, cs_server_port(S), &c4, &r);
  ck_assert_uint_eq(strlen(r.reqid), 32);
  curl_easy_cleanup(h);
  ck_assert_int_eq(atomic_load(&H.calls), 5);

  /* Access log at v:1: one JSON line per request. */
  const char *log = logged();
  ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"HTTP request\""));
  ck_assert_ptr_nonnull(strstr(log, "\"method\":\"POST\",\"path\":\"/"
                                    "prioritize\",\"status\":200"));
  ck_assert_ptr_nonnull(strstr(log, "\"requestId\":\"sched-42.a:b_c\""));
  ck_assert_ptr_nonnull(strstr(log, "\"durationMs\":"));
}
END_TEST

START_TEST(test_server_filter_large_body_arrives_whole)
{
  cs_server_opts o = base_opts();
  o.max_body_bytes = 8u << 20;
  S = start(&o);
  size_t n = 3u << 20; /* several MHD reads */
  char *body = cs_malloc(n + 1);
  unsigned long sum = 0;
  for (size_t i = 0; i < n; i++) {
    body[i] = (char)('a' + i % 26);
    sum += (unsigned char)body[i];
  }
  body[n] = '\0';
  call c = {.path = "/filter", .body = body, .len = n};
  resp r;
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.status, 200);
  char want[64];
  snprintf(want, sizeof(want), "\"Len\":%zu,\"Sum\":%lu", n, sum);
  ck_assert_ptr_nonnull(strstr(r.body, want));
  free(body);
}
END_TEST

/* A reply given in pieces of the request body (how a filter reply echoes
 * full Nodes) arrives whole and in order, over HTTP and HTTPS, for bodies
 * of several megabytes in thousands of pieces. */
static void check_echo_in_pieces(bool https, const char *ca)
{
  size_t n = (3u << 20) + 5;
  char *body = cs_malloc(n + 1);
  memcpy(body, "echo", 4);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 4; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    body[i] = (char)('a' + x % 26);
  }
  body[n] = '\0';
  uint64_t want = cs_hash_bytes("[", 1);
  size_t len = n - 4, nchunks = (len + ECHO_CHUNK - 1) / ECHO_CHUNK;
  for (size_t k = nchunks; k-- > 0;) {
    size_t at = k * ECHO_CHUNK;
    want = cs_hash_add(want, body + 4 + at,
                       len - at < ECHO_CHUNK ? len - at : ECHO_CHUNK);
  }
  want = cs_hash_add(want, "]", 1);
  call c = {.path = "/filter",
            .body = body,
            .len = n,
            .https = https,
            .ca = ca,
            .timeout_ms = 20000};
  resp r;
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(r.total, len + 2);
  ck_assert(r.hash == want);
  free(body);
}

START_TEST(test_server_reply_in_pieces_arrives_whole)
{
  cs_server_opts o = base_opts();
  o.max_body_bytes = 8u << 20;
  S = start(&o);
  check_echo_in_pieces(false, NULL);
  cs_server_free(S);
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  o.tls_cert_file = t.server_cert;
  o.tls_key_file = t.server_key;
  S = start(&o);
  check_echo_in_pieces(true, t.ca_cert);
  tu_tls_cleanup(&t);
}
END_TEST

START_TEST(test_server_route_prefix_and_trailing_slashes)
{
  cs_server_opts o = base_opts();
  o.path_prefix = "carbonshift//";
  S = start(&o);
  resp r;
  const char *ok[] = {"/carbonshift/filter", "/carbonshift//prioritize",
                      "/carbonshift/filter/"};
  for (size_t i = 0; i < 3; i++) {
    call c = {.path = ok[i]};
    do_call(NULL, cs_server_port(S), &c, &r);
    ck_assert_msg(r.status == 200, "%s -> %ld", ok[i], r.status);
  }
  call bare = {.path = "/filter"};
  do_call(NULL, cs_server_port(S), &bare, &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_ptr_nonnull(strstr(r.body, "/carbonshift/filter"));
  ck_assert_int_eq(simple("GET", "/healthz")->status, 200);
  ck_assert_int_eq(simple("GET", "/carbonshift/healthz")->status, 200);
  ck_assert_int_eq(simple("GET", "/carbonshift/metrics")->status, 200);
}
END_TEST

START_TEST(test_server_unknown_path_404_json)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  resp *r = simple("GET", "/nope?x=1");
  ck_assert_int_eq(r->status, 404);
  ck_assert_str_eq(r->ctype, "application/json");
  ck_assert_str_eq(r->body,
                   "{\"Error\":\"no route for /nope; the extender answers "
                   "POST /filter, /prioritize and /preempt, GET /healthz, "
                   "/readyz and /metrics\"}");
  ck_assert_uint_eq(strlen(r->reqid), 32);
  call c = {.path = "/filterx"};
  resp r2;
  do_call(NULL, cs_server_port(S), &c, &r2);
  ck_assert_int_eq(r2.status, 404);
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  /* Refusals are logged at v:0 with the reason. */
  cs_log_set_verbosity(0);
  simple("GET", "/again");
  ck_assert(wait_logged("\"path\":\"/again\",\"status\":404"));
}
END_TEST

START_TEST(test_server_wrong_method_405_with_allow)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  resp *r = simple("GET", "/filter");
  ck_assert_int_eq(r->status, 405);
  ck_assert_str_eq(r->allow, "POST");
  ck_assert_str_eq(r->body, "{\"Error\":\"method GET is not allowed on "
                            "/filter; use POST\"}");
  r = simple("PUT", "/prioritize");
  ck_assert_int_eq(r->status, 405);
  ck_assert_str_eq(r->allow, "POST");
  r = simple("GET", "/preempt");
  ck_assert_int_eq(r->status, 405);
  ck_assert_str_eq(r->allow, "POST");
  call c = {.path = "/metrics"};
  resp r2;
  do_call(NULL, cs_server_port(S), &c, &r2);
  ck_assert_int_eq(r2.status, 405);
  ck_assert_str_eq(r2.allow, "GET, HEAD");
  r = simple("HEAD", "/healthz");
  ck_assert_int_eq(r->status, 200);
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  /* A HEAD reply has no body, and its access line says so. */
  ck_assert(wait_logged("\"method\":\"HEAD\",\"path\":\"/healthz\","
                        "\"status\":200,\"bytes\":0,"));
}
END_TEST

/* A body the decision refuses (400) has its reason in the access line, as
 * the server's own refusals do, not only in "Request rejected". */
START_TEST(test_server_decision_400_reason_in_access_line)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  call c = {.path = "/filter", .body = "reject me"};
  resp r;
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.status, 400);
  ck_assert(wait_logged("\"path\":\"/filter\",\"status\":400,"));
  const char *at = strstr(logged(), "\"path\":\"/filter\",\"status\":400,");
  char line[512];
  snprintf(line, sizeof(line), "%.*s", (int)strcspn(at, "\n"), at);
  ck_assert_msg(strstr(line, ",\"err\":\"cannot decode it\""), "%s", line);
}
END_TEST

START_TEST(test_server_non_json_content_type_415)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  resp r;
  call c = {.path = "/filter", .ctype = "text/plain"};
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.status, 415);
  ck_assert_str_eq(r.body, "{\"Error\":\"Content-Type \\\"text/plain\\\" is "
                           "not supported; send application/json\"}");
  call none = {.path = "/filter", .ctype = ""};
  do_call(NULL, cs_server_port(S), &none, &r);
  ck_assert_int_eq(r.status, 415);
  ck_assert_ptr_nonnull(strstr(r.body, "Content-Type is missing"));
  call jsonx = {.path = "/filter", .ctype = "application/jsonx"};
  do_call(NULL, cs_server_port(S), &jsonx, &r);
  ck_assert_int_eq(r.status, 415);
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  const char *fine[] = {"application/json; charset=utf-8", "Application/JSON",
                        "application/json;charset=UTF-8"};
  for (size_t i = 0; i < 3; i++) {
    call ok = {.path = "/filter", .ctype = fine[i]};
    do_call(NULL, cs_server_port(S), &ok, &r);
    ck_assert_msg(r.status == 200, "%s -> %ld", fine[i], r.status);
  }
}
END_TEST

START_TEST(test_server_declared_length_over_cap_413_unread)
{
  cs_server_opts o = base_opts();
  o.max_body_bytes = 67108864;
  S = start(&o);
  int fd = raw_connect(cs_server_port(S));
  /* Headers only: the reply must come without the body being sent. */
  raw_send(fd, "POST /filter HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: 70000000\r\n\r\n");
  char buf[4096];
  bool closed;
  raw_read(fd, buf, sizeof(buf), 3000, &closed);
  close(fd);
  ck_assert_msg(strncmp(buf, "HTTP/1.1 413", 12) == 0, "%s", buf);
  ck_assert_ptr_nonnull(
      strstr(buf, "{\"Error\":\"request body of 70000000 bytes exceeds the "
                  "limit of 67108864 bytes (http.maxBodyBytes)\"}"));
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  /* The same through curl, with a small cap and a real body. */
  cs_server_free(S);
  o.max_body_bytes = 1024;
  S = start(&o);
  char body[2048];
  memset(body, ' ', sizeof(body) - 1);
  body[sizeof(body) - 1] = '\0';
  call c = {.path = "/prioritize", .body = body};
  resp r;
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.status, 413);
  ck_assert_ptr_nonnull(strstr(r.body, "2047 bytes exceeds the limit of 1024"));
  /* Exactly at the cap is fine. */
  call at = {.path = "/prioritize", .body = body, .len = 1024};
  do_call(NULL, cs_server_port(S), &at, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_msg(
      wait_metric("carbonshift_http_requests_total", "prioritize", "413", 1),
      "413s counted: %g",
      metric("carbonshift_http_requests_total", "prioritize", "413"));
}
END_TEST

START_TEST(test_server_chunked_body_over_cap_stops_reading)
{
  cs_server_opts o = base_opts();
  o.max_body_bytes = 4096;
  S = start(&o);
  /* Under the cap, chunked is accepted and reassembled. */
  int fd = raw_connect(cs_server_port(S));
  raw_send(fd, "POST /filter HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "5\r\n{\"a\":\r\n3\r\n1}\n\r\n0\r\n\r\n");
  char buf[4096];
  bool closed;
  raw_read(fd, buf, sizeof(buf), 3000, &closed);
  close(fd);
  ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
  ck_assert_ptr_nonnull(strstr(buf, "\"Len\":8"));

  /* Over the cap: the server stops reading and closes. The client keeps
   * sending 1 KiB chunks; the connection must end long before 64 MiB. */
  fd = raw_connect(cs_server_port(S));
  raw_send(fd, "POST /filter HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
  char chunk[1024 + 16];
  int hl = snprintf(chunk, sizeof(chunk), "400\r\n");
  memset(chunk + hl, 'x', 1024);
  memcpy(chunk + hl + 1024, "\r\n", 2);
  size_t clen = (size_t)hl + 1026, sent = 0;
  uint64_t t0 = cs_clock_mono_ns();
  while (sent < (64u << 20) && raw_try_send(fd, chunk, clen)) {
    sent += 1024;
    if (cs_clock_mono_ns() - t0 > 5000000000ull)
      break;
  }
  close(fd);
  ck_assert_msg(sent < (8u << 20), "server kept reading: %zu bytes", sent);
  ck_assert_int_eq(atomic_load(&H.calls), 1);
  /* The refusal is counted and logged. */
  for (int i = 0; i < 100 && metric("carbonshift_http_requests_total", "filter",
                                    "413") < 1;
       i++)
    usleep(20000);
  ck_assert_double_eq(
      metric("carbonshift_http_requests_total", "filter", "413"), 1);
  ck_assert_ptr_nonnull(strstr(logged(), "request body exceeds the limit of "
                                         "4096 bytes (http.maxBodyBytes)"));
  /* Only by the access line: the cut is no server error. */
  ck_assert_ptr_null(strstr(logged(), "Application reported internal error"));
}
END_TEST

/* Sends `prefix` to `port`, then `drip` every 100 ms for up to `max_s`
 * seconds, until the server closes the connection; returns the seconds
 * that took (99 when it never did). */
static double trickle_on(unsigned port, const char *prefix, const char *drip,
                         int max_s)
{
  int fd = raw_connect(port);
  if (*prefix)
    raw_send(fd, prefix);
  bool alive = true;
  uint64_t t0 = cs_clock_mono_ns();
  for (int i = 0; i < max_s * 10 && alive; i++) {
    usleep(100000);
    alive = raw_try_send(fd, drip, strlen(drip));
    char b[256];
    bool closed = false;
    raw_read(fd, b, sizeof(b), 1, &closed);
    if (closed)
      alive = false;
  }
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  close(fd);
  return alive ? 99 : secs;
}

/* trickle_on the main port, for up to 5 s. */
static double trickle(const char *prefix, const char *drip)
{
  return trickle_on(cs_server_port(S), prefix, drip, 5);
}

START_TEST(test_server_slow_body_over_request_timeout_closed)
{
  cs_server_opts o = base_opts();
  o.request_timeout_ms = 300;
  S = start(&o);
  double secs = trickle("POST /filter HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 100\r\n\r\n",
                        " ");
  ck_assert_msg(secs < 2.0, "a slow body was cut only after %.2f s (99: never)",
                secs);
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  ck_assert_msg(
      wait_metric("carbonshift_http_requests_total", "filter", "408", 1),
      "408s counted: %g",
      metric("carbonshift_http_requests_total", "filter", "408"));
  ck_assert_ptr_nonnull(strstr(logged(), "http.requestTimeout"));
  ck_assert_ptr_null(strstr(logged(), "Application reported internal error"));
}
END_TEST

/* Slowloris: a client that keeps sending header bytes (so it is never
 * silent for http.connectionTimeout) is cut at http.headerTimeout, both on
 * a fresh connection and in the request line, and the log says why. */
START_TEST(test_server_slow_head_cut_at_header_timeout)
{
  cs_server_opts o = base_opts();
  o.header_timeout_ms = 1000;
  o.connection_timeout_s = 30;
  S = start(&o);
  double secs =
      trickle("POST /filter HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n");
  ck_assert_msg(secs >= 0.9 && secs < 3.0 * tu_slowdown(),
                "a slow head was cut after %.2f s (want about 1 s)", secs);
  secs = trickle("GET /healthz", "z");
  ck_assert_msg(secs >= 0.9 && secs < 3.0 * tu_slowdown(),
                "a slow request line was cut after %.2f s", secs);
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  ck_assert(wait_logged("\"msg\":\"HTTP request head too slow\""));
  ck_assert_ptr_nonnull(strstr(logged(), "(http.headerTimeout); connection "
                                         "closed"));
  double cuts = 0;
  ck_assert_int_eq(
      cs_metrics_get(M, "carbonshift_http_header_timeouts_total", NULL, &cuts),
      CS_OK);
  ck_assert_double_eq(cuts, 2);
  /* Others are served meanwhile and after. */
  simple_on(S);
}
END_TEST

/* The deadline runs only while a connection waits for a head: a kept-alive
 * connection used again within it stays open, and a decision that takes
 * longer than it is not cut. */
START_TEST(test_server_header_timeout_spares_busy_and_reused_connections)
{
  cs_server_opts o = base_opts();
  o.header_timeout_ms = 800;
  S = start(&o);
  CURL *h = curl_easy_init();
  call c = {.path = "/filter"};
  resp r;
  for (int i = 0; i < 3; i++) {
    do_call(h, cs_server_port(S), &c, &r);
    ck_assert_int_eq(r.status, 200);
    if (i)
      ck_assert_int_eq(r.new_conns, 0);
    usleep(400000);
  }
  atomic_store(&H.sleep_ms, 1600);
  call slow = {.path = "/filter", .body = "sleep on it"};
  do_call(h, cs_server_port(S), &slow, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_int_eq(r.new_conns, 0);
  curl_easy_cleanup(h);
  ck_assert_ptr_null(strstr(logged(), "HTTP request head too slow"));
}
END_TEST

/* What docs/operations.md says of a head over http.maxHeaderBytes:
 * libmicrohttpd answers it itself (431, or 414 when the request line alone
 * is too long) with its own HTML and no X-Request-Id, carbonshift logs no
 * access line, and the only trace is an "HTTP server message". */
START_TEST(test_server_oversized_headers_refused)
{
  cs_server_opts o = base_opts();
  o.max_header_bytes = 8192;
  S = start(&o);
  char big[16384];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  static const char *const heads[][2] = {
      {"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", "HTTP/1.1 431 "},
      {"GET /", "HTTP/1.1 414 "}};
  for (size_t i = 0; i < 2; i++) {
    int fd = raw_connect(cs_server_port(S));
    raw_send(fd, heads[i][0]);
    (void)raw_try_send(fd, big, strlen(big));
    (void)raw_try_send(fd, i ? " HTTP/1.1\r\n\r\n" : "\r\n\r\n", i ? 13 : 4);
    char buf[4096];
    bool closed;
    raw_read(fd, buf, sizeof(buf), 3000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, heads[i][1], strlen(heads[i][1])) == 0, "%s",
                  buf);
    ck_assert_msg(!strcasestr(buf, "X-Request-Id"), "%s", buf);
    ck_assert_msg(strstr(buf, "\r\n\r\n<html>"), "%s", buf);
  }
  ck_assert(wait_logged("HTTP response code is 414"));
  ck_assert_ptr_nonnull(strstr(logged(), "\"msg\":\"HTTP server message\","
                                         "\"detail\":\"Error processing "
                                         "request (HTTP response code is 431"));
  ck_assert_ptr_null(strstr(logged(), "\"msg\":\"HTTP request\""));
  /* Normal requests still work. */
  ck_assert_int_eq(simple("GET", "/healthz")->status, 200);
}
END_TEST

START_TEST(test_server_healthz_and_readyz)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  resp *r = simple("GET", "/healthz");
  ck_assert_int_eq(r->status, 200);
  ck_assert_str_eq(r->body, "{\"status\":\"ok\"}");
  r = simple("GET", "/readyz");
  ck_assert_int_eq(r->status, 200);
  ck_assert_str_eq(r->body, "{\"status\":\"ready\",\"detail\":{\"signals\":"
                            "\"fresh\"}}");
  atomic_store(&H.ready, false);
  r = simple("GET", "/readyz");
  ck_assert_int_eq(r->status, 503);
  ck_assert_str_eq(r->body, "{\"Error\":\"not ready\",\"status\":\"not "
                            "ready\",\"detail\":{\"signals\":\"no data "
                            "yet\"}}");
  ck_assert_int_eq(simple("GET", "/healthz")->status, 200);
}
END_TEST

START_TEST(test_server_metrics_count_requests)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  CURL *h = curl_easy_init();
  resp r;
  for (int i = 0; i < 3; i++) {
    call c = {.path = "/filter"};
    do_call(h, cs_server_port(S), &c, &r);
  }
  call p = {.path = "/prioritize"};
  do_call(h, cs_server_port(S), &p, &r);
  call bad = {.path = "/filter", .ctype = "text/plain"};
  do_call(h, cs_server_port(S), &bad, &r);
  simple("GET", "/nowhere");
  simple("GET", "/healthz");
  curl_easy_cleanup(h);
  /* Metrics are recorded when a request completes, just after the reply
   * is sent; the next request on another connection may overtake it. */
  usleep(100000);
  resp *m = simple("GET", "/metrics");
  ck_assert_int_eq(m->status, 200);
  ck_assert_str_eq(m->ctype, "text/plain; version=0.0.4; charset=utf-8");
  tu_prom pr;
  char err[256];
  ck_assert_msg(tu_prom_parse(m->body, m->len, &pr, err, sizeof(err)),
                "%s:\n%s", err, m->body);
  double v;
  ck_assert(tu_prom_get(&pr, &v, "carbonshift_http_requests_total", "verb",
                        "filter", "code", "200", NULL));
  ck_assert_double_eq(v, 3);
  ck_assert(tu_prom_get(&pr, &v, "carbonshift_http_requests_total", "verb",
                        "prioritize", "code", "200", NULL));
  ck_assert_double_eq(v, 1);
  ck_assert(tu_prom_get(&pr, &v, "carbonshift_http_requests_total", "verb",
                        "filter", "code", "415", NULL));
  ck_assert_double_eq(v, 1);
  ck_assert(tu_prom_get(&pr, &v, "carbonshift_http_requests_total", "verb",
                        "other", "code", "404", NULL));
  ck_assert_double_eq(v, 1);
  ck_assert(tu_prom_get(&pr, &v, "carbonshift_http_requests_total", "verb",
                        "healthz", "code", "200", NULL));
  ck_assert_double_eq(v, 1);
  ck_assert(tu_prom_get(&pr, &v,
                        "carbonshift_http_request_duration_seconds_count",
                        "verb", "filter", "code", "200", NULL));
  ck_assert_double_eq(v, 3);
  ck_assert(tu_prom_get(&pr, &v,
                        "carbonshift_http_request_duration_seconds_bucket",
                        "verb", "filter", "code", "200", "le", "+Inf", NULL));
  ck_assert_double_eq(v, 3);
  ck_assert_str_eq(
      tu_prom_family_get(&pr, "carbonshift_http_request_duration_seconds")
          ->type,
      "histogram");
  /* The /metrics call itself holds a connection open. */
  ck_assert(tu_prom_get(&pr, &v, "carbonshift_http_open_connections", NULL));
  ck_assert_double_ge(v, 1);
  tu_prom_free(&pr);
}
END_TEST

/* Makes certificates and starts S with HTTPS (and mTLS). */
/* Makes the test PKI and options serving HTTPS with it (mTLS too). */
static cs_server_opts https_opts(tu_tls *t, bool mtls)
{
  ck_assert(tu_tls_make(t));
  cs_server_opts o = base_opts();
  o.tls_cert_file = t->server_cert;
  o.tls_key_file = t->server_key;
  o.tls_client_ca_file = mtls ? t->ca_cert : NULL;
  return o;
}

static void start_https(tu_tls *t, bool mtls)
{
  cs_server_opts o = https_opts(t, mtls);
  S = start(&o);
}

/* Without settings, one thread of each kind per CPU the process may run
 * on: a container pinned to one CPU of a large node starts one, not one
 * per CPU of the node. */
START_TEST(test_server_threads_follow_affinity)
{
  cpu_set_t all, one;
  ck_assert_int_eq(sched_getaffinity(0, sizeof(all), &all), 0);
  int first = 0;
  while (!CPU_ISSET(first, &all))
    first++;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
  cs_server_opts o = base_opts();
  o.threads = 0;
  S = start(&o);
  ck_assert_int_eq(sched_setaffinity(0, sizeof(all), &all), 0);
  ck_assert(wait_logged("\"threads\":1,\"decisionThreads\":1"));
}
END_TEST

START_TEST(test_server_https_with_server_cert)
{
  tu_tls t;
  start_https(&t, false);
  resp r;
  call c = {.path = "/filter", .https = true, .ca = t.ca_cert};
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  /* Plain HTTP to the TLS port gets no HTTP answer. */
  call plain = {.path = "/filter"};
  do_call(NULL, cs_server_port(S), &plain, &r);
  ck_assert_int_ne(r.status, 200);
  tu_tls_cleanup(&t);
}
END_TEST

START_TEST(test_server_mtls_client_cert_checked)
{
  tu_tls t;
  start_https(&t, true);
  resp r;
  CURL *h = curl_easy_init();
  call good = {.path = "/filter",
               .https = true,
               .ca = t.ca_cert,
               .cert = t.client_cert,
               .key = t.client_key};
  do_call(h, cs_server_port(S), &good, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  do_call(h, cs_server_port(S), &good, &r); /* keep-alive, checked once */
  ck_assert_int_eq(r.status, 200);
  ck_assert_int_eq(r.new_conns, 0);
  curl_easy_cleanup(h);

  struct {
    const char *cert, *key, *why;
  } bad[] = {
      {NULL, NULL, "no client certificate presented"},
      /* GnuTLS's own words, without its trailing space (docs/operations.md
       * quotes them). */
      {t.rogue_cert, t.rogue_key,
       "(client certificate refused: The certificate is NOT trusted. The "
       "certificate issuer is unknown.)"},
      {t.expired_cert, t.expired_key,
       "(client certificate refused: The certificate is NOT trusted. The "
       "certificate chain uses expired certificate.)"},
      {t.serveronly_cert, t.serveronly_key,
       "(client certificate refused: The certificate is NOT trusted. The "
       "certificate chain does not match the intended purpose.)"}};
  for (size_t i = 0; i < 4; i++) {
    call c = {.path = "/filter",
              .https = true,
              .ca = t.ca_cert,
              .cert = bad[i].cert,
              .key = bad[i].key};
    do_call(NULL, cs_server_port(S), &c, &r);
    ck_assert_msg(r.cc == CURLE_OK, "case %zu: %s", i, r.errbuf);
    ck_assert_msg(r.status == 403, "case %zu: %ld", i, r.status);
    ck_assert_str_eq(r.ctype, "application/json");
    ck_assert_msg(strstr(r.body, bad[i].why), "case %zu: %s", i, r.body);
  }
  /* Probes need no client certificate (kubelet has none); /metrics does. */
  const char *paths[] = {"/healthz", "/readyz", "/metrics"};
  const long want[] = {200, 200, 403};
  for (size_t i = 0; i < 3; i++) {
    call g = {
        .method = "GET", .path = paths[i], .https = true, .ca = t.ca_cert};
    do_call(NULL, cs_server_port(S), &g, &r);
    ck_assert_msg(r.status == want[i], "%s -> %ld", paths[i], r.status);
  }
  ck_assert_int_eq(atomic_load(&H.calls), 2);
  /* Refusals are logged at v:0. */
  ck_assert(wait_logged("\"status\":403"));
  ck_assert(wait_logged("no client certificate presented"));
  tu_tls_cleanup(&t);
}
END_TEST

START_TEST(test_server_tls_below_1_2_refused)
{
  tu_tls t;
  start_https(&t, false);
  resp r;
  call old = {.path = "/filter", .https = true, .ca = t.ca_cert, .tls11 = true};
  do_call(NULL, cs_server_port(S), &old, &r);
  ck_assert_int_eq(r.cc, CURLE_SSL_CONNECT_ERROR);
  /* The client did offer TLS 1.1 (OpenSSL would say "no protocols
   * available" otherwise) and the server refused the handshake. */
  ck_assert_ptr_null(strstr(r.errbuf, "no protocols available"));
  ck_assert(wait_logged("handshake"));
  ck_assert_int_eq(atomic_load(&H.calls), 0);
  /* The same client, allowed TLS 1.2, gets through. */
  call tls12 = {
      .path = "/filter", .https = true, .ca = t.ca_cert, .tls12 = true};
  do_call(NULL, cs_server_port(S), &tls12, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  tu_tls_cleanup(&t);
}
END_TEST

/* Copies a file, replacing the target the way a rotated Secret does: a
 * new file renamed over the old one. */
static void replace_file(const char *from, const char *to)
{
  size_t len;
  char *data = tu_read_file(from, &len);
  char tmp[TU_TLS_PATH + 8];
  snprintf(tmp, sizeof(tmp), "%s.new", to);
  FILE *f = fopen(tmp, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(rename(tmp, to), 0);
  free(data);
}

/* A renewed certificate is served without a restart (cert-manager renews
 * the Secret's files in place); a renewal that cannot be used keeps the
 * pair in use, logged. */
START_TEST(test_server_tls_reloads_renewed_certificate)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char cert[TU_TLS_PATH + 16], key[TU_TLS_PATH + 16], ca2[TU_TLS_PATH + 16],
      ca2_key[TU_TLS_PATH + 16], new_cert[TU_TLS_PATH + 16],
      new_key[TU_TLS_PATH + 16];
  snprintf(cert, sizeof(cert), "%s/serving.crt", t.dir);
  snprintf(key, sizeof(key), "%s/serving.key", t.dir);
  snprintf(ca2, sizeof(ca2), "%s/ca2.crt", t.dir);
  snprintf(ca2_key, sizeof(ca2_key), "%s/ca2.key", t.dir);
  snprintf(new_cert, sizeof(new_cert), "%s/renewed.crt", t.dir);
  snprintf(new_key, sizeof(new_key), "%s/renewed.key", t.dir);
  replace_file(t.server_cert, cert);
  replace_file(t.server_key, key);
  cs_server_opts o = base_opts();
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.tls_reload_check_ms = 20;
  S = start(&o);
  resp r;
  call old_ca = {.path = "/filter", .https = true, .ca = t.ca_cert};
  call new_ca = {.path = "/filter", .https = true, .ca = ca2};
  do_call(NULL, cs_server_port(S), &old_ca, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  do_call(NULL, cs_server_port(S), &new_ca, &r);
  ck_assert_int_ne(r.cc, CURLE_OK); /* not yet */

  /* The renewal, from another CA so that a client tells them apart. */
  ck_assert(tu_tls_write_cert(ca2, ca2_key, "second CA", NULL, NULL, true, NULL,
                              NULL, -60, 86400));
  ck_assert(tu_tls_write_cert(new_cert, new_key, "localhost",
                              "DNS:localhost,IP:127.0.0.1,IP:::1", "serverAuth",
                              false, ca2, ca2_key, -60, 86400));
  replace_file(new_key, key);
  replace_file(new_cert, cert);
  usleep(50000);
  do_call(NULL, cs_server_port(S), &new_ca, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  do_call(NULL, cs_server_port(S), &old_ca, &r);
  ck_assert_int_ne(r.cc, CURLE_OK);
  ck_assert(wait_logged("\"msg\":\"TLS certificate reloaded\""));

  /* A key that matches nothing: the renewed pair stays in use. */
  replace_file(t.client_key, key);
  usleep(50000);
  do_call(NULL, cs_server_port(S), &new_ca, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert(wait_logged("Cannot reload the TLS certificate; the one in use "
                        "is kept"));
  ck_assert(wait_logged("are not a usable PEM pair"));
  const char *extra[] = {cert, key, ca2, ca2_key, new_cert, new_key};
  for (size_t i = 0; i < 6; i++)
    unlink(extra[i]);
  tu_tls_cleanup(&t);
}
END_TEST

/* Lowers the descriptor limit so that the next open fails with EMFILE, as
 * under a connection flood; returns the limits to restore. */
static struct rlimit no_descriptor_free(void)
{
  struct rlimit old;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
  int lowest = dup(0);
  ck_assert_int_ge(lowest, 0);
  close(lowest);
  struct rlimit tight = {(rlim_t)lowest, old.rlim_max};
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
  return old;
}

static size_t count_of(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

/* Runs one check of both stores: a handshake's fetch of the pair and a
 * verification (of no chain: only the reload matters here). */
static void check_stores(cs_tls_certs *certs, cs_tls_trust *trust)
{
  gnutls_pcert_st *pcert;
  unsigned n;
  gnutls_privkey_t key;
  char why[256];
  gnutls_datum_t none = {NULL, 0};
  usleep(5000); /* past the 1 ms check interval */
  cs_tls_certs_get(certs, &pcert, &n, &key);
  (void)cs_tls_trust_verify(trust, &none, 0, why, sizeof(why));
}

/* A renewal whose load failed for a passing cause (no descriptor free) is
 * loaded at the next check, though its files have not changed since:
 * waiting for the next change could serve the old certificate past its
 * expiry. A file that stays bad is tried at every check and logged once. */
START_TEST(test_server_tls_reload_retried_after_passing_failure)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char cert[TU_TLS_PATH + 16], key[TU_TLS_PATH + 16], ca[TU_TLS_PATH + 16],
      ca2[TU_TLS_PATH + 16], ca2_key[TU_TLS_PATH + 16],
      new_cert[TU_TLS_PATH + 16], new_key[TU_TLS_PATH + 16];
  snprintf(cert, sizeof(cert), "%s/serving.crt", t.dir);
  snprintf(key, sizeof(key), "%s/serving.key", t.dir);
  snprintf(ca, sizeof(ca), "%s/client-ca.crt", t.dir);
  snprintf(ca2, sizeof(ca2), "%s/ca2.crt", t.dir);
  snprintf(ca2_key, sizeof(ca2_key), "%s/ca2.key", t.dir);
  snprintf(new_cert, sizeof(new_cert), "%s/renewed.crt", t.dir);
  snprintf(new_key, sizeof(new_key), "%s/renewed.key", t.dir);
  replace_file(t.server_cert, cert);
  replace_file(t.server_key, key);
  replace_file(t.ca_cert, ca);
  cs_tls_certs *certs;
  cs_tls_trust *trust;
  char err[512];
  ck_assert_int_eq(
      cs_tls_certs_new(cert, key, 1000000, &certs, err, sizeof(err)), CS_OK);
  ck_assert_int_eq(cs_tls_trust_new(ca, 1000000, &trust, err, sizeof(err)),
                   CS_OK);
  ck_assert(tu_tls_write_cert(ca2, ca2_key, "second CA", NULL, NULL, true, NULL,
                              NULL, -60, 86400));
  ck_assert(tu_tls_write_cert(new_cert, new_key, "localhost",
                              "DNS:localhost,IP:127.0.0.1,IP:::1", "serverAuth",
                              false, ca2, ca2_key, -60, 86400));
  replace_file(new_key, key);
  replace_file(new_cert, cert);
  replace_file(ca2, ca);

  struct rlimit old = no_descriptor_free();
  check_stores(certs, trust);
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
  ck_assert_uint_eq(cs_tls_certs_reloads(certs), 0);
  ck_assert_uint_eq(cs_tls_trust_reloads(trust), 0);
  ck_assert_ptr_nonnull(strstr(logged(), "Cannot reload the TLS certificate; "
                                         "the one in use is kept"));
  ck_assert_ptr_nonnull(strstr(logged(), "Cannot reload the TLS client CA"));
  ck_assert_ptr_nonnull(strstr(logged(), "Too many open files"));

  check_stores(certs, trust);
  ck_assert_uint_eq(cs_tls_certs_reloads(certs), 1);
  ck_assert_uint_eq(cs_tls_trust_reloads(trust), 1);
  ck_assert_ptr_nonnull(
      strstr(logged(), "\"msg\":\"TLS certificate reloaded\""));
  ck_assert_ptr_nonnull(strstr(logged(), "\"msg\":\"TLS client CA reloaded\""));

  replace_file(t.client_key, key); /* matches no certificate */
  for (int i = 0; i < 4; i++)
    check_stores(certs, trust);
  ck_assert_uint_eq(cs_tls_certs_reloads(certs), 1);
  ck_assert_uint_eq(count_of(logged(), "are not a usable PEM pair"), 1);
  replace_file(new_key, key);
  check_stores(certs, trust);
  ck_assert_uint_eq(cs_tls_certs_reloads(certs), 2);

  cs_tls_certs_free(certs);
  cs_tls_trust_free(trust);
  const char *extra[] = {cert, key, ca, ca2, ca2_key, new_cert, new_key};
  for (size_t i = 0; i < 7; i++)
    unlink(extra[i]);
  tu_tls_cleanup(&t);
}
END_TEST

/* What an OpenSSL client saw of the server's certificate request. */
typedef struct cert_request_seen {
  int requests; /* certificate requests received */
  int ca_names; /* CA names in the last one */
} cert_request_seen;

static int note_cert_request(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
  (void)x509;
  (void)pkey;
  cert_request_seen *seen = SSL_get_app_data(ssl);
  seen->requests++;
  STACK_OF(X509_NAME) *names = SSL_get_client_CA_list(ssl);
  seen->ca_names = names ? sk_X509_NAME_num(names) : 0;
  return 0; /* present no certificate */
}

/* Runs a handshake with the given TLS version against S and reports the
 * certificate request the client received. */
static cert_request_seen cert_request_at(int version)
{
  cert_request_seen seen = {0, -1};
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  ck_assert_ptr_nonnull(ctx);
  SSL_CTX_set_min_proto_version(ctx, version);
  SSL_CTX_set_max_proto_version(ctx, version);
  SSL_CTX_set_client_cert_cb(ctx, note_cert_request);
  SSL *ssl = SSL_new(ctx);
  SSL_set_app_data(ssl, &seen);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)cs_server_port(S))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  SSL_set_fd(ssl, fd);
  ck_assert_int_eq(SSL_connect(ssl), 1);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return seen;
}

/* A renewed client CA is trusted without a restart, and the one it
 * replaced no longer is: cert-manager renews the CA in the Secret, then
 * kube-scheduler's client certificate from it. The certificate request
 * names no CA, since the name at start may no longer be the CA's and Go
 * clients present only a certificate whose issuer is named. */
START_TEST(test_server_mtls_follows_renewed_ca)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char ca[TU_TLS_PATH + 16], ca2[TU_TLS_PATH + 16], ca2_key[TU_TLS_PATH + 16],
      client2[TU_TLS_PATH + 16], client2_key[TU_TLS_PATH + 16];
  snprintf(ca, sizeof(ca), "%s/client-ca.crt", t.dir);
  snprintf(ca2, sizeof(ca2), "%s/ca2.crt", t.dir);
  snprintf(ca2_key, sizeof(ca2_key), "%s/ca2.key", t.dir);
  snprintf(client2, sizeof(client2), "%s/client2.crt", t.dir);
  snprintf(client2_key, sizeof(client2_key), "%s/client2.key", t.dir);
  replace_file(t.ca_cert, ca);
  ck_assert(tu_tls_write_cert(ca2, ca2_key, "renewed CA", NULL, NULL, true,
                              NULL, NULL, -60, 86400));
  ck_assert(tu_tls_write_cert(client2, client2_key, "kube-scheduler", NULL,
                              "clientAuth", false, ca2, ca2_key, -60, 86400));
  cs_server_opts o = base_opts();
  o.tls_cert_file = t.server_cert;
  o.tls_key_file = t.server_key;
  o.tls_client_ca_file = ca;
  o.tls_reload_check_ms = 20;
  S = start(&o);
  resp r;
  call old_client = {.path = "/filter",
                     .https = true,
                     .ca = t.ca_cert,
                     .cert = t.client_cert,
                     .key = t.client_key};
  call new_client = old_client;
  new_client.cert = client2;
  new_client.key = client2_key;
  do_call(NULL, cs_server_port(S), &old_client, &r);
  ck_assert_int_eq(r.status, 200);
  do_call(NULL, cs_server_port(S), &new_client, &r);
  ck_assert_int_eq(r.status, 403); /* not yet */
  ck_assert_msg(strstr(r.body, "issuer is unknown"), "%s", r.body);

  const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
  for (size_t i = 0; i < 2; i++) {
    cert_request_seen seen = cert_request_at(versions[i]);
    ck_assert_msg(seen.requests == 1, "version %d: %d certificate requests",
                  versions[i], seen.requests);
    ck_assert_msg(seen.ca_names == 0, "version %d: %d CA names", versions[i],
                  seen.ca_names);
  }

  replace_file(ca2, ca);
  usleep(50000);
  do_call(NULL, cs_server_port(S), &new_client, &r);
  ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
  do_call(NULL, cs_server_port(S), &old_client, &r);
  ck_assert_int_eq(r.status, 403);
  ck_assert(wait_logged("\"msg\":\"TLS client CA reloaded\""));

  /* A file that holds no certificate: the renewed CA stays in use. */
  replace_file(t.client_key, ca);
  usleep(50000);
  do_call(NULL, cs_server_port(S), &new_client, &r);
  ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
  ck_assert(wait_logged("Cannot reload the TLS client CA; the one in use "
                        "is kept"));
  ck_assert(wait_logged("holds no PEM certificate"));
  const char *extra[] = {ca, ca2, ca2_key, client2, client2_key};
  for (size_t i = 0; i < 5; i++)
    unlink(extra[i]);
  tu_tls_cleanup(&t);
}
END_TEST

static void *slow_client(void *arg)
{
  resp *r = arg;
  call c = {.path = "/filter", .body = "sleep please"};
  do_call(NULL, cs_server_port(S), &c, r);
  return NULL;
}

/* Starts a request that sleeps in the handler (H.sleep_ms) on thread *t
 * and returns once it is inside. */
static void start_slow_request(pthread_t *t, resp *r)
{
  pthread_create(t, NULL, slow_client, r);
  while (!atomic_load(&H.sleeping))
    usleep(1000);
}

/* 0 when a TCP connection to the port is accepted (and closed again), else
 * connect's errno. */
static int connect_errno(unsigned port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int e = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno;
  close(fd);
  return e;
}

START_TEST(test_server_shutdown_finishes_in_flight_request)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  unsigned port = cs_server_port(S);
  resp r;
  pthread_t t;
  start_slow_request(&t, &r);
  uint64_t t0 = cs_clock_mono_ns();
  ck_assert_int_eq(cs_server_shutdown(S, 5000), CS_OK);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  pthread_join(t, NULL);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_ptr_nonnull(strstr(r.body, "\"Len\":12"));
  ck_assert_str_eq(r.conn, "close");
  ck_assert_double_lt(secs, 3.0);
  /* No longer listening. */
  ck_assert_int_ne(connect_errno(port), 0);
  ck_assert_int_eq(cs_server_shutdown(S, 100), CS_OK); /* again: no-op */
  ck_assert_ptr_nonnull(strstr(logged(), "\"msg\":\"HTTP server stopped\""));
}
END_TEST

static void *shutdown_thread(void *arg)
{
  cs_err *rc = arg;
  *rc = cs_server_shutdown(S, 5000);
  return NULL;
}

START_TEST(test_server_shutdown_refuses_new_connections_while_draining)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  unsigned port = cs_server_port(S);
  resp r;
  pthread_t client, stopper;
  start_slow_request(&client, &r);
  cs_err rc = CS_EINTERNAL;
  pthread_create(&stopper, NULL, shutdown_thread, &rc);
  usleep(200000); /* the slow request keeps the server draining */
  /* A new connection is refused at once rather than parked in the
   * kernel's backlog until the server closes. */
  int e = connect_errno(port);
  ck_assert_msg(e == ECONNREFUSED, "connect during the drain: %s",
                e ? strerror(e) : "accepted");
  pthread_join(stopper, NULL);
  pthread_join(client, NULL);
  ck_assert_int_eq(rc, CS_OK);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.conn, "close");
}
END_TEST

START_TEST(test_server_shutdown_serves_kept_alive_connection_while_quiet)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  unsigned port = cs_server_port(S);
  CURL *h = curl_easy_init();
  call c = {.path = "/filter"};
  resp r;
  do_call(h, port, &c, &r);
  ck_assert_int_eq(r.status, 200);
  /* The stop begins while the connection is idle; a request sent on it
   * 200 ms later (a busy client, a throttled node) is still answered, on
   * the same connection, and told to close. */
  cs_err rc = CS_EINTERNAL;
  pthread_t stopper;
  uint64_t t0 = cs_clock_mono_ns();
  pthread_create(&stopper, NULL, shutdown_thread, &rc);
  usleep(200000);
  do_call(h, port, &c, &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_int_eq(r.new_conns, 0);
  ck_assert_str_eq(r.conn, "close");
  curl_easy_cleanup(h);
  pthread_join(stopper, NULL);
  ck_assert_int_eq(rc, CS_OK);
  /* With no connection left open the stop does not wait longer. */
  /* 0.2 s of drain, the wait's poll (0.1 s), 1 s for replies to go out;
   * without the cut the decision would wait for the client until
   * http.connectionTimeout (30 s). */
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs < 3.0 * tu_slowdown(), "the stop took %.2f s", secs);
}
END_TEST

START_TEST(test_server_shutdown_timeout_reported)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  atomic_store(&H.sleep_ms, 1500);
  resp r;
  pthread_t t;
  start_slow_request(&t, &r);
  uint64_t t0 = cs_clock_mono_ns();
  ck_assert_int_eq(cs_server_shutdown(S, 200), CS_ETIMEDOUT);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  pthread_join(t, NULL);
  /* A decision cannot be interrupted: the stop waits for it, and its
   * reply still goes out. */
  ck_assert_double_ge(secs, 1.2); /* well past the 0.2 s deadline */
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_ptr_nonnull(strstr(logged(), "\"inFlightAtDeadline\":1"));
  ck_assert_ptr_nonnull(strstr(logged(), "\"cutRequests\":0"));
}
END_TEST

/* A client whose body stops half-way keeps its request in flight: at the
 * deadline it is cut. */
START_TEST(test_server_shutdown_cuts_request_still_arriving)
{
  cs_server_opts o = base_opts();
  S = start(&o);
  int fd = raw_connect(cs_server_port(S));
  raw_send(fd, "POST /filter HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\nContent-Length: 100\r\n"
               "\r\n{\"half\":");
  usleep(100000);
  ck_assert_int_eq(cs_server_shutdown(S, 200), CS_ETIMEDOUT);
  ck_assert_ptr_nonnull(strstr(logged(), "\"inFlightAtDeadline\":1"));
  ck_assert_ptr_nonnull(strstr(logged(), "\"cutRequests\":1"));
  close(fd);
}
END_TEST

/* ---- parsing while receiving --------------------------------------------- */

/* n bytes of 'a'..'z' repeated, NUL-terminated, and their byte sum. */
static char *letters(size_t n, unsigned long *sum)
{
  char *b = cs_malloc(n + 1);
  *sum = 0;
  for (size_t i = 0; i < n; i++) {
    b[i] = (char)('a' + i % 26);
    *sum += (unsigned char)b[i];
  }
  b[n] = '\0';
  return b;
}

/* Opens a connection and sends the head of a POST of `len` body bytes; the
 * server closes the connection after its reply. */
static int stream_open(const char *path, size_t len)
{
  int fd = raw_connect(cs_server_port(S));
  char head[256];
  snprintf(head, sizeof(head),
           "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
           path, len);
  raw_send(fd, head);
  return fd;
}

/* Waits (up to 2 s) until the counter reaches n. */
static bool wait_count(atomic_int *c, int n)
{
  for (int i = 0; i < 200 * (int)tu_slowdown(); i++) {
    if (atomic_load(c) >= n)
      return true;
    usleep(10000);
  }
  return false;
}

/* Opens a request of n body bytes, sends the first MiB and waits for the
 * handler's `calls`-th call: the body is then being parsed as it arrives. */
static int stream_begin(const char *path, const char *body, size_t n, int calls)
{
  int fd = stream_open(path, n);
  ck_assert(raw_try_send(fd, body, 1u << 20));
  ck_assert_msg(wait_count(&H.calls, calls),
                "no decision before the body was in");
  return fd;
}

/* Sends the rest of the body and checks the handler saw all of it. */
static void stream_finish(int fd, const char *body, size_t from, size_t n,
                          unsigned long sum)
{
  ck_assert(raw_try_send(fd, body + from, n - from));
  static char reply[4096];
  bool closed;
  raw_read(fd, reply, sizeof(reply), 5000 * (int)tu_slowdown(), &closed);
  close(fd);
  ck_assert_msg(strstr(reply, "HTTP/1.1 200"), "reply: %s", reply);
  char want[64];
  snprintf(want, sizeof(want), "\"Len\":%zu,\"Sum\":%lu", n, sum);
  ck_assert_msg(strstr(reply, want), "wanted %s in %s", want, reply);
}

/* A server with two decision threads, so one body may be parsed as it
 * arrives (http.streamBodyBytes at its default), and room for 8 MiB. */
static void start_for_streams(size_t stream_body_bytes)
{
  cs_server_opts o = base_opts();
  o.max_body_bytes = 8u << 20;
  o.decision_threads = 2;
  o.stream_body_bytes = stream_body_bytes;
  S = start(&o);
}

/* A body of http.streamBodyBytes or more reaches the handler while it is
 * still arriving, through the feed, and whole in the end. */
START_TEST(test_server_large_body_parsed_while_arriving)
{
  start_for_streams(0);
  unsigned long sum;
  size_t n = 3u << 20;
  char *body = letters(n, &sum);
  /* Two thirds of the body are not even sent when the decision starts. */
  int fd = stream_begin("/prioritize", body, n, 1);
  ck_assert_int_eq(atomic_load(&H.fed), 1);
  ck_assert_int_eq(atomic_load(&H.returned), 0);
  stream_finish(fd, body, 1u << 20, n, sum);
  ck_assert_int_gt(atomic_load(&H.waits), 0);
  ck_assert_int_eq(atomic_load(&H.returned), 1);
  ck_assert(wait_logged("\"status\":200,"));
  ck_assert_ptr_nonnull(strstr(logged(), "\"streamed\":true"));
  free(body);
}
END_TEST

/* A client that goes away mid-body ends the decision reading it (the
 * sanitizer build checks nothing is used after it is freed), and the next
 * large body streams again: the slot was given back. */
START_TEST(test_server_stream_ends_when_client_goes)
{
  start_for_streams(0);
  unsigned long sum;
  size_t n = 4u << 20;
  char *body = letters(n, &sum);
  int fd = stream_begin("/filter", body, n, 1);
  close(fd);
  ck_assert_msg(wait_count(&H.returned, 1),
                "the decision still waits for a body whose client left");
  ck_assert(wait_logged("\"status\":0"));

  fd = stream_begin("/filter", body, n, 2);
  ck_assert_int_eq(atomic_load(&H.fed), 2);
  stream_finish(fd, body, 1u << 20, n, sum);
  free(body);
}
END_TEST

/* With two decision threads only one waits on a body at a time: a second
 * large body is read whole first, and a small request is still decided at
 * once while both are arriving. */
START_TEST(test_server_streams_leave_a_decision_thread)
{
  start_for_streams(0);
  unsigned long sum;
  size_t n = 3u << 20;
  char *body = letters(n, &sum);
  int a = stream_begin("/filter", body, n, 1);
  int b = stream_open("/filter", n);
  ck_assert(raw_try_send(b, body, 1u << 20));
  usleep(200000);
  ck_assert_int_eq(atomic_load(&H.calls), 1);
  resp *r = simple("POST", "/prioritize");
  ck_assert_int_eq(r->status, 200);
  ck_assert_int_eq(atomic_load(&H.calls), 2);
  stream_finish(b, body, 1u << 20, n, sum);
  stream_finish(a, body, 1u << 20, n, sum);
  ck_assert_int_eq(atomic_load(&H.fed), 1);
  ck_assert_int_eq(atomic_load(&H.returned), 3);
  free(body);
}
END_TEST

/* Below http.streamBodyBytes, or with streaming off (SIZE_MAX), a body is
 * decided once it is whole. */
START_TEST(test_server_stream_threshold_respected)
{
  static const size_t thresholds[] = {4u << 20, SIZE_MAX};
  unsigned long sum;
  size_t n = 3u << 20;
  char *body = letters(n, &sum);
  for (size_t i = 0; i < 2; i++) {
    start_for_streams(thresholds[i]);
    int fd = stream_open("/filter", n);
    ck_assert(raw_try_send(fd, body, 2u << 20));
    usleep(200000);
    /* No call for this body yet (the count is the earlier rounds'). */
    ck_assert_int_eq(atomic_load(&H.calls), (int)i);
    stream_finish(fd, body, 2u << 20, n, sum);
    ck_assert_int_eq(atomic_load(&H.fed), 0);
    cs_server_free(S);
    S = NULL;
  }
  ck_assert_ptr_null(strstr(logged(), "\"streamed\""));
  free(body);
}
END_TEST

/* Past the stop deadline a decision waiting for the rest of a body stops
 * waiting, so the stop is not held up by a client that stalls. */
START_TEST(test_server_shutdown_cuts_stream_still_arriving)
{
  start_for_streams(0);
  unsigned long sum;
  size_t n = 3u << 20;
  char *body = letters(n, &sum);
  int fd = stream_begin("/filter", body, n, 1);
  uint64_t t0 = cs_clock_mono_ns();
  ck_assert_int_eq(cs_server_shutdown(S, 200), CS_ETIMEDOUT);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs < 2.0 * tu_slowdown(), "the stop took %.2f s", secs);
  ck_assert_int_eq(atomic_load(&H.returned), 1);
  ck_assert_ptr_nonnull(strstr(logged(), "\"cutRequests\":1"));
  close(fd);
  free(body);
}
END_TEST

/* Clients racing the decisions parsing their bodies: each sends large
 * bodies in pieces and, by a fixed pseudo-random plan, either finishes one
 * or leaves at some point; every other body starts with "quit", so its
 * decision ends before the body does. Every finished body gets its reply
 * (whole for the others); no decision is left behind, and the sanitizer
 * build checks the hand-over between connection and decision. */
typedef struct racer {
  int id;
  const char *body, *quit;
  size_t n;
  unsigned long sum;
  int finished, left;
} racer;

static void *race(void *arg)
{
  racer *r = arg;
  uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(r->id + 1);
  for (int round = 0; round < 6; round++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const char *body = round % 2 ? r->quit : r->body;
    int fd = stream_open(round % 2 ? "/filter" : "/prioritize", r->n);
    size_t cut = (size_t)(x % r->n);
    bool leave = x % 3 == 0;
    size_t at = 0;
    while (at < (leave ? cut : r->n)) {
      size_t step = 64u << 10;
      size_t end = leave ? cut : r->n;
      if (step > end - at)
        step = end - at;
      if (!raw_try_send(fd, body + at, step))
        break;
      at += step;
      if ((x >> (round + 8)) & 1)
        usleep(200);
    }
    if (leave) {
      close(fd);
      r->left++;
      continue;
    }
    static _Thread_local char reply[4096];
    bool closed;
    raw_read(fd, reply, sizeof(reply), 10000 * (int)tu_slowdown(), &closed);
    close(fd);
    char want[64];
    snprintf(want, sizeof(want), "\"Len\":%zu,\"Sum\":%lu", r->n, r->sum);
    if (strstr(reply, "HTTP/1.1 200") &&
        (body == r->quit || strstr(reply, want)))
      r->finished++;
  }
  return NULL;
}

START_TEST(test_server_streams_race_clients_that_leave)
{
  enum { RACERS = 6 };
  cs_server_opts o = base_opts();
  o.max_body_bytes = 8u << 20;
  o.decision_threads = 3; /* two bodies parsed as they arrive at once */
  S = start(&o);
  unsigned long sum;
  size_t n = (1u << 20) + 4099;
  char *body = letters(n, &sum);
  char *quit = cs_strdup(body);
  memcpy(quit, "quit", 4);
  racer rs[RACERS];
  pthread_t ts[RACERS];
  for (int i = 0; i < RACERS; i++) {
    rs[i] = (racer){.id = i, .body = body, .quit = quit, .n = n, .sum = sum};
    pthread_create(&ts[i], NULL, race, &rs[i]);
  }
  int finished = 0, left = 0;
  for (int i = 0; i < RACERS; i++) {
    pthread_join(ts[i], NULL);
    finished += rs[i].finished;
    left += rs[i].left;
  }
  ck_assert_int_eq(finished + left, RACERS * 6);
  ck_assert_int_gt(left, 0);
  ck_assert_int_gt(atomic_load(&H.fed), 0);
  /* Every decision has ended, and the server still answers. */
  ck_assert_msg(wait_count(&H.returned, atomic_load(&H.calls)),
                "%d decisions of %d still running",
                atomic_load(&H.calls) - atomic_load(&H.returned),
                atomic_load(&H.calls));
  resp *r = simple("POST", "/prioritize");
  ck_assert_int_eq(r->status, 200);
  free(quit);
  free(body);
}
END_TEST

static void *sleepy_client(void *arg)
{
  resp *r = arg;
  call c = {.path = "/prioritize", .body = "sleep too"};
  do_call(NULL, cs_server_port(S), &c, r);
  return NULL;
}

/* With one decision thread: a request in the handler (on t1) and a second
 * one waiting in the queue (on t2). */
static void start_running_and_queued(pthread_t *t1, resp *r1, pthread_t *t2,
                                     resp *r2)
{
  start_slow_request(t1, r1);
  pthread_create(t2, NULL, sleepy_client, r2);
  for (int i = 0; i < 2000 && gauge_queued() < 1; i++)
    usleep(1000);
  ck_assert_double_eq(gauge_queued(), 1);
}

/* Decisions run on their own threads: with one connection thread and one
 * decision thread both taken by a long decision, a probe is answered at
 * once, a second extender request waits in the queue (and the gauge says
 * so), and it is answered when its turn comes. */
START_TEST(test_server_decision_does_not_block_connection_threads)
{
  cs_server_opts o = base_opts();
  o.threads = 1;
  o.decision_threads = 1;
  S = start(&o);
  atomic_store(&H.sleep_ms, 1000);
  resp r1, r2;
  pthread_t t1, t2;
  start_running_and_queued(&t1, &r1, &t2, &r2);
  uint64_t t0 = cs_clock_mono_ns();
  resp *h = simple("GET", "/healthz");
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_int_eq(h->status, 200);
  ck_assert_msg(secs < 0.3 * tu_slowdown(), "/healthz took %.3f s", secs);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  ck_assert_int_eq(r1.status, 200);
  ck_assert_int_eq(r2.status, 200);
  ck_assert_ptr_nonnull(strstr(r2.body, "\"Verb\":\"prioritize\""));
  ck_assert_double_eq(gauge_queued(), 0);
}
END_TEST

/* A client of the gone-client test: plain or over TLS (gone_ca). */
static const char *gone_ca;
typedef struct gone_call {
  const char *body;
  long timeout_ms;
  resp r;
} gone_call;
static void *gone_client(void *arg)
{
  gone_call *g = arg;
  call c = {.path = "/filter",
            .body = g->body,
            .timeout_ms = g->timeout_ms,
            .https = gone_ca != NULL,
            .ca = gone_ca};
  do_call(NULL, cs_server_port(S), &c, &g->r);
  return NULL;
}

/* A call whose client gave up while its decision was queued (as
 * kube-scheduler does after its httpTimeout) is not decided: the handler
 * is not run for it, and the log says so. Over plain HTTP (_i 0) and TLS. */
START_TEST(test_server_queued_decision_of_gone_client_skipped)
{
  tu_tls t;
  cs_server_opts o = base_opts();
  gone_ca = NULL;
  if (_i) {
    o = https_opts(&t, false);
    gone_ca = t.ca_cert;
  }
  o.decision_threads = 1;
  S = start(&o);
  atomic_store(&H.sleep_ms, 800);
  gone_call slow = {.body = "sleep please"},
            gone = {.body = "{}", .timeout_ms = 300};
  pthread_t t1, t2;
  pthread_create(&t1, NULL, gone_client, &slow);
  while (!atomic_load(&H.sleeping))
    usleep(1000);
  pthread_create(&t2, NULL, gone_client, &gone);
  pthread_join(t2, NULL);
  ck_assert_int_eq(gone.r.cc, CURLE_OPERATION_TIMEDOUT);
  pthread_join(t1, NULL);
  ck_assert_int_eq(slow.r.status, 200);
  /* The slow call ran; the given-up one is skipped once its turn comes. */
  for (int i = 0; i < 2000 && !strstr(logged(), "\"msg\":\"Decision skipped\"");
       i++)
    usleep(1000);
  ck_assert_msg(strstr(logged(), "\"msg\":\"Decision skipped\""), "%s",
                logged());
  ck_assert_int_eq(atomic_load(&H.calls), 1);
  double skipped = 0;
  ck_assert_int_eq(cs_metrics_get(M, "carbonshift_http_skipped_decisions_total",
                                  NULL, &skipped),
                   CS_OK);
  ck_assert_double_eq(skipped, 1);
  gone_call next = {.body = "{}"}; /* and the server goes on */
  gone_client(&next);
  ck_assert_int_eq(next.r.status, 200);
  ck_assert_int_eq(atomic_load(&H.calls), 2);
  if (_i)
    tu_tls_cleanup(&t);
}
END_TEST

/* At the deadline, a decision still queued is answered 503, not cut. */
START_TEST(test_server_shutdown_answers_queued_decision_503)
{
  cs_server_opts o = base_opts();
  o.decision_threads = 1;
  S = start(&o);
  atomic_store(&H.sleep_ms, 800);
  resp r1, r2;
  pthread_t t1, t2;
  start_running_and_queued(&t1, &r1, &t2, &r2);
  ck_assert_int_eq(cs_server_shutdown(S, 100), CS_ETIMEDOUT);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  ck_assert_int_eq(r1.status, 200);
  ck_assert_int_eq(r2.status, 503);
  ck_assert_ptr_nonnull(strstr(r2.body, "shutting down"));
  ck_assert_int_eq(H.calls, 1);
  ck_assert_ptr_nonnull(strstr(logged(), "\"cutRequests\":0"));
}
END_TEST

START_TEST(test_server_many_concurrent_connections_answered)
{
  enum { N = 200 };
  cs_server_opts o = base_opts();
  S = start(&o);
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  CURL *h[N];
  resp *r = cs_calloc(N, sizeof(*r));
  struct curl_slist *hdrs[N];
  call c = {.path = "/prioritize"};
  for (int i = 0; i < N; i++) {
    h[i] = curl_easy_init();
    prepare(h[i], cs_server_port(S), &c, &r[i], &hdrs[i]);
    curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 20000L);
    curl_multi_add_handle(multi, h[i]);
  }
  int running = 1;
  while (running) {
    curl_multi_perform(multi, &running);
    if (running)
      curl_multi_poll(multi, NULL, 0, 100, NULL);
  }
  int ok = 0;
  long conns = 0;
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left)))
    ck_assert_msg(msg->data.result == CURLE_OK, "%s",
                  curl_easy_strerror(msg->data.result));
  for (int i = 0; i < N; i++) {
    finish(h[i], &r[i]);
    ok += r[i].status == 200;
    conns += r[i].new_conns;
    curl_multi_remove_handle(multi, h[i]);
    curl_easy_cleanup(h[i]);
    curl_slist_free_all(hdrs[i]);
  }
  curl_multi_cleanup(multi);
  free(r);
  ck_assert_int_eq(ok, N);
  ck_assert_int_eq(atomic_load(&H.calls), N);
  ck_assert_int_ge(conns, N / 2); /* really concurrent connections */
}
END_TEST

START_TEST(test_server_connection_limit_refuses_extra)
{
  cs_server_opts o = base_opts();
  o.threads = 1;
  o.max_connections = 4;
  S = start(&o);
  int fds[4];
  for (int i = 0; i < 4; i++)
    fds[i] = raw_connect(cs_server_port(S));
  double open = 0;
  for (int i = 0; i < 200 && open < 4; i++) {
    usleep(10000);
    open = gauge_open();
  }
  ck_assert_double_eq(open, 4);
  /* The fifth waits in the backlog: the client times out. */
  call c = {.path = "/filter", .timeout_ms = 500};
  resp r;
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.cc, CURLE_OPERATION_TIMEDOUT);
  ck_assert_int_eq(r.status, 0);
  ck_assert(wait_logged("\"msg\":\"HTTP connection limit reached\""));
  c.timeout_ms = 0;
  close(fds[0]);
  for (int i = 0; i < 200 && open > 3; i++) {
    usleep(10000);
    open = gauge_open();
  }
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.status, 200);
  for (int i = 1; i < 4; i++)
    close(fds[i]);
}
END_TEST

/* A probe on port `port`: GET (or `method`) of `path`, plain HTTP. */
static void probe_call(unsigned port, const char *method, const char *path,
                       resp *r)
{
  call c = {
      .method = method ? method : "GET", .path = path, .timeout_ms = 2000};
  do_call(NULL, port, &c, r);
}

/* The failure the probe listener exists for: with the main listener at
 * http.maxConnections, a kubelet probe there waits in the backlog and
 * times out, so liveness would restart a healthy service. On the probe
 * listener it is answered; nothing but the probes is. */
START_TEST(test_server_probe_listener_answers_at_connection_limit)
{
  cs_server_opts o = base_opts();
  o.threads = 1;
  o.max_connections = 2;
  o.probe_listen = "127.0.0.1:0";
  S = start(&o);
  unsigned probe = cs_server_probe_port(S);
  ck_assert_uint_gt(probe, 0);
  ck_assert_uint_ne(probe, cs_server_port(S));
  int fds[2];
  for (int i = 0; i < 2; i++)
    fds[i] = raw_connect(cs_server_port(S));
  double open = 0;
  for (int i = 0; i < 200 && open < 2; i++) {
    usleep(10000);
    open = gauge_open();
  }
  ck_assert_double_eq(open, 2);
  resp r;
  call c = {.method = "GET", .path = "/healthz", .timeout_ms = 500};
  do_call(NULL, cs_server_port(S), &c, &r);
  ck_assert_int_eq(r.cc, CURLE_OPERATION_TIMEDOUT);

  probe_call(probe, NULL, "/healthz", &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
  probe_call(probe, NULL, "/readyz/", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"ready\""));
  atomic_store(&H.ready, false);
  probe_call(probe, "HEAD", "/readyz", &r);
  ck_assert_int_eq(r.status, 503);
  /* Probe connections are not the main listener's. */
  ck_assert_double_eq(gauge_open(), 2);

  probe_call(probe, "POST", "/filter", &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_ptr_nonnull(strstr(r.body, "probe listener (http.probeListen)"));
  probe_call(probe, NULL, "/metrics", &r);
  ck_assert_int_eq(r.status, 404);
  probe_call(probe, "POST", "/healthz", &r);
  ck_assert_int_eq(r.status, 405);
  ck_assert_str_eq(r.allow, "GET, HEAD");
  ck_assert_int_eq(H.calls, 0);
  ck_assert(
      wait_metric("carbonshift_http_requests_total", "healthz", "200", 1));
  ck_assert(wait_metric("carbonshift_http_requests_total", "other", "404", 2));
  for (int i = 0; i < 2; i++)
    close(fds[i]);
  ck_assert_ptr_nonnull(strstr(logged(), "\"probePort\":"));
}
END_TEST

/* A head trickled to the probe listener a byte at a time is cut after
 * CS_SERVER_PROBE_IDLE_TIMEOUT_S, so slow clients cannot keep its 64
 * connections from the kubelet. */
START_TEST(test_server_probe_listener_cuts_slow_heads)
{
  cs_server_opts o = base_opts();
  o.probe_listen = "127.0.0.1:0";
  S = start(&o);
  double secs =
      trickle_on(cs_server_probe_port(S), "GET /healthz HTTP/1.1\r\n", "X", 12);
  ck_assert_msg(secs >= CS_SERVER_PROBE_IDLE_TIMEOUT_S - 0.5 &&
                    secs < CS_SERVER_PROBE_IDLE_TIMEOUT_S + 3.0 * tu_slowdown(),
                "a slow probe head was cut after %.2f s", secs);
  ck_assert(wait_logged("idle on the probe listener (http.probeListen); "
                        "connection closed"));
  resp r;
  probe_call(cs_server_probe_port(S), NULL, "/healthz", &r);
  ck_assert_int_eq(r.status, 200);
}
END_TEST

/* The probe listener is plain HTTP whatever the main listener's TLS: the
 * kubelet presents no client certificate. */
START_TEST(test_server_probe_listener_is_plain_http_beside_mtls)
{
  tu_tls t;
  cs_server_opts o = https_opts(&t, true);
  o.probe_listen = "127.0.0.1:0";
  S = start(&o);
  resp r;
  probe_call(cs_server_probe_port(S), NULL, "/healthz", &r);
  ck_assert_msg(r.cc == CURLE_OK, "%s", r.errbuf);
  ck_assert_int_eq(r.status, 200);
  tu_tls_cleanup(&t);
}
END_TEST

/* During the graceful stop the probe listener keeps answering, /readyz
 * with 503, so the kubelet sees the pod going rather than gone; probes do
 * not count as requests the stop waits for. Then it closes too. */
START_TEST(test_server_probe_listener_readyz_503_while_draining)
{
  cs_server_opts o = base_opts();
  o.probe_listen = "127.0.0.1:0";
  S = start(&o);
  unsigned probe = cs_server_probe_port(S);
  /* The slow request keeps the stop draining well past the probes. */
  atomic_store(&H.sleep_ms, 2500); /* within shutdown_thread's 5 s */
  resp slow, r;
  pthread_t client, stopper;
  start_slow_request(&client, &slow);
  cs_err rc = CS_EINTERNAL;
  pthread_create(&stopper, NULL, shutdown_thread, &rc);
  for (int i = 0; i < 100; i++) {
    probe_call(probe, NULL, "/readyz", &r);
    if (r.status != 200)
      break;
    usleep(10000);
  }
  ck_assert_int_eq(r.status, 503);
  ck_assert_ptr_nonnull(strstr(r.body, "shutting down"));
  probe_call(probe, NULL, "/healthz", &r);
  ck_assert_int_eq(r.status, 200);
  pthread_join(stopper, NULL);
  pthread_join(client, NULL);
  ck_assert_int_eq(rc, CS_OK);
  ck_assert_int_eq(slow.status, 200);
  ck_assert_int_ne(connect_errno(probe), 0);
}
END_TEST

START_TEST(test_server_new_reports_bad_options)
{
  cs_server_handler h = {&H, th_handle, th_ready};
  char err[256];
  cs_server *s = (cs_server *)1;
  cs_server_opts o = base_opts();

  o.listen = "127.0.0.1";
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(err, "listen address \"127.0.0.1\""));
  o.listen = "::1:80";
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "brackets"));
  o.listen = "127.0.0.1:70000";
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "0..65535"));
  o.listen = "127.0.0.1:0";
  o.probe_listen = "127.0.0.1";
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_ptr_nonnull(strstr(err, "http.probeListen: listen address"));
  o.probe_listen = NULL;
  o.listen = "example.com:80";
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "not a numeric IP address"));

  /* A port in use. */
  S = start(&(cs_server_opts){.listen = "127.0.0.1:0", .threads = 1});
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", cs_server_port(S));
  o.listen = addr;
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EIO);
  char want[96];
  snprintf(want, sizeof(want), "cannot listen on %s: Address already in use",
           addr);
  ck_assert_str_eq(err, want);

  o.listen = "127.0.0.1:0";
  o.tls_cert_file = "/nonexistent/server.crt";
  o.tls_key_file = "/nonexistent/server.key";
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EIO);
  ck_assert_str_eq(err, "cannot read TLS certificate /nonexistent/server.crt: "
                        "No such file or directory");
  o.tls_key_file = NULL;
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "only one was given"));

  tu_tls t;
  ck_assert(tu_tls_make(&t));
  o.tls_cert_file = t.server_cert;
  o.tls_key_file = t.client_key; /* not the certificate's key */
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "not a usable PEM pair"));
  o.tls_key_file = t.server_key;
  o.tls_client_ca_file = t.server_key; /* a key, not a certificate */
  ck_assert_int_eq(cs_server_new(&o, &h, M, &s, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "holds no PEM certificate"));
  tu_tls_cleanup(&t);
}
END_TEST

START_TEST(test_server_new_listens_on_ipv6_loopback)
{
  cs_server_opts o = base_opts();
  o.listen = "[::1]:0";
  S = start(&o);
  char url[64];
  snprintf(url, sizeof(url), "http://[::1]:%u/healthz", cs_server_port(S));
  CURL *h = curl_easy_init();
  resp r = {0};
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  CURLcode cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(h);
  if (cc == CURLE_COULDNT_CONNECT)
    return; /* no IPv6 loopback in this sandbox */
  ck_assert_int_eq(cc, CURLE_OK);
  ck_assert_int_eq(r.status, 200);
}
END_TEST

static int count_fds(void)
{
  int n = 0;
  char p[64];
  for (int fd = 0; fd < 4096; fd++) {
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
    n += access(p, F_OK) == 0;
  }
  return n;
}

START_TEST(test_server_free_releases_sockets)
{
  int before = count_fds();
  cs_server_opts o = base_opts();
  cs_server *s = start(&o);
  simple_on(s);
  cs_server_free(s); /* without shutdown */
  ck_assert_int_eq(count_fds(), before);
  s = start(&o);
  simple_on(s);
  ck_assert_int_eq(cs_server_shutdown(s, 1000), CS_OK);
  cs_server_free(s);
  ck_assert_int_eq(count_fds(), before);
}
END_TEST

/* Makes sure this (forked) test may open `need` descriptors, raising the
 * soft limit up to the hard one. */
static void need_fds(rlim_t need)
{
  struct rlimit rl;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur >= need)
    return;
  ck_assert_msg(rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need,
                "this test needs %llu file descriptors; the hard limit is "
                "%llu (raise it with ulimit -Hn)",
                (unsigned long long)need, (unsigned long long)rl.rlim_max);
  rl.rlim_cur = need;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void wait_open(double want, int timeout_ms)
{
  for (int i = 0; i < timeout_ms / 10 && gauge_open() != want; i++)
    usleep(10000);
  ck_assert_double_eq(gauge_open(), want);
}

/* A raw HTTP/1.1 exchange in progress on one of many sockets. */
typedef struct pending {
  int fd;
  char buf[1024];
  size_t got;
  bool done;
} pending;

/* True once p holds a whole reply (the head and Content-Length bytes). */
static bool reply_complete(const pending *p)
{
  const char *end = strstr(p->buf, "\r\n\r\n");
  const char *cl = strcasestr(p->buf, "\r\nContent-Length:");
  if (!end || !cl || cl > end)
    return false;
  size_t want = (size_t)strtoul(cl + 17, NULL, 10);
  return p->got >= (size_t)(end + 4 - p->buf) + want;
}

/* Reads the replies on every socket at once, until each is complete or
 * closed, or timeout_ms pass. */
static void read_replies(pending *ps, size_t n, int timeout_ms)
{
  struct pollfd *pf = cs_calloc(n, sizeof(*pf));
  uint64_t end = cs_clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (!ps[i].done)
        pf[k++] = (struct pollfd){ps[i].fd, POLLIN, 0};
    if (!k || cs_clock_mono_ns() >= end)
      break;
    if (poll(pf, k, 100) <= 0)
      continue;
    for (size_t j = 0; j < k; j++) {
      if (!pf[j].revents)
        continue;
      pending *p = NULL;
      for (size_t i = 0; i < n && !p; i++)
        if (ps[i].fd == pf[j].fd)
          p = &ps[i];
      ssize_t r = recv(p->fd, p->buf + p->got, sizeof(p->buf) - 1 - p->got, 0);
      if (r <= 0) {
        p->done = true;
        continue;
      }
      p->got += (size_t)r;
      p->buf[p->got] = '\0';
      p->done = reply_complete(p) || p->got + 1 == sizeof(p->buf);
    }
  }
  free(pf);
}

/* Sends req on every connection at once and reads the replies; returns
 * how many are a complete 200 with the handler's answer ("Len":2). */
static int round_trip(pending *ps, int n, const char *req, int timeout_ms)
{
  for (int i = 0; i < n; i++) {
    ps[i].got = 0;
    ps[i].buf[0] = '\0';
    ps[i].done = false;
    raw_send(ps[i].fd, req);
  }
  read_replies(ps, (size_t)n, timeout_ms);
  int ok = 0;
  for (int i = 0; i < n; i++) {
    bool good = strncmp(ps[i].buf, "HTTP/1.1 200", 12) == 0 &&
                reply_complete(&ps[i]) && strstr(ps[i].buf, "\"Len\":2");
    if (!good && ok == i)
      fprintf(stderr, "connection %d got: %.200s\n", i, ps[i].buf);
    ok += good;
  }
  return ok;
}

START_TEST(test_server_thousand_concurrent_connections_answered)
{
  enum { N = 1000 };
  /* Both ends of every connection live in this process. */
  need_fds(2 * N + 256);
  cs_server_opts o = base_opts(); /* the default limit of 1024 */
  o.connection_timeout_s = 60;
  S = start(&o);
  pending *ps = cs_calloc(N, sizeof(*ps));
  for (int i = 0; i < N; i++)
    ps[i].fd = raw_connect(cs_server_port(S));
  /* All 1,000 are open at once before any sends a request. */
  wait_open(N, 10000);
  static const char req[] = "POST /prioritize HTTP/1.1\r\nHost: x\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}";
  ck_assert_int_eq(round_trip(ps, N, req, 20000), N);
  /* The same connections, kept alive, at once again: each request is
   * served when it arrives, not when the idle timeout would fire (with
   * libmicrohttpd's epoll loop, a hundred or more connections becoming
   * ready together left some unserved until then). */
  uint64_t t0 = cs_clock_mono_ns();
  ck_assert_int_eq(round_trip(ps, N, req, 20000), N);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs < 10.0, "the second round took %.1f s", secs);
  ck_assert_int_eq(atomic_load(&H.calls), 2 * N);
  for (int i = 0; i < N; i++)
    close(ps[i].fd);
  free(ps);
  /* Closed connections are noticed at once too. */
  wait_open(0, 5000);
}
END_TEST

START_TEST(test_server_slow_clients_do_not_block_others)
{
  enum { SLOW = 60, ROUNDS = 30 };
  cs_server_opts o = base_opts(); /* two threads */
  o.connection_timeout_s = 2;
  o.request_timeout_ms = 1000;
  S = start(&o);
  unsigned port = cs_server_port(S);
  /* Three kinds of slow client: connected and silent; trickling a request
   * head one byte at a time; a head sent, then the body one byte at a
   * time. */
  int fd[SLOW];
  for (int i = 0; i < SLOW; i++) {
    fd[i] = raw_connect(port);
    if (i % 3 == 1)
      raw_send(fd[i], "POST /filter HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    else if (i % 3 == 2)
      raw_send(fd[i], "POST /filter HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: 1000\r\n\r\n{");
  }
  wait_open(SLOW, 5000);
  /* Meanwhile ordinary requests are answered at once. */
  double worst = 0;
  CURL *h = curl_easy_init();
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < SLOW; i++)
      if (i % 3)
        (void)raw_try_send(fd[i], " ", 1);
    call c = {.path = "/prioritize", .timeout_ms = 2000};
    resp rs;
    uint64_t t0 = cs_clock_mono_ns();
    do_call(r % 2 ? h : NULL, port, &c, &rs);
    double ms = (double)(cs_clock_mono_ns() - t0) / 1e6;
    worst = ms > worst ? ms : worst;
    ck_assert_msg(rs.cc == CURLE_OK && rs.status == 200,
                  "round %d: %s (status %ld)", r, rs.errbuf, rs.status);
    usleep(100000);
  }
  curl_easy_cleanup(h);
  ck_assert_msg(worst < 1000, "an ordinary request waited %.0f ms", worst);
  ck_assert_int_eq(atomic_load(&H.calls), ROUNDS);
  /* After 3 s the silent ones were closed by http.connectionTimeout and
   * the slow bodies cut by http.requestTimeout; the server answered none
   * of them with a reply. */
  for (int i = 0; i < SLOW; i++) {
    if (i % 3 == 1)
      continue;
    char b[512];
    bool closed;
    raw_read(fd[i], b, sizeof(b), 3000, &closed);
    ck_assert_msg(closed, "slow client %d (kind %d) still open", i, i % 3);
    ck_assert_msg(i % 3 == 2 || b[0] == '\0', "client %d got: %s", i, b);
  }
  for (int i = 0; i < SLOW; i++)
    close(fd[i]);
  ck_assert_msg(
      wait_metric("carbonshift_http_requests_total", "filter", "408", SLOW / 3),
      "408s counted: %g",
      metric("carbonshift_http_requests_total", "filter", "408"));
  wait_open(0, 5000);
}
END_TEST

/* The first flight of a TLS client (a ClientHello record), made by OpenSSL
 * into memory. */
static unsigned char *client_hello(size_t *n)
{
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  ck_assert_ptr_nonnull(ctx);
  SSL *ssl = SSL_new(ctx);
  BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rb, wb);
  SSL_set_tlsext_host_name(ssl, "localhost");
  ck_assert_int_eq(SSL_connect(ssl), -1);
  ck_assert_int_eq(SSL_get_error(ssl, -1), SSL_ERROR_WANT_READ);
  char *p;
  long len = BIO_get_mem_data(wb, &p);
  ck_assert_int_gt(len, 64);
  ck_assert_int_eq((unsigned char)p[0], 0x16); /* a handshake record */
  unsigned char *out = cs_malloc((size_t)len);
  memcpy(out, p, (size_t)len);
  *n = (size_t)len;
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

START_TEST(test_server_truncated_tls_handshakes_do_not_block_others)
{
  enum { K = 40 };
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  cs_server_opts o = base_opts();
  o.tls_cert_file = t.server_cert;
  o.tls_key_file = t.server_key;
  /* Under valgrind a complete handshake alone takes about a second. */
  unsigned idle = tu_slowdown() > 1 ? 10 : 1;
  o.connection_timeout_s = idle;
  S = start(&o);
  unsigned port = cs_server_port(S);
  int fds_before = count_fds();
  size_t hn;
  unsigned char *hello = client_hello(&hn);
  /* Four kinds: half a ClientHello, then close at once; half, then stall;
   * only 3 bytes of the record header, then stall; the whole ClientHello
   * and never reading the server's answer. */
  int fd[K];
  for (int i = 0; i < K; i++) {
    fd[i] = raw_connect(port);
    size_t part = i % 4 == 2 ? 3 : i % 4 == 3 ? hn : hn / 2;
    ck_assert(raw_try_send(fd[i], hello, part));
    if (i % 4 == 0) {
      close(fd[i]);
      fd[i] = -1;
    }
  }
  free(hello);
  /* Complete clients are served meanwhile. */
  for (int r = 0; r < 5; r++) {
    call c = {.path = "/filter", .https = true, .ca = t.ca_cert};
    resp rs;
    do_call(NULL, port, &c, &rs);
    ck_assert_msg(rs.cc == CURLE_OK && rs.status == 200, "%s", rs.errbuf);
  }
  /* The stalled ones are closed by http.connectionTimeout. */
  uint64_t t0 = cs_clock_mono_ns();
  for (int i = 0; i < K; i++) {
    if (fd[i] < 0)
      continue;
    char b[8192];
    bool closed;
    raw_read(fd[i], b, sizeof(b), (int)(idle * 5000), &closed);
    ck_assert_msg(closed, "stalled handshake %d (kind %d) still open", i,
                  i % 4);
    close(fd[i]);
  }
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs < 4.0 * idle, "stalled handshakes lasted %.1f s", secs);
  ck_assert_int_eq(atomic_load(&H.calls), 5);
  /* Nothing is left behind: no connection, no descriptor. */
  wait_open(0, 5000);
  ck_assert_int_eq(count_fds(), fds_before);
  tu_tls_cleanup(&t);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("http");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_server_threads_follow_affinity);
  tcase_add_test(tc, test_server_filter_replies_with_handler_body);
  tcase_add_test(tc, test_server_filter_large_body_arrives_whole);
  tcase_add_test(tc, test_server_reply_in_pieces_arrives_whole);
  tcase_add_test(tc, test_server_route_prefix_and_trailing_slashes);
  tcase_add_test(tc, test_server_unknown_path_404_json);
  tcase_add_test(tc, test_server_wrong_method_405_with_allow);
  tcase_add_test(tc, test_server_decision_400_reason_in_access_line);
  tcase_add_test(tc, test_server_non_json_content_type_415);
  tcase_add_test(tc, test_server_declared_length_over_cap_413_unread);
  tcase_add_test(tc, test_server_chunked_body_over_cap_stops_reading);
  tcase_add_test(tc, test_server_slow_body_over_request_timeout_closed);
  tcase_add_test(tc, test_server_oversized_headers_refused);
  tcase_add_test(tc, test_server_slow_head_cut_at_header_timeout);
  tcase_add_test(tc,
                 test_server_header_timeout_spares_busy_and_reused_connections);
  tcase_add_test(tc, test_server_healthz_and_readyz);
  tcase_add_test(tc, test_server_metrics_count_requests);
  tcase_add_test(tc, test_server_shutdown_finishes_in_flight_request);
  tcase_add_test(tc,
                 test_server_shutdown_refuses_new_connections_while_draining);
  tcase_add_test(tc,
                 test_server_shutdown_serves_kept_alive_connection_while_quiet);
  tcase_add_test(tc, test_server_shutdown_timeout_reported);
  tcase_add_test(tc, test_server_shutdown_cuts_request_still_arriving);
  tcase_add_test(tc, test_server_large_body_parsed_while_arriving);
  tcase_add_test(tc, test_server_stream_ends_when_client_goes);
  tcase_add_test(tc, test_server_streams_leave_a_decision_thread);
  tcase_add_test(tc, test_server_stream_threshold_respected);
  tcase_add_test(tc, test_server_shutdown_cuts_stream_still_arriving);
  tcase_add_test(tc, test_server_streams_race_clients_that_leave);
  tcase_add_test(tc, test_server_decision_does_not_block_connection_threads);
  tcase_add_loop_test(tc, test_server_queued_decision_of_gone_client_skipped, 0,
                      2);
  tcase_add_test(tc, test_server_shutdown_answers_queued_decision_503);
  tcase_add_test(tc, test_server_many_concurrent_connections_answered);
  tcase_add_test(tc, test_server_connection_limit_refuses_extra);
  tcase_add_test(tc, test_server_probe_listener_answers_at_connection_limit);
  tcase_add_test(tc, test_server_probe_listener_cuts_slow_heads);
  tcase_add_test(tc, test_server_probe_listener_readyz_503_while_draining);
  tcase_add_test(tc, test_server_new_reports_bad_options);
  tcase_add_test(tc, test_server_new_listens_on_ipv6_loopback);
  tcase_add_test(tc, test_server_free_releases_sockets);
  tcase_add_test(tc, test_server_thousand_concurrent_connections_answered);
  tcase_add_test(tc, test_server_slow_clients_do_not_block_others);
  suite_add_tcase(s, tc);
  TCase *tls = tcase_create("tls");
  tcase_set_timeout(tls, 60);
  tcase_add_checked_fixture(tls, setup, teardown);
  tcase_add_test(tls, test_server_https_with_server_cert);
  tcase_add_test(tls, test_server_mtls_client_cert_checked);
  tcase_add_test(tls, test_server_tls_below_1_2_refused);
  tcase_add_test(tls, test_server_tls_reloads_renewed_certificate);
  tcase_add_test(tls, test_server_tls_reload_retried_after_passing_failure);
  tcase_add_test(tls, test_server_probe_listener_is_plain_http_beside_mtls);
  tcase_add_test(tls, test_server_mtls_follows_renewed_ca);
  tcase_add_test(tls, test_server_truncated_tls_handshakes_do_not_block_others);
  suite_add_tcase(s, tls);
  return s;
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  curl_global_cleanup();
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
