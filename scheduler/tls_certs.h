/* tls_certs.h: the server's TLS certificate chain and key, handed to each
 * handshake and reloaded when their files change. cert-manager (and any
 * operator rotating a Secret) renews the files in place while the process
 * runs; loading them once would serve the old certificate until it expires,
 * and kube-scheduler would then skip the extender. The files are checked at
 * most once per interval, by one handshake; a new pair that cannot be used
 * (a key that does not match, a half-written file) is logged and the pair
 * in use is kept. The client CA for mTLS is not reloaded.
 * Thread-safe: yes.
 * Ownership: the store owns every pair it ever loaded until
 * cs_tls_certs_free, since a handshake may still use an older one; a
 * renewal a year keeps that small. Paths are copied. */
#ifndef CS_TLS_CERTS_H
#define CS_TLS_CERTS_H

#include <gnutls/abstract.h>
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

#endif
