#include "scheduler/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carbon/util/alloc.h"
#include "carbon/util/jscan.h"
#include "carbon/util/jtree.h"
#include "carbon/util/parse.h"

#define KEY_MAX 64

/* Context of one decode: the scanner plus where to report errors. */
typedef struct decoder {
  cs_jscan s;
  char *err;
  size_t errlen;
  size_t max_nodes;
} decoder;

/* The scanner explains what it rejected; when it stopped at a peek, which
 * explains nothing, say where the value should have been. */
static cs_err syntax(decoder *d)
{
  size_t at = (size_t)(d->s.p - d->s.start);
  if (d->s.err[0])
    snprintf(d->err, d->errlen, "request body is not valid JSON: %s", d->s.err);
  else if (d->s.p >= d->s.end)
    snprintf(d->err, d->errlen,
             "request body is not valid JSON: unexpected end at byte %zu", at);
  else
    snprintf(d->err, d->errlen,
             "request body is not valid JSON: unexpected token at byte %zu",
             at);
  return CS_EPARSE;
}

static cs_err shape(decoder *d, const char *fmt, const char *a)
{
  snprintf(d->err, d->errlen, fmt, a);
  return CS_EINVAL;
}

static const char *type_name(cs_jtype t)
{
  switch (t) {
  case CS_JNULL:
    return "null";
  case CS_JBOOL:
    return "a boolean";
  case CS_JNUMBER:
    return "a number";
  case CS_JSTRING:
    return "a string";
  case CS_JARRAY:
    return "an array";
  case CS_JOBJECT:
    return "an object";
  case CS_JEND:
    break;
  }
  return "nothing";
}

/* Skips a value, or fails with a syntax error. */
static cs_err skip(decoder *d, const char **at, size_t *len)
{
  return cs_jscan_skip(&d->s, at, len) ? syntax(d) : CS_OK;
}

/* Parses the value at the scanner into a cJSON tree (small subtrees only). */
static cs_err parse_tree(decoder *d, cJSON **out)
{
  const char *at;
  size_t len;
  cs_err rc = skip(d, &at, &len);
  if (rc)
    return rc;
  *out = cs_jtree_parse(at, len, NULL);
  if (!*out) /* the scanner accepted it, so only memory can fail here */
    return shape(d, "could not build the tree of %s", "a value");
  return CS_OK;
}

/* Enters the request body's top-level object, `what` (the Go type's
 * name) naming it in errors. */
static cs_err enter_args(decoder *d, const char *what)
{
  cs_jtype t = cs_jscan_peek(&d->s);
  if (t != CS_JOBJECT) {
    if (t == CS_JEND && d->s.p == d->s.end)
      snprintf(d->err, d->errlen, "request body is empty; expected %s", what);
    else if (t == CS_JEND)
      syntax(d);
    else
      snprintf(d->err, d->errlen, "request body: expected an %s object, got %s",
               what, type_name(t));
    return t == CS_JEND ? CS_EPARSE : CS_EINVAL;
  }
  return cs_jscan_enter_object(&d->s) ? syntax(d) : CS_OK;
}

/* Reads the Pod member into *pod (a later Pod member replaces an earlier
 * one, as Go's decoder does). */
static cs_err read_pod(decoder *d, cJSON **pod)
{
  cs_jtype t = cs_jscan_peek(&d->s);
  if (t != CS_JOBJECT) {
    snprintf(d->err, d->errlen, "Pod: expected a Pod object, got %s",
             type_name(t));
    return t == CS_JEND ? syntax(d) : CS_EINVAL;
  }
  cJSON_Delete(*pod);
  *pod = NULL;
  return parse_tree(d, pod);
}

/* Reads `status`: the first `allocatable` member (of any status member;
 * *seen once found) gives the allocatable fields when it is an object, none
 * when it is null, and a problem (allocatable_bad) when it is anything
 * else, as cs_node_fields_from_json does for the node cache. */
static cs_err read_node_status(decoder *d, cs_node_fields *f, bool *seen)
{
  const char *key;
  size_t klen;
  bool more;
  if (cs_jscan_peek(&d->s) != CS_JOBJECT)
    return skip(d, NULL, NULL); /* status: null is legal; other shapes are
                                   ignored, as they hold nothing we read */
  if (cs_jscan_enter_object(&d->s))
    return syntax(d);
  for (;;) {
    if (cs_jscan_next_key_lit(&d->s, &key, &klen, &more))
      return syntax(d);
    if (!more)
      return CS_OK;
    cs_jtype t = cs_jscan_peek(&d->s);
    if (!*seen && cs_json_key_is(key, klen, "allocatable") && t == CS_JOBJECT) {
      *seen = true;
      if (cs_node_fields_scan_allocatable(&d->s, f))
        return syntax(d);
    } else {
      if (!*seen && cs_json_key_is(key, klen, "allocatable") && t != CS_JEND) {
        *seen = true;
        f->allocatable_bad = t != CS_JNULL;
      }
      cs_err rc = skip(d, NULL, NULL);
      if (rc)
        return rc;
    }
  }
}

