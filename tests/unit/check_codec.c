#include <check.h>
#include <cjson/cJSON.h>
#include <sanitizer/asan_interface.h> /* no-ops outside the sanitizer build */
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

/* Reads and decodes a shared fixture; the body must outlive r. */
static char *decode_fixture(const char *name, size_t *len, cs_wire_request *r)
{
  char *body = tu_read_shared(name, len);
  char err[256];
  ck_assert_msg(cs_codec_decode(body, *len, 100000, r, err, sizeof(err)) ==
                    CS_OK,
                "%s: %s", name, err);
  return body;
}

START_TEST(test_codec_decode_full_fixture)
{
  size_t len;
  cs_wire_request r;
  char *body = decode_fixture("fixtures/extender/prioritize-nodes.request.json",
                              &len, &r);
  ck_assert(!r.names_only);
  ck_assert_uint_eq(r.nnodes, 4);
  ck_assert_str_eq(r.nodes[0].name, "gpu-h100-fra-01");
  ck_assert_str_eq(r.nodes[3].name, "gpu-l4-mad-01");
  const cs_node_field *gpus = &r.fields[0].allocatable[CS_RES_NVIDIA];
  ck_assert_int_eq(gpus->kind, CS_FIELD_TEXT);
  ck_assert_uint_eq(gpus->len, 1);
  ck_assert_int_eq(gpus->at[0], '8');
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
  cs_wire_request r;
  char *body =
      decode_fixture("fixtures/extender/filter-names.request.json", &len, &r);
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
  cs_wire_request r;
  char *body =
      decode_fixture("fixtures/extender/filter-nodes.request.json", &len, &r);
  cs_verdict v[4] = {CS_PASS, CS_FAIL_UNRESOLVABLE, CS_PASS, CS_FAIL};
  const char *reasons[4] = {NULL, "too dirty", NULL, "over budget"};
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_filter(&out, &r, v, reasons, NULL, NULL);
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

/* Writes the filter reply both ways; the pieces must join to the same
 * JSON as the copied reply (white space between merged Nodes is the
 * request's), with every kept Node's bytes unchanged. Returns how many
 * pieces echo the request. */
static size_t pieces_match_copy(const cs_wire_request *r, const cs_verdict *v)
{
  cs_buf flat, own, joined;
  cs_buf_init(&flat, 0);
  cs_buf_init(&own, 0);
  cs_buf_init(&joined, 0);
  cs_reply_piece *pieces;
  size_t npieces, echoes = 0;
  cs_codec_write_filter(&flat, r, v, NULL, NULL, NULL);
  cs_codec_write_filter(&own, r, v, NULL, &pieces, &npieces);
  ck_assert_ptr_nonnull(pieces);
  cs_codec_join_pieces(&joined, own.data, pieces, npieces);
  cJSON *a = cJSON_ParseWithLength(joined.data, joined.len);
  cJSON *b = cJSON_ParseWithLength(flat.data, flat.len);
  ck_assert_msg(a && b && cJSON_Compare(a, b, 1), "joined: %s", joined.data);
  cJSON_Delete(a);
  cJSON_Delete(b);
  const char *at = joined.data;
  for (size_t i = 0; i < r->nnodes; i++) {
    if (v[i] != CS_PASS)
      continue;
    at = memmem(at, joined.len - (size_t)(at - joined.data), r->nodes[i].raw,
                r->nodes[i].raw_len);
    ck_assert_ptr_nonnull(at);
    at += r->nodes[i].raw_len;
  }
  for (size_t i = 0; i < npieces; i++) {
    ck_assert_uint_gt(pieces[i].len, 0);
    echoes += pieces[i].echo != NULL;
  }
  free(pieces);
  cs_buf_free(&flat);
  cs_buf_free(&own);
  cs_buf_free(&joined);
  return echoes;
}

/* Every pattern of verdicts over the fixture's four Nodes, and a body
 * with white space between its items: adjacent kept Nodes are one piece
 * of the request, and what the client gets is the copied reply. */
START_TEST(test_codec_write_filter_pieces_join_to_the_copy)
{
  size_t len;
  cs_wire_request r;
  char err[256];
  char *body =
      decode_fixture("fixtures/extender/filter-nodes.request.json", &len, &r);
  ck_assert_uint_eq(r.nnodes, 4);
  for (int pattern = 0; pattern < 81; pattern++) {
    cs_verdict v[4];
    size_t runs = 0;
    for (int i = 0, p = pattern; i < 4; i++, p /= 3) {
      v[i] = (cs_verdict)(p % 3);
      runs += v[i] == CS_PASS && (i == 0 || v[i - 1] != CS_PASS);
    }
    ck_assert_uint_eq(pieces_match_copy(&r, v), runs);
  }
  cs_codec_request_free(&r);
  free(body);

  const char *spaced =
      "{\"Pod\":{},\"Nodes\":{\"kind\":\"NodeList\",\"items\": [ "
      "{\"metadata\":{\"name\":\"a\"}} ,\n\t{\"metadata\":{\"name\":\"b\"}},"
      "{\"metadata\":{\"name\":\"c\"}}\r\n]}}";
  ck_assert_int_eq(decode(spaced, &r, err), CS_OK);
  cs_verdict all[3] = {CS_PASS, CS_PASS, CS_PASS};
  cs_verdict middle_out[3] = {CS_PASS, CS_FAIL, CS_PASS};
  cs_verdict none[3] = {CS_FAIL, CS_FAIL, CS_FAIL};
  ck_assert_uint_eq(pieces_match_copy(&r, all), 1);
  ck_assert_uint_eq(pieces_match_copy(&r, middle_out), 2);
  ck_assert_uint_eq(pieces_match_copy(&r, none), 0);
  cs_codec_request_free(&r);
}
END_TEST

/* Names-only replies are never in pieces. */
START_TEST(test_codec_write_filter_names_only_not_in_pieces)
{
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(decode("{\"Pod\":{},\"NodeNames\":[\"a\"]}", &r, err),
                   CS_OK);
  cs_verdict v[1] = {CS_PASS};
  cs_reply_piece *pieces = (cs_reply_piece *)&r;
  size_t n = 7;
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_filter(&out, &r, v, NULL, &pieces, &n);
  ck_assert_ptr_null(pieces);
  ck_assert_uint_eq(n, 0);
  ck_assert_ptr_nonnull(strstr(out.data, "\"NodeNames\":[\"a\"]"));
  cs_buf_free(&out);
  cs_codec_request_free(&r);
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
  cs_codec_write_filter(&out, &r, v, NULL, NULL, NULL);
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
    {"{\"Pod\":{},\"NodeNames\":[\"a\",\"a\\u0000b\"]}", CS_EINVAL,
     "NodeNames[1]: a node name cannot contain \\u0000"},
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

/* A body arriving 61 bytes at a time; what has not arrived is poisoned in
 * the sanitizer build, so a decode reading past it stops the test. */
typedef struct trickle {
  const char *end;
} trickle;

static const char *trickle_wait(void *ctx, const char *have)
{
  trickle *t = ctx;
  size_t n = (size_t)(t->end - have) < 61 ? (size_t)(t->end - have) : 61;
  ASAN_UNPOISON_MEMORY_REGION(have, n);
  return have + n;
}

/* Decodes body[0..len) and re-encodes it as a filter reply keeping every
 * node: the reply holds the names and the exact bytes of each Node, so two
 * decodes that give the same reply read the same request. */
static char *decode_and_echo(const char *body, size_t len, bool fed, char *err)
{
  cs_wire_request r;
  char *copy = cs_malloc(len + 1);
  memcpy(copy, body, len);
  trickle t = {copy + len};
  cs_jscan_feed feed = {trickle_wait, &t};
  cs_err rc;
  if (fed) {
    ASAN_POISON_MEMORY_REGION(copy, len + 1);
    rc = cs_codec_decode_feed(copy, 0, &feed, 100000, &r, err, 256);
  } else {
    rc = cs_codec_decode(copy, len, 100000, &r, err, 256);
  }
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_buf_printf(&out, "rc=%d ", (int)rc);
  if (!rc) {
    cs_verdict *v = cs_calloc(r.nnodes + 1, sizeof(*v));
    cs_codec_write_filter(&out, &r, v, NULL, NULL, NULL);
    free(v);
    cs_codec_request_free(&r);
  }
  ASAN_UNPOISON_MEMORY_REGION(copy, len + 1);
  free(copy);
  size_t n;
  return cs_buf_release(&out, &n);
}

/* A body decoded while it arrives reads as the whole body does, for each
 * fixture and for cuts of one, with the same error when it is refused. */
START_TEST(test_codec_decode_feed_like_whole)
{
  static const char *const fixtures[] = {
      "fixtures/extender/filter-nodes.request.json",
      "fixtures/extender/filter-names.request.json",
      "fixtures/extender/prioritize-nodes.request.json",
      "fixtures/extender/prioritize-plain-pod.request.json"};
  for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
    size_t len;
    char *body = tu_read_shared(fixtures[i], &len);
    for (size_t cut = len; cut > 0; cut = cut > 1500 ? cut - 1499 : 0) {
      char err_whole[256] = "", err_fed[256] = "";
      char *whole = decode_and_echo(body, cut, false, err_whole);
      char *fed = decode_and_echo(body, cut, true, err_fed);
      ck_assert_msg(strcmp(whole, fed) == 0, "%s cut at %zu differs",
                    fixtures[i], cut);
      ck_assert_str_eq(err_whole, err_fed);
      if (cut == len)
        ck_assert_msg(strncmp(whole, "rc=0 ", 5) == 0, "%s: %s", fixtures[i],
                      err_whole);
      free(whole);
      free(fed);
    }
    free(body);
  }
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
  cs_codec_write_filter(&out, &r, none, NULL, NULL, NULL);
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
  ck_assert_int_eq(r.fields[0].allocatable[CS_RES_NVIDIA].kind,
                   CS_FIELD_ABSENT);
  ck_assert_int_eq(r.fields[0].allocatable[CS_RES_AMD].kind, CS_FIELD_ABSENT);
  ck_assert(!r.fields[0].allocatable_bad);
  cs_codec_request_free(&r);
  /* allocatable: null is none; a string is a problem, not silence, and the
   * first allocatable decides, as for the node cache's cJSON objects. */
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{\"name\":"
             "\"a\"},\"status\":{\"allocatable\":null}},{\"metadata\":{"
             "\"name\":\"b\"},\"status\":{\"allocatable\":\"8\","
             "\"allocatable\":{\"nvidia.com/gpu\":\"8\"}}}]}}",
             &r, err),
      CS_OK);
  ck_assert(!r.fields[0].allocatable_bad);
  ck_assert(r.fields[1].allocatable_bad);
  ck_assert_int_eq(r.fields[1].allocatable[CS_RES_NVIDIA].kind,
                   CS_FIELD_ABSENT);
  cs_codec_request_free(&r);
}
END_TEST

