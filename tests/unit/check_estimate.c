/* The worked examples of docs/scoring.md, computed by hand there and
 * asserted here: if the model changes, the docs must change with it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/parse.h"
#include "scheduler/estimate.h"

/* Figures as in docs/scoring.md (datasheet values, see docs/gpus.md). */
static const cs_gpu_model a100 = {
    .name = "A100-SXM4-80GB", .power_w = 400, .tensor_tflops = 312};
static const cs_gpu_model h100 = {
    .name = "H100-SXM5-80GB", .power_w = 700, .tensor_tflops = 989};
static const cs_gpu_model v100 = {
    .name = "V100-SXM2-32GB", .power_w = 300, .tensor_tflops = 125};

static const cs_estimate_params params = {.reference_gpu = &a100,
                                          .default_duration_s = 3600,
                                          .server_embodied_kg = 1000,
                                          .gpu_embodied_kg = 150};

static int64_t at(const char *rfc3339)
{
  int64_t t;
  const char *e;
  ck_assert_int_eq(cs_parse_rfc3339(rfc3339, &t, &e), CS_OK);
  return t;
}

static cs_pod_facts job(double gpus, double hours)
{
  cs_pod_facts p;
  memset(&p, 0, sizeof(p));
  p.gpus = gpus;
  p.duration_s = hours * 3600;
  return p;
}

static cs_node_facts node(const cs_gpu_model *gpu, double gpus, double pue,
                          const char *installed)
{
  cs_node_facts n;
  memset(&n, 0, sizeof(n));
  n.gpu = gpu;
  n.gpus = gpus;
  n.pue = pue;
  n.lifetime_s = 6 * 365 * 86400.0;
  n.installed_at = installed ? at(installed) : 0;
  return n;
}

/* Example 1: 8 x H100 in Frankfurt (DE, 380 g/kWh), installed 2024-03. */
START_TEST(test_estimate_job_h100_de_worked_example)
{
  cs_pod_facts p = job(8, 36);
  cs_node_facts n = node(&h100, 8, 1.2, "2024-03-01T00:00:00Z");
  cs_estimate e;
  cs_estimate_job(&params, &p, &n, 380, at("2026-11-23T00:00:00Z"), &e);
  ck_assert(e.known);
  ck_assert_double_eq_tol(e.runtime_s / 3600, 11.357, 0.001);
  ck_assert_double_eq_tol(e.energy_kwh, 76.32, 0.01);
  ck_assert_double_eq_tol(e.operational_g / 1000, 29.00, 0.01);
  ck_assert_double_eq_tol(e.node_embodied_kg, 2200, 1e-9);
  ck_assert_double_eq_tol(e.embodied_g / 1000, 0.475, 0.001);
  ck_assert_double_eq_tol(e.total_g / 1000, 29.48, 0.01);
  /* Young hardware: the expected life itself is the divisor (not its age
   * plus the run, nor the life plus the run), to the gram. */
  ck_assert_double_eq(e.effective_lifetime_s, n.lifetime_s);
  ck_assert_double_eq_tol(e.embodied_g, 2200e3 * e.runtime_s / n.lifetime_s,
                          1e-9);
}
END_TEST

/* Example 2: 8 x V100 in Oslo (NO, 30 g/kWh), installed 2018-09, past its
 * 6-year life: the effective life is its age when the job ends. */
START_TEST(test_estimate_job_v100_no_worked_example)
{
  cs_pod_facts p = job(8, 36);
  cs_node_facts n = node(&v100, 8, 1.2, "2018-09-01T00:00:00Z");
  cs_estimate e;
  int64_t now = at("2026-11-23T00:00:00Z");
  cs_estimate_job(&params, &p, &n, 30, now, &e);
  ck_assert(e.known);
  ck_assert_double_eq_tol(e.runtime_s / 3600, 89.856, 0.001);
  ck_assert_double_eq_tol(e.energy_kwh, 258.79, 0.01);
  ck_assert_double_eq_tol(e.operational_g / 1000, 7.764, 0.001);
  ck_assert_double_eq_tol(
      e.effective_lifetime_s,
      (double)(now - at("2018-09-01T00:00:00Z")) + e.runtime_s, 1e-6);
  ck_assert_double_eq_tol(e.embodied_g / 1000, 2.738, 0.001);
  ck_assert_double_eq_tol(e.total_g / 1000, 10.50, 0.01);
  /* SCI's time-share over the expected life alone, which docs/scoring.md
   * quotes beside it: 2,200 kg x 89.856 h / 52,560 h. */
  ck_assert_double_eq_tol(e.node_embodied_kg * e.runtime_s / n.lifetime_s,
                          3.761, 0.001);
}
END_TEST

/* Example 3: the same old V100 on the same dirty grid as the H100 loses by
 * far: energy per unit of work dominates its paid-off embodied carbon. */