/* The nodes' names, packed one after the other in blocks that never move,
 * so the name pointers stay valid as blocks are added. A name takes its
 * length plus one byte instead of a fixed CS_NODE_NAME_MAX: the names of a
 * 5,000-node call are about 100 KB, which stay in cache while the lookup,
 * the reply and the Decision line each read them, instead of 1.3 MB. */
typedef struct cs_name_block {
  struct cs_name_block *next;
  size_t used, cap;
  char data[];
} cs_name_block;

#define NAME_BLOCK_BYTES (64u * 1024)

/* Room for one name of up to CS_NODE_NAME_MAX bytes (its NUL included) at
 * the end of the request's newest block; name_commit keeps it. */
static char *name_room(cs_wire_request *r)
{
  cs_name_block *b = r->names;
  if (!b || b->cap - b->used < CS_NODE_NAME_MAX) {
    b = cs_malloc(sizeof(*b) + NAME_BLOCK_BYTES);
    b->next = r->names;
    b->used = 0;
    b->cap = NAME_BLOCK_BYTES;
    r->names = b;
  }
  return b->data + b->used;
}

/* Keeps the name of `len` bytes just written at name_room() as n's. */
static void name_commit(cs_wire_request *r, cs_wire_node *n, size_t len)
{
  n->name = r->names->data + r->names->used;
  n->name_len = len;
  r->names->used += len + 1;
}

/* Whether the string field holds a NUL (an escaped \u0000), which
 * cs_node_fields_name, reading as cJSON does, shows as U+FFFD. */
static bool name_has_nul(const cs_node_field *f)
{
  if (f->kind != CS_FIELD_JSON) /* a plain literal holds no NUL */
    return false;
  char *all = cs_malloc(f->len); /* decoding never makes it longer */
  size_t n;
  bool nul = cs_json_unquote(f->at, f->len, all, f->len, &n) == CS_OK &&
             memchr(all, '\0', n);
  free(all);
  return nul;
}

/* Reads one Node: its metadata and allocatable fields straight from the
 * bytes, names compared as cJSON compares them, the first of each name
 * kept; every other member is only validated. */
static cs_err read_node(decoder *d, cs_wire_request *r, cs_wire_node *n,
                        cs_node_fields *f, size_t idx)
{
  char where[48];
  const char *key;
  size_t klen;
  bool more, seen_meta = false, seen_alloc = false;
  snprintf(where, sizeof(where), "Nodes.items[%zu]", idx);
  cs_jtype t = cs_jscan_peek(&d->s);
  if (t != CS_JOBJECT) {
    if (t == CS_JEND)
      return skip(d, NULL, NULL);
    snprintf(d->err, d->errlen, "%s: expected a Node object, got %s", where,
             type_name(t));
    return CS_EINVAL;
  }
  n->raw = d->s.p; /* peek left the scanner on the '{' */
  if (cs_jscan_enter_object(&d->s))
    return syntax(d);
  for (;;) {
    if (cs_jscan_next_key_lit(&d->s, &key, &klen, &more))
      return syntax(d);
    if (!more)
      break;
    cs_err rc = CS_OK;
    if (!seen_meta && cs_json_key_is(key, klen, "metadata")) {
      seen_meta = true;
      if (cs_jscan_peek(&d->s) != CS_JOBJECT) {
        snprintf(d->err, d->errlen, "%s.metadata: expected an object, got %s",
                 where, type_name(cs_jscan_peek(&d->s)));
        return CS_EINVAL;
      }
      if (cs_node_fields_scan_metadata(&d->s, f))
        rc = syntax(d);
    } else if (cs_json_key_is(key, klen, "status")) {
      rc = read_node_status(d, f, &seen_alloc);
    } else {
      rc = skip(d, NULL, NULL);
    }
    if (rc)
      return rc;
  }
  n->raw_len = (size_t)(d->s.p - n->raw);
  char *name = name_room(r);
  cs_err rc = cs_node_fields_name(f, name, CS_NODE_NAME_MAX);
  /* Kubernetes names hold no NUL, and the reply must name the node as it
   * was sent: refused, as in NodeNames, rather than shown as U+FFFD. */
  if (rc == CS_OK && name_has_nul(&f->name)) {
    snprintf(d->err, d->errlen,
             "%s.metadata.name: a node name cannot contain \\u0000", where);
    return CS_EINVAL;
  }
  if (rc == CS_OK)
    name_commit(r, n, strlen(name));
  if (rc == CS_ETOOBIG) {
    snprintf(d->err, d->errlen,
             "%s.metadata.name: longer than the 253 characters a node name "
             "may have",
             where);
    return CS_EINVAL;
  }
  if (rc) {
    snprintf(d->err, d->errlen, "%s.metadata.name: expected a non-empty string",
             where);
    return CS_EINVAL;
  }
  return CS_OK;
}

/* Appends one slot to the request's node array, and in full mode to its
 * fields array. */
