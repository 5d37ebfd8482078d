#include "tests/fuzz/fuzzutil.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "carbon/signal.h"
#include "carbon/util/alloc.h"
#include "carbon/util/jtree.h"
#include "carbon/util/http.h"
#include "carbon/util/log.h"
#include "scheduler/kube.h"
#include "scheduler/node_facts.h"

void fz_quiet(void)
{
  static bool done;
  if (done)
    return;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    cs_log_set_fd(fd);
  done = true;
}

const char *fz_memfile(const uint8_t *data, size_t len)
{
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0)
      fz_fail(__FILE__, __LINE__, "memfd_create");
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0)
    fz_fail(__FILE__, __LINE__, "ftruncate");
  size_t off = 0;
  while (off < len) {
    ssize_t w = pwrite(fd, data + off, len - off, (off_t)off);
    if (w <= 0)
      fz_fail(__FILE__, __LINE__, "pwrite");
    off += (size_t)w;
  }
  return path;
}

size_t fz_split(const uint8_t *data, size_t len, fz_part *parts, size_t max)
{
  size_t n = 0, start = 0;
  for (size_t i = 0; i < len && n + 1 < max; i++) {
    if (data[i] == FZ_SEP) {
      parts[n++] = (fz_part){data + start, i - start};
      start = i + 1;
    }
  }
  parts[n++] = (fz_part){data + start, len - start};
  return n;
}

long fz_status(uint8_t selector)
{
  static const long other[] = {401, 404, 429, 500, 503};
  /* Bytes below 0x80 (every printable seed) mean 200. */
  return selector < 0x80 ? 200 : other[selector % 5];
}

const cs_facts_params *fz_facts_params(void)
{
  static const cs_zone_pue zone_pue[] = {{"DE", 1.3}, {"FR", 1.1}};
  static cs_facts_params p;
  if (!p.catalog)
    p = (cs_facts_params){.catalog = cs_gpu_catalog_new(),
                          .zones = cs_zone_map_new(),
                          .default_pue = 1.2,
                          .zone_pue = zone_pue,
                          .nzone_pue = 2,
                          .default_lifetime_s = 5 * 365 * 86400.0};
  return &p;
}

static const cJSON *member(const cJSON *obj, const char *name,
                           const cJSON *after)
{
  for (const cJSON *c = after ? after->next : obj->child; c; c = c->next)
    if (c->string && strcmp(c->string, name) == 0)
      return c;
  return NULL;
}

void fz_check_node_fields(const char *raw, size_t len,
                          const cs_node_fields *fields)
{
  cJSON *node = cs_jtree_parse(raw, len, NULL);
  FZ_ASSERT(cJSON_IsObject(node));
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  /* The first `allocatable` of any status member decides: an object is
   * read, null is none, anything else is a problem. */
  const cJSON *alloc = NULL;
  bool found = false;
  for (const cJSON *st = member(node, "status", NULL); st && !found;
       st = member(node, "status", st)) {
    const cJSON *a =
        cJSON_IsObject(st) ? member(st, "allocatable", NULL) : NULL;
    if (a) {
      found = true;
      alloc = cJSON_IsNull(a) ? NULL : a;
    }
  }
  cs_node_facts tree, span;
  cs_err rc = cs_node_facts_read(fz_facts_params(), meta, alloc, &tree);
  FZ_ASSERT(cs_node_facts_from_fields(fz_facts_params(), fields, &span) == rc);
  FZ_ASSERT(strcmp(span.name, tree.name) == 0);
  FZ_ASSERT(strcmp(span.problems, tree.problems) == 0);
  FZ_ASSERT(strcmp(span.zone, tree.zone) == 0);
  FZ_ASSERT(span.zone_source == tree.zone_source);
  FZ_ASSERT(span.gpu == tree.gpu && span.gpus == tree.gpus);
  FZ_ASSERT(strcmp(span.gpu_label, tree.gpu_label) == 0);
  FZ_ASSERT(strcmp(span.gpu_resource, tree.gpu_resource) == 0);
  FZ_ASSERT(span.installed_at == tree.installed_at);
  FZ_ASSERT(span.lifetime_s == tree.lifetime_s);
  FZ_ASSERT(span.embodied_kg == tree.embodied_kg);
  FZ_ASSERT(span.pue == tree.pue && span.pue_source == tree.pue_source);
  cJSON_Delete(node);
}

cs_kube *fz_kube(void)
{
  static const char kubeconfig[] = "current-context: fuzz\n"
                                   "contexts:\n"
                                   "- name: fuzz\n"
                                   "  context: {cluster: c, user: u}\n"
                                   "clusters:\n"
                                   "- name: c\n"
                                   "  cluster: {server: 'http://127.0.0.1:1'}\n"
                                   "users:\n"
                                   "- name: u\n"
                                   "  user: {token: fuzz}\n";
  static cs_kube *k;
  if (k)
    return k;
  fz_quiet();
  cs_kube_config c;
  cs_kube_config_defaults(&c);
  c.mode = CS_KUBE_KUBECONFIG;
  c.kubeconfig =
      fz_memfile((const uint8_t *)kubeconfig, sizeof(kubeconfig) - 1);
  c.events_enabled = false;
  c.max_line_bytes = 64u << 10;
  char err[512];
  if (cs_kube_new(&c, &k, err, sizeof(err)) != CS_OK)
    fz_fail(__FILE__, __LINE__, err);
  return k;
}

