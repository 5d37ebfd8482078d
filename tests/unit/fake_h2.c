#include "fake_h2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "tests/unit/tu_deadline.h"

#define FH2_MAX_CONNS 64
#define FH2_MAX_REQUESTS 256

typedef struct fh2_stream {
  int32_t id;
  char method[16];
  char *path;
  char *authority;
  char *body;
  size_t len, off;
  bool ends; /* the stream ends with the body */
  struct fh2_stream *next;
} fh2_stream;

typedef struct fh2_conn {
  fh2_server *s;
  size_t index;
  int fd; /* closed by fh2_stop, after the thread ended */
  SSL *ssl;
  char sni[256]; /* the server name the client sent, "" for none */
  pthread_t th;
  bool started;
  nghttp2_session *session;
  fh2_stream *streams;
  bool dying; /* dies once what is queued went out */
  bool dead;  /* neither reads nor writes any more */
} fh2_conn;

typedef struct fh2_record {
  size_t conn;
  char *path;
  char *authority;
  char *sni;
} fh2_record;

struct fh2_server {
  int lfd;
  char url[64];
  SSL_CTX *ctx;
  fh2_handler handler;
  void *ud;
  pthread_t acceptor;
  atomic_bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  fh2_conn *conns[FH2_MAX_CONNS];
  size_t nconns;
  fh2_record reqs[FH2_MAX_REQUESTS];
  size_t nreqs;
};

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------- nghttp2 callbacks */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data,
                       size_t length, int flags, void *ud)
{
  fh2_conn *c = ud;
  if (c->dead)
    return NGHTTP2_ERR_WOULDBLOCK;
  size_t done = 0;
  while (done < length) {
    int n = SSL_write(c->ssl, data + done, (int)(length - done));
    if (n <= 0)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    done += (size_t)n;
  }
  return (ssize_t)length;
}

static int on_begin_headers(nghttp2_session *session,
                            const nghttp2_frame *frame, void *ud)
{
  fh2_conn *c = ud;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  fh2_stream *st = cs_calloc(1, sizeof(*st));
  st->id = frame->hd.stream_id;
  st->next = c->streams;
  c->streams = st;
  nghttp2_session_set_stream_user_data(session, st->id, st);
  return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud)
{
  fh2_stream *st =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!st)
    return 0;
  if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
    free(st->path);
    st->path = cs_strndup((const char *)value, valuelen);
  } else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
    free(st->authority);
    st->authority = cs_strndup((const char *)value, valuelen);
  } else if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
    size_t n =
        valuelen < sizeof(st->method) - 1 ? valuelen : sizeof(st->method) - 1;
    memcpy(st->method, value, n);
    st->method[n] = '\0';
  }
  return 0;
}

/* Hands out the body; at its end either ends the stream or, for a
 * connection about to die, defers it for ever. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id,
                         uint8_t *buf, size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *ud)
{
  fh2_conn *c = ud;
  fh2_stream *st = source->ptr;
  size_t n = st->len - st->off;
  if (n > length)
    n = length;
  if (n)
    memcpy(buf, st->body + st->off, n);
  st->off += n;
  if (st->off < st->len)
    return (ssize_t)n;
  if (st->ends) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
  }
  c->dying = true;
  return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

static void answer(fh2_conn *c, fh2_stream *st)
{
  fh2_server *s = c->s;
  pthread_mutex_lock(&s->mu);
  size_t index = s->nreqs;
  if (s->nreqs < FH2_MAX_REQUESTS) {
    s->reqs[s->nreqs].conn = c->index;
    s->reqs[s->nreqs].path = cs_strdup(st->path ? st->path : "");
    s->reqs[s->nreqs].authority = cs_strdup(st->authority ? st->authority : "");
    s->reqs[s->nreqs].sni = cs_strdup(c->sni);
    s->nreqs++;
  }
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);

  fh2_reply out = {.status = 200};
  s->handler(s->ud, st->method, st->path ? st->path : "", c->index, index,
             &out);
  if (out.end == FH2_DEAD) {
    free(out.body);
    c->dead = true;
    return;
  }
  st->body = out.body;
  st->len = out.body ? strlen(out.body) : 0;
  st->ends = out.end == FH2_END;
  char status[16];
  snprintf(status, sizeof(status), "%d", out.status);
  nghttp2_nv hdrs[] = {
      {(uint8_t *)":status", (uint8_t *)status, 7, strlen(status),
       NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16,
       NGHTTP2_NV_FLAG_NONE},
  };
  nghttp2_data_provider body = {.source.ptr = st, .read_callback = read_body};
  nghttp2_submit_response(c->session, st->id, hdrs, 2, &body);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                         void *ud)
{
  fh2_conn *c = ud;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) || c->dead)
    return 0;
  fh2_stream *st =
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (st)
    answer(c, st);
  return 0;
}

/* ----------------------------------------------------- connections */

