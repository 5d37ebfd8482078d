/* alloc.h: allocation that never returns NULL. Out of memory writes one log
 * line to stderr and aborts: Kubernetes restarts the pod, and no caller has
 * to carry an ENOMEM path that would never be tested.
 * Thread-safe: yes.
 * Ownership: every returned pointer is owned by the caller (free()). */
#ifndef CS_ALLOC_H
#define CS_ALLOC_H

#include <stddef.h>

void *cs_malloc(size_t n);
void *cs_calloc(size_t count, size_t size);
void *cs_realloc(void *p, size_t n);
char *cs_strdup(const char *s);
char *cs_strndup(const char *s, size_t n);
/* printf into a fresh string. */
char *cs_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
