/* remote.h: what the network providers (electricitymaps, watttime, ukgrid)
 * share: one GET that returns parsed JSON or a precise error (status mapped
 * to a cs_err, the provider's own message kept), a per-provider pause after
 * 429 Too Many Requests that honours Retry-After, and strict JSON getters
 * whose errors name the field, the value found and what was expected.
 * Thread-safe: a cs_remote may be used from several threads (its mutable
 * state is under a mutex); getters are pure.
 * Ownership: cs_remote copies the base URL; a parsed tree returned by
 * cs_remote_get_json belongs to the caller (cJSON_Delete); getters return
 * pointers borrowed from the tree. */
#ifndef CS_REMOTE_H
#define CS_REMOTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "carbon/signal.h"
#include "carbon/util/error.h"
#include "carbon/util/http.h"

#define CS_REMOTE_ERR_MAX 320

typedef struct cs_remote {
  const char *name; /* provider name, static */
  /* Set by the provider after init (static, or NULL for none): a phrase of
   * the message its API sends, with a 400 or 404, for a zone or place it
   * has no data for. Compared case-insensitively. */
  const char *not_served_says;
  char *base; /* base URL without a trailing slash */
  long timeout_ms, connect_timeout_ms;
  size_t max_body;
  /* Set by the provider after init (or NULL): its cs_provider's cancel
   * flag, which ends requests in flight (CS_ECANCELED). */
  const atomic_bool *cancel;
  pthread_mutex_t mu;
  uint64_t paused_until_ns; /* monotonic; after a 429 */
} cs_remote;

/* base must be an http:// or https:// URL (CS_EINVAL otherwise). */
cs_err cs_remote_init(cs_remote *r, const char *name, const char *base,
                      long timeout_ms) CS_MUST_USE;
void cs_remote_destroy(cs_remote *r);

/* GET base + path (path starts with '/' and carries the query). CS_OK with
 * *out set for a 2xx JSON body. Otherwise: CS_EAUTH (401, 403), CS_ENOTFOUND
 * (a 400 or 404 whose JSON message has the not_served_says phrase: the
 * provider does not serve what was asked, an answer rather than a failure),
 * CS_EBUSY (429, or still paused by an earlier 429: no request is made),
 * CS_EHTTP (other statuses, a 404 that says nothing of the kind among them:
 * a wrong URL), CS_EPARSE (2xx body that is not JSON),
 * or the transport's error; err gets a sentence with the provider's message
 * when the body carries one, every credential of the request in it
 * replaced by "<redacted>" however the body spells it (plainly, or with
 * JSON escapes). `status` (optional) gets the HTTP status. */
cs_err cs_remote_get_json(cs_remote *r, const char *path,
                          const char *const *headers, size_t nheaders,
                          const char *user, const char *password, cJSON **out,
                          long *status, char *err, size_t errcap) CS_MUST_USE;

/* Strict getters on an object member. `what` names the object in errors
 * ("forecast[3]"). A number must be finite; a time must be RFC 3339. With
 * `nullable`, a JSON null gives CS_ENOTFOUND (and no error text). */
/* What a JSON value is, for messages: "a string", "null", "nothing
 * (missing)" for NULL. */
const char *cs_remote_type_name(const cJSON *v);

cs_err cs_remote_num(const cJSON *obj, const char *key, const char *what,
                     bool nullable, double *out, char *err,
                     size_t errcap) CS_MUST_USE;
cs_err cs_remote_str(const cJSON *obj, const char *key, const char *what,
                     const char **out, char *err, size_t errcap) CS_MUST_USE;
cs_err cs_remote_time(const cJSON *obj, const char *key, const char *what,
                      int64_t *out, char *err, size_t errcap) CS_MUST_USE;
/* CS_EPARSE when the string member `key` names another zone or region than
 * `want` (compared case-insensitively): an answer for another place must
 * never be served as this one's. An absent or null member passes. */
cs_err cs_remote_same_zone(const cJSON *obj, const char *key, const char *what,
                           const char *want, char *err,
                           size_t errcap) CS_MUST_USE;
/* The array member `key` (CS_EPARSE when absent or of another type). */
cs_err cs_remote_array(const cJSON *obj, const char *key, const char *what,
                       const cJSON **out, char *err, size_t errcap) CS_MUST_USE;

/* The common end of a provider's forecast op: on rc == CS_OK slices `full`
 * to [from, to) into *out (CS_ENOTFOUND when nothing overlaps); logs any
 * failure with `err`; frees `full`. Returns the final code. */
cs_err cs_remote_finish_forecast(const char *provider, const char *zone,
                                 cs_err rc, cs_series *full, int64_t from,
                                 int64_t to, cs_series *out, char *err,
                                 size_t errcap) CS_MUST_USE;
/* The common end of a current op: on rc == CS_OK fills *out from the point
 * of `s` that covers `now` (the last one at or before it; the first when all
 * are later, which the signals layer judges); logs any failure; frees `s`.
 * `estimated` is the first point's flag: any later point is a forecast made
 * before its period began (an API that ignored the one-point request), so is
 * estimated. */
cs_err cs_remote_finish_current(const char *provider, const char *zone,
                                cs_err rc, cs_series *s, int64_t now,
                                bool estimated, cs_signal *out,
                                const char *err) CS_MUST_USE;
/* Logs one "Carbon provider request failed" line (none for CS_ECANCELED:
 * that is our own stop). */
void cs_remote_log_failure(const char *provider, const char *zone, cs_err rc,
                           const char *err);

#endif