START_TEST(test_estimate_job_old_gpu_does_not_win_on_same_grid)
{
  cs_pod_facts p = job(8, 36);
  int64_t now = at("2026-11-23T00:00:00Z");
  cs_node_facts old = node(&v100, 8, 1.2, "2018-09-01T00:00:00Z");
  cs_node_facts fresh = node(&h100, 8, 1.2, "2024-03-01T00:00:00Z");
  cs_estimate eo, ef;
  cs_estimate_job(&params, &p, &old, 380, now, &eo);
  cs_estimate_job(&params, &p, &fresh, 380, now, &ef);
  ck_assert_double_eq_tol(eo.total_g / 1000, 101.08, 0.01);
  ck_assert(eo.embodied_g < ef.embodied_g * 6);
  ck_assert(eo.total_g > 3 * ef.total_g);
}
END_TEST

START_TEST(test_estimate_job_partial_node_share)
{
  /* 2 of 8 GPUs: a quarter of the node's embodied carbon per hour. */
  cs_pod_facts p = job(2, 10);
  cs_node_facts n = node(&a100, 8, 1.1, NULL);
  cs_estimate e;
  cs_estimate_job(&params, &p, &n, 100, at("2026-11-23T00:00:00Z"), &e);
  ck_assert_double_eq_tol(e.runtime_s, 36000, 1e-9);
  ck_assert_double_eq_tol(e.energy_kwh, 2 * 0.4 * 10 * 1.1, 1e-9);
  ck_assert_double_eq_tol(e.embodied_g, 2200e3 * 0.25 * 10 / (6 * 365 * 24.0),
                          1e-6);
}
END_TEST

/* A pod asking for more devices than the node has takes the whole node,
 * no more; a per-card figure from the catalog replaces the default. */
START_TEST(test_estimate_job_share_capped_and_card_figure)
{
  cs_pod_facts p = job(16, 10);
  cs_node_facts n = node(&a100, 8, 1.0, NULL);
  cs_estimate e;
  cs_estimate_job(&params, &p, &n, 100, 0, &e);
  ck_assert_double_eq_tol(e.embodied_g, 2200e3 * 10 / (6 * 365 * 24.0), 1e-6);
  cs_gpu_model card = a100;
  card.embodied_kg = 300;
  n = node(&card, 8, 1.0, NULL);
  cs_estimate_job(&params, &p, &n, 100, 0, &e);
  ck_assert_double_eq(e.node_embodied_kg, 1000 + 8 * 300);
}
END_TEST

/* An MI250X card shows two devices (GCDs): a pod's 8 amd.com/gpu are 4
 * cards, each device half a card's power and throughput, and the node's
 * 8 devices carry 4 cards' embodied carbon. 36 h on the A100 reference is
 * 36 x 312 / 191.5 = 58.65 h; energy 8 x 280 W x 58.65 h x 1.1; embodied
 * (1000 + 4 x 150) kg x 58.65 h / 6 y. */
START_TEST(test_estimate_job_device_is_part_of_a_card)
{
  static const cs_gpu_model mi250x = {.name = "MI250X",
                                      .power_w = 560,
                                      .tensor_tflops = 383,
                                      .devices_per_card = 2};
  cs_pod_facts p = job(8, 36);
  cs_node_facts n = node(&mi250x, 8, 1.1, "2025-01-01T00:00:00Z");
  cs_estimate e;
  cs_estimate_job(&params, &p, &n, 380, at("2026-11-23T00:00:00Z"), &e);
  ck_assert(e.known);
  double hours = 36 * 312 / 191.5;
  ck_assert_double_eq_tol(e.runtime_s / 3600, hours, 1e-9);
  ck_assert_double_eq_tol(e.energy_kwh, 8 * 0.280 * hours * 1.1, 1e-9);
  ck_assert_double_eq_tol(e.node_embodied_kg, 1600, 1e-9);
  ck_assert_double_eq_tol(e.embodied_g, 1600e3 * hours / (6 * 365 * 24.0),
                          1e-6);
}
END_TEST

START_TEST(test_estimate_job_unknowns_named)
{
  cs_pod_facts p = job(8, 36);
  cs_estimate e;
  cs_node_facts n = node(NULL, 8, 1.2, NULL);
  cs_estimate_job(&params, &p, &n, 300, 0, &e);
  ck_assert(!e.known);
  ck_assert_str_eq(e.unknown, "GPU model");
  n = node(&h100, 0, 1.2, NULL);
  cs_estimate_job(&params, &p, &n, 300, 0, &e);
  ck_assert_str_eq(e.unknown, "GPU count");
  n = node(&h100, 8, 1.2, NULL);
  cs_estimate_job(&params, &p, &n, -1, 0, &e);
  ck_assert_str_eq(e.unknown, "grid intensity");
  /* A measured throughput (samples/s, say) against the reference's TFLOPS
   * is no ratio: unknown, not a 125-fold runtime. */
  cs_gpu_model measured = h100;
  measured.relative_throughput = 2.5;
  n = node(&measured, 8, 1.2, NULL);
  cs_estimate_job(&params, &p, &n, 300, 0, &e);
  ck_assert(!e.known);
  ck_assert_ptr_nonnull(strstr(e.unknown, "relativeThroughput"));
  /* Both measured: their ratio. */
  cs_gpu_model ref = a100;
  ref.relative_throughput = 1.25;
  cs_estimate_params both = params;
  both.reference_gpu = &ref;
  cs_estimate_job(&both, &p, &n, 300, 0, &e);
  ck_assert(e.known);
  ck_assert_double_eq_tol(e.runtime_s, 18 * 3600.0, 1e-6);
}
END_TEST

