#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"
#include "scheduler/codec.h"
#include "tests/unit/testutil.h"

static cs_err decode(const char *json, cs_wire_request *r, char *err)
{
  return cs_codec_decode(json, strlen(json), 100000, r, err, 256);
}

START_TEST(test_codec_decode_full_fixture)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/prioritize-nodes.request.json", &len);
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(cs_codec_decode(body, len, 100000, &r, err, sizeof(err)),
                   CS_OK);
  ck_assert(!r.names_only);
  ck_assert_uint_eq(r.nnodes, 4);
  ck_assert_str_eq(r.nodes[0].name, "gpu-h100-fra-01");
  ck_assert_str_eq(r.nodes[3].name, "gpu-l4-mad-01");
  ck_assert_ptr_nonnull(r.nodes[0].allocatable);
  ck_assert_str_eq(cJSON_GetObjectItem(r.nodes[0].allocatable, "nvidia.com/gpu")
                       ->valuestring,
                   "8");
  /* Each raw span is exactly the Node object as the fixture holds it. */
  cJSON *doc = cJSON_ParseWithLength(body, len);
  cJSON *items =
      cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "Nodes"), "items");
  for (size_t i = 0; i < r.nnodes; i++) {
    cJSON *mine = cJSON_ParseWithLength(r.nodes[i].raw, r.nodes[i].raw_len);
    ck_assert_ptr_nonnull(mine);
    ck_assert(cJSON_Compare(mine, cJSON_GetArrayItem(items, (int)i), 1));
    cJSON_Delete(mine);
  }
  cJSON_Delete(doc);
  cs_codec_request_free(&r);
  free(body);
}
END_TEST

START_TEST(test_codec_decode_names_fixture)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-names.request.json", &len);
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(cs_codec_decode(body, len, 100000, &r, err, sizeof(err)),
                   CS_OK);
  ck_assert(r.names_only);
  ck_assert_uint_eq(r.nnodes, 4);
  ck_assert_str_eq(r.nodes[2].name, "gpu-v100-osl-01");
  ck_assert_ptr_null(r.nodes[2].raw);
  cs_codec_request_free(&r);
  free(body);
}
END_TEST

/* The filter reply in full mode carries the kept Node objects unchanged,
 * byte for byte, and null NodeNames; failed nodes are keyed by name. */
START_TEST(test_codec_write_filter_echoes_nodes_unchanged)
{
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(cs_codec_decode(body, len, 100000, &r, err, sizeof(err)),
                   CS_OK);
  cs_verdict v[4] = {CS_PASS, CS_FAIL_UNRESOLVABLE, CS_PASS, CS_FAIL};
  const char *reasons[4] = {NULL, "too dirty", NULL, "over budget"};
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_filter(&out, &r, v, reasons);
  ck_assert_int_eq(cs_buf_error(&out), CS_OK);
  ck_assert_ptr_nonnull(
      memmem(out.data, out.len, r.nodes[0].raw, r.nodes[0].raw_len));
  ck_assert_ptr_nonnull(
      memmem(out.data, out.len, r.nodes[2].raw, r.nodes[2].raw_len));
  cJSON *reply = cJSON_Parse(out.data);
  ck_assert_ptr_nonnull(reply);
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(reply, "NodeNames")));
  cJSON *items =
      cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "Nodes"), "items");
  ck_assert_int_eq(cJSON_GetArraySize(items), 2);
  ck_assert_ptr_nonnull(
      cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "Nodes"), "metadata"));
  ck_assert_str_eq(
      cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "FailedNodes"),
                          "gpu-l4-mad-01")
          ->valuestring,
      "over budget");
  ck_assert_str_eq(cJSON_GetObjectItem(
                       cJSON_GetObjectItem(reply, "FailedAndUnresolvableNodes"),
                       "gpu-a100-fra-02")
                       ->valuestring,
                   "too dirty");
  ck_assert_str_eq(cJSON_GetObjectItem(reply, "Error")->valuestring, "");
  cJSON_Delete(reply);
  cs_buf_free(&out);
  cs_codec_request_free(&r);
  free(body);
}
END_TEST

START_TEST(test_codec_write_filter_names_only_input_names)
{
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(decode("{\"Pod\":{},\"Nodes\":null,\"NodeNames\":[\"a\","
                          "\"b\\u00e9\",\"c\"]}",
                          &r, err),
                   CS_OK);
  cs_verdict v[3] = {CS_PASS, CS_PASS, CS_FAIL_UNRESOLVABLE};
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_filter(&out, &r, v, NULL);
  ck_assert_str_eq(out.data,
                   "{\"Nodes\":null,\"NodeNames\":[\"a\",\"b\xc3\xa9\"],"
                   "\"FailedNodes\":{},\"FailedAndUnresolvableNodes\":{\"c\":"
                   "\"rejected by carbonshift\"},\"Error\":\"\"}");
  cs_buf_free(&out);
  cs_codec_request_free(&r);
}
END_TEST

