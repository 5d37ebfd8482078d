#include "carbon/util/jscan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/alloc.h"

void cs_jscan_init(cs_jscan *s, const char *json, size_t len, int max_depth)
{
  s->start = s->p = json;
  s->end = json + len;
  s->depth = 0;
  s->max_depth = max_depth > 0 && max_depth < CS_JSCAN_MAX_DEPTH
                     ? max_depth
                     : CS_JSCAN_MAX_DEPTH;
  s->first = true;
  s->err[0] = '\0';
  s->feed = NULL;
}

void cs_jscan_init_feed(cs_jscan *s, const char *json, size_t have,
                        const cs_jscan_feed *feed, int max_depth)
{
  cs_jscan_init(s, json, have, max_depth);
  s->feed = feed;
}

/* Called at the end of the bytes there: waits for more. False when none
 * will come; the scanner then stops asking. Out of line: the scans' inner
 * loops stay small enough to be inlined. */
__attribute__((noinline, cold)) static bool more(cs_jscan *s)
{
  if (!s->feed)
    return false;
  const char *end = s->feed->wait(s->feed->ctx, s->end);
  if (end <= s->end) {
    s->feed = NULL;
    return false;
  }
  s->end = end;
  return true;
}

/* Whether p is before the end, waiting for more bytes when it is at it. */
static inline bool before_end(cs_jscan *s, const char *p)
{
  return p < s->end || (more(s) && p < s->end);
}

static cs_err fail(cs_jscan *s, const char *what)
{
  if (!s->err[0])
    snprintf(s->err, sizeof(s->err), "%s at byte %zu", what,
             (size_t)(s->p - s->start));
  return CS_EPARSE;
}

static inline void skip_ws(cs_jscan *s)
{
  for (;;) {
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
      s->p++;
    if (__builtin_expect(s->p < s->end || !s->feed, 1) || !more(s))
      return;
  }
}

