/* Tests for carbon/util/metrics.c: rendering read back by a strict parser,
 * escaping, histogram bucket arithmetic, caps and concurrency. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carbon/util/log.h"
#include "carbon/util/metrics.h"
#include "tests/unit/prom_testutil.h"

static char *render(cs_metrics *m)
{
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_metrics_render(m, &b);
  ck_assert_int_eq(cs_buf_error(&b), CS_OK);
  return cs_buf_release(&b, NULL);
}

static void parse(cs_metrics *m, tu_prom *p)
{
  char *text = render(m);
  char err[256];
  bool ok = tu_prom_parse(text, strlen(text), p, err, sizeof(err));
  if (!ok)
    ck_abort_msg("unparseable exposition (%s):\n%s", err, text);
  free(text);
}

/* Points the log at a pipe so a test can read what was logged. */
static int log_pipe[2];

static void capture_log(void)
{
  ck_assert_int_eq(pipe(log_pipe), 0);
  fcntl(log_pipe[0], F_SETFL, O_NONBLOCK);
  cs_log_set_fd(log_pipe[1]);
}

static char *captured_log(void)
{
  static char buf[8192];
  ssize_t n = read(log_pipe[0], buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  cs_log_set_fd(STDOUT_FILENO);
  close(log_pipe[0]);
  close(log_pipe[1]);
  return buf;
}

START_TEST(test_metrics_render_counter_and_gauge)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(cs_metrics_declare(m, "cs_requests_total", CS_METRIC_COUNTER,
                                      "Requests handled.", "verb,code", NULL,
                                      0),
                   CS_OK);
  ck_assert_int_eq(cs_metrics_declare(m, "cs_zone_intensity", CS_METRIC_GAUGE,
                                      "Grid intensity.", "zone", NULL, 0),
                   CS_OK);
  ck_assert_int_eq(
      cs_metrics_declare(m, "cs_up", CS_METRIC_GAUGE, "Up.", "", NULL, 0),
      CS_OK);
  const char *f200[] = {"filter", "200"}, *p400[] = {"prioritize", "400"};
  cs_metrics_add(m, "cs_requests_total", f200, 1);
  cs_metrics_add(m, "cs_requests_total", f200, 2);
  cs_metrics_add(m, "cs_requests_total", p400, 1);
  const char *de[] = {"DE"};
  cs_metrics_set(m, "cs_zone_intensity", de, 381.5);
  cs_metrics_add(m, "cs_zone_intensity", de, -0.25);

  char *text = render(m);
  /* Families in declaration order, series sorted, a label-less family
   * present at 0 before any update. */
  ck_assert_str_eq(text,
                   "# HELP cs_requests_total Requests handled.\n"
                   "# TYPE cs_requests_total counter\n"
                   "cs_requests_total{verb=\"filter\",code=\"200\"} 3\n"
                   "cs_requests_total{verb=\"prioritize\",code=\"400\"} 1\n"
                   "# HELP cs_zone_intensity Grid intensity.\n"
                   "# TYPE cs_zone_intensity gauge\n"
                   "cs_zone_intensity{zone=\"DE\"} 381.25\n"
                   "# HELP cs_up Up.\n"
                   "# TYPE cs_up gauge\n"
                   "cs_up 0\n");
  free(text);

  tu_prom p;
  parse(m, &p);
  double v;
  ck_assert(tu_prom_get(&p, &v, "cs_requests_total", "verb", "filter", "code",
                        "200", NULL));
  ck_assert_double_eq(v, 3);
  ck_assert_str_eq(tu_prom_family_get(&p, "cs_requests_total")->type,
                   "counter");
  ck_assert(cs_metrics_get(m, "cs_zone_intensity", de, &v) == CS_OK);
  ck_assert_double_eq(v, 381.25);
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_render_escapes_labels_and_help)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(cs_metrics_declare(m, "cs_x", CS_METRIC_GAUGE,
                                      "Back\\slash and\nnewline \"kept\".",
                                      "node", NULL, 0),
                   CS_OK);
  const char *nasty = "a\\b\"c\nd";
  cs_metrics_set(m, "cs_x", &nasty, 1);
  char *text = render(m);
  ck_assert_ptr_nonnull(
      strstr(text, "# HELP cs_x Back\\\\slash and\\nnewline \"kept\".\n"));
  ck_assert_ptr_nonnull(strstr(text, "cs_x{node=\"a\\\\b\\\"c\\nd\"} 1\n"));
  free(text);

  tu_prom p;
  parse(m, &p);
  double v;
  ck_assert(tu_prom_get(&p, &v, "cs_x", "node", nasty, NULL));
  ck_assert_str_eq(tu_prom_family_get(&p, "cs_x")->help,
                   "Back\\slash and\nnewline \"kept\".");
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_observe_histogram_cumulative_buckets)
{
  cs_metrics *m = cs_metrics_new();
  const double b[] = {0.1, 0.5, 1};
  ck_assert_int_eq(cs_metrics_declare(m, "cs_lat_seconds", CS_METRIC_HISTOGRAM,
                                      "Latency.", "verb", b, 3),
                   CS_OK);
  const char *verb[] = {"filter"};
  /* 0.1 and 1 sit exactly on bounds: le is inclusive. */
  const double obs[] = {0.05, 0.1, 0.3, 1, 2};
  for (size_t i = 0; i < 5; i++)
    cs_metrics_observe(m, "cs_lat_seconds", verb, obs[i]);
  char *text = render(m);
  ck_assert_str_eq(text,
                   "# HELP cs_lat_seconds Latency.\n"
                   "# TYPE cs_lat_seconds histogram\n"
                   "cs_lat_seconds_bucket{verb=\"filter\",le=\"0.1\"} 2\n"
                   "cs_lat_seconds_bucket{verb=\"filter\",le=\"0.5\"} 3\n"
                   "cs_lat_seconds_bucket{verb=\"filter\",le=\"1\"} 4\n"
                   "cs_lat_seconds_bucket{verb=\"filter\",le=\"+Inf\"} 5\n"
                   "cs_lat_seconds_sum{verb=\"filter\"} 3.45\n"
                   "cs_lat_seconds_count{verb=\"filter\"} 5\n");
  free(text);
  double v;
  ck_assert(cs_metrics_get(m, "cs_lat_seconds", verb, &v) == CS_OK);
  ck_assert_double_eq(v, 5);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_observe_histogram_without_labels)
{
  cs_metrics *m = cs_metrics_new();
  const double b[] = {1e-4, 2.5e-4};
  ck_assert_int_eq(
      cs_metrics_declare(m, "h", CS_METRIC_HISTOGRAM, "H.", "", b, 2), CS_OK);
  cs_metrics_observe(m, "h", NULL, 2e-4);
  char *text = render(m);
  ck_assert_ptr_nonnull(strstr(text, "h_bucket{le=\"0.0001\"} 0\n"
                                     "h_bucket{le=\"0.00025\"} 1\n"
                                     "h_bucket{le=\"+Inf\"} 1\n"
                                     "h_sum 0.0002\n"
                                     "h_count 1\n"));
  free(text);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_declare_rejects_bad_shapes)
{
  cs_metrics *m = cs_metrics_new();
  const double inc[] = {1, 2}, dec[] = {2, 1}, inf[] = {1, INFINITY};
  ck_assert_int_eq(
      cs_metrics_declare(m, "9bad", CS_METRIC_COUNTER, "x", "", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "a-b", CS_METRIC_COUNTER, "x", "", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "a:b", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "__a", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "a,a", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "a,", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "h", CS_METRIC_HISTOGRAM, "x", "le", inc, 2),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "h", CS_METRIC_HISTOGRAM, "x", "", dec, 2),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "h", CS_METRIC_HISTOGRAM, "x", "", inf, 2),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "a,b", NULL, 0),
      CS_OK);
  /* Same shape again: fine. Another shape: refused. */
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "a,b", NULL, 0),
      CS_OK);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_GAUGE, "x", "a,b", NULL, 0),
      CS_EINVAL);
  ck_assert_int_eq(
      cs_metrics_declare(m, "ok", CS_METRIC_COUNTER, "x", "a", NULL, 0),
      CS_EINVAL);
  char *text = render(m);
  ck_assert_str_eq(text, "# HELP ok x\n# TYPE ok counter\n");
  free(text);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_add_wrong_kind_dropped_and_logged_once)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(
      cs_metrics_declare(m, "c", CS_METRIC_COUNTER, "C.", "", NULL, 0), CS_OK);
  capture_log();
  cs_metrics_add(m, "c", NULL, 2);
  cs_metrics_add(m, "c", NULL, -1);    /* counters only go up */
  cs_metrics_set(m, "c", NULL, 100);   /* no set on a counter */
  cs_metrics_observe(m, "c", NULL, 1); /* not a histogram */
  cs_metrics_add(m, "c", NULL, NAN);
  cs_metrics_add(m, "undeclared", NULL, 1);
  char *log = captured_log();
  double v;
  ck_assert(cs_metrics_get(m, "c", NULL, &v) == CS_OK);
  ck_assert_double_eq(v, 2);
  /* One line for the family, one for the undeclared name. */
  const char *first = strstr(log, "\"metric\":\"c\"");
  ck_assert_ptr_nonnull(first);
  ck_assert_ptr_null(strstr(first + 1, "\"metric\":\"c\""));
  ck_assert_ptr_nonnull(strstr(log, "\"metric\":\"undeclared\""));
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_set_sanitizes_label_values)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(
      cs_metrics_declare(m, "g", CS_METRIC_GAUGE, "G.", "zone", NULL, 0),
      CS_OK);
  const char *bad[] = {"DE\xff\xc0x"};
  cs_metrics_set(m, "g", bad, 1);
  /* The same bytes reach the same series. */
  cs_metrics_add(m, "g", bad, 1);
  char longv[600];
  memset(longv, 'z', sizeof(longv) - 1);
  longv[sizeof(longv) - 1] = '\0';
  const char *lv[] = {longv};
  cs_metrics_set(m, "g", lv, 7);
  tu_prom p;
  parse(m, &p);
  double v;
  ck_assert(
      tu_prom_get(&p, &v, "g", "zone", "DE\xEF\xBF\xBD\xEF\xBF\xBDx", NULL));
  ck_assert_double_eq(v, 2);
  longv[CS_METRICS_MAX_LABEL_VALUE] = '\0';
  ck_assert(tu_prom_get(&p, &v, "g", "zone", longv, NULL));
  ck_assert_double_eq(v, 7);
  ck_assert_uint_eq(p.nsamples, 2);
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_remove_drops_one_series)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(
      cs_metrics_declare(m, "g", CS_METRIC_GAUGE, "G.", "zone", NULL, 0),
      CS_OK);
  const char *de[] = {"DE"}, *fr[] = {"FR"};
  cs_metrics_set(m, "g", de, 1);
  cs_metrics_set(m, "g", fr, 2);
  cs_metrics_remove(m, "g", de);
  cs_metrics_remove(m, "g", de); /* already gone: nothing */
  double v;
  ck_assert_int_eq(cs_metrics_get(m, "g", de, &v), CS_ENOTFOUND);
  ck_assert(cs_metrics_get(m, "g", fr, &v) == CS_OK);
  ck_assert_double_eq(v, 2);
  char *text = render(m);
  ck_assert_ptr_null(strstr(text, "DE"));
  free(text);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_set_replacing_keeps_one_series_per_key)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(cs_metrics_declare(m, "g", CS_METRIC_GAUGE, "G.",
                                      "zone,provider", NULL, 0),
                   CS_OK);
  const char *de_em[] = {"DE", "electricitymaps"}, *de_b[] = {"DE", "builtin"},
             *fr_b[] = {"FR", "builtin"}, *de[] = {"DE", ""};
  double v;
  cs_metrics_set_replacing(m, "g", de_em, 1, true, 360);
  cs_metrics_set_replacing(m, "g", fr_b, 1, true, 50);
  /* The provider serving DE changes: its old series goes. */
  cs_metrics_set_replacing(m, "g", de_b, 1, true, 380);
  ck_assert_int_eq(cs_metrics_get(m, "g", de_em, &v), CS_ENOTFOUND);
  ck_assert(cs_metrics_get(m, "g", de_b, &v) == CS_OK);
  ck_assert_double_eq(v, 380);
  /* DE becomes unknown: no number at all; FR untouched. */
  cs_metrics_set_replacing(m, "g", de, 1, false, 0);
  ck_assert_int_eq(cs_metrics_get(m, "g", de_b, &v), CS_ENOTFOUND);
  ck_assert(cs_metrics_get(m, "g", fr_b, &v) == CS_OK);
  ck_assert_double_eq(v, 50);
  char *text = render(m);
  ck_assert_ptr_null(strstr(text, "DE"));
  free(text);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_add_caps_series_per_family)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(
      cs_metrics_declare(m, "c", CS_METRIC_COUNTER, "C.", "node", NULL, 0),
      CS_OK);
  capture_log();
  char name[32];
  const char *lv[] = {name};
  for (int i = 0; i <= CS_METRICS_MAX_SERIES; i++) {
    snprintf(name, sizeof(name), "node-%d", i);
    cs_metrics_add(m, "c", lv, 1);
  }
  char *log = captured_log();
  ck_assert_ptr_nonnull(strstr(log, "too many series"));
  double v;
  snprintf(name, sizeof(name), "node-%d", CS_METRICS_MAX_SERIES - 1);
  ck_assert(cs_metrics_get(m, "c", lv, &v) == CS_OK);
  snprintf(name, sizeof(name), "node-%d", CS_METRICS_MAX_SERIES);
  ck_assert_int_eq(cs_metrics_get(m, "c", lv, &v), CS_ENOTFOUND);
  tu_prom p;
  parse(m, &p);
  ck_assert_uint_eq(p.nsamples, CS_METRICS_MAX_SERIES);
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

