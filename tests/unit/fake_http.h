/* fake_http.h: a real HTTP server inside the test process (libmicrohttpd on
 * 127.0.0.1, a free port) that stands in for a carbon provider. Each path
 * has a default reply (a fixture from $CS_SHARED/fixtures/providers, read
 * with tests/unit/testutil.h, or a literal body) and a queue of one-shot
 * replies that misbehave on demand: any status, Retry-After, a truncated
 * body, or a hang. It records every
 * request (path, query, chosen headers) for assertions.
 * Thread-safe: yes; the server answers on its own threads.
 * Ownership: fh_* copy every string they are given; returned strings are
 * owned by the caller (free()). */
#ifndef FH_FAKE_HTTP_H
#define FH_FAKE_HTTP_H

#include <stddef.h>

typedef struct fh_server fh_server;

typedef struct fh_reply {
  int status;               /* 0 means 200 */
  const char *body;         /* literal body, or NULL */
  const char *fixture;      /* file under fixtures/providers, or NULL */
  long retry_after;         /* > 0: a Retry-After header (seconds) */
  size_t truncate;          /* > 0: send only the first `truncate` bytes */
  long hang_ms;             /* > 0: wait this long (or until fh_stop) first */
  const char *content_type; /* default application/json */
} fh_reply;

fh_server *fh_start(void);
void fh_stop(fh_server *s); /* NULL does nothing; releases hanging replies */
/* "http://127.0.0.1:PORT" (borrowed, valid until fh_stop). */
const char *fh_url(const fh_server *s);

/* The default reply for `path` (exact match, query ignored). Unknown paths
 * answer 404. */
void fh_set(fh_server *s, const char *path, fh_reply r);
/* Queues a one-shot reply for `path`, used before the default. */
void fh_push(fh_server *s, const char *path, fh_reply r);
/* Forgets every route, queued reply and recorded request. */
void fh_reset(fh_server *s);
/* Lets every hanging reply finish now. */
void fh_release(fh_server *s);

/* The length of a shared fixture without its trailing white space: the
 * shortest prefix that is the whole document (for truncation sweeps). */
size_t fh_fixture_len(const char *fixture);

/* Requests seen for `path` so far. */
int fh_hits(fh_server *s, const char *path);
/* The query string ("a=1&b=2", arguments in arrival order) and one request
 * header of the last request for `path`, or NULL. */
char *fh_last_query(fh_server *s, const char *path);
char *fh_last_header(fh_server *s, const char *path, const char *name);

/* Log capture for assertions on error messages: lines written by
 * carbon/util/log.h between fh_log_capture() and fh_log_take() are
 * returned by the latter (caller frees); logging goes back to stderr. */
void fh_log_capture(void);
char *fh_log_take(void);

/* Runs a Check suite (CK_ENV verbosity) and frees it; the exit status for
 * main(). Declared with an opaque type so that this header needs no
 * check.h. */
struct Suite;
int fh_run_suite(struct Suite *s);
#endif
