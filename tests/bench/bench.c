/* bench: the load generator behind `make bench` and `make soak`.
 *
 * It starts a fake kube-apiserver (tests/unit/fake_kube.c) serving N
 * generated Nodes, starts the real `carbonshift serve` against it through a
 * kubeconfig, waits until /readyz reports the node cache synced with N
 * nodes, then drives POST /filter and /prioritize over loopback with
 * blocking keep-alive sockets, one thread per connection (closed loop: each
 * connection sends its next request when the previous reply has arrived).
 * Per case it prints
 *   bench verb=... mode=... nodes=... conc=... p50_ms=... p99_ms=... rps=...
 *         body_mb=... rss_mb=... errors=... cpu_mb_s=... cpu_ms=... log_kb=...
 * and per payload the parse floor. MB are MiB (2^20 bytes). The same figures
 * go to a JSON file. The exit status is 1 when any request failed or any
 * reply did not have the expected shape, so `make check` can run it briefly.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/jscan.h"
#include "carbon/util/parse.h"
#include "tests/bench/payload.h"
#include "tests/bench/refserver.h"
#include "tests/unit/fake_kube.h"

#define MIB (1024.0 * 1024.0)
#define MAX_LIST 8
#define REPLY_MAX (512u << 20)
#define IO_TIMEOUT_S 60

/* ------------------------------------------------------------ options */

typedef struct opts {
  const char *bin;
  const char *json;
  size_t nodes[MAX_LIST];
  size_t nnodes;
  int conc[MAX_LIST];
  size_t nconc;
  bool verbs[2]; /* filter, prioritize */
  bool modes[2]; /* names, nodes */
  double seconds;
  int min_requests;
  bool reference; /* also time the reference server (refserver.h) */
  /* Soak: a steady rate for soak_s seconds instead of the cases. */
  double soak_s;
  double rate;
  size_t soak_nodes;
  double sample_s;
  /* --set NAME=VALUE settings passed on to `carbonshift serve`. */
  const char *sets[MAX_LIST];
  size_t nsets;
} opts;

static const char *const verb_names[] = {"filter", "prioritize"};
static const char *const mode_names[] = {"names", "nodes"};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
  if (s <= 0)
    return;
  struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
  nanosleep(&ts, NULL);
}

/* What die() must not leave behind: the kubeconfig file and the service. */
static const char *g_kubeconfig;
static pid_t g_service;

static void die(const char *fmt, const char *a)
{
  if (g_kubeconfig)
    unlink(g_kubeconfig);
  if (g_service > 0)
    kill(g_service, SIGKILL);
  fprintf(stderr, "bench: ");
  fprintf(stderr, fmt, a);
  fprintf(stderr, "\n");
  exit(2);
}

/* Parses "100,1000,5000" into out[]; false on any malformed item. */
static bool parse_list(const char *s, long *out, size_t *n, long lo, long hi)
{
  *n = 0;
  while (*s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno || v < lo || v > hi || *n == MAX_LIST ||
        (*end && *end != ','))
      return false;
    out[(*n)++] = v;
    s = *end ? end + 1 : end;
  }
  return *n > 0;
}

static bool parse_pos(const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !(v > 0) || v > 1e6)
    return false;
  *out = v;
  return true;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: bench [--bin PATH] [--json PATH] [--nodes 100,1000,5000]\n"
          "             [--conc 1,16] [--verbs filter,prioritize]\n"
          "             [--modes names,nodes] [--seconds S] "
          "[--min-requests N]\n"
          "             [--reference yes|no]\n"
          "       bench --soak SECONDS [--rate R] [--soak-nodes N] "
          "[--sample S]\n"
          "       either with --set NAME=VALUE for the service (repeatable)\n");
  exit(2);
}

static bool pick(const char *s, const char *const names[2], bool out[2])
{
  out[0] = out[1] = false;
  char buf[64];
  snprintf(buf, sizeof(buf), "%s", s);
  for (char *p = buf, *q; p && *p; p = q) {
    q = strchr(p, ',');
    if (q)
      *q++ = '\0';
    if (strcmp(p, names[0]) == 0)
      out[0] = true;
    else if (strcmp(p, names[1]) == 0)
      out[1] = true;
    else
      return false;
  }
  return out[0] || out[1];
}

static void parse_opts(int argc, char **argv, opts *o)
{
  *o = (opts){.bin = getenv("CS_BIN"),
              .nodes = {100, 1000, 5000},
              .nnodes = 3,
              .conc = {1, 16},
              .nconc = 2,
              .verbs = {true, true},
              .modes = {true, true},
              .seconds = 3,
              .min_requests = 10,
              .reference = true,
              .rate = 50,
              .soak_nodes = 5000,
              .sample_s = 10};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long l[MAX_LIST];
    size_t n;
    if (!v)
      usage();
    i++;
    if (strcmp(a, "--bin") == 0) {
      o->bin = v;
    } else if (strcmp(a, "--json") == 0) {
      o->json = v;
    } else if (strcmp(a, "--nodes") == 0) {
      if (!parse_list(v, l, &n, 1, 100000))
        die("--nodes wants counts from 1 to 100000 such as 100,1000, not %s",
            v);
      for (size_t k = 0; k < n; k++)
        o->nodes[k] = (size_t)l[k];
      o->nnodes = n;
    } else if (strcmp(a, "--conc") == 0) {
      if (!parse_list(v, l, &n, 1, 1024))
        die("--conc wants connection counts from 1 to 1024 such as 1,16, "
            "not %s",
            v);
      for (size_t k = 0; k < n; k++)
        o->conc[k] = (int)l[k];
      o->nconc = n;
    } else if (strcmp(a, "--verbs") == 0) {
      if (!pick(v, verb_names, o->verbs))
        die("--verbs wants filter, prioritize or both, not %s", v);
    } else if (strcmp(a, "--modes") == 0) {
      if (!pick(v, mode_names, o->modes))
        die("--modes wants names, nodes or both, not %s", v);
    } else if (strcmp(a, "--seconds") == 0) {
      if (!parse_pos(v, &o->seconds))
        die("--seconds wants a positive number, not %s", v);
    } else if (strcmp(a, "--min-requests") == 0) {
      if (!parse_list(v, l, &n, 1, 1000000) || n != 1)
        die("--min-requests wants a count from 1, not %s", v);
      o->min_requests = (int)l[0];
    } else if (strcmp(a, "--reference") == 0) {
      if (strcmp(v, "yes") && strcmp(v, "no"))
        die("--reference wants yes or no, not %s", v);
      o->reference = strcmp(v, "yes") == 0;
    } else if (strcmp(a, "--soak") == 0) {
      if (!parse_pos(v, &o->soak_s))
        die("--soak wants a duration in seconds, not %s", v);
    } else if (strcmp(a, "--rate") == 0) {
      if (!parse_pos(v, &o->rate))
        die("--rate wants requests per second, not %s", v);
    } else if (strcmp(a, "--soak-nodes") == 0) {
      if (!parse_list(v, l, &n, 1, 100000) || n != 1)
        die("--soak-nodes wants one count, not %s", v);
      o->soak_nodes = (size_t)l[0];
    } else if (strcmp(a, "--set") == 0) {
      if (o->nsets == MAX_LIST || !strchr(v, '='))
        die("--set wants NAME=VALUE for the service, at most 8 times, not %s",
            v);
      o->sets[o->nsets++] = v;
    } else if (strcmp(a, "--sample") == 0) {
      if (!parse_pos(v, &o->sample_s))
        die("--sample wants seconds, not %s", v);
    } else {
      usage();
    }
  }
  if (!o->bin || access(o->bin, X_OK) != 0)
    die("--bin (or CS_BIN) must name the built carbonshift binary, not %s",
        o->bin ? o->bin : "(unset)");
}

