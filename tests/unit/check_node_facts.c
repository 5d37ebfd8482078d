/* Tests of node facts read from malformed Node objects (the cases the fuzz
 * target tests/fuzz/fuzz_node_facts.c found), of the two ways of collecting
 * the fields they come from (cJSON trees, scanned bytes), which must agree
 * on every input, and of that agreement on the fixture and benchmark nodes;
 * the fixture nodes' facts are covered through check_node_cache.c and
 * check_decision.c. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/gpu_catalog.h"
#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/jtree.h"
#include "carbon/zones.h"
#include "scheduler/codec.h"
#include "scheduler/node_facts.h"
#include "tests/bench/payload.h"
#include "tests/unit/testutil.h"

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

static void assert_same(const cs_node_facts *got, const cs_node_facts *want,
                        const char *what)
{
  ck_assert_msg(strcmp(got->name, want->name) == 0, "%s: name %s, want %s",
                what, got->name, want->name);
  ck_assert_msg(strcmp(got->problems, want->problems) == 0,
                "%s: problems \"%s\", want \"%s\"", what, got->problems,
                want->problems);
  ck_assert_msg(strcmp(got->zone, want->zone) == 0 &&
                    got->zone_source == want->zone_source,
                "%s: zone %s (%d), want %s (%d)", what, got->zone,
                got->zone_source, want->zone, want->zone_source);
  ck_assert_msg(got->gpu == want->gpu &&
                    strcmp(got->gpu_label, want->gpu_label) == 0 &&
                    strcmp(got->gpu_resource, want->gpu_resource) == 0 &&
                    got->gpus == want->gpus,
                "%s: GPU %s %s %g, want %s %s %g", what, got->gpu_label,
                got->gpu_resource, got->gpus, want->gpu_label,
                want->gpu_resource, want->gpus);
  ck_assert_msg(got->installed_at == want->installed_at &&
                    got->lifetime_s == want->lifetime_s &&
                    got->embodied_kg == want->embodied_kg,
                "%s: hardware differs", what);
  ck_assert_msg(got->pue == want->pue && got->pue_source == want->pue_source,
                "%s: PUE %g (%d), want %g (%d)", what, got->pue,
                got->pue_source, want->pue, want->pue_source);
}

/* Collects fields from the bytes of a metadata object and of an
 * allocatable object (either may be NULL), as the codec does. */
static void scan_fields(const char *meta, const char *alloc, cs_node_fields *f)
{
  cs_jscan s;
  memset(f, 0, sizeof(*f));
  if (meta) {
    cs_jscan_init(&s, meta, strlen(meta), 0);
    ck_assert_msg(cs_node_fields_scan_metadata(&s, f) == CS_OK, "%s", s.err);
    ck_assert_int_eq(cs_jscan_finish(&s), CS_OK);
  }
  if (alloc) {
    cs_jscan_init(&s, alloc, strlen(alloc), 0);
    ck_assert_msg(cs_node_fields_scan_allocatable(&s, f) == CS_OK, "%s", s.err);
    ck_assert_int_eq(cs_jscan_finish(&s), CS_OK);
  }
}

/* Reads facts from the bytes and from cJSON trees of the same text, checks
 * that both agree, and returns them. */
static cs_err read_both(const char *meta, const char *alloc, cs_node_facts *f)
{
  cJSON *m = meta ? cs_jtree_parse(meta, strlen(meta), NULL) : NULL;
  cJSON *a = alloc ? cs_jtree_parse(alloc, strlen(alloc), NULL) : NULL;
  ck_assert(!meta || m);
  ck_assert(!alloc || a);
  cs_node_facts tree;
  cs_err rc = cs_node_facts_read(&params, m, a, &tree);
  cs_node_fields fields;
  scan_fields(meta, alloc, &fields);
  ck_assert_int_eq(cs_node_facts_from_fields(&params, &fields, f), rc);
  assert_same(f, &tree, meta ? meta : "(no metadata)");
  cJSON_Delete(m);
  cJSON_Delete(a);
  return rc;
}

