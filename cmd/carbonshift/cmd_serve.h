/* cmd_serve.h: `carbonshift serve`: loads and validates the configuration,
 * builds the service from it (GPU catalog, zone map, carbon signals,
 * decider, metrics, HTTP server), serves until SIGTERM or SIGINT, then
 * shuts down gracefully and exits 0. `--print-config` prints the effective
 * configuration instead of serving.
 * Thread-safe: not relevant (a command run once from main's thread).
 * Ownership: argv is borrowed. */
#ifndef CS_CMD_SERVE_H
#define CS_CMD_SERVE_H

#include <stdio.h>

/* Runs the command; returns the process exit status: 0 after a clean
 * shutdown, 1 when the service could not start, 2 for usage or
 * configuration errors. */
int cs_cmd_serve(int argc, char **argv);
void cs_cmd_serve_help(FILE *out);

#endif
