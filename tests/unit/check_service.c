/* The real binary, called the way kube-scheduler calls an extender: the
 * shared fixtures POSTed with libcurl (Content-Type: application/json, 5 s
 * timeout, keep-alive) over plain HTTP, HTTPS and mTLS, on a free port. */
#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/fake_kube.h"
#include "tests/unit/testutil.h"
#include "tests/unit/tls_testutil.h"

typedef struct service {
  pid_t pid;
  int out; /* the service's stdout (and stderr when collecting) */
  char base[64];
  /* Collecting: a thread reads everything the service writes into `log`,
   * so the service never blocks on the pipe and tests can search it. */
  bool collecting;
  pthread_t reader;
  pthread_mutex_t mu;
  cs_buf log;
} service;

static void *read_log(void *arg)
{
  service *s = arg;
  char buf[65536];
  ssize_t r;
  while ((r = read(s->out, buf, sizeof(buf))) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    pthread_mutex_lock(&s->mu);
    cs_buf_append(&s->log, buf, (size_t)r);
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* Forks `carbonshift serve --listen 127.0.0.1:0 flags...` with the
 * NAME=VALUE entries of env added; *out reads its stdout (and stderr when
 * both). */
static pid_t spawn(const char *const *flags, const char *const *env, bool both,
                   int *out)
{
  const char *bin = getenv("CS_BIN");
  ck_assert_msg(bin && access(bin, X_OK) == 0,
                "CS_BIN must name the built carbonshift binary (make unit "
                "sets it)");
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    if (both)
      dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    const char *argv[24] = {bin, "serve", "--listen", "127.0.0.1:0"};
    int n = 4;
    for (int i = 0; flags && flags[i] && n < 22; i++)
      argv[n++] = flags[i];
    argv[n] = NULL;
    /* No API server unless the test names one: names-only nodes are
     * neutral, no Events. */
    setenv("CARBONSHIFT_KUBE_MODE", "off", 1);
    for (int i = 0; env && env[i]; i++)
      putenv((char *)env[i]);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  *out = fds[0];
  return pid;
}

/* Starts `carbonshift serve` with extra flags and NAME=VALUE environment
 * entries on 127.0.0.1:0 and reads the bound port from its "Serving" log
 * line. collect: also capture stderr, and keep all output in s->log. */
static void start_with(service *s, const char *scheme, const char *const *flags,
                       const char *const *env, bool collect)
{
  memset(s, 0, sizeof(*s));
  s->collecting = collect;
  cs_buf_init(&s->log, 64u << 20);
  s->pid = spawn(flags, env, collect, &s->out);
  static char buf[1 << 16];
  size_t len = 0;
  /* Under valgrind the binary takes seconds to start. */
  int tries = getenv("CS_VALGRIND") ? 600 : 100;
  for (int waited = 0; waited < tries; waited++) {
    struct pollfd p = {.fd = s->out, .events = POLLIN};
    if (poll(&p, 1, 100) > 0) {
      ssize_t r = read(s->out, buf + len, sizeof(buf) - 1 - len);
      ck_assert_msg(r > 0, "carbonshift exited; it printed: %s", buf);
      len += (size_t)r;
      buf[len] = '\0';
      const char *line = strstr(buf, "\"msg\":\"Serving\"");
      const char *at = line ? strstr(line, "\"listen\":\"127.0.0.1:") : NULL;
      if (at && strchr(at, '\n')) {
        long port = strtol(at + strlen("\"listen\":\"127.0.0.1:"), NULL, 10);
        snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%ld", scheme, port);
        if (collect) {
          pthread_mutex_init(&s->mu, NULL);
          cs_buf_append(&s->log, buf, len);
          ck_assert_int_eq(pthread_create(&s->reader, NULL, read_log, s), 0);
        } else {
          /* Keep draining the log so the service never blocks on a full
           * pipe. */
          fcntl(s->out, F_SETFL, O_NONBLOCK);
        }
        return;
      }
    }
  }
  ck_abort_msg("carbonshift did not report serving; it printed: %s", buf);
}

static void start(service *s, const char *scheme, const char *const *flags)
{
  start_with(s, scheme, flags, NULL, false);
}

/* Waits (up to 10 s, more under valgrind) for a collecting service to exit
 * after a signal; returns its exit status (-1: killed by a signal). The
 * whole output is in s->log afterwards. */
static int wait_exit(service *s)
{
  int status = 0, tries = getenv("CS_VALGRIND") ? 1200 : 200;
  for (int i = 0; i < tries; i++) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      pthread_join(s->reader, NULL);
      close(s->out);
      pthread_mutex_destroy(&s->mu);
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    usleep(50000);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &status, 0);
  ck_abort_msg("carbonshift did not exit");
  return -1;
}

static void drain(service *s)
{
  char buf[65536];
  while (read(s->out, buf, sizeof(buf)) > 0)
    ;
}

static void stop(service *s)
{
  drain(s);
  kill(s->pid, SIGTERM);
  int status;
  for (int i = 0; i < 100; i++) {
    drain(s);
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      close(s->out);
      cs_buf_free(&s->log);
      ck_assert(WIFEXITED(status));
      ck_assert_int_eq(WEXITSTATUS(status), 0);
      return;
    }
    usleep(50000);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &status, 0);
  ck_abort_msg("carbonshift did not stop on SIGTERM");
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
  cs_buf_append(ud, p, size * n);
  return size * n;
}

typedef struct tls_opts {
  const char *ca, *cert, *key;
} tls_opts;

