#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/clock.h"
#include "carbon/util/http.h"
#include "carbon/util/log.h"
#include "tests/unit/fake_http.h"

static fh_server *srv;

static void setup(void)
{
  srv = fh_start();
}

static void teardown(void)
{
  fh_release(srv);
  fh_stop(srv);
  srv = NULL;
}

static char *url(const char *path)
{
  static char buf[256];
  snprintf(buf, sizeof(buf), "%s%s", fh_url(srv), path);
  return buf;
}

START_TEST(test_http_get_status_body_headers)
{
  fh_set(srv, "/x", (fh_reply){.status = 201, .body = "hello"});
  cs_http_request req = {.url = url("/x?a=1"),
                         .headers = {"X-One: 1", "auth-token: s3cret"},
                         .nheaders = 2};
  cs_http_response resp;
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_OK);
  ck_assert_int_eq(resp.status, 201);
  ck_assert_str_eq(resp.body.data, "hello");
  ck_assert_int_eq(resp.retry_after, -1);
  cs_http_response_free(&resp);
  char *h = fh_last_header(srv, "/x", "X-One");
  ck_assert_str_eq(h, "1");
  free(h);
  char *q = fh_last_query(srv, "/x");
  ck_assert_str_eq(q, "a=1");
  free(q);
}
END_TEST

START_TEST(test_http_get_debug_log_redacts_secrets)
{
  fh_set(srv, "/x", (fh_reply){.body = "{}"});
  cs_http_request req = {.url = url("/x"),
                         .headers = {"auth-token: s3cret-token",
                                     "Authorization: Bearer s3cret-bearer",
                                     "Accept: application/json"},
                         .nheaders = 3,
                         .basic_user = "alice",
                         .basic_password = "s3cret-pass"};
  cs_http_response resp;
  cs_log_set_verbosity(2);
  fh_log_capture();
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_OK);
  char *log = fh_log_take();
  cs_log_set_verbosity(0);
  cs_http_response_free(&resp);
  ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"HTTP request\""));
  ck_assert_ptr_nonnull(strstr(log, "auth-token: <redacted>"));
  ck_assert_ptr_nonnull(strstr(log, "Authorization: <redacted>"));
  ck_assert_ptr_nonnull(strstr(log, "Accept: application/json"));
  ck_assert_ptr_null(strstr(log, "s3cret"));
  free(log);
}
END_TEST

START_TEST(test_http_get_body_cap)
{
  fh_set(srv, "/big", (fh_reply){.fixture = "watttime-forecast.json"});
  cs_http_request req = {.url = url("/big"), .max_body = 1000};
  cs_http_response resp;
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(resp.error, "1000-byte limit"));
  cs_http_response_free(&resp);
}
END_TEST

START_TEST(test_http_get_timeout_and_refused)
{
  fh_set(srv, "/slow", (fh_reply){.body = "{}", .hang_ms = 5000});
  cs_http_request req = {.url = url("/slow"), .timeout_ms = 200};
  cs_http_response resp;
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_ETIMEDOUT);
  cs_http_response_free(&resp);
  fh_release(srv);
  cs_http_request bad = {.url = "http://127.0.0.1:1/", .timeout_ms = 1000};
  ck_assert_int_eq(cs_http_get(&bad, &resp), CS_EIO);
  ck_assert_int_eq(resp.status, 0);
  ck_assert_str_ne(resp.error, "");
  cs_http_response_free(&resp);
  /* Only http and https. */
  cs_http_request ftp = {.url = "file:///etc/passwd"};
  ck_assert_int_eq(cs_http_get(&ftp, &resp), CS_EIO);
  ck_assert_uint_eq(resp.body.len, 0);
  cs_http_response_free(&resp);
}
END_TEST

/* Sets the flag once the server holds the request (so that the cancel
 * meets a request in flight however slow the start, as under valgrind),
 * and notes when. */
typedef struct cancel_ctl {
  atomic_bool flag;
  uint64_t set_ns;
} cancel_ctl;

static void *cancel_in_flight(void *arg)
{
  cancel_ctl *c = arg;
  struct timespec ts = {.tv_nsec = 10000000};
  for (int i = 0; i < 2000 && fh_hits(srv, "/slow") < 1; i++)
    nanosleep(&ts, NULL);
  c->set_ns = cs_clock_mono_ns();
  atomic_store(&c->flag, true);
  return NULL;
}

/* A stop does not wait out the timeout: a request in flight ends within
 * about a second of the flag, and none starts once it is set. */
START_TEST(test_http_get_cancel_ends_request)
{
  fh_set(srv, "/slow", (fh_reply){.body = "{}", .hang_ms = 20000});
  cancel_ctl cancel = {.flag = false};
  cs_http_request req = {
      .url = url("/slow"), .timeout_ms = 15000, .cancel = &cancel.flag};
  cs_http_response resp;
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, cancel_in_flight, &cancel), 0);
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_ECANCELED);
  uint64_t done = cs_clock_mono_ns();
  pthread_join(t, NULL);
  double took = (double)(done - cancel.set_ns) / 1e9;
  ck_assert_msg(took < 3, "the cancelled request took %.2f s after the flag",
                took);
  ck_assert_str_eq(resp.error, "cancelled: shutting down");
  cs_http_response_free(&resp);
  ck_assert_int_eq(fh_hits(srv, "/slow"), 1);
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_ECANCELED);
  cs_http_response_free(&resp);
  ck_assert_int_eq(fh_hits(srv, "/slow"), 1);
}
END_TEST