static void *conn_main(void *arg)
{
  fh2_conn *c = arg;
  fh2_server *s = c->s;
  nghttp2_session_callbacks *cb = NULL;
  if (SSL_accept(c->ssl) != 1)
    goto out;
  const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
  snprintf(c->sni, sizeof(c->sni), "%s", sni ? sni : "");
  if (nghttp2_session_callbacks_new(&cb) != 0)
    goto out;
  nghttp2_session_callbacks_set_send_callback(cb, on_send);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  int made = nghttp2_session_server_new(&c->session, cb, c);
  nghttp2_session_callbacks_del(cb);
  if (made != 0)
    goto out;
  nghttp2_settings_entry set = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100};
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, &set, 1);
  uint8_t buf[16384];
  while (!atomic_load(&s->stop)) {
    if (!c->dead && nghttp2_session_send(c->session) != 0)
      break;
    if (c->dying)
      c->dead = true;
    if (c->dead) { /* a black hole until the server stops */
      sleep_ms(20);
      continue;
    }
    if (!nghttp2_session_want_read(c->session) &&
        !nghttp2_session_want_write(c->session))
      break;
    if (SSL_pending(c->ssl) == 0) {
      struct pollfd p = {.fd = c->fd, .events = POLLIN};
      if (poll(&p, 1, 50) <= 0)
        continue;
    }
    int n = SSL_read(c->ssl, buf, sizeof(buf));
    if (n <= 0)
      break;
    if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0)
      break;
  }
out:
  /* Ended otherwise than by going dead: the client sees the close at
   * once, not a silence (the fd itself is closed by fh2_stop). */
  if (!c->dead)
    shutdown(c->fd, SHUT_RDWR);
  nghttp2_session_del(c->session);
  c->session = NULL;
  while (c->streams) {
    fh2_stream *next = c->streams->next;
    free(c->streams->path);
    free(c->streams->authority);
    free(c->streams->body);
    free(c->streams);
    c->streams = next;
  }
  return NULL;
}

