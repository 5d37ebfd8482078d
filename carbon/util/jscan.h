/* jscan.h: a validating, non-allocating JSON scanner over a byte span. It
 * walks objects and arrays member by member and skips whole values while
 * checking their syntax, handing back the exact bytes of each value. The
 * extender codec uses it to read only what a decision needs from requests of
 * tens of megabytes and to echo Node objects unchanged, byte for byte.
 * Thread-safe: a scanner belongs to one thread; scanners share nothing.
 * Ownership: the scanner borrows the input, which must outlive it; spans it
 * returns point into that input. */
#ifndef CS_JSCAN_H
#define CS_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/error.h"

typedef enum cs_jtype {
  CS_JEND = 0, /* no value: end of input or a syntax error ahead */
  CS_JNULL,
  CS_JBOOL,
  CS_JNUMBER,
  CS_JSTRING,
  CS_JARRAY,
  CS_JOBJECT
} cs_jtype;

#define CS_JSCAN_MAX_DEPTH 512

/* A body still arriving. When the scanner reaches the last byte it has,
 * it calls wait(ctx, end), which blocks until bytes past `end` have come
 * and returns the new end of what is there, or returns `end` itself when
 * nothing more will come (the body is complete, or was cut off). Bytes
 * handed out never move or change, so spans stay valid as the body grows.
 * Without a feed the input is whole. */
typedef struct cs_jscan_feed {
  const char *(*wait)(void *ctx, const char *end);
  void *ctx;
} cs_jscan_feed;

typedef struct cs_jscan {
  const char *start, *p, *end; /* end: of the bytes there so far */
  const cs_jscan_feed *feed;   /* NULL once nothing more will come */
  int depth;                   /* containers entered and not yet left */
  int max_depth;               /* nesting limit, at most CS_JSCAN_MAX_DEPTH */
  bool first;                  /* the next item is the first of its container */
  char err[128];               /* what went wrong, with the byte offset */
} cs_jscan;

void cs_jscan_init(cs_jscan *s, const char *json, size_t len, int max_depth);
/* The same over a body of which only json[0..have) is there yet; the
 * scanner waits on `feed` (which must outlive it) for the rest. A scan gives
 * the same values, spans and errors as cs_jscan_init over the whole body. */
void cs_jscan_init_feed(cs_jscan *s, const char *json, size_t have,
                        const cs_jscan_feed *feed, int max_depth);

/* The type of the next value, without consuming it. */
cs_jtype cs_jscan_peek(cs_jscan *s);
/* Consumes and validates one whole value; at and len (optional) get its bytes.
 */
cs_err cs_jscan_skip(cs_jscan *s, const char **at, size_t *len) CS_MUST_USE;

/* Consumes '{'. Then call cs_jscan_next_key until *more is false, consuming
 * each member's value (skip, enter, or read) in between. The key is decoded
 * into key[0..keycap); a key that does not fit comes back empty. */
cs_err cs_jscan_enter_object(cs_jscan *s) CS_MUST_USE;
cs_err cs_jscan_next_key(cs_jscan *s, char *key, size_t keycap,
                         bool *more) CS_MUST_USE;
/* The same, handing back the member name as its JSON string literal
 * lit[0..len) (quotes included, escapes undecoded) instead of decoding it. */
cs_err cs_jscan_next_key_lit(cs_jscan *s, const char **lit, size_t *len,
                             bool *more) CS_MUST_USE;
/* Consumes '['. Then call cs_jscan_next_elem until *more is false,
 * consuming each element in between. */
cs_err cs_jscan_enter_array(cs_jscan *s) CS_MUST_USE;
cs_err cs_jscan_next_elem(cs_jscan *s, bool *more) CS_MUST_USE;

/* Succeeds when only white space is left. */
cs_err cs_jscan_finish(cs_jscan *s) CS_MUST_USE;

/* Decodes the JSON string literal lit[0..n) (quotes included, as returned by
 * cs_jscan_skip) into out[0..cap); CS_ETOOBIG when it does not fit. */
cs_err cs_json_unquote(const char *lit, size_t n, char *out, size_t cap,
                       size_t *outlen) CS_MUST_USE;
/* The same, as cJSON reads the string through cs_jtree_parse (jtree.h): an
 * escaped NUL (\u0000) comes out as U+FFFD, so the result is a C string
 * that holds the whole value and shows where the NUL was. */
cs_err cs_json_unquote_cstr(const char *lit, size_t n, char *out, size_t cap,
                            size_t *outlen) CS_MUST_USE;
/* Whether the literal lit[0..n) (as returned by the scanner) names key,
 * compared as cJSON_GetObjectItemCaseSensitive compares in a tree from
 * cs_jtree_parse: decoded by cs_json_unquote_cstr. */
bool cs_json_key_is(const char *lit, size_t n, const char *key);

#endif
