/* cmd_version.h: `carbonshift version`: the build's version (cs_version)
 * and the versions of the libraries it runs with.
 * Thread-safe: not relevant (a command run once from main).
 * Ownership: argv is borrowed. */
#ifndef CS_CMD_VERSION_H
#define CS_CMD_VERSION_H

#include <stdio.h>

/* Runs the command; returns the process exit status. */
int cs_cmd_version(int argc, char **argv);
void cs_cmd_version_help(FILE *out);

#endif