static cs_wire_node *push_node(decoder *d, cs_wire_request *r, size_t *cap,
                               bool with_fields)
{
  if (r->nnodes == d->max_nodes)
    return NULL;
  if (r->nnodes == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    r->nodes = cs_realloc(r->nodes, *cap * sizeof(*r->nodes));
    if (with_fields)
      r->fields = cs_realloc(r->fields, *cap * sizeof(*r->fields));
  }
  if (with_fields)
    memset(&r->fields[r->nnodes], 0, sizeof(*r->fields));
  cs_wire_node *n = &r->nodes[r->nnodes++];
  *n = (cs_wire_node){.name = ""};
  return n;
}

static cs_err too_many(decoder *d)
{
  snprintf(d->err, d->errlen, "more than %zu nodes in one request",
           d->max_nodes);
  return CS_EINVAL;
}

static cs_err read_items(decoder *d, cs_wire_request *r)
{
  bool more;
  size_t cap = 0;
  cs_jtype t = cs_jscan_peek(&d->s);
  if (t == CS_JNULL)
    return skip(d, NULL, NULL);
  if (t != CS_JARRAY) {
    snprintf(d->err, d->errlen, "Nodes.items: expected an array, got %s",
             type_name(t));
    return CS_EINVAL;
  }
  if (cs_jscan_enter_array(&d->s))
    return syntax(d);
  for (;;) {
    if (cs_jscan_next_elem(&d->s, &more))
      return syntax(d);
    if (!more)
      return CS_OK;
    cs_wire_node *n = push_node(d, r, &cap, true);
    if (!n)
      return too_many(d);
    cs_err rc = read_node(d, r, n, &r->fields[r->nnodes - 1], r->nnodes - 1);
    if (rc)
      return rc;
  }
}

/* The most bytes the NodeList's members other than `items` may take. */
#define LIST_EXTRA_MAX (1u << 20)

/* Reads the NodeList, remembering its members other than `items` for the
 * echo. They are few and small (apiVersion, kind, metadata); more than
 * LIST_EXTRA_MAX of them is refused, as a cut copy would make the reply
 * invalid JSON. */
static cs_err read_node_list(decoder *d, cs_wire_request *r, cs_buf *extra)
{
  char key[KEY_MAX];
  bool more, seen_items = false;
  if (cs_jscan_enter_object(&d->s))
    return syntax(d);
  for (;;) {
    const char *key_at = d->s.p;
    if (cs_jscan_next_key(&d->s, key, sizeof(key), &more))
      return syntax(d);
    if (!more)
      break;
    if (strcmp(key, "items") == 0 && !seen_items) {
      seen_items = true;
      cs_err rc = read_items(d, r);
      if (rc)
        return rc;
      continue;
    }
    const char *at;
    size_t len;
    cs_err rc = skip(d, &at, &len);
    if (rc)
      return rc;
    /* Keep `"key":value` verbatim, from the key's opening quote. */
    while (key_at < at && *key_at != '"')
      key_at++;
    if (extra->len)
      cs_buf_putc(extra, ',');
    cs_buf_append(extra, key_at, (size_t)(at + len - key_at));
    if (cs_buf_error(extra)) {
      snprintf(d->err, d->errlen,
               "Nodes: members other than items take more than %u bytes; "
               "expected a NodeList's few small ones (apiVersion, kind, "
               "metadata)",
               LIST_EXTRA_MAX);
      return CS_EINVAL;
    }
  }
  return CS_OK;
}

static cs_err read_node_names(decoder *d, cs_wire_request *r)
{
  bool more;
  size_t cap = 0;
  if (cs_jscan_enter_array(&d->s))
    return syntax(d);
  for (;;) {
    if (cs_jscan_next_elem(&d->s, &more))
      return syntax(d);
    if (!more)
      return CS_OK;
    cs_jtype t = cs_jscan_peek(&d->s);
    const char *at;
    size_t len;
    cs_err rc = skip(d, &at, &len);
    if (rc)
      return rc;
    if (t != CS_JSTRING) {
      snprintf(d->err, d->errlen, "NodeNames[%zu]: expected a string, got %s",
               r->nnodes, type_name(t));
      return CS_EINVAL;
    }
    cs_wire_node *n = push_node(d, r, &cap, false);
    if (!n)
      return too_many(d);
    char *name = name_room(r);
    size_t nlen;
    if (cs_json_unquote(at, len, name, CS_NODE_NAME_MAX, &nlen) || !nlen) {
      snprintf(d->err, d->errlen,
               "NodeNames[%zu]: expected a node name of 1 to 253 characters",
               r->nnodes - 1);
      return CS_EINVAL;
    }
    /* Names are C strings from here on (cache keys, log): one cut short at
     * a NUL would be another node's name, so it is refused. */
    if (memchr(name, '\0', nlen)) {
      snprintf(d->err, d->errlen,
               "NodeNames[%zu]: a node name cannot contain \\u0000",
               r->nnodes - 1);
      return CS_EINVAL;
    }
    name_commit(r, n, nlen);
  }
}

cs_err cs_codec_decode(const char *body, size_t len, size_t max_nodes,
                       cs_wire_request *out, char *err, size_t errlen)
{
  return cs_codec_decode_feed(body, len, NULL, max_nodes, out, err, errlen);
}

