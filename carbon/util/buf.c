#include "carbon/util/buf.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "carbon/util/alloc.h"

void cs_buf_init(cs_buf *b, size_t cap)
{
  memset(b, 0, sizeof(*b));
  b->cap = cap ? cap : SIZE_MAX;
}

/* Buffers this large (request bodies and echoed replies of thousands of
 * Nodes) are filled once, front to back: asking for transparent huge pages
 * turns thousands of page faults per request into a few. Only a hint; the
 * kernel may ignore it. */
#define HUGE_BUF (8u << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)
#define SMALL_PAGE ((uintptr_t)4096)

/* The pages wholly inside p[0..n) in units of `page`: *len 0 when none. */
static void *pages_in(char *p, size_t n, uintptr_t page, size_t *len)
{
  uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t hi = ((uintptr_t)p + n) & ~(page - 1);
  *len = hi > lo ? hi - lo : 0;
  return (void *)lo;
}

static void advise_huge(char *p, size_t n)
{
  size_t len;
  void *at = pages_in(p, n, HUGE_PAGE, &len);
  if (len)
    (void)madvise(at, len, MADV_HUGEPAGE);
}

/* The memory of the last huge buffer freed, kept for the next one. Fresh
 * memory costs the kernel a zeroed page for every page touched: for a
 * 50 MiB request body that was a tenth of the service's CPU per request.
 * One block at most, so what is kept is bounded by the largest buffer's
 * cap. Its pages are handed back lazily (MADV_FREE): memory pressure may
 * take them (they come back zeroed, which is all a fresh block would be),
 * and while it does not, reusing them costs nothing. */
static struct {
  pthread_mutex_t lock;
  char *p;
  size_t n;
} spare = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

static void spare_put(char *p, size_t n)
{
#ifdef MADV_FREE
  size_t len;
  void *at = pages_in(p, n, SMALL_PAGE, &len);
  if (len)
    (void)madvise(at, len, MADV_FREE);
#endif
  pthread_mutex_lock(&spare.lock);
  if (spare.n < n) { /* keep the larger block: it serves more requests */
    char *t = spare.p;
    spare.p = p;
    spare.n = n;
    p = t;
  }
  pthread_mutex_unlock(&spare.lock);
  free(p);
}

/* The kept block when it holds at least n bytes (its size in *got). */
static char *spare_take(size_t n, size_t *got)
{
  char *p = NULL;
  pthread_mutex_lock(&spare.lock);
  if (spare.p && spare.n >= n) {
    p = spare.p;
    *got = spare.n;
    spare.p = NULL;
    spare.n = 0;
  }
  pthread_mutex_unlock(&spare.lock);
  return p;
}

void cs_buf_free(cs_buf *b)
{
  if (b->alloc >= HUGE_BUF)
    spare_put(b->data, b->alloc);
  else
    free(b->data);
  b->data = NULL;
  b->len = b->alloc = 0;
}

void cs_buf_reset(cs_buf *b)
{
  b->len = 0;
  b->err = CS_OK;
  if (b->data)
    b->data[0] = '\0';
}

char *cs_buf_release(cs_buf *b, size_t *len)
{
  char *d = b->data ? b->data : cs_strdup("");
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = b->alloc = 0;
  return d;
}

cs_err cs_buf_error(const cs_buf *b)
{
  return b->err;
}

/* Makes room for n more bytes plus the terminating NUL. */
static bool reserve(cs_buf *b, size_t n)
{
  if (!b || b->err)
    return false;
  if (n > b->cap - b->len) {
    b->err = CS_ETOOBIG;
    return false;
  }
  size_t need = b->len + n + 1;
  if (need <= b->alloc)
    return true;
  size_t alloc = b->alloc ? b->alloc : 256;
  while (alloc < need)
    alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
  size_t got;
  char *kept = alloc >= HUGE_BUF ? spare_take(alloc, &got) : NULL;
  if (kept) {
    if (b->data)
      memcpy(kept, b->data, b->len + 1);
    free(b->data);
    b->data = kept;
    b->alloc = got;
    return true;
  }
  b->data = cs_realloc(b->data, alloc);
  b->alloc = alloc;
  if (alloc >= HUGE_BUF)
    advise_huge(b->data, alloc);
  return true;
}

void cs_buf_reserve(cs_buf *b, size_t n)
{
  (void)reserve(b, n);
}