#define THREADS 6
#define ROUNDS 20000

static void *hammer(void *arg)
{
  cs_metrics *m = arg;
  static const char *verbs[] = {"filter", "prioritize"};
  for (int i = 0; i < ROUNDS; i++) {
    const char *lv[] = {verbs[i & 1]};
    cs_metrics_add(m, "c", lv, 1);
    cs_metrics_observe(m, "h", lv, (i % 4) * 0.5);
  }
  return NULL;
}

static void *renderer(void *arg)
{
  for (int i = 0; i < 50; i++) {
    tu_prom p;
    parse(arg, &p); /* consistent snapshots: histograms must add up */
    tu_prom_free(&p);
  }
  return NULL;
}

START_TEST(test_metrics_add_from_many_threads)
{
  cs_metrics *m = cs_metrics_new();
  const double b[] = {0.25, 0.75};
  ck_assert_int_eq(
      cs_metrics_declare(m, "c", CS_METRIC_COUNTER, "C.", "verb", NULL, 0),
      CS_OK);
  ck_assert_int_eq(
      cs_metrics_declare(m, "h", CS_METRIC_HISTOGRAM, "H.", "verb", b, 2),
      CS_OK);
  pthread_t t[THREADS + 1];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, hammer, m);
  pthread_create(&t[THREADS], NULL, renderer, m);
  for (int i = 0; i <= THREADS; i++)
    pthread_join(t[i], NULL);
  tu_prom p;
  parse(m, &p);
  double v;
  ck_assert(tu_prom_get(&p, &v, "c", "verb", "filter", NULL));
  ck_assert_double_eq(v, THREADS * ROUNDS / 2);
  ck_assert(tu_prom_get(&p, &v, "h_count", "verb", "prioritize", NULL));
  ck_assert_double_eq(v, THREADS * ROUNDS / 2);
  /* filter sees i%4 in {0, 2}: values 0 and 1; half are 0 (<= 0.25). */
  ck_assert(
      tu_prom_get(&p, &v, "h_bucket", "verb", "filter", "le", "0.25", NULL));
  ck_assert_double_eq(v, THREADS * ROUNDS / 4);
  ck_assert(tu_prom_get(&p, &v, "h_sum", "verb", "filter", NULL));
  ck_assert_double_eq(v, THREADS * ROUNDS / 4);
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_add_null_registry_is_noop)
{
  const char *lv[] = {"x"};
  cs_metrics_add(NULL, "c", lv, 1);
  cs_metrics_observe(NULL, "c", lv, 1);
  cs_metrics_set(NULL, "c", lv, 1);
  cs_metrics_remove(NULL, "c", lv);
  ck_assert_int_eq(
      cs_metrics_declare(NULL, "c", CS_METRIC_COUNTER, "C.", "", NULL, 0),
      CS_OK);
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_metrics_render(NULL, &b);
  ck_assert_uint_eq(b.len, 0);
  cs_buf_free(&b);
  cs_metrics_free(NULL);
}
END_TEST

