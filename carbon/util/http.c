#include "carbon/util/http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "carbon/util/version.h"

#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_CONNECT_MS 3000L
#define DEFAULT_MAX_BODY (4u << 20)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    cs_log_error("Cannot initialise libcurl", "curl_global_init failed");
}

void cs_http_global_init(void)
{
  pthread_once(&init_once, global_init);
}

const char *cs_http_url_problem(const char *url)
{
  if (!url || !url[0])
    return "missing";
  size_t scheme = strncmp(url, "https://", 8) == 0  ? 8
                  : strncmp(url, "http://", 7) == 0 ? 7
                                                    : 0;
  if (!scheme)
    return "not an http(s) URL";
  _Static_assert(CS_HTTP_URL_MAX == 1000, "the message says 1000");
  if (strlen(url) > CS_HTTP_URL_MAX)
    return "longer than 1000 bytes";
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return "contains a space or control character";
  if (strpbrk(url, "?#"))
    return "has a query or fragment (a base URL takes paths after it)";
  /* The authority: [userinfo@]host[:port], up to the path. */
  const char *auth = url + scheme;
  size_t alen = strcspn(auth, "/");
  const char *at = memchr(auth, '@', alen);
  const char *host = at ? at + 1 : auth;
  size_t hlen = alen - (size_t)(host - auth);
  const char *port = NULL;
  if (hlen && host[0] == '[') { /* an IPv6 literal */
    const char *close = memchr(host, ']', hlen);
    if (!close || close == host + 1)
      return "no host after the scheme";
    if (close + 1 < host + hlen) {
      if (close[1] != ':')
        return "has text after the IPv6 address's ']'";
      port = close + 2;
    }
  } else {
    const char *colon = memchr(host, ':', hlen);
    if (colon == host || hlen == 0)
      return "no host after the scheme";
    if (colon)
      port = colon + 1;
  }
  if (port) {
    size_t plen = (size_t)(auth + alen - port),
           digits = strspn(port, "0123456789");
    long v = 0;
    for (size_t i = 0; i < digits && i < 6; i++)
      v = v * 10 + (port[i] - '0');
    if (plen == 0 || digits < plen || plen > 5 || v < 1 || v > 65535)
      return "has a port that is not a number from 1 to 65535";
  }
  return NULL;
}

int64_t cs_http_parse_retry_after(const char *value, int64_t now)
{
  if (!value)
    return -1;
  while (*value == ' ' || *value == '\t')
    value++;
  size_t n = strlen(value);
  while (n && isspace((unsigned char)value[n - 1]))
    n--;
  if (!n || n > 64)
    return -1;
  char tmp[65];
  memcpy(tmp, value, n);
  tmp[n] = '\0';
  bool digits = true;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)tmp[i]))
      digits = false;
  if (digits) {
    if (n > 9)
      return 999999999;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
      v = v * 10 + (tmp[i] - '0');
    return v;
  }
  time_t t = curl_getdate(tmp, NULL);
  if (t == (time_t)-1)
    return -1;
  return (int64_t)t > now ? (int64_t)t - now : 0;
}

void cs_http_escape(cs_buf *out, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
      cs_buf_putc(out, (char)*p);
    } else {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      cs_buf_append(out, e, 3);
    }
  }
}

typedef struct xfer {
  cs_http_response *resp;
  bool too_big;
  const atomic_bool *cancel;
} xfer;

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
  const xfer *x = ud;
  return atomic_load(x->cancel) ? 1 : 0; /* non-zero aborts the transfer */
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
  xfer *x = ud;
  size_t n = size * nmemb;
  cs_buf_append(&x->resp->body, ptr, n);
  if (cs_buf_error(&x->resp->body) != CS_OK) {
    x->too_big = true;
    return 0; /* aborts the transfer */
  }
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
  xfer *x = ud;
  size_t n = size * nmemb;
  static const char name[] = "retry-after:";
  if (n > sizeof(name) - 1 && n < 128 &&
      strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
    char v[128];
    memcpy(v, ptr + sizeof(name) - 1, n - (sizeof(name) - 1));
    v[n - (sizeof(name) - 1)] = '\0';
    x->resp->retry_after = cs_http_parse_retry_after(v, cs_clock_now());
  }
  return n;
}

