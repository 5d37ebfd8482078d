/* Unit tests for carbon/gpu_catalog: label matching as GFD and the AMD
 * labeller write labels, overrides, and the built-in figures against
 * ../shared/data/gpus.csv (with the corrections documented in
 * docs/gpus.md). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/gpu_catalog.h"

static cs_gpu_catalog *cat;

static void setup(void)
{
  cat = cs_gpu_catalog_new();
}

static void teardown(void)
{
  cs_gpu_catalog_free(cat);
  cat = NULL;
}

static const char *model_of(const char *label)
{
  const cs_gpu_model *m = cs_gpu_catalog_find(cat, label);
  return m ? m->name : NULL;
}

START_TEST(test_gpu_catalog_find_gfd_labels)
{
  ck_assert_str_eq(model_of("NVIDIA-H100-80GB-HBM3"), "H100-SXM5-80GB");
  ck_assert_str_eq(model_of("Tesla-V100-SXM2-32GB"), "V100-SXM2-32GB");
  ck_assert_str_eq(model_of("Tesla-V100-PCIE-32GB"), "V100-PCIE-32GB");
  ck_assert_str_eq(model_of("Tesla-T4"), "T4");
  ck_assert_str_eq(model_of("NVIDIA-A100-SXM4-80GB"), "A100-SXM4-80GB");
  ck_assert_str_eq(model_of("NVIDIA-A100-SXM4-40GB"), "A100-SXM4-40GB");
  ck_assert_str_eq(model_of("NVIDIA-A100-PCIE-40GB"), "A100-PCIE-40GB");
  ck_assert_str_eq(model_of("NVIDIA-A100-80GB-PCIe"), "A100-PCIE-80GB");
  ck_assert_str_eq(model_of("NVIDIA-L4"), "L4");
  ck_assert_str_eq(model_of("NVIDIA-L40S"), "L40S");
  ck_assert_str_eq(model_of("NVIDIA-H100-PCIe"), "H100-PCIE-80GB");
  ck_assert_str_eq(model_of("NVIDIA-H100-NVL"), "H100-NVL-94GB");
  ck_assert_str_eq(model_of("NVIDIA-H200"), "H200-SXM-141GB");
  ck_assert_str_eq(model_of("NVIDIA-B200"), "B200");
}
END_TEST

START_TEST(test_gpu_catalog_find_canonical_and_case)
{
  ck_assert_str_eq(model_of("H100-SXM5-80GB"), "H100-SXM5-80GB");
  ck_assert_str_eq(model_of("h100-sxm5-80gb"), "H100-SXM5-80GB");
  ck_assert_str_eq(model_of("nvidia-h100-80gb-hbm3"), "H100-SXM5-80GB");
  /* NVML writes spaces where GFD writes '-'. */
  ck_assert_str_eq(model_of("NVIDIA H100 80GB HBM3"), "H100-SXM5-80GB");
}
END_TEST

/* The whole card of a partitioned GPU, for messages; never found as a
 * model itself. */
static const char *whole_of(const char *label, const char *kind)
{
  const char *k = NULL;
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, label));
  const cs_gpu_model *m = cs_gpu_catalog_partition_of(cat, label, &k);
  ck_assert_msg(m, "%s: no whole card", label);
  ck_assert_str_eq(k, kind);
  return m->name;
}

START_TEST(test_gpu_catalog_find_shared_suffix)
{
  ck_assert_str_eq(whole_of("NVIDIA-L4-SHARED", "shared GPU"), "L4");
  ck_assert_str_eq(whole_of("Tesla-T4-SHARED", "shared GPU"), "T4");
  ck_assert_str_eq(whole_of("nvidia-a100-sxm4-80gb-shared", "shared GPU"),
                   "A100-SXM4-80GB");
}
END_TEST

START_TEST(test_gpu_catalog_find_mig_suffix)
{
  ck_assert_str_eq(whole_of("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "MIG slice"),
                   "A100-SXM4-40GB");
  ck_assert_str_eq(whole_of("NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", "MIG slice"),
                   "A100-SXM4-80GB");
  ck_assert_str_eq(whole_of("NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "MIG slice"),
                   "H100-SXM5-80GB");
  ck_assert_str_eq(
      whole_of("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED", "MIG slice"),
      "A100-SXM4-40GB");
  /* Not a partition: nothing. */
  ck_assert_ptr_null(cs_gpu_catalog_partition_of(cat, "NVIDIA-L4", NULL));
  ck_assert_ptr_null(
      cs_gpu_catalog_partition_of(cat, "NVIDIA-GeForce-RTX-4090-SHARED", NULL));
  /* A slice configured as a model of its own is that model. */
  const char *labels[] = {"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"};
  cs_gpu_model slice = {.name = "H100-MIG-1g.10gb",
                        .vendor = "NVIDIA",
                        .power_w = 100,
                        .tensor_tflops = 989 / 7.0,
                        .embodied_kg = 150 / 7.0};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &slice, labels, 1), CS_OK);
  ck_assert_str_eq(model_of("NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"),
                   "H100-MIG-1g.10gb");
}
END_TEST

