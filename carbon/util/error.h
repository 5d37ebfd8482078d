/* error.h: the error codes every fallible carbonshift function returns.
 * Thread-safe: yes (constant data only).
 * Ownership: cs_strerror returns a static string; never free it. */
#ifndef CS_ERROR_H
#define CS_ERROR_H

#define CS_MUST_USE __attribute__((warn_unused_result))

typedef enum cs_err {
  CS_OK = 0,
  CS_EINVAL,       /* a value has the wrong form or is out of range */
  CS_EPARSE,       /* a document (JSON, CSV, YAML) could not be read */
  CS_ETOOBIG,      /* input over a configured or hard cap */
  CS_ENOTFOUND,    /* no such key, zone, node, model */
  CS_EIO,          /* a file or socket operation failed */
  CS_ETIMEDOUT,    /* a deadline passed */
  CS_EHTTP,        /* a peer answered with an HTTP error status */
  CS_EAUTH,        /* credentials missing or refused */
  CS_ESTALE,       /* data exists but is older than allowed */
  CS_EUNSUPPORTED, /* valid but not something this build handles */
  CS_EBUSY,        /* try again later (rate limited, fetch in flight) */
  CS_EINTERNAL,    /* a broken invariant; always logged */
  CS_ECANCELED     /* the caller called it off (shutting down) */
} cs_err;

const char *cs_strerror(cs_err err);

#endif
