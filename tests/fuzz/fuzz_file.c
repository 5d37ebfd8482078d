/* fuzz_file: a carbon trace file (Electricity Maps CSV export, the
 * "Time,Carbon Intensity" form, or WattTime "time,<region>") through the
 * file provider: cs_file_new loads it as the trace of zone DE, then the
 * provider answers `current` and `forecast` at instants taken from the
 * trace itself. The first byte picks the column (lca or direct) and replay
 * from the trace start or none. Invariants: a loaded trace has strictly
 * increasing times and values that are gaps (NaN) or finite and >= 0;
 * answers are finite, non-negative and strictly increasing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/providers/file.h"
#include "tests/fuzz/fuzzutil.h"

#define START 1700000000

static void check_series(const cs_series *s, bool gaps)
{
  for (size_t i = 0; i < s->len; i++) {
    double v = s->points[i].g_per_kwh;
    FZ_ASSERT((gaps && isnan(v)) || (isfinite(v) && v >= 0));
    FZ_ASSERT(i == 0 || s->points[i].at > s->points[i - 1].at);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  fz_quiet();
  const char *path = fz_memfile(data + 1, size - 1);
  const char *column = data[0] & 1 ? "direct" : NULL;
  cs_series s = {0};
  bool *est = NULL;
  char err[256] = "";
  if (cs_file_load(path, column, &s, &est, err, sizeof(err)) != CS_OK) {
    FZ_ASSERT(err[0]);
    return 0;
  }
  FZ_ASSERT(s.len >= 2);
  check_series(&s, true);
  int64_t first = s.points[0].at, last = s.points[s.len - 1].at;
  cs_series_free(&s);
  free(est);

  cs_file_trace t = {.zone = "DE", .path = path, .column = column};
  cs_file_opts o = {.traces = &t,
                    .ntraces = 1,
                    .replay_from = data[0] & 2 ? first : 0,
                    .start = START};
  cs_provider *p = NULL;
  if (cs_file_new(&o, &p, err, sizeof(err)) != CS_OK)
    fz_fail(__FILE__, __LINE__, "the trace loaded once but not twice");
  int64_t shift = o.replay_from ? START - first : 0;
  int64_t at[] = {first + shift, first + (last - first) / 2 + shift,
                  last + shift};
  for (size_t i = 0; i < 3; i++) {
    cs_signal v;
    if (p->ops->current(p, "DE", at[i], &v) == CS_OK)
      FZ_ASSERT(isfinite(v.g_per_kwh) && v.g_per_kwh >= 0);
    cs_series f = {0};
    if (p->ops->forecast(p, "DE", at[i], at[i] + 86400, &f) == CS_OK) {
      FZ_ASSERT(f.len > 0);
      check_series(&f, false);
      cs_series_free(&f);
    }
  }
  cs_provider_free(p);
  return 0;
}
