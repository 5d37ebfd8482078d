/* Tests of the Kubernetes API client against a fake API server in the test
 * process (fake_kube.c): list and watch with bookmarks, a dropped watch,
 * 410 Gone, an expired token, annotation patches, Events, kubeconfigs;
 * and, over HTTP/2 and TLS as kube-apiserver speaks (fake_h2.c), what
 * becomes of a connection that died without a word. */
#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"
#include "fake_h2.h"
#include "fake_kube.h"
#include "scheduler/kube.h"
#include "tls_testutil.h"

/* ------------------------------------------------------------- helpers */

static char tmpdir[64];
static int log_fd = -1;

static void setup(void)
{
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/cs_kube_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  char path[128];
  snprintf(path, sizeof(path), "%s/log.jsonl", tmpdir);
  log_fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
  ck_assert_int_ge(log_fd, 0);
  cs_log_set_fd(log_fd);
  cs_log_set_verbosity(0);
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("https_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
}

static void teardown(void)
{
  cs_log_set_fd(STDOUT_FILENO);
  if (log_fd >= 0)
    close(log_fd);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

static char *write_tmp(const char *name, const char *text)
{
  char *path = cs_asprintf("%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = cs_malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  return s;
}

static char *log_text(void)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/log.jsonl", tmpdir);
  return slurp(path);
}

static size_t count_substr(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static cJSON *fixture_nodes(void)
{
  const char *shared = getenv("CS_SHARED");
  char *path = cs_asprintf("%s/fixtures/extender/nodes.json",
                           shared ? shared : "../shared");
  char *text = slurp(path);
  cJSON *doc = cJSON_ParseWithLength(text, strlen(text));
  ck_assert_ptr_nonnull(doc);
  free(text);
  free(path);
  return doc;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static const fk_request *wait_request(fk_server *s, size_t i)
{
  ck_assert_msg(fk_wait_count(s, i + 1, 5000), "request %zu never came", i);
  return fk_get(s, i);
}

/* A kubeconfig with a token user pointing at the server at url, in
 * namespace ns, trusting ca_file (NULL: the system's CAs). */
static char *token_kubeconfig(const char *url, const char *ns,
                              const char *ca_file)
{
  char *ca = ca_file ? cs_asprintf("    certificate-authority: %s\n", ca_file)
                     : cs_strdup("");
  char *text = cs_asprintf("apiVersion: v1\n"
                           "kind: Config\n"
                           "current-context: test\n"
                           "clusters:\n"
                           "- name: fake\n"
                           "  cluster:\n"
                           "    server: %s\n"
                           "%s"
                           "contexts:\n"
                           "- name: test\n"
                           "  context:\n"
                           "    cluster: fake\n"
                           "    user: tester\n"
                           "    namespace: %s\n"
                           "users:\n"
                           "- name: tester\n"
                           "  user:\n"
                           "    token: s3cret\n",
                           url, ca, ns);
  char *path = write_tmp("kubeconfig", text);
  free(ca);
  free(text);
  return path;
}

/* A client of the server at url, trusting ca_file (NULL: the system's). */
static cs_kube *client_trusting(const char *url, const char *ca_file,
                                cs_kube_config *cfg)
{
  char *kc = token_kubeconfig(url, "default", ca_file);
  cfg->mode = CS_KUBE_KUBECONFIG;
  cfg->kubeconfig = kc;
  char err[512];
  cs_kube *k = NULL;
  cs_err rc = cs_kube_new(cfg, &k, err, sizeof(err));
  ck_assert_msg(rc == CS_OK, "cs_kube_new: %s", err);
  free(kc);
  return k;
}

static cs_kube *client_for(const char *url, cs_kube_config *cfg)
{
  return client_trusting(url, NULL, cfg);
}

/* carbonshift_kube_node_lists_total{reason, result}, 0 when absent. */
static double node_lists(cs_metrics *m, const char *reason, const char *result)
{
  const char *lv[] = {reason, result};
  double v = 0;
  if (cs_metrics_get(m, "carbonshift_kube_node_lists_total", lv, &v) != CS_OK)
    return 0;
  return v;
}

static void fast_config(cs_kube_config *cfg)
{
  cs_kube_config_defaults(cfg);
  cfg->backoff_initial_s = 0.01;
  cfg->backoff_max_s = 0.05;
  cfg->request_timeout_s = 5;
  cfg->watch_timeout_s = 7;
}

/* Starts a client from a kubeconfig holding `yaml`. */
static cs_err load_kc(const char *yaml, const char *context, cs_kube **k,
                      char *err, size_t cap)
{
  char *path = write_tmp("kc.yaml", yaml);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.mode = CS_KUBE_KUBECONFIG;
  cfg.kubeconfig = path;
  cfg.context = context;
  cfg.events_enabled = false;
  cs_err rc = cs_kube_new(&cfg, k, err, cap);
  free(path);
  return rc;
}

/* A client of server s with fast_config's short timeouts. */
static cs_kube *fast_client(fk_server *s)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  return client_for(fk_url(s), &cfg);
}

/* ------------------------------------------------- recording node sink */

typedef struct rec {
  pthread_mutex_t mu;
  char ops[128][128];
  size_t n;
} rec;

static void rec_add(rec *r, const char *fmt, const char *a, const char *b)
{
  pthread_mutex_lock(&r->mu);
  if (r->n < 128)
    snprintf(r->ops[r->n++], sizeof(r->ops[0]), fmt, a, b);
  pthread_mutex_unlock(&r->mu);
}

static void rec_begin(void *ctx)
{
  rec_add(ctx, "begin%s%s", "", "");
}

static void rec_end(void *ctx)
{
  rec_add(ctx, "end%s%s", "", "");
}

static cs_err rec_upsert(void *ctx, const cJSON *node)
{
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  const char *name =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "name"));
  const char *rv = cJSON_GetStringValue(
      cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));
  rec_add(ctx, "upsert %s %s", name ? name : "?", rv ? rv : "?");
  return CS_OK;
}

static void rec_remove(void *ctx, const char *name)
{
  rec_add(ctx, "remove %s%s", name, "");
}

static size_t rec_count(rec *r)
{
  pthread_mutex_lock(&r->mu);
  size_t n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* -------------------------------------------------- list/watch script */

typedef struct watch_script {
  cJSON *nodes; /* the fixture NodeList */
  int lists, watches;
} watch_script;

static char *list_page(cJSON *nodes, int from, int to, const char *rv,
                       const char *cont)
{
  cJSON *page = cJSON_CreateObject();
  cJSON_AddStringToObject(page, "apiVersion", "v1");
  cJSON_AddStringToObject(page, "kind", "NodeList");
  cJSON *meta = cJSON_AddObjectToObject(page, "metadata");
  cJSON_AddStringToObject(meta, "resourceVersion", rv);
  if (cont)
    cJSON_AddStringToObject(meta, "continue", cont);
  cJSON *items = cJSON_AddArrayToObject(page, "items");
  cJSON *all = cJSON_GetObjectItemCaseSensitive(nodes, "items");
  for (int i = from; i < to; i++)
    cJSON_AddItemToArray(items,
                         cJSON_Duplicate(cJSON_GetArrayItem(all, i), true));
  char *s = cJSON_PrintUnformatted(page);
  cJSON_Delete(page);
  return s;
}

static char *node_event(cJSON *nodes, const char *type, int i, const char *name,
                        const char *rv)
{
  cJSON *n = cJSON_Duplicate(
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(nodes, "items"), i),
      true);
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(n, "metadata");
  cJSON_ReplaceItemInObjectCaseSensitive(meta, "name",
                                         cJSON_CreateString(name));
  cJSON_ReplaceItemInObjectCaseSensitive(meta, "resourceVersion",
                                         cJSON_CreateString(rv));
  cJSON *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", type);
  cJSON_AddItemToObject(ev, "object", n);
  char *s = cJSON_PrintUnformatted(ev);
  cJSON_Delete(ev);
  return s;
}

/* A continue token as kube-apiserver writes it (base64, '+', '/' and
 * '=' padding included): the client must escape it in the query, or the
 * server would read a '+' as a space. */
#define PAGE2_TOKEN                                                            \
  "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgx+/zAwLCJzdGFydCI6In0="

static const char gone_status[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"too old resource version: 481400 "
    "(481450)\",\"reason\":\"Expired\",\"code\":410}";

static void watch_handler(void *ud, const fk_request *rq, size_t index,
                          fk_reply *out)
{
  watch_script *w = ud;
  char *watch = fk_param(rq, "watch");
  char *cont = fk_param(rq, "continue");
  bool is_watch = watch != NULL;
  free(watch);
  if (strcmp(rq->path, "/api/v1/nodes") != 0 || strcmp(rq->method, "GET")) {
    out->status = 404;
    out->body = cs_strdup("{\"kind\":\"Status\",\"code\":404}");
  } else if (!is_watch) {
    w->lists++;
    if (w->lists == 1) /* the first list comes in two pages */
      out->body = list_page(w->nodes, 0, 3, "481300", PAGE2_TOKEN);
    else if (w->lists == 2 && cont && strcmp(cont, PAGE2_TOKEN) == 0)
      out->body = list_page(w->nodes, 3, 5, "481300", NULL);
    else if (w->lists == 3)
      out->body = list_page(w->nodes, 0, 5, "481400", NULL);
    else
      out->body = list_page(w->nodes, 0, 5, "481500", NULL);
  } else {
    w->watches++;
    switch (w->watches) {
    case 1: /* three changes, then the connection breaks */
      fk_reply_line(out,
                    node_event(w->nodes, "ADDED", 0, "gpu-new-01", "481301"));
      fk_reply_line(out, node_event(w->nodes, "MODIFIED", 1, "gpu-a100-fra-02",
                                    "481302"));
      fk_reply_line(
          out, node_event(w->nodes, "DELETED", 4, "cpu-only-fra-03", "481303"));
      out->end = FK_END_DROP;
      break;
    case 2: /* a bookmark, then the server's timeout ends the watch */
      fk_reply_line(out, cs_strdup("{\"type\":\"BOOKMARK\",\"object\":{"
                                   "\"kind\":\"Node\",\"apiVersion\":\"v1\","
                                   "\"metadata\":{\"resourceVersion\":"
                                   "\"481310\"}}}"));
      out->end = FK_END_CLEAN;
      break;
    case 3: /* the history is compacted: an ERROR event with code 410 */
      fk_reply_line(
          out, cs_asprintf("{\"type\":\"ERROR\",\"object\":%s}", gone_status));
      out->end = FK_END_CLEAN;
      break;
    case 4: /* and again, as an HTTP status */
      out->status = 410;
      out->body = cs_strdup(gone_status);
      break;
    default:
      out->end = FK_END_HOLD;
      break;
    }
  }
  free(cont);
}

static const fk_request *nth_watch(fk_server *s, int n)
{
  int seen = 0;
  for (size_t i = 0; i < fk_count(s); i++) {
    const fk_request *rq = fk_get(s, i);
    if (strstr(rq->query, "watch=1") && ++seen == n)
      return rq;
  }
  return NULL;
}

START_TEST(test_kube_node_watch_list_watch_drop_gone)
{
  watch_script w = {.nodes = fixture_nodes()};
  fk_server *s = fk_start(watch_handler, &w);
  ck_assert_ptr_nonnull(s);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.list_page_size = 3;
  cfg.metrics = cs_metrics_new();
  cs_kube *k = client_for(fk_url(s), &cfg);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_EBUSY);

  /* 2 list pages, 4 watches, 2 relists, then the held fifth watch. */
  ck_assert_msg(fk_wait_count(s, 9, 10000), "only %zu requests", fk_count(s));
  for (int i = 0; i < 200 && rec_count(&r) < 24; i++)
    sleep_ms(10);

  static const char *const want[] = {
      "begin",
      "upsert gpu-h100-fra-01 480000",
      "upsert gpu-a100-fra-02 480001",
      "upsert gpu-v100-osl-01 480002",
      "upsert gpu-l4-mad-01 480003",
      "upsert cpu-only-fra-03 480004",
      "end",
      "upsert gpu-new-01 481301",
      "upsert gpu-a100-fra-02 481302",
      "remove cpu-only-fra-03",
      "begin",
      "upsert gpu-h100-fra-01 480000",
      "upsert gpu-a100-fra-02 480001",
      "upsert gpu-v100-osl-01 480002",
      "upsert gpu-l4-mad-01 480003",
      "upsert cpu-only-fra-03 480004",
      "end",
      "begin",
  };
  size_t nwant = sizeof(want) / sizeof(want[0]);
  ck_assert_uint_ge(rec_count(&r), 24);
  for (size_t i = 0; i < nwant; i++)
    ck_assert_str_eq(r.ops[i], want[i]);

  /* The list pages: limit, then the continue token. */
  const fk_request *l1 = fk_get(s, 0), *l2 = fk_get(s, 1);
  ck_assert_str_eq(l1->query, "limit=3");
  ck_assert_str_eq(l2->query, "limit=3&continue=" PAGE2_TOKEN);
  ck_assert_str_eq(l1->auth, "Bearer s3cret");

  /* Each watch resumes from where the previous one stood. */
  static const char *const rvs[] = {"481300", "481303", "481310", "481400",
                                    "481500"};
  for (int i = 1; i <= 5; i++) {
    const fk_request *rq = nth_watch(s, i);
    ck_assert_ptr_nonnull(rq);
    char *rv = fk_param(rq, "resourceVersion");
    char *bm = fk_param(rq, "allowWatchBookmarks");
    char *to = fk_param(rq, "timeoutSeconds");
    ck_assert_msg(rv && strcmp(rv, rvs[i - 1]) == 0,
                  "watch %d asked for resourceVersion %s, want %s", i,
                  rv ? rv : "(none)", rvs[i - 1]);
    ck_assert_str_eq(bm, "true");
    ck_assert_str_eq(to, "7");
    free(rv);
    free(bm);
    free(to);
  }

  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_uint_eq(st.lists, 3);
  ck_assert_uint_eq(st.relists_gone, 2);
  ck_assert_uint_eq(st.bookmarks, 1);
  ck_assert_uint_eq(st.watch_events, 3);
  ck_assert_uint_eq(st.watch_restarts, 3); /* drop, 410 event, 410 status */
  ck_assert_str_eq(st.resource_version, "481500");

  cs_kube_free(k);
  fk_stop(s);
  cJSON_Delete(w.nodes);
  ck_assert_double_eq(node_lists(cfg.metrics, "initial", "complete"), 1);
  ck_assert_double_eq(node_lists(cfg.metrics, "gone", "complete"), 2);
  ck_assert_double_eq(node_lists(cfg.metrics, "gone", "failed"), 0);
  cs_metrics_free(cfg.metrics);

  char *log = log_text();
  ck_assert_uint_eq(count_substr(log, "\"Node watch dropped\""), 1);
  ck_assert_uint_eq(count_substr(log, "\"Node watch expired, relisting\""), 2);
  ck_assert_uint_eq(count_substr(log, "\"Listed nodes\""), 3);
  ck_assert_ptr_null(strstr(log, "s3cret"));
  free(log);
}
END_TEST