cs_err cs_codec_decode_feed(const char *body, size_t have,
                            const cs_jscan_feed *feed, size_t max_nodes,
                            cs_wire_request *out, char *err, size_t errlen)
{
  decoder d = {.err = err, .errlen = errlen, .max_nodes = max_nodes};
  cs_buf extra;
  cs_buf_init(&extra, LIST_EXTRA_MAX);
  char key[KEY_MAX];
  bool more, have_nodes = false, have_names = false;
  cs_err rc = CS_OK;
  memset(out, 0, sizeof(*out));
  err[0] = '\0';
  cs_jscan_init_feed(&d.s, body, have, feed, 0);

  cs_jtype t;
  rc = enter_args(&d, "ExtenderArgs");
  if (rc)
    goto out;
  for (;;) {
    if (cs_jscan_next_key(&d.s, key, sizeof(key), &more)) {
      rc = syntax(&d);
      goto out;
    }
    if (!more)
      break;
    /* Go decodes member names case-insensitively; so do we. */
    t = cs_jscan_peek(&d.s);
    if (strcasecmp(key, "Pod") == 0) {
      rc = read_pod(&d, &out->pod);
    } else if (strcasecmp(key, "Nodes") == 0 && t != CS_JNULL) {
      if (t != CS_JOBJECT) {
        snprintf(err, errlen,
                 "Nodes: expected a NodeList object or null, "
                 "got %s",
                 type_name(t));
        rc = t == CS_JEND ? syntax(&d) : CS_EINVAL;
        goto out;
      }
      if (have_nodes || have_names) {
        rc = shape(&d, "%s",
                   "Nodes and NodeNames are both set (or Nodes "
                   "twice); expected exactly one of them");
        goto out;
      }
      have_nodes = true;
      rc = read_node_list(&d, out, &extra);
    } else if (strcasecmp(key, "NodeNames") == 0 && t != CS_JNULL) {
      if (t != CS_JARRAY) {
        snprintf(err, errlen,
                 "NodeNames: expected an array of strings or "
                 "null, got %s",
                 type_name(t));
        rc = t == CS_JEND ? syntax(&d) : CS_EINVAL;
        goto out;
      }
      if (have_nodes || have_names) {
        rc = shape(&d, "%s",
                   "Nodes and NodeNames are both set (or "
                   "NodeNames twice); expected exactly one of them");
        goto out;
      }
      have_names = true;
      out->names_only = true;
      rc = read_node_names(&d, out);
    } else {
      rc = skip(&d, NULL, NULL);
    }
    if (rc)
      goto out;
  }
  if (cs_jscan_finish(&d.s)) {
    rc = syntax(&d);
    goto out;
  }
  if (!out->pod) {
    rc = shape(&d, "%s", "Pod: missing; expected the Pod being scheduled");
    goto out;
  }
  if (!have_nodes && !have_names)
    out->names_only = true; /* no candidates: answer with an empty list */
  if (extra.len) /* the request owns its copy of the NodeList's extras */
    out->list_extra = cs_buf_release(&extra, &out->list_extra_len);
out:
  cs_buf_free(&extra);
  if (rc)
    cs_codec_request_free(out);
  return rc;
}

void cs_codec_request_free(cs_wire_request *r)
{
  if (!r)
    return;
  cJSON_Delete(r->pod);
  while (r->names) {
    cs_name_block *next = r->names->next;
    free(r->names);
    r->names = next;
  }
  free(r->nodes);
  free(r->fields);
  free((char *)r->list_extra);
  memset(r, 0, sizeof(*r));
}

/* ---- ExtenderPreemptionArgs ----
 * {"Pod": <Pod>, "NodeNameToVictims": {node: {"Pods": [<Pod>],
 * "NumPDBViolations": n}} | null, "NodeNameToMetaVictims": {node: {"Pods":
 * [{"UID": s}], "NumPDBViolations": n}} | null}. kube-scheduler sets one of
 * the two maps, by the extender's nodeCacheCapable. */

/* The most victims one call may name: more than any cluster holds pods. */
#define VICTIMS_MAX 1000000

/* The victims map being read: which one, for messages, and the request and
 * preemption it fills. */
typedef struct victims_reader {
  decoder *d;
  const char *map; /* "NodeNameToVictims" or "NodeNameToMetaVictims" */
  cs_wire_request *r;
  cs_wire_preemption *p;
  const char *node; /* the node being read, for messages */
} victims_reader;

/* Keeps the UID string literal lit[0..n) as the next victim's. */
static cs_err keep_uid(victims_reader *vr, const char *lit, size_t n,
                       const char *where, size_t idx)
{
  char uid[CS_VICTIM_UID_MAX + 1];
  size_t len;
  if (cs_json_unquote(lit, n, uid, sizeof(uid), &len) || !len ||
      memchr(uid, '\0', len)) {
    snprintf(vr->d->err, vr->d->errlen,
             "%s[%s].Pods[%zu].%s: expected a UID of 1 to %d characters "
             "without \\u0000",
             vr->map, vr->node, idx, where, CS_VICTIM_UID_MAX);
    return CS_EINVAL;
  }
  cs_wire_preemption *p = vr->p;
  if (p->nuids == VICTIMS_MAX) {
    snprintf(vr->d->err, vr->d->errlen, "%s: more than %d victims in one call",
             vr->map, VICTIMS_MAX);
    return CS_EINVAL;
  }
  if (p->nuids == p->uids_cap) {
    p->uids_cap = p->uids_cap ? 2 * p->uids_cap : 16;
    p->uid_off = cs_realloc(p->uid_off, p->uids_cap * sizeof(*p->uid_off));
  }
  p->uid_off[p->nuids++] = p->uid_text.len;
  cs_buf_append(&p->uid_text, uid, len + 1);
  return CS_OK;
}

