/* The benchmark's generated payloads (tests/bench/payload.c) must look like
 * the shared fixture's Nodes, be valid JSON, and be the same bytes on every
 * run; docs/performance.md relies on all three. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/buf.h"
#include "tests/bench/payload.h"

static cJSON *parse(const cs_buf *b)
{
  ck_assert(!cs_buf_error(b));
  cJSON *doc = cJSON_ParseWithLength(b->data, b->len);
  ck_assert_msg(doc != NULL, "generated JSON does not parse");
  return doc;
}

static const cJSON *path(const cJSON *o, const char *a, const char *b)
{
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
  return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

START_TEST(test_bench_payload_node_shaped_like_fixture)
{
  for (size_t i = 0; i < 10; i++) {
    cs_buf b;
    cs_buf_init(&b, 0);
    bp_node(&b, i);
    cJSON *n = parse(&b);
    char name[64];
    bp_node_name(i, name, sizeof(name));
    ck_assert_str_eq(path(n, "metadata", "name")->valuestring, name);
    const cJSON *labels = path(n, "metadata", "labels");
    ck_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
        labels, "topology.kubernetes.io/region")));
    const cJSON *status = path(n, "status", NULL);
    int images = cJSON_GetArraySize(path(status, "images", NULL));
    ck_assert_int_ge(images, 40);
    ck_assert_int_le(images, 47);
    ck_assert_int_eq(cJSON_GetArraySize(path(status, "conditions", NULL)), 4);
    ck_assert(cJSON_IsObject(path(status, "allocatable", NULL)));
    bool gpu = cJSON_GetObjectItemCaseSensitive(
                   labels, "nvidia.com/gpu.product") != NULL;
    /* GPU nodes carry the taint and the extended resource; CPU nodes not. */
    ck_assert_int_eq(cJSON_GetArraySize(path(n, "spec", "taints")),
                     gpu ? 1 : 0);
    ck_assert(
        (cJSON_GetObjectItemCaseSensitive(path(status, "allocatable", NULL),
                                          "nvidia.com/gpu") != NULL) == gpu);
    /* About 10 kB, like the fixture's Nodes. */
    ck_assert_uint_gt(b.len, 7000);
    ck_assert_uint_lt(b.len, 13000);
    cJSON_Delete(n);
    cs_buf_free(&b);
  }
}
END_TEST

START_TEST(test_bench_payload_args_deterministic_and_consistent)
{
  cs_buf a, b, names;
  cs_buf_init(&a, 0);
  cs_buf_init(&b, 0);
  cs_buf_init(&names, 0);
  bp_args_nodes(&a, 25);
  bp_args_nodes(&b, 25);
  bp_args_names(&names, 25);
  ck_assert_uint_eq(a.len, b.len);
  ck_assert(memcmp(a.data, b.data, a.len) == 0);
  cJSON *full = parse(&a), *nm = parse(&names);
  const cJSON *items = path(full, "Nodes", "items");
  const cJSON *list = path(nm, "NodeNames", NULL);
  ck_assert_int_eq(cJSON_GetArraySize(items), 25);
  ck_assert_int_eq(cJSON_GetArraySize(list), 25);
  ck_assert(cJSON_IsNull(path(full, "NodeNames", NULL)));
  ck_assert(cJSON_IsNull(path(nm, "Nodes", NULL)));
  for (int i = 0; i < 25; i++)
    ck_assert_str_eq(
        path(cJSON_GetArrayItem(items, i), "metadata", "name")->valuestring,
        cJSON_GetArrayItem(list, i)->valuestring);
  ck_assert_str_eq(
      path(path(full, "Pod", NULL), "metadata", "annotations")->child->string,
      "carbonshift.io/expected-duration");
  cJSON_Delete(full);
  cJSON_Delete(nm);
  cs_buf_free(&a);
  cs_buf_free(&b);
  cs_buf_free(&names);
}
END_TEST

START_TEST(test_bench_payload_node_list_pages)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  bp_node_list(&b, 3, 7, "42", "from-7");
  cJSON *page = parse(&b);
  ck_assert_str_eq(path(page, "metadata", "continue")->valuestring, "from-7");
  ck_assert_str_eq(path(page, "metadata", "resourceVersion")->valuestring,
                   "42");
  const cJSON *items = path(page, "items", NULL);
  ck_assert_int_eq(cJSON_GetArraySize(items), 4);
  char name[64];
  bp_node_name(3, name, sizeof(name));
  ck_assert_str_eq(
      path(cJSON_GetArrayItem(items, 0), "metadata", "name")->valuestring,
      name);
  cJSON_Delete(page);
  cs_buf_reset(&b);
  bp_node_list(&b, 7, 7, "42", NULL);
  page = parse(&b);
  ck_assert_ptr_null(path(page, "metadata", "continue"));
  ck_assert_int_eq(cJSON_GetArraySize(path(page, "items", NULL)), 0);
  cJSON_Delete(page);
  cs_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("bench_payload");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_bench_payload_node_shaped_like_fixture);
  tcase_add_test(tc, test_bench_payload_args_deterministic_and_consistent);
  tcase_add_test(tc, test_bench_payload_node_list_pages);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