/* A server that refuses everything: the watch backs off, logs the failure
 * once, and keeps retrying. */
static void refuse_handler(void *ud, const fk_request *rq, size_t index,
                           fk_reply *out)
{
  out->status = 403;
  out->body = cs_strdup("{\"kind\":\"Status\",\"code\":403,\"message\":"
                        "\"nodes is forbidden: User cannot list resource\"}");
}

/* The watch decoder on its own (what fuzz_kube_watch drives): events cut
 * at every byte reach the sink in order, the last resourceVersion is kept,
 * a line without its newline is dropped, and ERROR, malformed and
 * oversized lines end the stream with their own codes. */
START_TEST(test_kube_watch_feed_events_and_errors)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.events_enabled = false;
  cfg.max_line_bytes = 1024;
  cs_kube *k = client_for("http://127.0.0.1:1", &cfg);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  const char *body =
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
      "\"resourceVersion\":\"5\"}}}\r\n"
      "\n"
      "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{"
      "\"resourceVersion\":\"7\"}}}\n"
      "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\","
      "\"resourceVersion\":\"8\"}}}\n"
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}";
  char err[256];
  ck_assert_int_eq(
      cs_kube_watch_feed(k, &sink, body, strlen(body), 1, err, sizeof(err)),
      CS_OK);
  ck_assert_uint_eq(r.n, 2);
  ck_assert_str_eq(r.ops[0], "upsert a 5");
  ck_assert_str_eq(r.ops[1], "remove a");
  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_str_eq(st.resource_version, "8");
  ck_assert_uint_eq(st.bookmarks, 1);

  const char *gone = "{\"type\":\"ERROR\",\"object\":{\"code\":410,"
                     "\"message\":\"too old\"}}\n";
  ck_assert_int_eq(
      cs_kube_watch_feed(k, &sink, gone, strlen(gone), 0, err, sizeof(err)),
      CS_EHTTP);
  ck_assert_ptr_nonnull(strstr(err, "410: too old"));
  /* A code that is no HTTP status is none (it was cast to an int: UB). */
  static const char *const odd_codes[] = {"4.1e102", "410.5", "-410",
                                          "\"410\""};
  for (size_t i = 0; i < sizeof(odd_codes) / sizeof(odd_codes[0]); i++) {
    char *odd = cs_asprintf("{\"type\":\"ERROR\",\"object\":{\"code\":%s,"
                            "\"message\":\"too old\"}}\n",
                            odd_codes[i]);
    ck_assert_int_eq(
        cs_kube_watch_feed(k, &sink, odd, strlen(odd), 0, err, sizeof(err)),
        CS_EHTTP);
    ck_assert_msg(strstr(err, "without an HTTP status code: too old"), "%s: %s",
                  odd_codes[i], err);
    free(odd);
  }
  const char *bad = "{\"type\":\"ADDED\"}\n";
  ck_assert_int_eq(
      cs_kube_watch_feed(k, &sink, bad, strlen(bad), 3, err, sizeof(err)),
      CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, "not JSON with type and object"));
  char big[2048];
  memset(big, ' ', sizeof(big));
  ck_assert_int_eq(
      cs_kube_watch_feed(k, &sink, big, sizeof(big), 100, err, sizeof(err)),
      CS_ETOOBIG);
  ck_assert_ptr_nonnull(strstr(err, "larger than 1024 bytes"));
  ck_assert_uint_eq(r.n, 2);
  cs_kube_free(k);
}
END_TEST

/* The list decoder on its own (what fuzz_kube_list drives): relist_begin
 * on the first page only, an upsert per item, the continue token handed
 * back, the resourceVersion taken from the last page, and a body that is
 * not a NodeList refused. */
START_TEST(test_kube_list_feed_pages)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.events_enabled = false;
  cs_kube *k = client_for("http://127.0.0.1:1", &cfg);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  const char *p1 = "{\"metadata\":{\"resourceVersion\":\"9\",\"continue\":"
                   "\"next\"},\"items\":[{\"metadata\":{\"name\":\"a\"}}]}";
  const char *p2 = "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":"
                   "[{\"metadata\":{\"name\":\"b\"}}]}";
  char err[256], *cont = NULL;
  ck_assert_int_eq(cs_kube_list_feed(k, &sink, p1, strlen(p1), true, &cont, err,
                                     sizeof(err)),
                   CS_OK);
  ck_assert_str_eq(cont, "next");
  free(cont);
  ck_assert_int_eq(cs_kube_list_feed(k, &sink, p2, strlen(p2), false, &cont,
                                     err, sizeof(err)),
                   CS_OK);
  ck_assert_ptr_null(cont);
  ck_assert_uint_eq(r.n, 3);
  ck_assert_str_eq(r.ops[0], "begin");
  ck_assert_str_eq(r.ops[1], "upsert a ?");
  ck_assert_str_eq(r.ops[2], "upsert b ?");
  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_str_eq(st.resource_version, "10");
  const char *bad = "{\"items\":{}}";
  ck_assert_int_eq(cs_kube_list_feed(k, &sink, bad, strlen(bad), true, &cont,
                                     err, sizeof(err)),
                   CS_EPARSE);
  ck_assert_ptr_null(cont);
  ck_assert_ptr_nonnull(strstr(err, "not JSON with items"));
  cs_kube_free(k);
}
END_TEST

/* A resourceVersion is opaque: one longer than the client keeps is
 * refused whole (cut, it would resume the watch from another version),
 * before the list page or the event is applied; one of 63 bytes is kept
 * whole. */
START_TEST(test_kube_resource_version_too_long_refused)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.events_enabled = false;
  cs_kube *k = client_for("http://127.0.0.1:1", &cfg);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  char rv63[64], rv64[65];
  memset(rv63, '1', 63);
  rv63[63] = '\0';
  memset(rv64, '2', 64);
  rv64[64] = '\0';
  char err[256], *cont = NULL;

  char *page = cs_asprintf("{\"metadata\":{\"resourceVersion\":\"%s\"},"
                           "\"items\":[{\"metadata\":{\"name\":\"a\"}}]}",
                           rv63);
  ck_assert_int_eq(cs_kube_list_feed(k, &sink, page, strlen(page), true, &cont,
                                     err, sizeof(err)),
                   CS_OK);
  free(page);
  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_str_eq(st.resource_version, rv63);

  page = cs_asprintf("{\"metadata\":{\"resourceVersion\":\"%s\"},"
                     "\"items\":[{\"metadata\":{\"name\":\"b\"}}]}",
                     rv64);
  ck_assert_int_eq(cs_kube_list_feed(k, &sink, page, strlen(page), true, &cont,
                                     err, sizeof(err)),
                   CS_EPARSE);
  free(page);
  ck_assert_str_eq(err, "the NodeList's metadata.resourceVersion is 64 bytes, "
                        "expected at most 63");

  char *ev = cs_asprintf("{\"type\":\"ADDED\",\"object\":{\"metadata\":{"
                         "\"name\":\"c\",\"resourceVersion\":\"%s\"}}}\n",
                         rv64);
  ck_assert_int_eq(
      cs_kube_watch_feed(k, &sink, ev, strlen(ev), 0, err, sizeof(err)),
      CS_EPARSE);
  free(ev);
  ck_assert_str_eq(err, "a watch event's object.metadata.resourceVersion is "
                        "64 bytes, expected at most 63");
  /* Neither b nor c reached the sink, and the watch stands where it was. */
  ck_assert_uint_eq(r.n, 2);
  ck_assert_str_eq(r.ops[1], "upsert a ?");
  cs_kube_get_stats(k, &st);
  ck_assert_str_eq(st.resource_version, rv63);
  cs_kube_free(k);
}
END_TEST

/* Lists with a resourceVersion holding URL delimiters, then holds every
 * watch open. */
static void odd_rv_handler(void *ud, const fk_request *rq, size_t index,
                           fk_reply *out)
{
  if (strstr(rq->query, "watch=1")) {
    out->end = FK_END_HOLD;
    return;
  }
  out->body = cs_strdup("{\"metadata\":{\"resourceVersion\":\"7#x?y=1 %\"},"
                        "\"items\":[]}");
}

/* The resourceVersion goes into the watch's query escaped: raw, its '#'
 * would end the URL there and the watch would ask for version 7. */
START_TEST(test_kube_watch_resource_version_escaped)
{
  fk_server *s = fk_start(odd_rv_handler, NULL);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube *k = fast_client(s);
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  const fk_request *watch = wait_request(s, 1);
  ck_assert_ptr_nonnull(strstr(watch->query, "watch=1"));
  char *rv = fk_param(watch, "resourceVersion");
  ck_assert_str_eq(rv, "7#x?y=1 %");
  free(rv);
  char *to = fk_param(watch, "timeoutSeconds");
  ck_assert_str_eq(to, "7");
  free(to);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* Runs the node watch against handler until the fake server has seen
 * nrequests requests; returns the log (malloc'd) and the sink's count.
 * The client counts into m (borrowed; NULL for none). */
static char *watch_log_after(fk_handler handler, size_t nrequests,
                             cs_metrics *m, size_t *recorded)
{
  fk_server *s = fk_start(handler, NULL);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.metrics = m;
  cs_kube *k = client_for(fk_url(s), &cfg);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  ck_assert(fk_wait_count(s, nrequests, 5000));
  cs_kube_free(k);
  fk_stop(s);
  *recorded = rec_count(&r);
  return log_text();
}

/* Refuses every request with a message that echoes its Authorization
 * header twice, as a misconfigured proxy might. */
static void echo_auth_handler(void *ud, const fk_request *rq, size_t index,
                              fk_reply *out)
{
  out->status = 400;
  out->body = cs_asprintf("{\"kind\":\"Status\",\"code\":400,\"message\":"
                          "\"bad header Authorization: %s (%s)\"}",
                          rq->auth, rq->auth);
}

/* The API server's error text is logged, but never the token in it. */
START_TEST(test_kube_error_text_token_redacted)
{
  size_t recorded;
  char *log = watch_log_after(echo_auth_handler, 2, NULL, &recorded);
  ck_assert_msg(strstr(log, "HTTP 400: bad header Authorization: Bearer "
                            "[token] (Bearer [token])"),
                "%s", log);
  ck_assert_ptr_null(strstr(log, "s3cret"));
  free(log);
}
END_TEST

START_TEST(test_kube_node_watch_forbidden_backs_off_and_logs_once)
{
  size_t recorded;
  cs_metrics *m = cs_metrics_new();
  char *log = watch_log_after(refuse_handler, 4, m, &recorded);
  ck_assert_uint_eq(recorded, 0);
  /* Every failed attempt counts, under the reason it was made for (the
   * fourth may be cut by the stop before it is counted). */
  ck_assert_double_ge(node_lists(m, "initial", "failed"), 3);
  ck_assert_double_eq(node_lists(m, "initial", "complete"), 0);
  cs_metrics_free(m);
  ck_assert_uint_eq(count_substr(log, "\"Cannot list nodes\""), 1);
  ck_assert_ptr_nonnull(strstr(log, "HTTP 403: nodes is forbidden"));
  /* Each retry is a repeat, not a state change: at v0 the attempt is
   * logged once too. */
  ck_assert_uint_eq(count_substr(log, "\"Listing nodes\""), 1);
  free(log);
}
END_TEST

/* Answers a list with an empty NodeList; false for a watch, which the
 * caller answers. */
static bool empty_list(const fk_request *rq, fk_reply *out)
{
  if (strstr(rq->query, "watch=1"))
    return false;
  out->body = cs_strdup("{\"metadata\":{\"resourceVersion\":\"5\"},"
                        "\"items\":[]}");
  return true;
}

/* Lists once, then refuses every watch with the same error. */
static void watch_refuse_handler(void *ud, const fk_request *rq, size_t index,
                                 fk_reply *out)
{
  if (empty_list(rq, out))
    return;
  out->status = 500;
  out->body = cs_strdup("{\"kind\":\"Status\",\"code\":500,\"message\":"
                        "\"etcd is unavailable\"}");
}

/* Lists once, then ends every watch at once, cleanly and without events. */
static void watch_ends_handler(void *ud, const fk_request *rq, size_t index,
                               fk_reply *out)
{
  if (!empty_list(rq, out))
    out->end = FK_END_CLEAN;
}

/* A watch that ends at once is no renewal at the server's timeout: it is
 * counted under a reason that says so, and retried with a growing backoff,
 * logged once: a proxy that ends every watch so is no recovery each time. */
START_TEST(test_kube_node_watch_ended_at_once_counted)
{
  size_t recorded;
  cs_metrics *m = cs_metrics_new();
  /* A list and 5 watches. */
  char *log = watch_log_after(watch_ends_handler, 6, m, &recorded);
  ck_assert_uint_eq(count_substr(log, "\"Node watch failed\""), 1);
  ck_assert_uint_eq(count_substr(log, "\"Node watch recovered\""), 0);

  const char *lv[] = {"endedAtOnce"}, *old[] = {"timeout"};
  double v = 0;
  ck_assert_int_eq(
      cs_metrics_get(m, "carbonshift_kube_watch_restarts_total", lv, &v),
      CS_OK);
  ck_assert_double_ge(v, 1);
  ck_assert_int_eq(
      cs_metrics_get(m, "carbonshift_kube_watch_restarts_total", old, &v),
      CS_ENOTFOUND);
  ck_assert_ptr_nonnull(strstr(log, "the watch ended at once without events"));
  free(log);
  cs_metrics_free(m);
}
END_TEST

/* Lists once; the first watch sends one bookmark and then nothing, as a
 * connection that died without a word; later watches answer nothing
 * after their headers either. */
static void watch_silent_handler(void *ud, const fk_request *rq, size_t index,
                                 fk_reply *out)
{
  if (empty_list(rq, out))
    return;
  if (index == 1)
    fk_reply_line(out, cs_strdup("{\"type\":\"BOOKMARK\",\"object\":{"
                                 "\"kind\":\"Node\",\"apiVersion\":\"v1\","
                                 "\"metadata\":{\"resourceVersion\":\"7\"}}}"));
  out->end = FK_END_HOLD;
}

/* A client whose watch gives up on silence after 1 s, watching s into r;
 * counts into m (NULL: none). */
static cs_kube *start_impatient_watch(fk_server *s, cs_metrics *m, rec *r)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.watch_idle_s = 1;
  cfg.metrics = m;
  cs_kube *k = client_for(fk_url(s), &cfg);
  cs_kube_node_sink sink = {r, rec_begin, rec_upsert, rec_remove, rec_end};
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  return k;
}

/* The API server sends a bookmark about every minute: a watch silent for
 * watch_idle_s is renewed at once from the last resourceVersion, rather
 * than waited on until 30 s after timeoutSeconds. A renewal, not a
 * failure: nothing at v0, no backoff. */
START_TEST(test_kube_node_watch_silent_renewed)
{
  fk_server *s = fk_start(watch_silent_handler, NULL);
  cs_metrics *m = cs_metrics_new();
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  uint64_t t0 = cs_clock_mono_ns();
  cs_kube *k = start_impatient_watch(s, m, &r);
  const fk_request *second = wait_request(s, 2);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs >= 0.9 && secs < 8.0, "renewed after %.2f s", secs);
  ck_assert_ptr_nonnull(strstr(second->query, "watch=1"));
  char *rv = fk_param(second, "resourceVersion");
  ck_assert_str_eq(rv, "7");
  free(rv);
  cs_kube_free(k);
  fk_stop(s);
  const char *lv[] = {"idle"};
  double v = 0;
  ck_assert_int_eq(
      cs_metrics_get(m, "carbonshift_kube_watch_restarts_total", lv, &v),
      CS_OK);
  ck_assert_double_ge(v, 1);
  cs_metrics_free(m);
  char *log = log_text();
  ck_assert_ptr_null(strstr(log, "\"Node watch dropped\""));
  ck_assert_ptr_null(strstr(log, "\"Node watch failed\""));
  free(log);
}
END_TEST

