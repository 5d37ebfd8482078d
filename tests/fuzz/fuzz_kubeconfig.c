/* fuzz_kubeconfig: a kubeconfig file (YAML, read with libyaml) through
 * cs_kube_new, as `carbonshift serve` loads it: contexts, clusters and
 * users resolved by name, base64 certificate data, token and token file.
 * Events are off and nothing is queued, so the sender thread that
 * cs_kube_new starts sends nothing and is stopped by cs_kube_free.
 * Invariants: a failure says why; a client that loads has an http(s)
 * server without a trailing slash, a namespace and the chosen context. */
#include <string.h>

#include "scheduler/kube.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_quiet();
  cs_kube_config c;
  cs_kube_config_defaults(&c);
  c.mode = CS_KUBE_KUBECONFIG;
  c.kubeconfig = fz_memfile(data, size);
  c.events_enabled = false;
  char err[512] = "";
  cs_kube *k = NULL;
  if (cs_kube_new(&c, &k, err, sizeof(err)) != CS_OK) {
    FZ_ASSERT(k == NULL && err[0]);
    return 0;
  }
  cs_kube_info info;
  cs_kube_get_info(k, &info);
  FZ_ASSERT(strncmp(info.server, "http://", 7) == 0 ||
            strncmp(info.server, "https://", 8) == 0);
  size_t n = strlen(info.server);
  FZ_ASSERT(n > 0 && info.server[n - 1] != '/');
  FZ_ASSERT(info.ns[0] && info.context[0] && !info.in_cluster);
  FZ_ASSERT(info.auth <= CS_KUBE_AUTH_CLIENT_CERT);
  cs_kube_free(k);
  return 0;
}
