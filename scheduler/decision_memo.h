/* decision_memo.h: which decisions were already logged in full. A pod that
 * waits is asked about again on every cluster event, and each answer's
 * Decision line lists every node (about 166 KB at 5,000 nodes): the memo
 * keeps, per pod and verb, a fingerprint of the last decision logged in
 * full, so that the same decision within a window can be logged as a short
 * line that points at it (decision.c).
 * Thread-safe: yes; calls from many decision threads at once are
 * serialised by one mutex, held for a scan of the bounded table.
 * Ownership: the memo copies the keys and request ids it is given; the
 * caller owns what cs_decision_memo_note writes into `same`. */
#ifndef CS_DECISION_MEMO_H
#define CS_DECISION_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cs_decision_memo cs_decision_memo;

/* The longest request id kept: the server's are 32 hex digits, and it
 * accepts a client's of up to 64 characters. */
#define CS_MEMO_REQUEST_ID_MAX 64

/* What a repeat refers to: the full line's request id, when it was
 * written, and how many repeats of it there have been, this one
 * included. */
typedef struct cs_memo_same {
  char request_id[CS_MEMO_REQUEST_ID_MAX + 1];
  int64_t logged_at;
  uint64_t repeats;
} cs_memo_same;

/* A memo of at most `capacity` pods (the least recently seen is forgotten
 * first) that counts a decision as a repeat for `window_s` seconds after
 * its full line. */
cs_decision_memo *cs_decision_memo_new(size_t capacity, int64_t window_s);
void cs_decision_memo_free(cs_decision_memo *m);

/* Notes the decision `fingerprint` for the pod and verb `key` (any bytes
 * naming them, such as "<uid>/<verb>") at `now`. Returns true, with *same
 * filled, when the last full line for the key had the same fingerprint
 * and was written less than the window ago: the caller logs a repeat.
 * Otherwise the caller logs this decision in full, and the memo now
 * remembers it under `request_id`. */
bool cs_decision_memo_note(cs_decision_memo *m, const char *key,
                           uint64_t fingerprint, const char *request_id,
                           int64_t now, cs_memo_same *same);

#endif
