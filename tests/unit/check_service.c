/* The real binary, called the way kube-scheduler calls an extender: the
 * shared fixtures POSTed with libcurl (Content-Type: application/json, 5 s
 * timeout, keep-alive) over plain HTTP, HTTPS and mTLS, on a free port. */
#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "carbon/util/buf.h"
#include "tests/unit/testutil.h"
#include "tests/unit/tls_testutil.h"

typedef struct service {
  pid_t pid;
  int out; /* the service's stdout */
  char base[64];
} service;

/* Starts `carbonshift serve` with extra flags on 127.0.0.1:0 and reads the
 * bound port from its "Serving" log line. */
static void start(service *s, const char *scheme, const char *const *flags)
{
  const char *bin = getenv("CS_BIN");
  ck_assert_msg(bin && access(bin, X_OK) == 0,
                "CS_BIN must name the built carbonshift binary (make unit "
                "sets it)");
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  s->pid = fork();
  ck_assert_int_ge(s->pid, 0);
  if (s->pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const char *argv[24] = {bin, "serve", "--listen", "127.0.0.1:0"};
    int n = 4;
    for (int i = 0; flags && flags[i] && n < 22; i++)
      argv[n++] = flags[i];
    argv[n] = NULL;
    /* No API server: names-only nodes are neutral, no Events. */
    setenv("CARBONSHIFT_KUBE_MODE", "off", 1);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  s->out = fds[0];
  char buf[8192];
  size_t len = 0;
  for (int waited = 0; waited < 100; waited++) {
    struct pollfd p = {.fd = s->out, .events = POLLIN};
    if (poll(&p, 1, 100) > 0) {
      ssize_t r = read(s->out, buf + len, sizeof(buf) - 1 - len);
      ck_assert_int_gt(r, 0);
      len += (size_t)r;
      buf[len] = '\0';
      const char *line = strstr(buf, "\"msg\":\"Serving\"");
      const char *at = line ? strstr(line, "\"listen\":\"127.0.0.1:") : NULL;
      if (at && strchr(at, '\n')) {
        long port = strtol(at + strlen("\"listen\":\"127.0.0.1:"), NULL, 10);
        snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%ld", scheme, port);
        /* Keep draining the log so the service never blocks on a full
         * pipe. */
        fcntl(s->out, F_SETFL, O_NONBLOCK);
        return;
      }
    }
  }
  ck_abort_msg("carbonshift did not report serving; it printed: %s", buf);
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

static Suite *suite(void)
{
  Suite *s = suite_create("service");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_service_http_fixtures);
  tcase_add_test(tc, test_service_https_and_mtls_fixtures);
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
