#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/pod_facts.h"
#include "tests/unit/testutil.h"

static cJSON *pod_with(const char *json)
{
  cJSON *p = cJSON_Parse(json);
  ck_assert_msg(p != NULL, "test pod is not JSON: %s", json);
  return p;
}

START_TEST(test_pod_facts_read_fixture)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/prioritize-nodes.request.json", &len);
  cJSON *doc = cJSON_ParseWithLength(body, len);
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(cJSON_GetObjectItem(doc, "Pod"), 3600, &f),
                   CS_OK);
  ck_assert_str_eq(f.name, "llm-pretrain-7b-x2k9q");
  ck_assert_str_eq(f.ns, "ml-research");
  ck_assert_double_eq(f.gpus, 8);
  ck_assert_str_eq(f.gpu_resource, "nvidia.com/gpu");
  ck_assert_double_eq(f.duration_s, 36 * 3600.0);
  ck_assert(!f.duration_defaulted);
  ck_assert_str_eq(f.problems, "");
  ck_assert_int_eq(f.created_at, 1795165964); /* 2026-11-20T09:12:44Z */
  cJSON_Delete(doc);
  free(body);
}
END_TEST

START_TEST(test_pod_facts_read_plain_pod_no_gpu)
{
  size_t len;
  char *body = tu_read_shared(
      "fixtures/extender/prioritize-plain-pod.request.json", &len);
  cJSON *doc = cJSON_ParseWithLength(body, len);
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(cJSON_GetObjectItem(doc, "Pod"), 3600, &f),
                   CS_OK);
  ck_assert_double_eq(f.gpus, 0);
  ck_assert(f.duration_defaulted);
  ck_assert_double_eq(f.duration_s, 3600);
  cJSON_Delete(doc);
  free(body);
}
END_TEST

/* Init containers as the scheduler counts them: the larger of the regular
 * sum and the largest init container, sidecars added, plus overhead. */
START_TEST(test_pod_facts_read_init_containers_and_sidecars)
{
  cs_pod_facts f;
  cJSON *p = pod_with(
      "{\"spec\":{\"containers\":[{\"resources\":{\"requests\":{"
      "\"nvidia.com/gpu\":\"2\"}}},{\"resources\":{\"limits\":{"
      "\"nvidia.com/gpu\":\"1\"}}}],\"initContainers\":[{\"resources\":{"
      "\"requests\":{\"nvidia.com/gpu\":\"4\"}}}]}}");
  ck_assert_int_eq(cs_pod_facts_read(p, 60, &f), CS_OK);
  ck_assert_double_eq(f.gpus, 4);
  cJSON_Delete(p);

  p = pod_with("{\"spec\":{\"containers\":[{\"resources\":{\"requests\":{"
               "\"amd.com/gpu\":\"2\"}}}],\"initContainers\":[{"
               "\"restartPolicy\":\"Always\",\"resources\":{\"requests\":{"
               "\"amd.com/gpu\":\"1\"}}}],\"overhead\":{\"amd.com/gpu\":"
               "\"1\"}}}");
  ck_assert_int_eq(cs_pod_facts_read(p, 60, &f), CS_OK);
  ck_assert_double_eq(f.gpus, 4);
  ck_assert_str_eq(f.gpu_resource, "amd.com/gpu");
  cJSON_Delete(p);
}
END_TEST

