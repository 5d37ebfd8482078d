/* http.h: a small blocking HTTP GET client on libcurl for the carbon
 * providers: request headers, optional Basic auth, total and connect
 * timeouts, a hard cap on the body, the status code and Retry-After. TLS
 * peers are always verified; proxies come from the environment as curl reads
 * them; redirects are not followed (credentials never leave for another host).
 * Thread-safe: yes; each call uses its own curl handle. curl's global state
 * is initialised once, on first use, under pthread_once.
 * Ownership: request strings are borrowed for the call; the response owns its
 * body until cs_http_response_free. Secrets never reach a log line. */
#ifndef CS_HTTP_H
#define CS_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/buf.h"
#include "carbon/util/error.h"

#define CS_HTTP_MAX_HEADERS 8

typedef struct cs_http_request {
  const char *url;
  /* "Name: value" lines. Values of Authorization, Proxy-Authorization and
   * any header whose name contains "token" are redacted in logs. */
  const char *headers[CS_HTTP_MAX_HEADERS];
  size_t nheaders;
  const char *basic_user; /* HTTP Basic auth when both are non-NULL */
  const char *basic_password;
  long timeout_ms;         /* whole transfer; 0 means 10 s */
  long connect_timeout_ms; /* 0 means 3 s */
  size_t max_body;         /* 0 means 4 MiB */
  /* Optional. Once it is true no request starts and one in flight ends
   * within about a second (curl's progress interval when idle), with
   * CS_ECANCELED: a stop need not wait out the timeouts. */
  const atomic_bool *cancel;
} cs_http_request;

typedef struct cs_http_response {
  long status;         /* 0 when no response arrived */
  cs_buf body;         /* NUL-terminated */
  int64_t retry_after; /* seconds from Retry-After, -1 when absent */
  char error[256];     /* transport error, when the call failed */
} cs_http_response;

/* Once per process, before threads if possible; cs_http_get calls it too. */
void cs_http_global_init(void);

/* Performs the GET. CS_OK whenever a complete response arrived, whatever its
 * status (callers judge the status); CS_ETIMEDOUT, CS_EIO (connection, TLS,
 * protocol), CS_ETOOBIG (body over max_body) or CS_ECANCELED (req->cancel)
 * otherwise, with resp->error
 * saying what happened. The response must be freed in every case. */
cs_err cs_http_get(const cs_http_request *req,
                   cs_http_response *resp) CS_MUST_USE;
void cs_http_response_free(cs_http_response *resp);

/* Parses a Retry-After value: delta seconds or an HTTP date (relative to
 * `now`). -1 when it is neither. */
int64_t cs_http_parse_retry_after(const char *value, int64_t now);

/* The longest base URL cs_http_url_problem accepts, in bytes. */
#define CS_HTTP_URL_MAX 1000

/* Why `url` cannot be a base URL to call, or NULL when it can: it must be
 * http:// or https:// with a host (not a bare port, userinfo or path), a
 * port (when given) from 1 to 65535, no query or fragment (paths are
 * appended to it), without spaces or control characters (curl refuses
 * those only at the first request, far from the setting), at most
 * CS_HTTP_URL_MAX bytes. */
const char *cs_http_url_problem(const char *url);

/* Appends s percent-encoded for a URL query component (RFC 3986 unreserved
 * characters kept). */
void cs_http_escape(cs_buf *out, const char *s);

#endif