/* Node names are read as cJSON reads them: escapes decoded, member names
 * compared decoded, at most 253 characters, a name too long named as such. */
START_TEST(test_codec_decode_node_name_forms)
{
  cs_wire_request r;
  char err[256], body[400];
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"Nodes\":{\"items\":[{\"metad\\u0061ta\":"
             "{\"n\\u0061me\":\"n\\u0031\"},\"st\\u0061tus\":{"
             "\"allocatable\":{\"nvidia.com/gpu\":\"8\"}}}]}}",
             &r, err),
      CS_OK);
  ck_assert_str_eq(r.nodes[0].name, "n1");
  ck_assert_uint_eq(r.nodes[0].name_len, 2);
  ck_assert_int_eq(r.fields[0].allocatable[CS_RES_NVIDIA].kind, CS_FIELD_TEXT);
  cs_codec_request_free(&r);
  for (int len = 253; len <= 254; len++) {
    snprintf(body, sizeof(body),
             "{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{\"name\":"
             "\"%0*d\"}}]}}",
             len, 7);
    cs_err rc = decode(body, &r, err);
    if (len == 253) {
      ck_assert_int_eq(rc, CS_OK);
      ck_assert_uint_eq(strlen(r.nodes[0].name), 253);
      ck_assert_uint_eq(r.nodes[0].name_len, 253);
      cs_codec_request_free(&r);
    } else {
      ck_assert_int_eq(rc, CS_EINVAL);
      ck_assert_str_eq(err, "Nodes.items[0].metadata.name: longer than the "
                            "253 characters a node name may have");
    }
  }
}
END_TEST

