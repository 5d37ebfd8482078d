#include "scheduler/tls_certs.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carbon/util/alloc.h"
#include "carbon/util/buf.h"
#include "carbon/util/clock.h"
#include "carbon/util/log.h"

#define MAX_PEM_BYTES (1u << 20)
#define MAX_CHAIN 16
#define DEFAULT_CHECK_NS (10ull * 1000000000ull)

typedef struct pair {
  gnutls_pcert_st pcerts[MAX_CHAIN];
  unsigned n;
  gnutls_privkey_t key;
  struct pair *older; /* kept: a handshake may still hold it */
} pair;

/* What a file is now: a rotated Secret is a new file (new inode), an
 * edit in place a new size or modification time. */
typedef struct file_id {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
} file_id;

struct cs_tls_certs {
  char *cert_path, *key_path;
  uint64_t check_ns;
  pthread_mutex_t mu; /* guards current and the file ids */
  pair *current;
  file_id cert_id, key_id;
  _Atomic uint64_t next_check_ns;
  atomic_bool checking; /* one handshake looks at the files at a time */
  atomic_uint reloads;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen)
    vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

cs_err cs_tls_read_pem(const char *what, const char *path, char **out,
                       char *err, size_t errlen)
{
  cs_err rc = CS_OK;
  cs_buf b;
  cs_buf_init(&b, MAX_PEM_BYTES);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
    rc = CS_EIO;
    goto out;
  }
  for (;;) {
    char chunk[8192];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      set_err(err, errlen, "cannot read %s %s: %s", what, path,
              strerror(errno));
      rc = CS_EIO;
      goto out;
    }
    if (n == 0)
      break;
    cs_buf_append(&b, chunk, (size_t)n);
  }
  if (cs_buf_error(&b)) {
    set_err(err, errlen, "%s %s is larger than %u bytes", what, path,
            MAX_PEM_BYTES);
    rc = CS_ETOOBIG;
    goto out;
  }
  if (b.len == 0) {
    set_err(err, errlen, "%s %s is empty", what, path);
    rc = CS_EINVAL;
    goto out;
  }
  *out = cs_buf_release(&b, NULL);
out:
  if (fd >= 0)
    close(fd);
  cs_buf_free(&b);
  return rc;
}

static void pair_free(pair *p)
{
  while (p) {
    pair *older = p->older;
    for (unsigned i = 0; i < p->n; i++)
      gnutls_pcert_deinit(&p->pcerts[i]);
    if (p->key)
      gnutls_privkey_deinit(p->key);
    free(p);
    p = older;
  }
}

