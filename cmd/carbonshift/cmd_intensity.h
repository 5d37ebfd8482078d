/* cmd_intensity.h: `carbonshift intensity`, which fetches the grid carbon
 * intensity for one zone synchronously from the configured providers and
 * prints it (text, or one JSON object with --json).
 * Thread-safe: no; it is a whole command run from main.
 * Ownership: argv is borrowed. */
#ifndef CS_CMD_INTENSITY_H
#define CS_CMD_INTENSITY_H

#include <stdio.h>

void cs_cmd_intensity_help(FILE *out);
/* argv[0] is "intensity". Returns the process exit status: 0 printed, 1 no
 * value (or no forecast when one was asked for), 2 usage or configuration
 * error. */
int cs_cmd_intensity(int argc, char **argv);

#endif
