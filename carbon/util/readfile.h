/* readfile.h: reads a whole file given by a user (a kubeconfig, a token,
 * a certificate, a carbon trace) with a size limit. Only regular files are
 * read (symbolic links to them included, as in mounted Secrets): a
 * directory, a FIFO that would block the start forever, or a device such
 * as /dev/zero that would never end is refused before any byte is read, as
 * is a file already larger than the limit.
 * Thread-safe: yes.
 * Ownership: *out is the caller's (free()). */
#ifndef CS_READFILE_H
#define CS_READFILE_H

#include <stddef.h>

#include "carbon/util/error.h"

/* Reads `path` into *out, NUL-terminated (the NUL not counted in *len).
 * CS_EIO when it cannot be opened or read, CS_EINVAL when it is not a
 * regular file, CS_ETOOBIG when it holds more than `max` bytes; `why` then
 * says so without the path ("No such file or directory", "is a directory,
 * not a regular file", "is larger than 1 MiB"), for the caller to prefix. */
cs_err cs_read_file(const char *path, size_t max, char **out, size_t *len,
                    char *why, size_t whycap) CS_MUST_USE;

/* Checks, without opening it, that `path` is a regular file (or a link to
 * one) this process may read: for files handed by path to a library that
 * re-reads them (libcurl's CA and client certificate files). CS_EIO or
 * CS_EINVAL with `why` as above. */
cs_err cs_check_file(const char *path, char *why, size_t whycap) CS_MUST_USE;

/* For text files read as C strings (the CSV readers): the line (counted
 * from 1) of the first NUL byte in data[0, len), or 0 when there is none.
 * A NUL would end the file early without a word, so readers refuse it. */
size_t cs_text_nul_line(const char *data, size_t len);

/* `data` past a UTF-8 byte order mark, which spreadsheet exports put before
 * the header, or `data` itself when it has none. */
char *cs_text_skip_bom(char *data);

#endif
