#include "carbon/util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void out_of_memory(size_t n)
{
  char line[160];
  int len = snprintf(line, sizeof(line),
                     "{\"v\":0,\"msg\":\"Out of memory\",\"bytes\":%zu}\n", n);
  if (len > 0)
    (void)!write(STDERR_FILENO, line, (size_t)len);
  abort();
}

void *cs_malloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    out_of_memory(n);
  return p;
}

void *cs_calloc(size_t count, size_t size)
{
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p)
    out_of_memory(count * size);
  return p;
}

void *cs_realloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    out_of_memory(n);
  return q;
}

char *cs_strndup(const char *s, size_t n)
{
  char *d = cs_malloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *cs_strdup(const char *s)
{
  return s ? cs_strndup(s, strlen(s)) : NULL;
}

char *cs_asprintf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    out_of_memory(0);
  char *s = cs_malloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}
