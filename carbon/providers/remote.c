#include "carbon/providers/remote.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "carbon/util/alloc.h"
#include "carbon/util/clock.h"
#include "carbon/util/jtree.h"
#include "carbon/util/log.h"
#include "carbon/util/parse.h"

/* Pause after a 429 without Retry-After. */
#define DEFAULT_PAUSE_S 60
#define MAX_PAUSE_S 3600

cs_err cs_remote_init(cs_remote *r, const char *name, const char *base,
                      long timeout_ms)
{
  memset(r, 0, sizeof(*r));
  if (!base ||
      (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0))
    return CS_EINVAL;
  r->name = name;
  r->base = cs_strdup(base);
  size_t n = strlen(r->base);
  while (n && r->base[n - 1] == '/')
    r->base[--n] = '\0';
  r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
  r->connect_timeout_ms = r->timeout_ms < 3000 ? r->timeout_ms : 3000;
  r->max_body = 8u << 20;
  pthread_mutex_init(&r->mu, NULL);
  return CS_OK;
}

void cs_remote_destroy(cs_remote *r)
{
  if (!r || !r->base)
    return;
  free(r->base);
  r->base = NULL;
  pthread_mutex_destroy(&r->mu);
}

/* Copies at most 160 printable bytes of s[0..n) into out. */
static void snippet(const char *s, size_t n, char *out, size_t cap)
{
  size_t j = 0;
  for (size_t i = 0; i < n && j + 1 < cap && j < 160; i++)
    out[j++] = isprint((unsigned char)s[i]) ? s[i] : ' ';
  out[j] = '\0';
}

/* Adds `s` (n bytes) to the list of credentials to scrub when it is long
 * enough to be one: short values would mangle messages. */
static void add_secret(const char **list, size_t *len, size_t cap,
                       const char *s, size_t n, size_t *lens)
{
  if (s && n >= 4 && *len < cap) {
    lens[*len] = n;
    list[(*len)++] = s;
  }
}

/* The base64 of "user:password", as curl sends it after "Basic ": what an
 * API echoing our Authorization header would quote. NULL without Basic
 * credentials. Caller frees. */
static char *basic_token(const cs_http_request *req)
{
  if (!req->basic_user || !req->basic_password)
    return NULL;
  size_t nu = strlen(req->basic_user), np = strlen(req->basic_password);
  size_t n = nu + 1 + np;
  if (n > (size_t)INT32_MAX / 2) /* EVP_EncodeBlock takes an int */
    return NULL;
  unsigned char *plain = cs_malloc(n);
  unsigned char *out = cs_malloc(4 * ((n + 2) / 3) + 1);
  memcpy(plain, req->basic_user, nu);
  plain[nu] = ':';
  memcpy(plain + nu + 1, req->basic_password, np);
  EVP_EncodeBlock(out, plain, (int)n);
  free(plain);
  return (char *)out;
}

/* The value of four hex digits at s[0..n), or -1. */
static long hex4(const char *s, size_t n)
{
  long v = 0;
  for (size_t i = 0; i < 4; i++) {
    int c = i < n ? (unsigned char)s[i] : 0;
    if (!isxdigit(c))
      return -1;
    v = v * 16 + (isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
  }
  return v;
}

/* The JSON string escape at s[0..n) (s[0] is a backslash): its length, with
 * the code point it stands for in *cp (a surrogate pair is one escape); 0
 * when it is none. */
static size_t json_escape(const char *s, size_t n, uint32_t *cp)
{
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *k = n >= 2 && s[1] ? strchr(from, s[1]) : NULL;
  if (k) {
    *cp = (unsigned char)to[k - from];
    return 2;
  }
  long hi = n >= 2 && s[1] == 'u' ? hex4(s + 2, n - 2) : -1;
  if (hi < 0xD800 || hi > 0xDFFF) {
    *cp = (uint32_t)hi;
    return hi < 0 ? 0 : 6;
  }
  long lo = n >= 12 && s[6] == '\\' && s[7] == 'u' ? hex4(s + 8, n - 8) : -1;
  if (hi > 0xDBFF || lo < 0xDC00 || lo > 0xDFFF)
    return 0;
  *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
  return 12;
}

/* The length of the UTF-8 character at s[0..n) and its code point; a byte
 * that starts no well-formed character stands for itself. */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
  size_t len = 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF)
    len = 2;
  else if (s[0] >= 0xE0 && s[0] <= 0xEF)
    len = 3;
  else if (s[0] >= 0xF0 && s[0] <= 0xF4)
    len = 4;
  uint32_t v = len == 1 ? s[0] : s[0] & (0x7F >> len);
  for (size_t i = 1; i < len; i++) {
    if (i >= n || (s[i] & 0xC0) != 0x80) {
      *cp = s[0];
      return 1;
    }
    v = v << 6 | (s[i] & 0x3F);
  }
  *cp = v;
  return len;
}