/* POSTs body to base/path like kube-scheduler; returns the status and the
 * reply in *out. */
static long post(const service *s, const char *path, const char *body,
                 size_t len, const tls_opts *tls, cs_buf *out, CURLcode *cc)
{
  CURL *h = curl_easy_init();
  char url[128];
  snprintf(url, sizeof(url), "%s%s", s->base, path);
  struct curl_slist *hdr =
      curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  if (tls) {
    curl_easy_setopt(h, CURLOPT_CAINFO, tls->ca);
    if (tls->cert) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert);
      curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key);
    }
  }
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (cc)
    *cc = rc;
  else
    ck_assert_msg(rc == CURLE_OK, "POST %s: %s", url, curl_easy_strerror(rc));
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  return status;
}

static cJSON *post_fixture(const service *s, const char *path,
                           const char *fixture, const tls_opts *tls)
{
  size_t len;
  char *body = tu_read_shared(fixture, &len);
  cs_buf out;
  cs_buf_init(&out, 0);
  ck_assert_int_eq(post(s, path, body, len, tls, &out, NULL), 200);
  cJSON *doc = cJSON_ParseWithLength(out.data, out.len);
  ck_assert_msg(doc != NULL, "reply is not JSON: %.200s", out.data);
  cs_buf_free(&out);
  free(body);
  return doc;
}

static int score(const cJSON *list, const char *host)
{
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
  {
    if (strcmp(cJSON_GetObjectItem(e, "Host")->valuestring, host) == 0) {
      const cJSON *sc = cJSON_GetObjectItem(e, "Score");
      ck_assert(cJSON_IsNumber(sc) && sc->valuedouble == sc->valueint);
      ck_assert(sc->valueint >= 0 && sc->valueint <= 10);
      return sc->valueint;
    }
  }
  ck_abort_msg("no score for %s", host);
  return -1;
}

/* The acceptance checks of issue 2 on one running service. */
static void exercise(const service *s, const tls_opts *tls)
{
  cJSON *list = post_fixture(
      s, "/prioritize", "fixtures/extender/prioritize-nodes.request.json", tls);
  ck_assert_int_eq(cJSON_GetArraySize(list), 4);
  int h100 = score(list, "gpu-h100-fra-01"),
      a100 = score(list, "gpu-a100-fra-02"),
      v100 = score(list, "gpu-v100-osl-01"), l4 = score(list, "gpu-l4-mad-01");
  ck_assert_int_gt(v100, h100);
  ck_assert_int_gt(v100, a100);
  ck_assert_int_gt(l4, h100);
  ck_assert_int_gt(l4, a100);
  ck_assert_int_gt(h100, a100);
  cJSON_Delete(list);

  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  cJSON *in = cJSON_ParseWithLength(body, len);
  free(body);
  cJSON *out = post_fixture(s, "/filter",
                            "fixtures/extender/filter-nodes.request.json", tls);
  /* The fixture pod was created 2026-11-20 with 12 h of slack: by now its
   * slack is spent, so it is placed, and every Node comes back unchanged. */
  ck_assert(cJSON_Compare(cJSON_GetObjectItem(in, "Nodes"),
                          cJSON_GetObjectItem(out, "Nodes"), 1));
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(out, "NodeNames")));
  cJSON_Delete(in);
  cJSON_Delete(out);

  out = post_fixture(s, "/filter",
                     "fixtures/extender/filter-names.request.json", tls);
  ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(out, "NodeNames")),
                   4);
  cJSON_Delete(out);

  list =
      post_fixture(s, "/prioritize",
                   "fixtures/extender/prioritize-plain-pod.request.json", tls);
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
      ck_assert_int_eq(cJSON_GetObjectItem(e, "Score")->valueint, 5);
  cJSON_Delete(list);

  cs_buf reply;
  cs_buf_init(&reply, 0);
  const char *bad = "{\"Pod\":{},\"NodeNames\":[\"a\",]}";
  ck_assert_int_eq(post(s, "/filter", bad, strlen(bad), tls, &reply, NULL),
                   400);
  cJSON *err = cJSON_ParseWithLength(reply.data, reply.len);
  ck_assert_ptr_nonnull(err);
  ck_assert_ptr_nonnull(
      strstr(cJSON_GetObjectItem(err, "Error")->valuestring, "not valid JSON"));
  cJSON_Delete(err);
  cs_buf_free(&reply);
}

START_TEST(test_service_http_fixtures)
{
  service s;
  start(&s, "http", NULL);
  exercise(&s, NULL);

  /* /metrics counts what was decided. */
  CURL *h = curl_easy_init();
  cs_buf m;
  cs_buf_init(&m, 0);
  char url[128];
  snprintf(url, sizeof(url), "%s/metrics", s.base);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
  curl_easy_cleanup(h);
  ck_assert_ptr_nonnull(
      strstr(m.data, "carbonshift_decisions_total{verb=\"prioritize\",outcome="
                     "\"ranked\"} 1\n"));
  ck_assert_ptr_nonnull(
      strstr(m.data, "carbonshift_decisions_total{verb=\"filter\",outcome="
                     "\"badRequest\"} 1\n"));
  ck_assert_ptr_nonnull(
      strstr(m.data, "carbonshift_zone_intensity_gco2_per_kwh{zone=\"NO\","));
  cs_buf_free(&m);
  stop(&s);
}
END_TEST

