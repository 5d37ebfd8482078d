/* log.h: structured JSON log lines, Kubernetes style: one object per line,
 * `ts` (Unix seconds), `v` (verbosity, 0 = always shown), `msg` (capitalised,
 * no final period), lowerCamelCase keys, `err` for errors. Each line is
 * written whole under a lock, so lines from threads never interleave, even
 * on a pipe that takes a long line in several writes; strings are valid
 * UTF-8 (cs_json_quote).
 * Thread-safe: yes.
 * Ownership: a line returned by cs_log_begin belongs to the caller until
 * cs_log_end writes and frees it. */
#ifndef CS_LOG_H
#define CS_LOG_H

#include "carbon/util/buf.h"

/* Lines with v above this level are dropped (default 0). */
void cs_log_set_verbosity(int v);
int cs_log_verbosity(void);
/* Where lines go (default STDOUT_FILENO). Tests point it at a pipe. */
void cs_log_set_fd(int fd);

/* Starts a line; NULL when v is above the verbosity (all cs_json_* calls and
 * cs_log_end accept NULL and do nothing). Add fields with cs_json_*(). */
cs_buf *cs_log_begin(int v, const char *msg);
void cs_log_end(cs_buf *line);

/* One-call forms for the common cases. `err` may be NULL. */
void cs_log_info(const char *msg);
void cs_log_error(const char *msg, const char *err);

#endif