/* ------------------------------------------------- fake kube-apiserver */

typedef struct cluster {
  size_t n;
  atomic_int lists, watches;
} cluster;

#define PAGE_DEFAULT 500
#define CONT_PREFIX "from-"

static void kube_handler(void *ud, const fk_request *rq, size_t index,
                         fk_reply *out)
{
  cluster *c = ud;
  if (strcmp(rq->method, "GET") != 0) { /* Events, pod patches */
    out->status = strcmp(rq->method, "POST") == 0 ? 201 : 200;
    out->body = cs_strdup("{}");
    return;
  }
  if (strcmp(rq->path, "/api/v1/nodes") != 0) {
    out->status = 404;
    out->body = cs_strdup("{\"kind\":\"Status\",\"code\":404}");
    return;
  }
  char *watch = fk_param(rq, "watch");
  if (watch) {
    free(watch);
    atomic_fetch_add(&c->watches, 1);
    fk_reply_line(out, cs_strdup("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":"
                                 "\"Node\",\"apiVersion\":\"v1\",\"metadata\":"
                                 "{\"resourceVersion\":\"900000\"}}}"));
    out->end = FK_END_HOLD;
    return;
  }
  atomic_fetch_add(&c->lists, 1);
  char *lim = fk_param(rq, "limit"), *cont = fk_param(rq, "continue");
  int64_t from = 0, limit = PAGE_DEFAULT;
  if (!lim || cs_parse_int64(lim, &limit, NULL) || limit <= 0)
    limit = PAGE_DEFAULT;
  if (cont && (strncmp(cont, CONT_PREFIX, strlen(CONT_PREFIX)) != 0 ||
               cs_parse_int64(cont + strlen(CONT_PREFIX), &from, NULL) ||
               from < 0 || (size_t)from > c->n))
    from = (int64_t)c->n; /* an unknown token: an empty last page */
  free(lim);
  free(cont);
  size_t to =
      (size_t)from + (size_t)limit < c->n ? (size_t)from + (size_t)limit : c->n;
  char next[32];
  snprintf(next, sizeof(next), CONT_PREFIX "%zu", to);
  cs_buf b;
  cs_buf_init(&b, 0);
  bp_node_list(&b, (size_t)from, to, "900000", to < c->n ? next : NULL);
  out->body = cs_buf_release(&b, NULL);
}

/* ------------------------------------------------- the service under test */

typedef struct service {
  pid_t pid;
  int out; /* its stdout */
  unsigned port;
  pthread_t drainer;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char head[16384]; /* the first log bytes, until the Serving line */
  size_t head_len;
  /* Counted from the log as it streams by. At verbosity 0 an "HTTP
   * request" line is written only for failed requests. */
  atomic_long http_errors, rejected, shown;
  atomic_llong log_bytes; /* all of it, for the log volume per request */
  atomic_bool armed;      /* synced: failures from now on are worth showing */
} service;

static const char serving_key[] = "\"listen\":\"127.0.0.1:";
static const char http_line[] = "\"msg\":\"HTTP request\"";

static const char rejected_line[] = "\"msg\":\"Request rejected\"";
/* Bytes kept from one read to the next: one less than the longest needle,
 * so a needle split by a read is whole in the next round, and one that was
 * whole in the previous round cannot fit in the carry again. */
#define CARRY (sizeof(rejected_line) - 2)

/* Occurrences of needle in p[0..n) that end after p[from]: those not seen
 * in the previous round. */
static long count_in(const char *p, size_t n, size_t from, const char *needle)
{
  long c = 0;
  size_t nl = strlen(needle);
  for (const char *q = p; (q = memmem(q, n - (size_t)(q - p), needle, nl));
       q += nl)
    if ((size_t)(q - p) + nl > from)
      c++;
  return c;
}

/* Reads the service's log so it never blocks on a full pipe, the way a
 * container runtime would, and counts failures. Lines split across reads
 * are stitched through a small carry. */