static const fz_part *script;
static size_t nscript, served;

void fz_http_script(const fz_part *replies, size_t n)
{
  script = replies;
  nscript = n;
  served = 0;
}

size_t fz_http_calls(void)
{
  return served;
}

cs_err __wrap_cs_http_get(const cs_http_request *req, cs_http_response *resp);

/* The stand-in for cs_http_get: the same contract (a response to free in
 * every case, the body capped at max_body), with the scripted replies. */
cs_err __wrap_cs_http_get(const cs_http_request *req, cs_http_response *resp)
{
  memset(resp, 0, sizeof(*resp));
  resp->retry_after = -1;
  cs_buf_init(&resp->body, req->max_body ? req->max_body : 4u << 20);
  /* A request URL that a zone or a response could bend (spaces, line
   * breaks, control bytes) would be a bug in the caller. */
  for (const char *c = req->url; *c; c++)
    if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
      fz_fail(__FILE__, __LINE__, "request URL with a raw control byte");
  if (served >= nscript) {
    snprintf(resp->error, sizeof(resp->error), "fuzz: no scripted reply");
    return CS_EIO;
  }
  const fz_part *r = &script[served++];
  resp->status = r->n ? fz_status(r->p[0]) : 200;
  if (r->n > 1)
    cs_buf_append(&resp->body, r->p + 1, r->n - 1);
  if (resp->status == 429 && r->n > 1)
    resp->retry_after = r->p[1] % 4;
  if (cs_buf_error(&resp->body) != CS_OK) {
    snprintf(resp->error, sizeof(resp->error), "body over the limit");
    return CS_ETOOBIG;
  }
  return CS_OK;
}

_Noreturn void fz_fail(const char *file, int line, const char *what)
{
  fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
  abort();
}

char *fz_strndup(const uint8_t *data, size_t len)
{
  char *s = cs_malloc(len + 1);
  memcpy(s, data, len);
  s[len] = '\0';
  return s;
}

bool fz_reads_back_as(const char *raw, const char *decoded)
{
  size_t n = strlen(raw), d = strlen(decoded), j = 0;
  for (size_t i = 0; i < n;) {
    size_t l = cs_utf8_len(raw + i, n - i);
    const char *want = l ? raw + i : "\xef\xbf\xbd";
    size_t wl = l ? l : 3;
    if (d - j < wl || memcmp(decoded + j, want, wl) != 0)
      return false;
    i += l ? l : 1;
    j += wl;
  }
  return j == d;
}

#define FZ_NOW 1700000000 /* 2023-11-14 */
#define FZ_FROM 946684800 /* 2000-01-01 */
#define FZ_TO 4102444800  /* 2100-01-01 */
#define FZ_MAX_REPLIES 8

void fz_provider_run(cs_provider *p, const uint8_t *data, size_t size)
{
  fz_part parts[FZ_MAX_REPLIES + 1];
  size_t n = fz_split(data, size, parts, FZ_MAX_REPLIES + 1);
  char *zone = fz_strndup(parts[0].p, parts[0].n);
  fz_http_script(parts + 1, n - 1);
  cs_signal v;
  if (p->ops->current(p, zone, FZ_NOW, &v) == CS_OK) {
    FZ_ASSERT(isfinite(v.g_per_kwh));
    FZ_ASSERT(v.type == CS_SIGNAL_MARGINAL || v.g_per_kwh >= 0);
    FZ_ASSERT(strcmp(v.zone, zone) == 0 || strlen(zone) >= sizeof(v.zone));
    FZ_ASSERT(strcmp(v.provider, p->ops->name) == 0);
    FZ_ASSERT(v.fetched_at == FZ_NOW);
  }
  cs_series s = {0};
  if (p->ops->forecast(p, zone, FZ_FROM, FZ_TO, &s) == CS_OK) {
    FZ_ASSERT(s.len > 0 && s.points != NULL);
    for (size_t i = 0; i < s.len; i++) {
      FZ_ASSERT(isfinite(s.points[i].g_per_kwh));
      FZ_ASSERT(s.type == CS_SIGNAL_MARGINAL || s.points[i].g_per_kwh >= 0);
      FZ_ASSERT(i == 0 || s.points[i].at > s.points[i - 1].at);
    }
    FZ_ASSERT(s.points[0].at < FZ_TO && cs_series_end(&s) > FZ_FROM);
    FZ_ASSERT(strcmp(s.provider, p->ops->name) == 0);
    cs_series_free(&s);
  }
  free(zone);
}
