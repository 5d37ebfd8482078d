/* server.h: the HTTP(S) front door: libmicrohttpd with a thread pool for
 * connections and a separate pool of decision threads (carbon/util/pool.h),
 * the extender routes (POST <prefix>/filter, <prefix>/prioritize), /healthz,
 * /readyz, /metrics, body and header caps, timeouts, TLS and mTLS, request
 * ids, per-request access log lines and HTTP metrics, graceful shutdown.
 * Thread-safe: the handler's functions are called from many threads at
 * once (handle from the decision threads, ready from the connection
 * threads); cs_server_shutdown and cs_server_free must be called from one
 * thread, not from inside a handler.
 * Ownership: options are copied (files are read) by cs_server_new; the
 * handler's ctx and the metrics registry are borrowed and must outlive the
 * server; request bodies passed to the handler are borrowed for the call;
 * the reply body the handler returns is transferred to the server. */
#ifndef CS_SERVER_H
#define CS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/buf.h"
#include "carbon/util/error.h"
#include "carbon/util/metrics.h"
#include "scheduler/decision.h"

/* Defaults applied when an option is 0 / NULL: the same as the
 * configuration's (cmd/carbonshift/config.c), so that a server built in a
 * test behaves as the binary does. */
#define CS_SERVER_DEFAULT_MAX_BODY (128u << 20)     /* 128 MiB */
#define CS_SERVER_DEFAULT_MAX_HEADER (64u << 10)    /* 64 KiB */
#define CS_SERVER_DEFAULT_CONN_TIMEOUT_S 30u        /* idle keep-alive */
#define CS_SERVER_DEFAULT_REQUEST_TIMEOUT_MS 10000u /* body upload */
#define CS_SERVER_DEFAULT_HEADER_TIMEOUT_MS 30000u  /* idle to full head */
#define CS_SERVER_DEFAULT_MAX_CONNECTIONS 1024u
#define CS_SERVER_DEFAULT_STREAM_BODY (1u << 20)

typedef struct cs_server_opts {
  /* "ADDR:PORT": "127.0.0.1:8080", "0.0.0.0:8443", "[::1]:8443", "[::]:80"
   * (IPv6 and IPv4), ":8080" (all interfaces, like "[::]"), "localhost:0".
   * Port 0 picks a free port (see cs_server_port). Required. */
  const char *listen;
  /* Optional path prefix, e.g. "/carbonshift": the extender routes are
   * then <prefix>/filter and <prefix>/prioritize; /healthz, /readyz and
   * /metrics answer both at the root and under the prefix. Trailing and
   * repeated slashes are ignored, so urlPrefix ".../carbonshift/" in the
   * scheduler configuration works too. */
  const char *path_prefix;
  /* PEM files. cert and key together turn on HTTPS (TLS 1.2 minimum);
   * client_ca additionally requires clients to present a certificate
   * signed by that CA for the clientAuth purpose (mTLS), on every route
   * but GET /healthz and /readyz (kubelet probes have no certificate). */
  const char *tls_cert_file;
  const char *tls_key_file;
  const char *tls_client_ca_file;
  /* How often the certificate, key and client CA files are looked at for
   * a renewal (scheduler/tls_certs.h); 0: every 10 s. */
  unsigned tls_reload_check_ms;
  size_t max_body_bytes;         /* 0: CS_SERVER_DEFAULT_MAX_BODY */
  size_t max_header_bytes;       /* 0: CS_SERVER_DEFAULT_MAX_HEADER; the
                                    whole request head, per connection */
  unsigned threads;              /* 0: the CPUs the process may run on
                                    (its affinity mask); threads that read
                                    and write connections */
  unsigned decision_threads;     /* 0: as threads; threads that run the
                                    handler's `handle` */
  size_t stream_body_bytes;      /* 0: CS_SERVER_DEFAULT_STREAM_BODY;
                                    SIZE_MAX: never. Bodies this large,
                                    with a Content-Length, are parsed while
                                    they arrive, by at most
                                    decision_threads - 1 decisions (1 with
                                    a single thread) at once */
  unsigned connection_timeout_s; /* 0: default; idle connections close */
  unsigned request_timeout_ms;   /* 0: default; limit on receiving one
                                    request's body */
  unsigned header_timeout_ms;    /* 0: default; limit from a connection
                                    becoming idle (opened, or its previous
                                    request ended) to its next complete
                                    request head */
  unsigned max_connections;      /* 0: default */
  /* Optional second listener, "ADDR:PORT" as `listen`, for kubelet probes:
   * plain HTTP (whatever the TLS options), GET and HEAD of /healthz and
   * /readyz only (at the root and under the prefix), with its own thread
   * and CS_SERVER_PROBE_MAX_CONNECTIONS connections, so probes are
   * answered while the main listener is at max_connections or its
   * threads are busy. NULL or "": none. */
  const char *probe_listen;
} cs_server_opts;

