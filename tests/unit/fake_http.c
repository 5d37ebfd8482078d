#include "tests/unit/fake_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <check.h>
#include <microhttpd.h>

#include "carbon/util/log.h"
#include "tests/unit/testutil.h"
#include "tests/unit/tu_deadline.h"

#define FH_MAX_ROUTES 64
#define FH_MAX_QUEUE 32

typedef struct fh_owned {
  fh_reply r;
  char *body; /* owned copy of r.body or the fixture's bytes */
  size_t len;
} fh_owned;

typedef struct fh_route {
  char *path;
  bool has_default;
  fh_owned def;
  fh_owned queue[FH_MAX_QUEUE];
  size_t qhead, qlen;
  int hits;
  char *last_query;
  char *last_headers; /* "name: value\n" lines */
} fh_route;

struct fh_server {
  struct MHD_Daemon *d;
  char url[64];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool released;
  unsigned release_gen;
  fh_route routes[FH_MAX_ROUTES];
  size_t nroutes;
};

static fh_owned own(fh_reply r)
{
  fh_owned o = {.r = r};
  if (r.fixture) {
    char rel[512];
    snprintf(rel, sizeof(rel), "fixtures/providers/%s", r.fixture);
    o.body = tu_read_shared(rel, &o.len);
  } else if (r.body) {
    o.body = strdup(r.body);
    o.len = strlen(r.body);
  } else {
    o.body = strdup("");
  }
  o.r.body = NULL;
  o.r.fixture = NULL;
  o.r.content_type = NULL;
  if (r.content_type)
    o.r.content_type = strdup(r.content_type);
  return o;
}

static void disown(fh_owned *o)
{
  free(o->body);
  free((char *)o->r.content_type);
  memset(o, 0, sizeof(*o));
}

static fh_route *route_for(fh_server *s, const char *path, bool create)
{
  for (size_t i = 0; i < s->nroutes; i++)
    if (strcmp(s->routes[i].path, path) == 0)
      return &s->routes[i];
  if (!create || s->nroutes == FH_MAX_ROUTES)
    return NULL;
  fh_route *r = &s->routes[s->nroutes++];
  memset(r, 0, sizeof(*r));
  r->path = strdup(path);
  return r;
}

typedef struct collect {
  char *buf;
  size_t len, cap;
  bool amp;
} collect;

static void collect_put(collect *c, const char *s)
{
  size_t n = strlen(s);
  if (c->len + n + 1 > c->cap) {
    c->cap = (c->len + n + 1) * 2;
    c->buf = realloc(c->buf, c->cap);
  }
  memcpy(c->buf + c->len, s, n + 1);
  c->len += n;
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value)
{
  collect *c = cls;
  if (c->amp)
    collect_put(c, "&");
  c->amp = true;
  collect_put(c, key);
  if (value) {
    collect_put(c, "=");
    collect_put(c, value);
  }
  return MHD_YES;
}

static enum MHD_Result on_hdr(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value)
{
  collect *c = cls;
  collect_put(c, key);
  collect_put(c, ": ");
  collect_put(c, value ? value : "");
  collect_put(c, "\n");
  return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
  fh_server *s = cls;
  collect q = {0}, h = {0};
  collect_put(&q, "");
  collect_put(&h, "");
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_arg, &q);
  MHD_get_connection_values(conn, MHD_HEADER_KIND, on_hdr, &h);

  fh_owned reply = {0};
  bool found = false;
  pthread_mutex_lock(&s->mu);
  fh_route *r = route_for(s, url, true);
  if (r) {
    r->hits++;
    free(r->last_query);
    free(r->last_headers);
    r->last_query = q.buf;
    r->last_headers = h.buf;
    q.buf = h.buf = NULL;
    if (r->qlen) {
      reply = r->queue[r->qhead];
      memset(&r->queue[r->qhead], 0, sizeof(fh_owned));
      r->qhead = (r->qhead + 1) % FH_MAX_QUEUE;
      r->qlen--;
      found = true;
    } else if (r->has_default) {
      reply = r->def;
      reply.body = malloc(r->def.len + 1);
      memcpy(reply.body, r->def.body, r->def.len + 1);
      reply.r.content_type =
          r->def.r.content_type ? strdup(r->def.r.content_type) : NULL;
      found = true;
    }
  }
  if (found && reply.r.hang_ms > 0) {
    struct timespec until = tu_deadline_ms(reply.r.hang_ms);
    unsigned gen = s->release_gen;
    while (!s->released && gen == s->release_gen &&
           pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
      ;
  }
  pthread_mutex_unlock(&s->mu);
  free(q.buf);
  free(h.buf);

  if (!found) {
    reply.body = strdup("{\"error\":\"not found\"}");
    reply.len = strlen(reply.body);
    reply.r.status = 404;
  }
  size_t len = reply.len;
  if (reply.r.truncate && reply.r.truncate < len)
    len = reply.r.truncate;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, reply.body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(resp, "Content-Type",
                          reply.r.content_type ? reply.r.content_type
                                               : "application/json");
  if (reply.r.retry_after > 0) {
    char v[32];
    snprintf(v, sizeof(v), "%ld", reply.r.retry_after);
    MHD_add_response_header(resp, "Retry-After", v);
  }
  enum MHD_Result ret = MHD_queue_response(
      conn, (unsigned)(reply.r.status ? reply.r.status : 200), resp);
  MHD_destroy_response(resp);
  disown(&reply);
  return ret;
}

