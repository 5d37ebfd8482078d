#include "fake_kube.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "tests/unit/tu_deadline.h"

#define FK_MAX_REQUESTS 1024
#define FK_MAX_BODY (8u << 20)

struct fk_server {
  struct MHD_Daemon *d;
  fk_handler handler;
  void *ud;
  char url[64];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  fk_request *reqs[FK_MAX_REQUESTS];
  size_t n;
  atomic_bool stopping;
};

typedef struct conn {
  cs_buf body;
} conn;

typedef struct stream {
  fk_server *s;
  fk_reply r;
  size_t line, off;
} stream;

static void reply_free(fk_reply *r)
{
  for (size_t i = 0; i < r->nlines; i++)
    free(r->lines[i]);
  free(r->lines);
  free(r->body);
}

void fk_reply_line(fk_reply *r, char *line)
{
  r->lines = cs_realloc(r->lines, (r->nlines + 1) * sizeof(*r->lines));
  r->lines[r->nlines++] = line;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value)
{
  cs_buf *q = cls;
  if (q->len)
    cs_buf_putc(q, '&');
  cs_buf_puts(q, key);
  cs_buf_putc(q, '=');
  cs_buf_puts(q, value ? value : "");
  return MHD_YES;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  stream *st = cls;
  while (st->line < st->r.nlines) {
    const char *l = st->r.lines[st->line];
    size_t len = strlen(l);
    if (st->off <= len) {
      size_t left = len + 1 - st->off; /* the line and its newline */
      size_t n = left < max ? left : max;
      size_t from_line =
          st->off < len ? (n < len - st->off ? n : len - st->off) : 0;
      memcpy(buf, l + st->off, from_line);
      if (from_line < n)
        buf[from_line] = '\n';
      st->off += n;
      if (st->off > len) {
        st->line++;
        st->off = 0;
      }
      return (ssize_t)n;
    }
  }
  switch (st->r.end) {
  case FK_END_CLEAN:
    return MHD_CONTENT_READER_END_OF_STREAM;
  case FK_END_DROP:
    return MHD_CONTENT_READER_END_WITH_ERROR;
  case FK_END_HOLD:
    break;
  }
  while (!atomic_load(&st->s->stopping)) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
  stream *st = cls;
  reply_free(&st->r);
  free(st);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  fk_server *s = cls;
  conn *cn = *con_cls;
  if (!cn) {
    cn = cs_calloc(1, sizeof(*cn));
    cs_buf_init(&cn->body, FK_MAX_BODY);
    *con_cls = cn;
    return MHD_YES;
  }
  if (*upload_size) {
    cs_buf_append(&cn->body, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  fk_request *rq = cs_calloc(1, sizeof(*rq));
  snprintf(rq->method, sizeof(rq->method), "%s", method);
  rq->path = cs_strdup(url);
  cs_buf q;
  cs_buf_init(&q, 0);
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
  rq->query = cs_buf_release(&q, NULL);
  const char *v =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  rq->ctype = cs_strdup(v ? v : "");
  v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  rq->auth = cs_strdup(v ? v : "");
  rq->body = cs_buf_release(&cn->body, &rq->bodylen);
  size_t index;
  pthread_mutex_lock(&s->mu);
  index = s->n;
  if (s->n < FK_MAX_REQUESTS)
    s->reqs[s->n++] = rq;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);

  fk_reply r = {.status = 200};
  s->handler(s->ud, rq, index, &r);
  if (index >= FK_MAX_REQUESTS) {
    free(rq->path);
    free(rq->query);
    free(rq->ctype);
    free(rq->auth);
    free(rq->body);
    free(rq);
  }
  struct MHD_Response *resp;
  if (r.lines || (!r.body && r.end == FK_END_HOLD)) {
    stream *st = cs_calloc(1, sizeof(*st));
    st->s = s;
    st->r = r;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
                                             stream_read, st, stream_free);
  } else {
    const char *b = r.body ? r.body : "";
    resp = MHD_create_response_from_buffer(strlen(b), (void *)b,
                                           MHD_RESPMEM_MUST_COPY);
    reply_free(&r);
  }
  MHD_add_response_header(resp, "Content-Type", "application/json");
  if (r.retry_after)
    MHD_add_response_header(resp, "Retry-After", r.retry_after);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
  conn *cn = *con_cls;
  if (!cn)
    return;
  cs_buf_free(&cn->body);
  free(cn);
  *con_cls = NULL;
}

fk_server *fk_start(fk_handler h, void *ud)
{
  fk_server *s = cs_calloc(1, sizeof(*s));
  s->handler = h;
  s->ud = ud;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
      NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
      MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_END);
  if (!s->d) {
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u",
           di ? (unsigned)di->port : 0u);
  return s;
}

void fk_stop(fk_server *s)
{
  if (!s)
    return;
  atomic_store(&s->stopping, true);
  MHD_stop_daemon(s->d);
  for (size_t i = 0; i < s->n; i++) {
    free(s->reqs[i]->path);
    free(s->reqs[i]->query);
    free(s->reqs[i]->ctype);
    free(s->reqs[i]->auth);
    free(s->reqs[i]->body);
    free(s->reqs[i]);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

const char *fk_url(fk_server *s)
{
  return s->url;
}

size_t fk_count(fk_server *s)
{
  pthread_mutex_lock(&s->mu);
  size_t n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

bool fk_wait_count(fk_server *s, size_t n, int timeout_ms)
{
  struct timespec ts = tu_deadline_ms(timeout_ms);
  pthread_mutex_lock(&s->mu);
  while (s->n < n)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
      break;
  bool ok = s->n >= n;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

const fk_request *fk_get(fk_server *s, size_t i)
{
  pthread_mutex_lock(&s->mu);
  const fk_request *r = i < s->n ? s->reqs[i] : NULL;
  pthread_mutex_unlock(&s->mu);
  return r;
}

char *fk_param(const fk_request *rq, const char *name)
{
  size_t nl = strlen(name);
  const char *p = rq->query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
      return cs_strndup(p + nl + 1, len - nl - 1);
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}
