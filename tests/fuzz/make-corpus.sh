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
echo "make-corpus: $(find "$c" -type f | wc -l) seeds, $(du -sh "$c" | cut -f1)"
