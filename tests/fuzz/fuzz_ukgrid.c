/* fuzz_ukgrid: the GB Carbon Intensity provider end to end over scripted
 * replies (national and regional, `data` as an array or an object, error
 * bodies), with zones as users write them (GB, GB-REGION-n,
 * GB-POSTCODE-x, or a configured name). See fz_provider_run for the layout
 * and invariants. */
#include <stdlib.h>

#include "carbon/providers/ukgrid.h"
#include "tests/fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_quiet();
  static const cs_ukgrid_zone zones[] = {{"london", "regionid:13"},
                                         {"office", "postcode:SW1A"},
                                         {"uk", "national"}};
  cs_ukgrid_opts o = {
      .base_url = "http://fuzz.invalid/api", .zones = zones, .nzones = 3};
  cs_provider *p = NULL;
  char err[256];
  if (cs_ukgrid_new(&o, &p, err, sizeof(err)) != CS_OK)
    fz_fail(__FILE__, __LINE__, err);
  fz_provider_run(p, data, size);
  cs_provider_free(p);
  return 0;
}