/* Runtimes scale by a ratio of like figures only. */
START_TEST(test_gpu_catalog_speed_vs_like_units)
{
  const cs_gpu_model *a100 = cs_gpu_catalog_find(cat, "A100-SXM4-80GB");
  const cs_gpu_model *h100 = cs_gpu_catalog_find(cat, "H100-SXM5-80GB");
  ck_assert_double_eq_tol(cs_gpu_speed_vs(h100, a100), 989 / 312.0, 1e-12);
  ck_assert_double_eq(cs_gpu_speed_vs(a100, a100), 1);
  cs_gpu_model m = {.name = "H100-SXM5-80GB", .relative_throughput = 2.5};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &m, NULL, 0), CS_OK);
  /* Samples/s against TFLOPS: unknown, not a 125-fold slowdown. */
  ck_assert_double_eq(cs_gpu_speed_vs(h100, a100), 0);
  ck_assert_double_eq(cs_gpu_speed_vs(a100, h100), 0);
  cs_gpu_model r = {.name = "A100-SXM4-80GB", .relative_throughput = 1.25};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &r, NULL, 0), CS_OK);
  ck_assert_double_eq_tol(cs_gpu_speed_vs(h100, a100), 2.0, 1e-12);
  ck_assert_double_eq(cs_gpu_speed_vs(NULL, a100), 0);
}
END_TEST

START_TEST(test_gpu_catalog_find_amd_labels)
{
  ck_assert_str_eq(model_of("AMD_Instinct_MI300X"), "MI300X");
  ck_assert_str_eq(model_of("AMD_Instinct_MI300X_OAM"), "MI300X");
  ck_assert_str_eq(model_of("AMD_Instinct_MI250X"), "MI250X");
  ck_assert_str_eq(model_of("AMD_Instinct_MI325X"), "MI325X");
  ck_assert_str_eq(model_of("MI325X"), "MI325X");
  const cs_gpu_model *m = cs_gpu_catalog_find(cat, "AMD_Instinct_MI300X");
  ck_assert_str_eq(m->vendor, "AMD");
}
END_TEST

START_TEST(test_gpu_catalog_find_unknown_is_null)
{
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, "NVIDIA-GeForce-RTX-4090"));
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, ""));
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, NULL));
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, "-SHARED"));
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, "-MIG-1g.5gb"));
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, "NVIDIA-H100"));
  /* A prefix of a known label is not that label. */
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, "NVIDIA-A100-SXM4"));
  char longlabel[300];
  memset(longlabel, 'A', sizeof(longlabel) - 1);
  longlabel[sizeof(longlabel) - 1] = '\0';
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, longlabel));
}
END_TEST

START_TEST(test_gpu_catalog_set_replaces_nonzero_fields)
{
  const cs_gpu_model *m = cs_gpu_catalog_find(cat, "NVIDIA-L4");
  double tflops = m->tensor_tflops;
  cs_gpu_model o = {.name = "l4", .power_w = 60, .embodied_kg = 25};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &o, NULL, 0), CS_OK);
  m = cs_gpu_catalog_find(cat, "NVIDIA-L4");
  ck_assert_double_eq(m->power_w, 60);
  ck_assert_double_eq(m->embodied_kg, 25);
  ck_assert_double_eq(m->tensor_tflops, tflops); /* zero: kept */
  ck_assert_str_eq(m->name, "L4");
  ck_assert_str_eq(m->vendor, "NVIDIA");
}
END_TEST

START_TEST(test_gpu_catalog_set_adds_model_with_labels)
{
  size_t before = cs_gpu_catalog_count(cat);
  const char *labels[] = {"NVIDIA-RTX-6000-Ada-Generation", "rtx6000ada"};
  cs_gpu_model m = {.name = "RTX6000-ADA",
                    .vendor = "NVIDIA",
                    .power_w = 300,
                    .tensor_tflops = 364.2,
                    .memory_gb = 48};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &m, labels, 2), CS_OK);
  ck_assert_uint_eq(cs_gpu_catalog_count(cat), before + 1);
  ck_assert_str_eq(
      whole_of("NVIDIA-RTX-6000-Ada-Generation-SHARED", "shared GPU"),
      "RTX6000-ADA");
  ck_assert_str_eq(model_of("RTX6000ADA"), "RTX6000-ADA");
  const cs_gpu_model *f = cs_gpu_catalog_find(cat, "rtx6000-ada");
  ck_assert_double_eq(cs_gpu_throughput(f), 364.2);
  const char *const *got;
  ck_assert_uint_eq(cs_gpu_catalog_labels(cat, before, &got), 2);
  ck_assert_str_eq(got[0], "NVIDIA-RTX-6000-Ada-Generation");
}
END_TEST