START_TEST(test_http_get_retry_after)
{
  fh_set(srv, "/r", (fh_reply){.status = 429, .retry_after = 42});
  cs_http_request req = {.url = url("/r")};
  cs_http_response resp;
  ck_assert_int_eq(cs_http_get(&req, &resp), CS_OK);
  ck_assert_int_eq(resp.status, 429);
  ck_assert_int_eq(resp.retry_after, 42);
  cs_http_response_free(&resp);
}
END_TEST

START_TEST(test_http_parse_retry_after_forms)
{
  ck_assert_int_eq(cs_http_parse_retry_after("120", 0), 120);
  ck_assert_int_eq(cs_http_parse_retry_after(" 7 \r\n", 0), 7);
  /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
  ck_assert_int_eq(
      cs_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412400),
      80);
  ck_assert_int_eq(
      cs_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412500),
      0);
  ck_assert_int_eq(cs_http_parse_retry_after("soon", 0), -1);
  ck_assert_int_eq(cs_http_parse_retry_after("", 0), -1);
  ck_assert_int_eq(cs_http_parse_retry_after("-5", 0), -1);
  ck_assert_int_eq(cs_http_parse_retry_after(NULL, 0), -1);
}
END_TEST

/* The base URLs of providers and of the API server: a host is required,
 * so "http://" or "https://:443" is refused where it is set, not at the
 * first call. */
START_TEST(test_http_url_problem_names_the_rule)
{
  static const struct {
    const char *url, *want; /* want NULL: accepted */
  } cases[] = {
      {"https://api.electricitymaps.com/v3", NULL},
      {"http://127.0.0.1:8080", NULL},
      {"https://[::1]:6443/", NULL},
      {"https://user@h", NULL},
      {NULL, "missing"},
      {"", "missing"},
      {"ftp://h", "not an http(s) URL"},
      {"HTTPS://h", "not an http(s) URL"},
      {"http://", "no host after the scheme"},
      {"https:///v3", "no host after the scheme"},
      {"https://:443", "no host after the scheme"},
      {"https://@h", NULL}, /* empty userinfo */
      {"https://?x", "has a query or fragment (a base URL takes paths after "
                     "it)"},
      {"https://h?x", "has a query or fragment (a base URL takes paths after "
                      "it)"},
      {"https://h:6443#f", "has a query or fragment (a base URL takes paths "
                           "after it)"},
      {"https://h:", "has a port that is not a number from 1 to 65535"},
      {"https://h:0", "has a port that is not a number from 1 to 65535"},
      {"https://h:65536/v3", "has a port that is not a number from 1 to 65535"},
      {"https://h:64x3", "has a port that is not a number from 1 to 65535"},
      {"https://h:65535", NULL},
      {"https://[::1]", NULL},
      {"https://[]:443", "no host after the scheme"},
      {"https://[::1]x", "has text after the IPv6 address's ']'"},
      {"https://[::1]:99999", "has a port that is not a number from 1 to "
                              "65535"},
      {"https://u@:443", "no host after the scheme"},
      {"https://h /v3", "contains a space or control character"},
      {"https://h\x7f", "contains a space or control character"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *got = cs_http_url_problem(cases[i].url);
    if (!cases[i].want)
      ck_assert_msg(!got, "%s: refused: %s", cases[i].url, got);
    else
      ck_assert_msg(got && !strcmp(got, cases[i].want), "%s: got %s",
                    cases[i].url ? cases[i].url : "(null)",
                    got ? got : "(accepted)");
  }
  char long_url[1100];
  memset(long_url, 'a', sizeof(long_url) - 1);
  memcpy(long_url, "https://", 8);
  long_url[sizeof(long_url) - 1] = '\0';
  ck_assert_str_eq(cs_http_url_problem(long_url), "longer than 1000 bytes");
}
END_TEST

START_TEST(test_http_escape_query)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_http_escape(&b, "US-CAL-CISO a&b=c/ä");
  ck_assert_str_eq(b.data, "US-CAL-CISO%20a%26b%3Dc%2F%C3%A4");
  cs_buf_free(&b);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("http");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_http_get_status_body_headers);
  tcase_add_test(tc, test_http_get_debug_log_redacts_secrets);
  tcase_add_test(tc, test_http_get_body_cap);
  tcase_add_test(tc, test_http_get_timeout_and_refused);
  tcase_add_test(tc, test_http_get_cancel_ends_request);
  tcase_add_test(tc, test_http_get_retry_after);
  tcase_add_test(tc, test_http_parse_retry_after_forms);
  tcase_add_test(tc, test_http_url_problem_names_the_rule);
  tcase_add_test(tc, test_http_escape_query);
  suite_add_tcase(s, tc);
  return fh_run_suite(s);
}
