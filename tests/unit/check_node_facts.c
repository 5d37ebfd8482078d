/* Tests of node facts read from malformed Node objects (the cases the fuzz
 * target tests/fuzz/fuzz_node_facts.c found); the fixture nodes are covered
 * through check_node_cache.c and check_decision.c. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/gpu_catalog.h"
#include "carbon/zones.h"
#include "scheduler/node_facts.h"

static cs_gpu_catalog *catalog;
static cs_zone_map *zones;
static cs_facts_params params;

static void setup(void)
{
  catalog = cs_gpu_catalog_new();
  zones = cs_zone_map_new();
  params = (cs_facts_params){.catalog = catalog,
                             .zones = zones,
                             .default_pue = 1.2,
                             .default_lifetime_s = 6 * 365 * 86400.0};
}

static void teardown(void)
{
  cs_zone_map_free(zones);
  cs_gpu_catalog_free(catalog);
}

/* Reads a node whose allocatable nvidia.com/gpu is `count`. */
static void read_gpus(const char *count, cs_node_facts *f)
{
  cJSON *meta = cJSON_Parse("{\"name\":\"n1\"}");
  cJSON *alloc = cJSON_CreateObject();
  cJSON_AddStringToObject(alloc, "nvidia.com/gpu", count);
  ck_assert_int_eq(cs_node_facts_read(&params, meta, alloc, f), CS_OK);
  cJSON_Delete(meta);
  cJSON_Delete(alloc);
}

/* Found by fuzz_node_facts: a count beyond the range of long long was cast
 * to it (undefined behaviour, caught by make SANITIZER=undefined); counts
 * are now bounded by CS_GPU_COUNT_MAX before any conversion. */
START_TEST(test_node_facts_read_huge_gpu_count_refused)
{
  static const char *const bad[] = {"777777777777777777777777777777777777",
                                    "1e19", "2000000", "1.5"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cs_node_facts f;
    read_gpus(bad[i], &f);
    ck_assert_msg(f.gpus == 0, "%s: gpus %g", bad[i], f.gpus);
    ck_assert_msg(strstr(f.problems, "allocatable nvidia.com/gpu") != NULL,
                  "%s: problems \"%s\"", bad[i], f.problems);
  }
  cs_node_facts f;
  read_gpus("8", &f);
  ck_assert_double_eq(f.gpus, 8);
  ck_assert_str_eq(f.problems, "");
}
END_TEST

static Suite *node_facts_suite(void)
{
  Suite *s = suite_create("node_facts");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_node_facts_read_huge_gpu_count_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(node_facts_suite());
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
