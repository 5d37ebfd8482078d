/* fuzz_jscan: the validating span scanner of carbon/util/jscan.c, which
 * walks every extender request. The input is walked member by member the
 * way the codec walks a request (keys decoded, strings unquoted, other
 * values skipped or entered, member names taken decoded or as literals),
 * and also skipped as one value. Invariants: the walk and the skip agree,
 * spans stay inside the input, a name literal matches the key it decodes
 * to, and whatever the scanner accepts cJSON accepts too. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#include "carbon/util/jscan.h"
#include "tests/fuzz/fuzzutil.h"

static const char *base, *limit;

static void in_input(const char *at, size_t len)
{
  FZ_ASSERT(at >= base && at + len <= limit);
}

/* Walks one value; `alt` alternates entering and skipping containers. */
static cs_err walk(cs_jscan *s, unsigned alt)
{
  const char *at;
  size_t len;
  char key[64], text[256];
  bool more;
  cs_err rc;
  switch (cs_jscan_peek(s)) {
  case CS_JOBJECT:
    if (alt & 1) {
      rc = cs_jscan_skip(s, &at, &len);
      if (rc == CS_OK)
        in_input(at, len);
      return rc;
    }
    rc = cs_jscan_enter_object(s);
    while (rc == CS_OK) {
      if (alt & 2) {
        rc = cs_jscan_next_key(s, key, sizeof(key), &more);
      } else {
        /* The literal names the key it decodes to, as cJSON compares. */
        rc = cs_jscan_next_key_lit(s, &at, &len, &more);
        if (rc == CS_OK && more) {
          in_input(at, len);
          if (cs_json_unquote_cstr(at, len, key, sizeof(key), NULL) == CS_OK)
            FZ_ASSERT(cs_json_key_is(at, len, key));
          else
            key[0] = '\0';
        }
      }
      if (rc != CS_OK || !more)
        break;
      FZ_ASSERT(strlen(key) < sizeof(key));
      rc = walk(s, alt >> 1 | (alt & 1) << 7);
    }
    return rc;
  case CS_JARRAY:
    rc = cs_jscan_enter_array(s);
    while (rc == CS_OK) {
      rc = cs_jscan_next_elem(s, &more);
      if (rc != CS_OK || !more)
        break;
      rc = walk(s, alt + 1);
    }
    return rc;
  case CS_JSTRING: {
    rc = cs_jscan_skip(s, &at, &len);
    if (rc != CS_OK)
      return rc;
    in_input(at, len);
    FZ_ASSERT(len >= 2 && at[0] == '"' && at[len - 1] == '"');
    size_t n = 0;
    cs_err u = cs_json_unquote(at, len, text, sizeof(text), &n);
    FZ_ASSERT(u == CS_OK || u == CS_ETOOBIG || u == CS_EPARSE);
    if (u == CS_OK)
      FZ_ASSERT(n < sizeof(text));
    return CS_OK;
  }
  default:
    rc = cs_jscan_skip(s, &at, &len);
    if (rc == CS_OK)
      in_input(at, len);
    return rc;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *json = (const char *)data;
  base = json;
  limit = json + size;
  cs_jscan a, b;
  cs_jscan_init(&a, json, size, 64);
  bool walked = walk(&a, size) == CS_OK && cs_jscan_finish(&a) == CS_OK;
  cs_jscan_init(&b, json, size, 64);
  const char *at = NULL;
  size_t len = 0;
  bool skipped =
      cs_jscan_skip(&b, &at, &len) == CS_OK && cs_jscan_finish(&b) == CS_OK;
  FZ_ASSERT(walked == skipped);
  if (skipped) {
    in_input(at, len);
    cJSON *j = cJSON_ParseWithLength(json, size);
    FZ_ASSERT(j != NULL);
    cJSON_Delete(j);
  } else {
    FZ_ASSERT(a.err[0] || b.err[0]);
  }
  return 0;
}