START_TEST(test_service_https_and_mtls_fixtures)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  const char *https[] = {"--tls-cert", t.server_cert, "--tls-key", t.server_key,
                         NULL};
  service s;
  start(&s, "https", https);
  tls_opts server_only = {t.ca_cert, NULL, NULL};
  exercise(&s, &server_only);
  stop(&s);

  const char *mtls[] = {"--tls-cert", t.server_cert,     "--tls-key",
                        t.server_key, "--tls-client-ca", t.ca_cert,
                        NULL};
  start(&s, "https", mtls);
  tls_opts client = {t.ca_cert, t.client_cert, t.client_key};
  exercise(&s, &client);
  /* A client without a certificate is refused. */
  cs_buf reply;
  cs_buf_init(&reply, 0);
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-names.request.json", &len);
  CURLcode cc;
  long status = post(&s, "/filter", body, len, &server_only, &reply, &cc);
  ck_assert_msg(cc != CURLE_OK || status == 403,
                "a client without a certificate got %ld", status);
  free(body);
  cs_buf_free(&reply);
  stop(&s);
  tu_tls_cleanup(&t);
}
END_TEST

/* ---- SIGTERM under load ---------------------------------------------- */

/* One client of the load: a keep-alive connection POSTing the prioritize
 * fixture back to back, reconnecting after "Connection: close", until a
 * connection is refused. Raw sockets, so nothing retries behind the
 * test's back. */
typedef struct loader {
  unsigned port;
  const char *body;
  size_t len;
  atomic_bool *signalled;
  int answered;     /* complete 200 replies with the 4 scores */
  int after_signal; /* of them, sent after SIGTERM */
  int closes;       /* replies that said Connection: close */
  int cut;          /* requests sent and never (fully) answered */
  int bad;          /* complete replies that were not a good answer */
  char why[256];    /* the first cut or bad reply */
} loader;

static int tcp_connect(unsigned port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

/* Reads one reply into b; false when the connection ended first. */
static bool read_reply(int fd, cs_buf *b, size_t *head_len, size_t *body_len)
{
  b->len = 0;
  for (;;) {
    if (b->len) {
      b->data[b->len] = '\0';
      const char *end = strstr(b->data, "\r\n\r\n");
      const char *cl = strcasestr(b->data, "\r\nContent-Length:");
      if (end && cl && cl < end) {
        *head_len = (size_t)(end + 4 - b->data);
        *body_len = (size_t)strtoul(cl + 17, NULL, 10);
        if (b->len >= *head_len + *body_len)
          return true;
      }
    }
    char chunk[16384];
    ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
    if (r <= 0)
      return false;
    cs_buf_append(b, chunk, (size_t)r);
    cs_buf_putc(b, '\0');
    b->len--;
  }
}

static void *load(void *arg)
{
  loader *l = arg;
  char *head = cs_asprintf("POST /prioritize HTTP/1.1\r\nHost: carbonshift\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: %zu\r\n\r\n",
                           l->len);
  cs_buf b;
  cs_buf_init(&b, 1u << 20);
  int fd = -1, n_on_conn = 0;
  for (;;) {
    if (fd < 0) {
      if ((fd = tcp_connect(l->port)) < 0)
        break; /* refused: the service stopped listening */
      n_on_conn = 0;
    }
    bool after = atomic_load(l->signalled);
    size_t hl = 0, bl = 0;
    if (!send_all(fd, head, strlen(head)) || !send_all(fd, l->body, l->len) ||
        !read_reply(fd, &b, &hl, &bl)) {
      if (!l->cut++)
        snprintf(l->why, sizeof(l->why),
                 "request %d cut (%s) after %d replies on this connection "
                 "and %d closes, %zu bytes of its reply read",
                 l->answered + 1, strerror(errno), n_on_conn, l->closes, b.len);
      break;
    }
    cJSON *doc = cJSON_ParseWithLength(b.data + hl, bl);
    bool good = strncmp(b.data, "HTTP/1.1 200 ", 13) == 0 &&
                cJSON_GetArraySize(doc) == 4;
    cJSON_Delete(doc);
    if (!good && !l->bad++ && !l->cut)
      snprintf(l->why, sizeof(l->why), "bad reply: %.200s", b.data);
    l->answered += good;
    n_on_conn++;
    l->after_signal += good && after;
    if (strcasestr(b.data, "\r\nConnection: close\r\n")) {
      l->closes++;
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0)
    close(fd);
  cs_buf_free(&b);
  free(head);
  return NULL;
}

START_TEST(test_service_sigterm_under_load_answers_every_request)
{
  enum { CLIENTS = 16 };
  service s;
  start_with(&s, "http", NULL, NULL, true);
  unsigned port = (unsigned)strtoul(strrchr(s.base, ':') + 1, NULL, 10);
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/prioritize-nodes.request.json", &len);
  atomic_bool signalled = false;
  loader l[CLIENTS];
  pthread_t t[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    l[i] = (loader){
        .port = port, .body = body, .len = len, .signalled = &signalled};
    ck_assert_int_eq(pthread_create(&t[i], NULL, load, &l[i]), 0);
  }
  /* Let the load build up, then stop the service in the middle of it. */
  int before = 0;
  for (int i = 0; i < 200 && before < 50 * CLIENTS; i++) {
    usleep(10000);
    before = 0;
    for (int k = 0; k < CLIENTS; k++)
      before += l[k].answered;
  }
  uint64_t t0 = cs_clock_mono_ns();
  atomic_store(&signalled, true);
  ck_assert_int_eq(kill(s.pid, SIGTERM), 0);
  for (int i = 0; i < CLIENTS; i++)
    pthread_join(t[i], NULL);
  int status = wait_exit(&s);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  free(body);

  int answered = 0, after = 0, closes = 0;
  for (int i = 0; i < CLIENTS; i++) {
    ck_assert_msg(!l[i].cut && !l[i].bad, "client %d: %s", i, l[i].why);
    answered += l[i].answered;
    after += l[i].after_signal;
    closes += l[i].closes;
  }
  fprintf(stderr,
          "sigterm under load: %d clients, %d answered (%d sent after "
          "SIGTERM), stopped %.2f s after the signal\n",
          CLIENTS, answered, after, secs);
  ck_assert_msg(status == 0, "exit status %d; output:\n%s", status, s.log.data);
  /* The signal really came under load: every connection had a request
   * in flight or on its way during the stop, answered with "Connection:
   * close"; reconnecting after that was refused, not left hanging. */
  ck_assert_int_eq(closes, CLIENTS);
  ck_assert_int_gt(answered, before);
  ck_assert_ptr_nonnull(strstr(s.log.data, "\"msg\":\"HTTP server stopped\""));
  ck_assert_ptr_nonnull(strstr(s.log.data, "\"cutRequests\":0"));
  ck_assert_ptr_nonnull(strstr(s.log.data, "\"msg\":\"Stopped\""));
  cs_buf_free(&s.log);
}
END_TEST

/* ---- secrets ----------------------------------------------------------- */

/* Runs `carbonshift serve flags...` to its end; all it wrote to stdout and
 * stderr goes to *out. Returns the exit status. */
static int run_to_exit(const char *const *flags, const char *const *env,
                       cs_buf *out)
{
  int fd;
  pid_t pid = spawn(flags, env, true, &fd);
  char buf[65536];
  ssize_t r;
  while ((r = read(fd, buf, sizeof(buf))) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    ck_assert_int_gt(r, 0);
    cs_buf_append(out, buf, (size_t)r);
  }
  close(fd);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *base64(const char *in)
{
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(in);
  cs_buf b;
  cs_buf_init(&b, 0);
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < n)
      v |= (unsigned char)in[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)in[i + 2];
    cs_buf_putc(&b, a[(v >> 18) & 63]);
    cs_buf_putc(&b, a[(v >> 12) & 63]);
    cs_buf_putc(&b, i + 1 < n ? a[(v >> 6) & 63] : '=');
    cs_buf_putc(&b, i + 2 < n ? a[v & 63] : '=');
  }
  return cs_buf_release(&b, NULL);
}

static char *write_secret(const char *dir, const char *name, const char *text)
{
  char *path = cs_asprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "%s\n", text); /* a trailing newline, as mounted Secrets have */
  fclose(f);
  return path;
}