START_TEST(test_node_facts_fields_escapes_decoded)
{
  cs_node_facts f;
  ck_assert_int_eq(
      read_both("{\"n\\u0061me\":\"n\\u0031\",\"labels\":{"
                "\"carbonshift.io\\/grid-zone\":\"\\u0044E\","
                "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"},"
                "\"annotations\":{\"carbonshift.io/pue\":\"1.\\u0032\"}}",
                "{\"nvidia.com\\/gpu\":\"\\u0038\"}", &f),
      CS_OK);
  ck_assert_str_eq(f.name, "n1");
  ck_assert_str_eq(f.zone, "DE");
  ck_assert_int_eq(f.zone_source, CS_ZONE_FROM_LABEL);
  ck_assert_ptr_nonnull(f.gpu);
  ck_assert_double_eq(f.gpus, 8);
  ck_assert_str_eq(f.gpu_resource, "nvidia.com/gpu");
  ck_assert_double_eq(f.pue, 1.2);
  ck_assert_str_eq(f.problems, "");
  /* A surrogate pair decodes to one four-byte character. */
  ck_assert_int_eq(read_both("{\"name\":\"n\",\"labels\":{"
                             "\"carbonshift.io/grid-zone\":\"D\\ud83d\\ude00\","
                             "\"carbonshift.io/gpu-model\":\"\\\"q\\\"\"}}",
                             NULL, &f),
                   CS_OK);
  ck_assert_ptr_nonnull(strstr(f.problems, "grid-zone=\"D\xf0\x9f\x98\x80\""));
  ck_assert_str_eq(f.gpu_label, "\"q\"");
}
END_TEST

/* cJSON_GetObjectItemCaseSensitive finds the first member of a name, so
 * the first one wins, whatever its type, and a second labels object adds
 * nothing. */