/* Lists once, then answers no watch within 2.5 s: not even headers. */
static void watch_mute_handler(void *ud, const fk_request *rq, size_t index,
                               fk_reply *out)
{
  if (empty_list(rq, out))
    return;
  sleep_ms(2500);
  out->end = FK_END_HOLD;
}

/* A watch that gets no answer at all within watch_idle_s is a failure:
 * logged at v0, retried with backoff. */
START_TEST(test_kube_node_watch_unanswered_is_failure)
{
  fk_server *s = fk_start(watch_mute_handler, NULL);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube *k = start_impatient_watch(s, NULL, &r);
  (void)wait_request(s, 2);
  cs_kube_free(k);
  fk_stop(s);
  char *log = log_text();
  ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"Node watch dropped\",\"err\":"
                                    "\"no answer to the watch within 1 s\""));
  free(log);
}
END_TEST

/* Lists, then answers every watch 410 Gone: each relist is followed by a
 * watch that expires again, which is retried after a backoff, not in a
 * loop, and logged at v0 for the first two only. */
static void watch_gone_handler(void *ud, const fk_request *rq, size_t index,
                               fk_reply *out)
{
  if (empty_list(rq, out))
    return;
  out->status = 410;
  out->body = cs_strdup("{\"kind\":\"Status\",\"code\":410,\"reason\":"
                        "\"Expired\",\"message\":\"too old resource "
                        "version\"}");
}

START_TEST(test_kube_node_watch_gone_again_backs_off)
{
  size_t recorded;
  cs_metrics *m = cs_metrics_new();
  /* 4 lists and 4 watches, alternating. */
  char *log = watch_log_after(watch_gone_handler, 8, m, &recorded);
  ck_assert_uint_eq(count_substr(log, "\"Node watch expired, relisting\""), 2);
  ck_assert_ptr_nonnull(strstr(log, "\"retryInSeconds\":"));
  ck_assert_double_ge(node_lists(m, "gone", "complete"), 3);
  free(log);
  cs_metrics_free(m);
}
END_TEST

/* Answers the first list 429 with Retry-After: 2 (as the API server's
 * priority and fairness does), then lists and holds the watch. */
static void throttled_handler(void *ud, const fk_request *rq, size_t index,
                              fk_reply *out)
{
  if (index == 0) {
    out->status = 429;
    out->retry_after = "2";
    out->body = cs_strdup("{\"kind\":\"Status\",\"code\":429,\"reason\":"
                          "\"TooManyRequests\",\"message\":\"Too many "
                          "requests, please try again later.\"}");
    return;
  }
  if (!empty_list(rq, out))
    out->end = FK_END_HOLD;
}

/* The list waits the server's Retry-After, not only its own backoff
 * (10 ms here). */
START_TEST(test_kube_list_waits_retry_after)
{
  fk_server *s = fk_start(throttled_handler, NULL);
  cs_kube *k = fast_client(s);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube_node_sink sink = {&r, rec_begin, rec_upsert, rec_remove, rec_end};
  uint64_t t0 = cs_clock_mono_ns();
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  ck_assert(fk_wait_count(s, 2, 10000));
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs >= 1.9, "the list was retried after %.2f s", secs);
  cs_kube_free(k);
  fk_stop(s);
  char *log = log_text();
  ck_assert_ptr_nonnull(strstr(log, "\"retryInSeconds\":2}"));
  free(log);
}
END_TEST

/* While the watch keeps failing the same way, neither the failure nor the
 * attempt is logged again at v0. */
START_TEST(test_kube_node_watch_failing_logs_attempt_once)
{
  size_t recorded;
  /* A list and 4 watches. */
  char *log = watch_log_after(watch_refuse_handler, 5, NULL, &recorded);
  ck_assert_uint_eq(recorded, 2); /* relist_begin, relist_end */
  ck_assert_uint_eq(count_substr(log, "\"Listed nodes\""), 1);
  ck_assert_uint_eq(count_substr(log, "\"Node watch failed\""), 1);
  ck_assert_uint_eq(count_substr(log, "\"Watching nodes\""), 1);
  free(log);
}
END_TEST

/* ------------------------------------------------------ token rotation */

typedef struct tok_script {
  char want[64];
} tok_script;

static void token_handler(void *ud, const fk_request *rq, size_t index,
                          fk_reply *out)
{
  tok_script *t = ud;
  char bearer[80];
  snprintf(bearer, sizeof(bearer), "Bearer %s", t->want);
  if (strcmp(rq->auth, bearer) != 0) {
    out->status = 401;
    out->body = cs_strdup("{\"kind\":\"Status\",\"code\":401,"
                          "\"message\":\"Unauthorized\"}");
    return;
  }
  out->body = cs_strdup("{\"kind\":\"Pod\"}");
}

static void rewrite_keeping_stat(const char *path, const char *text)
{
  struct stat before;
  ck_assert_int_eq(stat(path, &before), 0);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

/* An in-cluster config of server s (plain HTTP: no ca.crt needed) whose
 * service-account directory, made as `sa` under tmpdir, holds `token`.
 * Returns the token file's path. */
static char *in_cluster_config(cs_kube_config *cfg, fk_server *s, char *sa,
                               size_t cap, const char *token)
{
  snprintf(sa, cap, "%s/sa", tmpdir);
  ck_assert_int_eq(mkdir(sa, 0700), 0);
  fast_config(cfg);
  cfg->mode = CS_KUBE_IN_CLUSTER;
  cfg->sa_dir = sa;
  cfg->server = fk_url(s);
  return write_tmp("sa/token", token);
}

START_TEST(test_kube_request_expired_token_rereads_file)
{
  tok_script t = {"new-token"};
  fk_server *s = fk_start(token_handler, &t);
  char sa[128];
  cs_kube_config cfg;
  char *tok = in_cluster_config(&cfg, s, sa, sizeof(sa), "old-token\n");
  free(write_tmp("sa/namespace", "carbon\n"));
  cs_kube *k = NULL;
  char err[256];
  ck_assert_msg(cs_kube_new(&cfg, &k, err, sizeof(err)) == CS_OK, "%s", err);
  cs_kube_info info;
  cs_kube_get_info(k, &info);
  ck_assert(info.in_cluster);
  ck_assert_int_eq(info.auth, CS_KUBE_AUTH_TOKEN_FILE);
  ck_assert_str_eq(info.ns, "carbon");

  /* The file changes but looks unchanged (same size and mtime): only the
   * 401 makes the client read it again. */
  rewrite_keeping_stat(tok, "new-token\n");
  const char *keys[] = {"a"};
  const char *vals[] = {"1"};
  ck_assert_int_eq(
      cs_kube_patch_pod_annotations(k, "ml", "p", NULL, keys, vals, 1), CS_OK);
  ck_assert_uint_eq(fk_count(s), 2);
  ck_assert_str_eq(fk_get(s, 0)->auth, "Bearer old-token");
  ck_assert_uint_eq(fk_get(s, 0)->bodylen, fk_get(s, 1)->bodylen);
  ck_assert_str_eq(fk_get(s, 1)->auth, "Bearer new-token");

  /* A rotation the client can see on disk is used without a 401. */
  snprintf(t.want, sizeof(t.want), "rotated-token-3");
  FILE *f = fopen(tok, "w");
  fputs("rotated-token-3", f);
  fclose(f);
  ck_assert_int_eq(
      cs_kube_patch_pod_annotations(k, "ml", "p", NULL, keys, vals, 1), CS_OK);
  ck_assert_uint_eq(fk_count(s), 3);
  ck_assert_str_eq(fk_get(s, 2)->auth, "Bearer rotated-token-3");

  /* A token the server keeps refusing is reported, not retried forever. */
  snprintf(t.want, sizeof(t.want), "something-else");
  ck_assert_int_eq(
      cs_kube_patch_pod_annotations(k, "ml", "p", NULL, keys, vals, 1),
      CS_EAUTH);
  /* The forced re-read finds the same token: no second try. */
  ck_assert_uint_eq(fk_count(s), 4);

  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_uint_eq(st.token_reloads, 2);
  cs_kube_free(k);
  fk_stop(s);
  free(tok);
}
END_TEST

/* A token file whose token holds a control byte is refused at start and
 * at every rotation (the token in use stays), naming the file and the
 * byte, never the token; the newline at its end is trimmed as before. */
START_TEST(test_kube_token_file_control_bytes_refused)
{
  tok_script t = {"old-token"};
  fk_server *s = fk_start(token_handler, &t);
  char sa[128];
  cs_kube_config cfg;
  char *tok =
      in_cluster_config(&cfg, s, sa, sizeof(sa), "hunter2\r\nX-Injected: 1\n");
  cs_kube *k = NULL;
  char err[512];
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EAUTH);
  ck_assert_ptr_null(k);
  ck_assert_msg(strstr(err, "token file ") &&
                    strstr(err, "sa/token: byte 7 "
                                "is the control "
                                "character 0x0d") &&
                    !strstr(err, "hunter2") && !strstr(err, "Injected"),
                "%s", err);

  /* The same through a kubeconfig's tokenFile. */
  char *kc =
      cs_asprintf("current-context: x\n"
                  "contexts:\n- {name: x, context: {cluster: c, user: u}}\n"
                  "clusters:\n- {name: c, cluster: {server: '%s'}}\n"
                  "users:\n- {name: u, user: {tokenFile: sa/token}}\n",
                  fk_url(s));
  ck_assert_int_eq(load_kc(kc, NULL, &k, err, sizeof(err)), CS_EAUTH);
  ck_assert_msg(strstr(err, "users[name=u].user.tokenFile: token file ") &&
                    strstr(err, "byte 7 is the control character 0x0d") &&
                    !strstr(err, "hunter2"),
                "%s", err);
  free(kc);

  /* A rotation to such a token keeps the token in use. */
  FILE *f = fopen(tok, "w");
  fputs("old-token\n", f);
  fclose(f);
  ck_assert_msg(cs_kube_new(&cfg, &k, err, sizeof(err)) == CS_OK, "%s", err);
  f = fopen(tok, "w");
  fputs("hunter2\nX-Injected: 1\n", f);
  fclose(f);
  const char *keys[] = {"a"};
  const char *vals[] = {"1"};
  /* Each request looks at the file; the bad one is read and logged once,
   * not at every request. */
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(
        cs_kube_patch_pod_annotations(k, "ml", "p", NULL, keys, vals, 1),
        CS_OK);
  ck_assert_uint_eq(fk_count(s), 3);
  ck_assert_str_eq(fk_get(s, 0)->auth, "Bearer old-token");
  ck_assert_str_eq(fk_get(s, 2)->auth, "Bearer old-token");
  /* A good rotation after it is taken up at once. */
  snprintf(t.want, sizeof(t.want), "new-token");
  f = fopen(tok, "w");
  fputs("new-token\n", f);
  fclose(f);
  ck_assert_int_eq(
      cs_kube_patch_pod_annotations(k, "ml", "p", NULL, keys, vals, 1), CS_OK);
  ck_assert_str_eq(fk_get(s, 3)->auth, "Bearer new-token");
  cs_kube_free(k);
  fk_stop(s);
  char *log = log_text();
  ck_assert_msg(strstr(log, "byte 7 is the control character 0x0a"), "%s", log);
  const char *hit = strstr(log, "Cannot re-read the API token");
  ck_assert_msg(hit && !strstr(hit + 1, "Cannot re-read the API token"), "%s",
                log);
  ck_assert_msg(!strstr(log, "hunter2") && !strstr(log, "Injected"), "%s", log);
  free(log);
  free(tok);
}
END_TEST

