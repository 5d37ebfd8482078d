/* tls_certs.h: the server's TLS files, reloaded when they change: its
 * certificate chain and key, handed to each handshake, and the client CA
 * that client certificates are verified against (mTLS). cert-manager (and
 * any operator rotating a Secret) renews the files in place while the
 * process runs; loading them once would serve the old certificate until it
 * expires, or refuse every client certificate from a renewed CA, and
 * kube-scheduler would then fail to reach the extender. The files are
 * checked at most once per interval, by one caller; a new file that cannot
 * be used (a key that does not match, a half-written file, no descriptor
 * free) is logged and what is in use is kept, and the load is tried again
 * at every check until it succeeds (a failure like the last one is not
 * logged again).
 * Thread-safe: yes.
 * Ownership: a store owns everything it ever loaded until it is freed,
 * since a handshake may still use an older load; a renewal a year keeps
 * that small. Paths are copied. */
#ifndef CS_TLS_CERTS_H
#define CS_TLS_CERTS_H

#include <gnutls/abstract.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carbon/util/error.h"

typedef struct cs_tls_certs cs_tls_certs;

/* Reads a PEM file of at most 1 MiB, for messages named `what` ("TLS
 * certificate"). CS_EIO, CS_ETOOBIG or CS_EINVAL (empty) with the file and
 * cause in err. */
cs_err cs_tls_read_pem(const char *what, const char *path, char **out,
                       char *err, size_t errlen) CS_MUST_USE;

/* Loads the pair; `check_ns` is how often the files are looked at again
 * (0: every 10 s). CS_EINVAL when they are not a usable PEM pair, with
 * both paths in err. */
cs_err cs_tls_certs_new(const char *cert_path, const char *key_path,
                        uint64_t check_ns, cs_tls_certs **out, char *err,
                        size_t errlen) CS_MUST_USE;
void cs_tls_certs_free(cs_tls_certs *c); /* NULL does nothing */

/* The pair to present now, after reloading it if its files changed. */
void cs_tls_certs_get(cs_tls_certs *c, gnutls_pcert_st **pcert,
                      unsigned *npcert, gnutls_privkey_t *key);

/* How many times a changed pair was loaded since cs_tls_certs_new. */
unsigned cs_tls_certs_reloads(const cs_tls_certs *c);

typedef struct cs_tls_trust cs_tls_trust;

/* Loads the CA file (one or more PEM certificates); `check_ns` as above.
 * CS_EINVAL when it holds no PEM certificate, with the path in err. */
cs_err cs_tls_trust_new(const char *ca_path, uint64_t check_ns,
                        cs_tls_trust **out, char *err,
                        size_t errlen) CS_MUST_USE;
void cs_tls_trust_free(cs_tls_trust *c); /* NULL does nothing */

/* Verifies a peer's chain (DER, the peer's own certificate first, as
 * gnutls_certificate_get_peers gives it) against the CA now in the file,
 * for client authentication (extended key usage clientAuth, validity
 * dates). False with GnuTLS's reason in `why` when it is refused. */
bool cs_tls_trust_verify(cs_tls_trust *c, const gnutls_datum_t *chain,
                         unsigned n, char *why, size_t whylen);

/* How many times a changed CA file was loaded since cs_tls_trust_new. */
unsigned cs_tls_trust_reloads(const cs_tls_trust *c);

#endif
