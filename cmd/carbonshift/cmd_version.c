#include "cmd/carbonshift/cmd_version.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <string.h>

#include "carbon/util/version.h"

void cs_cmd_version_help(FILE *out)
{
  fputs("Usage: carbonshift version\n\n"
        "Prints the carbonshift version and the versions of the libraries "
        "it runs\nwith (libmicrohttpd, cJSON, libcurl, GnuTLS, OpenSSL).\n",
        out);
}

int cs_cmd_version(int argc, char **argv)
{
  if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    cs_cmd_version_help(stdout);
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr,
            "carbonshift version: unexpected argument \"%s\"; see "
            "'carbonshift help version'\n",
            argv[1]);
    return 2;
  }
  printf("carbonshift %s\n", cs_version);
  printf("libmicrohttpd %s\n", MHD_get_version());
  printf("cJSON %s\n", cJSON_Version());
  printf("libcurl %s\n", curl_version());
  printf("GnuTLS %s\n", gnutls_check_version(NULL));
  printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION));
  return 0;
}