/* Every API request is refused, as with a revoked token. */
static void kube_unauthorized(void *ud, const fk_request *rq, size_t index,
                              fk_reply *out)
{
  out->status = 401;
  out->body = cs_strdup("{\"kind\":\"Status\",\"code\":401,\"message\":"
                        "\"Unauthorized\"}");
}

/* Fails the test when any secret occurs in text (what, for the message). */
static void assert_no_secret(const char *text, const char *what,
                             const char *const *secrets)
{
  for (size_t i = 0; secrets[i]; i++)
    ck_assert_msg(!strstr(text, secrets[i]),
                  "secret %zu (%s) appears in %s:\n%.4000s", i, secrets[i],
                  what, strstr(text, secrets[i]));
}

static void get(const service *s, const char *path, cs_buf *out)
{
  CURL *h = curl_easy_init();
  char url[128];
  snprintf(url, sizeof(url), "%s%s", s->base, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
  curl_easy_cleanup(h);
}

/* The binary's --probe-listen: a plain-HTTP port beside the mTLS one that
 * answers the kubelet's probes without a certificate; the Serving line
 * gives its bound port. */
START_TEST(test_service_probe_listener_beside_mtls)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  const char *flags[] = {"--tls-cert",     t.server_cert,     "--tls-key",
                         t.server_key,     "--tls-client-ca", t.ca_cert,
                         "--probe-listen", "127.0.0.1:0",     NULL};
  service s;
  start_with(&s, "https", flags, NULL, true);
  const char *key = "\"probeListen\":\"127.0.0.1:";
  pthread_mutex_lock(&s.mu);
  const char *serving = strstr(s.log.data, "\"msg\":\"Serving\"");
  const char *at = serving ? strstr(serving, key) : NULL;
  long port = at ? strtol(at + strlen(key), NULL, 10) : 0;
  pthread_mutex_unlock(&s.mu);
  ck_assert_int_gt(port, 0);
  service probe;
  memset(&probe, 0, sizeof(probe));
  snprintf(probe.base, sizeof(probe.base), "http://127.0.0.1:%ld", port);
  cs_buf body;
  cs_buf_init(&body, 0);
  get(&probe, "/readyz", &body);
  ck_assert_msg(strstr(body.data, "\"status\":\"ready\""), "%s", body.data);
  cs_buf_free(&body);
  kill(s.pid, SIGTERM);
  ck_assert_int_eq(wait_exit(&s), 0);
  cs_buf_free(&s.log);
  tu_tls_cleanup(&t);
}
END_TEST

/* Waits (up to 5 s, more under valgrind) for a collecting service to log
 * `text`. */
