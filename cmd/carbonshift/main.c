/* main.c: carbonshift's entry point. It only wires: the table of
 * subcommands below, help, and usage errors (exit 2 with a one-line hint).
 * Each subcommand lives in its own cmd_<name>.c; adding one is a row here
 * and a file. */
#include <stdio.h>
#include <string.h>

#include "cmd/carbonshift/cmd_config.h"
#include "cmd/carbonshift/cmd_intensity.h"
#include "cmd/carbonshift/cmd_serve.h"
#include "cmd/carbonshift/cmd_simulate.h"
#include "cmd/carbonshift/cmd_version.h"

typedef struct subcommand {
  const char *name;
  const char *summary;               /* NULL: hidden from the command list */
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
  void (*help)(FILE *out);
} subcommand;

static const subcommand commands[] = {
    {"serve", "run the scheduler extender service", cs_cmd_serve,
     cs_cmd_serve_help},
    {"simulate", "replay jobs over carbon traces: what would it save?",
     cs_cmd_simulate, cs_cmd_simulate_help},
    {"intensity", "print a zone's grid carbon intensity and forecast",
     cs_cmd_intensity, cs_cmd_intensity_help},
    {"version", "print the version and library versions", cs_cmd_version,
     cs_cmd_version_help},
    {"config-reference", NULL, cs_cmd_config_reference,
     cs_cmd_config_reference_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const subcommand *find(const char *name)
{
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(commands[i].name, name))
      return &commands[i];
  return NULL;
}

static void usage(FILE *out)
{
  fputs("carbonshift: a carbon-aware scheduler extender for Kubernetes\n\n"
        "Usage: carbonshift <command> [flags]\n\nCommands:\n",
        out);
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (commands[i].summary)
      fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fputs("  help       this text; 'help <command>' for one command, 'help "
        "config'\n             for every setting\n",
        out);
}

static int help(int argc, char **argv)
{
  if (argc < 2) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "config"))
    return cs_cmd_config_reference(1, argv);
  const subcommand *c = find(argv[1]);
  if (!c) {
    fprintf(stderr,
            "carbonshift help: unknown command \"%s\"; see 'carbonshift "
            "help'\n",
            argv[1]);
    return 2;
  }
  c->help(stdout);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
    return help(argc - 1, argv + 1);
  if (!strcmp(cmd, "--version"))
    cmd = "version";
  const subcommand *c = find(cmd);
  if (!c) {
    fprintf(stderr,
            "carbonshift: unknown command \"%s\"; see 'carbonshift --help'\n",
            cmd);
    return 2;
  }
  return c->run(argc - 1, argv + 1);
}