START_TEST(test_codec_write_priorities_integers_in_order)
{
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"NodeNames\":[\"x\",\"y\"],\"Nodes\":null}", &r,
             err),
      CS_OK);
  int scores[2] = {10, 0};
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_priorities(&out, &r, scores);
  ck_assert_str_eq(out.data,
                   "[{\"Host\":\"x\",\"Score\":10},{\"Host\":\"y\",\"Score\":"
                   "0}]");
  cs_buf_free(&out);
  cs_codec_request_free(&r);
}
END_TEST

START_TEST(test_codec_decode_case_insensitive_keys)
{
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(decode("{\"pod\":{},\"nodenames\":[\"n1\"]}", &r, err),
                   CS_OK);
  ck_assert_uint_eq(r.nnodes, 1);
  cs_codec_request_free(&r);
}
END_TEST

/* Each malformed request is refused with a message naming the problem. */
static const struct {
  const char *body;
  cs_err rc;
  const char *needle;
} bad[] = {
    {"", CS_EPARSE, "empty"},
    {"   ", CS_EPARSE, "empty"},
    {"[]", CS_EINVAL, "expected an ExtenderArgs object, got an array"},
    {"{\"Pod\":{}", CS_EPARSE, "not valid JSON"},
    {"{\"Pod\": ", CS_EPARSE, "not valid JSON: unexpected end at byte 8"},
    {"{\"Pod\":}", CS_EPARSE, "not valid JSON: unexpected token at byte 7"},
    {" x", CS_EPARSE, "not valid JSON: unexpected token at byte 1"},
    {"{\"Pod\":{},\"NodeNames\":[\"a\",]}", CS_EPARSE, "not valid JSON"},
    {"{\"Pod\":{},\"NodeNames\":[\"a\"]} x", CS_EPARSE, "after the document"},
    {"{\"NodeNames\":[\"a\"]}", CS_EINVAL, "Pod: missing"},
    {"{\"Pod\":\"p\",\"NodeNames\":[]}", CS_EINVAL,
     "Pod: expected a Pod object, got a string"},
    {"{\"Pod\":{},\"NodeNames\":[1]}", CS_EINVAL,
     "NodeNames[0]: expected a string, got a number"},
    {"{\"Pod\":{},\"NodeNames\":{}}", CS_EINVAL,
     "NodeNames: expected an array of strings or null, got an object"},
    {"{\"Pod\":{},\"NodeNames\":[\"\"]}", CS_EINVAL, "NodeNames[0]"},
    {"{\"Pod\":{},\"Nodes\":[]}", CS_EINVAL,
     "Nodes: expected a NodeList object or null, got an array"},
    {"{\"Pod\":{},\"Nodes\":{\"items\":{}}}", CS_EINVAL,
     "Nodes.items: expected an array, got an object"},
    {"{\"Pod\":{},\"Nodes\":{\"items\":[7]}}", CS_EINVAL,
     "Nodes.items[0]: expected a Node object, got a number"},
    {"{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{}}]}}", CS_EINVAL,
     "Nodes.items[0].metadata.name: expected a non-empty string"},
    {"{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":[]}]}}", CS_EINVAL,
     "Nodes.items[0].metadata: expected an object, got an array"},
    {"{\"Pod\":{},\"Nodes\":{\"items\":[]},\"NodeNames\":[]}", CS_EINVAL,
     "both set"},
    {"{\"Pod\":{},\"NodeNames\":[\"a\\x\"]}", CS_EPARSE, "bad escape"},
    {"{\"Pod\":{},\"NodeNames\":[\"a\x01\"]}", CS_EPARSE, "control character"},
    {"{\"Pod\":{\"a\":01}}", CS_EPARSE, "not valid JSON"},
    {"{\"Pod\":{\"a\":-}}", CS_EPARSE, "bad number"},
    {"{\"Pod\":{\"a\":tru}}", CS_EPARSE, "unexpected token"},
    /* Found by fuzz_jscan: the scanner took a lone surrogate that cJSON
     * refuses, and the message blamed the tree instead of the byte. */
    {"{\"Pod\":{\"a\":\"\\ude00\"},\"NodeNames\":[]}", CS_EPARSE,
     "lone UTF-16 surrogate in \\u escape at byte 13"},
};