static bool logged_soon(service *s, const char *text)
{
  int tries = getenv("CS_VALGRIND") ? 300 : 100;
  for (int i = 0; i < tries; i++) {
    pthread_mutex_lock(&s->mu);
    bool seen = s->log.len && strstr(s->log.data, text);
    pthread_mutex_unlock(&s->mu);
    if (seen)
      return true;
    usleep(50000);
  }
  return false;
}

/* SIGHUP starts the graceful stop, as SIGTERM does: its default action
 * would cut the requests in flight. A second SIGHUP does not hurry it (a
 * closing terminal sends two); a SIGINT or SIGTERM then ends the process
 * at once, with exit status 1. A request whose body never completes keeps
 * the stop waiting (for up to its 30 s grace period). */
START_TEST(test_service_sighup_stops_gracefully_second_signal_at_once)
{
  /* SIGHUP at its default action, inherited through fork and exec, as a
   * container runtime starts the service; whatever this suite came with
   * (under nohup it is ignored, and so the service leaves it:
   * test_service_sighup_ignored_under_nohup). */
  signal(SIGHUP, SIG_DFL);
  const char *flags[] = {"--set", "shutdownGracePeriod=30s", NULL};
  service s;
  start_with(&s, "http", flags, NULL, true);
  unsigned port = (unsigned)strtoul(strrchr(s.base, ':') + 1, NULL, 10);
  int fd = tcp_connect(port);
  const char head[] = "POST /filter HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: 100\r\n\r\n{";
  ck_assert(send_all(fd, head, sizeof(head) - 1));
  usleep(200000);
  kill(s.pid, SIGHUP);
  ck_assert(logged_soon(&s, "\"msg\":\"Shutting down\",\"signal\":\"SIGHUP\""));
  usleep(200000);
  kill(s.pid, SIGHUP);
  usleep(500000);
  int status;
  ck_assert_int_eq(waitpid(s.pid, &status, WNOHANG), 0); /* still draining */
  uint64_t t0 = cs_clock_mono_ns();
  kill(s.pid, SIGINT);
  ck_assert_int_eq(wait_exit(&s), 1);
  ck_assert_double_lt((double)(cs_clock_mono_ns() - t0) / 1e9,
                      getenv("CS_VALGRIND") ? 20.0 : 5.0);
  ck_assert_ptr_nonnull(strstr(s.log.data,
                               "\"msg\":\"Second signal, stopping at once\","
                               "\"signal\":\"SIGINT\""));
  close(fd);
  cs_buf_free(&s.log);
}
END_TEST

/* A WattTime login whose signal is not the one ranked is fetched for
 * nothing: the start says so (and says nothing once they agree). */
START_TEST(test_service_watttime_signal_mismatch_logged)
{
  const char *env[] = {"CARBONSHIFT_WATTTIME_PASSWORD=p", NULL};
  const char *moer[] = {"--set", "watttime.username=u", "--set",
                        "watttime.url=http://127.0.0.1:9", NULL};
  service s;
  start_with(&s, "http", moer, env, true);
  ck_assert(logged_soon(&s, "\"msg\":\"WattTime's signal is not the one "
                            "ranked\",\"watttimeSignalType\":\"co2_moer\","
                            "\"rankingSignal\":\"average\""));
  kill(s.pid, SIGTERM);
  ck_assert_int_eq(wait_exit(&s), 0);
  cs_buf_free(&s.log);
  const char *aoer[] = {"--set", "watttime.username=u",
                        "--set", "watttime.url=http://127.0.0.1:9",
                        "--set", "watttime.signalType=co2_aoer",
                        NULL};
  start_with(&s, "http", aoer, env, true);
  kill(s.pid, SIGTERM);
  ck_assert_int_eq(wait_exit(&s), 0);
  ck_assert_ptr_null(strstr(s.log.data, "WattTime's signal"));
  cs_buf_free(&s.log);
}
END_TEST

/* Started with SIGHUP ignored (nohup), the service keeps running on it. */
START_TEST(test_service_sighup_ignored_under_nohup)
{
  signal(SIGHUP, SIG_IGN); /* inherited through fork and exec */
  service s;
  start_with(&s, "http", NULL, NULL, true);
  kill(s.pid, SIGHUP);
  usleep(500000);
  int status;
  ck_assert_int_eq(waitpid(s.pid, &status, WNOHANG), 0);
  pthread_mutex_lock(&s.mu);
  ck_assert_ptr_null(strstr(s.log.data, "Shutting down"));
  pthread_mutex_unlock(&s.mu);
  kill(s.pid, SIGTERM);
  ck_assert_int_eq(wait_exit(&s), 0);
  cs_buf_free(&s.log);
}
END_TEST

