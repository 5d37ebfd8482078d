/* hash.h: FNV-1a, 64-bit, for the in-memory tables (node cache, memos,
 * Event dedup, metric series, Decision line entries) and the simulator's
 * zone seeds. Fast and well spread for short keys such as names and UIDs;
 * not keyed, so a table that untrusted input fills wants another hash.
 * Thread-safe: yes (pure functions).
 * Ownership: the bytes hashed are borrowed for the call only. */
#ifndef CS_UTIL_HASH_H
#define CS_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a's 64-bit offset basis (14695981039346656037) and prime: the hash
 * of no bytes, where an incremental hash starts, and the multiplier, for
 * callers that mix whole words rather than bytes. */
#define CS_HASH_INIT 0xcbf29ce484222325ULL
#define CS_HASH_PRIME 0x100000001b3ULL

/* The hash `h` continued over the `n` bytes at `p` (p may be NULL when n
 * is 0): cs_hash_add(cs_hash_add(CS_HASH_INIT, a, na), b, nb) is the hash
 * of a's bytes followed by b's. */
uint64_t cs_hash_add(uint64_t h, const void *p, size_t n);

/* The hash of the `n` bytes at `p`. */
uint64_t cs_hash_bytes(const void *p, size_t n);

/* The hash of the bytes of the NUL-terminated `s`, without the NUL. */
uint64_t cs_hash_str(const char *s);

#endif