START_TEST(test_kube_new_in_cluster_missing_env_and_token)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.mode = CS_KUBE_IN_CLUSTER;
  cfg.sa_dir = tmpdir;
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  cs_kube *k = NULL;
  char err[256];
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_null(k);
  ck_assert_ptr_nonnull(strstr(err, "KUBERNETES_SERVICE_HOST"));
  /* kube.kubeconfig alone does nothing in inCluster mode: the message
   * names the modes that read it. */
  ck_assert_msg(strstr(err, "kube.mode=auto") &&
                    strstr(err, "kube.mode=kubeconfig with kube.kubeconfig") &&
                    !strstr(err, "(or set kube.kubeconfig)"),
                "%s", err);

  /* The URL they make is checked at once, not at the first request. */
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "https", 1);
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EINVAL);
  ck_assert_msg(strstr(err, "in-cluster: the API server URL "
                            "https://10.96.0.1:https: ") &&
                    strstr(err, "KUBERNETES_SERVICE_PORT a port"),
                "%s", err);
  /* Parts that the URL would take for a path or userinfo. */
  static const char *const bad_parts[][2] = {
      {"10.96.0.1/x", "443"}, {"a@b", "443"}, {"h", "443/x"}, {"h", "0"}};
  for (size_t i = 0; i < sizeof(bad_parts) / sizeof(bad_parts[0]); i++) {
    setenv("KUBERNETES_SERVICE_HOST", bad_parts[i][0], 1);
    setenv("KUBERNETES_SERVICE_PORT", bad_parts[i][1], 1);
    ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EINVAL);
    ck_assert_msg(strstr(err, "in-cluster: the API server URL "), "%s", err);
  }
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EIO);
  ck_assert_msg(strstr(err, "token file") && strstr(err, "/token"), "%s", err);

  free(write_tmp("token", "abc"));
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EIO);
  ck_assert_msg(strstr(err, "ca.crt"), "%s", err);

  free(write_tmp("ca.crt", "-----BEGIN CERTIFICATE-----\n"));
  ck_assert_msg(cs_kube_new(&cfg, &k, err, sizeof(err)) == CS_OK, "%s", err);
  cs_kube_info info;
  cs_kube_get_info(k, &info);
  ck_assert_str_eq(info.server, "https://[fd00::1]:443");
  ck_assert_str_eq(info.ns, "default");
  ck_assert(info.has_ca);
  cs_kube_free(k);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
}
END_TEST

/* auto: an explicit kubeconfig wins, then in-cluster, then off; never
 * $KUBECONFIG or ~/.kube/config. Explicit modes are kept as they are. */
START_TEST(test_kube_choose_mode_order)
{
  static const struct {
    cs_kube_mode mode;
    const char *kubeconfig, *host;
    cs_kube_mode want;
  } cases[] = {
      {CS_KUBE_AUTO, "/etc/kc", "10.96.0.1", CS_KUBE_KUBECONFIG},
      {CS_KUBE_AUTO, "/etc/kc", NULL, CS_KUBE_KUBECONFIG},
      {CS_KUBE_AUTO, NULL, "10.96.0.1", CS_KUBE_IN_CLUSTER},
      {CS_KUBE_AUTO, "", "10.96.0.1", CS_KUBE_IN_CLUSTER},
      {CS_KUBE_AUTO, NULL, NULL, CS_KUBE_OFF},
      {CS_KUBE_AUTO, "", "", CS_KUBE_OFF},
      {CS_KUBE_IN_CLUSTER, "/etc/kc", NULL, CS_KUBE_IN_CLUSTER},
      {CS_KUBE_KUBECONFIG, NULL, "10.96.0.1", CS_KUBE_KUBECONFIG},
      {CS_KUBE_OFF, "/etc/kc", "10.96.0.1", CS_KUBE_OFF},
  };
  setenv("KUBECONFIG", "/should/not/be/read", 1);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg(cs_kube_choose_mode(cases[i].mode, cases[i].kubeconfig,
                                      cases[i].host) == cases[i].want,
                  "case %zu", i);

  /* cs_kube_new resolves auto the same way, and refuses what is off. */
  cs_kube_config cfg;
  fast_config(&cfg);
  cs_kube *k = (cs_kube *)1;
  char err[256];
  unsetenv("KUBERNETES_SERVICE_HOST");
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EINVAL);
  ck_assert_ptr_null(k);
  ck_assert_msg(strstr(err, "kube.kubeconfig") &&
                    strstr(err, "KUBERNETES_SERVICE_HOST") &&
                    !strstr(err, "/should/not/be/read"),
                "%s", err);
  cfg.mode = CS_KUBE_KUBECONFIG;
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EINVAL);
  ck_assert_msg(strstr(err, "kube.kubeconfig: not set"), "%s", err);
  unsetenv("KUBECONFIG");
}
END_TEST

/* ------------------------------------------------------------- patches */

static void ok_handler(void *ud, const fk_request *rq, size_t index,
                       fk_reply *out)
{
  if (strstr(rq->path, "/pods/missing")) {
    out->status = 404;
    out->body = cs_strdup("{\"kind\":\"Status\",\"code\":404,\"message\":"
                          "\"pods \\\"missing\\\" not found\"}");
    return;
  }
  out->status = strcmp(rq->method, "POST") == 0 ? 201 : 200;
  out->body = cs_strdup("{}");
}

static void assert_json_eq(const char *got, size_t len, const char *want)
{
  cJSON *g = cJSON_ParseWithLength(got, len);
  cJSON *w = cJSON_Parse(want);
  ck_assert_ptr_nonnull(w);
  ck_assert_msg(g && cJSON_Compare(g, w, true), "got %s\nwant %s", got, want);
  cJSON_Delete(g);
  cJSON_Delete(w);
}

/* Answers nothing for 2 s, not even headers (a hung API server). */
static void hung_handler(void *ud, const fk_request *rq, size_t index,
                         fk_reply *out)
{
  sleep_ms(2000);
  out->status = 200;
  out->body = cs_strdup("{}");
}

static double patches_total(cs_metrics *m, const char *result)
{
  const char *lv[] = {result};
  double v = 0;
  return cs_metrics_get(m, "carbonshift_kube_patches_total", lv, &v) == CS_OK
             ? v
             : 0;
}

/* At the stop, what is queued is sent first, for half a second: a plan
 * stored on the pod is what another replica, or this one restarted, takes
 * up. What cannot be sent (a hung API server) is counted dropped, not
 * failed, and said in one line. */
START_TEST(test_kube_free_drains_queued_patches)
{
  const char *keys[] = {"carbonshift.io/planned-start"};
  const char *vals[] = {"2026-11-23T02:00:00Z"};
  char pod[16];
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube_config cfg;
  fast_config(&cfg);
  cs_kube *k = client_for(fk_url(s), &cfg);
  for (int i = 0; i < 4; i++) {
    snprintf(pod, sizeof(pod), "p%d", i);
    ck_assert_int_eq(
        cs_kube_patch_pod_annotations_async(k, "ml", pod, NULL, keys, vals, 1),
        CS_OK);
  }
  cs_kube_free(k);
  ck_assert_uint_eq(fk_count(s), 4);
  fk_stop(s);
  char *log = log_text();
  ck_assert_ptr_null(strstr(log, "Pod updates dropped at shutdown"));
  free(log);

  s = fk_start(hung_handler, NULL);
  fast_config(&cfg);
  cfg.metrics = cs_metrics_new();
  k = client_for(fk_url(s), &cfg);
  for (int i = 0; i < 3; i++) {
    snprintf(pod, sizeof(pod), "q%d", i);
    ck_assert_int_eq(
        cs_kube_patch_pod_annotations_async(k, "ml", pod, NULL, keys, vals, 1),
        CS_OK);
  }
  ck_assert(fk_wait_count(s, 1, 5000));
  uint64_t t0 = cs_clock_mono_ns();
  cs_kube_free(k);
  double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
  ck_assert_msg(secs >= 0.45 && secs < 5.0, "the stop took %.2f s", secs);
  fk_stop(s);
  ck_assert_double_eq(patches_total(cfg.metrics, "dropped"), 3);
  ck_assert_double_eq(patches_total(cfg.metrics, "failed"), 0);
  cs_metrics_free(cfg.metrics);
  log = log_text();
  /* The two queued and the one in flight. */
  ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"Pod updates dropped at "
                                    "shutdown\",\"patches\":3,\"events\":0"));
  ck_assert_ptr_null(strstr(log, "Cannot annotate pod"));
  free(log);
}
END_TEST

/* Replies with the scripted statuses in turn (each with the scripted
 * Retry-After), then as ok_handler does. */
typedef struct script {
  const int *codes;
  size_t n;
  const char *retry_after;
} script;

static void scripted_handler(void *ud, const fk_request *rq, size_t index,
                             fk_reply *out)
{
  const script *sc = ud;
  if (index >= sc->n) {
    ok_handler(ud, rq, index, out);
    return;
  }
  out->status = sc->codes[index];
  out->retry_after = sc->retry_after;
  out->body = cs_asprintf("{\"kind\":\"Status\",\"code\":%d,"
                          "\"message\":\"scripted %d\"}",
                          sc->codes[index], sc->codes[index]);
}

/* Polls the client's counters until `patches` patches and `events` Events
 * are settled (sent or failed); false after 5 s. */
static bool wait_settled(cs_kube *k, uint64_t patches, uint64_t events,
                         cs_kube_stats *st)
{
  for (int i = 0; i < 500; i++) {
    cs_kube_get_stats(k, st);
    if (st->patches_sent + st->patches_failed == patches &&
        st->events_sent + st->events_failed == events)
      return true;
    sleep_ms(10);
  }
  return false;
}

static const char *const plan_keys[] = {"carbonshift.io/planned-start"};
static const char *const plan_vals[] = {"2026-11-23T02:00:00Z"};

/* A queued patch that meets a passing failure (503 while the API server
 * restarts, 429 from its priority and fairness) is sent again after half
 * a second, or after the server's Retry-After; it is not lost. */
START_TEST(test_kube_queued_patch_retried_after_passing_failure)
{
  static const struct {
    int code;
    const char *retry_after;
    double min_s;
  } cases[] = {{503, NULL, 0.45}, {429, "1", 0.95}, {0, NULL, 0}};
  for (size_t c = 0; cases[c].code; c++) {
    script sc = {&cases[c].code, 1, cases[c].retry_after};
    fk_server *s = fk_start(scripted_handler, &sc);
    cs_kube_config cfg;
    fast_config(&cfg);
    cs_kube *k = client_for(fk_url(s), &cfg);
    uint64_t t0 = cs_clock_mono_ns();
    ck_assert_int_eq(cs_kube_patch_pod_annotations_async(
                         k, "ml", "train-1", "uid-1", plan_keys, plan_vals, 1),
                     CS_OK);
    const fk_request *second = wait_request(s, 1);
    double secs = (double)(cs_clock_mono_ns() - t0) / 1e9;
    ck_assert_msg(secs >= cases[c].min_s, "case %zu: retried after %.2f s", c,
                  secs);
    const fk_request *first = fk_get(s, 0);
    ck_assert_str_eq(second->path, first->path);
    ck_assert_str_eq(second->body, first->body);
    cs_kube_stats st;
    ck_assert(wait_settled(k, 1, 0, &st));
    ck_assert_uint_eq(st.patches_sent, 1);
    ck_assert_uint_eq(st.patches_failed, 0);
    sleep_ms(50);
    ck_assert_uint_eq(fk_count(s), 2);
    cs_kube_free(k);
    fk_stop(s);
    char *log = log_text();
    ck_assert_ptr_null(strstr(log, "Cannot annotate pod"));
    free(log);
  }
}
END_TEST

/* Answers 200 (201 for a POST) with the start of a body, then drops the
 * connection: the API server applied the request, the answer was cut. */
static void cut_body_handler(void *ud, const fk_request *rq, size_t index,
                             fk_reply *out)
{
  (void)ud;
  (void)index;
  out->status = strcmp(rq->method, "POST") == 0 ? 201 : 200;
  fk_reply_line(out, cs_strdup("{\"kind\":\"Pod\",\"metadata\":{"));
  out->end = FK_END_DROP;
}

/* A 2xx is the API server's word that the patch or Event is applied: an
 * answer cut after it is not a failure, and sending again would repeat
 * the Event. */
START_TEST(test_kube_2xx_with_cut_body_is_sent)
{
  fk_server *s = fk_start(cut_body_handler, NULL);
  cs_kube *k = fast_client(s);
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(
                       k, "ml", "train-1", "uid-1", plan_keys, plan_vals, 1),
                   CS_OK);
  cs_kube_stats st;
  ck_assert(wait_settled(k, 1, 0, &st));
  cs_kube_event ev = {.ns = "ml",
                      .pod = "train-1",
                      .reason = "CarbonDeferred",
                      .action = "Defer",
                      .note = "waiting"};
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  ck_assert(wait_settled(k, 1, 1, &st));
  ck_assert_uint_eq(st.patches_sent, 1);
  ck_assert_uint_eq(st.patches_failed, 0);
  ck_assert_uint_eq(st.events_sent, 1);
  ck_assert_uint_eq(st.events_failed, 0);
  sleep_ms(700); /* longer than the first retry's wait */
  ck_assert_uint_eq(fk_count(s), 2);
  ck_assert_str_eq(fk_get(s, 0)->method, "PATCH");
  ck_assert_str_eq(fk_get(s, 1)->method, "POST");
  cs_kube_free(k);
  fk_stop(s);
  char *log = log_text();
  ck_assert_ptr_null(strstr(log, "Cannot annotate pod"));
  ck_assert_ptr_null(strstr(log, "Cannot send a pod event"));
  free(log);
}
END_TEST

/* Three tries at most, then the failure is logged with its count. While
 * the server keeps failing so, the next item gets one try (retries would
 * only hold the queue up); a success gives retries back. A 4xx other than
 * 429 is the request's fault: never sent again. */
