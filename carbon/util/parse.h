/* parse.h: strict parsers for the values users write in labels, annotations,
 * configuration and provider responses. Each accepts exactly its documented
 * form (whole input, no trailing bytes), never guesses, and on failure
 * returns CS_EINVAL with a short description of the expected form in
 * *expected (a static string) when `expected` is not NULL.
 * Thread-safe: yes.
 * Ownership: inputs are borrowed; outputs are plain values. */
#ifndef CS_PARSE_H
#define CS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "carbon/util/error.h"

/* A decimal integer, optional leading '-'. */
cs_err cs_parse_int64(const char *s, int64_t *out,
                      const char **expected) CS_MUST_USE;
/* A finite decimal number (no hex, no inf/nan). */
cs_err cs_parse_double(const char *s, double *out,
                       const char **expected) CS_MUST_USE;
/* The longest duration cs_parse_duration accepts, 100y: far beyond any job,
 * and small enough that a time plus a duration stays well inside int64
 * seconds. Readers of plain-second durations apply the same cap. */
#define CS_DURATION_MAX_S (100 * 365 * 86400.0)
/* A duration as a sequence of <number><unit> with units s, m, h, d, w, y
 * (y = 365 d): "36h", "90m", "1h30m", "1.5h", "6y". Result in seconds,
 * positive, at most CS_DURATION_MAX_S. */
cs_err cs_parse_duration(const char *s, double *seconds,
                         const char **expected) CS_MUST_USE;
/* A Kubernetes resource quantity: "8", "500m", "256Gi", "1e3", "1.5k".
 * An exponent is the suffix: "1e3Ki" is refused, as by the API server. */
cs_err cs_parse_quantity(const char *s, double *out,
                         const char **expected) CS_MUST_USE;
/* A mass of CO2e with a unit: "500g", "12.5kg", "1.2t". Result in grams. */
cs_err cs_parse_mass(const char *s, double *grams,
                     const char **expected) CS_MUST_USE;
/* RFC 3339 date-time with 'Z' or a numeric offset, optional fraction (which
 * is truncated to the second); also "YYYY-MM-DDThh:mmZ" as the UK API
 * writes it. Result in Unix seconds (UTC). */
cs_err cs_parse_rfc3339(const char *s, int64_t *unix_seconds,
                        const char **expected) CS_MUST_USE;
/* "YYYY-MM" (the first of the month) or "YYYY-MM-DD", midnight UTC. */
cs_err cs_parse_date(const char *s, int64_t *unix_seconds,
                     const char **expected) CS_MUST_USE;

/* Formats Unix seconds as "YYYY-MM-DDThh:mm:ssZ" into out (>= 21 bytes);
 * "invalid-time" outside years 0 to 9999. Always NUL-terminated. */
void cs_format_rfc3339(int64_t unix_seconds, char out[static 21]);
/* Formats seconds as a short duration: "36h", "1h30m", "45s", "2d3h". */
void cs_format_duration(double seconds, char out[static 32]);

/* For "did you mean" hints on mistyped names: the Levenshtein distance of
 * a and b, ASCII case ignored; CS_EDIT_FAR when either is longer than 64
 * bytes. */
#define CS_EDIT_FAR 1000
size_t cs_edit_distance(const char *a, const char *b);
/* The one of names[0, n) closest to `s`, or NULL when none is close (more
 * than a third of s's length, and more than 2, away). Names are compared
 * whole and by their last dot-separated segment, so "maxBodyByte" finds
 * "http.maxBodyBytes". */
const char *cs_closest_name(const char *s, const char *const *names, size_t n);

#endif