START_TEST(test_metrics_build_info_sets_one)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(cs_metrics_build_info(m, "v1.2.3"), CS_OK);
  tu_prom p;
  parse(m, &p);
  ck_assert_uint_eq(p.nsamples, 1);
  ck_assert_str_eq(p.samples[0].name, "carbonshift_build_info");
  ck_assert_str_eq(p.samples[0].lnames[0], "version");
  ck_assert_str_eq(p.samples[0].lvalues[0], "v1.2.3");
  ck_assert_double_eq(p.samples[0].value, 1);
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

START_TEST(test_metrics_render_numbers_round_trip)
{
  cs_metrics *m = cs_metrics_new();
  ck_assert_int_eq(
      cs_metrics_declare(m, "g", CS_METRIC_GAUGE, "G.", "k", NULL, 0), CS_OK);
  const double vals[] = {0.1,  1e-9,     123456789012345678.0,
                         -2.5, INFINITY, 1.0 / 3};
  char key[16];
  const char *lv[] = {key};
  for (int i = 0; i < 6; i++) {
    snprintf(key, sizeof(key), "%d", i);
    cs_metrics_set(m, "g", lv, vals[i]);
  }
  tu_prom p;
  parse(m, &p);
  for (int i = 0; i < 6; i++) {
    double v;
    snprintf(key, sizeof(key), "%d", i);
    ck_assert(tu_prom_get(&p, &v, "g", "k", key, NULL));
    ck_assert(v == vals[i]);
  }
  tu_prom_free(&p);
  cs_metrics_free(m);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_metrics_render_counter_and_gauge);
  tcase_add_test(tc, test_metrics_render_escapes_labels_and_help);
  tcase_add_test(tc, test_metrics_observe_histogram_cumulative_buckets);
  tcase_add_test(tc, test_metrics_observe_histogram_without_labels);
  tcase_add_test(tc, test_metrics_declare_rejects_bad_shapes);
  tcase_add_test(tc, test_metrics_add_wrong_kind_dropped_and_logged_once);
  tcase_add_test(tc, test_metrics_set_sanitizes_label_values);
  tcase_add_test(tc, test_metrics_remove_drops_one_series);
  tcase_add_test(tc, test_metrics_set_replacing_keeps_one_series_per_key);
  tcase_add_test(tc, test_metrics_add_caps_series_per_family);
  tcase_add_test(tc, test_metrics_add_from_many_threads);
  tcase_add_test(tc, test_metrics_add_null_registry_is_noop);
  tcase_add_test(tc, test_metrics_build_info_sets_one);
  tcase_add_test(tc, test_metrics_render_numbers_round_trip);
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
