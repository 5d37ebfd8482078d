/* cmd_simulate.h: `carbonshift simulate`: replays jobs over carbon traces on
 * a described cluster under the agnostic, carbonshift, oracle and bound
 * policies and reports what each emits (see sim_engine.h, sim_bound.h).
 * Thread-safe: no (a command runs on the main thread).
 * Ownership: argv is borrowed. */
#ifndef CS_CMD_SIMULATE_H
#define CS_CMD_SIMULATE_H

#include <stdio.h>

int cs_cmd_simulate(int argc, char **argv);
void cs_cmd_simulate_help(FILE *out);

#endif