static const struct {
  const char *annotations;
  const char *needle;
} bad_annotations[] = {
    {"{\"carbonshift.io/expected-duration\":\"36\"}",
     "carbonshift.io/expected-duration=\"36\": expected a duration"},
    {"{\"carbonshift.io/expected-duration\":\"-1h\"}",
     "expected-duration=\"-1h\""},
    {"{\"carbonshift.io/expected-duration\":\"0h\"}", "positive duration"},
    {"{\"carbonshift.io/expected-duration\":\"1h30\"}", "\"1h30\""},
    {"{\"carbonshift.io/expected-duration\":12}", "(not a string)"},
    {"{\"carbonshift.io/skip\":\"yes\"}",
     "carbonshift.io/skip=\"yes\": expected \"true\" or \"false\""},
    /* Annotations that are not an object are not "none". */
    {"[\"carbonshift.io/carbon-budget\"]",
     "metadata.annotations: expected an object"},
    {"\"carbonshift.io/skip=true\"",
     "metadata.annotations: expected an object"},
    /* 0 is "no deadline" to the policy: a time at or before the epoch
     * must not pass for none. */
    {"{\"carbonshift.io/deadline\":\"1970-01-01T00:00:00Z\"}",
     "carbonshift.io/deadline=\"1970-01-01T00:00:00Z\": expected an RFC 3339 "
     "time after the Unix epoch"},
    {"{\"carbonshift.io/deadline\":\"1970-01-01T00:00:00+01:00\"}",
     "deadline=\"1970-01-01T00:00:00+01:00\": expected an RFC 3339 time after"},
    /* A key carbonshift does not read is never ignored: mistyped, it would
     * drop a limit without a word. */
    {"{\"carbonshift.io/carbon_budget\":\"5kg\"}",
     "annotation carbonshift.io/carbon_budget: not one carbonshift reads (did "
     "you mean carbonshift.io/carbon-budget?)"},
    {"{\"carbonshift.io/Carbon-Budget\":\"5kg\"}",
     "(did you mean carbonshift.io/carbon-budget?)"},
    {"{\"carbonshift.io/budget\":\"5kg\"}",
     "(did you mean carbonshift.io/carbon-budget?)"},
    {"{\"carbonshift.io/max-dealy\":\"2h\"}",
     "(did you mean carbonshift.io/max-delay?)"},
    {"{\"carbonshift.io/expected-runtime\":\"2h\"}",
     "(did you mean carbonshift.io/expected-duration?)"},
    {"{\"carbonshift.io/priority\":\"high\"}",
     "carbonshift.io/priority: not one carbonshift reads (Pods take "
     "expected-duration, max-delay"},
    {"{\"carbonshift.io/pue\":\"1.2\"}",
     "annotation carbonshift.io/pue: read on Nodes, not on Pods"},
    /* The key it begins, not the one it happens to sit inside. */
    {"{\"carbonshift.io/on-budget\":\"wait\"}",
     "(did you mean carbonshift.io/on-budget-exceeded?)"},
    {"{\"carbonshift.io/skp\":\"true\"}",
     "(did you mean carbonshift.io/skip?)"},
    /* Two edits in three letters is another word, not a typo. */
    {"{\"carbonshift.io/tip\":\"x\"}",
     "carbonshift.io/tip: not one carbonshift reads (Pods take"},
    {"{\"carbonshift.io/Planned-Start\":\"x\"}",
     "(did you mean carbonshift.io/planned-start?)"},
};

/* Long values are shown cut with "…", and problems that do not fit end the
 * text with a marker: a cut list never passes for the whole one. */
START_TEST(test_pod_facts_read_long_problems_marked)
{
  char x[71], y[71], json[1024];
  memset(x, 'x', 70);
  x[70] = '\0';
  memcpy(y, x, sizeof(y));
  y[60] = '\xc3'; /* a 2-byte UTF-8 sequence across the cut */
  y[61] = '\xa9';
  snprintf(json, sizeof(json),
           "{\"metadata\":{\"annotations\":{"
           "\"carbonshift.io/expected-duration\":\"%s\","
           "\"carbonshift.io/max-delay\":\"%s\","
           "\"carbonshift.io/deadline\":\"%s\","
           "\"carbonshift.io/carbon-budget\":\"%s\","
           "\"carbonshift.io/on-budget-exceeded\":\"%s\","
           "\"carbonshift.io/skip\":\"%s\"}},\"spec\":{}}",
           y, x, x, x, x, x);
  cJSON *p = pod_with(json);
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 7200, &f), CS_OK);
  char shown[128];
  snprintf(shown, sizeof(shown), "expected-duration=\"%.60s\xe2\x80\xa6\"", x);
  ck_assert_msg(strstr(f.problems, shown), "%s", f.problems);
  snprintf(shown, sizeof(shown), "max-delay=\"%.61s\xe2\x80\xa6\"", x);
  ck_assert_msg(strstr(f.problems, shown), "%s", f.problems);
  const char *more = "; more problems not shown";
  size_t n = strlen(f.problems);
  ck_assert_uint_lt(n, sizeof(f.problems));
  ck_assert_msg(n > strlen(more) &&
                    strcmp(f.problems + n - strlen(more), more) == 0,
                "%s", f.problems);
  ck_assert_ptr_null(strstr(f.problems, "skip"));
  cJSON_Delete(p);
}
END_TEST

/* Annotations of other owners, and carbonshift's own, are no problem. */
START_TEST(test_pod_facts_read_known_and_foreign_keys_accepted)
{
  cJSON *p = pod_with(
      "{\"metadata\":{\"annotations\":{\"carbonshift.io/planned-start\":"
      "\"2026-11-20T10:00:00Z\",\"carbonshift.io/expected-saving\":\"12g\","
      "\"example.com/carbon_budget\":\"x\",\"carbonshift.io\":\"x\","
      "\"carbonshift.io/skip\":\"false\"}},\"spec\":{}}");
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 7200, &f), CS_OK);
  ck_assert_str_eq(f.problems, "");
  cJSON_Delete(p);
  /* null is JSON's "none": no problem. */
  p = pod_with("{\"metadata\":{\"annotations\":null},\"spec\":{}}");
  ck_assert_int_eq(cs_pod_facts_read(p, 7200, &f), CS_OK);
  ck_assert_str_eq(f.problems, "");
  cJSON_Delete(p);
}
END_TEST