/* The configured bounds allow a reference 10^9 times faster per device
 * than the node's GPU: 100 years there would run 2.5 x 10^19 s here, past
 * int64 seconds where the policy adds runtimes to times (undefined
 * behaviour). Such a runtime is out of range: unknown, not sized. */
START_TEST(test_estimate_job_runtime_out_of_range_unknown)
{
  cs_gpu_model ref = a100, slow = v100;
  ref.relative_throughput = 1e6;
  slow.relative_throughput = 0.001;
  slow.devices_per_card = 8;
  cs_estimate_params p = params;
  p.reference_gpu = &ref;
  cs_pod_facts pod = job(8, 100 * 365 * 24);
  cs_node_facts n = node(&slow, 8, 1.2, NULL);
  cs_estimate e;
  cs_estimate_job(&p, &pod, &n, 300, 0, &e);
  ck_assert(!e.known);
  ck_assert(!e.sized);
  ck_assert_str_eq(e.unknown, "GPU throughput (runtime out of range)");
  /* A slow GPU within range is still estimated. */
  slow.devices_per_card = 0;
  pod = job(8, 36);
  cs_estimate_job(&p, &pod, &n, 300, 0, &e);
  ck_assert(e.known);
  ck_assert_double_eq_tol(e.runtime_s, 36 * 3600 * 1e9, 1);
}
END_TEST

/* An estimate made without an intensity is sized: applying one later gives
 * exactly the estimate made with it (the policy applies the forecast mean
 * over the run this way). One that is not sized keeps its own reason. */
START_TEST(test_estimate_set_intensity_later)
{
  cs_pod_facts p = job(8, 36);
  cs_node_facts n = node(&h100, 8, 1.2, NULL);
  cs_estimate direct, later;
  cs_estimate_job(&params, &p, &n, 380, 0, &direct);
  cs_estimate_job(&params, &p, &n, -1, 0, &later);
  ck_assert(!later.known && later.sized);
  ck_assert_double_eq(later.runtime_s, direct.runtime_s);
  ck_assert_double_eq(later.embodied_g, direct.embodied_g);
  cs_estimate_set_intensity(&later, 380);
  ck_assert(later.known);
  ck_assert_ptr_null(later.unknown);
  ck_assert_double_eq(later.total_g, direct.total_g);
  ck_assert_double_eq(later.operational_g, direct.operational_g);
  cs_estimate_set_intensity(&later, -1);
  ck_assert(!later.known);
  ck_assert_str_eq(later.unknown, "grid intensity");

  n = node(NULL, 8, 1.2, NULL);
  cs_estimate_job(&params, &p, &n, -1, 0, &later);
  ck_assert(!later.sized);
  cs_estimate_set_intensity(&later, 380);
  ck_assert(!later.known);
  ck_assert_str_eq(later.unknown, "GPU model");
}
END_TEST

START_TEST(test_estimate_job_embodied_override)
{
  cs_pod_facts p = job(8, 36);
  cs_node_facts n = node(&a100, 8, 1.0, NULL);
  n.embodied_kg = 5256; /* 1 kg per hour of a 6-year life */
  cs_estimate e;
  cs_estimate_job(&params, &p, &n, 0, 0, &e);
  ck_assert_double_eq_tol(e.embodied_g, 36 * 1000.0 * 5256 / (6 * 8760.0),
                          1e-6);
  ck_assert_double_eq(e.operational_g, 0);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("estimate");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_estimate_job_h100_de_worked_example);
  tcase_add_test(tc, test_estimate_job_v100_no_worked_example);
  tcase_add_test(tc, test_estimate_job_old_gpu_does_not_win_on_same_grid);
  tcase_add_test(tc, test_estimate_job_partial_node_share);
  tcase_add_test(tc, test_estimate_job_device_is_part_of_a_card);
  tcase_add_test(tc, test_estimate_job_unknowns_named);
  tcase_add_test(tc, test_estimate_job_share_capped_and_card_figure);
  tcase_add_test(tc, test_estimate_job_embodied_override);
  tcase_add_test(tc, test_estimate_set_intensity_later);
  tcase_add_test(tc, test_estimate_job_runtime_out_of_range_unknown);
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
