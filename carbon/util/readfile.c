#include "carbon/util/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carbon/util/alloc.h"

static const char *kind_of(mode_t m)
{
  return S_ISDIR(m)    ? "a directory"
         : S_ISFIFO(m) ? "a FIFO"
         : S_ISCHR(m)  ? "a character device"
         : S_ISBLK(m)  ? "a block device"
         : S_ISSOCK(m) ? "a socket"
                       : "not a plain file";
}

/* "1 MiB", "64 KiB" or "4096 bytes". */
static void size_text(size_t n, char *out, size_t cap)
{
  if (n >= (1u << 20) && n % (1u << 20) == 0)
    snprintf(out, cap, "%zu MiB", n >> 20);
  else if (n >= 1024 && n % 1024 == 0)
    snprintf(out, cap, "%zu KiB", n >> 10);
  else
    snprintf(out, cap, "%zu bytes", n);
}

static cs_err too_big(size_t max, char *why, size_t whycap)
{
  char limit[32];
  size_text(max, limit, sizeof(limit));
  snprintf(why, whycap, "is larger than %s", limit);
  return CS_ETOOBIG;
}

cs_err cs_check_file(const char *path, char *why, size_t whycap)
{
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(why, whycap, "%s", strerror(errno));
    return CS_EIO;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, whycap, "is %s, not a regular file", kind_of(st.st_mode));
    return CS_EINVAL;
  }
  if (access(path, R_OK) != 0) {
    snprintf(why, whycap, "%s", strerror(errno));
    return CS_EIO;
  }
  return CS_OK;
}

cs_err cs_read_file(const char *path, size_t max, char **out, size_t *len,
                    char *why, size_t whycap)
{
  *out = NULL;
  if (len)
    *len = 0;
  /* What the path is, before opening it: opening some devices does
   * something. The open then uses O_NONBLOCK (a FIFO swapped in meanwhile
   * would otherwise wait for a writer) and fstat checks again. */
  cs_err checked = cs_check_file(path, why, whycap);
  if (checked != CS_OK)
    return checked;
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(why, whycap, "%s", strerror(errno));
    return CS_EIO;
  }
  cs_err rc = CS_OK;
  char *data = NULL;
  if (fstat(fd, &st) != 0) {
    snprintf(why, whycap, "%s", strerror(errno));
    rc = CS_EIO;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, whycap, "is %s, not a regular file", kind_of(st.st_mode));
    rc = CS_EINVAL;
    goto out;
  }
  if (st.st_size > 0 && (unsigned long long)st.st_size > max) {
    rc = too_big(max, why, whycap);
    goto out;
  }
  /* The size may change while we read (a file being rewritten): read up
   * to one byte past the limit to tell. */
  size_t n = 0, alloc = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
  if (alloc > max + 2)
    alloc = max + 2;
  data = cs_malloc(alloc);
  for (;;) {
    if (n + 1 >= alloc) {
      if (n > max)
        break;
      alloc = alloc * 2 > max + 2 ? max + 2 : alloc * 2;
      data = cs_realloc(data, alloc);
    }
    ssize_t r = read(fd, data + n, alloc - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      snprintf(why, whycap, "%s", strerror(errno));
      rc = CS_EIO;
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > max) {
    rc = too_big(max, why, whycap);
    goto out;
  }
  data[n] = '\0';
  *out = data;
  data = NULL;
  if (len)
    *len = n;
out:
  free(data);
  close(fd);
  return rc;
}

size_t cs_text_nul_line(const char *data, size_t len)
{
  const char *nul = memchr(data, '\0', len);
  if (!nul)
    return 0;
  size_t line = 1;
  for (const char *p = data; p < nul; p++)
    line += *p == '\n';
  return line;
}

char *cs_text_skip_bom(char *data)
{
  return strncmp(data, "\xef\xbb\xbf", 3) ? data : data + 3;
}