START_TEST(test_node_facts_fields_duplicates_first_wins)
{
  cs_node_facts f;
  ck_assert_int_eq(read_both("{\"name\":\"a\",\"name\":\"b\",\"labels\":{"
                             "\"carbonshift.io/grid-zone\":\"DE\","
                             "\"carbonshift.io/grid-zone\":\"FR\"},"
                             "\"labels\":{\"carbonshift.io/gpu-model\":\"x\"},"
                             "\"annotations\":{\"carbonshift.io/pue\":\"1.1\","
                             "\"carbonshift.io\\/pue\":\"1.3\"}}",
                             "{\"nvidia.com/gpu\":\"4\",\"nvidia.com/gpu\":"
                             "\"8\"}",
                             &f),
                   CS_OK);
  ck_assert_str_eq(f.name, "a");
  ck_assert_str_eq(f.zone, "DE");
  ck_assert_str_eq(f.gpu_label, "");
  ck_assert_double_eq(f.pue, 1.1);
  ck_assert_double_eq(f.gpus, 4);
  ck_assert_str_eq(f.problems, "");
  ck_assert_int_eq(
      read_both("{\"name\":\"a\",\"labels\":null,\"labels\":{"
                "\"carbonshift.io/grid-zone\":\"DE\"},\"annotations\":{"
                "\"carbonshift.io/pue\":1,\"carbonshift.io/pue\":\"1.3\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_int_eq(f.zone_source, CS_ZONE_NONE);
  ck_assert_double_eq(f.pue, 1.2);
  ck_assert_str_eq(f.problems,
                   "annotation carbonshift.io/pue: expected a string value");
}
END_TEST

START_TEST(test_node_facts_fields_nulls_legal)
{
  cs_node_facts f;
  ck_assert_int_eq(read_both("{\"name\":\"n\",\"labels\":null,"
                             "\"annotations\":null}",
                             "{}", &f),
                   CS_OK);
  ck_assert_str_eq(f.problems, "");
  ck_assert_double_eq(f.pue, 1.2);
  ck_assert_double_eq(f.lifetime_s, 6 * 365 * 86400.0);
  ck_assert_int_eq(read_both("{\"name\":\"n\"}", NULL, &f), CS_OK);
  ck_assert_str_eq(f.problems, "");
}
END_TEST

START_TEST(test_node_facts_fields_wrong_types_named)
{
  cs_node_facts f;
  ck_assert_int_eq(
      read_both("{\"name\":\"n\",\"labels\":[],\"annotations\":\"x\"}",
                "{\"nvidia.com/gpu\":8,\"amd.com/gpu\":{}}", &f),
      CS_OK);
  ck_assert_str_eq(f.problems,
                   "metadata.labels: expected an object; "
                   "metadata.annotations: expected an object; "
                   "allocatable nvidia.com/gpu=\"(not a string)\": expected "
                   "a whole number of devices such as 8; "
                   "allocatable amd.com/gpu=\"(not a string)\": expected a "
                   "whole number of devices such as 8");
  /* A bad annotation hides the label of the same name, as it always did;
   * the region label is read only as a string, silently. */
  ck_assert_int_eq(
      read_both("{\"name\":\"n\",\"labels\":{\"carbonshift.io/grid-zone\":7,"
                "\"topology.kubernetes.io/region\":true,"
                "\"carbonshift.io/pue\":\"1.5\"},"
                "\"annotations\":{\"carbonshift.io/pue\":[\"1.5\"]}}",
                NULL, &f),
      CS_OK);
  ck_assert_str_eq(f.problems, "label carbonshift.io/grid-zone: expected a "
                               "string value; annotation carbonshift.io/pue: "
                               "expected a string value");
  ck_assert_double_eq(f.pue, 1.2);
  /* Each message names where its value was read: an annotation wins over
   * a label of the same name. */
  ck_assert_int_eq(
      read_both("{\"name\":\"n\",\"labels\":{\"carbonshift.io/pue\":\"9\","
                "\"carbonshift.io/grid-zone\":\"DE\"},"
                "\"annotations\":{\"carbonshift.io/grid-zone\":\"D E\","
                "\"carbonshift.io/expected-lifetime\":\"1d\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_str_eq(f.problems,
                   "annotation carbonshift.io/grid-zone=\"D E\": expected a "
                   "grid zone id such as DE, US-CAL-CISO or CAISO_NORTH "
                   "(letters, digits, '-', '_'), or lat,lon (an annotation: "
                   "labels cannot hold a comma); annotation "
                   "carbonshift.io/expected-lifetime="
                   "\"1d\": expected a lifetime of at least 30d, such as 6y; "
                   "label carbonshift.io/pue=\"9\": expected a power usage "
                   "effectiveness between 1.0 and 3.0, such as 1.2");
  static const char *const no_name[] = {"{}", "{\"name\":7}", "{\"name\":\"\"}",
                                        "{\"name\":null}",
                                        "{\"labels\":{\"name\":\"n\"}}"};
  for (size_t i = 0; i < sizeof(no_name) / sizeof(*no_name); i++)
    ck_assert_int_eq(read_both(no_name[i], NULL, &f), CS_EINVAL);
  ck_assert_int_eq(read_both(NULL, NULL, &f), CS_EINVAL);
  /* Only a tree can hold an allocatable that is not an object: the codec
   * skips those. */
  cJSON *m = cJSON_Parse("{\"name\":\"n\"}"), *a = cJSON_CreateNull();
  ck_assert_int_eq(cs_node_facts_read(&params, m, a, &f), CS_OK);
  ck_assert_str_eq(f.problems, "status.allocatable: expected an object");
  cJSON_Delete(m);
  cJSON_Delete(a);
}
END_TEST

static void repeat(cs_buf *b, const char *s, int n)
{
  for (int i = 0; i < n; i++)
    cs_buf_puts(b, s);
}

/* Values are read whole, however long, decoded or not: nothing is cut
 * short before the checks, which report them as before. */
START_TEST(test_node_facts_fields_long_values_whole)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_buf_puts(&b,
              "{\"name\":\"n\",\"labels\":{\"carbonshift.io/grid-zone\":\"");
  repeat(&b, "A\\u0041", 150);
  cs_buf_puts(&b, "\",\"nvidia.com/gpu.product\":\"");
  repeat(&b, "H", 400);
  cs_buf_puts(&b, "\"},\"annotations\":{\"carbonshift.io/pue\":\"1.");
  repeat(&b, "0", 5000);
  cs_buf_puts(&b, "\"}}");
  cs_node_facts f;
  ck_assert_int_eq(read_both(b.data, NULL, &f), CS_OK);
  char want[160];
  /* Shown cut to 61 bytes and "…" (cs_problem_value). */
  snprintf(want, sizeof(want),
           "label %s=\"%.61s\xe2\x80\xa6\": expected a grid zone id",
           CS_LABEL_GRID_ZONE,
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  ck_assert_msg(strstr(f.problems, want) == f.problems, "%s", f.problems);
  ck_assert_ptr_nonnull(strstr(f.problems, "GPU model not in the catalog"));
  ck_assert_uint_eq(strlen(f.gpu_label), sizeof(f.gpu_label) - 1);
  ck_assert_ptr_nonnull(strstr(f.problems, "annotation carbonshift.io/pue"));
  cs_buf_free(&b);

  /* The longest name fits; one more character does not. */
  char name[CS_NODE_NAME_MAX + 1], meta[CS_NODE_NAME_MAX + 32];
  memset(name, 'n', sizeof(name));
  name[CS_NODE_NAME_MAX - 1] = '\0';
  snprintf(meta, sizeof(meta), "{\"name\":\"%s\"}", name);
  ck_assert_int_eq(read_both(meta, NULL, &f), CS_OK);
  ck_assert_str_eq(f.name, name);
  name[CS_NODE_NAME_MAX - 1] = 'n';
  name[CS_NODE_NAME_MAX] = '\0';
  snprintf(meta, sizeof(meta), "{\"name\":\"%s\"}", name);
  ck_assert_int_eq(read_both(meta, NULL, &f), CS_EINVAL);
}
END_TEST

/* PUE: the default, overridden by the zone's, overridden by the node's
 * own; hardware dates in the future and lifetimes under 30 days refused. */
START_TEST(test_node_facts_pue_precedence_and_hardware_limits)
{
  static const cs_zone_pue zp[] = {{"DE", 1.4}, {"NO", 1.1}};
  params.zone_pue = zp;
  params.nzone_pue = 2;
  cs_node_facts f;
  ck_assert_int_eq(
      read_both("{\"name\":\"a\",\"labels\":{\"carbonshift.io/grid-zone\":"
                "\"DE\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_double_eq(f.pue, 1.4);
  ck_assert_int_eq(f.pue_source, CS_PUE_FROM_ZONE);
  ck_assert_int_eq(
      read_both("{\"name\":\"b\",\"labels\":{\"carbonshift.io/grid-zone\":"
                "\"DE\"},\"annotations\":{\"carbonshift.io/pue\":\"1.05\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_double_eq(f.pue, 1.05);
  ck_assert_int_eq(f.pue_source, CS_PUE_FROM_NODE);
  ck_assert_int_eq(
      read_both("{\"name\":\"c\",\"labels\":{\"carbonshift.io/grid-zone\":"
                "\"ES\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_double_eq(f.pue, 1.2);
  ck_assert_int_eq(f.pue_source, CS_PUE_DEFAULT);
  ck_assert_int_eq(
      read_both("{\"name\":\"d\",\"annotations\":{"
                "\"carbonshift.io/hardware-installed\":\"2999-01-01\","
                "\"carbonshift.io/expected-lifetime\":\"29d\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_int_eq(f.installed_at, 0);
  ck_assert_double_eq(f.lifetime_s, 6 * 365 * 86400.0);
  ck_assert_msg(strstr(f.problems, "carbonshift.io/hardware-installed=\"2999-"
                                   "01-01\": expected a date in the past") &&
                    strstr(f.problems, "expected a lifetime of at least 30d"),
                "%s", f.problems);
  /* 0 is "age unknown" to the estimate: the epoch (earlier dates are
   * refused by the parser) must not pass for that. */
  static const char *const early[] = {"1970-01", "1970-01-01"};
  for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
    char json[256], want[128];
    snprintf(json, sizeof(json),
             "{\"name\":\"e\",\"annotations\":{"
             "\"carbonshift.io/hardware-installed\":\"%s\"}}",
             early[i]);
    ck_assert_int_eq(read_both(json, NULL, &f), CS_OK);
    ck_assert_int_eq(f.installed_at, 0);
    snprintf(want, sizeof(want),
             "carbonshift.io/hardware-installed=\"%s\": expected a date "
             "after 1970-01-01",
             early[i]);
    ck_assert_msg(strstr(f.problems, want), "%s: %s", early[i], f.problems);
  }
}
END_TEST

/* One zone-id grammar for labels and settings: provider keys with '-' or
 * '_', or coordinates for WattTime (an annotation, as labels cannot hold a
 * comma). */
START_TEST(test_node_facts_zone_ids)
{
  static const char *const good[] = {
      "DE",           "US-CAL-CISO",   "CAISO_NORTH",
      "GB-REGION-13", "38.58,-121.49", "-33.9,151.2",
      "0,0"};
  static const char *const bad[] = {"",      "D E",     "DE/1", "91,0",
                                    "0,181", "1.2.3,4", ",5",   "5,",
                                    "a,b",   "1,2,3",   "--,1"};
  for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
    ck_assert_msg(cs_zone_id_valid(good[i]), "%s", good[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    ck_assert_msg(!cs_zone_id_valid(bad[i]), "%s", bad[i]);
  char longest[CS_ZONE_MAX + 1];
  memset(longest, 'Z', CS_ZONE_MAX);
  longest[CS_ZONE_MAX - 1] = '\0';
  ck_assert(cs_zone_id_valid(longest));
  longest[CS_ZONE_MAX - 1] = 'Z';
  longest[CS_ZONE_MAX] = '\0';
  ck_assert(!cs_zone_id_valid(longest));
  cs_node_facts f;
  ck_assert_int_eq(read_both("{\"name\":\"w\",\"annotations\":{"
                             "\"carbonshift.io/grid-zone\":\"38.58,-121.49\"}}",
                             NULL, &f),
                   CS_OK);
  ck_assert_str_eq(f.zone, "38.58,-121.49");
  ck_assert_str_eq(f.problems, "");
}
END_TEST

/* What a malformed value on a Node leaves, key by key, as
 * docs/annotations.md lists it: only the GPU model and count make a fact
 * unknown; every other key falls back to what the node would have without
 * it; each is named in problems. */
START_TEST(test_node_facts_read_malformed_falls_back_per_key)
{
  static const cs_zone_pue zp[] = {{"DE", 1.4}};
  params.zone_pue = zp;
  params.nzone_pue = 1;
  params.default_zone = "FR";
  cs_node_facts f;
  /* Zone, PUE, lifetime, embodied carbon, installation date. */
  ck_assert_int_eq(
      read_both("{\"name\":\"a\",\"labels\":{"
                "\"topology.kubernetes.io/region\":\"europe-west3\","
                "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"},"
                "\"annotations\":{\"carbonshift.io/grid-zone\":\"D E\","
                "\"carbonshift.io/pue\":\"0.5\","
                "\"carbonshift.io/expected-lifetime\":\"six years\","
                "\"carbonshift.io/embodied-kgco2e\":\"-1\","
                "\"carbonshift.io/hardware-installed\":\"June 2021\"}}",
                "{\"nvidia.com/gpu\":\"8\"}", &f),
      CS_OK);
  ck_assert_str_eq(f.zone, "DE");
  ck_assert_int_eq(f.zone_source, CS_ZONE_FROM_REGION);
  ck_assert_double_eq(f.pue, 1.4);
  ck_assert_int_eq(f.pue_source, CS_PUE_FROM_ZONE);
  ck_assert_double_eq(f.lifetime_s, params.default_lifetime_s);
  ck_assert(f.embodied_kg == 0); /* computed from the server and GPUs */
  ck_assert_int_eq(f.installed_at, 0);
  ck_assert_ptr_nonnull(f.gpu);
  ck_assert_double_eq(f.gpus, 8);
  static const char *const keys[] = {
      "carbonshift.io/grid-zone=", "carbonshift.io/pue=",
      "carbonshift.io/expected-lifetime=", "carbonshift.io/embodied-kgco2e=",
      "carbonshift.io/hardware-installed="};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    ck_assert_msg(strstr(f.problems, keys[i]), "%s: %s", keys[i], f.problems);
  /* No region either: the default zone; its PUE is the default. */
  ck_assert_int_eq(
      read_both("{\"name\":\"b\",\"labels\":{\"carbonshift.io/grid-zone\":"
                "\"D E\",\"carbonshift.io/pue\":\"x\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_str_eq(f.zone, "FR");
  ck_assert_int_eq(f.zone_source, CS_ZONE_FROM_DEFAULT);
  ck_assert_double_eq(f.pue, 1.2);
  ck_assert_int_eq(f.pue_source, CS_PUE_DEFAULT);
  /* A model not in the catalog is unknown: the GFD label after it is not
   * read. A bad count leaves the count unknown. */
  ck_assert_int_eq(
      read_both("{\"name\":\"c\",\"labels\":{"
                "\"carbonshift.io/gpu-model\":\"H9000\","
                "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}}",
                "{\"nvidia.com/gpu\":\"eight\"}", &f),
      CS_OK);
  ck_assert_ptr_null(f.gpu);
  ck_assert_double_eq(f.gpus, 0);
  ck_assert_msg(strstr(f.problems, "carbonshift.io/gpu-model=\"H9000\"") &&
                    strstr(f.problems, "allocatable nvidia.com/gpu=\"eight\""),
                "%s", f.problems);
  /* A value that is not a string is skipped for the next key. */
  ck_assert_int_eq(
      read_both("{\"name\":\"d\",\"labels\":{"
                "\"carbonshift.io/gpu-model\":7,"
                "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}}",
                NULL, &f),
      CS_OK);
  ck_assert_ptr_nonnull(f.gpu);
  ck_assert_str_eq(f.gpu_label, "NVIDIA-H100-80GB-HBM3");
}
END_TEST

/* A MIG slice or a shared GPU is not a whole card: no model, and a
 * message naming the card it is part of. */
START_TEST(test_node_facts_partitioned_gpu_unknown)
{
  cs_node_facts f;
  ck_assert_int_eq(
      read_both("{\"name\":\"m\",\"labels\":{\"nvidia.com/gpu.product\":"
                "\"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb\"}}",
                "{\"nvidia.com/gpu\":\"56\"}", &f),
      CS_OK);
  ck_assert_ptr_null(f.gpu);
  ck_assert_str_eq(f.gpu_label, "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb");
  ck_assert_str_eq(
      f.problems,
      "label nvidia.com/gpu.product=\"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb\": a "
      "MIG slice of H100-SXM5-80GB, whose share of the card's power and "
      "throughput is not known (add this label under gpus in the "
      "configuration with its own figures)");
  ck_assert_int_eq(
      read_both("{\"name\":\"s\",\"labels\":{\"nvidia.com/gpu.product\":"
                "\"NVIDIA-L4-SHARED\"}}",
                "{\"nvidia.com/gpu\":\"32\"}", &f),
      CS_OK);
  ck_assert_ptr_null(f.gpu);
  ck_assert_ptr_nonnull(strstr(f.problems, "a shared GPU of L4, "));
}
END_TEST

/* An escaped NUL ends neither a name nor a value, in the bytes as in the
 * tree: it shows as U+FFFD, so "1.5\u0000z" is a malformed PUE (not 1.5)
 * and a key ending in \u0000 is not carbonshift.io/pue. */
START_TEST(test_node_facts_fields_escaped_nul_shown)
{
  cs_node_facts f;
  ck_assert_int_eq(read_both("{\"name\":\"a\\u0000b\",\"annotations\":{"
                             "\"carbonshift.io/pue\":\"1.5\\u0000z\"}}",
                             NULL, &f),
                   CS_OK);
  ck_assert_str_eq(f.name, "a\xEF\xBF\xBD"
                           "b");
  ck_assert_int_ne(f.pue_source, CS_PUE_FROM_NODE);
  ck_assert_msg(strstr(f.problems, "carbonshift.io/pue=\"1.5\xEF\xBF\xBDz\": "
                                   "expected ") != NULL,
                "%s", f.problems);
  ck_assert_int_eq(read_both("{\"name\":\"n\",\"annotations\":{"
                             "\"carbonshift.io/pue\\u0000\":\"1.5\"}}",
                             NULL, &f),
                   CS_OK);
  ck_assert_int_ne(f.pue_source, CS_PUE_FROM_NODE);
}
END_TEST

/* Every node of an ExtenderArgs body: the facts from the fields the codec
 * scanned equal those read from the node's cJSON tree the way the node
 * cache reads it. Returns how many nodes had a zone and GPUs, to show the
 * comparison is not about empty facts. */
static size_t same_in_request(const char *body, size_t len, size_t nodes)
{
  cs_wire_request r;
  char err[256];
  ck_assert_msg(cs_codec_decode(body, len, 100000, &r, err, sizeof(err)) ==
                    CS_OK,
                "%s", err);
  ck_assert_uint_eq(r.nnodes, nodes);
  cJSON *doc = cJSON_ParseWithLength(body, len);
  const cJSON *node =
      cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Nodes"), "items")->child;
  size_t rich = 0;
  for (size_t i = 0; i < r.nnodes; i++, node = node->next) {
    ck_assert_ptr_nonnull(node);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
    const cJSON *alloc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(node, "status"), "allocatable");
    cs_node_facts tree, span;
    ck_assert_int_eq(
        cs_node_facts_read(&params, cJSON_IsObject(meta) ? meta : NULL,
                           cJSON_IsObject(alloc) ? alloc : NULL, &tree),
        CS_OK);
    ck_assert_int_eq(cs_node_facts_from_fields(&params, &r.fields[i], &span),
                     CS_OK);
    assert_same(&span, &tree, r.nodes[i].name);
    rich += span.zone[0] && span.gpus > 0;
  }
  cJSON_Delete(doc);
  cs_codec_request_free(&r);
  return rich;
}

START_TEST(test_node_facts_fields_same_for_fixture_nodes)
{
  static const char *const files[] = {
      "fixtures/extender/prioritize-nodes.request.json",
      "fixtures/extender/filter-nodes.request.json"};
  for (size_t i = 0; i < 2; i++) {
    size_t len;
    char *body = tu_read_shared(files[i], &len);
    ck_assert_uint_gt(same_in_request(body, len, 4), 0);
    free(body);
  }
  /* nodes.json is a NodeList: wrapped, it is a request. */
  size_t len;
  char *list = tu_read_shared("fixtures/extender/nodes.json", &len);
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_buf_puts(&b, "{\"Pod\":{},\"Nodes\":");
  cs_buf_append(&b, list, len);
  cs_buf_puts(&b, "}");
  ck_assert_uint_gt(same_in_request(b.data, b.len, 5), 0);
  cs_buf_free(&b);
  free(list);
}
END_TEST

START_TEST(test_node_facts_fields_same_for_bench_nodes)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  bp_args_nodes(&b, 500);
  ck_assert_uint_gt(same_in_request(b.data, b.len, 500), 0);
  cs_buf_free(&b);
}
END_TEST

/* On a node whose GPUs DRA serves, allocatable names none: GPU Feature
 * Discovery's nvidia.com/gpu.count gives the count. Allocatable wins where
 * it has one; a malformed label is a problem, and the count unknown. */
START_TEST(test_node_facts_gfd_count_without_allocatable)
{
  cs_node_facts f;
  const char *meta =
      "{\"name\":\"dra-1\",\"labels\":{\"nvidia.com/gpu.product\":"
      "\"NVIDIA-H100-80GB-HBM3\",\"nvidia.com/gpu.count\":\"8\"}}";
  ck_assert_int_eq(read_both(meta, NULL, &f), CS_OK);
  ck_assert_double_eq(f.gpus, 8);
  ck_assert_str_eq(f.gpu_resource, "nvidia.com/gpu");
  ck_assert_str_eq(f.problems, "");
  ck_assert_int_eq(read_both(meta, "{\"nvidia.com/gpu\":\"4\"}", &f), CS_OK);
  ck_assert_double_eq(f.gpus, 4);
  ck_assert_int_eq(read_both(meta, "{\"nvidia.com/gpu\":\"0\"}", &f), CS_OK);
  ck_assert_double_eq(f.gpus, 8);
  const char *bad = "{\"name\":\"dra-2\",\"labels\":{\"nvidia.com/gpu.count\":"
                    "\"eight\"}}";
  ck_assert_int_eq(read_both(bad, NULL, &f), CS_OK);
  ck_assert_double_eq(f.gpus, 0);
  ck_assert_msg(strstr(f.problems, "label nvidia.com/gpu.count=\"eight\": "
                                   "expected a whole number of GPUs such as 8"),
                "%s", f.problems);
  ck_assert_int_eq(read_both("{\"name\":\"dra-3\",\"labels\":{\"nvidia.com/"
                             "gpu.count\":\"1.5\"}}",
                             NULL, &f),
                   CS_OK);
  ck_assert_double_eq(f.gpus, 0);
  ck_assert_ptr_nonnull(strstr(f.problems, "gpu.count=\"1.5\""));
}
END_TEST

static Suite *node_facts_suite(void)
{
  Suite *s = suite_create("node_facts");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_node_facts_read_huge_gpu_count_refused);
  tcase_add_test(tc, test_node_facts_fields_escapes_decoded);
  tcase_add_test(tc, test_node_facts_fields_duplicates_first_wins);
  tcase_add_test(tc, test_node_facts_fields_nulls_legal);
  tcase_add_test(tc, test_node_facts_fields_wrong_types_named);
  tcase_add_test(tc, test_node_facts_fields_long_values_whole);
  tcase_add_test(tc, test_node_facts_fields_escaped_nul_shown);
  tcase_add_test(tc, test_node_facts_partitioned_gpu_unknown);
  tcase_add_test(tc, test_node_facts_zone_ids);
  tcase_add_test(tc, test_node_facts_pue_precedence_and_hardware_limits);
  tcase_add_test(tc, test_node_facts_read_malformed_falls_back_per_key);
  tcase_add_test(tc, test_node_facts_fields_same_for_fixture_nodes);
  tcase_add_test(tc, test_node_facts_fields_same_for_bench_nodes);
  tcase_add_test(tc, test_node_facts_gfd_count_without_allocatable);
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