cs_jtype cs_jscan_peek(cs_jscan *s)
{
  skip_ws(s);
  if (s->p >= s->end)
    return CS_JEND;
  switch (*s->p) {
  case '{':
    return CS_JOBJECT;
  case '[':
    return CS_JARRAY;
  case '"':
    return CS_JSTRING;
  case 'n':
    return CS_JNULL;
  case 't':
  case 'f':
    return CS_JBOOL;
  default:
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
      return CS_JNUMBER;
    return CS_JEND;
  }
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The value of the escape "\\uXXXX" at r, or -1 when r does not hold one. */
static long hex4(const char *r, const char *end)
{
  if (end - r < 6 || r[0] != '\\' || r[1] != 'u')
    return -1;
  long v = 0;
  for (int i = 2; i < 6; i++) {
    int h = hexval(r[i]);
    if (h < 0)
      return -1;
    v = v << 4 | h;
  }
  return v;
}

/* Consumes a string literal at s->p (which is '"'). With a feed, only the
 * search for the closing quote waits for bytes: everything the checks below
 * read lies before that quote, except the look-ahead of hex4, which finds a
 * quote in its way, and so fails, whatever follows. */
static cs_err scan_string(cs_jscan *s)
{
  const char *p = s->p + 1, *end = s->end;
  for (;;) {
    /* The common case is a long run of plain bytes: find the next quote
     * quickly, then check the run for escapes and control bytes. */
    const char *q = memchr(p, '"', (size_t)(end - p));
    while (!q) {
      const char *seen = end;
      if (!more(s)) {
        s->p = end;
        return fail(s, "unterminated string");
      }
      end = s->end;
      q = memchr(seen, '"', (size_t)(end - seen));
    }
    const char *r = p;
    while (r < q) {
      /* Eight plain bytes at a time: no byte below 0x20 and no backslash
       * (the usual SWAR zero-byte test; it never misses one). */
      while (q - r >= 8) {
        uint64_t w;
        memcpy(&w, r, 8);
        uint64_t bs = w ^ 0x5c5c5c5c5c5c5c5cull;
        uint64_t hit = ((w - 0x2020202020202020ull) & ~w) |
                       ((bs - 0x0101010101010101ull) & ~bs);
        if (hit & 0x8080808080808080ull)
          break;
        r += 8;
      }
      if (r >= q)
        break;
      unsigned char c = (unsigned char)*r;
      if (c < 0x20) {
        s->p = r;
        return fail(s, "control character in string");
      }
      if (c != '\\') {
        r++;
        continue;
      }
      if (r + 1 >= end) {
        s->p = r;
        return fail(s, "unterminated escape");
      }
      char e = r[1];
      if (e == 'u') {
        long cp = hex4(r, end);
        if (cp < 0) {
          s->p = r;
          return fail(s, "bad \\u escape");
        }
        /* UTF-16 surrogates come in pairs; cJSON, which builds the trees
         * the codec takes from the request, refuses a lone one. */
        long lo = cp >= 0xD800 && cp <= 0xDBFF ? hex4(r + 6, end) : -1;
        if (cp >= 0xD800 && cp <= 0xDFFF && !(lo >= 0xDC00 && lo <= 0xDFFF)) {
          s->p = r;
          return fail(s, "lone UTF-16 surrogate in \\u escape");
        }
        r += lo >= 0 ? 12 : 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
                 e == 'n' || e == 'r' || e == 't') {
        r += 2;
      } else {
        s->p = r;
        return fail(s, "bad escape");
      }
    }
    if (r == q) {
      s->p = q + 1;
      return CS_OK;
    }
    /* An escape ran past the quote we found (an escaped quote): go on. */
    p = r;
  }
}

static cs_err scan_number(cs_jscan *s)
{
  const char *p = s->p;
  if (before_end(s, p) && *p == '-')
    p++;
  if (!before_end(s, p))
    return fail(s, "bad number");
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    while (before_end(s, p) && *p >= '0' && *p <= '9')
      p++;
  } else {
    return fail(s, "bad number");
  }
  if (before_end(s, p) && *p == '.') {
    p++;
    if (!before_end(s, p) || *p < '0' || *p > '9')
      return fail(s, "bad number");
    while (before_end(s, p) && *p >= '0' && *p <= '9')
      p++;
  }
  if (before_end(s, p) && (*p == 'e' || *p == 'E')) {
    p++;
    if (before_end(s, p) && (*p == '+' || *p == '-'))
      p++;
    if (!before_end(s, p) || *p < '0' || *p > '9')
      return fail(s, "bad number");
    while (before_end(s, p) && *p >= '0' && *p <= '9')
      p++;
  }
  s->p = p;
  return CS_OK;
}

static cs_err scan_word(cs_jscan *s, const char *w, size_t n)
{
  while ((size_t)(s->end - s->p) < n && more(s))
    ;
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
    return fail(s, "unexpected token");
  s->p += n;
  return CS_OK;
}

static cs_err scan_scalar(cs_jscan *s)
{
  switch (*s->p) {
  case '"':
    return scan_string(s);
  case 'n':
    return scan_word(s, "null", 4);
  case 't':
    return scan_word(s, "true", 4);
  case 'f':
    return scan_word(s, "false", 5);
  default:
    return scan_number(s);
  }
}

