#include "tests/unit/tls_testutil.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void report(const char *what)
{
  fprintf(stderr, "tls_testutil: %s: ", what);
  ERR_print_errors_fp(stderr);
  fputc('\n', stderr);
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext)
    return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

static EVP_PKEY *read_key(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  return k;
}

static X509 *read_cert(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  return c;
}

bool tu_tls_write_cert(const char *cert_path, const char *key_path,
                       const char *cn, const char *san, const char *eku,
                       bool is_ca, const char *issuer_cert_path,
                       const char *issuer_key_path, long not_before_s,
                       long not_after_s)
{
  static long serial = 1;
  bool ok = false;
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  X509 *issuer = NULL;
  EVP_PKEY *issuer_key = NULL;
  FILE *f = NULL;
  if (!key || !cert)
    goto out;
  if (issuer_cert_path) {
    issuer = read_cert(issuer_cert_path);
    issuer_key = read_key(issuer_key_path);
    if (!issuer || !issuer_key)
      goto out;
  }
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert),
                   __atomic_add_fetch(&serial, 1, __ATOMIC_SEQ_CST) +
                       (long)getpid() * 1000);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             (const unsigned char *)"carbonshift tests", -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert, key);
  X509 *iss = issuer ? issuer : cert;
  if (!add_ext(cert, iss, NID_basic_constraints,
               is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
      !add_ext(cert, iss, NID_key_usage,
               is_ca ? "critical,keyCertSign,cRLSign"
                     : "critical,digitalSignature,keyEncipherment") ||
      !add_ext(cert, iss, NID_subject_key_identifier, "hash") ||
      !add_ext(cert, iss, NID_authority_key_identifier, "keyid:always"))
    goto out;
  if (san && !add_ext(cert, iss, NID_subject_alt_name, san))
    goto out;
  if (eku && !add_ext(cert, iss, NID_ext_key_usage, eku))
    goto out;
  if (!X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()))
    goto out;
  f = fopen(key_path, "w");
  if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
    goto out;
  fclose(f);
  f = fopen(cert_path, "w");
  if (!f || !PEM_write_X509(f, cert))
    goto out;
  ok = true;
out:
  if (f)
    fclose(f);
  if (!ok)
    report(cert_path);
  EVP_PKEY_free(key);
  EVP_PKEY_free(issuer_key);
  X509_free(cert);
  X509_free(issuer);
  return ok;
}

static void path(char *out, const tu_tls *t, const char *file)
{
  /* tu_tls_make keeps dir short enough for every name used here. */
  if (snprintf(out, TU_TLS_PATH, "%s/%s", t->dir, file) >= TU_TLS_PATH)
    out[0] = '\0';
}

bool tu_tls_make(tu_tls *t)
{
  memset(t, 0, sizeof(*t));
  const char *tmp = getenv("TMPDIR");
  if (!tmp || strlen(tmp) > TU_TLS_PATH - 48)
    tmp = "/tmp";
  snprintf(t->dir, sizeof(t->dir), "%s/cs-tls-XXXXXX", tmp);
  if (!mkdtemp(t->dir)) {
    perror("tls_testutil: mkdtemp");
    return false;
  }
  char rogue_ca[TU_TLS_PATH], rogue_ca_key[TU_TLS_PATH];
  path(t->ca_cert, t, "ca.crt");
  path(t->ca_key, t, "ca.key");
  path(t->server_cert, t, "server.crt");
  path(t->server_key, t, "server.key");
  path(t->client_cert, t, "client.crt");
  path(t->client_key, t, "client.key");
  path(t->rogue_cert, t, "rogue.crt");
  path(t->rogue_key, t, "rogue.key");
  path(t->expired_cert, t, "expired.crt");
  path(t->expired_key, t, "expired.key");
  path(t->serveronly_cert, t, "serveronly.crt");
  path(t->serveronly_key, t, "serveronly.key");
  path(rogue_ca, t, "rogue-ca.crt");
  path(rogue_ca_key, t, "rogue-ca.key");
  const long day = 86400;
  return tu_tls_write_cert(t->ca_cert, t->ca_key, "carbonshift test CA", NULL,
                           NULL, true, NULL, NULL, -day, 30 * day) &&
         tu_tls_write_cert(t->server_cert, t->server_key, "localhost",
                           "DNS:localhost,IP:127.0.0.1,IP:::1", "serverAuth",
                           false, t->ca_cert, t->ca_key, -day, 30 * day) &&
         tu_tls_write_cert(t->client_cert, t->client_key, "kube-scheduler",
                           NULL, "clientAuth", false, t->ca_cert, t->ca_key,
                           -day, 30 * day) &&
         tu_tls_write_cert(rogue_ca, rogue_ca_key, "rogue CA", NULL, NULL, true,
                           NULL, NULL, -day, 30 * day) &&
         tu_tls_write_cert(t->rogue_cert, t->rogue_key, "kube-scheduler", NULL,
                           "clientAuth", false, rogue_ca, rogue_ca_key, -day,
                           30 * day) &&
         tu_tls_write_cert(t->expired_cert, t->expired_key, "kube-scheduler",
                           NULL, "clientAuth", false, t->ca_cert, t->ca_key,
                           -10 * day, -day) &&
         tu_tls_write_cert(t->serveronly_cert, t->serveronly_key,
                           "kube-scheduler", NULL, "serverAuth", false,
                           t->ca_cert, t->ca_key, -day, 30 * day);
}

void tu_tls_cleanup(tu_tls *t)
{
  static const char *const files[] = {
      "ca.crt",       "ca.key",      "server.crt",     "server.key",
      "client.crt",   "client.key",  "rogue.crt",      "rogue.key",
      "expired.crt",  "expired.key", "serveronly.crt", "serveronly.key",
      "rogue-ca.crt", "rogue-ca.key"};
  if (!t->dir[0])
    return;
  char p[TU_TLS_PATH];
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    path(p, t, files[i]);
    unlink(p);
  }
  rmdir(t->dir);
  t->dir[0] = '\0';
}
