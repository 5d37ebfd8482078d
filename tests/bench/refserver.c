#include "tests/bench/refserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/jscan.h"

#define MAX_CONNS 1024
#define HEAD_MAX 16384

typedef struct rconn {
  refserver *srv;
  int fd;
  pthread_t t;
} rconn;

struct refserver {
  int lfd;
  unsigned port;
  char *reply;
  size_t reply_len;
  char head[160];
  size_t head_len;
  pthread_t acceptor;
  pthread_mutex_t mu;
  rconn *conns[MAX_CONNS];
  size_t nconns;
  atomic_bool stopping;
  atomic_long bad;
};

bool bench_send_all(int fd, struct iovec *iov, int n)
{
  while (n > 0) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EPIPE;
      return false;
    }
    size_t left = (size_t)w;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

/* The Content-Length of a request head, or -1. */
static long content_length(const char *head, const char *end)
{
  static const char name[] = "\r\nContent-Length:";
  const char *p = memmem(head, (size_t)(end - head), name, sizeof(name) - 1);
  if (!p)
    return -1;
  return strtol(p + sizeof(name) - 1, NULL, 10);
}

/* Serves one connection until the client closes it. Bytes after a head
 * are the start of its body, as a client may send both in one write. */
static void *serve(void *arg)
{
  rconn *c = arg;
  refserver *r = c->srv;
  size_t cap = 1u << 20, len = 0;
  char *buf = cs_malloc(cap + 1);
  for (;;) {
    const char *eoh = NULL;
    while (!(eoh = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL)) {
      if (len >= HEAD_MAX)
        goto out;
      ssize_t k = recv(c->fd, buf + len, cap - len, 0);
      if (k <= 0)
        goto out;
      len += (size_t)k;
    }
    size_t hl = (size_t)(eoh + 4 - buf);
    long cl = content_length(buf, eoh + 2);
    if (cl < 0)
      goto out;
    size_t need = hl + (size_t)cl;
    if (need > cap) {
      cap = need;
      buf = cs_realloc(buf, cap + 1);
    }
    while (len < need) {
      ssize_t k = recv(c->fd, buf + len, cap - len, 0);
      if (k <= 0)
        goto out;
      len += (size_t)k;
    }
    cs_jscan s;
    cs_jscan_init(&s, buf + hl, (size_t)cl, 0);
    bool ok =
        cs_jscan_skip(&s, NULL, NULL) == CS_OK && cs_jscan_finish(&s) == CS_OK;
    if (!ok)
      atomic_fetch_add(&r->bad, 1);
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Length: 0\r\n\r\n";
    struct iovec iov[2] = {
        {ok ? r->head : (char *)bad, ok ? r->head_len : sizeof(bad) - 1},
        {r->reply, ok ? r->reply_len : 0}};
    if (!bench_send_all(c->fd, iov, 2))
      goto out;
    memmove(buf, buf + need, len - need); /* a pipelined next request */
    len -= need;
  }
out:
  free(buf);
  return NULL;
}

static void *accept_loop(void *arg)
{
  refserver *r = arg;
  for (;;) {
    int fd = accept(r->lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      break; /* the listener was shut down */
    }
    if (atomic_load(&r->stopping)) {
      close(fd);
      break;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_mutex_lock(&r->mu);
    if (r->nconns == MAX_CONNS) {
      pthread_mutex_unlock(&r->mu);
      close(fd);
      continue;
    }
    rconn *c = cs_calloc(1, sizeof(*c));
    c->srv = r;
    c->fd = fd;
    r->conns[r->nconns++] = c;
    pthread_create(&c->t, NULL, serve, c);
    pthread_mutex_unlock(&r->mu);
  }
  return NULL;
}

refserver *refserver_start(const char *reply, size_t len)
{
  refserver *r = cs_calloc(1, sizeof(*r));
  pthread_mutex_init(&r->mu, NULL);
  r->reply = cs_malloc(len + 1);
  memcpy(r->reply, reply, len);
  r->reply_len = len;
  int k = snprintf(r->head, sizeof(r->head),
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   len);
  r->head_len = (size_t)k;
  r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof(sa);
  if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(r->lfd, 128) != 0 ||
      getsockname(r->lfd, (struct sockaddr *)&sa, &sl) != 0) {
    if (r->lfd >= 0)
      close(r->lfd);
    free(r->reply);
    free(r);
    return NULL;
  }
  r->port = ntohs(sa.sin_port);
  pthread_create(&r->acceptor, NULL, accept_loop, r);
  return r;
}

unsigned refserver_port(const refserver *r)
{
  return r->port;
}

long refserver_bad(const refserver *r)
{
  return atomic_load(&r->bad);
}

void refserver_stop(refserver *r)
{
  if (!r)
    return;
  atomic_store(&r->stopping, true);
  shutdown(r->lfd, SHUT_RDWR);
  pthread_join(r->acceptor, NULL);
  close(r->lfd);
  for (size_t i = 0; i < r->nconns; i++) {
    shutdown(r->conns[i]->fd, SHUT_RDWR);
    pthread_join(r->conns[i]->t, NULL);
    close(r->conns[i]->fd);
    free(r->conns[i]);
  }
  pthread_mutex_destroy(&r->mu);
  free(r->reply);
  free(r);
}