fh_server *fh_start(void)
{
  fh_server *s = calloc(1, sizeof(*s));
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
      NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if (!s->d) {
    fprintf(stderr, "fake_http: cannot start the server\n");
    abort();
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", (unsigned)info->port);
  return s;
}

static void clear_routes(fh_server *s)
{
  for (size_t i = 0; i < s->nroutes; i++) {
    fh_route *r = &s->routes[i];
    free(r->path);
    disown(&r->def);
    for (size_t k = 0; k < r->qlen; k++)
      disown(&r->queue[(r->qhead + k) % FH_MAX_QUEUE]);
    free(r->last_query);
    free(r->last_headers);
  }
  s->nroutes = 0;
}

void fh_stop(fh_server *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->released = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  MHD_stop_daemon(s->d);
  clear_routes(s);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

const char *fh_url(const fh_server *s)
{
  return s->url;
}

void fh_set(fh_server *s, const char *path, fh_reply r)
{
  fh_owned o = own(r);
  pthread_mutex_lock(&s->mu);
  fh_route *rt = route_for(s, path, true);
  disown(&rt->def);
  rt->def = o;
  rt->has_default = true;
  pthread_mutex_unlock(&s->mu);
}

void fh_push(fh_server *s, const char *path, fh_reply r)
{
  fh_owned o = own(r);
  pthread_mutex_lock(&s->mu);
  fh_route *rt = route_for(s, path, true);
  if (rt->qlen == FH_MAX_QUEUE) {
    disown(&o);
  } else {
    rt->queue[(rt->qhead + rt->qlen) % FH_MAX_QUEUE] = o;
    rt->qlen++;
  }
  pthread_mutex_unlock(&s->mu);
}

void fh_reset(fh_server *s)
{
  pthread_mutex_lock(&s->mu);
  clear_routes(s);
  pthread_mutex_unlock(&s->mu);
}

void fh_release(fh_server *s)
{
  pthread_mutex_lock(&s->mu);
  s->release_gen++;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

size_t fh_fixture_len(const char *fixture)
{
  char rel[512];
  size_t len;
  snprintf(rel, sizeof(rel), "fixtures/providers/%s", fixture);
  char *doc = tu_read_shared(rel, &len);
  while (len && (doc[len - 1] == '\n' || doc[len - 1] == '\r' ||
                 doc[len - 1] == ' ' || doc[len - 1] == '\t'))
    len--;
  free(doc);
  return len;
}

int fh_hits(fh_server *s, const char *path)
{
  pthread_mutex_lock(&s->mu);
  fh_route *r = route_for(s, path, false);
  int n = r ? r->hits : 0;
  pthread_mutex_unlock(&s->mu);
  return n;
}

char *fh_last_query(fh_server *s, const char *path)
{
  pthread_mutex_lock(&s->mu);
  fh_route *r = route_for(s, path, false);
  char *q = r && r->last_query ? strdup(r->last_query) : NULL;
  pthread_mutex_unlock(&s->mu);
  return q;
}

char *fh_last_header(fh_server *s, const char *path, const char *name)
{
  char *out = NULL;
  size_t n = strlen(name);
  pthread_mutex_lock(&s->mu);
  fh_route *r = route_for(s, path, false);
  for (const char *p = r ? r->last_headers : NULL; p && *p;) {
    const char *nl = strchr(p, '\n');
    if (!nl)
      break;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':' && p[n + 1] == ' ') {
      out = strndup(p + n + 2, (size_t)(nl - (p + n + 2)));
      break;
    }
    p = nl + 1;
  }
  pthread_mutex_unlock(&s->mu);
  return out;
}

static FILE *log_file;

void fh_log_capture(void)
{
  if (log_file)
    fclose(log_file);
  log_file = tmpfile();
  cs_log_set_fd(fileno(log_file));
}

char *fh_log_take(void)
{
  cs_log_set_fd(2);
  if (!log_file)
    return strdup("");
  fflush(log_file);
  long n = ftell(log_file);
  char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
  rewind(log_file);
  size_t got = fread(buf, 1, (size_t)(n > 0 ? n : 0), log_file);
  buf[got] = '\0';
  fclose(log_file);
  log_file = NULL;
  return buf;
}

int fh_run_suite(Suite *s)
{
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