static void *drain(void *arg)
{
  service *s = arg;
  size_t cap = 1u << 20;
  char *buf = cs_malloc(cap + CARRY);
  size_t carry = 0;
  for (;;) {
    ssize_t r = read(s->out, buf + carry, cap);
    if (r <= 0) {
      if (r < 0 && errno == EINTR)
        continue;
      break;
    }
    size_t n = carry + (size_t)r;
    atomic_fetch_add(&s->log_bytes, (long long)r);
    if (!s->port) {
      pthread_mutex_lock(&s->mu);
      size_t room = sizeof(s->head) - 1 - s->head_len;
      size_t k = (size_t)r < room ? (size_t)r : room;
      memcpy(s->head + s->head_len, buf + carry, k);
      s->head_len += k;
      s->head[s->head_len] = '\0';
      const char *line = strstr(s->head, "\"msg\":\"Serving\"");
      const char *at = line ? strstr(line, serving_key) : NULL;
      if (at) {
        long port = strtol(at + strlen(serving_key), NULL, 10);
        s->port = port > 0 && port < 65536 ? (unsigned)port : 0;
      }
      pthread_cond_broadcast(&s->cv);
      pthread_mutex_unlock(&s->mu);
    }
    long fails = count_in(buf, n, carry, http_line);
    atomic_fetch_add(&s->http_errors, fails);
    /* Show the service's own words for the first few failures. */
    size_t hl = strlen(http_line), from = carry >= hl ? carry - hl + 1 : 0;
    const char *f = fails ? memmem(buf + from, n - from, http_line, hl) : NULL;
    if (f && atomic_load(&s->armed) && atomic_fetch_add(&s->shown, 1) < 3) {
      const char *eol = memchr(f, '\n', n - (size_t)(f - buf));
      int len = (int)((eol ? eol : buf + n) - f);
      fprintf(stderr, "bench: service logged: %.*s\n", len > 400 ? 400 : len,
              f);
    }
    atomic_fetch_add(&s->rejected, count_in(buf, n, carry, rejected_line));
    carry = n < CARRY ? n : CARRY;
    memmove(buf, buf + n - carry, carry);
  }
  free(buf);
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static char *write_kubeconfig(const char *url)
{
  char *path = cs_strdup("/tmp/carbonshift-bench-kubeconfig-XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0)
    die("cannot create a kubeconfig in /tmp: %s", strerror(errno));
  char *text = cs_asprintf("apiVersion: v1\nkind: Config\n"
                           "current-context: bench\n"
                           "clusters:\n- name: fake\n  cluster:\n"
                           "    server: %s\n"
                           "contexts:\n- name: bench\n  context:\n"
                           "    cluster: fake\n    user: bench\n"
                           "users:\n- name: bench\n  user:\n"
                           "    token: bench-token\n",
                           url);
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len)
    die("cannot write the kubeconfig: %s", strerror(errno));
  close(fd);
  free(text);
  return path;
}

/* Starts `carbonshift serve` on a free loopback port against the fake API
 * server, with the embedded defaults otherwise (builtin carbon profiles,
 * verbosity 0: one Decision line per call). Every call sends the same pod,
 * so every line would be a short repeat of the first: the bench measures
 * the full line each time (log.decisionRepeatSeconds=0), as for a new pod;
 * a --set given after this one overrides it. */
static void service_start(service *s, const opts *o, const char *kubeconfig)
{
  const char *argv[10 + 2 * MAX_LIST] = {
      o->bin,         "serve",    "--listen", "127.0.0.1:0",
      "--kubeconfig", kubeconfig, "--set",    "log.decisionRepeatSeconds=0"};
  size_t argc = 8;
  for (size_t i = 0; i < o->nsets; i++) {
    argv[argc++] = "--set";
    argv[argc++] = o->sets[i];
  }
  argv[argc] = NULL;
  memset(s, 0, sizeof(*s));
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  int fds[2];
  if (pipe(fds) != 0)
    die("pipe: %s", strerror(errno));
  s->pid = fork();
  if (s->pid < 0)
    die("fork: %s", strerror(errno));
  if (s->pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    setenv("CARBONSHIFT_KUBE_MODE", "kubeconfig", 1);
    execv(o->bin, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  g_service = s->pid;
  s->out = fds[0];
  pthread_create(&s->drainer, NULL, drain, s);
  pthread_mutex_lock(&s->mu);
  double deadline = now_s() + 20;
  while (!s->port && now_s() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
      break;
  }
  pthread_mutex_unlock(&s->mu);
  if (!s->port)
    die("carbonshift did not report serving; it printed: %s", s->head);
}

/* SIGTERM, then waits for a clean exit; false when it did not exit 0. */
static bool service_stop(service *s)
{
  int status = 0;
  kill(s->pid, SIGTERM);
  bool exited = false;
  for (int i = 0; i < 400 && !exited; i++) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid)
      exited = true;
    else
      sleep_s(0.05);
  }
  if (!exited) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
  }
  pthread_join(s->drainer, NULL);
  close(s->out);
  bool ok = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok)
    fprintf(stderr, "bench: carbonshift did not exit cleanly on SIGTERM\n");
  return ok;
}

/* VmRSS of the service in MiB; -1 when unreadable. */
static double rss_mib(pid_t pid)
{
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  double kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtod(line + 6, NULL);
  if (f)
    fclose(f);
  return kb < 0 ? -1 : kb / 1024.0;
}

/* User + system CPU seconds the service has used so far. */
static double cpu_seconds(pid_t pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the command may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (!p ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ----------------------------------------------------- the HTTP client */

typedef struct conn {
  int fd;
  unsigned port;
  char *buf; /* the reply: head and body */
  size_t cap, len;
  const char *body; /* into buf */
  size_t body_len;
  int status;
  char err[160];
} conn;

static bool conn_open(conn *c)
{
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    snprintf(c->err, sizeof(c->err), "socket: %s", strerror(errno));
    return false;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)c->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    snprintf(c->err, sizeof(c->err), "connect: %s", strerror(errno));
    close(c->fd);
    c->fd = -1;
    return false;
  }
  return true;
}