START_TEST(test_gpu_catalog_set_extra_label_for_builtin)
{
  const char *labels[] = {"Custom-H100-Label"};
  cs_gpu_model m = {.name = "H100-SXM5-80GB"};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &m, labels, 1), CS_OK);
  ck_assert_str_eq(model_of("custom-h100-label"), "H100-SXM5-80GB");
  ck_assert_double_eq(cs_gpu_catalog_find(cat, "Custom-H100-Label")->power_w,
                      700);
}
END_TEST

START_TEST(test_gpu_catalog_set_rejects_bad_input)
{
  cs_gpu_model noname = {.power_w = 100, .tensor_tflops = 10};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &noname, NULL, 0), CS_EINVAL);
  cs_gpu_model neg = {.name = "L4", .power_w = -1};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &neg, NULL, 0), CS_EINVAL);
  cs_gpu_model nan = {.name = "L4", .tensor_tflops = NAN};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &nan, NULL, 0), CS_EINVAL);
  /* A new model without power cannot be estimated. */
  cs_gpu_model nopower = {.name = "X1", .tensor_tflops = 100};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &nopower, NULL, 0), CS_EINVAL);
  cs_gpu_model nothroughput = {.name = "X1", .power_w = 100};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &nothroughput, NULL, 0), CS_EINVAL);
  /* A label that already names another model. */
  const char *taken[] = {"NVIDIA-L4"};
  cs_gpu_model x = {.name = "X1", .power_w = 100, .tensor_tflops = 10};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &x, taken, 1), CS_EINVAL);
  ck_assert_ptr_null(cs_gpu_catalog_find(cat, "X1")); /* unchanged */
  /* A name that is another model's label. */
  cs_gpu_model byl = {.name = "NVIDIA-L4", .power_w = 1};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &byl, NULL, 0), CS_EINVAL);
  ck_assert_double_eq(cs_gpu_catalog_find(cat, "L4")->power_w, 72);
  const char *empty[] = {""};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &x, empty, 1), CS_EINVAL);
}
END_TEST

START_TEST(test_gpu_catalog_throughput_prefers_measured)
{
  cs_gpu_model o = {.name = "A100-SXM4-80GB", .relative_throughput = 1.0};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &o, NULL, 0), CS_OK);
  ck_assert_double_eq(
      cs_gpu_throughput(cs_gpu_catalog_find(cat, "A100-SXM4-80GB")), 1.0);
  ck_assert_double_eq(cs_gpu_throughput(cs_gpu_catalog_find(cat, "L4")), 121);
}
END_TEST

/* Differences between ../shared/data/gpus.csv and the datasheets, each with
 * its reason; docs/gpus.md lists the same corrections. */
typedef struct correction {
  const char *model, *column;
  double csv, catalog;
  const char *reason;
} correction;

static const correction corrections[] = {
    {"MI300X", "tensor_fp16_bf16_dense_tflops", 1307, 1307.4,
     "AMD MI300X datasheet: 1307.4 TFLOPS dense FP16/BF16"},
    {"MI325X", "tensor_fp16_bf16_dense_tflops", 1307, 1307.4,
     "AMD MI325X datasheet: 1307.4 TFLOPS dense FP16/BF16"},
};

static const correction *find_correction(const char *model, const char *col)
{
  for (size_t i = 0; i < sizeof(corrections) / sizeof(corrections[0]); i++)
    if (strcmp(corrections[i].model, model) == 0 &&
        strcmp(corrections[i].column, col) == 0)
      return &corrections[i];
  return NULL;
}

static void check_figure(const char *model, const char *col, const char *csv,
                         double catalog)
{
  double v = strtod(csv, NULL);
  const correction *c = find_correction(model, col);
  if (c) {
    ck_assert_msg(fabs(v - c->csv) < 1e-9,
                  "%s %s: CSV now says %s, correction expects %g (%s)", model,
                  col, csv, c->csv, c->reason);
    ck_assert_msg(fabs(catalog - c->catalog) < 1e-9,
                  "%s %s: catalog %g, correction says %g", model, col, catalog,
                  c->catalog);
    return;
  }
  ck_assert_msg(fabs(v - catalog) < 1e-9, "%s %s: CSV %s, catalog %g", model,
                col, csv, catalog);
}