/* Reads a string member `want` (compared as Go compares: any case) of the
 * object at the scanner, skipping the rest; *lit is NULL when there is
 * none. A value of another type is an error naming `where`. */
static cs_err read_string_member(victims_reader *vr, const char *want,
                                 const char **lit, size_t *n, const char *where,
                                 size_t idx)
{
  char key[KEY_MAX];
  bool more;
  *lit = NULL;
  if (cs_jscan_enter_object(&vr->d->s))
    return syntax(vr->d);
  for (;;) {
    if (cs_jscan_next_key(&vr->d->s, key, sizeof(key), &more))
      return syntax(vr->d);
    if (!more)
      return CS_OK;
    cs_jtype t = cs_jscan_peek(&vr->d->s);
    if (strcasecmp(key, want) == 0 && t != CS_JNULL && t != CS_JEND) {
      if (t != CS_JSTRING) {
        snprintf(vr->d->err, vr->d->errlen,
                 "%s[%s].Pods[%zu].%s: expected a string, got %s", vr->map,
                 vr->node, idx, where, type_name(t));
        return CS_EINVAL;
      }
      if (cs_jscan_skip(&vr->d->s, lit, n))
        return syntax(vr->d);
    } else if (cs_jscan_skip(&vr->d->s, NULL, NULL)) {
      return syntax(vr->d);
    }
  }
}

/* Reads one victim: {"UID": s} in the meta map, a whole Pod (of which only
 * metadata.uid is read; the API's names are case-sensitive) in the other. */
static cs_err read_victim(victims_reader *vr, size_t idx)
{
  decoder *d = vr->d;
  cs_jtype t = cs_jscan_peek(&d->s);
  bool meta = vr->p->meta;
  if (t != CS_JOBJECT) {
    if (t == CS_JEND)
      return skip(d, NULL, NULL);
    snprintf(d->err, d->errlen, "%s[%s].Pods[%zu]: expected %s, got %s",
             vr->map, vr->node, idx, meta ? "a MetaPod object" : "a Pod object",
             type_name(t));
    return CS_EINVAL;
  }
  const char *lit = NULL;
  size_t n = 0;
  cs_err rc;
  if (meta) {
    rc = read_string_member(vr, "UID", &lit, &n, "UID", idx);
  } else {
    const char *key;
    size_t klen;
    bool more;
    if (cs_jscan_enter_object(&d->s))
      return syntax(d);
    for (rc = CS_OK; rc == CS_OK;) {
      if (cs_jscan_next_key_lit(&d->s, &key, &klen, &more))
        return syntax(d);
      if (!more)
        break;
      if (!lit && cs_json_key_is(key, klen, "metadata") &&
          cs_jscan_peek(&d->s) == CS_JOBJECT)
        rc = read_string_member(vr, "uid", &lit, &n, "metadata.uid", idx);
      else
        rc = skip(d, NULL, NULL);
    }
  }
  if (rc)
    return rc;
  if (!lit) {
    snprintf(d->err, d->errlen, "%s[%s].Pods[%zu]: missing %s", vr->map,
             vr->node, idx, meta ? "UID" : "metadata.uid");
    return CS_EINVAL;
  }
  return keep_uid(vr, lit, n, meta ? "UID" : "metadata.uid", idx);
}

static cs_err read_victim_pods(victims_reader *vr, cs_wire_victims *v)
{
  decoder *d = vr->d;
  bool more;
  cs_jtype t = cs_jscan_peek(&d->s);
  if (t == CS_JNULL)
    return skip(d, NULL, NULL);
  if (t != CS_JARRAY) {
    if (t == CS_JEND)
      return skip(d, NULL, NULL);
    snprintf(d->err, d->errlen, "%s[%s].Pods: expected an array, got %s",
             vr->map, vr->node, type_name(t));
    return CS_EINVAL;
  }
  cs_wire_preemption *p = vr->p;
  if (p->nuids > v->first) { /* a later Pods member replaces an earlier
                                one, as in Go */
    p->uid_text.len = p->uid_off[v->first];
    p->nuids = v->first;
  }
  if (cs_jscan_enter_array(&d->s))
    return syntax(d);
  for (size_t idx = 0;; idx++) {
    if (cs_jscan_next_elem(&d->s, &more))
      return syntax(d);
    if (!more)
      break;
    cs_err rc = read_victim(vr, idx);
    if (rc)
      return rc;
  }
  v->count = vr->p->nuids - v->first;
  return CS_OK;
}