START_TEST(test_codec_decode_malformed_named)
{
  cs_wire_request r;
  char err[256];
  cs_err rc = decode(bad[_i].body, &r, err);
  ck_assert_msg(rc == bad[_i].rc, "case %d (%s): rc %d, err %s", _i,
                bad[_i].body, rc, err);
  ck_assert_msg(strstr(err, bad[_i].needle) != NULL,
                "case %d: message \"%s\" lacks \"%s\"", _i, err,
                bad[_i].needle);
}
END_TEST

START_TEST(test_codec_decode_deep_nesting_refused)
{
  size_t depth = 100000;
  char *body = cs_malloc(depth * 2 + 64);
  size_t n = (size_t)snprintf(body, 64, "{\"Pod\":{\"x\":");
  memset(body + n, '[', depth);
  memset(body + n + depth, ']', depth);
  memcpy(body + n + 2 * depth, "},\"NodeNames\":[]}", 18);
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(
      cs_codec_decode(body, strlen(body), 100000, &r, err, sizeof(err)),
      CS_EPARSE);
  ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));
  free(body);
}
END_TEST

START_TEST(test_codec_decode_truncated_everywhere)
{
  /* Every prefix of a real request is refused cleanly, never crashes. */
  size_t len;
  char *body =
      tu_read_shared("fixtures/extender/filter-nodes.request.json", &len);
  for (size_t cut = 0; cut < len; cut += 97) {
    cs_wire_request r;
    char err[256];
    ck_assert_int_ne(cs_codec_decode(body, cut, 100000, &r, err, sizeof(err)),
                     CS_OK);
    ck_assert(err[0] != '\0');
  }
  free(body);
}
END_TEST

START_TEST(test_codec_decode_huge_array_capped)
{
  size_t count = 200000;
  cs_buf b;
  cs_buf_init(&b, 0);
  cs_buf_puts(&b, "{\"Pod\":{},\"NodeNames\":[");
  for (size_t i = 0; i < count; i++)
    cs_buf_printf(&b, "%s\"node-%zu\"", i ? "," : "", i);
  cs_buf_puts(&b, "]}");
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(cs_codec_decode(b.data, b.len, 5000, &r, err, sizeof(err)),
                   CS_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "more than 5000 nodes"));
  ck_assert_int_eq(cs_codec_decode(b.data, b.len, count, &r, err, sizeof(err)),
                   CS_OK);
  ck_assert_uint_eq(r.nnodes, count);
  ck_assert_str_eq(r.nodes[count - 1].name, "node-199999");
  cs_codec_request_free(&r);
  cs_buf_free(&b);
}
END_TEST

START_TEST(test_codec_decode_nulls_and_empty)
{
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"Nodes\":null,\"NodeNames\":null}", &r, err), CS_OK);
  ck_assert_uint_eq(r.nnodes, 0);
  cs_verdict none[1];
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_filter(&out, &r, none, NULL);
  ck_assert_str_eq(out.data,
                   "{\"Nodes\":null,\"NodeNames\":[],"
                   "\"FailedNodes\":{},"
                   "\"FailedAndUnresolvableNodes\":{},\"Error\":\"\"}");
  cs_buf_free(&out);
  cs_codec_request_free(&r);
  /* A node whose status is null or lacks allocatable is still a node. */
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{\"name\":"
             "\"n\"},\"status\":null}]}}",
             &r, err),
      CS_OK);
  ck_assert_ptr_null(r.nodes[0].allocatable);
  cs_codec_request_free(&r);
}
END_TEST

START_TEST(test_codec_write_error_escapes)
{
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_error(&out, "bad \"x\"\n");
  ck_assert_str_eq(out.data, "{\"Error\":\"bad \\\"x\\\"\\n\"}");
  cs_buf_free(&out);
}
END_TEST

static Suite *suite(void)
{
  Suite *s = suite_create("codec");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_codec_decode_full_fixture);
  tcase_add_test(tc, test_codec_decode_names_fixture);
  tcase_add_test(tc, test_codec_write_filter_echoes_nodes_unchanged);
  tcase_add_test(tc, test_codec_write_filter_names_only_input_names);
  tcase_add_test(tc, test_codec_write_priorities_integers_in_order);
  tcase_add_test(tc, test_codec_decode_case_insensitive_keys);
  tcase_add_loop_test(tc, test_codec_decode_malformed_named, 0,
                      (int)(sizeof(bad) / sizeof(bad[0])));
  tcase_add_test(tc, test_codec_decode_deep_nesting_refused);
  tcase_add_test(tc, test_codec_decode_truncated_everywhere);
  tcase_add_test(tc, test_codec_decode_huge_array_capped);
  tcase_add_test(tc, test_codec_decode_nulls_and_empty);
  tcase_add_test(tc, test_codec_write_error_escapes);
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