/* How many bytes of s[0..n) spell the secret sec[0..sl) as the inside of a
 * JSON string, each character as itself or as any escape of it (\" \\ \/
 * \u00e9, a surrogate pair); 0 when they do not. */
static size_t json_spelling(const char *s, size_t n, const char *sec, size_t sl)
{
  size_t i = 0;
  for (size_t j = 0, w; j < sl; j += w) {
    uint32_t want, got;
    w = utf8_char((const unsigned char *)sec + j, sl - j, &want);
    size_t e = i < n && s[i] == '\\' ? json_escape(s + i, n - i, &got) : 0;
    if (e && got == want)
      i += e;
    else if (w <= n - i && !memcmp(s + i, sec + j, w))
      i += w;
    else
      return 0;
  }
  return i;
}

/* A copy of body[0..len) in which every credential of the request (the
 * Basic password and its base64 form with the user name, each header's
 * value and that value's last word, as in "Bearer <token>") is replaced by
 * "<redacted>", whether it is written plainly or escaped as in a JSON
 * string: some APIs quote the credential they refuse, and error messages
 * end up in logs. Caller frees. */
static char *scrub(const char *body, size_t len, const cs_http_request *req,
                   size_t *out_len)
{
  enum { CAP = 2 * CS_HTTP_MAX_HEADERS + 2 };
  const char *sec[CAP];
  size_t sl[CAP], ns = 0;
  char *basic = basic_token(req);
  /* The longer form first: the password may occur inside it. */
  if (basic)
    add_secret(sec, &ns, CAP, basic, strlen(basic), sl);
  if (req->basic_password)
    add_secret(sec, &ns, CAP, req->basic_password, strlen(req->basic_password),
               sl);
  for (size_t i = 0; i < req->nheaders; i++) {
    const char *v = strchr(req->headers[i], ':');
    if (!v)
      continue;
    while (*++v == ' ')
      ;
    add_secret(sec, &ns, CAP, v, strlen(v), sl);
    const char *w = strrchr(v, ' ');
    if (w)
      add_secret(sec, &ns, CAP, w + 1, strlen(w + 1), sl);
  }
  cs_buf b;
  cs_buf_init(&b, 0);
  for (size_t i = 0; i < len;) {
    size_t k = 0, m = 0;
    for (; k < ns && !m; k++)
      m = sl[k] <= len - i && !memcmp(body + i, sec[k], sl[k])
              ? sl[k]
              : json_spelling(body + i, len - i, sec[k], sl[k]);
    if (m) {
      cs_buf_puts(&b, "<redacted>");
      i += m;
    } else {
      cs_buf_putc(&b, body[i++]);
    }
  }
  free(basic);
  char *out = cs_buf_release(&b, out_len);
  if (!out) {
    *out_len = 0;
    out = cs_strdup("");
  }
  return out;
}

/* The message of a JSON error body: "message", else "error" as a string,
 * else "error"."message" (the UK API); NULL without one. Borrowed from
 * `body`. */
static const char *error_text(const cJSON *body)
{
  if (!cJSON_IsObject(body))
    return NULL;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "message");
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "error");
  if (cJSON_IsString(m))
    return m->valuestring;
  if (cJSON_IsString(e))
    return e->valuestring;
  m = cJSON_GetObjectItemCaseSensitive(e, "message");
  return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* The provider's own message for an error answer body[0..len) (`j` its
 * parse, or NULL): the decoded message of a JSON body, or a snippet of any
 * other body. Each is scrubbed in the form that reaches the log: a JSON
 * body spells a credential with escapes that only decoding undoes, and a
 * body that is not JSON (truncated, say) may spell it either way. */
static void provider_message(const cJSON *j, const char *body, size_t len,
                             const cs_http_request *req, char *out, size_t cap)
{
  out[0] = '\0';
  const char *msg = error_text(j);
  if (!msg && j)
    return;
  if (msg) {
    body = msg;
    len = strlen(msg);
  }
  size_t n;
  char *clean = scrub(body, len, req, &n);
  snippet(clean, n, out, cap);
  free(clean);
}

