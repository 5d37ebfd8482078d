/* refserver.h: the least an extender can do per call, for the bench to
 * measure beside carbonshift. A loopback HTTP/1.1 server, one thread per
 * connection, that reads each request (head, then a Content-Length body),
 * validates the body once with carbon/util/jscan.c (the parse floor) and
 * answers with a fixed reply: the same bytes carbonshift answered. Its
 * latency at a given concurrency, with the bench's client on the same
 * cores, is what a server doing no work beyond the parse gets on this
 * machine: the transport, the scheduling of the client's and server's
 * threads, and one parse.
 * Thread-safe: start and stop from one thread.
 * Ownership: the reply is copied. */
#ifndef CS_BENCH_REFSERVER_H
#define CS_BENCH_REFSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

typedef struct refserver refserver;

/* Listens on 127.0.0.1 on a free port; NULL when it cannot. */
refserver *refserver_start(const char *reply, size_t len);
unsigned refserver_port(const refserver *r);
/* Requests whose body was not valid JSON (answered 400). */
long refserver_bad(const refserver *r);
/* Closes the listener and every connection, and joins the threads. */
void refserver_stop(refserver *r);

/* Sends all of iov[0..n) on a blocking socket (iov is consumed); false
 * with errno set when the peer or the socket fails. The bench's client
 * uses it too. */
bool bench_send_all(int fd, struct iovec *iov, int n);

#endif
