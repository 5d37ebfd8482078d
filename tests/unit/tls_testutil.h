/* tls_testutil.h: test certificates made with OpenSSL's C API: a CA, a
 * server certificate for localhost/127.0.0.1/::1, client certificates
 * (good, from another CA, expired), written as PEM files in a temp dir.
 * Thread-safe: yes (no shared state), but call tu_tls_make once per test.
 * Ownership: paths live in the caller's tu_tls; tu_tls_cleanup removes the
 * files and the directory. */
#ifndef TU_TLS_TESTUTIL_H
#define TU_TLS_TESTUTIL_H

#include <stdbool.h>

#define TU_TLS_PATH 192

typedef struct tu_tls {
  char dir[TU_TLS_PATH];
  char ca_cert[TU_TLS_PATH]; /* self-signed CA, signs server and client */
  char ca_key[TU_TLS_PATH];
  char server_cert[TU_TLS_PATH]; /* CN localhost, SAN DNS:localhost,
                                    IP:127.0.0.1, IP:::1; serverAuth */
  char server_key[TU_TLS_PATH];
  char client_cert[TU_TLS_PATH]; /* CN kube-scheduler; clientAuth */
  char client_key[TU_TLS_PATH];
  char rogue_cert[TU_TLS_PATH]; /* clientAuth, signed by an unrelated CA */
  char rogue_key[TU_TLS_PATH];
  char expired_cert[TU_TLS_PATH]; /* clientAuth, from the CA, expired */
  char expired_key[TU_TLS_PATH];
  char serveronly_cert[TU_TLS_PATH]; /* from the CA, serverAuth only */
  char serveronly_key[TU_TLS_PATH];
} tu_tls;

/* Creates the directory (mkdtemp under $TMPDIR or /tmp) and every file
 * above. Returns false (and prints why to stderr) on failure. */
bool tu_tls_make(tu_tls *t);
void tu_tls_cleanup(tu_tls *t);

/* Writes one EC P-256 key and certificate. `san` is an OpenSSL
 * subjectAltName value ("DNS:localhost,IP:127.0.0.1") or NULL; `eku` an
 * extendedKeyUsage value ("serverAuth", "clientAuth") or NULL; the issuer
 * files NULL for a self-signed certificate. Validity runs from
 * now + not_before_s to now + not_after_s (seconds, may be negative). */
bool tu_tls_write_cert(const char *cert_path, const char *key_path,
                       const char *cn, const char *san, const char *eku,
                       bool is_ca, const char *issuer_cert_path,
                       const char *issuer_key_path, long not_before_s,
                       long not_after_s);

#endif