static cs_err read_pdb_violations(victims_reader *vr, cs_wire_victims *v)
{
  decoder *d = vr->d;
  cs_jtype t = cs_jscan_peek(&d->s);
  const char *at = NULL;
  size_t len = 0;
  char num[24];
  const char *expected = NULL;
  if (t == CS_JNULL || t == CS_JEND)
    return skip(d, NULL, NULL);
  if (t == CS_JNUMBER) {
    cs_err rc = skip(d, &at, &len);
    if (rc)
      return rc;
    if (len < sizeof(num)) {
      memcpy(num, at, len);
      num[len] = '\0';
      if (cs_parse_int64(num, &v->pdb_violations, &expected) == CS_OK &&
          v->pdb_violations >= 0)
        return CS_OK;
    }
    snprintf(d->err, d->errlen,
             "%s[%s].NumPDBViolations: expected a whole number of 0 or "
             "more, got %.*s",
             vr->map, vr->node, len > 32 ? 32 : (int)len, at);
  } else {
    snprintf(d->err, d->errlen,
             "%s[%s].NumPDBViolations: expected a whole number, got %s",
             vr->map, vr->node, type_name(t));
  }
  return CS_EINVAL;
}

/* Reads one node's Victims object (or null: no victims). */
static cs_err read_node_victims(victims_reader *vr, cs_wire_victims *v)
{
  decoder *d = vr->d;
  char key[KEY_MAX];
  bool more;
  cs_jtype t = cs_jscan_peek(&d->s);
  *v = (cs_wire_victims){.first = vr->p->nuids};
  if (t == CS_JNULL || t == CS_JEND)
    return skip(d, NULL, NULL);
  if (t != CS_JOBJECT) {
    snprintf(d->err, d->errlen, "%s[%s]: expected a %s object or null, got %s",
             vr->map, vr->node, vr->p->meta ? "MetaVictims" : "Victims",
             type_name(t));
    return CS_EINVAL;
  }
  if (cs_jscan_enter_object(&d->s))
    return syntax(d);
  for (;;) {
    if (cs_jscan_next_key(&d->s, key, sizeof(key), &more))
      return syntax(d);
    if (!more)
      return CS_OK;
    cs_err rc;
    if (strcasecmp(key, "Pods") == 0)
      rc = read_victim_pods(vr, v);
    else if (strcasecmp(key, "NumPDBViolations") == 0)
      rc = read_pdb_violations(vr, v);
    else
      rc = skip(d, NULL, NULL);
    if (rc)
      return rc;
  }
}

static int compare_names(const void *a, const void *b)
{
  const cs_wire_node *x = *(const cs_wire_node *const *)a;
  const cs_wire_node *y = *(const cs_wire_node *const *)b;
  return strcmp(x->name, y->name);
}

/* A node named twice would be judged twice and answered twice; Go keeps
 * the last, which could differ from what was judged, so it is refused. */
static cs_err refuse_duplicates(victims_reader *vr)
{
  size_t n = vr->r->nnodes;
  const cs_wire_node **by_name = cs_malloc((n + 1) * sizeof(*by_name));
  for (size_t i = 0; i < n; i++)
    by_name[i] = &vr->r->nodes[i];
  qsort(by_name, n, sizeof(*by_name), compare_names);
  cs_err rc = CS_OK;
  for (size_t i = 1; i < n && !rc; i++)
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
      snprintf(vr->d->err, vr->d->errlen, "%s: node %s is listed twice",
               vr->map, by_name[i]->name);
      rc = CS_EINVAL;
    }
  free(by_name);
  return rc;
}

static cs_err read_victims_map(victims_reader *vr)
{
  decoder *d = vr->d;
  const char *lit;
  size_t len, cap = 0, vcap = 0;
  bool more;
  if (cs_jscan_enter_object(&d->s))
    return syntax(d);
  for (;;) {
    if (cs_jscan_next_key_lit(&d->s, &lit, &len, &more))
      return syntax(d);
    if (!more)
      return refuse_duplicates(vr);
    cs_wire_node *n = push_node(d, vr->r, &cap, false);
    if (!n)
      return too_many(d);
    char *name = name_room(vr->r);
    size_t nlen;
    if (cs_json_unquote(lit, len, name, CS_NODE_NAME_MAX, &nlen) || !nlen ||
        memchr(name, '\0', nlen)) {
      /* The key as sent (escapes undecoded), cut for the message. */
      snprintf(d->err, d->errlen,
               "%s: key %.*s%s: expected a node name of 1 to 253 characters "
               "without \\u0000",
               vr->map, len > 64 ? 64 : (int)len, lit, len > 64 ? "..." : "");
      return CS_EINVAL;
    }
    name_commit(vr->r, n, nlen);
    if (vr->r->nnodes > vcap) {
      vcap = cap;
      vr->p->victims =
          cs_realloc(vr->p->victims, vcap * sizeof(*vr->p->victims));
    }
    vr->node = n->name;
    cs_err rc = read_node_victims(vr, &vr->p->victims[vr->r->nnodes - 1]);
    if (rc)
      return rc;
  }
}