static void conn_close(conn *c)
{
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

static bool send_all(conn *c, struct iovec *iov, int n)
{
  if (bench_send_all(c->fd, iov, n))
    return true;
  snprintf(c->err, sizeof(c->err), "send: %s",
           errno == EPIPE ? "connection closed" : strerror(errno));
  return false;
}

static bool fill(conn *c, size_t want)
{
  while (c->len < want) {
    if (c->cap - c->len < 65536) {
      if (c->cap >= REPLY_MAX) {
        snprintf(c->err, sizeof(c->err), "reply larger than %u bytes",
                 REPLY_MAX);
        return false;
      }
      c->cap = c->cap ? c->cap * 2 : 1u << 20;
      c->buf = cs_realloc(c->buf, c->cap + 1);
    }
    size_t room = c->cap - c->len;
    if (want != SIZE_MAX && want - c->len < room)
      room = want - c->len;
    ssize_t r = recv(c->fd, c->buf + c->len, room, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      snprintf(c->err, sizeof(c->err), "receive: %s",
               r < 0 ? strerror(errno) : "connection closed by the service");
      return false;
    }
    c->len += (size_t)r;
    if (want == SIZE_MAX) /* reading the head: stop at its end */
      return true;
  }
  return true;
}

/* Finds a header's value in the head [p, end); NULL when absent. */
static const char *header(const char *p, const char *end, const char *name)
{
  size_t nl = strlen(name);
  for (const char *l = p; l < end;) {
    const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
    if (!eol)
      break;
    if ((size_t)(eol - l) > nl && strncasecmp(l, name, nl) == 0 &&
        l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ')
        v++;
      return v;
    }
    l = eol + 2;
  }
  return NULL;
}

/* One request on a keep-alive connection (reconnecting when the service
 * closed it); the reply is in c->status, c->body, c->body_len. */
static bool conn_request(conn *c, const char *head, size_t head_len,
                         const char *body, size_t body_len)
{
  if (c->fd < 0 && !conn_open(c))
    return false;
  struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
  if (!send_all(c, iov, 2)) {
    conn_close(c);
    return false;
  }
  c->len = 0;
  const char *eoh = NULL;
  while (!eoh) {
    if (!fill(c, SIZE_MAX)) {
      conn_close(c);
      return false;
    }
    c->buf[c->len] = '\0';
    eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
  }
  const char *cl = header(c->buf, eoh + 2, "Content-Length");
  const char *cn = header(c->buf, eoh + 2, "Connection");
  if (sscanf(c->buf, "HTTP/1.%*c %d", &c->status) != 1 || !cl) {
    snprintf(c->err, sizeof(c->err),
             "reply without a status line or "
             "Content-Length");
    conn_close(c);
    return false;
  }
  size_t hl = (size_t)(eoh + 4 - c->buf);
  c->body_len = (size_t)strtoull(cl, NULL, 10);
  if (!fill(c, hl + c->body_len)) {
    conn_close(c);
    return false;
  }
  c->buf[c->len] = '\0';
  c->body = c->buf + hl;
  if (cn && strncasecmp(cn, "close", 5) == 0)
    conn_close(c);
  return true;
}

/* ------------------------------------------------------------ checking */

/* The first reply of every case is checked for the shape the scheduler
 * needs: every candidate answered once, by name, scores in 0..10 and not
 * all equal (node facts were known), nothing else. */
static bool check_reply(int verb, size_t n, const char *body, size_t len,
                        char *why, size_t cap)
{
  cJSON *doc = cJSON_ParseWithLength(body, len);
  bool ok = false;
  char name[64];
  if (!doc) {
    snprintf(why, cap, "reply is not JSON");
    goto out;
  }
  if (verb == 1) {
    if (!cJSON_IsArray(doc) || (size_t)cJSON_GetArraySize(doc) != n) {
      snprintf(why, cap, "HostPriorityList does not have %zu entries", n);
      goto out;
    }
    size_t i = 0;
    int lo = 10, hi = 0;
    for (cJSON *e = doc->child; e; e = e->next, i++) {
      const cJSON *h = cJSON_GetObjectItemCaseSensitive(e, "Host");
      const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "Score");
      bp_node_name(i, name, sizeof(name));
      if (!cJSON_IsString(h) || strcmp(h->valuestring, name) ||
          !cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 10) {
        snprintf(why, cap, "HostPriorityList[%zu] is not {%s, 0..10}", i, name);
        goto out;
      }
      lo = s->valueint < lo ? s->valueint : lo;
      hi = s->valueint > hi ? s->valueint : hi;
    }
    if (n >= 5 && lo == hi) {
      snprintf(why, cap, "all %zu scores are %d: node facts unknown", n, lo);
      goto out;
    }
  } else {
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "Nodes");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(doc, "NodeNames");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(doc, "Error");
    const cJSON *kept = cJSON_IsArray(names)
                            ? names
                            : cJSON_GetObjectItemCaseSensitive(nodes, "items");
    size_t total = (size_t)cJSON_GetArraySize(
                       cJSON_GetObjectItemCaseSensitive(doc, "FailedNodes")) +
                   (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                       doc, "FailedAndUnresolvableNodes"));
    if (!cJSON_IsArray(kept) || !cJSON_IsString(err) || err->valuestring[0]) {
      snprintf(why, cap,
               "ExtenderFilterResult without kept nodes or with "
               "an Error");
      goto out;
    }
    total += (size_t)cJSON_GetArraySize(kept);
    if (total != n) {
      snprintf(why, cap, "filter answered for %zu of %zu nodes", total, n);
      goto out;
    }
  }
  ok = true;
out:
  cJSON_Delete(doc);
  return ok;
}

/* ------------------------------------------------------------- a case */

typedef struct request_spec {
  int verb, mode;
  size_t n;
  char head[256];
  size_t head_len;
  const char *body;
  size_t len;
} request_spec;

static void spec_init(request_spec *r, int verb, int mode, size_t n,
                      const char *body, size_t len)
{
  r->verb = verb;
  r->mode = mode;
  r->n = n;
  r->body = body;
  r->len = len;
  int k = snprintf(r->head, sizeof(r->head),
                   "POST /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "User-Agent: carbonshift-bench\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   verb_names[verb], len);
  r->head_len = (size_t)k;
}

typedef struct samples {
  double *v;
  size_t n, cap;
} samples;

static void samples_add(samples *s, double x)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 1024;
    s->v = cs_realloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples. */
