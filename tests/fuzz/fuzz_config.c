/* fuzz_config: the JSON configuration file (--config or
 * $CARBONSHIFT_CONFIG) through cs_config_load with an otherwise empty
 * environment, then --print-config. Invariants: every problem is one
 * "config: " line, a clean load reports none, the printed configuration is
 * a JSON object with every secret redacted. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/carbonshift/config.h"
#include "tests/fuzz/fuzzutil.h"

static void check_lines(const cs_buf *b)
{
  if (!b->len)
    return;
  const char *p = b->data, *end = b->data + b->len;
  while (p < end) {
    FZ_ASSERT(strncmp(p, "config: ", 8) == 0);
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    FZ_ASSERT(nl != NULL);
    p = nl + 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fz_quiet();
  char var[96];
  snprintf(var, sizeof(var), "CARBONSHIFT_CONFIG=%s", fz_memfile(data, size));
  char *envp[] = {var, NULL};
  cs_buf errors, warnings, out;
  cs_buf_init(&errors, 0);
  cs_buf_init(&warnings, 0);
  cs_buf_init(&out, 0);
  cs_config *c = NULL;
  cs_err rc = cs_config_load(NULL, envp, &c, &errors, &warnings);
  FZ_ASSERT(c != NULL);
  FZ_ASSERT((rc == CS_OK) == (errors.len == 0));
  check_lines(&errors);
  cs_config_print(c, &out);
  FZ_ASSERT(cs_buf_error(&out) == CS_OK);
  cJSON *j = cJSON_ParseWithLength(out.data, out.len);
  FZ_ASSERT(cJSON_IsObject(j));
  static const char *const secrets[] = {"electricitymaps.token",
                                        "watttime.password"};
  for (size_t i = 0; i < 2; i++) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, secrets[i]);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "value");
    FZ_ASSERT(cJSON_IsNull(v) ||
              (cJSON_IsString(v) && strcmp(v->valuestring, "<redacted>") == 0));
  }
  cJSON_Delete(j);
  cs_config_free(c);
  cs_buf_free(&errors);
  cs_buf_free(&warnings);
  cs_buf_free(&out);
  return 0;
}
