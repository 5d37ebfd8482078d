/* Tests of the node cache: facts computed on upsert, relists that drop
 * vanished nodes, growth to thousands of nodes, and the cache fed by the
 * real Node watch from a fake API server. */
#include <check.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carbon/gpu_catalog.h"
#include "carbon/util/alloc.h"
#include "carbon/util/log.h"
#include "carbon/zones.h"
#include "fake_kube.h"
#include "scheduler/kube.h"
#include "scheduler/node_cache.h"
#include "testutil.h"

static cs_gpu_catalog *catalog;
static cs_zone_map *zones;
static cs_facts_params params;
static cJSON *fixture;

static void setup(void)
{
  catalog = cs_gpu_catalog_new();
  zones = cs_zone_map_new();
  params = (cs_facts_params){.catalog = catalog,
                             .zones = zones,
                             .default_pue = 1.2,
                             .default_lifetime_s = 6 * 365 * 86400.0};
  size_t len;
  char *text = tu_read_shared("fixtures/extender/nodes.json", &len);
  fixture = cJSON_ParseWithLength(text, len);
  ck_assert_ptr_nonnull(fixture);
  free(text);
  cs_log_set_verbosity(-1); /* quiet: problems of fixture nodes are logged */
}

static void teardown(void)
{
  cJSON_Delete(fixture);
  cs_zone_map_free(zones);
  cs_gpu_catalog_free(catalog);
  cs_log_set_verbosity(0);
}

static cJSON *items(void)
{
  return cJSON_GetObjectItemCaseSensitive(fixture, "items");
}

/* Copies the facts of `name` out of the cache, as a decision reads them;
 * false when the node is not known. */
static bool get(cs_node_cache *c, const char *name, cs_node_facts *out)
{
  cs_node_cache_read_begin(c);
  const cs_node_facts *f = cs_node_cache_find(c, name);
  if (f)
    *out = *f;
  cs_node_cache_read_end(c);
  return f != NULL;
}

/* The facts the cache must hold: those cs_node_facts_read computes. */
static void expect_facts(cs_node_cache *c, const cJSON *node)
{
  cs_node_facts want, got;
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  const cJSON *alloc = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(node, "status"), "allocatable");
  memset(&want, 0, sizeof(want));
  ck_assert_int_eq(cs_node_facts_read(&params, meta, alloc, &want), CS_OK);
  ck_assert_msg(get(c, want.name, &got), "%s missing", want.name);
  ck_assert_str_eq(got.name, want.name);
  ck_assert_str_eq(got.zone, want.zone);
  ck_assert_ptr_eq(got.gpu, want.gpu);
  ck_assert_double_eq(got.gpus, want.gpus);
  ck_assert_double_eq(got.pue, want.pue);
  ck_assert_int_eq(got.installed_at, want.installed_at);
  ck_assert_str_eq(got.problems, want.problems);
}

START_TEST(test_node_cache_replace_fixture_nodes)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  ck_assert(!cs_node_cache_synced(c));
  ck_assert_int_eq(cs_node_cache_replace(c, items()), CS_OK);
  ck_assert(cs_node_cache_synced(c));
  ck_assert_uint_eq(cs_node_cache_size(c), 5);
  const cJSON *n;
  cJSON_ArrayForEach(n, items()) expect_facts(c, n);
  cs_node_facts f;
  ck_assert(get(c, "gpu-h100-fra-01", &f));
  ck_assert_double_eq(f.gpus, 8);
  ck_assert(!get(c, "no-such-node", &f));
  ck_assert_int_eq(cs_node_cache_replace(c, NULL), CS_EINVAL);
  cs_node_cache_free(c);
  cs_node_cache_free(NULL);
}
END_TEST

/* Unknown names (and none) find nothing. */
START_TEST(test_node_cache_find_unknown_is_null)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  ck_assert_int_eq(cs_node_cache_replace(c, items()), CS_OK);
  cs_node_cache_read_begin(c);
  ck_assert_ptr_nonnull(cs_node_cache_find(c, "gpu-h100-fra-01"));
  ck_assert_ptr_null(cs_node_cache_find(c, "no-such-node"));
  ck_assert_ptr_null(cs_node_cache_find(c, NULL));
  cs_node_cache_read_end(c);
  cs_node_cache_free(c);
}
END_TEST

typedef struct racer {
  cs_node_cache *c;
  const cJSON *node;
  atomic_bool done;
} racer;

static void *upsert_one(void *arg)
{
  racer *r = arg;
  ck_assert_int_eq(cs_node_cache_upsert(r->c, r->node), CS_OK);
  atomic_store(&r->done, true);
  return NULL;
}

static void *read_once(void *arg)
{
  racer *r = arg;
  cs_node_cache_read_begin(r->c);
  atomic_store(&r->done, true);
  cs_node_cache_read_end(r->c);
  return NULL;
}