static double pct(const samples *s, double p)
{
  if (!s->n)
    return NAN;
  size_t k = (size_t)ceil(p / 100.0 * (double)s->n);
  return s->v[k ? k - 1 : 0];
}

typedef struct worker {
  pthread_t t;
  unsigned port;
  const request_spec *spec;
  size_t nspecs;   /* soak: a cycle of requests */
  double deadline; /* closed loop: stop after this, and min_requests */
  int min_requests;
  double interval; /* soak: seconds between this worker's sends */
  double start;
  bool check_first;
  samples lat;                    /* seconds */
  long sent, errors, bad_replies; /* sent: warm-up included */
  char first_err[200];
  atomic_long done;
  atomic_long failed;
  atomic_bool stop;
} worker;

static void note_err(worker *w, const char *what)
{
  if (!w->first_err[0])
    snprintf(w->first_err, sizeof(w->first_err), "%s", what);
}

/* One request; false on a transport error or a status other than 200. */
static bool one(worker *w, conn *c, const request_spec *r, bool check)
{
  if (!conn_request(c, r->head, r->head_len, r->body, r->len)) {
    note_err(w, c->err);
    return false;
  }
  if (c->status != 200) {
    char m[200];
    snprintf(m, sizeof(m), "HTTP %d: %.*s", c->status,
             (int)(c->body_len < 120 ? c->body_len : 120), c->body);
    note_err(w, m);
    return false;
  }
  char why[160];
  if (check &&
      !check_reply(r->verb, r->n, c->body, c->body_len, why, sizeof(why))) {
    w->bad_replies++;
    note_err(w, why);
  }
  return true;
}

static void *closed_loop(void *arg)
{
  worker *w = arg;
  conn c = {.fd = -1, .port = w->port};
  /* One unmeasured request first: connects, warms caches, and is the one
   * checked. */
  w->sent++;
  if (!one(w, &c, w->spec, w->check_first))
    w->errors++;
  for (int k = 0; now_s() < w->deadline || k < w->min_requests; k++) {
    double t0 = now_s();
    bool ok = one(w, &c, w->spec, false);
    double t1 = now_s();
    w->sent++;
    if (ok)
      samples_add(&w->lat, t1 - t0);
    else
      w->errors++;
    atomic_fetch_add(&w->done, 1);
  }
  conn_close(&c);
  free(c.buf);
  return NULL;
}

typedef struct result {
  double p50, p99, rps, body_mib, rss, cpu_mib_s, cpu_ms, wall;
  double log_kib; /* service log written per request */
  long requests, errors;
} result;

static result run_case(service *sv, const request_spec *spec, int conc,
                       const opts *o, bool *bad)
{
  long long log0 = atomic_load(&sv->log_bytes);
  worker *ws = cs_calloc((size_t)conc, sizeof(*ws));
  int per = (o->min_requests + conc - 1) / conc;
  double cpu0 = cpu_seconds(sv->pid);
  double t0 = now_s();
  for (int i = 0; i < conc; i++) {
    ws[i].port = sv->port;
    ws[i].spec = spec;
    ws[i].deadline = t0 + o->seconds;
    ws[i].min_requests = per;
    ws[i].check_first = i == 0;
    pthread_create(&ws[i].t, NULL, closed_loop, &ws[i]);
  }
  samples all = {0};
  result r = {0};
  long sent = 0;
  for (int i = 0; i < conc; i++) {
    pthread_join(ws[i].t, NULL);
    for (size_t k = 0; k < ws[i].lat.n; k++)
      samples_add(&all, ws[i].lat.v[k]);
    r.errors += ws[i].errors;
    sent += ws[i].sent;
    if (ws[i].bad_replies)
      *bad = true;
    if (ws[i].first_err[0])
      fprintf(stderr, "bench: %s %s nodes=%zu conc=%d: %s\n",
              verb_names[spec->verb], mode_names[spec->mode], spec->n, conc,
              ws[i].first_err);
    free(ws[i].lat.v);
  }
  /* The warm-up requests are in the wall time but not in the samples, so
   * rps is slightly conservative. */
  r.wall = now_s() - t0;
  double cpu = cpu_seconds(sv->pid) - cpu0;
  qsort(all.v, all.n, sizeof(*all.v), cmp_double);
  r.requests = (long)all.n;
  r.p50 = pct(&all, 50) * 1e3;
  r.p99 = pct(&all, 99) * 1e3;
  r.rps = (double)all.n / r.wall;
  r.body_mib = (double)spec->len / MIB;
  r.rss = rss_mib(sv->pid);
  r.cpu_mib_s = cpu > 0 ? (double)sent * r.body_mib / cpu : NAN;
  r.cpu_ms = cpu * 1e3 / (double)sent;
  /* Each Decision line is written before its reply: by now the pipe holds
   * them all, and the drain thread may lag a read behind at most. */
  usleep(20000);
  r.log_kib =
      (double)(atomic_load(&sv->log_bytes) - log0) / 1024.0 / (double)sent;
  free(all.v);
  free(ws);
  return r;
}

/* The same case against the reference server (refserver.h), which parses
 * each body once and answers with the reply carbonshift gave: the latency
 * the machine allows at this concurrency, with the bench's client on the
 * same cores. */
static result run_reference(const service *sv, const request_spec *spec,
                            int conc, const opts *o, long *errors)
{
  conn c = {.fd = -1, .port = sv->port};
  result r = {.p50 = NAN, .p99 = NAN, .rps = NAN};
  *errors = 1;
  if (!conn_request(&c, spec->head, spec->head_len, spec->body, spec->len) ||
      c.status != 200) {
    fprintf(stderr, "bench: no reply to serve from the reference: %s\n", c.err);
  } else {
    refserver *ref = refserver_start(c.body, c.body_len);
    if (!ref)
      die("cannot start the reference server%s", "");
    service rs = {.pid = getpid(), .port = refserver_port(ref)};
    bool bad = false;
    r = run_case(&rs, spec, conc, o, &bad);
    *errors = r.errors + refserver_bad(ref) + bad;
    refserver_stop(ref);
  }
  conn_close(&c);
  free(c.buf);
  return r;
}