START_TEST(test_service_secrets_never_in_output)
{
  /* A provider token from the environment, a password from a mounted
   * file, the token WattTime hands out at login, and a service-account
   * token file in the kubeconfig: all in use, all refused by the fake
   * servers, so every error path that could quote them runs. */
  static const char em_token[] = "em-tok-7b1f0c2e9d4a4b6f8e21";
  static const char wt_password[] = "wt-pw-c0ffee-91a7d3e5";
  static const char wt_issued[] = "wt-issued-5e8d2c71b94a";
  static const char sa_token[] = "sa-tok-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0";
  static const char flag_secret[] = "flag-pw-4d9c1e77a3";
  char dir[] = "/tmp/check_service.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *pw_file = write_secret(dir, "wt-password", wt_password);
  char *sa_file = write_secret(dir, "sa-token", sa_token);

  fh_server *prov = fh_start();
  /* Some APIs quote the credential they refuse. */
  char *refuse_em =
      cs_asprintf("{\"message\":\"Invalid auth-token %s\"}", em_token);
  fh_set(prov, "/v3/carbon-intensity/latest",
         (fh_reply){.status = 401, .body = refuse_em});
  fh_set(prov, "/v3/carbon-intensity/forecast",
         (fh_reply){.status = 401, .body = refuse_em});
  fh_set(prov, "/v3/carbon-intensity/history",
         (fh_reply){.status = 401, .body = refuse_em});
  char *login = cs_asprintf("{\"token\":\"%s\"}", wt_issued);
  fh_set(prov, "/login", (fh_reply){.body = login});
  char *refuse_wt = cs_asprintf("{\"error\":\"token %s expired\"}", wt_issued);
  fh_set(prov, "/v3/forecast", (fh_reply){.status = 401, .body = refuse_wt});
  fh_set(prov, "/v3/region-from-loc",
         (fh_reply){.status = 401, .body = "{\"error\":\"token expired\"}"});
  fk_server *api = fk_start(kube_unauthorized, NULL);
  char *kubeconfig = cs_asprintf(
      "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
      "clusters:\n- name: c\n  cluster:\n    server: %s\n"
      "contexts:\n- name: t\n  context:\n    cluster: c\n    user: sa\n"
      "users:\n- name: sa\n  user:\n    tokenFile: %s\n",
      fk_url(api), sa_file);
  char *kc_file = write_secret(dir, "kubeconfig", kubeconfig);

  char *e_em_url =
      cs_asprintf("CARBONSHIFT_ELECTRICITYMAPS_URL=%s/v3", fh_url(prov));
  char *e_em_tok =
      cs_asprintf("CARBONSHIFT_ELECTRICITYMAPS_TOKEN=%s", em_token);
  char *e_wt_url = cs_asprintf("CARBONSHIFT_WATTTIME_URL=%s", fh_url(prov));
  char *e_wt_pw = cs_asprintf("CARBONSHIFT_WATTTIME_PASSWORD_FILE=%s", pw_file);
  char *e_kc = cs_asprintf("CARBONSHIFT_KUBE_KUBECONFIG=%s", kc_file);
  const char *env[] = {
      e_em_url, e_em_tok,
      e_wt_url, "CARBONSHIFT_WATTTIME_USERNAME=carbonshift-test",
      e_wt_pw,  "CARBONSHIFT_KUBE_MODE=kubeconfig",
      e_kc,     "CARBONSHIFT_CARBON_REFRESH_INTERVAL=10s",
      NULL};
  char *user_pw = cs_asprintf("carbonshift-test:%s", wt_password);
  char *basic = base64(user_pw);
  const char *secrets[] = {em_token, wt_password, wt_issued, sa_token,
                           basic,    flag_secret, NULL};

  /* The running service, at the highest verbosity. */
  service s;
  const char *flags[] = {"-v", "10", NULL};
  start_with(&s, "http", flags, env, true);
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/prioritize-nodes.request.json", &len);
  cs_buf replies;
  cs_buf_init(&replies, 0);
  post(&s, "/prioritize", body, len, NULL, &replies, NULL);
  free(body);
  /* Every secret reached the server it is for, and was refused. */
  int waited = 0;
  while (waited++ < 100 * (int)tu_slowdown() &&
         (fh_hits(prov, "/v3/carbon-intensity/latest") < 1 ||
          fh_hits(prov, "/login") < 2 || fk_count(api) < 2))
    usleep(100000);
  char *em_seen =
      fh_last_header(prov, "/v3/carbon-intensity/latest", "auth-token");
  char *wt_seen = fh_last_header(prov, "/login", "Authorization");
  ck_assert_msg(em_seen && !strcmp(em_seen, em_token), "auth-token: %s",
                em_seen ? em_seen : "(none)");
  char *want_basic = cs_asprintf("Basic %s", basic);
  ck_assert_msg(wt_seen && !strcmp(wt_seen, want_basic), "Authorization: %s",
                wt_seen ? wt_seen : "(none)");
  ck_assert_uint_ge(fk_count(api), 2);
  char *want_bearer = cs_asprintf("Bearer %s", sa_token);
  ck_assert_str_eq(fk_get(api, 0)->auth, want_bearer);
  char *wt_data = fh_last_header(prov, "/v3/forecast", "Authorization");
  if (!wt_data)
    wt_data = fh_last_header(prov, "/v3/region-from-loc", "Authorization");
  char *want_issued = cs_asprintf("Bearer %s", wt_issued);
  ck_assert_msg(wt_data && !strcmp(wt_data, want_issued), "WattTime data: %s",
                wt_data ? wt_data : "(none)");
  /* What an operator or a scraper can read. */
  get(&s, "/metrics", &replies);
  get(&s, "/readyz", &replies);
  cs_buf_putc(&replies, '\0');
  assert_no_secret(replies.data, "the HTTP replies", secrets);
  kill(s.pid, SIGTERM);
  ck_assert_int_eq(wait_exit(&s), 0);
  cs_buf_putc(&s.log, '\0');
  /* The errors were logged (so the test looked at real error lines). */
  ck_assert_ptr_nonnull(strstr(s.log.data, "401"));
  assert_no_secret(s.log.data, "the service's logs", secrets);
  cs_buf_free(&s.log);

  /* --print-config lists the secrets' settings, redacted. */
  cs_buf out;
  cs_buf_init(&out, 0);
  const char *print[] = {"--print-config", NULL};
  ck_assert_int_eq(run_to_exit(print, env, &out), 0);
  cs_buf_putc(&out, '\0');
  ck_assert_ptr_nonnull(strstr(out.data, "\"electricitymaps.token\""));
  ck_assert_ptr_nonnull(strstr(out.data, "<redacted>"));
  assert_no_secret(out.data, "--print-config", secrets);

  /* A bad configuration: a secret given as a flag is refused without
   * being echoed, next to other errors. */
  out.len = 0;
  char *set = cs_asprintf("watttime.password=%s", flag_secret);
  const char *bad[] = {"--set", set, "--set", "http.threads=-3", NULL};
  ck_assert_int_eq(run_to_exit(bad, env, &out), 2);
  cs_buf_putc(&out, '\0');
  ck_assert_ptr_nonnull(strstr(out.data, "watttime.password"));
  assert_no_secret(out.data, "the configuration errors", secrets);

  cs_buf_free(&out);
  cs_buf_free(&replies);
  fh_stop(prov);
  fk_stop(api);
  char *rm = cs_asprintf("rm -rf '%s'", dir);
  ck_assert_int_eq(system(rm), 0);
  free(rm);
  free(set);
  free(em_seen);
  free(wt_seen);
  free(wt_data);
  free(want_basic);
  free(want_bearer);
  free(want_issued);
  free(user_pw);
  free(basic);
  free(e_em_url);
  free(e_em_tok);
  free(e_wt_url);
  free(e_wt_pw);
  free(e_kc);
  free(kc_file);
  free(kubeconfig);
  free(login);
  free(refuse_em);
  free(refuse_wt);
  free(pw_file);
  free(sa_file);
}
END_TEST