static bool file_id_of(const char *path, file_id *id)
{
  struct stat st;
  if (stat(path, &st) != 0)
    return false;
  *id = (file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  return true;
}

static bool same_file(const file_id *a, const file_id *b)
{
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec &&
         a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads and checks the pair: the key must match the first certificate,
 * as GnuTLS checks when it is given both. */
static cs_err load_pair(const char *cert_path, const char *key_path, pair **out,
                        char *err, size_t errlen)
{
  char *cert_pem = NULL, *key_pem = NULL;
  pair *p = NULL;
  gnutls_certificate_credentials_t check = NULL;
  cs_err rc =
      cs_tls_read_pem("TLS certificate", cert_path, &cert_pem, err, errlen);
  if (!rc)
    rc = cs_tls_read_pem("TLS key", key_path, &key_pem, err, errlen);
  if (rc)
    goto out;
  gnutls_datum_t cert = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
  gnutls_datum_t key = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
  p = cs_calloc(1, sizeof(*p));
  unsigned n = MAX_CHAIN;
  int g = gnutls_certificate_allocate_credentials(&check);
  if (g >= 0)
    g = gnutls_certificate_set_x509_key_mem(check, &cert, &key,
                                            GNUTLS_X509_FMT_PEM);
  if (g >= 0)
    g = gnutls_pcert_list_import_x509_raw(p->pcerts, &n, &cert,
                                          GNUTLS_X509_FMT_PEM, 0);
  if (g >= 0) {
    p->n = n; /* only imported certificates are freed with the pair */
    g = gnutls_privkey_init(&p->key);
  }
  if (g >= 0)
    g = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL,
                                       0);
  if (g < 0) {
    set_err(err, errlen,
            "TLS certificate %s and key %s are not a usable PEM pair "
            "(an unencrypted key matching the first certificate): %s",
            cert_path, key_path, gnutls_strerror(g));
    rc = CS_EINVAL;
    goto out;
  }
  *out = p;
  p = NULL;
out:
  pair_free(p);
  if (check)
    gnutls_certificate_free_credentials(check);
  free(cert_pem);
  free(key_pem);
  return rc;
}

cs_err cs_tls_certs_new(const char *cert_path, const char *key_path,
                        uint64_t check_ns, cs_tls_certs **out, char *err,
                        size_t errlen)
{
  *out = NULL;
  pair *p = NULL;
  /* The ids first: a change while loading is then seen at the next check. */
  file_id cid = {0}, kid = {0};
  file_id_of(cert_path, &cid);
  file_id_of(key_path, &kid);
  cs_err rc = load_pair(cert_path, key_path, &p, err, errlen);
  if (rc)
    return rc;
  cs_tls_certs *c = cs_calloc(1, sizeof(*c));
  c->cert_path = cs_strdup(cert_path);
  c->key_path = cs_strdup(key_path);
  c->check_ns = check_ns ? check_ns : DEFAULT_CHECK_NS;
  pthread_mutex_init(&c->mu, NULL);
  c->current = p;
  c->cert_id = cid;
  c->key_id = kid;
  atomic_store(&c->next_check_ns, cs_clock_mono_ns() + c->check_ns);
  *out = c;
  return CS_OK;
}

void cs_tls_certs_free(cs_tls_certs *c)
{
  if (!c)
    return;
  pair_free(c->current);
  pthread_mutex_destroy(&c->mu);
  free(c->cert_path);
  free(c->key_path);
  free(c);
}

/* Loads the pair again when either file changed since it was last read,
 * successfully or not: a bad pair is logged once, not at every check. */
static void maybe_reload(cs_tls_certs *c)
{
  file_id cid, kid;
  if (!file_id_of(c->cert_path, &cid) || !file_id_of(c->key_path, &kid))
    return; /* mid-rotation, or gone: keep serving what we have */
  pthread_mutex_lock(&c->mu);
  bool same = same_file(&cid, &c->cert_id) && same_file(&kid, &c->key_id);
  pthread_mutex_unlock(&c->mu);
  if (same)
    return;
  char err[512];
  pair *p = NULL;
  cs_err rc = load_pair(c->cert_path, c->key_path, &p, err, sizeof(err));
  pthread_mutex_lock(&c->mu);
  c->cert_id = cid;
  c->key_id = kid;
  if (!rc) {
    p->older = c->current;
    c->current = p;
  }
  pthread_mutex_unlock(&c->mu);
  cs_buf *l = cs_log_begin(0, rc ? "Cannot reload the TLS certificate; the "
                                   "one in use is kept"
                                 : "TLS certificate reloaded");
  cs_json_str(l, "certFile", c->cert_path);
  cs_json_str(l, "keyFile", c->key_path);
  if (rc)
    cs_json_str(l, "err", err);
  cs_log_end(l);
  if (!rc)
    atomic_fetch_add(&c->reloads, 1);
}

void cs_tls_certs_get(cs_tls_certs *c, gnutls_pcert_st **pcert,
                      unsigned *npcert, gnutls_privkey_t *key)
{
  uint64_t now = cs_clock_mono_ns();
  if (now >= atomic_load(&c->next_check_ns) &&
      !atomic_exchange(&c->checking, true)) {
    atomic_store(&c->next_check_ns, now + c->check_ns);
    maybe_reload(c);
    atomic_store(&c->checking, false);
  }
  pthread_mutex_lock(&c->mu);
  *pcert = c->current->pcerts;
  *npcert = c->current->n;
  *key = c->current->key;
  pthread_mutex_unlock(&c->mu);
}

unsigned cs_tls_certs_reloads(const cs_tls_certs *c)
{
  return atomic_load(&c->reloads);
}
