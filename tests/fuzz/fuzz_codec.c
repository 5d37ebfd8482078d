/* fuzz_codec: ExtenderArgs as kube-scheduler sends them to /filter and
 * /prioritize, in both modes (Nodes or NodeNames), through the same steps a
 * request takes: cs_codec_decode, the pod and node facts, then both replies
 * with verdicts and scores taken from the input. Invariants: a decoded
 * request is complete (a pod, named nodes, raw Node bytes in full mode),
 * the node facts from the scanned fields equal those from each Node's cJSON
 * tree, every reply is JSON (also when written in pieces of the request,
 * which join to the same JSON), names in replies are input names, scores
 * stay as given (0..10) and in request order, and error replies are JSON
 * too. The same input is also decoded as ExtenderPreemptionArgs (/preempt):
 * each node's victims are its own, UIDs non-empty, and the reply keeps just
 * the nodes asked, with their UIDs as read. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/codec.h"
#include "scheduler/node_facts.h"
#include "scheduler/pod_facts.h"
#include "tests/fuzz/fuzzutil.h"

#define MAX_NODES 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fz_quiet();
  return 0;
}

static bool input_name(const cs_wire_request *r, const char *name)
{
  for (size_t i = 0; i < r->nnodes; i++)
    if (fz_reads_back_as(r->nodes[i].name, name))
      return true;
  return false;
}

static cJSON *parse_reply(const cs_buf *out)
{
  FZ_ASSERT(cs_buf_error(out) == CS_OK);
  cJSON *j = cJSON_ParseWithLength(out->data, out->len);
  FZ_ASSERT(cJSON_IsObject(j));
  return j;
}

static void check_filter(const cs_wire_request *r, const uint8_t *data,
                         size_t size)
{
  cs_verdict v[MAX_NODES];
  const char *reasons[MAX_NODES];
  size_t kept = 0;
  for (size_t i = 0; i < r->nnodes; i++) {
    v[i] = (cs_verdict)(data[i % size] % 3);
    reasons[i] = v[i] == CS_PASS ? NULL : "fuzz \"reason\"\n";
    kept += v[i] == CS_PASS;
  }
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_filter(&out, r, v, reasons, NULL, NULL);
  cJSON *j = parse_reply(&out);
  /* The same reply in pieces of the request (as the server sends it)
   * joins to the same JSON. */
  cs_buf own, joined;
  cs_buf_init(&own, 0);
  cs_buf_init(&joined, 0);
  cs_reply_piece *pieces;
  size_t npieces;
  cs_codec_write_filter(&own, r, v, reasons, &pieces, &npieces);
  FZ_ASSERT(r->names_only ? pieces == NULL : pieces != NULL);
  if (pieces)
    cs_codec_join_pieces(&joined, own.data, pieces, npieces);
  else
    cs_buf_append(&joined, own.data, own.len);
  cJSON *jp = parse_reply(&joined);
  /* Printed, not cJSON_Compare'd: that is false for objects with
   * duplicate keys, which fuzzed Nodes have. */
  char *pj = cJSON_PrintUnformatted(j), *pjp = cJSON_PrintUnformatted(jp);
  FZ_ASSERT(pj && pjp && strcmp(pj, pjp) == 0);
  cJSON_free(pj);
  cJSON_free(pjp);
  cJSON_Delete(jp);
  free(pieces);
  cs_buf_free(&own);
  cs_buf_free(&joined);
  const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "NodeNames");
  const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(j, "Nodes");
  const cJSON *it;
  if (r->names_only) {
    FZ_ASSERT(cJSON_IsArray(names));
    FZ_ASSERT((size_t)cJSON_GetArraySize(names) == kept);
    cJSON_ArrayForEach(it, names)
    {
      FZ_ASSERT(cJSON_IsString(it) && input_name(r, it->valuestring));
    }
  } else {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(nodes, "items");
    FZ_ASSERT(cJSON_IsArray(items));
    FZ_ASSERT((size_t)cJSON_GetArraySize(items) == kept);
  }
  const char *failed[] = {"FailedNodes", "FailedAndUnresolvableNodes"};
  for (int f = 0; f < 2; f++) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, failed[f]);
    FZ_ASSERT(cJSON_IsObject(m));
    cJSON_ArrayForEach(it, m)
    {
      FZ_ASSERT(input_name(r, it->string));
      FZ_ASSERT(cJSON_IsString(it));
    }
  }
  cJSON_Delete(j);
  cs_buf_free(&out);
}

