/* codec.h: the extender wire format, exactly as kube-scheduler speaks it
 * (../shared/docs/extender-protocol.md). Decoding reads ExtenderArgs into
 * typed pieces: the Pod as a cJSON tree (small), and per node its name, the
 * few fields of `metadata` and `status.allocatable` its facts are read from
 * (cs_node_fields, spans of the body) and the exact bytes of the whole Node
 * object, so no Node is ever built into a tree, the rest of it (images,
 * conditions) is only validated, and kept nodes are echoed unchanged.
 * ExtenderPreemptionArgs decode into the same request (the Pod, and the
 * candidate nodes by name only) plus each node's proposed victims.
 * Encoding writes ExtenderFilterResult, HostPriorityList and
 * ExtenderPreemptionResult with PascalCase keys, integer scores and only
 * input node names.
 * Thread-safe: yes; a request belongs to one thread.
 * Ownership: a decoded request borrows the body (which must outlive it:
 * node fields point into it) and owns its Pod tree and its nodes' names
 * (cs_codec_request_free).
 * Replies are appended to the caller's buffer. */
#ifndef CS_CODEC_H
#define CS_CODEC_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "carbon/util/buf.h"
#include "carbon/util/error.h"
#include "carbon/util/jscan.h"
#include "scheduler/decision.h" /* cs_reply_piece */
#include "scheduler/node_facts.h"
#include "scheduler/policy.h" /* cs_verdict */

typedef struct cs_wire_node {
  const char *name; /* NUL-terminated, unescaped; owned by the request */
  size_t name_len;  /* 1 to CS_NODE_NAME_MAX - 1 */
  const char *raw;  /* the Node object's bytes (full mode); NULL otherwise */
  size_t raw_len;
} cs_wire_node;

struct cs_name_block;

typedef struct cs_wire_request {
  cJSON *pod;      /* owned; never NULL after a successful decode */
  bool names_only; /* the request carried NodeNames (nodeCacheCapable) */
  cs_wire_node *nodes;
  size_t nnodes;
  /* Owned: the storage of nodes[i].name, packed (see codec.c). */
  struct cs_name_block *names;
  /* Full mode: fields[i] are nodes[i]'s metadata and allocatable fields
   * (owned array); NULL in names-only mode, which has none, so a call over
   * thousands of names does not carry 512 bytes of them per node. */
  cs_node_fields *fields;
  /* Full mode: the NodeList's members other than `items`, verbatim
   * (e.g. `"metadata":{}`), echoed in the filter reply. */
  const char *list_extra;
  size_t list_extra_len;
} cs_wire_request;

/* Decodes ExtenderArgs. On error returns CS_EPARSE (not JSON) or CS_EINVAL
 * (JSON of the wrong shape) with a message naming the field and what was
 * expected in err. `max_nodes` caps the node count. */
cs_err cs_codec_decode(const char *body, size_t len, size_t max_nodes,
                       cs_wire_request *out, char *err,
                       size_t errlen) CS_MUST_USE;
/* The same over a body still arriving: body[0..have) is there and `feed`
 * (carbon/util/jscan.h) waits for the rest. The decode reads the body only
 * through the scanner, so it gives what cs_codec_decode gives over the whole
 * body; spans into the body stay valid, as its bytes never move. */
cs_err cs_codec_decode_feed(const char *body, size_t have,
                            const cs_jscan_feed *feed, size_t max_nodes,
                            cs_wire_request *out, char *err,
                            size_t errlen) CS_MUST_USE;
void cs_codec_request_free(cs_wire_request *r);

/* One candidate node's victims, as kube-scheduler proposes them: the UIDs
 * of the pods it would evict there, and how many PodDisruptionBudgets that
 * would violate. */
typedef struct cs_wire_victims {
  size_t first, count; /* the node's UIDs: uid_off[first .. first+count) */
  int64_t pdb_violations;
} cs_wire_victims;

/* The victims of an ExtenderPreemptionArgs, per node of the request it was
 * decoded with (victims[i] belongs to nodes[i]). */
typedef struct cs_wire_preemption {
  bool meta; /* came as NodeNameToMetaVictims (nodeCacheCapable); else
                as NodeNameToVictims, whose victims are whole Pods */
  cs_wire_victims *victims; /* owned */
  size_t *uid_off;          /* owned: offsets of the UIDs in uid_text */
  size_t nuids, uids_cap;
  cs_buf uid_text; /* the UIDs, NUL-terminated, one after the other */
} cs_wire_preemption;

/* The longest victim UID accepted: the API server's are 36-character
 * UUIDs. */
#define CS_VICTIM_UID_MAX 128

/* Decodes ExtenderPreemptionArgs: the Pod into req->pod, the candidate
 * nodes (the keys of NodeNameToMetaVictims or NodeNameToVictims) into
 * req->nodes as names only (req->names_only is true), and their victims
 * into *pre. Errors as for cs_codec_decode; on error both are freed. */
cs_err cs_codec_decode_preemption_feed(const char *body, size_t have,
                                       const cs_jscan_feed *feed,
                                       size_t max_nodes, cs_wire_request *req,
                                       cs_wire_preemption *pre, char *err,
                                       size_t errlen) CS_MUST_USE;
void cs_codec_preemption_free(cs_wire_preemption *p);

/* ExtenderPreemptionResult: NodeNameToMetaVictims holding the nodes with
 * keep[i] true, each with its victims as they came (UIDs only). */
void cs_codec_write_preemption(cs_buf *out, const cs_wire_request *r,
                               const cs_wire_preemption *p, const bool *keep);

/* ExtenderFilterResult: kept nodes in the request's mode, failed ones with
 * their reasons (reasons[i] may be NULL for passing nodes). With `pieces`
 * non-NULL, kept Nodes of a full-object request are not copied: *pieces
 * (malloc'd) gets the reply as pieces of `out` and of the request body
 * (see cs_reply_piece), adjacent kept Nodes making one piece; otherwise,
 * and always in names-only mode, *pieces is NULL and `out` holds all. */
void cs_codec_write_filter(cs_buf *out, const cs_wire_request *r,
                           const cs_verdict *verdicts,
                           const char *const *reasons, cs_reply_piece **pieces,
                           size_t *npieces);
/* Appends what the pieces stand for (from `own` and the request body) to
 * dst: the reply as a client receives it. */
void cs_codec_join_pieces(cs_buf *dst, const char *own,
                          const cs_reply_piece *pieces, size_t npieces);

/* HostPriorityList, in request order. */
void cs_codec_write_priorities(cs_buf *out, const cs_wire_request *r,
                               const int *scores);
/* {"Error": msg}: the body of every error reply. */
void cs_codec_write_error(cs_buf *out, const char *msg);

#endif
