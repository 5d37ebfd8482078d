/* fuzz_jscan: the validating span scanner of carbon/util/jscan.c, which
 * walks every extender request. The input is walked member by member the
 * way the codec walks a request (keys decoded, strings unquoted, other
 * values skipped or entered, member names taken decoded or as literals),
 * and also skipped as one value. Invariants: the walk and the skip agree,
 * spans stay inside the input, a name literal matches the key it decodes
 * to, and whatever the scanner accepts cJSON accepts too. The walk is made
 * a second time over the input arriving in pieces (a body parsed while it
 * is received, jscan.h's feed), with the bytes not yet handed out poisoned:
 * it must end where the whole walk ended, with the same error, and never
 * read past what it was given. */
#include <cjson/cJSON.h>
#include <sanitizer/asan_interface.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/jscan.h"
#include "carbon/util/jtree.h"
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

/* Hands out the copy in pieces of 1 to 16 bytes, sized by the input. */
typedef struct pieces {
  const char *copy, *end;
  const uint8_t *sizes;
  size_t n, i;
} pieces;

static const char *pieces_wait(void *ctx, const char *have)
{
  pieces *pc = ctx;
  size_t left = (size_t)(pc->end - have);
  size_t step = pc->n ? (size_t)(pc->sizes[pc->i++ % pc->n] % 16) + 1 : 1;
  if (step > left)
    step = left;
  ASAN_UNPOISON_MEMORY_REGION(have, step);
  return have + step;
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

  char *copy = malloc(size + 1);
  FZ_ASSERT(copy != NULL);
  if (size)
    memcpy(copy, json, size);
  ASAN_POISON_MEMORY_REGION(copy, size + 1);
  pieces pc = {copy, copy + size, data, size, 0};
  cs_jscan_feed feed = {pieces_wait, &pc};
  cs_jscan f;
  cs_jscan_init_feed(&f, copy, 0, &feed, 64);
  base = copy;
  limit = copy + size;
  bool fed = walk(&f, size) == CS_OK && cs_jscan_finish(&f) == CS_OK;
  base = json;
  limit = json + size;
  FZ_ASSERT(fed == walked);
  FZ_ASSERT(f.p - f.start == a.p - a.start);
  FZ_ASSERT(strcmp(f.err, a.err) == 0);
  ASAN_UNPOISON_MEMORY_REGION(copy, size + 1);
  free(copy);
  if (skipped) {
    in_input(at, len);
    cJSON *j = cJSON_ParseWithLength(json, size);
    FZ_ASSERT(j != NULL);
    cJSON_Delete(j);
    /* Showing escaped NULs never changes whether a text is JSON. */
    j = cs_jtree_parse(json, size, NULL);
    FZ_ASSERT(j != NULL);
    cJSON_Delete(j);
  } else {
    FZ_ASSERT(a.err[0] || b.err[0]);
  }
  return 0;
}