static void *accept_main(void *arg)
{
  fh2_server *s = arg;
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    pthread_mutex_lock(&s->mu);
    if (s->nconns == FH2_MAX_CONNS) {
      pthread_mutex_unlock(&s->mu);
      close(fd);
      continue;
    }
    fh2_conn *c = cs_calloc(1, sizeof(*c));
    c->s = s;
    c->index = s->nconns;
    c->fd = fd;
    c->ssl = SSL_new(s->ctx);
    s->conns[s->nconns++] = c;
    c->started = c->ssl && SSL_set_fd(c->ssl, fd) == 1 &&
                 pthread_create(&c->th, NULL, conn_main, c) == 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* Only h2 is offered: a client that cannot speak it is refused. */
static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
  unsigned char *sel = NULL;
  if (nghttp2_select_next_protocol(&sel, outlen, in, inlen) != 1)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

fh2_server *fh2_start(const char *cert_file, const char *key_file,
                      fh2_handler h, void *ud)
{
  /* A client gone mid-write must not kill the test with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  fh2_server *s = cs_calloc(1, sizeof(*s));
  s->lfd = -1;
  s->handler = h;
  s->ud = ud;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->ctx = SSL_CTX_new(TLS_server_method());
  if (!s->ctx || !SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) ||
      SSL_CTX_use_certificate_chain_file(s->ctx, cert_file) != 1 ||
      SSL_CTX_use_PrivateKey_file(s->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    fprintf(stderr, "fh2_start: cannot load %s and %s\n", cert_file, key_file);
    ERR_print_errors_fp(stderr);
    goto fail;
  }
  SSL_CTX_set_alpn_select_cb(s->ctx, select_h2, NULL);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(s->lfd, 64) != 0 ||
      getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0) {
    perror("fh2_start: listen");
    goto fail;
  }
  snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%u",
           (unsigned)ntohs(a.sin_port));
  if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
    fprintf(stderr, "fh2_start: cannot start the acceptor\n");
    goto fail;
  }
  return s;
fail:
  if (s->lfd >= 0)
    close(s->lfd);
  SSL_CTX_free(s->ctx);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
  return NULL;
}

void fh2_stop(fh2_server *s)
{
  if (!s)
    return;
  atomic_store(&s->stop, true);
  pthread_join(s->acceptor, NULL);
  close(s->lfd);
  /* Wakes a connection thread blocked in SSL_accept or SSL_read; the fds
   * are closed only after the threads ended, so none is reused under
   * them. */
  for (size_t i = 0; i < s->nconns; i++)
    shutdown(s->conns[i]->fd, SHUT_RDWR);
  for (size_t i = 0; i < s->nconns; i++) {
    fh2_conn *c = s->conns[i];
    if (c->started)
      pthread_join(c->th, NULL);
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
  }
  for (size_t i = 0; i < s->nreqs; i++) {
    free(s->reqs[i].path);
    free(s->reqs[i].authority);
    free(s->reqs[i].sni);
  }
  SSL_CTX_free(s->ctx);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

const char *fh2_url(fh2_server *s)
{
  return s->url;
}

size_t fh2_connections(fh2_server *s)
{
  pthread_mutex_lock(&s->mu);
  size_t n = s->nconns;
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t fh2_request_count(fh2_server *s)
{
  pthread_mutex_lock(&s->mu);
  size_t n = s->nreqs;
  pthread_mutex_unlock(&s->mu);
  return n;
}

bool fh2_wait_requests(fh2_server *s, size_t n, int timeout_ms)
{
  struct timespec until = tu_deadline_ms(timeout_ms);
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  while (s->nreqs < n && rc == 0)
    rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
  bool ok = s->nreqs >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

size_t fh2_request_conn(fh2_server *s, size_t i)
{
  pthread_mutex_lock(&s->mu);
  size_t c = i < s->nreqs ? s->reqs[i].conn : (size_t)-1;
  pthread_mutex_unlock(&s->mu);
  return c;
}

const char *fh2_request_path(fh2_server *s, size_t i)
{
  pthread_mutex_lock(&s->mu);
  const char *p = i < s->nreqs ? s->reqs[i].path : NULL;
  pthread_mutex_unlock(&s->mu);
  return p;
}

const char *fh2_request_authority(fh2_server *s, size_t i)
{
  pthread_mutex_lock(&s->mu);
  const char *a = i < s->nreqs ? s->reqs[i].authority : NULL;
  pthread_mutex_unlock(&s->mu);
  return a;
}

const char *fh2_request_sni(fh2_server *s, size_t i)
{
  pthread_mutex_lock(&s->mu);
  const char *n = i < s->nreqs ? s->reqs[i].sni : NULL;
  pthread_mutex_unlock(&s->mu);
  return n;
}