/* A Node named with an escaped NUL is refused, as in NodeNames: cut
 * there, "a\u0000b" was node "a" in the reply (two Host entries of "a",
 * or another node's name in FailedAndUnresolvableNodes). An escape that
 * is not a NUL still decodes. */
START_TEST(test_codec_decode_node_name_nul_refused)
{
  cs_wire_request r;
  char err[256];
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{\"name\":"
             "\"a\"}},{\"metadata\":{\"name\":\"a\\u0000b\"}}]}}",
             &r, err),
      CS_EINVAL);
  ck_assert_str_eq(err, "Nodes.items[1].metadata.name: a node name cannot "
                        "contain \\u0000");
  ck_assert_int_eq(
      decode("{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{\"name\":"
             "\"a\\\\u0000b\"}}]}}",
             &r, err),
      CS_OK);
  ck_assert_str_eq(r.nodes[0].name, "a\\u0000b");
  cs_codec_request_free(&r);
}
END_TEST

/* Names are packed into blocks of 64 KiB: 2,000 names of up to 253
 * characters fill several, and every name stays intact and NUL-terminated
 * as blocks are added, in both modes. */
START_TEST(test_codec_decode_names_across_blocks)
{
  enum { N = 2000 };
  for (int full = 0; full <= 1; full++) {
    cs_buf body;
    cs_buf_init(&body, 0);
    cs_buf_puts(&body, full ? "{\"Pod\":{},\"Nodes\":{\"items\":["
                            : "{\"Pod\":{},\"NodeNames\":[");
    for (int i = 0; i < N; i++) {
      int len = 1 + (i * 37) % 253;
      cs_buf_printf(&body, "%s%s\"%0*d\"%s", i ? "," : "",
                    full ? "{\"metadata\":{\"name\":" : "", len, i % 10,
                    full ? "}}" : "");
    }
    cs_buf_puts(&body, full ? "]}}" : "]}");
    cs_wire_request r;
    char err[256];
    ck_assert_int_eq(
        cs_codec_decode(body.data, body.len, 100000, &r, err, sizeof(err)),
        CS_OK);
    ck_assert_uint_eq(r.nnodes, N);
    for (int i = 0; i < N; i++) {
      char want[260];
      int len = 1 + (i * 37) % 253;
      snprintf(want, sizeof(want), "%0*d", len, i % 10);
      ck_assert_msg(r.nodes[i].name_len == (size_t)len &&
                        strcmp(r.nodes[i].name, want) == 0,
                    "mode %d, node %d", full, i);
    }
    cs_codec_request_free(&r);
    cs_buf_free(&body);
  }
}
END_TEST

