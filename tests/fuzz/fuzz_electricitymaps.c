/* fuzz_electricitymaps: the Electricity Maps provider end to end over
 * scripted replies (latest, forecast, history, error bodies): URL building
 * from the zone, cs_remote_get_json, the point parsers and the forecast
 * assembly. See fz_provider_run for the input layout and invariants. */
#include <stdlib.h>

#include "carbon/providers/electricitymaps.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_quiet();
  cs_electricitymaps_opts o = {.base_url = "http://fuzz.invalid/v3",
                               .token = "fuzz-token",
                               .disable_estimations = size % 2};
  cs_provider *p = NULL;
  char err[256];
  if (cs_electricitymaps_new(&o, &p, err, sizeof(err)) != CS_OK)
    fz_fail(__FILE__, __LINE__, err);
  fz_provider_run(p, data, size);
  cs_provider_free(p);
  return 0;
}
