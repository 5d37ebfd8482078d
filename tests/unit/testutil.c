#include "tests/unit/testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* Reads a temporary file back whole, from its start, and closes it. */
static char *slurp(FILE *f)
{
  long n = ftell(f);
  rewind(f);
  char *s = calloc(1, (size_t)n + 1);
  ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return s;
}

int tu_run_command(int (*cmd)(int, char **), int argc, char **argv, char **out,
                   char **err)
{
  fflush(stdout);
  fflush(stderr);
  FILE *o = tmpfile(), *e = err ? tmpfile() : NULL;
  ck_assert(o != NULL && (!err || e != NULL));
  int so = dup(STDOUT_FILENO), se = err ? dup(STDERR_FILENO) : -1;
  dup2(fileno(o), STDOUT_FILENO);
  if (e)
    dup2(fileno(e), STDERR_FILENO);
  int rc = cmd(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(so, STDOUT_FILENO);
  close(so);
  if (e) {
    dup2(se, STDERR_FILENO);
    close(se);
  }
  fseek(o, 0, SEEK_END);
  *out = slurp(o);
  if (e) {
    fseek(e, 0, SEEK_END);
    *err = slurp(e);
  }
  return rc;
}