/* Answers the Node list with no Nodes, and holds every watch open. */
static void kube_no_nodes(void *ud, const fk_request *rq, size_t index,
                          fk_reply *out)
{
  char *watch = fk_param(rq, "watch");
  out->end = FK_END_HOLD;
  if (watch)
    fk_reply_line(out, cs_strdup("{\"type\":\"BOOKMARK\",\"object\":{"
                                 "\"kind\":\"Node\",\"metadata\":{"
                                 "\"resourceVersion\":\"2\"}}}"));
  else
    out->body = cs_strdup("{\"kind\":\"NodeList\",\"metadata\":{"
                          "\"resourceVersion\":\"1\"},\"items\":[]}");
  free(watch);
}

/* A kubeconfig naming `api` as the server, written in a fresh temporary
 * folder (dir has room for its name); returns the environment entry
 * CARBONSHIFT_KUBE_KUBECONFIG=<file> (caller frees; unlink and rmdir with
 * kubeconfig_remove). */
static char *kubeconfig_env(fk_server *api, char *dir)
{
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *text = cs_asprintf("current-context: t\n"
                           "clusters: [{name: c, cluster: {server: '%s'}}]\n"
                           "contexts: [{name: t, context: {cluster: c}}]\n",
                           fk_url(api));
  char *file = write_secret(dir, "kubeconfig", text);
  char *env = cs_asprintf("CARBONSHIFT_KUBE_KUBECONFIG=%s", file);
  free(text);
  free(file);
  return env;
}

static void kubeconfig_remove(const char *dir, char *env)
{
  unlink(strchr(env, '=') + 1);
  rmdir(dir);
  free(env);
}

/* Fails when two messages of the log differ only by case: a filter on one
 * (jq 'select(.msg == ...)') would silently miss the other. */
static void assert_messages_distinct(const char *log)
{
  static const char key[] = "\"msg\":\"";
  char seen[64][96];
  size_t n = 0;
  for (const char *p = log; (p = strstr(p, key)) != NULL && n < 64;) {
    p += strlen(key);
    size_t len = strcspn(p, "\"");
    char msg[96];
    snprintf(msg, sizeof(msg), "%.*s", (int)len, p);
    bool known = false;
    for (size_t i = 0; i < n && !known; i++) {
      ck_assert_msg(strcmp(seen[i], msg) == 0 || strcasecmp(seen[i], msg) != 0,
                    "log messages \"%s\" and \"%s\" differ only by case",
                    seen[i], msg);
      known = strcmp(seen[i], msg) == 0;
    }
    if (!known)
      memcpy(seen[n++], msg, sizeof(msg));
  }
}

/* kube.mode=auto in a Pod (KUBERNETES_SERVICE_HOST set, no service-account
 * files) with kube.kubeconfig set: the kubeconfig wins, as in client-go. */
START_TEST(test_service_kube_auto_prefers_kubeconfig)
{
  char dir[] = "/tmp/check_service.XXXXXX";
  fk_server *api = fk_start(kube_no_nodes, NULL);
  char *e_kc = kubeconfig_env(api, dir);
  const char *env[] = {"CARBONSHIFT_KUBE_MODE=auto", e_kc,
                       "KUBERNETES_SERVICE_HOST=192.0.2.1",
                       "KUBERNETES_SERVICE_PORT=443", NULL};
  service s;
  start_with(&s, "http", NULL, env, true);
  /* The list, then the watch. */
  ck_assert_msg(fk_wait_count(api, 2, 10000 * (int)tu_slowdown()),
                "the service never asked the kubeconfig's server");
  ck_assert_str_eq(fk_get(api, 0)->path, "/api/v1/nodes");
  kill(s.pid, SIGTERM);
  ck_assert_int_eq(wait_exit(&s), 0);
  cs_buf_putc(&s.log, '\0');
  ck_assert_msg(strstr(s.log.data, "\"source\":\"kubeconfig\""), "%s",
                s.log.data);
  ck_assert_ptr_nonnull(strstr(s.log.data, "\"msg\":\"Node watch started\""));
  ck_assert_ptr_nonnull(strstr(s.log.data, "\"msg\":\"Watching nodes\""));
  assert_messages_distinct(s.log.data);
  cs_buf_free(&s.log);
  fk_stop(api);
  kubeconfig_remove(dir, e_kc);
}
END_TEST

