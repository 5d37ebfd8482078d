#include "carbon/util/hash.h"

uint64_t cs_hash_add(uint64_t h, const void *p, size_t n)
{
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= CS_HASH_PRIME;
  }
  return h;
}

uint64_t cs_hash_bytes(const void *p, size_t n)
{
  return cs_hash_add(CS_HASH_INIT, p, n);
}

/* One pass, not strlen() and then the bytes: node names are hashed by the
 * thousand on every names-only call. */
uint64_t cs_hash_str(const char *s)
{
  uint64_t h = CS_HASH_INIT;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= CS_HASH_PRIME;
  }
  return h;
}