START_TEST(test_kube_queued_patch_attempts_bounded)
{
  static const int codes[] = {503, 503, 503, 502, 422, 503};
  script sc = {codes, sizeof(codes) / sizeof(codes[0]), NULL};
  fk_server *s = fk_start(scripted_handler, &sc);
  cs_kube *k = fast_client(s);
  cs_kube_stats st;
  /* requests 0-2: 503 x3, failed; 3: 502, failed at once (outage); 4: 422,
   * failed (not passing; the outage flag clears); 5: 503, so retried: 6,
   * 200. */
  static const size_t after[] = {3, 4, 5, 7};
  char pod[16];
  for (int i = 0; i < 4; i++) {
    snprintf(pod, sizeof(pod), "p%d", i);
    ck_assert_int_eq(cs_kube_patch_pod_annotations_async(
                         k, "ml", pod, NULL, plan_keys, plan_vals, 1),
                     CS_OK);
    ck_assert_msg(wait_settled(k, (uint64_t)i + 1, 0, &st),
                  "patch %d never settled", i);
    ck_assert_uint_eq(fk_count(s), after[i]);
  }
  ck_assert_uint_eq(st.patches_failed, 3);
  ck_assert_uint_eq(st.patches_sent, 1);
  ck_assert_uint_eq(st.patches_dropped, 0);
  cs_kube_free(k);
  fk_stop(s);
  char *log = log_text();
  ck_assert_ptr_nonnull(
      strstr(log, "\"err\":\"HTTP 503: scripted 503\",\"attempts\":3"));
  ck_assert_ptr_nonnull(
      strstr(log, "\"err\":\"HTTP 502: scripted 502\",\"attempts\":1"));
  ck_assert_ptr_nonnull(
      strstr(log, "\"err\":\"HTTP 422: scripted 422\",\"attempts\":1"));
  free(log);
}
END_TEST

/* The one-try rule lasts send_outage_s after the last such failure: a
 * blip much later gets its retries again, rather than losing the plan. */
START_TEST(test_kube_queued_patch_outage_passes)
{
  static const int codes[] = {503, 503, 503, 503};
  script sc = {codes, 4, NULL};
  fk_server *s = fk_start(scripted_handler, &sc);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.send_outage_s = 0.3;
  cs_kube *k = client_for(fk_url(s), &cfg);
  cs_kube_stats st;
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "p0", NULL,
                                                       plan_keys, plan_vals, 1),
                   CS_OK);
  ck_assert(wait_settled(k, 1, 0, &st));
  ck_assert_uint_eq(st.patches_failed, 1);
  sleep_ms(500);
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "p1", NULL,
                                                       plan_keys, plan_vals, 1),
                   CS_OK);
  ck_assert(wait_settled(k, 2, 0, &st));
  ck_assert_uint_eq(st.patches_sent, 1); /* 503, then 200 */
  ck_assert_uint_eq(fk_count(s), 5);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* Always 503, asking to come back in 5 s. */
static void busy_handler(void *ud, const fk_request *rq, size_t index,
                         fk_reply *out)
{
  out->status = 503;
  out->retry_after = "5";
  out->body = cs_strdup("{\"kind\":\"Status\",\"code\":503}");
}

/* A patch waiting between tries when the stop comes is dropped, counted
 * and said in the shutdown line, like one still queued. */
START_TEST(test_kube_free_counts_patch_cut_between_tries)
{
  fk_server *s = fk_start(busy_handler, NULL);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.metrics = cs_metrics_new();
  cs_kube *k = client_for(fk_url(s), &cfg);
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "p0", NULL,
                                                       plan_keys, plan_vals, 1),
                   CS_OK);
  (void)wait_request(s, 0);
  sleep_ms(100); /* the answer is in: the sender waits out Retry-After */
  cs_kube_free(k);
  fk_stop(s);
  ck_assert_double_eq(patches_total(cfg.metrics, "dropped"), 1);
  ck_assert_double_eq(patches_total(cfg.metrics, "failed"), 0);
  cs_metrics_free(cfg.metrics);
  char *log = log_text();
  ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"Pod updates dropped at "
                                    "shutdown\",\"patches\":1,\"events\":0"));
  free(log);
}
END_TEST

/* An Event whose first answer is lost (504 from a proxy after the API
 * server stored it) is sent again under the same name; the 409 that
 * follows means it is there: sent, not failed. */
START_TEST(test_kube_event_retry_already_exists_is_sent)
{
  static const int codes[] = {504, 409};
  script sc = {codes, 2, NULL};
  fk_server *s = fk_start(scripted_handler, &sc);
  cs_kube *k = fast_client(s);
  cs_kube_event ev = {.ns = "ml",
                      .pod = "train-1",
                      .reason = "CarbonDeferred",
                      .action = "Defer",
                      .note = "waiting"};
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  cs_kube_stats st;
  ck_assert(wait_settled(k, 0, 1, &st));
  ck_assert_uint_eq(st.events_sent, 1);
  ck_assert_uint_eq(st.events_failed, 0);
  ck_assert_uint_eq(fk_count(s), 2);
  ck_assert_str_eq(fk_get(s, 1)->body, fk_get(s, 0)->body);
  cs_kube_free(k);
  fk_stop(s);
  char *log = log_text();
  ck_assert_ptr_null(strstr(log, "Cannot send a pod event"));
  free(log);
}
END_TEST

START_TEST(test_kube_patch_pod_annotations_merge_patch)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube *k = fast_client(s);
  const char *keys[] = {"carbonshift.io/planned-start",
                        "carbonshift.io/expected-saving", "carbonshift.io/old"};
  const char *vals[] = {"2026-11-23T02:00:00Z", "quote \" and \\ ok", NULL};
  ck_assert_int_eq(cs_kube_patch_pod_annotations(k, "ml-team", "train-1", NULL,
                                                 keys, vals, 3),
                   CS_OK);
  ck_assert_uint_eq(fk_count(s), 1);
  const fk_request *rq = fk_get(s, 0);
  ck_assert_str_eq(rq->method, "PATCH");
  ck_assert_str_eq(rq->path, "/api/v1/namespaces/ml-team/pods/train-1");
  ck_assert_str_eq(rq->ctype, "application/merge-patch+json");
  assert_json_eq(
      rq->body, rq->bodylen,
      "{\"metadata\":{\"annotations\":{"
      "\"carbonshift.io/planned-start\":\"2026-11-23T02:00:00Z\","
      "\"carbonshift.io/expected-saving\":\"quote \\\" and \\\\ ok\","
      "\"carbonshift.io/old\":null}}}");

  ck_assert_int_eq(cs_kube_patch_pod_annotations(k, "ml-team", "missing", NULL,
                                                 keys, vals, 1),
                   CS_ENOTFOUND);
  /* Names that could rewrite the path never reach the server. */
  ck_assert_int_eq(cs_kube_patch_pod_annotations(k, "ml-team", "../nodes", NULL,
                                                 keys, vals, 1),
                   CS_EINVAL);
  ck_assert_int_eq(
      cs_kube_patch_pod_annotations(k, "", "train-1", NULL, keys, vals, 1),
      CS_EINVAL);
  ck_assert_uint_eq(fk_count(s), 2);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* The queued form reaches the server with the same request, sent by the
 * worker, while the caller returns at once. */
START_TEST(test_kube_patch_pod_annotations_async_queued)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube *k = fast_client(s);
  const char *keys[] = {"carbonshift.io/planned-start"};
  const char *vals[] = {"2026-11-23T02:00:00Z"};
  /* With the pod's uid, which the API server holds the patch to. */
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(
                       k, "ml-team", "train-1", "6f1c-uid", keys, vals, 1),
                   CS_OK);
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml-team", "../x",
                                                       NULL, keys, vals, 1),
                   CS_EINVAL);
  for (int i = 0; i < 500 && fk_count(s) < 1; i++)
    usleep(10000);
  ck_assert_uint_eq(fk_count(s), 1);
  const fk_request *rq = fk_get(s, 0);
  ck_assert_str_eq(rq->method, "PATCH");
  ck_assert_str_eq(rq->path, "/api/v1/namespaces/ml-team/pods/train-1");
  ck_assert_str_eq(rq->ctype, "application/merge-patch+json");
  assert_json_eq(
      rq->body, rq->bodylen,
      "{\"metadata\":{\"uid\":\"6f1c-uid\",\"annotations\":{"
      "\"carbonshift.io/planned-start\":\"2026-11-23T02:00:00Z\"}}}");
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* events.enabled=false turns off Events only: the worker that sends them
 * also sends the queued patches, which must still reach the server. */
START_TEST(test_kube_patch_pod_annotations_async_events_disabled)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.events_enabled = false;
  cfg.event_queue_cap = 2;
  cs_kube *k = client_for(fk_url(s), &cfg);
  cs_kube_event ev = {.ns = "ml",
                      .pod = "train-1",
                      .reason = "CarbonDeferred",
                      .action = "Schedule",
                      .note = "waiting"};
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK); /* not queued */
  const char *keys[] = {"carbonshift.io/planned-start"};
  const char *vals[] = {"2026-11-23T02:00:00Z"};
  char pod[24];
  /* More patches than the queue holds, one after the other: each is sent
   * before the next, none is dropped. */
  for (int i = 0; i < 4; i++) {
    snprintf(pod, sizeof(pod), "train-%d", i);
    ck_assert_int_eq(
        cs_kube_patch_pod_annotations_async(k, "ml", pod, NULL, keys, vals, 1),
        CS_OK);
    const fk_request *rq = wait_request(s, (size_t)i);
    ck_assert_str_eq(rq->method, "PATCH");
    char *want = cs_asprintf("/api/v1/namespaces/ml/pods/%s", pod);
    ck_assert_str_eq(rq->path, want);
    free(want);
  }
  sleep_ms(100);
  ck_assert_uint_eq(fk_count(s), 4); /* and no Event */
  cs_kube_stats st;
  for (int i = 0; i < 100; i++) {
    cs_kube_get_stats(k, &st);
    if (st.patches_sent == 4)
      break;
    sleep_ms(10);
  }
  ck_assert_uint_eq(st.patches_sent, 4);
  ck_assert_uint_eq(st.patches_dropped, 0);
  ck_assert_uint_eq(st.events_sent + st.events_dropped + st.events_suppressed,
                    0);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* -------------------------------------------------------------- events */

START_TEST(test_kube_emit_event_body_and_dedup)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.reporting_instance = "carbonshift-7d9f-abc";
  cfg.event_min_interval_s = 0;
  cs_kube *k = client_for(fk_url(s), &cfg);
  cs_kube_event ev = {.ns = "ml",
                      .pod = "train-1",
                      .uid = "0d6c1c4e-1111-4f00-9a7e-123456789abc",
                      .reason = "CarbonDeferred",
                      .action = "Defer",
                      .note = "carbonshift: waiting for a greener window",
                      .warning = false};
  time_t before = time(NULL);
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  const fk_request *rq = wait_request(s, 0);
  ck_assert_str_eq(rq->method, "POST");
  ck_assert_str_eq(rq->path, "/apis/events.k8s.io/v1/namespaces/ml/events");
  ck_assert_str_eq(rq->ctype, "application/json");
  cJSON *b = cJSON_ParseWithLength(rq->body, rq->bodylen);
  ck_assert_ptr_nonnull(b);
  /* The generated fields are checked for form, then removed to compare
   * the rest exactly. */
  const char *when =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "eventTime"));
  ck_assert_ptr_nonnull(when);
  ck_assert_uint_eq(strlen(when), 27);
  struct tm tm = {0};
  char *end = strptime(when, "%Y-%m-%dT%H:%M:%S", &tm);
  ck_assert_ptr_nonnull(end);
  ck_assert_int_eq(end[0], '.');
  ck_assert_uint_eq(strspn(end + 1, "0123456789"), 6);
  ck_assert_str_eq(end + 7, "Z");
  time_t t = timegm(&tm);
  ck_assert_int_ge(t, before);
  ck_assert_int_le(t, time(NULL));
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(b, "metadata");
  const char *name =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "name"));
  ck_assert_ptr_nonnull(name);
  ck_assert_int_eq(strncmp(name, "train-1.", 8), 0);
  ck_assert_uint_eq(strspn(name + 8, "0123456789abcdef"), strlen(name + 8));
  cJSON_DeleteItemFromObjectCaseSensitive(b, "eventTime");
  cJSON_DeleteItemFromObjectCaseSensitive(meta, "name");
  char *got = cJSON_PrintUnformatted(b);
  assert_json_eq(got, strlen(got),
                 "{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\","
                 "\"metadata\":{\"namespace\":\"ml\"},"
                 "\"reportingController\":\"carbonshift.io/extender\","
                 "\"reportingInstance\":\"carbonshift-7d9f-abc\","
                 "\"action\":\"Defer\",\"reason\":\"CarbonDeferred\","
                 "\"note\":\"carbonshift: waiting for a greener window\","
                 "\"type\":\"Normal\","
                 "\"regarding\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\","
                 "\"namespace\":\"ml\",\"name\":\"train-1\","
                 "\"uid\":\"0d6c1c4e-1111-4f00-9a7e-123456789abc\"}}");
  free(got);
  cJSON_Delete(b);

  /* The same pod, reason and note again: suppressed. */
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  /* A new note, or another reason, is sent. */
  ev.note = "carbonshift: waiting, planned start moved";
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  ev.reason = "CarbonBudgetExceeded";
  ev.warning = true;
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  rq = wait_request(s, 2);
  ck_assert_ptr_nonnull(strstr(rq->body, "\"type\":\"Warning\""));
  ck_assert_ptr_nonnull(
      strstr(rq->body, "\"reason\":\"CarbonBudgetExceeded\""));
  sleep_ms(100);
  ck_assert_uint_eq(fk_count(s), 3);

  ev.ns = "Bad_NS";
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_EINVAL);

  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_uint_eq(st.events_sent, 3);
  ck_assert_uint_eq(st.events_suppressed, 1);
  ck_assert_uint_eq(st.events_dropped, 0);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* What the API server accepts as metadata.name (IsDNS1123Subdomain). */
static bool is_dns_subdomain(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i < n; i++) {
    bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
    bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
    if (!alnum && (s[i] != '-' || edge) && (s[i] != '.' || edge))
      return false;
  }
  return true;
}

/* The Event name is the pod name, cut to leave room for the suffix, then
 * '.' and the suffix: a cut that ends in '-' or '.' must not leave it
 * before the '.'. */
