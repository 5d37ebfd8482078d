/* fake_kube.h: a scripted fake Kubernetes API server for tests, on
 * 127.0.0.1 with an ephemeral port (libmicrohttpd, one thread per
 * connection). Every request is recorded; a handler supplied by the test
 * decides each reply: a plain body, or a chunked stream of lines that ends
 * cleanly, breaks the connection, or stays open until fk_stop.
 * Thread-safe: yes; the handler runs on connection threads.
 * Ownership: recorded requests belong to the server until fk_stop; reply
 * bodies and lines set by the handler are malloc'd and taken by the server. */
#ifndef FAKE_KUBE_H
#define FAKE_KUBE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fk_server fk_server;

typedef struct fk_request {
  char method[16];
  char *path;  /* without the query */
  char *query; /* decoded "k=v&k=v" in arrival order, "" when none */
  char *ctype; /* Content-Type, "" when none */
  char *auth;  /* Authorization, "" when none */
  char *body;  /* NUL-terminated */
  size_t bodylen;
} fk_request;

typedef enum fk_end {
  FK_END_CLEAN = 0, /* terminating chunk: the server ended the watch */
  FK_END_DROP,      /* the connection breaks mid-stream */
  FK_END_HOLD       /* stays open until fk_stop */
} fk_end;

typedef struct fk_reply {
  int status;   /* default 200 */
  char *body;   /* a whole JSON body; NULL with lines for a stream */
  char **lines; /* stream lines, each sent with a trailing newline */
  size_t nlines;
  fk_end end;
  const char *retry_after; /* a Retry-After header (static text), or NULL */
} fk_reply;

/* index: the request's position among all requests (0-based). */
typedef void (*fk_handler)(void *ud, const fk_request *rq, size_t index,
                           fk_reply *out);

fk_server *fk_start(fk_handler h, void *ud);
void fk_stop(fk_server *s);
/* "http://127.0.0.1:<port>" (owned by the server). */
const char *fk_url(fk_server *s);
size_t fk_count(fk_server *s);
/* Waits until at least n requests arrived; false on timeout. */
bool fk_wait_count(fk_server *s, size_t n, int timeout_ms);
const fk_request *fk_get(fk_server *s, size_t i);
/* The decoded value of a query parameter, malloc'd; NULL when absent. */
char *fk_param(const fk_request *rq, const char *name);
/* Appends a stream line (takes ownership of line). */
void fk_reply_line(fk_reply *r, char *line);

#endif