/* ---- metrics ----------------------------------------------------------- */

/* Adds "name type\n" for every "# TYPE name type" line of a scrape. */
static size_t exported_families(const char *scrape, cs_buf *out)
{
  size_t n = 0;
  for (const char *p = scrape; (p = strstr(p, "# TYPE ")); n++) {
    p += strlen("# TYPE ");
    size_t len = strcspn(p, "\n");
    cs_buf_printf(out, "%.*s\n", (int)len, p);
    p += len;
  }
  return n;
}

/* Adds "name type\n" for every row "| `carbonshift_...` | type ..." of
 * docs/operations.md's metrics section. */
static void documented_families(cs_buf *out)
{
  const char *root = getenv("CS_SRCDIR") ? getenv("CS_SRCDIR") : ".";
  char path[512];
  snprintf(path, sizeof(path), "%s/docs/operations.md", root);
  char *doc = tu_read_file(path, NULL);
  const char *sec = strstr(doc, "\n## Metrics\n");
  ck_assert_msg(sec != NULL, "%s has no \"## Metrics\" section", path);
  const char *end = strstr(sec + 1, "\n## ");
  static const char row[] = "\n| `carbonshift_";
  for (const char *p = sec; (p = strstr(p, row)) && (!end || p < end); p++) {
    const char *name = p + strlen("\n| `");
    size_t n = strcspn(name, "`");
    const char *type = name + n + strlen("` | ");
    cs_buf_printf(out, "%.*s %.*s\n", (int)n, name, (int)strcspn(type, " |"),
                  type);
  }
  free(doc);
}

/* Whether `list` ("\n"-started, one "name type" a line) has the line
 * line[0..len). */
static bool has_line(const char *list, const char *line, size_t len)
{
  char want[256];
  snprintf(want, sizeof(want), "\n%.*s\n", (int)len, line);
  return strstr(list, want) != NULL;
}

/* Every metric family the service exports, the Kubernetes client's
 * included, is in docs/operations.md's table with its type, and the table
 * names no family the service does not export. */
START_TEST(test_service_metrics_all_documented)
{
  char dir[] = "/tmp/check_service.XXXXXX";
  fk_server *api = fk_start(kube_no_nodes, NULL);
  char *e_kc = kubeconfig_env(api, dir);
  const char *env[] = {"CARBONSHIFT_KUBE_MODE=kubeconfig", e_kc, NULL};
  service s;
  start_with(&s, "http", NULL, env, false);
  cs_buf scrape, exported, doc;
  cs_buf_init(&scrape, 0);
  get(&s, "/metrics", &scrape);
  cs_buf_putc(&scrape, '\0');
  stop(&s);
  fk_stop(api);

  cs_buf_init(&exported, 0);
  cs_buf_init(&doc, 0);
  cs_buf_putc(&exported, '\n');
  cs_buf_putc(&doc, '\n');
  size_t n = exported_families(scrape.data, &exported);
  documented_families(&doc);
  cs_buf_putc(&exported, '\0');
  cs_buf_putc(&doc, '\0');
  ck_assert_msg(n >= 18 && strstr(exported.data, "\ncarbonshift_kube_"),
                "too few families exported:%s", exported.data);
  const cs_buf *lists[2] = {&exported, &doc};
  static const char *const msg[2] = {
      "/metrics exports \"%.*s\", which docs/operations.md's metrics table "
      "lacks (or gives another type); the table has:%s",
      "docs/operations.md's metrics table lists \"%.*s\", which /metrics "
      "does not export (with that type); it exports:%s"};
  for (int k = 0; k < 2; k++)
    for (const char *p = lists[k]->data + 1; *p; p += strcspn(p, "\n") + 1) {
      size_t len = strcspn(p, "\n");
      ck_assert_msg(has_line(lists[1 - k]->data, p, len), msg[k], (int)len, p,
                    lists[1 - k]->data);
    }
  cs_buf_free(&doc);
  cs_buf_free(&exported);
  cs_buf_free(&scrape);
  kubeconfig_remove(dir, e_kc);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("service");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_service_http_fixtures);
  tcase_add_test(tc, test_service_https_and_mtls_fixtures);
  tcase_add_test(tc, test_service_probe_listener_beside_mtls);
  tcase_add_test(tc,
                 test_service_sighup_stops_gracefully_second_signal_at_once);
  tcase_add_test(tc, test_service_sighup_ignored_under_nohup);
  tcase_add_test(tc, test_service_watttime_signal_mismatch_logged);
  tcase_add_test(tc, test_service_sigterm_under_load_answers_every_request);
  tcase_add_test(tc, test_service_secrets_never_in_output);
  tcase_add_test(tc, test_service_kube_auto_prefers_kubeconfig);
  tcase_add_test(tc, test_service_metrics_all_documented);
  suite_add_tcase(s, tc);
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
