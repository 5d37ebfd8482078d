/* fake_h2.h: a fake HTTPS server that speaks only HTTP/2 (ALPN "h2"), on
 * 127.0.0.1 with an ephemeral port, for tests of what a client does with
 * its HTTP/2 connections (kube-apiserver speaks HTTP/2 over TLS, and
 * libcurl keeps an HTTP/2 connection across a cut stream, which HTTP/1.1
 * does not). It counts the connections it accepts and records on which
 * one each request came. A handler supplied by the test answers each
 * request, or makes its connection go dead: from then on the server
 * neither reads nor writes on it, but keeps it open, which is how a peer
 * gone without a word (a partition, a lost node) looks to a client.
 * Thread-safe: yes; the handler runs on connection threads (one per
 * connection), one request at a time per connection.
 * Ownership: reply bodies are malloc'd and taken by the server; recorded
 * paths belong to it until fh2_stop. */
#ifndef FAKE_H2_H
#define FAKE_H2_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fh2_server fh2_server;

typedef enum fh2_end {
  FH2_END = 0,    /* the answer is whole: the stream ends */
  FH2_DEAD_AFTER, /* status and body go out, then the connection dies
                     with the stream open */
  FH2_DEAD        /* no answer: the connection dies at this request */
} fh2_end;

typedef struct fh2_reply {
  int status; /* default 200 */
  char *body; /* NULL: none */
  fh2_end end;
} fh2_reply;

/* path: ":path", with the query; conn: the request's connection (0-based,
 * in accept order); index: its position among all requests. */
typedef void (*fh2_handler)(void *ud, const char *method, const char *path,
                            size_t conn, size_t index, fh2_reply *out);

/* Serves with the PEM certificate chain and key in these files; NULL
 * (and why on stderr) when it cannot. */
fh2_server *fh2_start(const char *cert_file, const char *key_file,
                      fh2_handler h, void *ud);
void fh2_stop(fh2_server *s);
/* "https://127.0.0.1:<port>" (owned by the server). */
const char *fh2_url(fh2_server *s);
size_t fh2_connections(fh2_server *s);
/* Waits until at least n requests arrived; false on timeout. */
bool fh2_wait_requests(fh2_server *s, size_t n, int timeout_ms);
size_t fh2_request_count(fh2_server *s);
/* Request i's connection and ":path"; i below fh2_request_count. */
size_t fh2_request_conn(fh2_server *s, size_t i);
const char *fh2_request_path(fh2_server *s, size_t i);
/* Request i's ":authority" (the Host it names), and the TLS server name
 * (SNI) its connection sent; "" for none. */
const char *fh2_request_authority(fh2_server *s, size_t i);
const char *fh2_request_sni(fh2_server *s, size_t i);

#endif