/* --------------------------------------------------------- parse floor */

typedef struct floor_t {
  double jscan_ms, jscan_p50_ms, cjson_ms;
} floor_t;

/* The least time, over several runs, to validate the body once with the
 * fastest parser in the repository (carbon/util/jscan.c, which the codec
 * uses), and, for reference, to build it as a cJSON tree. */
static floor_t parse_floor(const char *body, size_t len)
{
  floor_t f = {INFINITY, NAN, INFINITY};
  int runs = len > (8u << 20) ? 7 : 21;
  samples t = {0};
  for (int i = 0; i < runs; i++) {
    cs_jscan s;
    double t0 = now_s();
    cs_jscan_init(&s, body, len, 0);
    cs_err rc = cs_jscan_skip(&s, NULL, NULL);
    double t1 = now_s();
    if (rc || cs_jscan_finish(&s))
      die("the generated payload is not valid JSON: %s", s.err);
    f.jscan_ms = fmin(f.jscan_ms, (t1 - t0) * 1e3);
    samples_add(&t, (t1 - t0) * 1e3);
  }
  qsort(t.v, t.n, sizeof(*t.v), cmp_double);
  f.jscan_p50_ms = pct(&t, 50);
  free(t.v);
  for (int i = 0; i < (runs + 1) / 2; i++) {
    double t0 = now_s();
    cJSON *doc = cJSON_ParseWithLength(body, len);
    double t1 = now_s();
    if (!doc)
      die("cJSON could not parse the generated payload%s", "");
    cJSON_Delete(doc);
    f.cjson_ms = fmin(f.cjson_ms, (t1 - t0) * 1e3);
  }
  return f;
}

/* ------------------------------------------------------------- set-up */

static const char *machine_cpu(char *out, size_t cap)
{
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  snprintf(out, cap, "unknown");
  while (f && fgets(line, sizeof(line), f)) {
    if (strncmp(line, "model name", 10) == 0) {
      const char *v = strchr(line, ':');
      if (v) {
        snprintf(out, cap, "%s", v + 2);
        out[strcspn(out, "\n")] = '\0';
      }
      break;
    }
  }
  if (f)
    fclose(f);
  return out;
}

static const char *loadavg(char *out, size_t cap)
{
  FILE *f = fopen("/proc/loadavg", "r");
  double a = 0, b = 0, c = 0;
  if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
    snprintf(out, cap, "unknown");
  else
    snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
  if (f)
    fclose(f);
  return out;
}

