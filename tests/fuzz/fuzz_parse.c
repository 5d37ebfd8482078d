/* fuzz_parse: the strict value parsers of carbon/util/parse.c, which read
 * annotations, labels, configuration and provider times, and the
 * Retry-After header parser of carbon/util/http.c. The first byte picks
 * the parser ('0' int, '1' double, '2' duration, '3' quantity, '4' mass,
 * '5' RFC 3339, '6' date, '7' Retry-After), the rest is the text. Invariants:
 * accepted values are finite and in the documented range, and formatted times
 * and dates parse back to the same instant. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carbon/util/http.h"
#include "carbon/util/parse.h"
#include "tests/fuzz/fuzzutil.h"

static void check_time_round_trip(int64_t t)
{
  char out[21];
  int64_t back = 0;
  /* Years 0000..9999 are the ones the format can hold. */
  if (t < -62167219200 || t > 253402300799)
    return;
  cs_format_rfc3339(t, out);
  FZ_ASSERT(strlen(out) == 20);
  FZ_ASSERT(cs_parse_rfc3339(out, &back, NULL) == CS_OK);
  FZ_ASSERT(back == t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  char *s = fz_strndup(data + 1, size - 1);
  const char *expected = NULL;
  int64_t i = 0;
  double d = 0;
  char buf[32];
  switch (data[0] % 8) {
  case 0:
    if (cs_parse_int64(s, &i, &expected) == CS_OK) {
      int64_t back = 0;
      snprintf(buf, sizeof(buf), "%lld", (long long)i);
      FZ_ASSERT(cs_parse_int64(buf, &back, NULL) == CS_OK && back == i);
    } else {
      FZ_ASSERT(expected != NULL);
    }
    break;
  case 1:
    if (cs_parse_double(s, &d, &expected) == CS_OK)
      FZ_ASSERT(isfinite(d));
    else
      FZ_ASSERT(expected != NULL);
    break;
  case 2:
    if (cs_parse_duration(s, &d, &expected) == CS_OK) {
      FZ_ASSERT(isfinite(d) && d > 0);
      cs_format_duration(d, buf);
      FZ_ASSERT(strlen(buf) < sizeof(buf));
    } else {
      FZ_ASSERT(expected != NULL);
    }
    break;
  case 3:
    if (cs_parse_quantity(s, &d, &expected) == CS_OK)
      FZ_ASSERT(isfinite(d));
    else
      FZ_ASSERT(expected != NULL);
    break;
  case 4:
    if (cs_parse_mass(s, &d, &expected) == CS_OK)
      FZ_ASSERT(isfinite(d) && d >= 0);
    else
      FZ_ASSERT(expected != NULL);
    break;
  case 5:
    if (cs_parse_rfc3339(s, &i, &expected) == CS_OK)
      check_time_round_trip(i);
    else
      FZ_ASSERT(expected != NULL);
    break;
  case 7:
    /* -1 (neither form) or a wait in seconds, never negative otherwise. */
    i = cs_http_parse_retry_after(s, 1700000000);
    FZ_ASSERT(i >= -1);
    break;
  default:
    if (cs_parse_date(s, &i, &expected) == CS_OK) {
      FZ_ASSERT(i % 86400 == 0);
      check_time_round_trip(i);
    } else {
      FZ_ASSERT(expected != NULL);
    }
    break;
  }
  free(s);
  return 0;
}
