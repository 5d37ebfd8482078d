/* main.c: carbonshift's entry point. It only wires: the table of
 * subcommands below, help, and usage errors (exit 2 with a one-line hint).
 * Each subcommand lives in its own cmd_<name>.c; adding one is a row here
 * and a file. Every command, help included, prints its usage on stdout and
 * exits 0 for `carbonshift help <command>` and for `-h` or `--help` among
 * its arguments (each command's own parser handles those). */
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

static int help(int argc, char **argv);
static void help_help(FILE *out);

static const subcommand commands[] = {
    {"serve", "run the scheduler extender service", cs_cmd_serve,
     cs_cmd_serve_help},
    {"simulate", "replay jobs over carbon traces: what would it save?",
     cs_cmd_simulate, cs_cmd_simulate_help},
    {"intensity", "print a zone's grid carbon intensity and forecast",
     cs_cmd_intensity, cs_cmd_intensity_help},
    {"version", "print the version and library versions", cs_cmd_version,
     cs_cmd_version_help},
    {"config-reference", "print every setting as a Markdown table",
     cs_cmd_config_reference, cs_cmd_config_reference_help},
    {"help", "this text; 'help COMMAND' for one command", help, help_help},
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
      fprintf(out, "  %-17s %s\n", commands[i].name, commands[i].summary);
  fputs("\nEvery command also takes -h or --help. 'carbonshift help config' "
        "prints\nevery setting, as config-reference does.\n",
        out);
}

static void help_help(FILE *out)
{
  fputs("Usage: carbonshift help [COMMAND | config]\n\n"
        "Without an argument, lists the commands. With a command, prints its "
        "usage,\nas 'carbonshift COMMAND --help' does. 'help config' prints "
        "every setting\n(the table of docs/configuration.md), as "
        "'carbonshift config-reference'\ndoes.\n",
        out);
}

/* argv[0] is "help" (or -h, --help). */
static int help(int argc, char **argv)
{
  if (argc < 2) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    help_help(stdout);
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
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
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
