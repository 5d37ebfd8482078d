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
#include "carbon/util/readfile.h"

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

/* How the last load of a store went. A failed one is tried again at every
 * check, whether or not the files changed since: the cause may have been
 * passing (no descriptor free under a connection flood, a file read
 * half-written in place), and waiting for the next change could mean
 * waiting until the certificate in use has expired. Only a failure unlike
 * the last is logged, so a file that stays bad is logged once. Guarded by
 * the store's mutex. */
typedef struct load_state {
  bool failed;
  char err[512];
} load_state;

/* Records how a load went; true when it is news worth a log line: a
 * success, or a failure unlike the last one. */
static bool load_outcome(load_state *st, cs_err rc, const char *err)
{
  if (!rc) {
    st->failed = false;
    return true;
  }
  bool news = !st->failed || strcmp(st->err, err) != 0;
  st->failed = true;
  snprintf(st->err, sizeof(st->err), "%s", err);
  return news;
}

/* When the files are looked at again: at most once per interval, by one
 * caller (a handshake) while the others go on with what is loaded. */
typedef struct check_gate {
  uint64_t every_ns;
  _Atomic uint64_t next_ns;
  atomic_bool checking;
} check_gate;

struct cs_tls_certs {
  char *cert_path, *key_path;
  pthread_mutex_t mu; /* guards current and the file ids */
  pair *current;
  file_id cert_id, key_id;
  load_state last;
  check_gate gate;
  atomic_uint reloads;
};

/* The client CAs of one load, as a GnuTLS trust list. */
typedef struct trust {
  gnutls_x509_trust_list_t list;
  struct trust *older; /* kept: a verification may still use it */
} trust;