START_TEST(test_pod_facts_read_bad_annotation_named)
{
  char json[512];
  snprintf(json, sizeof(json),
           "{\"metadata\":{\"annotations\":%s},\"spec\":{}}",
           bad_annotations[_i].annotations);
  cJSON *p = pod_with(json);
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 7200, &f), CS_OK);
  ck_assert_msg(strstr(f.problems, bad_annotations[_i].needle) != NULL,
                "problems \"%s\" lack \"%s\"", f.problems,
                bad_annotations[_i].needle);
  ck_assert_double_eq(f.duration_s, 7200);
  ck_assert(f.duration_defaulted);
  ck_assert(!f.skip);
  cJSON_Delete(p);
}
END_TEST

/* A max-delay counts from the creation time: without a usable one the
 * pod is told so, rather than silently given no slack. */
START_TEST(test_pod_facts_read_max_delay_needs_creation_time)
{
  static const struct {
    const char *created, *problem;
  } cases[] = {
      {NULL, "annotation carbonshift.io/max-delay counts from "
             "metadata.creationTimestamp, which is missing"},
      {"\"yesterday\"", "annotation carbonshift.io/max-delay counts from "
                        "metadata.creationTimestamp, which is \"yesterday\": "
                        "expected "},
      {"42", "metadata.creationTimestamp, which is not a string"},
      /* Before the epoch: no start to count from, not a spent slack. */
      {"\"1970-01-01T00:00:00+01:00\"",
       "metadata.creationTimestamp, which is \"1970-01-01T00:00:00+01:00\": "
       "expected a time after the Unix epoch"},
      {"\"2026-11-20T09:12:44Z\"", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"metadata\":{%s%s%s\"annotations\":{"
             "\"carbonshift.io/max-delay\":\"6h\"}},\"spec\":{}}",
             cases[i].created ? "\"creationTimestamp\":" : "",
             cases[i].created ? cases[i].created : "",
             cases[i].created ? "," : "");
    cJSON *p = pod_with(json);
    cs_pod_facts f;
    ck_assert_int_eq(cs_pod_facts_read(p, 3600, &f), CS_OK);
    if (cases[i].problem)
      ck_assert_msg(strstr(f.problems, cases[i].problem), "case %zu: \"%s\"", i,
                    f.problems);
    else
      ck_assert_msg(!f.problems[0], "case %zu: \"%s\"", i, f.problems);
    cJSON_Delete(p);
  }
  /* Without a max-delay the creation time is not needed. */
  cJSON *p = pod_with("{\"metadata\":{\"creationTimestamp\":\"soon\"}}");
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 3600, &f), CS_OK);
  ck_assert_str_eq(f.problems, "");
  cJSON_Delete(p);
}
END_TEST

/* A budget and a deadline are judged on the run's length: without an
 * expected-duration each is a problem, named; with a malformed one, only
 * the malformed value is. */
START_TEST(test_pod_facts_read_budget_and_deadline_need_duration)
{
  cJSON *p = pod_with(
      "{\"metadata\":{\"annotations\":{\"carbonshift.io/carbon-budget\":"
      "\"5kg\",\"carbonshift.io/deadline\":\"2026-11-24T09:00:00Z\"}},"
      "\"spec\":{}}");
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 3600, &f), CS_OK);
  ck_assert_str_eq(
      f.problems,
      "annotation carbonshift.io/carbon-budget needs "
      "carbonshift.io/expected-duration as well: the run's emissions, "
      "checked against the budget, depend on its length; annotation "
      "carbonshift.io/deadline needs carbonshift.io/expected-duration as "
      "well: the latest start is the deadline less the run's length");
  cJSON_Delete(p);

  p = pod_with("{\"metadata\":{\"annotations\":{\"carbonshift.io/"
               "carbon-budget\":\"5kg\",\"carbonshift.io/expected-duration\":"
               "\"36H\"}},\"spec\":{}}");
  ck_assert_int_eq(cs_pod_facts_read(p, 3600, &f), CS_OK);
  ck_assert_msg(strstr(f.problems, "expected-duration=\"36H\""), "%s",
                f.problems);
  ck_assert_msg(!strstr(f.problems, "needs"), "%s", f.problems);
  cJSON_Delete(p);

  p = pod_with("{\"metadata\":{\"annotations\":{\"carbonshift.io/"
               "carbon-budget\":\"5kg\",\"carbonshift.io/expected-duration\":"
               "\"36h\"}},\"spec\":{}}");
  ck_assert_int_eq(cs_pod_facts_read(p, 3600, &f), CS_OK);
  ck_assert_str_eq(f.problems, "");
  cJSON_Delete(p);
}
END_TEST