/* While a reader holds the cache, a waiting update goes before readers
 * that come after it: back-to-back names-only calls cannot starve the
 * watch. */
START_TEST(test_node_cache_update_not_starved_by_readers)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  ck_assert_int_eq(cs_node_cache_replace(c, items()), CS_OK);
  racer w = {.c = c, .node = cJSON_GetArrayItem(items(), 0)};
  racer r = {.c = c};
  pthread_t tw, tr;
  cs_node_cache_read_begin(c);
  pthread_create(&tw, NULL, upsert_one, &w);
  usleep(100000); /* the update is now waiting for the lock */
  pthread_create(&tr, NULL, read_once, &r);
  usleep(100000);
  ck_assert(!atomic_load(&w.done));
  ck_assert_msg(!atomic_load(&r.done),
                "a new reader went ahead of the waiting update");
  cs_node_cache_read_end(c);
  pthread_join(tw, NULL);
  pthread_join(tr, NULL);
  ck_assert(atomic_load(&w.done) && atomic_load(&r.done));
  cs_node_cache_free(c);
}
END_TEST

/* A Node from the watch whose allocatable is not an object gets the same
 * problem the request path gives it; null is simply none. */
START_TEST(test_node_cache_allocatable_not_object_is_a_problem)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  cJSON *bad = cJSON_Parse("{\"metadata\":{\"name\":\"odd\"},\"status\":"
                           "{\"allocatable\":\"8\"}}");
  cJSON *none = cJSON_Parse("{\"metadata\":{\"name\":\"bare\"},\"status\":"
                            "{\"allocatable\":null}}");
  ck_assert_int_eq(cs_node_cache_upsert(c, bad), CS_OK);
  ck_assert_int_eq(cs_node_cache_upsert(c, none), CS_OK);
  cs_node_facts f;
  ck_assert(get(c, "odd", &f));
  ck_assert_ptr_nonnull(strstr(f.problems, "status.allocatable: expected an "
                                           "object"));
  ck_assert(get(c, "bare", &f));
  ck_assert_ptr_null(strstr(f.problems, "allocatable"));
  cJSON_Delete(bad);
  cJSON_Delete(none);
  cs_node_cache_free(c);
}
END_TEST

START_TEST(test_node_cache_upsert_modified_and_remove)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  ck_assert_int_eq(cs_node_cache_replace(c, items()), CS_OK);
  cJSON *node = cJSON_Duplicate(cJSON_GetArrayItem(items(), 0), true);
  cJSON *alloc = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(node, "status"), "allocatable");
  cJSON_ReplaceItemInObjectCaseSensitive(alloc, "nvidia.com/gpu",
                                         cJSON_CreateString("4"));
  ck_assert_int_eq(cs_node_cache_upsert(c, node), CS_OK);
  ck_assert_uint_eq(cs_node_cache_size(c), 5);
  cs_node_facts f;
  ck_assert(get(c, "gpu-h100-fra-01", &f));
  ck_assert_double_eq(f.gpus, 4);
  expect_facts(c, node);
  cJSON_Delete(node);

  cs_node_cache_remove(c, "gpu-h100-fra-01");
  cs_node_cache_remove(c, "gpu-h100-fra-01"); /* twice: no effect */
  ck_assert(!get(c, "gpu-h100-fra-01", &f));
  ck_assert_uint_eq(cs_node_cache_size(c), 4);

  /* A Node without a name is refused and changes nothing. */
  cJSON *bad = cJSON_Parse("{\"metadata\":{\"labels\":{}}}");
  ck_assert_int_ne(cs_node_cache_upsert(c, bad), CS_OK);
  ck_assert_uint_eq(cs_node_cache_size(c), 4);
  cJSON_Delete(bad);
  cs_node_cache_free(c);
}
END_TEST

START_TEST(test_node_cache_relist_drops_vanished_nodes)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  ck_assert_int_eq(cs_node_cache_replace(c, items()), CS_OK);
  cs_node_cache_relist_begin(c);
  ck_assert_int_eq(cs_node_cache_upsert(c, cJSON_GetArrayItem(items(), 1)),
                   CS_OK);
  ck_assert_int_eq(cs_node_cache_upsert(c, cJSON_GetArrayItem(items(), 3)),
                   CS_OK);
  /* Until the relist ends, readers still see every node. */
  ck_assert_uint_eq(cs_node_cache_size(c), 5);
  cs_node_cache_relist_end(c);
  ck_assert_uint_eq(cs_node_cache_size(c), 2);
  cs_node_facts f;
  ck_assert(get(c, "gpu-a100-fra-02", &f));
  ck_assert(get(c, "gpu-l4-mad-01", &f));
  ck_assert(!get(c, "gpu-h100-fra-01", &f));
  ck_assert(!get(c, "cpu-only-fra-03", &f));
  cs_node_cache_free(c);
}
END_TEST

