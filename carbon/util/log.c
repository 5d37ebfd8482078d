#include "carbon/util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "carbon/util/alloc.h"

static atomic_int verbosity = 0;
static atomic_int out_fd = STDOUT_FILENO;
/* Held across a line's writes: a pipe (a container's stdout) takes a write
 * whole only up to PIPE_BUF, and a Decision line is far longer, so without
 * it another thread's line could land inside one being written. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

void cs_log_set_verbosity(int v)
{
  atomic_store(&verbosity, v);
}

int cs_log_verbosity(void)
{
  return atomic_load(&verbosity);
}

void cs_log_set_fd(int fd)
{
  atomic_store(&out_fd, fd);
}

cs_buf *cs_log_begin(int v, const char *msg)
{
  if (v > atomic_load(&verbosity))
    return NULL;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  cs_buf *line = cs_malloc(sizeof(*line));
  /* A cap keeps one runaway line from taking the process down; the decision
   * line for 5,000 nodes is well under it. */
  cs_buf_init(line, 64u << 20);
  cs_json_open(line, NULL, '{');
  cs_json_num(line, "ts", (double)ts.tv_sec + ts.tv_nsec / 1e9, 3);
  cs_json_int(line, "v", v);
  cs_json_str(line, "msg", msg);
  return line;
}

void cs_log_end(cs_buf *line)
{
  if (!line)
    return;
  cs_json_close(line, '}');
  cs_buf_putc(line, '\n');
  if (cs_buf_error(line) == CS_OK) {
    int fd = atomic_load(&out_fd);
    const char *p = line->data;
    size_t left = line->len;
    /* One call where the kernel allows, continued if the write is short;
     * whole lines only, one at a time. */
    pthread_mutex_lock(&write_mu);
    while (left) {
      ssize_t n = write(fd, p, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      p += n;
      left -= (size_t)n;
    }
    pthread_mutex_unlock(&write_mu);
  }
  cs_buf_free(line);
  free(line);
}

void cs_log_info(const char *msg)
{
  cs_log_end(cs_log_begin(0, msg));
}

void cs_log_error(const char *msg, const char *err)
{
  cs_buf *l = cs_log_begin(0, msg);
  if (l && err)
    cs_json_str(l, "err", err);
  cs_log_end(l);
}
