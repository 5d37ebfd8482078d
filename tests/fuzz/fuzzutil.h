/* fuzzutil.h: what the libFuzzer targets share: quiet logs, an in-memory
 * file with a path (for parsers that read files), a scripted stand-in for
 * the HTTP client (cs_http_get is wrapped at link time, so no target ever
 * reaches the network), splitting one input into parts, and a checked
 * abort for broken invariants.
 * Thread-safe: no; a fuzz target runs one input at a time.
 * Ownership: the file path and the scripted replies borrow the input for
 * the duration of one LLVMFuzzerTestOneInput call. */
#ifndef FUZZUTIL_H
#define FUZZUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry points each target defines (Initialize optionally). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Sends the service's log lines to /dev/null (once per process). */
void fz_quiet(void);

/* Replaces the content of the process's in-memory file with data[0..len)
 * and returns its path ("/proc/self/fd/N"), valid until the next call. */
const char *fz_memfile(const uint8_t *data, size_t len);

/* Splits data at each FZ_SEP byte into at most `max` parts (the last part
 * keeps any further separators); returns the count (at least 1). */
#define FZ_SEP 0x1e
typedef struct fz_part {
  const uint8_t *p;
  size_t n;
} fz_part;
size_t fz_split(const uint8_t *data, size_t len, fz_part *parts, size_t max);

/* Scripts the replies the wrapped cs_http_get gives, in order: each part's
 * first byte picks the status (fz_status), the rest is the body; once the
 * script is used up every request fails as a transport error. */
void fz_http_script(const fz_part *replies, size_t n);
/* Requests served since the last fz_http_script. */
size_t fz_http_calls(void);
/* The status a selector byte stands for: mostly 200, else 401, 404, 429,
 * 500, 503. */
long fz_status(uint8_t selector);

/* Node facts parameters over the built-in GPU catalog and zone map, with
 * a default PUE of 1.2, per-zone PUEs for DE and FR and a 5-year lifetime
 * (built once, never freed). */
struct cs_facts_params;
const struct cs_facts_params *fz_facts_params(void);

/* Checks that the facts from the fields the codec scanned out of a Node's
 * bytes raw[0..len) equal those cs_node_facts_read gives from the cJSON
 * tree of the same bytes, with metadata and allocatable taken as the codec
 * takes them: the first `metadata`, and the first `allocatable` object of
 * any `status` object. */
struct cs_node_fields;
void fz_check_node_fields(const char *raw, size_t len,
                          const struct cs_node_fields *fields);

/* A Kubernetes API client for a server that is never contacted (token
 * auth, Event sender off, 64 KiB watch lines), built once. */
struct cs_kube;
struct cs_kube *fz_kube(void);

/* Drives a carbon provider with one input: part 0 is the zone (as a user
 * writes it in a label or the configuration), the other parts are the
 * scripted HTTP replies; `current` and then `forecast` are asked, each
 * taking the next replies. Checks what both return: finite, non-negative
 * average intensities, strictly increasing series overlapping the window,
 * the zone and provider named. */
struct cs_provider;
void fz_provider_run(struct cs_provider *p, const uint8_t *data, size_t size);

/* Aborts with a message (an invariant of the parser does not hold). */
#define FZ_ASSERT(cond)                                                        \
  do {                                                                         \
    if (!(cond))                                                               \
      fz_fail(__FILE__, __LINE__, #cond);                                      \
  } while (0)
_Noreturn void fz_fail(const char *file, int line, const char *what);

/* A NUL-terminated copy of data[0..len) (free it). */
char *fz_strndup(const uint8_t *data, size_t len);

/* Whether `decoded`, a string read back from one of carbonshift's JSON
 * replies, is `raw` from the request: the same bytes, except that every
 * byte of raw that begins no valid UTF-8 sequence reads back as U+FFFD
 * (cs_json_quote writes no invalid UTF-8; Go's decoder would read such a
 * byte the same way). */
bool fz_reads_back_as(const char *raw, const char *decoded);

#endif
