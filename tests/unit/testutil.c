#include "tests/unit/testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

const char *tu_shared_dir(void)
{
  const char *d = getenv("CS_SHARED");
  return d && *d ? d : "../shared";
}

char *tu_read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  ck_assert(buf != NULL);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  if (len)
    *len = (size_t)n;
  return buf;
}

char *tu_read_shared(const char *rel, size_t *len)
{
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", tu_shared_dir(), rel);
  return tu_read_file(path, len);
}

unsigned tu_slowdown(void)
{
  const char *v = getenv("CS_VALGRIND");
  return v && *v ? 50 : 1;
}
