/* head_watch.h: a deadline on request heads. libmicrohttpd (0.9.75) times
 * out only silence, so a client sending its request line and headers a
 * byte at a time ("slowloris") could hold a connection for as long as
 * http.maxHeaderBytes lasts at one byte per http.connectionTimeout. The
 * watch gives every connection, from the moment it is idle (opened, or its
 * previous request ended), `timeout` to complete its next request head,
 * and shuts down the socket of one that does not; libmicrohttpd then sees
 * the connection end and closes it.
 * Thread-safe: yes; the server's connection threads report, one thread of
 * the watch's own checks.
 * Ownership: the watch owns its slots; a slot is valid from add to remove.
 * The descriptor must stay open until remove returns (libmicrohttpd
 * reports a connection closed before it closes the socket), which is what
 * makes the shutdown safe from descriptor reuse. */
#ifndef CS_HEAD_WATCH_H
#define CS_HEAD_WATCH_H

#include <stdint.h>

#include "carbon/util/error.h"

typedef struct cs_head_watch cs_head_watch;
typedef struct cs_head_slot cs_head_slot;

/* Called from the watch's thread after it shut a connection down: who,
 * and how long it had been waiting for the head. */
typedef void (*cs_head_cut_fn)(void *ctx, const char *remote,
                               uint64_t waited_ns);

/* Starts the watch's thread. timeout_ns > 0; `cut` may be NULL. */
cs_err cs_head_watch_new(uint64_t timeout_ns, cs_head_cut_fn cut, void *ctx,
                         cs_head_watch **out) CS_MUST_USE;

/* A connection opened on `fd`: idle from now. `remote` is copied. */
cs_head_slot *cs_head_watch_add(cs_head_watch *w, int fd, const char *remote);

/* A request head on the slot's connection is complete: no deadline until
 * cs_head_watch_idle. */
void cs_head_watch_busy(cs_head_watch *w, cs_head_slot *s);

/* The request ended: the next head is due within the timeout from now. */
void cs_head_watch_idle(cs_head_watch *w, cs_head_slot *s);

/* The connection is closing; call before its descriptor is closed. */
void cs_head_watch_remove(cs_head_watch *w, cs_head_slot *s);

/* Stops the thread and frees the slots left. NULL is ignored. */
void cs_head_watch_free(cs_head_watch *w);

#endif