/* Polls /readyz until the node cache is synced with n nodes. */
static double wait_ready(service *sv, size_t n)
{
  char want[48], head[128];
  snprintf(want, sizeof(want), "\"nodes\":%zu", n);
  int hl = snprintf(head, sizeof(head),
                    "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  conn c = {.fd = -1, .port = sv->port};
  double t0 = now_s();
  bool ok = false;
  while (!ok && now_s() - t0 < 300) {
    if (conn_request(&c, head, (size_t)hl, "", 0) && c.status == 200 &&
        strstr(c.body, want))
      ok = true;
    else
      sleep_s(0.05);
  }
  conn_close(&c);
  free(c.buf);
  if (!ok)
    die("the node cache did not sync %s within 300 s", want);
  /* 503s while syncing are expected; show the failures after it. */
  atomic_store(&sv->armed, true);
  return now_s() - t0;
}

typedef struct bench_env {
  cluster cl;
  fk_server *fk;
  char *kubeconfig;
  service sv;
} bench_env;

static void env_start(bench_env *e, const opts *o, size_t n)
{
  memset(e, 0, sizeof(*e));
  e->cl.n = n;
  e->fk = fk_start(kube_handler, &e->cl);
  if (!e->fk)
    die("cannot start the fake API server%s", "");
  e->kubeconfig = write_kubeconfig(fk_url(e->fk));
  g_kubeconfig = e->kubeconfig;
  service_start(&e->sv, o, e->kubeconfig);
}

static bool env_stop(bench_env *e)
{
  bool ok = service_stop(&e->sv);
  g_service = 0;
  fk_stop(e->fk);
  unlink(e->kubeconfig);
  g_kubeconfig = NULL;
  free(e->kubeconfig);
  return ok;
}

static void build_payload(cs_buf *b, int mode, size_t n)
{
  cs_buf_init(b, 0);
  if (mode == 0)
    bp_args_names(b, n);
  else
    bp_args_nodes(b, n);
  if (cs_buf_error(b))
    die("cannot build the payload: %s", cs_strerror(cs_buf_error(b)));
}

/* ------------------------------------------------------------- cases */

static bool run_cases(const opts *o, cs_buf *js)
{
  bool ok = true;
  char load[64];
  cs_json_open(js, "cases", '[');
  for (size_t ni = 0; ni < o->nnodes; ni++) {
    size_t n = o->nodes[ni];
    bench_env e;
    double t0 = now_s();
    env_start(&e, o, n);
    double sync_s = wait_ready(&e.sv, n);
    printf("setup nodes=%zu start_s=%.2f sync_s=%.2f lists=%d rss_mb=%.1f "
           "load=\"%s\"\n",
           n, now_s() - t0, sync_s, atomic_load(&e.cl.lists), rss_mib(e.sv.pid),
           loadavg(load, sizeof(load)));
    fflush(stdout);
    for (int mode = 0; mode < 2; mode++) {
      if (!o->modes[mode])
        continue;
      cs_buf body;
      build_payload(&body, mode, n);
      floor_t fl = parse_floor(body.data, body.len);
      for (int verb = 0; verb < 2; verb++) {
        if (!o->verbs[verb])
          continue;
        request_spec spec;
        spec_init(&spec, verb, mode, n, body.data, body.len);
        for (size_t ci = 0; ci < o->nconc; ci++) {
          int conc = o->conc[ci];
          bool bad = false;
          long errs0 =
              atomic_load(&e.sv.http_errors) + atomic_load(&e.sv.rejected);
          result r = run_case(&e.sv, &spec, conc, o, &bad);
          long srv_errs = atomic_load(&e.sv.http_errors) +
                          atomic_load(&e.sv.rejected) - errs0;
          if (r.errors || bad)
            ok = false;
          printf("bench verb=%s mode=%s nodes=%zu conc=%d p50_ms=%.3f "
                 "p99_ms=%.3f rps=%.1f body_mb=%.3f rss_mb=%.1f errors=%ld "
                 "cpu_mb_s=%.0f cpu_ms=%.3f log_kb=%.1f requests=%ld "
                 "load=\"%s\"\n",
                 verb_names[verb], mode_names[mode], n, conc, r.p50, r.p99,
                 r.rps, r.body_mib, r.rss, r.errors, r.cpu_mib_s, r.cpu_ms,
                 r.log_kib, r.requests, loadavg(load, sizeof(load)));
          double ratio = r.p50 / fl.jscan_ms;
          if (conc == 1)
            printf("floor verb=%s mode=%s nodes=%zu body_mb=%.3f "
                   "parse_ms=%.3f parser=jscan parse_p50_ms=%.3f "
                   "cjson_ms=%.3f p50_ms=%.3f ratio=%.2f cpu_ratio=%.2f\n",
                   verb_names[verb], mode_names[mode], n, r.body_mib,
                   fl.jscan_ms, fl.jscan_p50_ms, fl.cjson_ms, r.p50, ratio,
                   r.cpu_ms / fl.jscan_ms);
          result ref = {.p50 = NAN};
          long ref_errs = 0;
          if (o->reference) {
            ref = run_reference(&e.sv, &spec, conc, o, &ref_errs);
            printf("reference verb=%s mode=%s nodes=%zu conc=%d p50_ms=%.3f "
                   "p99_ms=%.3f rps=%.1f errors=%ld load=\"%s\"\n",
                   verb_names[verb], mode_names[mode], n, conc, ref.p50,
                   ref.p99, ref.rps, ref_errs, loadavg(load, sizeof(load)));
            if (ref_errs)
              ok = false;
          }
          fflush(stdout);
          if (bad)
            fprintf(stderr, "bench: a %s reply had the wrong shape\n",
                    verb_names[verb]);
          cs_json_open(js, NULL, '{');
          cs_json_str(js, "verb", verb_names[verb]);
          cs_json_str(js, "mode", mode_names[mode]);
          cs_json_int(js, "nodes", (int64_t)n);
          cs_json_int(js, "conc", conc);
          cs_json_num(js, "p50_ms", r.p50, 3);
          cs_json_num(js, "p99_ms", r.p99, 3);
          cs_json_num(js, "rps", r.rps, 1);
          cs_json_num(js, "body_mb", r.body_mib, 3);
          cs_json_num(js, "rss_mb", r.rss, 1);
          cs_json_int(js, "errors", r.errors);
          cs_json_int(js, "server_logged_errors", srv_errs);
          cs_json_bool(js, "reply_checked_ok", !bad);
          cs_json_num(js, "cpu_mb_s", r.cpu_mib_s, 1);
          cs_json_num(js, "cpu_ms", r.cpu_ms, 3);
          cs_json_num(js, "log_kb", r.log_kib, 1);
          cs_json_int(js, "requests", r.requests);
          cs_json_num(js, "seconds", r.wall, 2);
          cs_json_num(js, "parse_floor_ms", fl.jscan_ms, 3);
          cs_json_num(js, "parse_p50_ms", fl.jscan_p50_ms, 3);
          cs_json_str(js, "parse_floor_parser", "jscan");
          cs_json_num(js, "cjson_parse_ms", fl.cjson_ms, 3);
          if (conc == 1) {
            cs_json_num(js, "p50_to_floor", ratio, 2);
            cs_json_num(js, "cpu_to_floor", r.cpu_ms / fl.jscan_ms, 2);
          }
          if (o->reference) {
            cs_json_num(js, "reference_p50_ms", ref.p50, 3);
            cs_json_num(js, "reference_p99_ms", ref.p99, 3);
            cs_json_num(js, "reference_rps", ref.rps, 1);
            cs_json_int(js, "reference_errors", ref_errs);
          }
          cs_json_str(js, "load", loadavg(load, sizeof(load)));
          cs_json_close(js, '}');
        }
      }
      cs_buf_free(&body);
    }
    if (!env_stop(&e))
      ok = false;
  }
  cs_json_close(js, ']');
  return ok;
}

/* -------------------------------------------------------------- soak */

static void *open_loop(void *arg)
{
  worker *w = arg;
  conn c = {.fd = -1, .port = w->port};
  for (long k = 0; !atomic_load(&w->stop); k++) {
    double at = w->start + (double)k * w->interval;
    double wait = at - now_s();
    if (wait > 0)
      sleep_s(wait);
    if (atomic_load(&w->stop))
      break;
    const request_spec *r = &w->spec[(size_t)k % w->nspecs];
    double t0 = now_s();
    bool ok = one(w, &c, r, k < (long)w->nspecs);
    double t1 = now_s();
    if (ok)
      samples_add(&w->lat, t1 - t0);
    else
      atomic_fetch_add(&w->failed, 1);
    atomic_fetch_add(&w->done, 1);
  }
  conn_close(&c);
  free(c.buf);
  return NULL;
}

/* A steady mix at a fixed rate: per 10 requests, four names-only filter
 * and four names-only prioritize calls over soak_nodes nodes, and one of
 * each verb with 100 full Node objects. RSS is sampled every sample_s. */
static bool run_soak(const opts *o, cs_buf *js)
{
  enum { WORKERS = 4 };
  size_t n = o->soak_nodes, nfull = n < 100 ? n : 100;
  bench_env e;
  env_start(&e, o, n);
  wait_ready(&e.sv, n);
  /* Failures logged from here on count; 503s while syncing do not. */
  long srv0 = atomic_load(&e.sv.http_errors) + atomic_load(&e.sv.rejected);
  cs_buf names, full;
  build_payload(&names, 0, n);
  build_payload(&full, 1, nfull);
  request_spec mix[10];
  for (int i = 0; i < 8; i++)
    spec_init(&mix[i], i % 2, 0, n, names.data, names.len);
  spec_init(&mix[8], 0, 1, nfull, full.data, full.len);
  spec_init(&mix[9], 1, 1, nfull, full.data, full.len);

  worker ws[WORKERS];
  memset(ws, 0, sizeof(ws));
  double t0 = now_s();
  for (int i = 0; i < WORKERS; i++) {
    ws[i].port = e.sv.port;
    ws[i].spec = mix;
    ws[i].nspecs = 10;
    ws[i].interval = WORKERS / o->rate;
    ws[i].start = t0 + (double)i / o->rate;
    pthread_create(&ws[i].t, NULL, open_loop, &ws[i]);
  }
  char load[64];
  double first = -1, last = 0, peak = 0;
  cs_json_open(js, "soak", '{');
  cs_json_open(js, "samples", '[');
  for (double t = o->sample_s; t <= o->soak_s + 1e-9; t += o->sample_s) {
    sleep_s(t0 + t - now_s());
    long done = 0, failed = 0;
    for (int i = 0; i < WORKERS; i++) {
      done += atomic_load(&ws[i].done);
      failed += atomic_load(&ws[i].failed);
    }
    double rss = rss_mib(e.sv.pid);
    /* The first minute warms up allocator arenas and the signal cache;
     * growth is measured from the first sample after it. */
    if (first < 0 && t >= fmin(60, o->soak_s / 2))
      first = rss;
    last = rss;
    peak = fmax(peak, rss);
    printf("soak t=%.0f requests=%ld errors=%ld rss_mb=%.2f load=\"%s\"\n", t,
           done, failed, rss, loadavg(load, sizeof(load)));
    fflush(stdout);
    cs_json_open(js, NULL, '{');
    cs_json_num(js, "t", t, 0);
    cs_json_int(js, "requests", done);
    cs_json_int(js, "errors", failed);
    cs_json_num(js, "rss_mb", rss, 2);
    cs_json_close(js, '}');
  }
  cs_json_close(js, ']');
  for (int i = 0; i < WORKERS; i++)
    atomic_store(&ws[i].stop, true);
  samples all = {0};
  long done = 0, failed = 0;
  bool bad = false;
  for (int i = 0; i < WORKERS; i++) {
    pthread_join(ws[i].t, NULL);
    for (size_t k = 0; k < ws[i].lat.n; k++)
      samples_add(&all, ws[i].lat.v[k]);
    done += atomic_load(&ws[i].done);
    failed += atomic_load(&ws[i].failed);
    bad = bad || ws[i].bad_replies;
    if (ws[i].first_err[0])
      fprintf(stderr, "bench: soak: %s\n", ws[i].first_err);
    free(ws[i].lat.v);
  }
  double wall = now_s() - t0;
  qsort(all.v, all.n, sizeof(*all.v), cmp_double);
  long srv =
      atomic_load(&e.sv.http_errors) + atomic_load(&e.sv.rejected) - srv0;
  printf("soak duration_s=%.0f rate=%.1f achieved_rps=%.1f requests=%ld "
         "errors=%ld server_logged_errors=%ld p50_ms=%.3f p99_ms=%.3f "
         "rss_after_warmup_mb=%.2f rss_end_mb=%.2f rss_max_mb=%.2f "
         "growth_mb=%.2f nodes=%zu\n",
         wall, o->rate, (double)done / wall, done, failed, srv,
         pct(&all, 50) * 1e3, pct(&all, 99) * 1e3, first, last, peak,
         last - first, n);
  cs_json_num(js, "duration_s", wall, 1);
  cs_json_num(js, "rate", o->rate, 1);
  cs_json_int(js, "requests", done);
  cs_json_int(js, "errors", failed);
  cs_json_int(js, "server_logged_errors", srv);
  cs_json_num(js, "p50_ms", pct(&all, 50) * 1e3, 3);
  cs_json_num(js, "p99_ms", pct(&all, 99) * 1e3, 3);
  cs_json_num(js, "rss_after_warmup_mb", first, 2);
  cs_json_num(js, "rss_end_mb", last, 2);
  cs_json_num(js, "rss_max_mb", peak, 2);
  cs_json_num(js, "growth_mb", last - first, 2);
  cs_json_int(js, "nodes", (int64_t)n);
  cs_json_close(js, '}');
  free(all.v);
  cs_buf_free(&names);
  cs_buf_free(&full);
  bool ok = env_stop(&e);
  return ok && !failed && !srv && !bad;
}

/* -------------------------------------------------------------- main */

int main(int argc, char **argv)
{
  opts o;
  parse_opts(argc, argv, &o);
  signal(SIGPIPE, SIG_IGN);
  char cpu[160], load[64];
  long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  machine_cpu(cpu, sizeof(cpu));
  printf("machine nproc=%ld cpu=\"%s\" load=\"%s\"\n", nproc, cpu,
         loadavg(load, sizeof(load)));
  fflush(stdout);
  cs_buf js;
  cs_buf_init(&js, 0);
  cs_json_open(&js, NULL, '{');
  cs_json_open(&js, "machine", '{');
  cs_json_int(&js, "nproc", nproc);
  cs_json_str(&js, "cpu", cpu);
  cs_json_str(&js, "load_start", load);
  cs_json_close(&js, '}');
  bool ok = o.soak_s > 0 ? run_soak(&o, &js) : run_cases(&o, &js);
  cs_json_str(&js, "load_end", loadavg(load, sizeof(load)));
  cs_json_bool(&js, "ok", ok);
  cs_json_close(&js, '}');
  if (o.json) {
    FILE *f = fopen(o.json, "w");
    if (!f || fwrite(js.data, 1, js.len, f) != js.len || fputc('\n', f) < 0 ||
        fclose(f) != 0)
      die("cannot write %s", o.json);
    printf("bench: results in %s\n", o.json);
  }
  cs_buf_free(&js);
  if (!ok)
    fprintf(stderr, "bench: FAILED: requests failed or replies were wrong\n");
  return ok ? 0 : 1;
}