static void check_priorities(const cs_wire_request *r, const uint8_t *data,
                             size_t size)
{
  int scores[MAX_NODES];
  for (size_t i = 0; i < r->nnodes; i++)
    scores[i] = data[(i * 7) % size] % 11;
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_priorities(&out, r, scores);
  FZ_ASSERT(cs_buf_error(&out) == CS_OK);
  cJSON *j = cJSON_ParseWithLength(out.data, out.len);
  FZ_ASSERT(cJSON_IsArray(j));
  FZ_ASSERT((size_t)cJSON_GetArraySize(j) == r->nnodes);
  size_t i = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, j)
  {
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(it, "Host");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(it, "Score");
    FZ_ASSERT(cJSON_IsString(host) &&
              fz_reads_back_as(r->nodes[i].name, host->valuestring));
    FZ_ASSERT(cJSON_IsNumber(score) && score->valuedouble == scores[i]);
    i++;
  }
  cJSON_Delete(j);
  cs_buf_free(&out);
}

static void check_preemption(const uint8_t *data, size_t size)
{
  cs_wire_request r;
  cs_wire_preemption p;
  char err[256] = "";
  cs_err rc = cs_codec_decode_preemption_feed(
      (const char *)data, size, NULL, MAX_NODES, &r, &p, err, sizeof(err));
  if (rc != CS_OK) {
    FZ_ASSERT((rc == CS_EPARSE || rc == CS_EINVAL) && err[0]);
    return;
  }
  FZ_ASSERT(r.pod != NULL && r.names_only && r.nnodes <= MAX_NODES);
  bool keep[MAX_NODES + 1];
  size_t next = 0, kept = 0;
  for (size_t i = 0; i < r.nnodes; i++) {
    const cs_wire_victims *v = &p.victims[i];
    FZ_ASSERT(v->first == next && v->first + v->count <= p.nuids);
    FZ_ASSERT(v->pdb_violations >= 0);
    next += v->count;
    for (size_t k = v->first; k < v->first + v->count; k++) {
      const char *uid = p.uid_text.data + p.uid_off[k];
      FZ_ASSERT(uid[0] && strlen(uid) <= CS_VICTIM_UID_MAX);
    }
    keep[i] = size && data[i % size] & 1;
    kept += keep[i];
  }
  FZ_ASSERT(next == p.nuids);
  cs_buf out;
  cs_buf_init(&out, 0);
  cs_codec_write_preemption(&out, &r, &p, keep);
  cJSON *j = parse_reply(&out);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "NodeNameToMetaVictims");
  FZ_ASSERT(cJSON_IsObject(m) && (size_t)cJSON_GetArraySize(m) == kept);
  size_t i = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, m)
  {
    while (!keep[i])
      i++;
    FZ_ASSERT(fz_reads_back_as(r.nodes[i].name, it->string));
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(it, "Pods");
    FZ_ASSERT((size_t)cJSON_GetArraySize(pods) == p.victims[i].count);
    size_t k = p.victims[i].first;
    const cJSON *pod;
    cJSON_ArrayForEach(pod, pods)
    {
      const cJSON *uid = cJSON_GetObjectItemCaseSensitive(pod, "UID");
      FZ_ASSERT(
          cJSON_IsString(uid) &&
          fz_reads_back_as(p.uid_text.data + p.uid_off[k++], uid->valuestring));
    }
    i++;
  }
  cJSON_Delete(j);
  cs_buf_free(&out);
  cs_codec_request_free(&r);
  cs_codec_preemption_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  check_preemption(data, size);
  cs_wire_request r;
  char err[256] = "";
  cs_err rc = cs_codec_decode((const char *)data, size, MAX_NODES, &r, err,
                              sizeof(err));
  if (rc != CS_OK) {
    FZ_ASSERT(rc == CS_EPARSE || rc == CS_EINVAL || rc == CS_ETOOBIG);
    FZ_ASSERT(err[0]);
    cs_buf out;
    cs_buf_init(&out, 0);
    cs_codec_write_error(&out, err);
    cJSON *j = parse_reply(&out);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "Error");
    FZ_ASSERT(cJSON_IsString(e) && fz_reads_back_as(err, e->valuestring));
    cJSON_Delete(j);
    cs_buf_free(&out);
    return 0;
  }
  FZ_ASSERT(r.pod != NULL);
  FZ_ASSERT(r.nnodes <= MAX_NODES);
  cs_pod_facts pf;
  (void)!cs_pod_facts_read(r.pod, 3600, &pf);
  for (size_t i = 0; i < r.nnodes; i++) {
    const cs_wire_node *n = &r.nodes[i];
    FZ_ASSERT(n->name_len > 0 && n->name_len < CS_NODE_NAME_MAX &&
              strlen(n->name) == n->name_len);
    if (r.names_only) {
      FZ_ASSERT(n->raw == NULL && r.fields == NULL);
      continue;
    }
    FZ_ASSERT(n->raw != NULL && n->raw >= (const char *)data &&
              n->raw + n->raw_len <= (const char *)data + size);
    fz_check_node_fields(n->raw, n->raw_len, &r.fields[i]);
  }
  if (size) {
    check_filter(&r, data, size);
    check_priorities(&r, data, size);
  }
  cs_codec_request_free(&r);
  return 0;
}