START_TEST(test_gpu_catalog_builtin_matches_shared_csv)
{
  const char *shared = getenv("CS_SHARED");
  ck_assert_msg(shared && *shared, "CS_SHARED is not set");
  char path[1024];
  snprintf(path, sizeof(path), "%s/data/gpus.csv", shared);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  char line[512];
  ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
  ck_assert_msg(
      strncmp(line,
              "model,vendor,architecture,year,form_factor,"
              "tdp_watts,tensor_fp16_bf16_dense_tflops,"
              "fp32_tflops,memory_gb,gfd_product_label_hint",
              strlen("model,vendor,architecture,year,form_factor,"
                     "tdp_watts,tensor_fp16_bf16_dense_tflops,"
                     "fp32_tflops,memory_gb,gfd_product_label_hint")) == 0,
      "unexpected header in %s: %s", path, line);
  int rows = 0;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!*line)
      continue;
    char *col[10] = {0};
    int n = 0;
    char *p = line;
    while (n < 10) {
      col[n++] = p;
      char *comma = strchr(p, ',');
      if (!comma)
        break;
      *comma = '\0';
      p = comma + 1;
    }
    ck_assert_msg(n == 10, "row %d has %d columns", rows + 1, n);
    const cs_gpu_model *m = cs_gpu_catalog_find(cat, col[0]);
    ck_assert_msg(m != NULL, "CSV model %s is not in the catalog", col[0]);
    ck_assert_str_eq(m->name, col[0]);
    ck_assert_str_eq(m->vendor, col[1]);
    check_figure(col[0], "tdp_watts", col[5], m->power_w);
    check_figure(col[0], "tensor_fp16_bf16_dense_tflops", col[6],
                 m->tensor_tflops);
    check_figure(col[0], "memory_gb", col[8], m->memory_gb);
    if (*col[9]) {
      const cs_gpu_model *byl = cs_gpu_catalog_find(cat, col[9]);
      ck_assert_msg(byl == m, "label %s does not map to %s", col[9], col[0]);
    }
    rows++;
  }
  fclose(f);
  ck_assert_int_ge(rows, 20);
}
END_TEST

/* The built-in MI250X shows two devices per card, as AMD's device plugin
 * does: each is half the card. */
START_TEST(test_gpu_catalog_mi250x_devices)
{
  const cs_gpu_model *m = cs_gpu_catalog_find(cat, "AMD_Instinct_MI250X");
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_eq(cs_gpu_devices_per_card(m), 2);
  ck_assert_double_eq(cs_gpu_device_power_w(m), 280);
  ck_assert_double_eq(cs_gpu_throughput(m), 191.5);
  const cs_gpu_model *a100 = cs_gpu_catalog_find(cat, "A100-SXM4-80GB");
  ck_assert_uint_eq(cs_gpu_devices_per_card(a100), 1);
  ck_assert_double_eq_tol(cs_gpu_speed_vs(m, a100), 191.5 / 312, 1e-12);
  /* A model added by configuration may say so too, within bounds. */
  cs_gpu_model mi250 = {.name = "MI250",
                        .power_w = 560,
                        .tensor_tflops = 362.1,
                        .devices_per_card = 2};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &mi250, NULL, 0), CS_OK);
  ck_assert_double_eq(cs_gpu_device_power_w(cs_gpu_catalog_find(cat, "MI250")),
                      280);
  cs_gpu_model many = {.name = "X9",
                       .power_w = 100,
                       .tensor_tflops = 10,
                       .devices_per_card = CS_GPU_MAX_DEVICES_PER_CARD + 1};
  ck_assert_int_eq(cs_gpu_catalog_set(cat, &many, NULL, 0), CS_EINVAL);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("gpu_catalog");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_gpu_catalog_find_gfd_labels);
  tcase_add_test(tc, test_gpu_catalog_find_canonical_and_case);
  tcase_add_test(tc, test_gpu_catalog_find_shared_suffix);
  tcase_add_test(tc, test_gpu_catalog_find_mig_suffix);
  tcase_add_test(tc, test_gpu_catalog_speed_vs_like_units);
  tcase_add_test(tc, test_gpu_catalog_find_amd_labels);
  tcase_add_test(tc, test_gpu_catalog_find_unknown_is_null);
  tcase_add_test(tc, test_gpu_catalog_set_replaces_nonzero_fields);
  tcase_add_test(tc, test_gpu_catalog_set_adds_model_with_labels);
  tcase_add_test(tc, test_gpu_catalog_set_extra_label_for_builtin);
  tcase_add_test(tc, test_gpu_catalog_set_rejects_bad_input);
  tcase_add_test(tc, test_gpu_catalog_throughput_prefers_measured);
  tcase_add_test(tc, test_gpu_catalog_builtin_matches_shared_csv);
  tcase_add_test(tc, test_gpu_catalog_mi250x_devices);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