cs_err cs_jscan_skip(cs_jscan *s, const char **at, size_t *len)
{
  /* Iterative, so hostile nesting costs a bit per level, not stack. One bit
   * per open container: 1 = object, 0 = array. */
  uint8_t kinds[CS_JSCAN_MAX_DEPTH / 8 + 1];
  int depth = 0;
  bool expect_value = true;
  skip_ws(s);
  const char *begin = s->p;
  for (;;) {
    skip_ws(s);
    if (s->p >= s->end)
      return fail(s, "unexpected end of input");
    if (expect_value) {
      char c = *s->p;
      if (c == '{' || c == '[') {
        if (s->depth + depth + 1 > s->max_depth)
          return fail(s, "nested too deeply");
        bool obj = c == '{';
        if (obj)
          kinds[depth / 8] |= (uint8_t)(1u << (depth % 8));
        else
          kinds[depth / 8] &= (uint8_t) ~(1u << (depth % 8));
        depth++;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == (obj ? '}' : ']')) {
          s->p++;
          depth--;
          expect_value = false;
        } else if (obj) {
          if (s->p >= s->end || *s->p != '"')
            return fail(s, "expected a member name");
          cs_err rc = scan_string(s);
          if (rc)
            return rc;
          skip_ws(s);
          if (s->p >= s->end || *s->p != ':')
            return fail(s, "expected ':'");
          s->p++;
        }
        if (depth == 0 && !expect_value)
          break;
        continue;
      }
      cs_err rc = scan_scalar(s);
      if (rc)
        return rc;
      expect_value = false;
      if (depth == 0)
        break;
      continue;
    }
    /* After a value inside a container: ',' or the closing bracket. */
    bool obj = kinds[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
    char c = *s->p;
    if (c == ',') {
      s->p++;
      expect_value = true;
      if (obj) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"')
          return fail(s, "expected a member name");
        cs_err rc = scan_string(s);
        if (rc)
          return rc;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
          return fail(s, "expected ':'");
        s->p++;
      }
    } else if (c == (obj ? '}' : ']')) {
      s->p++;
      depth--;
      if (depth == 0)
        break;
    } else {
      return fail(s, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  if (at)
    *at = begin;
  if (len)
    *len = (size_t)(s->p - begin);
  s->first = false;
  return CS_OK;
}

cs_err cs_jscan_enter_object(cs_jscan *s)
{
  skip_ws(s);
  if (s->p >= s->end || *s->p != '{')
    return fail(s, "expected an object");
  if (s->depth + 1 > s->max_depth)
    return fail(s, "nested too deeply");
  s->p++;
  s->depth++;
  s->first = true;
  return CS_OK;
}

cs_err cs_jscan_enter_array(cs_jscan *s)
{
  skip_ws(s);
  if (s->p >= s->end || *s->p != '[')
    return fail(s, "expected an array");
  if (s->depth + 1 > s->max_depth)
    return fail(s, "nested too deeply");
  s->p++;
  s->depth++;
  s->first = true;
  return CS_OK;
}

/* Handles the separator before the next item of a container: a ',' unless
 * this is the first item; sets *more to false and leaves the container when
 * the closing bracket comes instead. */
static cs_err next_item(cs_jscan *s, char close, bool *more)
{
  skip_ws(s);
  if (s->p >= s->end)
    return fail(s, "unexpected end of input");
  if (*s->p == close) {
    s->p++;
    s->depth--;
    s->first = false;
    *more = false;
    return CS_OK;
  }
  if (!s->first) {
    if (*s->p != ',')
      return fail(s,
                  close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    s->p++;
    skip_ws(s);
  }
  s->first = false;
  *more = true;
  return CS_OK;
}

cs_err cs_jscan_next_key_lit(cs_jscan *s, const char **lit, size_t *len,
                             bool *more)
{
  cs_err rc = next_item(s, '}', more);
  if (rc || !*more)
    return rc;
  if (s->p >= s->end || *s->p != '"')
    return fail(s, "expected a member name");
  *lit = s->p;
  rc = scan_string(s);
  if (rc)
    return rc;
  *len = (size_t)(s->p - *lit);
  skip_ws(s);
  if (s->p >= s->end || *s->p != ':')
    return fail(s, "expected ':'");
  s->p++;
  return CS_OK;
}

cs_err cs_jscan_next_key(cs_jscan *s, char *key, size_t keycap, bool *more)
{
  const char *lit;
  size_t len, klen;
  cs_err rc = cs_jscan_next_key_lit(s, &lit, &len, more);
  if (rc || !*more)
    return rc;
  if (cs_json_unquote(lit, len, key, keycap, &klen))
    key[0] = '\0';
  return CS_OK;
}

cs_err cs_jscan_next_elem(cs_jscan *s, bool *more)
{
  return next_item(s, ']', more);
}

cs_err cs_jscan_finish(cs_jscan *s)
{
  skip_ws(s);
  if (s->p != s->end)
    return fail(s, "unexpected data after the document");
  return CS_OK;
}

static size_t put_utf8(char *out, unsigned cp)
{
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes lit[0..n) into out[0..cap); with show_nul, a NUL the string
 * holds comes out as U+FFFD, as cs_jtree_parse has cJSON read it. */
static cs_err unquote(const char *lit, size_t n, char *out, size_t cap,
                      size_t *outlen, bool show_nul)
{
  if (n < 2 || lit[0] != '"' || lit[n - 1] != '"' || cap == 0)
    return CS_EINVAL;
  /* Most strings (node names, label values) hold no escape: one copy. */
  const char *body = lit + 1;
  size_t blen = n - 2;
  if (!memchr(body, '\\', blen) && !(show_nul && memchr(body, '\0', blen))) {
    if (blen >= cap)
      return CS_ETOOBIG;
    memcpy(out, body, blen);
    out[blen] = '\0';
    if (outlen)
      *outlen = blen;
    return CS_OK;
  }
  size_t o = 0;
  for (size_t i = 1; i + 1 < n; i++) {
    char tmp[4];
    size_t tn = 1;
    tmp[0] = lit[i];
    if (lit[i] == '\\' && i + 2 < n) {
      char e = lit[++i];
      switch (e) {
      case 'b':
        tmp[0] = '\b';
        break;
      case 'f':
        tmp[0] = '\f';
        break;
      case 'n':
        tmp[0] = '\n';
        break;
      case 'r':
        tmp[0] = '\r';
        break;
      case 't':
        tmp[0] = '\t';
        break;
      case 'u': {
        if (i + 4 >= n)
          return CS_EINVAL;
        unsigned cp = 0;
        for (int k = 1; k <= 4; k++) {
          int h = hexval(lit[i + k]);
          if (h < 0)
            return CS_EINVAL;
          cp = cp << 4 | (unsigned)h;
        }
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n && lit[i + 1] == '\\' &&
            lit[i + 2] == 'u') {
          unsigned lo = 0;
          bool ok = true;
          for (int k = 3; k <= 6; k++) {
            int h = hexval(lit[i + k]);
            if (h < 0)
              ok = false;
            lo = lo << 4 | (unsigned)(h < 0 ? 0 : h);
          }
          if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF)
          cp = 0xFFFD; /* a lone surrogate */
        tn = put_utf8(tmp, cp);
        break;
      }
      default:
        tmp[0] = e; /* '"', '\\', '/' */
      }
    }
    if (show_nul && tn == 1 && tmp[0] == '\0') /* only a one-byte one is */
      tn = put_utf8(tmp, 0xFFFD);
    if (o + tn >= cap)
      return CS_ETOOBIG;
    memcpy(out + o, tmp, tn);
    o += tn;
  }
  out[o] = '\0';
  if (outlen)
    *outlen = o;
  return CS_OK;
}

cs_err cs_json_unquote(const char *lit, size_t n, char *out, size_t cap,
                       size_t *outlen)
{
  return unquote(lit, n, out, cap, outlen, false);
}

cs_err cs_json_unquote_cstr(const char *lit, size_t n, char *out, size_t cap,
                            size_t *outlen)
{
  return unquote(lit, n, out, cap, outlen, true);
}

bool cs_json_key_is(const char *lit, size_t n, const char *key)
{
  size_t klen = strlen(key);
  if (n < 2)
    return false;
  if (!memchr(lit, '\\', n)) /* the common case: nothing to decode */
    return n - 2 == klen && memcmp(lit + 1, key, klen) == 0;
  /* Decoded, a match has exactly klen bytes, so a buffer of klen + 2 tells
   * a match from a longer name (which does not fit). */
  char small[128];
  char *buf = klen + 2 <= sizeof(small) ? small : cs_malloc(klen + 2);
  size_t len;
  bool is = cs_json_unquote_cstr(lit, n, buf, klen + 2, &len) == CS_OK &&
            len == klen && memcmp(buf, key, klen) == 0;
  if (buf != small)
    free(buf);
  return is;
}