START_TEST(test_pod_facts_read_bad_quantity_named)
{
  cJSON *p = pod_with("{\"spec\":{\"containers\":[{\"resources\":{"
                      "\"requests\":{\"nvidia.com/gpu\":\"two\"}}}]}}");
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 60, &f), CS_OK);
  ck_assert_double_eq(f.gpus, 0);
  ck_assert_msg(strstr(f.problems, "spec.containers[0] nvidia.com/gpu=\"two\": "
                                   "expected a whole number"),
                "%s", f.problems);
  cJSON_Delete(p);

  /* The overhead is held to the same rule: a fraction was added as one,
   * a typo ignored, both without a word. */
  static const struct {
    const char *value, *shown;
  } overheads[] = {{"\"500m\"", "=\"500m\""},
                   {"\"1x\"", "=\"1x\""},
                   {"1", "=(not a string)"}};
  for (size_t i = 0; i < sizeof(overheads) / sizeof(overheads[0]); i++) {
    char json[256], want[128];
    snprintf(json, sizeof(json),
             "{\"spec\":{\"containers\":[{\"resources\":{\"requests\":{"
             "\"nvidia.com/gpu\":\"2\"}}}],\"overhead\":{\"nvidia.com/gpu\":"
             "%s}}}",
             overheads[i].value);
    p = pod_with(json);
    ck_assert_int_eq(cs_pod_facts_read(p, 60, &f), CS_OK);
    ck_assert_double_eq(f.gpus, 2);
    snprintf(want, sizeof(want),
             "spec.overhead nvidia.com/gpu%s: expected a whole number",
             overheads[i].shown);
    ck_assert_msg(strstr(f.problems, want), "%s: %s", overheads[i].value,
                  f.problems);
    cJSON_Delete(p);
  }
}
END_TEST

/* Found by fuzzing node facts (the same check): a GPU count beyond the
 * range of long long was cast to it, undefined behaviour; counts above
 * CS_GPU_COUNT_MAX are now malformed. */
START_TEST(test_pod_facts_read_huge_gpu_count_refused)
{
  static const char *const bad[] = {"1e30", "2000000"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char json[256];
    snprintf(json, sizeof(json),
             "{\"spec\":{\"containers\":[{\"resources\":{"
             "\"limits\":{\"nvidia.com/gpu\":\"%s\"}}}]}}",
             bad[i]);
    cJSON *p = pod_with(json);
    cs_pod_facts f;
    ck_assert_int_eq(cs_pod_facts_read(p, 60, &f), CS_OK);
    ck_assert_msg(f.gpus == 0, "%s: gpus %g", bad[i], f.gpus);
    char want[128];
    snprintf(want, sizeof(want),
             "nvidia.com/gpu=\"%s\": expected a whole number", bad[i]);
    ck_assert_msg(strstr(f.problems, want), "%s", f.problems);
    cJSON_Delete(p);
  }
}
END_TEST

START_TEST(test_pod_facts_read_skip_and_durations)
{
  cJSON *p = pod_with("{\"metadata\":{\"annotations\":{"
                      "\"carbonshift.io/skip\":\"true\","
                      "\"carbonshift.io/expected-duration\":\"1h30m\"}}}");
  cs_pod_facts f;
  ck_assert_int_eq(cs_pod_facts_read(p, 60, &f), CS_OK);
  ck_assert(f.skip);
  ck_assert_double_eq(f.duration_s, 5400);
  cJSON_Delete(p);
  ck_assert_int_eq(cs_pod_facts_read(NULL, 60, &f), CS_EINVAL);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("pod_facts");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_pod_facts_read_fixture);
  tcase_add_test(tc, test_pod_facts_read_plain_pod_no_gpu);
  tcase_add_test(tc, test_pod_facts_read_init_containers_and_sidecars);
  tcase_add_loop_test(
      tc, test_pod_facts_read_bad_annotation_named, 0,
      (int)(sizeof(bad_annotations) / sizeof(bad_annotations[0])));
  tcase_add_test(tc, test_pod_facts_read_known_and_foreign_keys_accepted);
  tcase_add_test(tc, test_pod_facts_read_long_problems_marked);
  tcase_add_test(tc, test_pod_facts_read_bad_quantity_named);
  tcase_add_test(tc, test_pod_facts_read_max_delay_needs_creation_time);
  tcase_add_test(tc, test_pod_facts_read_budget_and_deadline_need_duration);
  tcase_add_test(tc, test_pod_facts_read_huge_gpu_count_refused);
  tcase_add_test(tc, test_pod_facts_read_skip_and_durations);
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
