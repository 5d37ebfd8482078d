/* buf.h: a growable byte buffer with a hard cap, and a small JSON writer on
 * top of it. Errors are sticky: appends after a failure do nothing and
 * cs_buf_error() reports the first one, so writers check once at the end.
 * Thread-safe: no; one buffer belongs to one thread at a time. (Freed
 * buffers of 8 MiB or more leave their memory, one block process-wide, to
 * the next such buffer; that hand-over is locked.)
 * Ownership: the buffer owns its bytes until cs_buf_release() hands them to
 * the caller (free() them); string arguments are borrowed for the duration
 * of the call. Appends and JSON writes on a NULL buffer do nothing (see
 * cs_log_begin). */
#ifndef CS_BUF_H
#define CS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/error.h"

typedef struct cs_buf {
  char *data; /* always NUL-terminated when len > 0 or after init */
  size_t len;
  size_t alloc;
  size_t cap; /* hard limit on len; 0 means SIZE_MAX */
  cs_err err; /* first error, sticky */
} cs_buf;

void cs_buf_init(cs_buf *b, size_t cap);
void cs_buf_free(cs_buf *b);
void cs_buf_reset(cs_buf *b);
/* Hands the bytes (NUL-terminated) to the caller and empties the buffer. */
char *cs_buf_release(cs_buf *b, size_t *len);
cs_err cs_buf_error(const cs_buf *b) CS_MUST_USE;

/* Makes room for n more bytes without appending (preallocation for a known
 * size, such as a request's Content-Length). Beyond the cap it fails like
 * an append would (sticky CS_ETOOBIG). */
void cs_buf_reserve(cs_buf *b, size_t n);
void cs_buf_append(cs_buf *b, const void *p, size_t n);
void cs_buf_puts(cs_buf *b, const char *s);
void cs_buf_putc(cs_buf *b, char c);
void cs_buf_printf(cs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* JSON writer. `key` names an object member; NULL appends an array element.
 * Commas are inserted automatically: a value or key that follows anything
 * but '{', '[' or ':' gets one. */
void cs_json_open(cs_buf *b, const char *key, char bracket); /* '{' or '[' */
void cs_json_close(cs_buf *b, char bracket);                 /* '}' or ']' */
void cs_json_str(cs_buf *b, const char *key, const char *s); /* NULL: null */
void cs_json_strn(cs_buf *b, const char *key, const char *s, size_t n);
void cs_json_int(cs_buf *b, const char *key, int64_t v);
/* A finite number with at most `decimals` digits after the point, trailing
 * zeros trimmed; NaN and infinities are written as null. */
void cs_json_num(cs_buf *b, const char *key, double v, int decimals);
/* As cs_json_num, with more decimals for small values so that at least
 * `digits` significant digits show (0.00027, not 0), at most 9. */
void cs_json_num_sig(cs_buf *b, const char *key, double v, int decimals,
                     int digits);
void cs_json_bool(cs_buf *b, const char *key, bool v);
void cs_json_null(cs_buf *b, const char *key);
/* Appends already-encoded JSON verbatim as a value. */
void cs_json_raw(cs_buf *b, const char *key, const char *json, size_t n);
/* Appends the JSON string literal for s[0..n) (quotes included). JSON
 * text is UTF-8 (RFC 8259): a byte that does not begin a valid UTF-8
 * sequence is written as U+FFFD, so that no strict reader refuses the
 * line or reply however the input was encoded. */
void cs_json_quote(cs_buf *b, const char *s, size_t n);
/* The length of the valid UTF-8 sequence at s (at most n bytes, n > 0): 1
 * for ASCII, 2 to 4 for a well-formed sequence (no overlong form, no
 * surrogate, at most U+10FFFF), 0 when the bytes there are not one. */
size_t cs_utf8_len(const char *s, size_t n);

#endif
