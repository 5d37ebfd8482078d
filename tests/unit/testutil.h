/* testutil.h: small helpers shared by the unit tests: reading files, the
 * shared fixtures directory, and parsing replies.
 * Thread-safe: yes.
 * Ownership: returned buffers are owned by the caller (free). */
#ifndef CS_TESTUTIL_H
#define CS_TESTUTIL_H

#include <stddef.h>

/* The shared folder (env CS_SHARED, default ../shared). */
const char *tu_shared_dir(void);
/* Reads a whole file; aborts the test with a message when it cannot. */
char *tu_read_file(const char *path, size_t *len);
/* Reads ../shared/<rel>. */
char *tu_read_shared(const char *rel, size_t *len);
/* How many times slower than native the tests run: 50 under `make
 * valgrind` (which sets CS_VALGRIND), else 1. Time bounds that check a
 * behaviour (a hang does not block, a timeout fires) are multiplied by it;
 * the behaviour they check stays the same. */
unsigned tu_slowdown(void);
/* Runs a subcommand's entry point (cs_cmd_intensity, cs_cmd_simulate, ...)
 * in this process with its standard output captured into *out and, when
 * `err` is not NULL, its standard error into *err (caller frees both);
 * returns its exit status. argv[argc] must be NULL. */
int tu_run_command(int (*cmd)(int, char **), int argc, char **argv, char **out,
                   char **err);

#endif