cs_err cs_codec_decode_preemption_feed(const char *body, size_t have,
                                       const cs_jscan_feed *feed,
                                       size_t max_nodes, cs_wire_request *req,
                                       cs_wire_preemption *pre, char *err,
                                       size_t errlen)
{
  decoder d = {.err = err, .errlen = errlen, .max_nodes = max_nodes};
  char key[KEY_MAX];
  bool more, have_map = false;
  memset(req, 0, sizeof(*req));
  memset(pre, 0, sizeof(*pre));
  cs_buf_init(&pre->uid_text, (size_t)VICTIMS_MAX * (CS_VICTIM_UID_MAX + 1));
  req->names_only = true; /* candidates come by name, never as Nodes */
  err[0] = '\0';
  cs_jscan_init_feed(&d.s, body, have, feed, 0);
  cs_err rc = enter_args(&d, "ExtenderPreemptionArgs");
  while (!rc) {
    if (cs_jscan_next_key(&d.s, key, sizeof(key), &more)) {
      rc = syntax(&d);
      break;
    }
    if (!more)
      break;
    cs_jtype t = cs_jscan_peek(&d.s);
    bool meta = strcasecmp(key, "NodeNameToMetaVictims") == 0;
    if (strcasecmp(key, "Pod") == 0) {
      rc = read_pod(&d, &req->pod);
    } else if ((meta || strcasecmp(key, "NodeNameToVictims") == 0) &&
               t != CS_JNULL) {
      const char *map = meta ? "NodeNameToMetaVictims" : "NodeNameToVictims";
      if (t != CS_JOBJECT) {
        snprintf(err, errlen, "%s: expected an object or null, got %s", map,
                 type_name(t));
        rc = t == CS_JEND ? syntax(&d) : CS_EINVAL;
      } else if (have_map) {
        rc = shape(&d, "%s",
                   "NodeNameToVictims and NodeNameToMetaVictims are both set "
                   "(or one twice); expected exactly one of them");
      } else {
        have_map = true;
        pre->meta = meta;
        victims_reader vr = {.d = &d, .map = map, .r = req, .p = pre};
        rc = read_victims_map(&vr);
      }
    } else {
      rc = skip(&d, NULL, NULL);
    }
  }
  if (!rc && cs_jscan_finish(&d.s))
    rc = syntax(&d);
  if (!rc && !req->pod)
    rc = shape(&d, "%s", "Pod: missing; expected the Pod being scheduled");
  if (!rc && cs_buf_error(&pre->uid_text))
    rc = shape(&d, "%s", "victim UIDs: out of room");
  if (rc) {
    cs_codec_request_free(req);
    cs_codec_preemption_free(pre);
  }
  return rc;
}

void cs_codec_preemption_free(cs_wire_preemption *p)
{
  if (!p)
    return;
  free(p->victims);
  free(p->uid_off);
  cs_buf_free(&p->uid_text);
  memset(p, 0, sizeof(*p));
}

static void write_failed(cs_buf *out, const char *key, const cs_wire_request *r,
                         const cs_verdict *verdicts, const char *const *reasons,
                         cs_verdict which)
{
  cs_json_open(out, key, '{');
  for (size_t i = 0; i < r->nnodes; i++)
    if (verdicts[i] == which)
      cs_json_str(out, r->nodes[i].name,
                  reasons && reasons[i] ? reasons[i]
                                        : "rejected by carbonshift");
  cs_json_close(out, '}');
}

/* The pieces of a reply being written: bytes written to `out` since the
 * last echo are one own piece, flushed when an echo piece follows. */
typedef struct piece_list {
  cs_reply_piece *v;
  size_t n, cap;
  size_t own_from; /* start in `out` of the pending own piece */
} piece_list;

static void piece_push(piece_list *pl, cs_reply_piece p)
{
  if (pl->n == pl->cap) {
    pl->cap = pl->cap ? pl->cap * 2 : 16;
    pl->v = cs_realloc(pl->v, pl->cap * sizeof(*pl->v));
  }
  pl->v[pl->n++] = p;
}

static void piece_flush_own(piece_list *pl, const cs_buf *out)
{
  if (out->len > pl->own_from)
    piece_push(pl,
               (cs_reply_piece){NULL, pl->own_from, out->len - pl->own_from});
  pl->own_from = out->len;
}

/* Appends Node n to the reply's pieces. Kept Nodes next to each other in
 * the request, with only white space and a comma between them, grow the
 * last piece instead, so all Nodes kept is a single piece. */
static void piece_echo(piece_list *pl, cs_buf *out, const cs_wire_node *n,
                       bool first)
{
  if (!first && pl->n && pl->v[pl->n - 1].echo && out->len == pl->own_from) {
    cs_reply_piece *last = &pl->v[pl->n - 1];
    const char *p = last->echo + last->len;
    bool comma = false;
    for (; p < n->raw; p++) {
      if (*p == ',' && !comma)
        comma = true;
      else if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        break;
    }
    if (p == n->raw && comma) {
      last->len = (size_t)(n->raw + n->raw_len - last->echo);
      return;
    }
  }
  if (!first)
    cs_buf_putc(out, ',');
  piece_flush_own(pl, out);
  piece_push(pl, (cs_reply_piece){n->raw, 0, n->raw_len});
}