START_TEST(test_kube_emit_event_long_pod_name_valid)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube *k = fast_client(s);
  char pod[251];
  static const char *const tails[] = {"-", ".-"}; /* ending at byte 231 */
  for (size_t t = 0; t < 2; t++) {
    memset(pod, 'a', 250);
    pod[250] = '\0';
    memcpy(pod + 231 - strlen(tails[t]), tails[t], strlen(tails[t]));
    cs_kube_event ev = {.ns = "ml",
                        .pod = pod,
                        .reason = "CarbonDeferred",
                        .action = "Schedule",
                        .note = "waiting"};
    ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
    const fk_request *rq = wait_request(s, t);
    cJSON *b = cJSON_ParseWithLength(rq->body, rq->bodylen);
    ck_assert_ptr_nonnull(b);
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "metadata"), "name"));
    ck_assert_ptr_nonnull(name);
    ck_assert_msg(is_dns_subdomain(name), "not a DNS subdomain: %s", name);
    size_t keep = 231 - strlen(tails[t]);
    ck_assert_int_eq(strncmp(name, pod, keep), 0);
    ck_assert_int_eq(name[keep], '.');
    cJSON_Delete(b);
    pod[0] = 'b'; /* another pod: not suppressed as a duplicate */
  }
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* The API server refuses a note over 1 KiB as it decoded it, where a byte
 * that begins no UTF-8 sequence, sent as \ufffd, takes three: the cut
 * counts that, and still keeps whole sequences. */
START_TEST(test_kube_emit_event_note_cut_as_decoded)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube *k = fast_client(s);
  static const char *const fill[] = {"\xff", "\xc3\xa9", "a\xe2\x82"};
  static const size_t want[] = {1023, 1024, 1023};
  for (size_t t = 0; t < 3; t++) {
    char note[2100];
    size_t len = 0, step = strlen(fill[t]);
    for (; len + step < sizeof(note); len += step)
      memcpy(note + len, fill[t], step);
    note[len] = '\0';
    char pod[16];
    snprintf(pod, sizeof(pod), "pod-%zu", t);
    cs_kube_event ev = {.ns = "ml",
                        .pod = pod,
                        .reason = "CarbonInvalidAnnotation\xfe",
                        .action = "Schedule",
                        .note = note,
                        .warning = true};
    ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
    const fk_request *rq = wait_request(s, t);
    cJSON *b = cJSON_ParseWithLength(rq->body, rq->bodylen);
    ck_assert_ptr_nonnull(b);
    const char *got =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "note"));
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(got), want[t]);
    for (size_t i = 0; got[i]; i += cs_utf8_len(got + i, strlen(got + i)))
      ck_assert_msg(cs_utf8_len(got + i, strlen(got + i)) > 0,
                    "case %zu: a UTF-8 sequence split at byte %zu", t, i);
    ck_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "reason")),
        "CarbonInvalidAnnotation\xef\xbf\xbd");
    cJSON_Delete(b);
  }
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

START_TEST(test_kube_emit_event_min_interval_suppresses_new_note)
{
  fk_server *s = fk_start(ok_handler, NULL);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.event_min_interval_s = 60;
  cs_kube *k = client_for(fk_url(s), &cfg);
  cs_kube_event ev = {.ns = "ml",
                      .pod = "p",
                      .reason = "CarbonDeferred",
                      .action = "Defer",
                      .note = "first"};
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  ev.note = "second";
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  wait_request(s, 0);
  sleep_ms(100);
  ck_assert_uint_eq(fk_count(s), 1);
  cs_kube_stats st;
  cs_kube_get_stats(k, &st);
  ck_assert_uint_eq(st.events_suppressed, 1);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
} gate;

static void gated_handler(void *ud, const fk_request *rq, size_t index,
                          fk_reply *out)
{
  gate *g = ud;
  pthread_mutex_lock(&g->mu);
  while (!g->open)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  out->status = 201;
  out->body = cs_strdup("{}");
}

START_TEST(test_kube_emit_event_queue_full_drops)
{
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
  fk_server *s = fk_start(gated_handler, &g);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.event_queue_cap = 2;
  cs_kube *k = client_for(fk_url(s), &cfg);
  char pod[16];
  cs_kube_event ev = {.ns = "ml",
                      .pod = pod,
                      .reason = "CarbonPlaced",
                      .action = "Place",
                      .note = "placed"};
  snprintf(pod, sizeof(pod), "pod-0");
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  wait_request(s, 0); /* the sender is now stuck on the first Event */
  cs_err want[] = {CS_OK, CS_OK, CS_EBUSY, CS_EBUSY};
  uint64_t t0 = cs_clock_mono_ns();
  for (int i = 1; i <= 4; i++) {
    snprintf(pod, sizeof(pod), "pod-%d", i);
    ck_assert_int_eq(cs_kube_emit_event(k, &ev), want[i - 1]);
  }
  /* Emitting never waits on the API server. */
  ck_assert_uint_lt(cs_clock_mono_ns() - t0, 50u * 1000 * 1000);
  pthread_mutex_lock(&g.mu);
  g.open = true;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
  wait_request(s, 2);
  cs_kube_stats st;
  ck_assert(wait_settled(k, 0, 3, &st));
  ck_assert_uint_eq(st.events_sent, 3);
  ck_assert_uint_eq(st.events_dropped, 2);
  ck_assert_ptr_nonnull(strstr(fk_get(s, 2)->body, "\"name\":\"pod-2\""));
  /* A dropped Event was not remembered: it can be sent later. */
  snprintf(pod, sizeof(pod), "pod-4");
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  wait_request(s, 3);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

/* Events fill at most three quarters of the queue: the rest is kept for
 * plan patches, which a burst of Events must not crowd out. */
START_TEST(test_kube_events_leave_room_for_patches)
{
  gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
  fk_server *s = fk_start(gated_handler, &g);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.event_queue_cap = 8;
  cs_kube *k = client_for(fk_url(s), &cfg);
  char pod[16];
  cs_kube_event ev = {.ns = "ml",
                      .pod = pod,
                      .reason = "CarbonDeferred",
                      .action = "Schedule",
                      .note = "waiting"};
  snprintf(pod, sizeof(pod), "pod-0");
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  wait_request(s, 0); /* the sender is now stuck on the first Event */
  for (int i = 1; i <= 7; i++) {
    snprintf(pod, sizeof(pod), "pod-%d", i);
    ck_assert_int_eq(cs_kube_emit_event(k, &ev), i <= 6 ? CS_OK : CS_EBUSY);
  }
  const char *keys[] = {"carbonshift.io/planned-start"};
  const char *vals[] = {"2026-11-23T02:00:00Z"};
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "pod-7", NULL,
                                                       keys, vals, 1),
                   CS_OK);
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "pod-8", NULL,
                                                       keys, vals, 1),
                   CS_OK);
  ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "pod-9", NULL,
                                                       keys, vals, 1),
                   CS_EBUSY);
  pthread_mutex_lock(&g.mu);
  g.open = true;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
  cs_kube_free(k);
  fk_stop(s);
}
END_TEST

START_TEST(test_kube_format_micro_time_layout)
{
  char out[28];
  cs_kube_format_micro_time(1795399200, 42, out);
  ck_assert_str_eq(out, "2026-11-23T02:00:00.000042Z");
  cs_kube_format_micro_time(0, 999999, out);
  ck_assert_str_eq(out, "1970-01-01T00:00:00.999999Z");
}
END_TEST

/* ---------------------------------------------------------- kubeconfig */

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" */
#define CERT_B64                                                               \
  "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUt"   \
  "LS0tLQo="

START_TEST(test_kube_new_kubeconfig_users)
{
  free(write_tmp("client.crt", "-----BEGIN CERTIFICATE-----\n"));
  free(write_tmp("client.key", "-----BEGIN PRIVATE KEY-----\n"));
  free(write_tmp("ca.pem", "-----BEGIN CERTIFICATE-----\n"));
  free(write_tmp("tok", "from-file\n"));
  const char *yaml = "apiVersion: v1\n"
                     "kind: Config\n"
                     "current-context: tok\n"
                     "clusters:\n"
                     "- name: c1\n"
                     "  cluster:\n"
                     "    server: https://10.0.0.1:6443/\n"
                     "    certificate-authority-data: " CERT_B64 "\n"
                     "- name: c2\n"
                     "  cluster:\n"
                     "    server: https://k8s.example:443\n"
                     "    certificate-authority: ca.pem\n"
                     "- name: c3\n"
                     "  cluster:\n"
                     "    server: https://10.0.0.3\n"
                     "    insecure-skip-tls-verify: true\n"
                     "    disable-compression: true\n" /* honoured: none */
                     "    extensions:\n"
                     "    - {name: x, extension: {}}\n"
                     "contexts:\n"
                     "- name: tok\n"
                     "  context: {cluster: c1, user: u-token, namespace: ml}\n"
                     "- name: cert-data\n"
                     "  context: {cluster: c2, user: u-cert-data}\n"
                     "- name: cert-file\n"
                     "  context: {cluster: c3, user: u-cert-file}\n"
                     "- name: tok-file\n"
                     "  context: {cluster: c3, user: u-token-file}\n"
                     "- name: anon\n"
                     "  context: {cluster: c3}\n"
                     "- name: anon-user\n"
                     "  context: {cluster: c3, user: u-none}\n"
                     "users:\n"
                     "- name: u-token\n"
                     "  user: {token: abc.def}\n"
                     "- name: u-cert-data\n"
                     "  user:\n"
                     "    client-certificate-data: " CERT_B64 "\n"
                     "    client-key-data: " CERT_B64 "\n"
                     "- name: u-cert-file\n"
                     "  user:\n"
                     "    client-certificate: client.crt\n"
                     "    client-key: client.key\n"
                     "- name: u-token-file\n"
                     "  user:\n"
                     "    tokenFile: tok\n"
                     "    token: ~\n" /* YAML's null: no second token */
                     "    client-certificate: null\n"
                     "- name: u-none\n"
                     "  user: {}\n";
  cs_kube *k = NULL;
  char err[512];
  cs_kube_info in;

  ck_assert_msg(load_kc(yaml, NULL, &k, err, sizeof(err)) == CS_OK, "%s", err);
  cs_kube_get_info(k, &in);
  ck_assert_str_eq(in.server, "https://10.0.0.1:6443");
  ck_assert_str_eq(in.context, "tok");
  ck_assert_str_eq(in.ns, "ml");
  ck_assert_int_eq(in.auth, CS_KUBE_AUTH_TOKEN);
  ck_assert(in.has_ca);
  ck_assert(!in.insecure && !in.in_cluster);
  cs_kube_free(k);

  ck_assert_msg(load_kc(yaml, "cert-data", &k, err, sizeof(err)) == CS_OK, "%s",
                err);
  cs_kube_get_info(k, &in);
  ck_assert_str_eq(in.server, "https://k8s.example:443");
  ck_assert_str_eq(in.ns, "default");
  ck_assert_int_eq(in.auth, CS_KUBE_AUTH_CLIENT_CERT);
  ck_assert(in.has_ca);
  cs_kube_free(k);

  ck_assert_msg(load_kc(yaml, "cert-file", &k, err, sizeof(err)) == CS_OK, "%s",
                err);
  cs_kube_get_info(k, &in);
  ck_assert_int_eq(in.auth, CS_KUBE_AUTH_CLIENT_CERT);
  ck_assert(in.insecure && !in.has_ca);
  cs_kube_free(k);

  ck_assert_msg(load_kc(yaml, "tok-file", &k, err, sizeof(err)) == CS_OK, "%s",
                err);
  cs_kube_get_info(k, &in);
  ck_assert_int_eq(in.auth, CS_KUBE_AUTH_TOKEN_FILE);
  cs_kube_free(k);

  ck_assert_msg(load_kc(yaml, "anon", &k, err, sizeof(err)) == CS_OK, "%s",
                err);
  cs_kube_get_info(k, &in);
  ck_assert_int_eq(in.auth, CS_KUBE_AUTH_NONE);
  cs_kube_free(k);

  /* A user with no fields is anonymous too, as kubectl writes it. */
  ck_assert_msg(load_kc(yaml, "anon-user", &k, err, sizeof(err)) == CS_OK, "%s",
                err);
  cs_kube_get_info(k, &in);
  ck_assert_int_eq(in.auth, CS_KUBE_AUTH_NONE);
  cs_kube_free(k);

  ck_assert_int_eq(load_kc(yaml, "nope", &k, err, sizeof(err)), CS_ENOTFOUND);
  ck_assert_ptr_null(k);
  ck_assert_msg(strstr(err, "contexts: no context named \"nope\""), "%s", err);
}
END_TEST

typedef struct bad_case {
  const char *yaml;
  cs_err rc;
  const char *msg; /* must appear in the error */
} bad_case;