cs_err cs_remote_get_json(cs_remote *r, const char *path,
                          const char *const *headers, size_t nheaders,
                          const char *user, const char *password, cJSON **out,
                          long *status, char *err, size_t errcap)
{
  cs_err rc = CS_OK;
  cs_http_response resp = {0};
  cs_buf url;
  cs_buf_init(&url, 8192);
  *out = NULL;
  if (status)
    *status = 0;
  uint64_t now_ns = cs_clock_mono_ns();
  pthread_mutex_lock(&r->mu);
  uint64_t paused = r->paused_until_ns;
  pthread_mutex_unlock(&r->mu);
  if (paused > now_ns) {
    snprintf(err, errcap,
             "%s is rate limiting us; next request allowed in %.0f s", r->name,
             (double)(paused - now_ns) / 1e9);
    return CS_EBUSY;
  }
  cs_buf_puts(&url, r->base);
  cs_buf_puts(&url, path);
  if (cs_buf_error(&url) != CS_OK) {
    snprintf(err, errcap, "request URL too long");
    rc = CS_ETOOBIG;
    goto out;
  }
  cs_http_request req = {
      .url = url.data,
      .nheaders =
          nheaders < CS_HTTP_MAX_HEADERS ? nheaders : CS_HTTP_MAX_HEADERS,
      .basic_user = user,
      .basic_password = password,
      .timeout_ms = r->timeout_ms,
      .connect_timeout_ms = r->connect_timeout_ms,
      .max_body = r->max_body,
      .cancel = r->cancel,
  };
  for (size_t i = 0; i < req.nheaders; i++)
    req.headers[i] = headers[i];
  rc = cs_http_get(&req, &resp);
  if (status)
    *status = resp.status;
  const char *body = resp.body.data ? resp.body.data : "";
  if (rc != CS_OK) {
    snprintf(err, errcap, "GET %s%s: %s", r->base, path, resp.error);
    goto out;
  }
  if (resp.status < 200 || resp.status > 299) {
    char msg[200];
    cJSON *ej =
        resp.body.len ? cs_jtree_parse(body, resp.body.len, NULL) : NULL;
    provider_message(ej, body, resp.body.len, &req, msg, sizeof(msg));
    /* Only the provider's own words make an error "not served": a bare 404
     * is as likely a wrong base URL or a proxy as a zone it lacks. */
    const char *said = error_text(ej);
    bool not_served = (resp.status == 400 || resp.status == 404) && said &&
                      r->not_served_says &&
                      strcasestr(said, r->not_served_says);
    cJSON_Delete(ej);
    switch (resp.status) {
    case 401:
    case 403:
      rc = CS_EAUTH;
      break;
    case 429: {
      rc = CS_EBUSY;
      int64_t wait = resp.retry_after >= 0 ? resp.retry_after : DEFAULT_PAUSE_S;
      if (wait > MAX_PAUSE_S)
        wait = MAX_PAUSE_S;
      pthread_mutex_lock(&r->mu);
      r->paused_until_ns = cs_clock_mono_ns() + (uint64_t)wait * 1000000000u;
      pthread_mutex_unlock(&r->mu);
      break;
    }
    default:
      rc = not_served ? CS_ENOTFOUND : CS_EHTTP;
    }
    snprintf(err, errcap, "GET %s%s: HTTP %ld%s%s", r->base, path, resp.status,
             msg[0] ? ": " : "", msg);
    goto out;
  }
  cJSON *j = cs_jtree_parse(body, resp.body.len, NULL);
  if (!j) {
    char snip[64];
    size_t clean_len;
    char *clean = scrub(body, resp.body.len, &req, &clean_len);
    snippet(clean, clean_len < 40 ? clean_len : 40, snip, sizeof(snip));
    free(clean);
    snprintf(err, errcap,
             "GET %s%s: the %zu-byte body is not valid JSON (truncated or "
             "garbled), starting \"%s\"",
             r->base, path, resp.body.len, snip);
    rc = CS_EPARSE;
    goto out;
  }
  *out = j;
out:
  cs_http_response_free(&resp);
  cs_buf_free(&url);
  return rc;
}

const char *cs_remote_type_name(const cJSON *v)
{
  if (!v)
    return "nothing (missing)";
  if (cJSON_IsNull(v))
    return "null";
  if (cJSON_IsBool(v))
    return "a boolean";
  if (cJSON_IsNumber(v))
    return "a number";
  if (cJSON_IsString(v))
    return "a string";
  if (cJSON_IsArray(v))
    return "an array";
  return "an object";
}

