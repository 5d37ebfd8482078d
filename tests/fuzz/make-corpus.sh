#!/usr/bin/env bash
# Regenerates the derived part of the seed corpus in tests/fuzz/corpus/ from
# the shared fixtures (CS_SHARED, default ../shared). Handwritten seeds
# (named edge-*) are kept. Needs jq. Usage: tests/fuzz/make-corpus.sh
set -euo pipefail
cd "$(dirname "$0")"
fx=${CS_SHARED:-../../../shared}/fixtures
[ -d "$fx" ] || { echo "make-corpus: no fixtures at $fx" >&2; exit 1; }
c=corpus
sep=$'\x1e'
mkdir -p "$c"/{codec,jscan,pod_facts,node_facts,parse}

# Extender requests: both modes, whole and with the 40 images per node
# dropped (smaller inputs mutate faster).
for f in filter-names prioritize-plain-pod filter-nodes; do
  install -m 644 "$fx/extender/$f.request.json" "$c/codec/fx-$f.json"
done
jq -c 'del(.Nodes.items[]?.status.images)' "$fx/extender/filter-nodes.request.json" \
  > "$c/codec/fx-filter-nodes-noimages.json"
install -m 644 "$c/codec/fx-filter-names.json" "$c/codec/fx-filter-nodes-noimages.json" \
  "$fx/providers/uk-intensity.json" "$c/jscan/"

# Pods and nodes, one object per seed.
for f in filter-names prioritize-plain-pod; do
  jq -c '.Pod' "$fx/extender/$f.request.json" > "$c/pod_facts/fx-$f.pod.json"
done
n=$(jq '.items | length' "$fx/extender/nodes.json")
for i in $(seq 0 $((n - 1))); do
  jq -c ".items[$i] | del(.status.images)" "$fx/extender/nodes.json" \
    > "$c/node_facts/fx-node-$i.json"
done

# Providers: "zone<RS>reply<RS>reply...", each reply a status byte (' ' is
# 200, 0x80 500, 0x82 401, 0x83 404, 0x84 429: fz_status) and a body.
mkdir -p "$c"/{electricitymaps,watttime,ukgrid,kube_watch,kube_list,kubeconfig,config,file}
p=$fx/providers
seed() { # seed FILE ZONE [STATUS:FIXTURE]...
  local out=$1 zone=$2
  shift 2
  {
    printf '%s' "$zone"
    for r in "$@"; do
      printf '\x1e'
      printf "\\x$(printf %x "${r%%:*}")"
      cat "$p/${r#*:}"
    done
  } > "$out"
}
seed "$c/electricitymaps/fx-latest-forecast-history" DE \
  32:electricitymaps-latest.json 32:electricitymaps-forecast.json \
  32:electricitymaps-history.json
seed "$c/electricitymaps/fx-unauthorized" DE \
  130:electricitymaps-unauthorized.json 132:electricitymaps-unauthorized.json
seed "$c/watttime/fx-region" CAISO_NORTH 32:watttime-login.json \
  32:watttime-forecast-now.json 32:watttime-forecast.json
seed "$c/watttime/fx-latlon" 37.77,-122.42 32:watttime-login.json \
  32:watttime-region-from-loc.json 32:watttime-forecast-now.json \
  32:watttime-forecast.json
seed "$c/watttime/fx-errors" 37.77,-122.42 32:watttime-login.json \
  131:watttime-region-from-loc-error.json 130:watttime-login.json \
  32:watttime-login.json 32:watttime-signal-index.json
seed "$c/ukgrid/fx-national" GB 32:uk-intensity.json 32:uk-fw48h.json
seed "$c/ukgrid/fx-regional" london 32:uk-regional-fw48h-regionid-13.json \
  32:uk-regional-fw48h-regionid-13.json
seed "$c/ukgrid/fx-error" GB-POSTCODE-SW1 128:uk-error.json 32:uk-error.json

# The watch: the fixture nodes as ADDED, MODIFIED and DELETED events, with a
# bookmark, cut into 1-byte (\x01) and 255-byte pieces, and an ERROR 410.
ex=$fx/extender/nodes.json
watch() {
  jq -c '.items[0:3][] | del(.status.images) | {type: "ADDED", object: .}' "$ex"
  jq -c '.items[1] | del(.status.images) | {type: "MODIFIED", object: .}' "$ex"
  echo '{"type":"BOOKMARK","object":{"kind":"Node","metadata":{"resourceVersion":"12345"}}}'
  jq -c '.items[0] | {type: "DELETED", object: {metadata: .metadata}}' "$ex"
}
{ printf '\x01'; watch; } > "$c/kube_watch/fx-events-bytewise"
{ printf '\xff'; watch; } > "$c/kube_watch/fx-events"
{ printf '\x00'
  jq -c '.items[2] | del(.status.images) | {type: "ADDED", object: .}' "$ex"
  echo '{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}'
} > "$c/kube_watch/fx-gone"

# NodeList pages: the fixture list whole, and split in two pages joined by a
# continue token.
jq -c 'del(.items[].status.images)' "$ex" > "$c/kube_list/fx-nodelist"
{
  jq -c 'del(.items[].status.images) | .items |= .[0:2] | .metadata.continue = "page2"' "$ex"
  printf '\x1e'
  jq -c 'del(.items[].status.images) | .items |= .[2:]' "$ex"
} > "$c/kube_list/fx-nodelist-pages"

# ExtenderPreemptionArgs for /preempt: the fixture's pod, each of its nodes a
# candidate with one victim, as UIDs (nodeCacheCapable) and as whole Pods.
jq -c '{Pod, NodeNameToVictims: null, NodeNameToMetaVictims: (.NodeNames |
    map({key: ., value: {Pods: [{UID: ("victim-" + .)}], NumPDBViolations: 1}}) |
    from_entries)}' "$fx/extender/filter-names.request.json" > "$c/codec/fx-preempt-meta.json"
jq -c '{Pod, NodeNameToMetaVictims: null, NodeNameToVictims: (.NodeNames |
    map({key: ., value: {Pods: [{metadata: {name: "low", namespace: "ml",
      uid: ("victim-" + .)}, spec: {priority: 0}}], NumPDBViolations: 0}}) |
    from_entries)}' "$fx/extender/filter-names.request.json" > "$c/codec/fx-preempt-pods.json"

# Whole calls: a verb byte (0 filter, 1 prioritize, 2 preempt) and a request.
mkdir -p "$c/decision"
for f in filter-names prioritize-plain-pod filter-nodes-noimages; do
  { printf '\x00'; cat "$c/codec/fx-$f.json"; } > "$c/decision/fx-$f.filter"
  { printf '\x01'; cat "$c/codec/fx-$f.json"; } > "$c/decision/fx-$f.prioritize"
done
for f in preempt-meta preempt-pods; do
  { printf '\x02'; cat "$c/codec/fx-$f.json"; } > "$c/decision/fx-$f"
done
echo "make-corpus: $(find "$c" -type f | wc -l) seeds, $(du -sh "$c" | cut -f1)"