static const bad_case bad_cases[] = {
    {"", CS_EPARSE, "the file is empty"},
    {"clusters: [\n", CS_EPARSE, "line 2"},
    {"- a\n- b\n", CS_EPARSE, "expected a mapping at the top level"},
    {"kind: Config\n", CS_EINVAL, "current-context: missing"},
    {"current-context: x\ncontexts: {}\n", CS_EINVAL,
     "contexts: expected a list"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {user: u}\n",
     CS_EINVAL, "contexts[name=x].context.cluster: missing"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n",
     CS_ENOTFOUND, "clusters: no cluster named \"c\""},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: ftp://h}\n",
     CS_EINVAL, "clusters[name=c].cluster.server: not an http(s) URL"},
    /* Found by fuzz_kubeconfig: "http://" lost its slashes to the
     * trailing-slash trim and loaded as the server "http:". */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'http://'}\n",
     CS_EINVAL, "clusters[name=c].cluster.server: no host after the scheme"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://:6443/'}\n",
     CS_EINVAL, "clusters[name=c].cluster.server: no host after the scheme"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h /x'}\n",
     CS_EINVAL,
     "clusters[name=c].cluster.server: contains a space or control character"},
    /* Basic authentication in disguise, and a password in every line
     * that names the server. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: "
     "'https://admin:hunter2@h:6443/'}\n",
     CS_EINVAL, "clusters[name=c].cluster.server: has user information"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: [a]}\n",
     CS_EINVAL, "clusters[name=c].cluster.server: not a string"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "certificate-authority-data: '%%%'}\n",
     CS_EINVAL,
     "clusters[name=c].cluster.certificate-authority-data: expected "
     "base64-encoded PEM"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "certificate-authority: /nonexistent/ca.pem}\n",
     CS_EIO, "certificate-authority: /nonexistent/ca.pem: No such file"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "insecure-skip-tls-verify: yes please}\n",
     CS_EINVAL,
     "insecure-skip-tls-verify: \"yes please\", expected true or "
     "false"},
    /* client-go refuses a CA with the insecure flag; the CA would be
     * ignored. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "insecure-skip-tls-verify: true, certificate-authority: ca.pem}\n",
     CS_EINVAL,
     "clusters[name=c].cluster: insecure-skip-tls-verify is true and "
     "certificate-authority is given, expected one of them"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "insecure-skip-tls-verify: true, certificate-authority-data: " CERT_B64
     "}\n",
     CS_EINVAL,
     "insecure-skip-tls-verify is true and certificate-authority-data is "
     "given"},
    /* A bool, as client-go reads it: in quotes it is a string. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "insecure-skip-tls-verify: 'true'}\n",
     CS_EINVAL,
     "clusters[name=c].cluster.insecure-skip-tls-verify: \"true\" (quoted, "
     "so a string), expected true or false"},
    /* Cluster fields the client cannot honour are refused, not dropped: a
     * mistyped CA would have trusted the system's CAs instead. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "certificate-authority-dat: " CERT_B64 "}\n",
     CS_EINVAL,
     "clusters[name=c].cluster.certificate-authority-dat: unknown field, "
     "expected server, certificate-authority[-data], "},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "proxy-url: 'http://proxy:3128'}\n",
     CS_EUNSUPPORTED, "clusters[name=c].cluster.proxy-url: not supported"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'https://h', "
     "tls-server-name: 'kube/x'}\n",
     CS_EINVAL,
     "clusters[name=c].cluster.tls-server-name: \"kube/x\", expected a DNS "
     "name in lower case"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
     "clusters:\n- name: c\n  cluster: {server: 'http://h:8080', "
     "tls-server-name: kubernetes}\n",
     CS_EINVAL,
     "tls-server-name \"kubernetes\" given for http://h:8080, expected an "
     "https:// server"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n",
     CS_ENOTFOUND, "users: no user named \"u\""},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {client-certificate-data: " CERT_B64 "}\n",
     CS_EINVAL, "users[name=u].user: client-certificate without client-key"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {client-certificate-data: " CERT_B64 ", "
     "client-key-data: bm90IHBlbQ==}\n",
     CS_EINVAL,
     "users[name=u].user.client-key-data: expected base64-encoded "
     "PEM"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {client-certificate: nope.crt, client-key: "
     "nope.key}\n",
     CS_EIO, "users[name=u].user.client-certificate: "},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {exec: {command: aws}}\n",
     CS_EUNSUPPORTED,
     "users[name=u].user.exec: credential plugins are not "
     "supported"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {tokenFile: missing-token}\n",
     CS_EIO, "users[name=u].user.tokenFile: token file "},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {token: [a, b]}\n",
     CS_EINVAL,
     "users[name=u].user: token, tokenFile and the "
     "client-certificate/-key fields must be strings"},
    /* One token: client-go would prefer the file's while it can read it. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {token: abc, tokenFile: tok}\n",
     CS_EINVAL,
     "users[name=u].user: both token and tokenFile given, expected one of "
     "them"},
    /* One credential, whichever way the token is given. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {token: abc, "
     "client-certificate-data: " CERT_B64 ", client-key-data: " CERT_B64 "}\n",
     CS_EINVAL,
     "users[name=u].user: both token and client certificate given, expected "
     "one of them"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {tokenFile: tok, "
     "client-certificate-data: " CERT_B64 ", client-key-data: " CERT_B64 "}\n",
     CS_EINVAL,
     "users[name=u].user: both tokenFile and client certificate given, "
     "expected one of them"},
    {"a: &x {b: 1}\nc: *x\n", CS_EPARSE, "aliases are not supported"},
    /* Credentials the client cannot use are refused, not dropped (which
     * would connect anonymously); the password is never repeated. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {username: admin, password: hunter2}\n",
     CS_EUNSUPPORTED,
     "users[name=u].user.username: basic authentication (username and "
     "password) is not supported"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {password: hunter2}\n",
     CS_EUNSUPPORTED, "users[name=u].user.password: basic authentication"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {token: abc, as: admin}\n",
     CS_EUNSUPPORTED, "users[name=u].user.as: impersonation is not supported"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {tokenfile: tok}\n",
     CS_EINVAL,
     "users[name=u].user.tokenfile: unknown field, expected token, tokenFile"},
    /* A line break in a token would end the Authorization header and
     * start one of the token's choosing; the token is never repeated. */
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user: {token: \"hunter2\\r\\nX-Injected: 1\"}\n",
     CS_EINVAL,
     "users[name=u].user.token: byte 7 is the control character 0x0d, "
     "expected a bearer token on one line"},
    {"current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, "
     "user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
     "users:\n- name: u\n  user:\n    token: |\n      hunter2\n",
     CS_EINVAL,
     "users[name=u].user.token: byte 7 is the control character "
     "0x0a"},
};

START_TEST(test_kube_new_kubeconfig_bad)
{
  const bad_case *c = &bad_cases[_i];
  cs_kube *k = (cs_kube *)1;
  char err[512];
  cs_err rc = load_kc(c->yaml, NULL, &k, err, sizeof(err));
  ck_assert_msg(rc == c->rc, "case %d: rc %d (%s), want %d", _i, rc, err,
                c->rc);
  ck_assert_ptr_null(k);
  ck_assert_msg(strstr(err, c->msg) != NULL, "case %d: \"%s\" lacks \"%s\"", _i,
                err, c->msg);
  ck_assert_msg(strstr(err, "kubeconfig ") == err && strstr(err, "kc.yaml"),
                "case %d: the file is not named: %s", _i, err);
  ck_assert_msg(!strstr(err, "hunter2"), "case %d: a password in %s", _i, err);
}
END_TEST

/* A server URL as long as a URL may be (CS_HTTP_URL_MAX) is reported
 * whole: cs_kube_info cut it at 511 bytes, here at a '/', which left it
 * looking like a URL with a trailing slash (found by fuzz_kubeconfig). */
START_TEST(test_kube_info_long_server_whole)
{
  char url[CS_HTTP_URL_MAX + 1];
  int n = snprintf(url, sizeof(url), "https://api.example.com/");
  memset(url + n, 'p', sizeof(url) - 1 - (size_t)n);
  url[511] = '/';
  url[CS_HTTP_URL_MAX] = '\0';
  char *yaml = cs_asprintf("apiVersion: v1\n"
                           "kind: Config\n"
                           "current-context: c\n"
                           "clusters:\n"
                           "- {name: k, cluster: {server: \"%s\"}}\n"
                           "contexts:\n"
                           "- {name: c, context: {cluster: k, user: u}}\n"
                           "users:\n"
                           "- {name: u, user: {token: t}}\n",
                           url);
  cs_kube *k = NULL;
  char err[512];
  ck_assert_msg(load_kc(yaml, NULL, &k, err, sizeof(err)) == CS_OK, "%s", err);
  cs_kube_info info;
  cs_kube_get_info(k, &info);
  ck_assert_str_eq(info.server, url);
  cs_kube_free(k);
  free(yaml);
}
END_TEST

START_TEST(test_kube_new_kubeconfig_missing_file)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.mode = CS_KUBE_KUBECONFIG;
  cfg.kubeconfig = "/nonexistent/kubeconfig";
  cs_kube *k = NULL;
  char err[256];
  ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EIO);
  ck_assert_str_eq(err, "kubeconfig /nonexistent/kubeconfig: No such file or "
                        "directory");
}
END_TEST

/* A kubeconfig that never ends (a device) or would block the start (a
 * FIFO without a writer) is refused at once, not read forever. */
START_TEST(test_kube_new_kubeconfig_not_a_file)
{
  char fifo[512];
  snprintf(fifo, sizeof(fifo), "%s/kc.fifo", tmpdir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *paths[] = {"/dev/zero", fifo, tmpdir};
  const char *want[] = {"is a character device, not a regular file",
                        "is a FIFO, not a regular file",
                        "is a directory, not a regular file"};
  for (int i = 0; i < 3; i++) {
    cs_kube_config cfg;
    fast_config(&cfg);
    cfg.mode = CS_KUBE_KUBECONFIG;
    cfg.kubeconfig = paths[i];
    cs_kube *k = NULL;
    char err[512];
    ck_assert_int_eq(cs_kube_new(&cfg, &k, err, sizeof(err)), CS_EINVAL);
    ck_assert_ptr_null(k);
    ck_assert_msg(strstr(err, "kubeconfig ") == err && strstr(err, want[i]),
                  "%s", err);
  }
  unlink(fifo);
}
END_TEST

/* ------------------------------------------------ over HTTP/2 and TLS */

/* Makes certificates into t and serves HTTP/2 with them, answering with
 * h. */
static fh2_server *start_h2(tu_tls *t, fh2_handler h)
{
  ck_assert(tu_tls_make(t));
  fh2_server *s = fh2_start(t->server_cert, t->server_key, h, NULL);
  ck_assert_ptr_nonnull(s);
  return s;
}

/* A client of s, trusting ca_file, whose watch gives up on silence after
 * 1 s, watching into r. */
static cs_kube *start_h2_watch(fh2_server *s, const char *ca_file, rec *r)
{
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.watch_idle_s = 1;
  cs_kube *k = client_trusting(fh2_url(s), ca_file, &cfg);
  cs_kube_node_sink sink = {r, rec_begin, rec_upsert, rec_remove, rec_end};
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  return k;
}

/* Answers a list with an empty NodeList; false for a watch. */
static bool h2_empty_list(const char *path, fh2_reply *out)
{
  if (strstr(path, "watch=1"))
    return false;
  out->body = cs_strdup("{\"kind\":\"NodeList\",\"apiVersion\":\"v1\","
                        "\"metadata\":{\"resourceVersion\":\"5\"},"
                        "\"items\":[]}");
  return true;
}

/* Lists; every watch sends a bookmark, then its connection dies with the
 * stream open, as when the API server's host is lost. */
static void h2_watch_dies_handler(void *ud, const char *method,
                                  const char *path, size_t conn, size_t index,
                                  fh2_reply *out)
{
  if (h2_empty_list(path, out))
    return;
  out->body = cs_strdup("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Node\","
                        "\"apiVersion\":\"v1\",\"metadata\":"
                        "{\"resourceVersion\":\"7\"}}}\n");
  out->end = FH2_DEAD_AFTER;
}

/* A watch gone silent is cut after watch_idle_s; over HTTP/2 libcurl
 * would keep the dead connection and send the renewed watch down it, to
 * wait there until TCP gives up. The renewal comes on a new connection,
 * from the last resourceVersion. */
START_TEST(test_kube_h2_watch_renewed_on_new_connection)
{
  tu_tls t;
  fh2_server *s = start_h2(&t, h2_watch_dies_handler);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube *k = start_h2_watch(s, t.ca_cert, &r);
  /* The list, the watch, the renewed watch. */
  ck_assert_msg(fh2_wait_requests(s, 3, 8000),
                "the renewed watch never came (%zu requests on %zu "
                "connections)",
                fh2_request_count(s), fh2_connections(s));
  cs_kube_free(k);
  ck_assert_ptr_nonnull(strstr(fh2_request_path(s, 1), "watch=1"));
  ck_assert_ptr_nonnull(strstr(fh2_request_path(s, 2), "watch=1"));
  ck_assert_ptr_nonnull(strstr(fh2_request_path(s, 2), "resourceVersion=7"));
  ck_assert_uint_ne(fh2_request_conn(s, 2), fh2_request_conn(s, 1));
  fh2_stop(s);
  tu_tls_cleanup(&t);
}
END_TEST

/* The first request's connection dies unanswered; others get a 200 (201
 * for a POST). */
static void h2_first_dies_handler(void *ud, const char *method,
                                  const char *path, size_t conn, size_t index,
                                  fh2_reply *out)
{
  if (index == 0) {
    out->end = FH2_DEAD;
    return;
  }
  out->status = strcmp(method, "POST") == 0 ? 201 : 200;
  out->body = cs_strdup("{}");
}

/* A patch or Event that timed out on a connection gone dead is sent again
 * on a new one, and arrives; not three times down the dead one. */
START_TEST(test_kube_h2_send_retried_on_new_connection)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  for (int patch = 0; patch < 2; patch++) {
    fh2_server *s =
        fh2_start(t.server_cert, t.server_key, h2_first_dies_handler, NULL);
    ck_assert_ptr_nonnull(s);
    cs_kube_config cfg;
    fast_config(&cfg);
    cfg.request_timeout_s = 2; /* the retry's TLS handshake within it */
    cs_kube *k = client_trusting(fh2_url(s), t.ca_cert, &cfg);
    cs_kube_event ev = {.ns = "ml",
                        .pod = "train-1",
                        .reason = "CarbonDeferred",
                        .action = "Defer",
                        .note = "waiting"};
    if (patch)
      ck_assert_int_eq(cs_kube_patch_pod_annotations_async(k, "ml", "train-1",
                                                           "uid-1", plan_keys,
                                                           plan_vals, 1),
                       CS_OK);
    else
      ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
    cs_kube_stats st;
    ck_assert(wait_settled(k, (uint64_t)patch, (uint64_t)!patch, &st));
    uint64_t sent = patch ? st.patches_sent : st.events_sent;
    ck_assert_uint_eq(sent, 1);
    ck_assert_uint_eq(fh2_request_count(s), 2);
    ck_assert_uint_ne(fh2_request_conn(s, 1), fh2_request_conn(s, 0));
    ck_assert_str_eq(fh2_request_path(s, 1), fh2_request_path(s, 0));
    cs_kube_free(k);
    fh2_stop(s);
  }
  tu_tls_cleanup(&t);
  char *log = log_text();
  ck_assert_ptr_null(strstr(log, "Cannot send a pod event"));
  ck_assert_ptr_null(strstr(log, "Cannot annotate pod"));
  free(log);
}
END_TEST

/* Sent again, a request refused by certificate verification would fail
 * the same way: it is tried once, failed, and says why. */