/* The NodeList's members other than items are copied for the echo under a
 * cap of 1 MiB: past it the request is refused, never echoed cut (which
 * left `{"metadata":{},,"items":` in the reply). */
START_TEST(test_codec_decode_list_extra_capped)
{
  for (int over = 0; over <= 1; over++) {
    size_t big = over ? 1u << 20 : (1u << 20) - 64; /* bytes of "x" */
    cs_buf body;
    cs_buf_init(&body, 0);
    cs_buf_puts(&body, "{\"Pod\":{},\"Nodes\":{\"metadata\":{},\"x\":\"");
    for (size_t i = 0; i < big; i++)
      cs_buf_putc(&body, 'a');
    cs_buf_puts(&body, "\",\"items\":[{\"metadata\":{\"name\":\"n\"}}]}}");
    cs_wire_request r;
    char err[256];
    cs_err rc =
        cs_codec_decode(body.data, body.len, 100000, &r, err, sizeof(err));
    if (over) {
      ck_assert_int_eq(rc, CS_EINVAL);
      ck_assert_str_eq(err, "Nodes: members other than items take more than "
                            "1048576 bytes; expected a NodeList's few small "
                            "ones (apiVersion, kind, metadata)");
    } else {
      ck_assert_int_eq(rc, CS_OK);
      cs_verdict pass[1] = {CS_PASS};
      cs_buf out;
      cs_buf_init(&out, 0);
      cs_codec_write_filter(&out, &r, pass, NULL, NULL, NULL);
      cJSON *reply = cJSON_ParseWithLength(out.data, out.len);
      ck_assert_ptr_nonnull(reply);
      cJSON_Delete(reply);
      cs_buf_free(&out);
      cs_codec_request_free(&r);
    }
    cs_buf_free(&body);
  }
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

/* ---- ExtenderPreemptionArgs -------------------------------------------- */

static cs_err decode_pre(const char *body, cs_wire_request *r,
                         cs_wire_preemption *p, char err[256])
{
  return cs_codec_decode_preemption_feed(body, strlen(body), NULL, 100, r, p,
                                         err, 256);
}

static const char *uid_of(const cs_wire_preemption *p, size_t node, size_t k)
{
  ck_assert_uint_lt(k, p->victims[node].count);
  return p->uid_text.data + p->uid_off[p->victims[node].first + k];
}

/* nodeCacheCapable: the victims come as UIDs; the keys are the candidate
 * nodes, in order, as names only. */
START_TEST(test_codec_decode_preemption_meta)
{
  const char *body =
      "{\"Pod\":{\"metadata\":{\"name\":\"p\"}},\"NodeNameToVictims\":null,"
      "\"NodeNameToMetaVictims\":{\"n1\":{\"Pods\":[{\"UID\":\"u1\"},"
      "{\"uid\":\"u2\"}],\"NumPDBViolations\":3},\"n2\":null,"
      "\"n\\u0033\":{\"Pods\":null}}}";
  cs_wire_request r;
  cs_wire_preemption p;
  char err[256];
  ck_assert_int_eq(decode_pre(body, &r, &p, err), CS_OK);
  ck_assert(r.names_only);
  ck_assert(p.meta);
  ck_assert_ptr_nonnull(r.pod);
  ck_assert_uint_eq(r.nnodes, 3);
  ck_assert_str_eq(r.nodes[0].name, "n1");
  ck_assert_str_eq(r.nodes[2].name, "n3");
  ck_assert_uint_eq(p.victims[0].count, 2);
  ck_assert_str_eq(uid_of(&p, 0, 0), "u1");
  ck_assert_str_eq(uid_of(&p, 0, 1), "u2");
  ck_assert_int_eq(p.victims[0].pdb_violations, 3);
  ck_assert_uint_eq(p.victims[1].count, 0);
  ck_assert_uint_eq(p.victims[2].count, 0);
  cs_codec_request_free(&r);
  cs_codec_preemption_free(&p);
}
END_TEST

/* Without the node cache the victims are whole Pods: only metadata.uid is
 * kept, whatever else they hold (a "uid" elsewhere is not theirs). A later
 * Pods member replaces an earlier one, as Go decodes it. */
START_TEST(test_codec_decode_preemption_pods)
{
  const char *body =
      "{\"NodeNameToVictims\":{\"a\":{\"Pods\":[{\"metadata\":{\"uid\":"
      "\"old\"}, \"uid\":\"wrong\"}],\"Pods\":[{\"spec\":{\"uid\":\"no\"},"
      "\"metadata\":{\"name\":\"v\",\"uid\":\"uid-1\"}},{\"metadata\":"
      "{\"uid\":\"uid-2\"}}],\"NumPDBViolations\":0},\"b\":{\"Pods\":[{"
      "\"metadata\":{\"uid\":\"uid-3\"}}]}},\"NodeNameToMetaVictims\":null,"
      "\"Pod\":{}}";
  cs_wire_request r;
  cs_wire_preemption p;
  char err[256];
  ck_assert_msg(decode_pre(body, &r, &p, err) == CS_OK, "%s", err);
  ck_assert(!p.meta);
  ck_assert_uint_eq(r.nnodes, 2);
  ck_assert_uint_eq(p.victims[0].count, 2);
  ck_assert_str_eq(uid_of(&p, 0, 0), "uid-1");
  ck_assert_str_eq(uid_of(&p, 0, 1), "uid-2");
  ck_assert_str_eq(uid_of(&p, 1, 0), "uid-3");

  cs_buf out;
  cs_buf_init(&out, 0);
  bool keep[] = {false, true};
  cs_codec_write_preemption(&out, &r, &p, keep);
  ck_assert_str_eq(out.data, "{\"NodeNameToMetaVictims\":{\"b\":{\"Pods\":[{"
                             "\"UID\":\"uid-3\"}],\"NumPDBViolations\":0}}}");
  cs_buf_free(&out);
  cs_codec_request_free(&r);
  cs_codec_preemption_free(&p);
}
END_TEST

/* The reply keeps what was kept exactly: UIDs (escaped again), PDB counts,
 * and an empty map when nothing is. */
START_TEST(test_codec_write_preemption_kept_nodes)
{
  const char *body =
      "{\"Pod\":{},\"NodeNameToMetaVictims\":{\"n\\\"1\":{\"Pods\":[{\"UID\":"
      "\"u\\\"1\"}],\"NumPDBViolations\":9223372036854775807},\"n2\":{"
      "\"Pods\":[{\"UID\":\"u2\"}]}}}";
  cs_wire_request r;
  cs_wire_preemption p;
  char err[256];
  ck_assert_msg(decode_pre(body, &r, &p, err) == CS_OK, "%s", err);
  cs_buf out;
  cs_buf_init(&out, 0);
  bool all[] = {true, true}, none[] = {false, false};
  cs_codec_write_preemption(&out, &r, &p, all);
  ck_assert_str_eq(out.data,
                   "{\"NodeNameToMetaVictims\":{\"n\\\"1\":{\"Pods\":[{\"UID\":"
                   "\"u\\\"1\"}],\"NumPDBViolations\":9223372036854775807},"
                   "\"n2\":{\"Pods\":[{\"UID\":\"u2\"}],\"NumPDBViolations\":"
                   "0}}}");
  out.len = 0;
  cs_codec_write_preemption(&out, &r, &p, none);
  ck_assert_str_eq(out.data, "{\"NodeNameToMetaVictims\":{}}");
  cs_buf_free(&out);
  cs_codec_request_free(&r);
  cs_codec_preemption_free(&p);
}
END_TEST

static const struct {
  const char *body;
  cs_err rc;
  const char *needle;
} bad_pre[] = {
    {"", CS_EPARSE, "empty; expected ExtenderPreemptionArgs"},
    {"[]", CS_EINVAL, "expected an ExtenderPreemptionArgs object"},
    {"{\"NodeNameToMetaVictims\":{}}", CS_EINVAL, "Pod: missing"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":[]}", CS_EINVAL,
     "NodeNameToMetaVictims: expected an object or null, got an array"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{},\"NodeNameToVictims\":{}}",
     CS_EINVAL, "both set"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":7}}", CS_EINVAL,
     "NodeNameToMetaVictims[a]: expected a MetaVictims object or null, got a "
     "number"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":{}}}}", CS_EINVAL,
     "NodeNameToMetaVictims[a].Pods: expected an array, got an object"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":[\"u\"]}}}",
     CS_EINVAL,
     "NodeNameToMetaVictims[a].Pods[0]: expected a MetaPod object, got a "
     "string"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":[{\"UID\":5}]}}}",
     CS_EINVAL, "NodeNameToMetaVictims[a].Pods[0].UID: expected a string"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":[{}]}}}",
     CS_EINVAL, "NodeNameToMetaVictims[a].Pods[0]: missing UID"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":[{\"UID\":\"\"}]}}"
     "}",
     CS_EINVAL, "Pods[0].UID: expected a UID of 1 to 128 characters"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":[{\"UID\":"
     "\"x\\u0000"
     "y\"}]}}}",
     CS_EINVAL, "without \\u0000"},
    {"{\"Pod\":{},\"NodeNameToVictims\":{\"a\":{\"Pods\":[{\"metadata\":{}}]}}"
     "}",
     CS_EINVAL, "NodeNameToVictims[a].Pods[0]: missing metadata.uid"},
    {"{\"Pod\":{},\"NodeNameToVictims\":{\"a\":{\"Pods\":[{\"metadata\":{"
     "\"uid\":"
     "[]}}]}}}",
     CS_EINVAL, "NodeNameToVictims[a].Pods[0].metadata.uid: expected a string"},
    {"{\"Pod\":{},\"NodeNameToVictims\":{\"a\":{\"Pods\":[7]}}}", CS_EINVAL,
     "Pods[0]: expected a Pod object, got a number"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"NumPDBViolations\":-1}}}",
     CS_EINVAL,
     "NodeNameToMetaVictims[a].NumPDBViolations: expected a whole number of 0 "
     "or more, got -1"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"NumPDBViolations\":1.5}}"
     "}",
     CS_EINVAL, "got 1.5"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"NumPDBViolations\":\"1\"}"
     "}}",
     CS_EINVAL, "NumPDBViolations: expected a whole number, got a string"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"\":{}}}", CS_EINVAL,
     "NodeNameToMetaVictims: key \"\": expected a node name of 1 to 253 "
     "characters"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\\u0000b\":{}}}", CS_EINVAL,
     "key \"a\\u0000b\": expected a node name of 1 to 253 characters without "
     "\\u0000"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"b\":{},\"a\":{},\"b\":{}}}",
     CS_EINVAL, "NodeNameToMetaVictims: node b is listed twice"},
    {"{\"Pod\":{},\"NodeNameToMetaVictims\":{\"a\":{\"Pods\":[{\"UID\":\"u\"}"
     "]}}",
     CS_EPARSE, "not valid JSON"},
};

START_TEST(test_codec_decode_preemption_malformed_named)
{
  cs_wire_request r;
  cs_wire_preemption p;
  char err[256];
  cs_err rc = decode_pre(bad_pre[_i].body, &r, &p, err);
  ck_assert_msg(rc == bad_pre[_i].rc, "case %d (%s): rc %d, err %s", _i,
                bad_pre[_i].body, rc, err);
  ck_assert_msg(strstr(err, bad_pre[_i].needle) != NULL,
                "case %d: message \"%s\" lacks \"%s\"", _i, err,
                bad_pre[_i].needle);
  /* Freed on error: freeing again is harmless. */
  cs_codec_request_free(&r);
  cs_codec_preemption_free(&p);
}
END_TEST

/* More candidates than the cap are refused, not read. */
START_TEST(test_codec_decode_preemption_nodes_capped)
{
  cs_buf body;
  cs_buf_init(&body, 0);
  cs_buf_puts(&body, "{\"Pod\":{},\"NodeNameToMetaVictims\":{");
  for (int i = 0; i < 101; i++) {
    char key[32];
    snprintf(key, sizeof(key), "%s\"n%d\":{}", i ? "," : "", i);
    cs_buf_puts(&body, key);
  }
  cs_buf_puts(&body, "}}");
  cs_wire_request r;
  cs_wire_preemption p;
  char err[256];
  ck_assert_int_eq(decode_pre(body.data, &r, &p, err), CS_EINVAL);
  ck_assert_msg(strstr(err, "more than 100 nodes"), "%s", err);
  cs_buf_free(&body);
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
  tcase_add_test(tc, test_codec_write_filter_pieces_join_to_the_copy);
  tcase_add_test(tc, test_codec_write_filter_names_only_not_in_pieces);
  tcase_add_test(tc, test_codec_write_priorities_integers_in_order);
  tcase_add_test(tc, test_codec_decode_case_insensitive_keys);
  tcase_add_loop_test(tc, test_codec_decode_malformed_named, 0,
                      (int)(sizeof(bad) / sizeof(bad[0])));
  tcase_add_test(tc, test_codec_decode_deep_nesting_refused);
  tcase_add_test(tc, test_codec_decode_truncated_everywhere);
  tcase_add_test(tc, test_codec_decode_feed_like_whole);
  tcase_add_test(tc, test_codec_decode_huge_array_capped);
  tcase_add_test(tc, test_codec_decode_nulls_and_empty);
  tcase_add_test(tc, test_codec_decode_node_name_forms);
  tcase_add_test(tc, test_codec_decode_node_name_nul_refused);
  tcase_add_test(tc, test_codec_decode_names_across_blocks);
  tcase_add_test(tc, test_codec_decode_list_extra_capped);
  tcase_add_test(tc, test_codec_write_error_escapes);
  tcase_add_test(tc, test_codec_decode_preemption_meta);
  tcase_add_test(tc, test_codec_decode_preemption_pods);
  tcase_add_test(tc, test_codec_write_preemption_kept_nodes);
  tcase_add_loop_test(tc, test_codec_decode_preemption_malformed_named, 0,
                      (int)(sizeof(bad_pre) / sizeof(bad_pre[0])));
  tcase_add_test(tc, test_codec_decode_preemption_nodes_capped);
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