static bool secret_header(const char *line)
{
  const char *colon = strchr(line, ':');
  size_t n = colon ? (size_t)(colon - line) : strlen(line);
  if ((n == 13 && strncasecmp(line, "authorization", n) == 0) ||
      (n == 19 && strncasecmp(line, "proxy-authorization", n) == 0))
    return true;
  for (size_t i = 0; i + 5 <= n; i++)
    if (strncasecmp(line + i, "token", 5) == 0 ||
        (i + 6 <= n && strncasecmp(line + i, "secret", 6) == 0))
      return true;
  return false;
}

/* One debug line per request: URL, status, time, and header names with
 * secret values replaced. */
static void log_request(const cs_http_request *req,
                        const cs_http_response *resp, uint64_t ns)
{
  cs_buf *l = cs_log_begin(2, "HTTP request");
  if (!l)
    return;
  cs_json_str(l, "url", req->url);
  cs_json_int(l, "status", resp->status);
  cs_json_num(l, "durationMs", (double)ns / 1e6, 1);
  cs_json_open(l, "headers", '[');
  for (size_t i = 0; i < req->nheaders; i++) {
    const char *h = req->headers[i];
    const char *colon = strchr(h, ':');
    if (colon && secret_header(h)) {
      cs_buf tmp;
      cs_buf_init(&tmp, 256);
      cs_buf_append(&tmp, h, (size_t)(colon - h));
      cs_buf_puts(&tmp, ": <redacted>");
      cs_json_str(l, NULL, tmp.data);
      cs_buf_free(&tmp);
    } else {
      cs_json_str(l, NULL, h);
    }
  }
  cs_json_close(l, ']');
  if (req->basic_user)
    cs_json_str(l, "basicAuth", "<redacted>");
  if (resp->error[0])
    cs_json_str(l, "err", resp->error);
  cs_log_end(l);
}

cs_err cs_http_get(const cs_http_request *req, cs_http_response *resp)
{
  cs_err rc = CS_OK;
  struct curl_slist *hdrs = NULL;
  memset(resp, 0, sizeof(*resp));
  resp->retry_after = -1;
  cs_buf_init(&resp->body, req->max_body ? req->max_body : DEFAULT_MAX_BODY);
  cs_http_global_init();
  uint64_t t0 = cs_clock_mono_ns();
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(resp->error, sizeof(resp->error), "curl_easy_init failed");
    rc = CS_EIO;
    goto out;
  }
  xfer x = {.resp = resp, .cancel = req->cancel};
  char errbuf[CURL_ERROR_SIZE] = "";
  if (x.cancel && atomic_load(x.cancel)) {
    snprintf(resp->error, sizeof(resp->error), "cancelled: shutting down");
    rc = CS_ECANCELED;
    goto out;
  }
  for (size_t i = 0; i < req->nheaders && i < CS_HTTP_MAX_HEADERS; i++) {
    struct curl_slist *n = curl_slist_append(hdrs, req->headers[i]);
    if (!n) {
      rc = CS_EIO;
      snprintf(resp->error, sizeof(resp->error), "cannot add header");
      goto out;
    }
    hdrs = n;
  }
  curl_easy_setopt(c, CURLOPT_URL, req->url);
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                               : DEFAULT_CONNECT_MS);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, cs_user_agent);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  if (x.cancel) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (req->basic_user && req->basic_password) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, req->basic_user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, req->basic_password);
  }
  CURLcode cc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
  if (cc != CURLE_OK) {
    if (x.too_big) {
      rc = CS_ETOOBIG;
      snprintf(resp->error, sizeof(resp->error),
               "response body over the %zu-byte limit", resp->body.cap);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
      rc = CS_ECANCELED;
      snprintf(resp->error, sizeof(resp->error), "cancelled: shutting down");
    } else {
      rc = cc == CURLE_OPERATION_TIMEDOUT ? CS_ETIMEDOUT : CS_EIO;
      snprintf(resp->error, sizeof(resp->error), "%s",
               errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
  }
out:
  log_request(req, resp, cs_clock_mono_ns() - t0);
  curl_slist_free_all(hdrs);
  if (c)
    curl_easy_cleanup(c);
  return rc;
}

void cs_http_response_free(cs_http_response *resp)
{
  if (!resp)
    return;
  cs_buf_free(&resp->body);
}
