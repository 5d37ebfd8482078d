/* payload.h: deterministic, realistic extender payloads for the benchmark:
 * Node objects shaped like ../shared/fixtures/extender/nodes.json (labels,
 * GPU labels, taints, capacity, four conditions, addresses, nodeInfo and 40
 * to 47 images with sha256 digests), a GPU training Pod, ExtenderArgs in
 * full-object and names-only form, and NodeList pages for the fake API
 * server. Node i is the same bytes on every run.
 * Thread-safe: yes; nothing is shared.
 * Ownership: everything is appended to the caller's buffer. */
#ifndef CS_BENCH_PAYLOAD_H
#define CS_BENCH_PAYLOAD_H

#include <stddef.h>

#include "carbon/util/buf.h"

/* The name of node i ("gpu-h100-fra-00042"); out must hold 64 bytes. */
void bp_node_name(size_t i, char *out, size_t cap);
/* Node i as compact JSON, as the API server and kube-scheduler send it. */
void bp_node(cs_buf *b, size_t i);
/* The Pod being scheduled: 8 GPUs, carbonshift annotations, tolerations. */
void bp_pod(cs_buf *b);
/* ExtenderArgs carrying nodes 0..n-1 as full Node objects. */
void bp_args_nodes(cs_buf *b, size_t n);
/* ExtenderArgs carrying only NodeNames (nodeCacheCapable). */
void bp_args_names(cs_buf *b, size_t n);
/* A NodeList page of nodes [from, to); `cont` is the continue token of the
 * next page, NULL on the last one. */
void bp_node_list(cs_buf *b, size_t from, size_t to, const char *rv,
                  const char *cont);

#endif