START_TEST(test_kube_h2_untrusted_server_not_retried)
{
  tu_tls t;
  fh2_server *s = start_h2(&t, h2_first_dies_handler);
  cs_kube_config cfg;
  fast_config(&cfg);
  /* A certificate from an unrelated CA, which did not sign the server's. */
  cs_kube *k = client_trusting(fh2_url(s), t.rogue_cert, &cfg);
  cs_kube_event ev = {.ns = "ml",
                      .pod = "train-1",
                      .reason = "CarbonDeferred",
                      .action = "Defer",
                      .note = "waiting"};
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  cs_kube_stats st;
  ck_assert(wait_settled(k, 0, 1, &st)); /* after every try */
  ck_assert_uint_eq(st.events_failed, 1);
  ck_assert_uint_eq(st.requests_failed, 1);
  ck_assert_uint_eq(fh2_connections(s), 1);
  ck_assert_uint_eq(fh2_request_count(s), 0);
  cs_kube_free(k);
  fh2_stop(s);
  tu_tls_cleanup(&t);
  char *log = log_text();
  ck_assert_ptr_nonnull(strstr(log, "Cannot send a pod event"));
  ck_assert_ptr_nonnull(strstr(log, "certificate"));
  free(log);
}
END_TEST

/* Answers every request with a 201 and an empty object. */
static void h2_created_handler(void *ud, const char *method, const char *path,
                               size_t conn, size_t index, fh2_reply *out)
{
  out->status = 201;
  out->body = cs_strdup("{}");
}

/* Makes this test process see a directory holding ca_cert (under its
 * OpenSSL hash name, and as the default bundle when that lies in it) at
 * libcurl's built-in CA directory, in a mount namespace of its own (Check
 * runs each test in a child process). Call before any thread starts.
 * False when libcurl has no such directory or namespaces are not allowed:
 * *mounted then says nothing was changed. */
static bool system_trusts(const char *ca_cert, char *mounted, size_t cap)
{
  mounted[0] = '\0';
  if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    return false;
  /* The type is ignored for MS_PRIVATE and MS_BIND; a string rather than
   * NULL keeps valgrind from flagging the call. */
  if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
    return false;
  CURL *h = curl_easy_init();
  ck_assert_ptr_nonnull(h);
  char *capath = NULL, *cainfo = NULL;
  curl_easy_getinfo(h, CURLINFO_CAPATH, &capath);
  curl_easy_getinfo(h, CURLINFO_CAINFO, &cainfo);
  if (!capath) {
    curl_easy_cleanup(h);
    return false;
  }
  char *dir = cs_asprintf("%s/system-cas", tmpdir);
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  FILE *f = fopen(ca_cert, "r");
  ck_assert_ptr_nonnull(f);
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  ck_assert_ptr_nonnull(x);
  char *pem = slurp(ca_cert);
  char *hashed = cs_asprintf("%s/%08lx.0", dir, X509_subject_name_hash(x));
  free(write_tmp(hashed + strlen(tmpdir) + 1, pem));
  size_t plen = strlen(capath);
  if (cainfo && strncmp(cainfo, capath, plen) == 0 && cainfo[plen] == '/') {
    char *bundle = cs_asprintf("system-cas%s", cainfo + plen);
    free(write_tmp(bundle, pem));
    free(bundle);
  }
  bool ok = mount(dir, capath, "none", MS_BIND, NULL) == 0;
  if (ok)
    snprintf(mounted, cap, "%s", capath);
  X509_free(x);
  free(pem);
  free(hashed);
  free(dir);
  curl_easy_cleanup(h);
  return ok;
}

/* Queues one Event on k and waits until it was sent or failed: the
 * stats then. */
static cs_kube_stats event_outcome(cs_kube *k)
{
  cs_kube_event ev = {.ns = "ml",
                      .pod = "train-1",
                      .reason = "CarbonDeferred",
                      .action = "Schedule",
                      .note = "waiting"};
  cs_kube_stats st;
  ck_assert_int_eq(cs_kube_emit_event(k, &ev), CS_OK);
  ck_assert(wait_settled(k, 0, 1, &st));
  return st;
}

/* A CA given in the kubeconfig (or the service account's ca.crt) is the
 * only one trusted, as in client-go: libcurl also loads its built-in CA
 * directory (/etc/ssl/certs on Debian) unless told not to, so any CA of
 * the system could vouch for a server pretending to be the API server. */
START_TEST(test_kube_h2_given_ca_only_trusted)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char mounted[256];
  if (!system_trusts(t.ca_cert, mounted, sizeof(mounted))) {
    fprintf(stderr, "test_kube_h2_given_ca_only_trusted: skipped, no mount "
                    "namespace or no libcurl CA directory\n");
    tu_tls_cleanup(&t);
    return;
  }
  fh2_server *s =
      fh2_start(t.server_cert, t.server_key, h2_created_handler, NULL);
  ck_assert_ptr_nonnull(s);
  cs_kube_stats st;
  /* Without a CA of its own the client trusts the system's, which now
   * include the server's CA: the set-up works. */
  cs_kube_config cfg;
  fast_config(&cfg);
  cs_kube *k = client_trusting(fh2_url(s), NULL, &cfg);
  st = event_outcome(k);
  ck_assert_uint_eq(st.events_sent, 1);
  cs_kube_free(k);
  /* With a CA of its own, an unrelated one, the server is not trusted. */
  fast_config(&cfg);
  k = client_trusting(fh2_url(s), t.rogue_cert, &cfg);
  st = event_outcome(k);
  ck_assert_uint_eq(st.events_sent, 0);
  ck_assert_uint_eq(st.events_failed, 1);
  cs_kube_free(k);
  ck_assert_uint_eq(fh2_request_count(s), 1);
  fh2_stop(s);
  ck_assert_int_eq(umount2(mounted, MNT_DETACH), 0);
  tu_tls_cleanup(&t);
}
END_TEST

/* A client of s (over 127.0.0.1, under a path prefix as a proxy such as
 * Rancher's serves clusters) trusting ca_file, with tls_name as the
 * kubeconfig's tls-server-name (NULL: none), its events on. */
static cs_kube *client_named(fh2_server *s, const char *ca_file,
                             const char *tls_name)
{
  char *name = tls_name ? cs_asprintf("    tls-server-name: %s\n", tls_name)
                        : cs_strdup("");
  char *text = cs_asprintf("current-context: t\n"
                           "clusters:\n"
                           "- name: c\n"
                           "  cluster:\n"
                           "    server: %s/k8s/clusters/c-1/\n"
                           "    certificate-authority: %s\n"
                           "%s"
                           "contexts:\n"
                           "- {name: t, context: {cluster: c, user: u}}\n"
                           "users:\n"
                           "- {name: u, user: {token: s3cret}}\n",
                           fh2_url(s), ca_file, name);
  char *path = write_tmp("kc-named.yaml", text);
  cs_kube_config cfg;
  fast_config(&cfg);
  cfg.mode = CS_KUBE_KUBECONFIG;
  cfg.kubeconfig = path;
  cs_kube *k = NULL;
  char err[512];
  ck_assert_msg(cs_kube_new(&cfg, &k, err, sizeof(err)) == CS_OK, "%s", err);
  free(path);
  free(text);
  free(name);
  return k;
}

/* tls-server-name is the name the server's certificate is checked
 * against, the connection still going to `server`, as in client-go: a
 * certificate for kube.internal alone is refused at 127.0.0.1, and
 * accepted with that name. */
START_TEST(test_kube_h2_tls_server_name)
{
  tu_tls t;
  ck_assert(tu_tls_make(&t));
  char *cert = cs_asprintf("%s/named.crt", t.dir);
  char *key = cs_asprintf("%s/named.key", t.dir);
  ck_assert(tu_tls_write_cert(cert, key, "kube.internal", "DNS:kube.internal",
                              "serverAuth", false, t.ca_cert, t.ca_key, -60,
                              3600));
  fh2_server *s = fh2_start(cert, key, h2_created_handler, NULL);
  ck_assert_ptr_nonnull(s);
  cs_kube_stats st;
  cs_kube *k = client_named(s, t.ca_cert, NULL);
  st = event_outcome(k);
  ck_assert_uint_eq(st.events_failed, 1);
  cs_kube_free(k);
  ck_assert_uint_eq(fh2_request_count(s), 0);

  k = client_named(s, t.ca_cert, "kube.internal");
  st = event_outcome(k);
  ck_assert_uint_eq(st.events_sent, 1);
  cs_kube_info info;
  cs_kube_get_info(k, &info);
  char server[128];
  snprintf(server, sizeof(server), "%s/k8s/clusters/c-1", fh2_url(s));
  ck_assert_str_eq(info.server, server); /* the server, as configured */
  cs_kube_free(k);
  ck_assert_uint_eq(fh2_request_count(s), 1);
  ck_assert_str_eq(fh2_request_path(s, 0),
                   "/k8s/clusters/c-1/apis/events.k8s.io/v1/namespaces/ml/"
                   "events");
  /* The name goes in the handshake; the Host is the server's, as with
   * client-go. */
  ck_assert_str_eq(fh2_request_sni(s, 0), "kube.internal");
  ck_assert_str_eq(fh2_request_authority(s, 0), fh2_url(s) + 8);

  /* Another name, which the certificate is not for: refused. */
  k = client_named(s, t.ca_cert, "kube.example");
  st = event_outcome(k);
  ck_assert_uint_eq(st.events_failed, 1);
  cs_kube_free(k);
  ck_assert_uint_eq(fh2_request_count(s), 1);
  fh2_stop(s);
  free(cert);
  free(key);
  tu_tls_cleanup(&t);
}
END_TEST

/* Lists; every watch is answered 500, then its body stalls. */
static void h2_watch_500_stalls_handler(void *ud, const char *method,
                                        const char *path, size_t conn,
                                        size_t index, fh2_reply *out)
{
  if (h2_empty_list(path, out))
    return;
  out->status = 500;
  out->body = cs_strdup("{\"kind\":\"Status\",");
  out->end = FH2_DEAD_AFTER;
}

/* A watch answered with an error whose body never ends is a failure that
 * says which status came, not "no answer" nor a quiet renewal. */
START_TEST(test_kube_h2_watch_error_stalled_is_failure)
{
  tu_tls t;
  fh2_server *s = start_h2(&t, h2_watch_500_stalls_handler);
  rec r = {.mu = PTHREAD_MUTEX_INITIALIZER};
  cs_kube *k = start_h2_watch(s, t.ca_cert, &r);
  ck_assert(fh2_wait_requests(s, 3, 8000));
  cs_kube_free(k);
  fh2_stop(s);
  tu_tls_cleanup(&t);
  char *log = log_text();
  ck_assert_ptr_nonnull(strstr(log, "\"msg\":\"Node watch failed\",\"err\":"
                                    "\"the watch was answered 500, then "
                                    "nothing more came within 1 s\""));
  free(log);
}
END_TEST

static Suite *kube_suite(void)
{
  Suite *s = suite_create("kube");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_kube_node_watch_list_watch_drop_gone);
  tcase_add_test(tc, test_kube_watch_feed_events_and_errors);
  tcase_add_test(tc, test_kube_list_feed_pages);
  tcase_add_test(tc, test_kube_node_watch_forbidden_backs_off_and_logs_once);
  tcase_add_test(tc, test_kube_error_text_token_redacted);
  tcase_add_test(tc, test_kube_node_watch_failing_logs_attempt_once);
  tcase_add_test(tc, test_kube_node_watch_ended_at_once_counted);
  tcase_add_test(tc, test_kube_node_watch_gone_again_backs_off);
  tcase_add_test(tc, test_kube_node_watch_silent_renewed);
  tcase_add_test(tc, test_kube_node_watch_unanswered_is_failure);
  tcase_add_test(tc, test_kube_list_waits_retry_after);
  tcase_add_test(tc, test_kube_request_expired_token_rereads_file);
  tcase_add_test(tc, test_kube_token_file_control_bytes_refused);
  tcase_add_test(tc, test_kube_resource_version_too_long_refused);
  tcase_add_test(tc, test_kube_watch_resource_version_escaped);
  tcase_add_test(tc, test_kube_new_in_cluster_missing_env_and_token);
  tcase_add_test(tc, test_kube_choose_mode_order);
  tcase_add_test(tc, test_kube_patch_pod_annotations_merge_patch);
  tcase_add_test(tc, test_kube_patch_pod_annotations_async_queued);
  tcase_add_test(tc, test_kube_free_drains_queued_patches);
  tcase_add_test(tc, test_kube_queued_patch_retried_after_passing_failure);
  tcase_add_test(tc, test_kube_2xx_with_cut_body_is_sent);
  tcase_add_test(tc, test_kube_queued_patch_attempts_bounded);
  tcase_add_test(tc, test_kube_queued_patch_outage_passes);
  tcase_add_test(tc, test_kube_free_counts_patch_cut_between_tries);
  tcase_add_test(tc, test_kube_event_retry_already_exists_is_sent);
  tcase_add_test(tc, test_kube_patch_pod_annotations_async_events_disabled);
  tcase_add_test(tc, test_kube_emit_event_body_and_dedup);
  tcase_add_test(tc, test_kube_emit_event_long_pod_name_valid);
  tcase_add_test(tc, test_kube_emit_event_note_cut_as_decoded);
  tcase_add_test(tc, test_kube_emit_event_min_interval_suppresses_new_note);
  tcase_add_test(tc, test_kube_emit_event_queue_full_drops);
  tcase_add_test(tc, test_kube_events_leave_room_for_patches);
  tcase_add_test(tc, test_kube_format_micro_time_layout);
  tcase_add_test(tc, test_kube_new_kubeconfig_users);
  tcase_add_loop_test(tc, test_kube_new_kubeconfig_bad, 0,
                      (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
  tcase_add_test(tc, test_kube_info_long_server_whole);
  tcase_add_test(tc, test_kube_new_kubeconfig_missing_file);
  tcase_add_test(tc, test_kube_new_kubeconfig_not_a_file);
  suite_add_tcase(s, tc);
  TCase *th = tcase_create("h2");
  tcase_add_checked_fixture(th, setup, teardown);
  tcase_set_timeout(th, 30);
  tcase_add_test(th, test_kube_h2_watch_renewed_on_new_connection);
  tcase_add_test(th, test_kube_h2_send_retried_on_new_connection);
  tcase_add_test(th, test_kube_h2_untrusted_server_not_retried);
  tcase_add_test(th, test_kube_h2_watch_error_stalled_is_failure);
  tcase_add_test(th, test_kube_h2_given_ca_only_trusted);
  tcase_add_test(th, test_kube_h2_tls_server_name);
  suite_add_tcase(s, th);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(kube_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