cs_err cs_remote_num(const cJSON *obj, const char *key, const char *what,
                     bool nullable, double *out, char *err, size_t errcap)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (nullable && cJSON_IsNull(v))
    return CS_ENOTFOUND;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
    snprintf(err, errcap, "%s.%s: found %s, expected a number", what, key,
             cs_remote_type_name(v));
    return CS_EPARSE;
  }
  *out = v->valuedouble;
  return CS_OK;
}

cs_err cs_remote_str(const cJSON *obj, const char *key, const char *what,
                     const char **out, char *err, size_t errcap)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v)) {
    snprintf(err, errcap, "%s.%s: found %s, expected a string", what, key,
             cs_remote_type_name(v));
    return CS_EPARSE;
  }
  *out = v->valuestring;
  return CS_OK;
}

cs_err cs_remote_same_zone(const cJSON *obj, const char *key, const char *what,
                           const char *want, char *err, size_t errcap)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v))
    return CS_OK;
  const char *got;
  cs_err rc = cs_remote_str(obj, key, what, &got, err, errcap);
  if (rc == CS_OK && strcasecmp(got, want) != 0) {
    snprintf(err, errcap, "%s.%s: the answer is for \"%.48s\", expected %s",
             what, key, got, want);
    rc = CS_EPARSE;
  }
  return rc;
}

cs_err cs_remote_time(const cJSON *obj, const char *key, const char *what,
                      int64_t *out, char *err, size_t errcap)
{
  const char *s, *expected = NULL;
  cs_err rc = cs_remote_str(obj, key, what, &s, err, errcap);
  if (rc != CS_OK)
    return rc;
  if (cs_parse_rfc3339(s, out, &expected) != CS_OK) {
    snprintf(err, errcap, "%s.%s: \"%.40s\" is not a time, expected %s", what,
             key, s, expected);
    return CS_EPARSE;
  }
  return CS_OK;
}

cs_err cs_remote_array(const cJSON *obj, const char *key, const char *what,
                       const cJSON **out, char *err, size_t errcap)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsArray(v)) {
    snprintf(err, errcap, "%s.%s: found %s, expected an array", what, key,
             cs_remote_type_name(v));
    return CS_EPARSE;
  }
  *out = v;
  return CS_OK;
}

void cs_remote_log_failure(const char *provider, const char *zone, cs_err rc,
                           const char *err)
{
  if (rc == CS_ECANCELED)
    return; /* a stop on our side, not a provider failure */
  cs_buf *l = cs_log_begin(0, "Carbon provider request failed");
  cs_json_str(l, "provider", provider);
  cs_json_str(l, "zone", zone);
  cs_json_str(l, "code", cs_strerror(rc));
  cs_json_str(l, "err", err);
  cs_log_end(l);
}

cs_err cs_remote_finish_forecast(const char *provider, const char *zone,
                                 cs_err rc, cs_series *full, int64_t from,
                                 int64_t to, cs_series *out, char *err,
                                 size_t errcap)
{
  if (rc == CS_OK) {
    cs_series_slice(full, from, to, out);
    if (!out->len) {
      cs_series_free(out);
      rc = CS_ENOTFOUND;
      snprintf(err, errcap,
               "the forecast for %s does not cover the window asked for", zone);
    }
  }
  if (rc != CS_OK)
    cs_remote_log_failure(provider, zone, rc, err);
  cs_series_free(full);
  return rc;
}

cs_err cs_remote_finish_current(const char *provider, const char *zone,
                                cs_err rc, cs_series *s, int64_t now,
                                bool estimated, cs_signal *out, const char *err)
{
  if (rc == CS_OK) {
    size_t at = 0; /* points are in time order (each parser checks) */
    while (at + 1 < s->len && s->points[at + 1].at <= now)
      at++;
    cs_signal v = {
        .g_per_kwh = s->points[at].g_per_kwh,
        .type = s->type,
        .factor = s->factor,
        .observed_at = s->points[at].at,
        .fetched_at = now,
        .estimated = estimated || at > 0,
    };
    snprintf(v.provider, sizeof(v.provider), "%s", provider);
    snprintf(v.zone, sizeof(v.zone), "%s", zone);
    *out = v;
  } else {
    cs_remote_log_failure(provider, zone, rc, err);
  }
  cs_series_free(s);
  return rc;
}
