/* fuzz_watttime: the WattTime provider end to end over scripted replies
 * (login, region-from-loc for "lat,lon" zones, forecast, error bodies, a 401
 * that forces a new login): token handling, unit conversion and the
 * forecast parser. A fresh provider per input keeps no token or region
 * cache between inputs. See fz_provider_run for the layout and invariants. */
#include <stdlib.h>

#include "carbon/providers/watttime.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_quiet();
  cs_watttime_opts o = {.base_url = "http://fuzz.invalid",
                        .username = "fuzz",
                        .password = "secret",
                        .signal_type = size % 2 ? "co2_aoer" : "co2_moer"};
  cs_provider *p = NULL;
  char err[256];
  if (cs_watttime_new(&o, &p, err, sizeof(err)) != CS_OK)
    fz_fail(__FILE__, __LINE__, err);
  fz_provider_run(p, data, size);
  cs_provider_free(p);
  return 0;
}