/* The probe listener's own limits: connections, and seconds a connection
 * may sit idle. Probes open one short connection at a time. */
#define CS_SERVER_PROBE_MAX_CONNECTIONS 64u
#define CS_SERVER_PROBE_IDLE_TIMEOUT_S 5u

/* What the server calls for the extender routes and /readyz. main wires a
 * cs_decider into it (ctx = the decider; handle calls cs_decider_handle,
 * ready calls cs_decider_ready); tests use their own. */
typedef struct cs_server_handler {
  void *ctx;
  /* Must fill *out (status and a malloc'd JSON body, owned by the server
   * afterwards). Without a feed, the body is whole and NUL-terminated at
   * body[len]. With one, the body is still arriving (see
   * http.streamBodyBytes): body[0..len) is there, feed->wait (jscan.h)
   * waits for the rest, and the body is NUL-terminated once it is whole. */
  void (*handle)(void *ctx, cs_verb verb, const char *body, size_t len,
                 const cs_jscan_feed *feed, const char *request_id,
                 cs_reply *out);
  /* Appends a JSON value (an object) describing readiness to `detail`;
   * false when the service should not take traffic. NULL: always ready. */
  bool (*ready)(void *ctx, cs_buf *detail);
} cs_server_handler;

typedef struct cs_server cs_server;

/* Validates the options, reads the TLS files, binds and starts serving.
 * On failure *out is NULL and err holds a sentence naming the option and
 * the cause ("cannot listen on 127.0.0.1:80: Permission denied"). Declares
 * the HTTP metric families in `metrics` (may be NULL). */
cs_err cs_server_new(const cs_server_opts *opts,
                     const cs_server_handler *handler, cs_metrics *metrics,
                     cs_server **out, char *err, size_t errlen) CS_MUST_USE;

/* The checks of cs_server_new that need no socket: the option pairs, the
 * listen and probe addresses' form, and the TLS files (the key matches its
 * certificate, the client CA holds a certificate). Binds nothing, so a
 * port in use is not found. The same messages as cs_server_new. */
cs_err cs_server_check(const cs_server_opts *opts, char *err,
                       size_t errlen) CS_MUST_USE;

/* The bound port (the chosen one when the options said port 0). */
unsigned cs_server_port(const cs_server *s);

/* The probe listener's bound port; 0 without one. */
unsigned cs_server_probe_port(const cs_server *s);

/* Graceful stop: stops accepting connections, lets requests in flight
 * finish (their replies carry "Connection: close"; /readyz turns 503, on
 * the probe listener too, which keeps answering until the end) for
 * up to timeout_ms, then stops the server. CS_ETIMEDOUT when requests were
 * still in flight at the deadline (they are cut, and logged): decisions
 * still queued are answered 503, and one already running is waited for,
 * as a decision cannot be interrupted. Safe to call once; later calls
 * return CS_OK at once. */
cs_err cs_server_shutdown(cs_server *s, unsigned timeout_ms) CS_MUST_USE;

/* Stops (abruptly, if cs_server_shutdown was not called) and frees. */
void cs_server_free(cs_server *s);

#endif