void cs_buf_append(cs_buf *b, const void *p, size_t n)
{
  if (!reserve(b, n))
    return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void cs_buf_puts(cs_buf *b, const char *s)
{
  cs_buf_append(b, s, strlen(s));
}

void cs_buf_putc(cs_buf *b, char c)
{
  /* The JSON writer puts a byte at a time between values: skip the general
   * path while there is room. */
  if (b && !b->err && b->len + 2 <= b->alloc && b->len < b->cap) {
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return;
  }
  cs_buf_append(b, &c, 1);
}

void cs_buf_printf(cs_buf *b, const char *fmt, ...)
{
  if (!b)
    return;
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) {
    if (!b->err)
      b->err = CS_EINTERNAL;
    return;
  }
  if ((size_t)n < sizeof(small)) {
    cs_buf_append(b, small, (size_t)n);
    return;
  }
  if (!reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void json_sep(cs_buf *b, const char *key)
{
  if (!b)
    return;
  if (b->len) {
    char last = b->data[b->len - 1];
    if (last != '{' && last != '[' && last != ':')
      cs_buf_putc(b, ',');
  }
  if (key) {
    cs_json_quote(b, key, strlen(key));
    cs_buf_putc(b, ':');
  }
}

size_t cs_utf8_len(const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  uint32_t cp, min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* A byte the plain copy of cs_json_quote can take as it is: printable
 * ASCII other than a quote or a backslash. */
static bool json_plain(unsigned char c)
{
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

void cs_json_quote(cs_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t i = 0;
  /* Eight bytes at a time while none is below 0x20, a quote, a backslash
   * or non-ASCII (the SWAR zero-byte tests of carbon/util/jscan.c: they
   * never miss one, and a false alarm only hands the word to the byte
   * loop). */
  while (n - i >= 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    uint64_t q = w ^ 0x2222222222222222ull, bs = w ^ 0x5c5c5c5c5c5c5c5cull;
    uint64_t hit = ((w - 0x2020202020202020ull) & ~w) |
                   ((q - 0x0101010101010101ull) & ~q) |
                   ((bs - 0x0101010101010101ull) & ~bs) | w;
    if (hit & 0x8080808080808080ull)
      break;
    i += 8;
  }
  while (i < n && json_plain((unsigned char)s[i]))
    i++;
  if (i == n) { /* nothing to escape, the common case: one reservation */
    if (!reserve(b, n + 2))
      return;
    char *d = b->data + b->len;
    d[0] = '"';
    memcpy(d + 1, s, n);
    d[n + 1] = '"';
    d[n + 2] = '\0';
    b->len += n + 2;
    return;
  }
  cs_buf_putc(b, '"');
  size_t run = 0; /* start of the pending run of bytes needing no escape */
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (json_plain(c))
      continue;
    if (c >= 0x80) {
      size_t l = cs_utf8_len(s + i, n - i);
      if (l) { /* valid UTF-8 is copied as it is */
        i += l - 1;
        continue;
      }
      cs_buf_append(b, s + run, i - run);
      run = i + 1;
      cs_buf_append(b, "\\ufffd", 6);
      continue;
    }
    cs_buf_append(b, s + run, i - run);
    run = i + 1;
    char esc[6] = {'\\', 0};
    size_t elen = 2;
    switch (c) {
    case '"':
      esc[1] = '"';
      break;
    case '\\':
      esc[1] = '\\';
      break;
    case '\n':
      esc[1] = 'n';
      break;
    case '\r':
      esc[1] = 'r';
      break;
    case '\t':
      esc[1] = 't';
      break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      elen = 6;
    }
    cs_buf_append(b, esc, elen);
  }
  cs_buf_append(b, s + run, n - run);
  cs_buf_putc(b, '"');
}

void cs_json_open(cs_buf *b, const char *key, char bracket)
{
  json_sep(b, key);
  cs_buf_putc(b, bracket);
}

void cs_json_close(cs_buf *b, char bracket)
{
  cs_buf_putc(b, bracket);
}

void cs_json_str(cs_buf *b, const char *key, const char *s)
{
  if (!s) {
    cs_json_null(b, key);
    return;
  }
  cs_json_strn(b, key, s, strlen(s));
}

void cs_json_strn(cs_buf *b, const char *key, const char *s, size_t n)
{
  json_sep(b, key);
  cs_json_quote(b, s, n);
}

/* Writes v in decimal without snprintf: the decision log writes thousands of
 * integers per request. */
static void put_u64(cs_buf *b, uint64_t v)
{
  char tmp[24];
  size_t i = sizeof(tmp);
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  cs_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void cs_json_int(cs_buf *b, const char *key, int64_t v)
{
  json_sep(b, key);
  if (v < 0) {
    cs_buf_putc(b, '-');
    put_u64(b, (uint64_t)0 - (uint64_t)v);
  } else {
    put_u64(b, (uint64_t)v);
  }
}

void cs_json_num(cs_buf *b, const char *key, double v, int decimals)
{
  if (!isfinite(v)) {
    cs_json_null(b, key);
    return;
  }
  if (decimals < 0)
    decimals = 0;
  if (decimals > 9)
    decimals = 9;
  static const double pow10[] = {1,   1e1, 1e2, 1e3, 1e4,
                                 1e5, 1e6, 1e7, 1e8, 1e9};
  double scaled = fabs(v) * pow10[decimals];
  if (scaled >= 9e15) { /* beyond exact integers: let printf do it */
    json_sep(b, key);
    cs_buf_printf(b, "%.*g", 17, v);
    return;
  }
  uint64_t units = (uint64_t)llround(scaled);
  uint64_t scale = (uint64_t)pow10[decimals];
  uint64_t whole = units / scale, frac = units % scale;
  json_sep(b, key);
  if (v < 0 && units)
    cs_buf_putc(b, '-');
  put_u64(b, whole);
  if (frac) {
    char digits[10];
    int nd = decimals;
    for (int i = nd - 1; i >= 0; i--) {
      digits[i] = (char)('0' + frac % 10);
      frac /= 10;
    }
    while (nd > 0 && digits[nd - 1] == '0')
      nd--;
    cs_buf_putc(b, '.');
    cs_buf_append(b, digits, (size_t)nd);
  }
}

void cs_json_num_sig(cs_buf *b, const char *key, double v, int decimals,
                     int digits)
{
  double mag = fabs(v);
  if (isfinite(mag) && mag > 0) {
    int need = digits - 1 - (int)floor(log10(mag));
    if (need > decimals)
      decimals = need;
  }
  cs_json_num(b, key, v, decimals);
}

void cs_json_bool(cs_buf *b, const char *key, bool v)
{
  json_sep(b, key);
  cs_buf_puts(b, v ? "true" : "false");
}

void cs_json_null(cs_buf *b, const char *key)
{
  json_sep(b, key);
  cs_buf_puts(b, "null");
}

void cs_json_raw(cs_buf *b, const char *key, const char *json, size_t n)
{
  json_sep(b, key);
  cs_buf_append(b, json, n);
}
