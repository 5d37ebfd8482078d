#!/usr/bin/env bash
# Static checks of charts/carbonshift with the pinned helm (built and cached
# by build-components.sh): `helm lint --strict` and `helm template` with every
# value set in tests/e2e/values/, a few facts about each rendering, and every
# value set in tests/e2e/values-invalid/ must be refused. The e2e test then
# proves a real API server accepts the objects.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=$root/charts/carbonshift
helm_dir=$("$here/build-components.sh" helm | sed -n 's/^helm=//p')
[[ -n $helm_dir ]] || {
  echo "chart-check: building helm failed" >&2
  exit 1
}
work=$(mktemp -d "${TMPDIR:-/tmp}/carbonshift-chart.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME=$work/cache HELM_CONFIG_HOME=$work/config HELM_DATA_HOME=$work/data
helm() { "$helm_dir/helm" "$@"; }
kube_version=$("$here/build-components.sh" --version kube)

fails=0
ok() { printf 'chart-check: ok   %s\n' "$*"; }
bad() {
  printf 'chart-check: FAIL %s\n' "$*"
  fails=$((fails + 1))
}

# Facts each rendering must (+) or must not (-) contain. A fact is a fixed
# string found anywhere in a line, except that a leading ^ ties it to the
# start of a line and a trailing $ to the end (fact_regex).
declare -A expect=(
  [default.yaml]='+kind: PodDisruptionBudget|+verbs: [patch]$|-verbs: [get, patch]|+- --listen=:8443$|+--tls-client-ca=|+name: cs-carbonshift-server-tls|+readOnlyRootFilesystem: true|+type: RuntimeDefault|-KubeSchedulerConfiguration|-kind: ServiceMonitor|-envFrom|+enableServiceLinks: false|+- https://cs-carbonshift.default.svc:8443/metrics$|+--fail-early|+command: ["sleep", "5"]|+terminationGracePeriodSeconds: 30|-^kind: NetworkPolicy$|+- --probe-listen=:8081$|+name: probes$|+port: probes$|+scheme: HTTP$|-scheme: HTTPS$'
  [second-scheduler.yaml]='+KubeSchedulerConfiguration|+    percentageOfNodesToScore: 100$|+    preemptVerb: preempt$|+nodeCacheCapable: true|+ignorable: true|+name: gpu.intel.com/i915|+kind: ServiceMonitor|+key: electricitymaps-token|+name: system:kube-scheduler|+name: system:volume-scheduler|+resourceNames: [cs-carbonshift-scheduler]|+image: registry.k8s.io/kube-scheduler:'"$kube_version"'|+"verbosity": 1|+name: regcred|+^kind: NetworkPolicy$|+kubernetes.io/metadata.name: monitoring'
  [cert-manager.yaml]='+kind: Certificate|+selfSigned: {}|+certFile: /etc/carbonshift/client-tls/tls.crt|-kind: PodDisruptionBudget|-genCA'
  [cert-manager-issuer.yaml]='+kind: ClusterIssuer|-selfSigned'
  [existing-plain.yaml]='+secretName: my-server|+secretName: my-client|+nodeCacheCapable: false|+leaderElect: false|-certFile:|--tls-client-ca|-^kind: Role$|+:8443/healthz$|-:8443/metrics|--probe-listen|-name: probes$|-port: probes$'
  [no-rbac.yaml]='-^kind: ClusterRole$|-^kind: ClusterRoleBinding$|-^kind: Role$|-^kind: RoleBinding$|+leaderElect: true|+serviceAccountName: carbonshift-sa|+serviceAccountName: cs-carbonshift-scheduler'
  [no-tls.yaml]='-enableHTTPS|--tls-cert|+urlPrefix: "http://cs-carbonshift.default.svc:8443/carbonshift"$|+"pathPrefix": "/carbonshift"|+path: /healthz$|+scheme: HTTP|+CARBONSHIFT_LOG_VERBOSITY'
)

# fact_regex <fact>: the extended regular expression that finds the fact.
fact_regex() {
  local p=$1 head='' tail=''
  if [[ $p == ^* ]]; then
    head='^'
    p=${p:1}
  fi
  if [[ $p == *'$' ]]; then
    tail='$'
    p=${p%'$'}
  fi
  printf '%s%s%s' "$head" "$(printf '%s' "$p" | sed 's/[][\.*^$(){}+?|]/\\&/g')" "$tail"
}

# check_facts <rendering> <facts as in expect>: prints one line per fact the
# rendering breaks ("missing '...'" or "unexpected '...'"), nothing if none.
check_facts() {
  local out=$1 fact pat
  local -a facts
  IFS='|' read -r -a facts <<<"$2"
  for fact in "${facts[@]}"; do
    pat=${fact:1}
    if [[ ${fact:0:1} == + ]]; then
      grep -qE -- "$(fact_regex "$pat")" "$out" || printf "missing '%s'\n" "$pat"
    else
      ! grep -qE -- "$(fact_regex "$pat")" "$out" || printf "unexpected '%s'\n" "$pat"
    fi
  done
}

if helm lint --strict --kube-version "$kube_version" "$chart" >"$work/lint.log" 2>&1; then
  ok "helm lint --strict (defaults)"
else
  bad "helm lint --strict (defaults)"
  cat "$work/lint.log"
fi

for f in "$here"/values/*.yaml; do
  name=$(basename "$f")
  out=$work/$name.out
  if ! helm lint --strict --kube-version "$kube_version" "$chart" -f "$f" >"$work/lint.log" 2>&1; then
    bad "helm lint -f $name"
    cat "$work/lint.log"
    continue
  fi
  if ! helm template cs "$chart" -n default --kube-version "$kube_version" -f "$f" \
    >"$out" 2>"$work/template.log"; then
    bad "helm template -f $name"
    cat "$work/template.log"
    continue
  fi
  n=$(grep -c '^kind: ' "$out" || true)
  IFS='|' read -r -a facts <<<"${expect[$name]:-}"
  mapfile -t missing < <(check_facts "$out" "${expect[$name]:-}")
  if [[ ${#missing[@]} -eq 0 ]]; then
    ok "lint + template -f $name ($n objects, ${#facts[@]} facts)"
  else
    bad "template -f $name: ${missing[*]}"
  fi
done

# A fact that cannot fail tests nothing: each of these renderings changes one
# value of a value set and must break the named fact of that set.
# <value file>|<helm args>|<the line check_facts must print>
breakers=(
  "existing-plain.yaml|--set scheduler.leaderElection.enabled=true|unexpected '^kind: Role\$'"
  "no-rbac.yaml|--set rbac.create=true|unexpected '^kind: ClusterRoleBinding\$'"
  "default.yaml|--set preStopSleepSeconds=0|missing 'command: [\"sleep\", \"5\"]'"
  "second-scheduler.yaml|--set networkPolicy.enabled=false|missing '^kind: NetworkPolicy\$'"
  "second-scheduler.yaml|--set scheduler.percentageOfNodesToScore=50|missing '    percentageOfNodesToScore: 100\$'"
)
for b in "${breakers[@]}"; do
  IFS='|' read -r name args want <<<"$b"
  read -r -a extra <<<"$args"
  out=$work/breaker.out
  if ! helm template cs "$chart" -n default --kube-version "$kube_version" \
    -f "$here/values/$name" "${extra[@]}" >"$out" 2>"$work/template.log"; then
    bad "helm template -f $name $args"
    cat "$work/template.log"
  # Not a pipe into grep -q: it stops reading at the first match, and
  # pipefail would then report check_facts' broken pipe as a miss.
  elif got=$(check_facts "$out" "${expect[$name]:-}") && grep -qxF -- "$want" <<<"$got"; then
    ok "facts of $name catch $args ($want)"
  else
    bad "facts of $name do not catch $args: expected $want"
  fi
done

# helm upgrade --reuse-values keeps the release's old values in place of the
# chart's defaults: a release installed before probes.port still gets the
# probe listener (the templates' default), not probes on the extender port.
old_chart=$work/old-values-chart
cp -r "$chart" "$old_chart"
sed -i '/^  port: 8081$/d' "$old_chart/values.yaml"
if grep -q '^  port: 8081$' "$old_chart/values.yaml"; then
  bad "could not drop probes.port from a copy of values.yaml"
elif ! helm template cs "$old_chart" -n default --kube-version "$kube_version" \
  >"$work/old-values.out" 2>"$work/template.log"; then
  bad "helm template with values lacking probes.port: $(head -c 200 "$work/template.log")"
elif got=$(check_facts "$work/old-values.out" '+- --probe-listen=:8081$|+port: probes$') &&
  [[ -z $got ]]; then
  ok "values without probes.port (an upgrade with --reuse-values) keep the probe listener"
else
  bad "values without probes.port: $(tr '\n' ' ' <<<"$got")"
fi

# imagePullSecrets reach every pod the chart makes: the extender, the bundled
# scheduler and the helm test (a private registry serves all three images).
n=$(helm template cs "$chart" -n default --kube-version "$kube_version" \
  -f "$here/values/second-scheduler.yaml" | grep -c -- '- name: regcred$' || true)
if [[ $n -eq 3 ]]; then
  ok "imagePullSecrets on the extender, the scheduler and the test pod"
else
  bad "imagePullSecrets on $n of the 3 pods"
fi

# kube-scheduler reads its configuration once, at start, so the bundled
# scheduler's Deployment rolls only through its checksum/config annotation:
# the checksum must follow every value the rendered config.yaml depends on,
# and stay put for a value it does not use.
sched_checksum() { # <helm args...>
  helm template cs "$chart" -n default --kube-version "$kube_version" \
    -f "$here/values/second-scheduler.yaml" --show-only templates/scheduler.yaml "$@" |
    sed -n 's/^ *checksum\/config: //p'
}
base=$(sched_checksum)
for args in "--set tls.clientAuth=false" "--set tls.enabled=false" \
  "--set service.port=9443" "--set fullnameOverride=carbon" "--set scheduler.weight=4" \
  "--set scheduler.percentageOfNodesToScore=50" \
  "--set config.pathPrefix=/carbonshift"; do
  read -r -a extra <<<"$args"
  sum=$(sched_checksum "${extra[@]}")
  if [[ -n $base && -n $sum && $sum != "$base" ]]; then
    ok "scheduler checksum/config changes with $args"
  else
    bad "scheduler checksum/config does not change with $args (the scheduler would keep its old config)"
  fi
done
if [[ -n $base && $(sched_checksum --set replicaCount=3) == "$base" ]]; then
  ok "scheduler checksum/config stays with --set replicaCount=3"
else
  bad "scheduler checksum/config changes with --set replicaCount=3 (not in its config)"
fi

# helm template does not render NOTES.txt: a copy of the chart renders it
# into a ConfigMap through tpl, with the chart's own helpers and values.
# <helm args>|<facts about the notes, as in expect>
notes_cases=(
  "|+client certificate and CA in Secret|+cs-carbonshift-client-tls;|+urlPrefix https://cs-carbonshift.default.svc:8443,"
  "--set tls.clientAuth=false|-client certificate and|+the CA (ca.crt) in Secret cs-carbonshift-client-tls"
  "--set tls.enabled=false|-Secret|-certificate|+over plain HTTP|+urlPrefix http://cs-carbonshift.default.svc:8443,"
  "--set tls.enabled=false --set tls.source=existing|-Secret|+over plain HTTP"
  "--set config.pathPrefix=/carbonshift|+urlPrefix https://cs-carbonshift.default.svc:8443/carbonshift,"
  "--set service.clusterIP=10.96.200.10 --set tls.extraIPs={10.96.200.10}|+urlPrefix https://10.96.200.10:8443 (the Service|-urlPrefix https://cs-carbonshift|+cannot resolve"
)
notes_chart=$work/notes-chart
cp -r "$chart" "$notes_chart"
cp "$chart/templates/NOTES.txt" "$notes_chart/notes.txt"
cat >"$notes_chart/templates/notes-check.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  NOTES.txt: |
    {{- tpl (.Files.Get "notes.txt") . | nindent 4 }}
EOF
for c in "${notes_cases[@]}"; do
  args=${c%%|*}
  read -r -a extra <<<"$args"
  out=$work/notes.out
  if ! helm template cs "$notes_chart" -n default --kube-version "$kube_version" \
    --show-only templates/notes-check.yaml "${extra[@]}" >"$out" 2>"$work/template.log"; then
    bad "NOTES.txt does not render with ${args:-the defaults}: $(grep -m1 -oE '(Error|error).*' "$work/template.log" | cut -c1-140)"
  elif got=$(check_facts "$out" "${c#*|}") && [[ -z $got ]]; then
    ok "NOTES.txt with ${args:-the defaults}"
  else
    bad "NOTES.txt with ${args:-the defaults}: $(tr '\n' ' ' <<<"$got")"
  fi
done

for f in "$here"/values-invalid/*.yaml; do
  name=$(basename "$f")
  if helm template cs "$chart" --kube-version "$kube_version" -f "$f" >/dev/null 2>"$work/err.log"; then
    bad "values-invalid/$name was accepted"
  else
    ok "values-invalid/$name refused: $(grep -m1 -oE '(Error|error).*' "$work/err.log" | cut -c1-140)"
  fi
done

# deploy/manifests/ must be what `make manifests` renders from this chart.
mkdir -p "$work/manifests"
if "$root/deploy/render-manifests.sh" carbonshift "$work/manifests" >/dev/null 2>&1 &&
  diff -r "$root/deploy/manifests" "$work/manifests" >"$work/manifests.diff"; then
  ok "deploy/manifests/ is up to date with the chart"
else
  bad "deploy/manifests/ is stale: run 'make manifests' ($(grep -c '^[<>]' "$work/manifests.diff") lines differ)"
fi

[[ $fails -eq 0 ]] || {
  echo "chart-check: $fails failure(s)"
  exit 1
}
echo "chart-check: passed"
