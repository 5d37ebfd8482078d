/* cmd_config.h: `carbonshift config-reference` (also `carbonshift help
 * config`): prints the Markdown table of every setting, generated from the
 * configuration table, which docs/configuration.md embeds.
 * Thread-safe: not relevant (a command run once from main).
 * Ownership: argv is borrowed. */
#ifndef CS_CMD_CONFIG_H
#define CS_CMD_CONFIG_H

#include <stdio.h>

/* Runs the command; returns the process exit status. */
int cs_cmd_config_reference(int argc, char **argv);
void cs_cmd_config_reference_help(FILE *out);

#endif
