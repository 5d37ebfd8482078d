#include "cmd/carbonshift/cmd_config.h"

#include <string.h>

#include "carbon/util/buf.h"
#include "cmd/carbonshift/config.h"

void cs_cmd_config_reference_help(FILE *out)
{
  fputs("Usage: carbonshift config-reference\n\n"
        "Prints the Markdown table of every setting: name, environment "
        "variable,\nflag, type, default, allowed values and meaning (the "
        "table in\ndocs/configuration.md). Settings come from defaults < "
        "the JSON file\n(--config FILE or $CARBONSHIFT_CONFIG) < "
        "environment < flags.\n",
        out);
}

int cs_cmd_config_reference(int argc, char **argv)
{
  if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    cs_cmd_config_reference_help(stdout);
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr,
            "carbonshift config-reference: unexpected argument \"%s\"; see "
            "'carbonshift help config-reference'\n",
            argv[1]);
    return 2;
  }
  cs_buf out;
  cs_buf_init(&out, 1 << 20);
  cs_config_reference(&out);
  int rc = 0;
  if (cs_buf_error(&out) != CS_OK ||
      fwrite(out.data, 1, out.len, stdout) != out.len)
    rc = 1;
  cs_buf_free(&out);
  return rc;
}