static void write_kept_nodes(cs_buf *out, const cs_wire_request *r,
                             const cs_verdict *verdicts, piece_list *pl)
{
  bool first = true;
  for (size_t i = 0; i < r->nnodes; i++) {
    if (verdicts[i] != CS_PASS)
      continue;
    if (pl)
      piece_echo(pl, out, &r->nodes[i], first);
    else
      cs_json_raw(out, NULL, r->nodes[i].raw, r->nodes[i].raw_len);
    first = false;
  }
}

void cs_codec_write_filter(cs_buf *out, const cs_wire_request *r,
                           const cs_verdict *verdicts,
                           const char *const *reasons, cs_reply_piece **pieces,
                           size_t *npieces)
{
  piece_list pl = {0}, *plp = pieces && !r->names_only ? &pl : NULL;
  if (pieces) {
    *pieces = NULL;
    *npieces = 0;
  }
  cs_json_open(out, NULL, '{');
  if (r->names_only) {
    cs_json_null(out, "Nodes");
    cs_json_open(out, "NodeNames", '[');
    for (size_t i = 0; i < r->nnodes; i++)
      if (verdicts[i] == CS_PASS)
        cs_json_strn(out, NULL, r->nodes[i].name, r->nodes[i].name_len);
    cs_json_close(out, ']');
  } else {
    if (!plp) {
      /* Kept Nodes are copied whole, tens of megabytes for a large
       * cluster: one reservation instead of a copy per doubling. */
      size_t need = r->list_extra_len + 128;
      for (size_t i = 0; i < r->nnodes; i++)
        if (verdicts[i] == CS_PASS)
          need += r->nodes[i].raw_len + 1;
      cs_buf_reserve(out, need);
    }
    cs_json_open(out, "Nodes", '{');
    if (r->list_extra_len)
      cs_buf_append(out, r->list_extra, r->list_extra_len);
    cs_json_open(out, "items", '[');
    write_kept_nodes(out, r, verdicts, plp);
    cs_json_close(out, ']');
    cs_json_close(out, '}');
    cs_json_null(out, "NodeNames");
  }
  write_failed(out, "FailedNodes", r, verdicts, reasons, CS_FAIL);
  write_failed(out, "FailedAndUnresolvableNodes", r, verdicts, reasons,
               CS_FAIL_UNRESOLVABLE);
  cs_json_str(out, "Error", "");
  cs_json_close(out, '}');
  if (plp) {
    piece_flush_own(&pl, out);
    *pieces = pl.v;
    *npieces = pl.n;
  }
}

void cs_codec_join_pieces(cs_buf *dst, const char *own,
                          const cs_reply_piece *pieces, size_t npieces)
{
  for (size_t i = 0; i < npieces; i++)
    cs_buf_append(dst, pieces[i].echo ? pieces[i].echo : own + pieces[i].off,
                  pieces[i].len);
}

void cs_codec_write_priorities(cs_buf *out, const cs_wire_request *r,
                               const int *scores)
{
  /* Thousands of entries per call, so the keys are written as literals
   * into one reservation (an int takes at most 20 characters). */
  static const char host[] = "{\"Host\":", score[] = ",\"Score\":";
  size_t need = 3;
  for (size_t i = 0; i < r->nnodes; i++)
    need += r->nodes[i].name_len + sizeof(host) + sizeof(score) + 24;
  cs_buf_reserve(out, need);
  cs_json_open(out, NULL, '[');
  for (size_t i = 0; i < r->nnodes; i++) {
    if (i)
      cs_buf_putc(out, ',');
    cs_buf_append(out, host, sizeof(host) - 1);
    cs_json_quote(out, r->nodes[i].name, r->nodes[i].name_len);
    cs_buf_append(out, score, sizeof(score) - 1);
    cs_json_int(out, NULL, scores[i]);
    cs_buf_putc(out, '}');
  }
  cs_json_close(out, ']');
}

void cs_codec_write_error(cs_buf *out, const char *msg)
{
  cs_json_open(out, NULL, '{');
  cs_json_str(out, "Error", msg);
  cs_json_close(out, '}');
}

void cs_codec_write_preemption(cs_buf *out, const cs_wire_request *r,
                               const cs_wire_preemption *p, const bool *keep)
{
  cs_json_open(out, NULL, '{');
  cs_json_open(out, "NodeNameToMetaVictims", '{');
  for (size_t i = 0; i < r->nnodes; i++) {
    if (!keep[i])
      continue;
    const cs_wire_victims *v = &p->victims[i];
    cs_json_open(out, r->nodes[i].name, '{');
    cs_json_open(out, "Pods", '[');
    for (size_t k = v->first; k < v->first + v->count; k++) {
      cs_json_open(out, NULL, '{');
      cs_json_str(out, "UID", p->uid_text.data + p->uid_off[k]);
      cs_json_close(out, '}');
    }
    cs_json_close(out, ']');
    cs_json_int(out, "NumPDBViolations", v->pdb_violations);
    cs_json_close(out, '}');
  }
  cs_json_close(out, '}');
  cs_json_close(out, '}');
}