START_TEST(test_node_cache_upsert_5000_nodes)
{
  cs_node_cache *c = cs_node_cache_new(&params);
  cJSON *node = cJSON_Duplicate(cJSON_GetArrayItem(items(), 0), true);
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  char name[64];
  for (int i = 0; i < 5000; i++) {
    snprintf(name, sizeof(name), "gpu-node-%05d", i);
    cJSON_ReplaceItemInObjectCaseSensitive(meta, "name",
                                           cJSON_CreateString(name));
    ck_assert_int_eq(cs_node_cache_upsert(c, node), CS_OK);
  }
  ck_assert_uint_eq(cs_node_cache_size(c), 5000);
  cs_node_facts f;
  for (int i = 0; i < 5000; i += 7) {
    snprintf(name, sizeof(name), "gpu-node-%05d", i);
    ck_assert(get(c, name, &f));
    ck_assert_str_eq(f.name, name);
  }
  /* find_all answers as find does, for every list length around its
   * pipeline depth: cached names, unknown ones, NULL, repeats. */
  enum { N = 40 };
  static char names[N][64];
  const char *list[N];
  const cs_node_facts *all[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]),
             i % 5 == 3 ? "unknown-%05d" : "gpu-node-%05d", (i * 131) % 5000);
    list[i] = i % 11 == 10 ? NULL : i % 13 == 12 ? list[0] : names[i];
  }
  cs_node_cache_read_begin(c);
  for (size_t n = 0; n <= N; n++) {
    for (size_t i = 0; i < N; i++)
      all[i] = (const cs_node_facts *)&all; /* not written: detectable */
    cs_node_cache_find_all(c, list, n, all);
    for (size_t i = 0; i < N; i++)
      if (i < n)
        ck_assert_msg(all[i] == cs_node_cache_find(c, list[i]), "n=%zu i=%zu",
                      n, i);
      else
        ck_assert_ptr_eq(all[i], (const cs_node_facts *)&all);
  }
  cs_node_cache_read_end(c);
  cJSON_Delete(node);
  cs_node_cache_free(c);
}
END_TEST

/* The whole path of names-only mode: NodeList from the fake API server,
 * through the watch, into the cache. */
static void list_handler(void *ud, const fk_request *rq, size_t index,
                         fk_reply *out)
{
  if (strstr(rq->query, "watch=1")) {
    out->end = FK_END_HOLD;
    return;
  }
  out->body = cJSON_PrintUnformatted(fixture);
}

START_TEST(test_node_cache_sink_fed_by_watch)
{
  fk_server *s = fk_start(list_handler, NULL);
  char dir[] = "/tmp/cs_nc_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *kc = cs_asprintf("%s/kubeconfig", dir);
  FILE *f = fopen(kc, "w");
  fprintf(f,
          "current-context: t\n"
          "clusters: [{name: c, cluster: {server: '%s'}}]\n"
          "contexts: [{name: t, context: {cluster: c}}]\n",
          fk_url(s));
  fclose(f);
  cs_kube_config cfg;
  cs_kube_config_defaults(&cfg);
  cfg.mode = CS_KUBE_KUBECONFIG;
  cfg.kubeconfig = kc;
  cfg.events_enabled = false;
  cs_kube *k = NULL;
  char err[256];
  ck_assert_msg(cs_kube_new(&cfg, &k, err, sizeof(err)) == CS_OK, "%s", err);
  cs_node_cache *c = cs_node_cache_new(&params);
  cs_kube_node_sink sink = cs_node_cache_sink(c);
  ck_assert_int_eq(cs_kube_start_node_watch(k, &sink), CS_OK);
  for (int i = 0; i < 500 && !cs_node_cache_synced(c); i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  ck_assert(cs_node_cache_synced(c));
  ck_assert_uint_eq(cs_node_cache_size(c), 5);
  const cJSON *n;
  cJSON_ArrayForEach(n, items()) expect_facts(c, n);
  cs_kube_free(k);
  cs_node_cache_free(c);
  fk_stop(s);
  unlink(kc);
  rmdir(dir);
  free(kc);
}
END_TEST

static Suite *node_cache_suite(void)
{
  Suite *s = suite_create("node_cache");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_node_cache_replace_fixture_nodes);
  tcase_add_test(tc, test_node_cache_find_unknown_is_null);
  tcase_add_test(tc, test_node_cache_allocatable_not_object_is_a_problem);
  tcase_add_test(tc, test_node_cache_update_not_starved_by_readers);
  tcase_add_test(tc, test_node_cache_upsert_modified_and_remove);
  tcase_add_test(tc, test_node_cache_relist_drops_vanished_nodes);
  tcase_add_test(tc, test_node_cache_upsert_5000_nodes);
  tcase_add_test(tc, test_node_cache_sink_fed_by_watch);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(node_cache_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