struct cs_tls_trust {
  char *path;
  pthread_mutex_t mu; /* guards current and id */
  trust *current;
  file_id id;
  load_state last;
  check_gate gate;
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
  char why[128];
  size_t len = 0;
  cs_err rc = cs_read_file(path, MAX_PEM_BYTES, out, &len, why, sizeof(why));
  if (rc) {
    set_err(err, errlen, "cannot read %s %s: %s", what, path, why);
    return rc;
  }
  if (len == 0) {
    free(*out);
    *out = NULL;
    set_err(err, errlen, "%s %s is empty", what, path);
    return CS_EINVAL;
  }
  return CS_OK;
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

static void gate_init(check_gate *g, uint64_t every_ns)
{
  g->every_ns = every_ns ? every_ns : DEFAULT_CHECK_NS;
  atomic_store(&g->next_ns, cs_clock_mono_ns() + g->every_ns);
  atomic_store(&g->checking, false);
}

/* True when this caller is the one to look at the files now; it then
 * calls gate_done when it has. */
static bool gate_due(check_gate *g)
{
  uint64_t now = cs_clock_mono_ns();
  if (now < atomic_load(&g->next_ns) || atomic_exchange(&g->checking, true))
    return false;
  atomic_store(&g->next_ns, now + g->every_ns);
  return true;
}

static void gate_done(check_gate *g)
{
  atomic_store(&g->checking, false);
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
  pthread_mutex_init(&c->mu, NULL);
  c->current = p;
  c->cert_id = cid;
  c->key_id = kid;
  gate_init(&c->gate, check_ns);
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
 * or the last load failed (load_state). */
static void maybe_reload(cs_tls_certs *c)
{
  file_id cid, kid;
  if (!file_id_of(c->cert_path, &cid) || !file_id_of(c->key_path, &kid))
    return; /* mid-rotation, or gone: keep serving what we have */
  pthread_mutex_lock(&c->mu);
  bool same = same_file(&cid, &c->cert_id) && same_file(&kid, &c->key_id) &&
              !c->last.failed;
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
  bool news = load_outcome(&c->last, rc, err);
  pthread_mutex_unlock(&c->mu);
  if (!news)
    return;
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
  if (gate_due(&c->gate)) {
    maybe_reload(c);
    gate_done(&c->gate);
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

/* ---- the client CA ---------------------------------------------------- */

static void trust_free(trust *t)
{
  while (t) {
    trust *older = t->older;
    gnutls_x509_trust_list_deinit(t->list, 1);
    free(t);
    t = older;
  }
}

static cs_err load_trust(const char *path, trust **out, char *err,
                         size_t errlen)
{
  char *pem = NULL;
  cs_err rc = cs_tls_read_pem("TLS client CA", path, &pem, err, errlen);
  if (rc)
    return rc;
  trust *t = cs_calloc(1, sizeof(*t));
  gnutls_datum_t ca = {(unsigned char *)pem, (unsigned)strlen(pem)};
  int g = gnutls_x509_trust_list_init(&t->list, 0);
  if (g >= 0)
    g = gnutls_x509_trust_list_add_trust_mem(t->list, &ca, NULL,
                                             GNUTLS_X509_FMT_PEM, 0, 0);
  free(pem);
  if (g <= 0) {
    set_err(err, errlen, "TLS client CA file %s holds no PEM certificate%s%s",
            path, g < 0 ? ": " : "", g < 0 ? gnutls_strerror(g) : "");
    if (t->list)
      gnutls_x509_trust_list_deinit(t->list, 1);
    free(t);
    return CS_EINVAL;
  }
  *out = t;
  return CS_OK;
}

cs_err cs_tls_trust_new(const char *ca_path, uint64_t check_ns,
                        cs_tls_trust **out, char *err, size_t errlen)
{
  *out = NULL;
  file_id id = {0};
  file_id_of(ca_path, &id); /* first, as in cs_tls_certs_new */
  trust *t = NULL;
  cs_err rc = load_trust(ca_path, &t, err, errlen);
  if (rc)
    return rc;
  cs_tls_trust *c = cs_calloc(1, sizeof(*c));
  c->path = cs_strdup(ca_path);
  pthread_mutex_init(&c->mu, NULL);
  c->current = t;
  c->id = id;
  gate_init(&c->gate, check_ns);
  *out = c;
  return CS_OK;
}

void cs_tls_trust_free(cs_tls_trust *c)
{
  if (!c)
    return;
  trust_free(c->current);
  pthread_mutex_destroy(&c->mu);
  free(c->path);
  free(c);
}

/* As maybe_reload, for the CA file. */
static void maybe_reload_trust(cs_tls_trust *c)
{
  file_id id;
  if (!file_id_of(c->path, &id))
    return;
  pthread_mutex_lock(&c->mu);
  bool same = same_file(&id, &c->id) && !c->last.failed;
  pthread_mutex_unlock(&c->mu);
  if (same)
    return;
  char err[512];
  trust *t = NULL;
  cs_err rc = load_trust(c->path, &t, err, sizeof(err));
  pthread_mutex_lock(&c->mu);
  c->id = id;
  if (!rc) {
    t->older = c->current;
    c->current = t;
  }
  bool news = load_outcome(&c->last, rc, err);
  pthread_mutex_unlock(&c->mu);
  if (!news)
    return;
  cs_buf *l = cs_log_begin(0, rc ? "Cannot reload the TLS client CA; the "
                                   "one in use is kept"
                                 : "TLS client CA reloaded");
  cs_json_str(l, "clientCAFile", c->path);
  if (rc)
    cs_json_str(l, "err", err);
  cs_log_end(l);
  if (!rc)
    atomic_fetch_add(&c->reloads, 1);
}

bool cs_tls_trust_verify(cs_tls_trust *c, const gnutls_datum_t *chain,
                         unsigned n, char *why, size_t whylen)
{
  if (gate_due(&c->gate)) {
    maybe_reload_trust(c);
    gate_done(&c->gate);
  }
  pthread_mutex_lock(&c->mu);
  gnutls_x509_trust_list_t list = c->current->list;
  pthread_mutex_unlock(&c->mu);

  gnutls_x509_crt_t crts[MAX_CHAIN];
  unsigned ncrts = 0;
  int g = 0;
  if (n > MAX_CHAIN) {
    set_err(why, whylen,
            "client certificate chain of %u certificates is longer than %d", n,
            MAX_CHAIN);
    return false;
  }
  for (; ncrts < n && g >= 0; ncrts++) {
    g = gnutls_x509_crt_init(&crts[ncrts]);
    if (g < 0)
      break;
    g = gnutls_x509_crt_import(crts[ncrts], &chain[ncrts], GNUTLS_X509_FMT_DER);
  }
  unsigned status = 0;
  if (g >= 0) {
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
    /* The profile GnuTLS's NORMAL priorities (server.c) give a session's
     * own verification: minimum key sizes and hashes. */
    g = gnutls_x509_trust_list_verify_crt2(
        list, crts, n, &purpose, 1,
        GNUTLS_PROFILE_TO_VFLAGS(GNUTLS_PROFILE_LOW), &status, NULL);
  }
  for (unsigned i = 0; i < ncrts; i++)
    gnutls_x509_crt_deinit(crts[i]);
  if (g < 0) {
    set_err(why, whylen, "client certificate not verifiable: %s",
            gnutls_strerror(g));
    return false;
  }
  if (!status)
    return true;
  gnutls_datum_t text = {NULL, 0};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
                                                   &text, 0) == 0 &&
      text.data) {
    /* GnuTLS ends each sentence with a space: trim the last one. */
    int len = (int)strlen((const char *)text.data);
    while (len > 0 && text.data[len - 1] == ' ')
      len--;
    set_err(why, whylen, "client certificate refused: %.*s", len, text.data);
    gnutls_free(text.data);
  } else {
    set_err(why, whylen, "client certificate refused (status 0x%x)", status);
  }
  return false;
}

unsigned cs_tls_trust_reloads(const cs_tls_trust *c)
{
  return atomic_load(&c->reloads);
}
