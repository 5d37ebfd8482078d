#!/usr/bin/env bash
# End-to-end test: the real kube-apiserver, etcd and kube-scheduler (built
# from the Go module proxy by build-components.sh), the Helm chart installed
# with the real helm, and bin/carbonshift serving the scheduler over mTLS.
#
# Everything listens on 127.0.0.1 and lives in a temporary directory that is
# removed at the end (kept on failure, or always with E2E_KEEP=1). There is no
# kubelet: Nodes are created through the API with a Ready condition, and the
# chart's own pods never start; the point of installing the chart is that the
# API server accepts every object it renders.
#
# Every scenario must pass: a carbonshift feature that is missing from the
# binary (no Kubernetes client, budgets not refused, the file provider's
# settings rejected) fails its scenario with what was missing, rather than
# skipping it. Exit status: 0 when nothing failed.
#
# Environment: CS_BIN (default bin/carbonshift), CS_SHARED (default
# ../shared), E2E_KEEP=1, E2E_ONLY="<scenario> ..." to run a subset.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
CS_BIN=${CS_BIN:-$root/bin/carbonshift}
CS_SHARED=${CS_SHARED:-$root/../shared}
fixtures=$CS_SHARED/fixtures/extender
chart=$root/charts/carbonshift
t_start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/carbonshift-e2e.XXXXXX")
logs=$work/logs
pki=$work/pki
mkdir -p "$logs" "$pki"

# ---------------------------------------------------------------- reporting
passes=0 fails=0
results=()
log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() {
  passes=$((passes + 1))
  results+=("PASS: $1")
  log "PASS: $1"
}
fail() {
  fails=$((fails + 1))
  results+=("FAIL: $1")
  log "FAIL: $1"
}
want() { # <scenario>: selected by E2E_ONLY (all when unset)?
  [[ -z ${E2E_ONLY:-} ]] || [[ " $E2E_ONLY " == *" $1 "* ]]
}
die() {
  log "FATAL: $*"
  fails=$((fails + 1))
  results+=("FAIL: setup: $*")
  exit 1
}

# ---------------------------------------------------------------- processes
declare -A PID=()
start_proc() { # <name> <command...>: background, output in $logs/<name>.log
  local name=$1
  shift
  "$@" >>"$logs/$name.log" 2>&1 &
  PID[$name]=$!
  log "started $name (pid ${PID[$name]})"
}
stop_proc() { # <name>: SIGTERM, then SIGKILL after 10 s; only our own pids
  local name=$1 pid=${PID[$1]:-} i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PID[$name]"
}
alive() { [[ -n ${PID[$1]:-} ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

summary() {
  local r
  echo
  echo "==== e2e summary ($(($(date +%s) - t_start))s) ===="
  for r in "${results[@]}"; do echo "  $r"; done
  echo "  $passes passed, $fails failed"
}
cleanup() {
  local rc=$? name
  trap - EXIT
  for name in carbonshift scheduler-strict scheduler-names scheduler-nodes kube-apiserver etcd; do
    stop_proc "$name"
  done
  summary
  if [[ $fails -gt 0 || $rc -ne 0 ]]; then
    for name in "$logs"/*.log; do
      echo "---- last lines of $(basename "$name")"
      tail -n 25 "$name"
    done
    echo "e2e: FAILED; files kept in $work"
    exit 1
  fi
  if [[ ${E2E_KEEP:-0} == 1 ]]; then
    echo "e2e: files kept in $work"
  else
    rm -rf "$work"
  fi
  exit 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on, below the kernel's ephemeral range so that no
# outgoing connection holds it either.
free_port() {
  local p i lo=32768
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    p=$((10000 + RANDOM % (lo - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

wait_for() { # <seconds> <description> <command...>: retry until it succeeds
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    if [[ $(date +%s) -ge $deadline ]]; then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- tools
for tool in curl jq openssl; do
  command -v "$tool" >/dev/null || die "$tool is not installed (deploy/install-deps.sh test installs it)"
done
[[ -f $fixtures/nodes.json ]] || die "fixtures not found under $CS_SHARED (set CS_SHARED)"

log "components: building or reusing the cache"
comp_out=$("$here/build-components.sh" etcd kube helm) || die "building the components failed"
etcd_dir=$(sed -n 's/^etcd=//p' <<<"$comp_out")
kube_dir=$(sed -n 's/^kube=//p' <<<"$comp_out")
helm_dir=$(sed -n 's/^helm=//p' <<<"$comp_out")
ETCD=$etcd_dir/etcd
APISERVER=$kube_dir/kube-apiserver
SCHEDULER=$kube_dir/kube-scheduler
HELM=$helm_dir/helm

# ---------------------------------------------------------------- PKI
# A CA and certificates made with openssl: one for the API server, one
# (ca.crt/tls.crt/tls.key, the layout of the chart's Secrets) for the
# extender's server and one for the client kube-scheduler presents.
ssl() { openssl "$@" 2>>"$logs/openssl.log"; }
gen_ca() { # <dir> <cn>
  mkdir -p "$1"
  ssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$1/ca.key" -out "$1/ca.crt" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
}
gen_cert() { # <ca dir> <out dir> <cn> <extendedKeyUsage> [subjectAltName]
  local ca=$1 out=$2 cn=$3 eku=$4 san=${5:-} ext
  mkdir -p "$out"
  ext=$out/ext.cnf
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } >"$ext"
  ssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$out/tls.key" -out "$out/tls.csr" -subj "/CN=$cn"
  ssl x509 -req -in "$out/tls.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
    -CAcreateserial -days 2 -extfile "$ext" -out "$out/tls.crt"
  cp "$ca/ca.crt" "$out/ca.crt"
}
log "pki: generating certificates with openssl"
gen_ca "$pki/kube-ca" e2e-kube-ca
gen_cert "$pki/kube-ca" "$pki/apiserver" kube-apiserver serverAuth \
  "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
gen_ca "$pki/cs-ca" e2e-carbonshift-ca
gen_cert "$pki/cs-ca" "$pki/server" carbonshift serverAuth "IP:127.0.0.1,DNS:localhost"
gen_cert "$pki/cs-ca" "$pki/client" carbonshift-scheduler clientAuth
gen_ca "$pki/other-ca" e2e-untrusted-ca
gen_cert "$pki/other-ca" "$pki/untrusted" intruder clientAuth
ssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
ssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# Static tokens: an administrator (system:masters) for the test and helm, and
# the identity the cluster's own scheduler has (bound by the bootstrap RBAC
# policy to system:kube-scheduler and system:volume-scheduler).
ADMIN_TOKEN=$(openssl rand -hex 24)
SCHED_TOKEN=$(openssl rand -hex 24)
{
  echo "$ADMIN_TOKEN,e2e-admin,e2e-admin,\"system:masters\""
  echo "$SCHED_TOKEN,system:kube-scheduler,system:kube-scheduler"
} >"$pki/tokens.csv"

# ---------------------------------------------------------------- etcd + apiserver
ETCD_PORT=$(free_port)
PEER_PORT=$(free_port)
API_PORT=$(free_port)
CS_PORT=$(free_port)
API=https://127.0.0.1:$API_PORT

start_proc etcd "$ETCD" --name e2e --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "e2e=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync --log-level warn
etcd_ready() {
  alive etcd || die "etcd exited (see etcd.log)"
  curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}
wait_for 30 "etcd" etcd_ready || die "etcd did not start"

start_proc kube-apiserver "$APISERVER" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$pki/apiserver/tls.crt" --tls-private-key-file "$pki/apiserver/tls.key" \
  --token-auth-file "$pki/tokens.csv" --authorization-mode RBAC \
  --anonymous-auth=false \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --endpoint-reconciler-type none \
  --cert-dir "$work/apiserver-certs" --v 1

# kapi <method> <path> [body] [content type]: the body lands in $work/resp.json,
# the HTTP status is printed. As the admin unless TOKEN is set.
kapi() {
  local m=$1 p=$2 body=${3:-} ct=${4:-application/json} args=()
  [[ -n $body ]] && args=(--data-binary "$body" -H "Content-Type: $ct")
  curl -sS -o "$work/resp.json" -w '%{http_code}' -X "$m" \
    --cacert "$pki/kube-ca/ca.crt" -H "Authorization: Bearer ${TOKEN:-$ADMIN_TOKEN}" \
    "${args[@]}" "$API$p" || echo 000
}
kget() { # <path>: GET as the admin, body on stdout, fails on non-200
  local code
  code=$(kapi GET "$1")
  [[ $code == 200 ]] || {
    log "GET $1 -> $code: $(head -c 300 "$work/resp.json")"
    return 1
  }
  cat "$work/resp.json"
}
kmust() { # <method> <path> [body] [ct]: request that must answer 2xx
  local code
  code=$(kapi "$@")
  [[ $code == 2* ]] || die "$1 $2 -> $code: $(head -c 500 "$work/resp.json")"
}
apiserver_ready() {
  alive kube-apiserver || die "kube-apiserver exited (see kube-apiserver.log)"
  [[ $(kapi GET /readyz) == 200 ]]
}
wait_for 90 "kube-apiserver /readyz" apiserver_ready || die "kube-apiserver did not become ready"
log "kube-apiserver ready: $(kget /version | jq -r .gitVersion)"

kubeconfig() { # <file> <token>
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster:
      server: $API
      certificate-authority: $pki/kube-ca/ca.crt
users:
  - name: user
    user:
      token: $2
contexts:
  - name: e2e
    context: {cluster: e2e, user: user}
current-context: e2e
EOF
  chmod 600 "$1"
}
kubeconfig "$work/admin.kubeconfig" "$ADMIN_TOKEN"
kubeconfig "$work/scheduler.kubeconfig" "$SCHED_TOKEN"

# ---------------------------------------------------------------- helm install
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config
export HELM_DATA_HOME=$work/helm/data
helm() { "$HELM" --kubeconfig "$work/admin.kubeconfig" "$@"; }
NS=carbonshift
REL=cs
FULL=cs-carbonshift

kmust POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"}}"
kmust POST "/api/v1/namespaces/$NS/secrets" "$(jq -n '{apiVersion:"v1",kind:"Secret",
  metadata:{name:"carbon-api"},stringData:{"electricitymaps-token":"not-a-real-token"}}')"

# The chart's config is rendered into the ConfigMap that carbonshift then
# runs with below, so the binary validates what the chart writes.
log "helm: installing the chart (second scheduler, 2 replicas, credentials Secret, config, NetworkPolicy)"
if helm install "$REL" "$chart" -n "$NS" --set scheduler.enabled=true \
  --set networkPolicy.enabled=true \
  --set credentials.existingSecret=carbon-api \
  --set credentials.env.CARBONSHIFT_ELECTRICITYMAPS_TOKEN=electricitymaps-token \
  --set-json 'config={"log":{"verbosity":1},"nodes":{"defaultPue":1.2},"zones":{"pue":{"NO":1.1}}}' \
  >"$logs/helm.log" 2>&1; then
  pass "chart: helm install accepted by kube-apiserver (every rendered object created)"
else
  fail "chart: helm install rejected (see helm.log)"
  cat "$logs/helm.log"
  exit 1
fi

check_chart_objects() {
  local ok=1 crt1 crt2 rules
  for p in "/apis/apps/v1/namespaces/$NS/deployments/$FULL" \
    "/apis/apps/v1/namespaces/$NS/deployments/$FULL-scheduler" \
    "/api/v1/namespaces/$NS/services/$FULL" \
    "/api/v1/namespaces/$NS/serviceaccounts/$FULL" \
    "/api/v1/namespaces/$NS/configmaps/$FULL" \
    "/api/v1/namespaces/$NS/configmaps/$FULL-scheduler" \
    "/apis/policy/v1/namespaces/$NS/poddisruptionbudgets/$FULL" \
    "/apis/networking.k8s.io/v1/namespaces/$NS/networkpolicies/$FULL" \
    "/api/v1/namespaces/$NS/secrets/$FULL-server-tls" \
    "/api/v1/namespaces/$NS/secrets/$FULL-client-tls" \
    "/apis/rbac.authorization.k8s.io/v1/clusterroles/$FULL" \
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/$FULL-scheduler-as-kube-scheduler" \
    "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/$FULL-scheduler-auth-reader" \
    "/apis/rbac.authorization.k8s.io/v1/namespaces/$NS/roles/$FULL-scheduler-leader-election"; do
    kget "$p" >/dev/null || ok=0
  done
  [[ $ok == 1 ]] && pass "chart: every expected object is stored" ||
    fail "chart: objects missing"

  rules=$(kget "/apis/rbac.authorization.k8s.io/v1/clusterroles/$FULL" |
    jq -c '[.rules[] | {g: .apiGroups, r: .resources, v: (.verbs | sort)}]')
  if [[ $rules == '[{"g":[""],"r":["nodes"],"v":["list","watch"]},{"g":[""],"r":["pods"],"v":["patch"]},{"g":["events.k8s.io"],"r":["events"],"v":["create"]}]' ]]; then
    pass "chart: ClusterRole is exactly nodes list/watch, pods patch, events create"
  else
    fail "chart: ClusterRole rules are $rules"
  fi

  # The generated certificates: the server certificate names the Service and
  # both chain to the same CA.
  local d=$work/chartcerts
  mkdir -p "$d"
  kget "/api/v1/namespaces/$NS/secrets/$FULL-server-tls" >"$d/server.json"
  kget "/api/v1/namespaces/$NS/secrets/$FULL-client-tls" >"$d/client.json"
  for f in server client; do
    jq -r '.data["tls.crt"]' "$d/$f.json" | base64 -d >"$d/$f.crt"
    jq -r '.data["ca.crt"]' "$d/$f.json" | base64 -d >"$d/$f-ca.crt"
  done
  if openssl verify -CAfile "$d/server-ca.crt" "$d/server.crt" "$d/client.crt" >/dev/null 2>&1 &&
    cmp -s "$d/server-ca.crt" "$d/client-ca.crt" &&
    openssl x509 -in "$d/server.crt" -noout -ext subjectAltName 2>/dev/null |
    grep -c "DNS:$FULL.$NS.svc" >/dev/null; then
    pass "chart: generated server and client certificates chain to one CA; SAN $FULL.$NS.svc"
  else
    fail "chart: generated certificates do not verify against their CA"
  fi

  crt1=$(jq -r '.data["tls.crt"]' "$d/server.json")
  if helm upgrade "$REL" "$chart" -n "$NS" --reuse-values --set replicaCount=3 \
    >>"$logs/helm.log" 2>&1; then
    crt2=$(kget "/api/v1/namespaces/$NS/secrets/$FULL-server-tls" | jq -r '.data["tls.crt"]')
    [[ $crt1 == "$crt2" ]] && pass "chart: helm upgrade keeps the generated certificates" ||
      fail "chart: helm upgrade regenerated the certificates"
  else
    fail "chart: helm upgrade failed (see helm.log)"
  fi

  # A second release with Secrets provided by the user and mTLS off.
  kmust POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"cs-existing"}}'
  for f in server client; do
    kmust POST /api/v1/namespaces/cs-existing/secrets "$(jq -n --arg n "my-$f" \
      --rawfile c "$pki/$f/tls.crt" --rawfile k "$pki/$f/tls.key" --rawfile a "$pki/$f/ca.crt" \
      '{apiVersion:"v1",kind:"Secret",type:"kubernetes.io/tls",metadata:{name:$n},
        stringData:{"tls.crt":$c,"tls.key":$k,"ca.crt":$a}}')"
  done
  if helm install cs2 "$chart" -n cs-existing --set replicaCount=1 \
    --set tls.source=existing --set tls.existing.serverSecret=my-server \
    --set tls.existing.clientSecret=my-client --set scheduler.enabled=true \
    --set scheduler.nodeCacheCapable=false --set tls.clientAuth=false \
    >>"$logs/helm.log" 2>&1; then
    pass "chart: second release with existing Secrets and mTLS off accepted"
    if helm uninstall cs2 -n cs-existing >>"$logs/helm.log" 2>&1 &&
      [[ $(kapi GET /apis/apps/v1/namespaces/cs-existing/deployments/cs2-carbonshift) == 404 ]] &&
      [[ $(kapi GET /apis/rbac.authorization.k8s.io/v1/clusterroles/cs2-carbonshift) == 404 ]] &&
      [[ $(kapi GET /api/v1/namespaces/cs-existing/secrets/my-server) == 200 ]]; then
      pass "chart: helm uninstall removes the release's objects and leaves the user's Secrets"
    else
      fail "chart: helm uninstall left objects behind or removed the user's Secrets"
    fi
  else
    fail "chart: install with tls.source=existing failed (see helm.log)"
  fi
}
want chart && check_chart_objects

# ---------------------------------------------------------------- service account
# The chart's ServiceAccount gets a token from the TokenRequest API; its
# permissions are checked with real requests.
sa_token() {
  kmust POST "/api/v1/namespaces/$NS/serviceaccounts/$FULL/token" \
    '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}'
  jq -r .status.token "$work/resp.json"
}
CS_TOKEN=$(sa_token)
[[ -n $CS_TOKEN && $CS_TOKEN != null ]] || die "TokenRequest returned no token"
kubeconfig "$work/carbonshift.kubeconfig" "$CS_TOKEN"

check_rbac() {
  local ok=1 code
  expect_code() { # <want> <method> <path> [body] [ct]
    local w=$1
    shift
    code=$(TOKEN=$CS_TOKEN kapi "$@")
    if [[ $code != "$w" ]]; then
      log "as $FULL: $1 $2 -> $code, expected $w"
      ok=0
    fi
  }
  expect_code 200 GET /api/v1/nodes
  expect_code 200 GET "/api/v1/nodes?watch=1&timeoutSeconds=1"
  expect_code 403 GET /api/v1/namespaces/$NS/secrets
  expect_code 403 GET /api/v1/pods
  expect_code 403 GET /api/v1/namespaces/$NS/pods/x
  expect_code 403 DELETE /api/v1/namespaces/$NS/pods/x
  expect_code 403 POST /api/v1/namespaces/$NS/configmaps '{"metadata":{"name":"x"}}'
  [[ $ok == 1 ]] && pass "rbac: token from TokenRequest can read Nodes and nothing it should not" ||
    fail "rbac: service-account permissions differ from the chart's contract"
}
want rbac && check_rbac

# ---------------------------------------------------------------- nodes and pods
kmust POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"e2e"}}'
# No controller-manager runs, so the ServiceAccount admission plugin finds no
# "default" account unless the test creates it.
kmust POST /api/v1/namespaces/e2e/serviceaccounts '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}'

# make_node <name> <fixture node> <scenario> <cpu> <memory> <labels JSON>
# A Node shaped like one in the shared fixture (labels, annotations, taints,
# allocatable GPUs), created through the API, then given a Ready status
# through the status subresource, as a kubelet would. Extra labels with a
# null value are removed.
make_node() {
  local name=$1 src=$2 scen=$3 cpu=$4 mem=$5 extra=$6 now obj
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  obj=$(jq --arg src "$src" --arg name "$name" --arg scen "$scen" --arg cpu "$cpu" \
    --arg mem "$mem" --argjson extra "$extra" --arg now "$now" '
    .items[] | select(.metadata.name == $src) |
    {apiVersion: "v1", kind: "Node",
     metadata: {name: $name,
       labels: (.metadata.labels + {"kubernetes.io/hostname": $name,
                 "e2e.carbonshift.io/scenario": $scen} + $extra
                | with_entries(select(.value != null))),
       annotations: .metadata.annotations},
     spec: {taints: .spec.taints},
     status: {
       capacity: (.status.capacity + {cpu: $cpu, memory: $mem}),
       allocatable: (.status.allocatable + {cpu: $cpu, memory: $mem}),
       conditions: [{type: "Ready", status: "True", reason: "KubeletReady",
         message: "set by the e2e test (no kubelet)",
         lastHeartbeatTime: $now, lastTransitionTime: $now}],
       addresses: [{type: "Hostname", address: $name}]}}' "$fixtures/nodes.json")
  [[ -n $obj ]] || die "fixture node $src not found"
  kmust POST /api/v1/nodes "$(jq 'del(.status)' <<<"$obj")"
  kmust PATCH "/api/v1/nodes/$name/status" "$(jq '{status}' <<<"$obj")" \
    application/merge-patch+json
  # The TaintNodesByCondition admission plugin gives every new Node the
  # not-ready taint; the node lifecycle controller (not running here) would
  # lift it once the node is Ready. Do its job: keep only the fixture's taints.
  kmust PATCH "/api/v1/nodes/$name" "$(jq '{spec: {taints: (.spec.taints // [])}}' <<<"$obj")" \
    application/merge-patch+json
}

# In each scenario the node carbonshift should NOT pick has twice the CPU and
# memory, so the scheduler's own NodeResourcesFit (LeastAllocated) prefers it:
# only the extender can move the pod to the greener node, and with the
# extender down the pod lands on the other one. A broken extender cannot pass
# by a coin toss.
BIG_CPU=191000m BIG_MEM=2091932360Ki STD_CPU=95500m STD_MEM=1045966180Ki
log "nodes: creating GPU nodes through the API"
make_node e2e-zone-de gpu-h100-fra-01 zone $BIG_CPU $BIG_MEM '{"carbonshift.io/grid-zone":"DE"}'
make_node e2e-zone-no gpu-h100-fra-01 zone $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"NO"}'
make_node e2e-gpu-v100 gpu-v100-osl-01 gpu $BIG_CPU $BIG_MEM '{"carbonshift.io/grid-zone":"DE"}'
make_node e2e-gpu-h100 gpu-h100-fra-01 gpu $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"DE"}'
make_node e2e-flex-de gpu-h100-fra-01 flex $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"DE"}'
make_node e2e-budget-de gpu-h100-fra-01 budget $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"DE"}'
make_node e2e-budget-no gpu-h100-fra-01 budget $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"NO"}'
make_node e2e-cpu-only cpu-only-fra-03 cpu $STD_CPU $STD_MEM '{}'
# preemption: one 8-GPU node, filled by a low-priority pod.
make_node e2e-preempt-de gpu-h100-fra-01 preempt $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"DE"}'
# dra-extended: GPUs served by a DRA driver through a DeviceClass's
# extendedResourceName (GA in 1.37): the nodes advertise no allocatable
# nvidia.com/gpu, only their ResourceSlices hold the devices.
DRA_DRIVER=gpu.e2e.carbonshift.io
if want dra-extended; then
  make_node e2e-dra-de gpu-h100-fra-01 dra $BIG_CPU $BIG_MEM '{"carbonshift.io/grid-zone":"DE"}'
  make_node e2e-dra-no gpu-h100-fra-01 dra $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"NO"}'
  for n in e2e-dra-de e2e-dra-no; do
    kmust PATCH "/api/v1/nodes/$n/status" \
      '{"status":{"capacity":{"nvidia.com/gpu":null},"allocatable":{"nvidia.com/gpu":null}}}' \
      application/merge-patch+json
    kmust POST /apis/resource.k8s.io/v1/resourceslices "$(jq -nc --arg n "$n" --arg d "$DRA_DRIVER" '
      {apiVersion: "resource.k8s.io/v1", kind: "ResourceSlice", metadata: {name: ($n + "-gpus")},
       spec: {driver: $d, nodeName: $n, pool: {name: $n, generation: 1, resourceSliceCount: 1},
              devices: [range(8) | {name: "gpu-\(.)"}]}}')"
  done
  kmust POST /apis/resource.k8s.io/v1/deviceclasses "$(jq -nc --arg d "$DRA_DRIVER" '
    {apiVersion: "resource.k8s.io/v1", kind: "DeviceClass", metadata: {name: $d},
     spec: {selectors: [{cel: {expression: ("device.driver == \"" + $d + "\"")}}],
            extendedResourceName: "nvidia.com/gpu"}}')"
fi
# all-nodes: more nodes than kube-scheduler offers an extender by default (it
# stops looking once it has found 100 or more feasible ones, from a start that
# moves each cycle): 119 in DE, preferred by NodeResourcesFit, and one in NO.
WIDE_NODES=120
if want all-nodes; then
  log "nodes: creating $WIDE_NODES nodes for all-nodes"
  for ((i = 1; i < WIDE_NODES; i++)); do
    make_node "$(printf 'e2e-wide-de-%03d' "$i")" gpu-h100-fra-01 wide $BIG_CPU $BIG_MEM '{"carbonshift.io/grid-zone":"DE"}'
  done
  make_node e2e-wide-no gpu-h100-fra-01 wide $STD_CPU $STD_MEM '{"carbonshift.io/grid-zone":"NO"}'
fi
log "nodes: e2e-zone-de has taints $(kget /api/v1/nodes/e2e-zone-de | jq -c '[.spec.taints[]? | "\(.key):\(.effect)"]')"

# make_pod <name> <schedulerName> <scenario> <annotations JSON> [fixture]:
# the shared fixture's training pod (8 GPUs, its tolerations; or the pod of
# another fixture request) pinned to one scenario's nodes by nodeSelector.
# With POD_PRIORITY_CLASS set, the pod has that priorityClassName.
make_pod() {
  local obj
  obj=$(jq --arg name "$1" --arg sched "$2" --arg scen "$3" --argjson ann "$4" \
    --arg prio "${POD_PRIORITY_CLASS:-}" '
    .Pod | {apiVersion: "v1", kind: "Pod",
      metadata: {name: $name, namespace: "e2e", labels: {app: "trainer"},
                 annotations: $ann},
      spec: {schedulerName: $sched, restartPolicy: "Never",
             automountServiceAccountToken: false,
             nodeSelector: {"e2e.carbonshift.io/scenario": $scen},
             tolerations: .spec.tolerations,
             containers: [.spec.containers[] | {name, image, command, resources}]}} |
    if $prio != "" then .spec.priorityClassName = $prio else . end' \
    "$fixtures/${5:-filter-nodes.request.json}")
  kmust POST /api/v1/namespaces/e2e/pods "$obj"
}
del_pod() { kapi DELETE "/api/v1/namespaces/e2e/pods/$1?gracePeriodSeconds=0" >/dev/null; }
pod_node() { kget "/api/v1/namespaces/e2e/pods/$1" | jq -r '.spec.nodeName // empty'; }
pod_bound() { [[ -n $(pod_node "$1") ]]; }
pod_sched_msg() { # the PodScheduled condition's message
  kget "/api/v1/namespaces/e2e/pods/$1" |
    jq -r '.status.conditions[]? | select(.type == "PodScheduled") | "\(.reason): \(.message)"'
}
pod_events() { # events.k8s.io Events about a pod: "<controller> <reason>: <note>"
  kget "/apis/events.k8s.io/v1/namespaces/e2e/events?fieldSelector=regarding.name%3D$1" |
    jq -r '.items[] | "\(.reportingController) \(.reason): \(.note)"'
}

# expect_placement <scenario label> <pod> <scheduler> <scenario> <want node> <annotations>
expect_placement() {
  local what=$1 pod=$2 node
  make_pod "$pod" "$3" "$4" "$6"
  if wait_for 60 "pod $pod to bind" pod_bound "$pod"; then
    node=$(pod_node "$pod")
    if [[ $node == "$5" ]]; then
      pass "$what: $pod bound to $node"
    else
      fail "$what: $pod bound to $node, expected $5"
    fi
  else
    fail "$what: $pod not bound within 60s ($(pod_sched_msg "$pod"))"
  fi
}

# ---------------------------------------------------------------- carbonshift
CS_HELP=""
have_cs=0
if [[ -x $CS_BIN ]] && CS_HELP=$("$CS_BIN" help serve 2>&1); then
  have_cs=1
fi
# Features are detected from the binary so that scenarios switch on when
# they land: the Kubernetes client (issue 4) by "kubeconfig" in `help serve`.
has_kube_client() { [[ $have_cs == 1 ]] && grep -qi kubeconfig <<<"$CS_HELP"; }

# The chart's rendered carbonshift configuration file is what the service runs
# with here too.
kget "/api/v1/namespaces/$NS/configmaps/$FULL" | jq -r '.data["config.json"]' >"$work/config.json"

# One setting differs: bodies from 1 KiB on are parsed while they arrive
# (http.streamBodyBytes), so the real kube-scheduler's full-object calls,
# tens of KiB over mTLS here, take that path; at the default 1 MiB these
# few nodes never would.
cs_args=(serve --config "$work/config.json" --listen "127.0.0.1:$CS_PORT"
  --tls-cert "$pki/server/tls.crt" --tls-key "$pki/server/tls.key"
  --tls-client-ca "$pki/server/ca.crt" --set http.streamBodyBytes=1Ki)
if grep -q -- '--kubeconfig' <<<"$CS_HELP"; then
  cs_args+=(--kubeconfig "$work/carbonshift.kubeconfig")
fi
cs_curl() { # <path> [curl args]: over mTLS with the scheduler's client certificate
  local p=$1
  shift
  curl -sS --max-time 5 --cacert "$pki/server/ca.crt" --cert "$pki/client/tls.crt" \
    --key "$pki/client/tls.key" "$@" "https://127.0.0.1:$CS_PORT$p"
}
cs_healthy() { [[ $(cs_curl /healthz -o /dev/null -w '%{http_code}') == 200 ]]; }
start_carbonshift() { # [extra args]: as the chart's ServiceAccount
  start_proc carbonshift env KUBECONFIG="$work/carbonshift.kubeconfig" \
    POD_NAMESPACE="$NS" "$CS_BIN" "${cs_args[@]}" "$@"
  wait_for 20 "carbonshift /healthz" cs_healthy || {
    fail "carbonshift: did not answer /healthz over mTLS within 20s"
    return 1
  }
}

# ---------------------------------------------------------------- kube-scheduler
# The scheduler configuration is the one the chart renders (strictly decoded
# by the real kube-scheduler), pointed at the local carbonshift and certs.
kget "/api/v1/namespaces/$NS/configmaps/$FULL-scheduler" | jq -r '.data["config.yaml"]' \
  >"$work/chart-scheduler.yaml"
start_scheduler() { # <name> <schedulerName> <nodeCacheCapable> [ignorable]
  local cfg=$work/$1.yaml port ign=${4:-true}
  port=$(free_port)
  sed -e "s#urlPrefix: .*#urlPrefix: \"https://127.0.0.1:$CS_PORT\"#" \
    -e "s#/etc/carbonshift/client-tls#$pki/client#g" \
    -e "s#leaderElect: true#leaderElect: false#" \
    -e "s#schedulerName: .*#schedulerName: $2#" \
    -e "s#nodeCacheCapable: .*#nodeCacheCapable: $3#" \
    -e "s#ignorable: .*#ignorable: $ign#" \
    "$work/chart-scheduler.yaml" >"$cfg"
  printf 'clientConnection:\n  kubeconfig: %s\n' "$work/scheduler.kubeconfig" >>"$cfg"
  grep -q "nodeCacheCapable: $3" "$cfg" || die "chart scheduler config has no nodeCacheCapable"
  start_proc "$1" "$SCHEDULER" --config "$cfg" --bind-address 127.0.0.1 \
    --secure-port "$port" --cert-dir "$work/$1-certs" --v 2
  sched_ready() { curl -ksf "https://127.0.0.1:$port/healthz"; }
  wait_for 60 "$1 /healthz" sched_ready || die "$1 did not become healthy"
}
start_scheduler scheduler-nodes carbonshift-nodes false

# deploy/scheduler/*.yaml are loaded by the real kube-scheduler (strict
# decoding, extender validation, TLS files), with local paths substituted;
# --write-config-to makes it exit after building the scheduler.
check_deploy_configs() {
  local f out
  for f in "$root"/deploy/scheduler/*.yaml; do
    grep -q '^kind: KubeSchedulerConfiguration' "$f" || continue
    out=$work/deploy-$(basename "$f")
    sed -e "s#/etc/carbonshift/client-tls#$pki/client#g" \
      -e "s#/etc/kubernetes/carbonshift#$pki/client#g" \
      -e "s#/etc/kubernetes/scheduler.conf#$work/scheduler.kubeconfig#" "$f" >"$out"
    grep -q '^clientConnection:' "$out" ||
      printf 'clientConnection:\n  kubeconfig: %s\n' "$work/scheduler.kubeconfig" >>"$out"
    if "$SCHEDULER" --config "$out" --write-config-to "$out.effective" \
      >"$logs/validate-$(basename "$f" .yaml).log" 2>&1 &&
      grep -q 'nodeCacheCapable: true' "$out.effective"; then
      pass "deploy-configs: kube-scheduler loads deploy/scheduler/$(basename "$f")"
    else
      fail "deploy-configs: kube-scheduler rejects deploy/scheduler/$(basename "$f") ($(tail -n 1 "$logs/validate-$(basename "$f" .yaml).log"))"
    fi
  done
}
want deploy-configs && check_deploy_configs

# docs/time-shifting.md tells how to turn preemption off in the chart's
# scheduler through scheduler.profile: the real kube-scheduler must load
# that rendering and show DefaultPreemption disabled.
check_no_preemption_profile() {
  local out=$work/no-preemption.yaml
  # awk reads to the end: quitting early could kill helm by SIGPIPE, which
  # pipefail and set -e turn into a silent exit of the whole run.
  "$HELM" template cs "$chart" -n "$NS" --set scheduler.enabled=true \
    --set-json 'scheduler.profile={"plugins":{"postFilter":{"disabled":[{"name":"DefaultPreemption"}]}}}' \
    --show-only templates/scheduler.yaml 2>"$logs/no-preemption-template.log" |
    awk '!done && /^  config.yaml: \|/ {on = 1; next} on && /^    / {print substr($0, 5); next} on {on = 0; done = 1}' |
    sed -e "s#/etc/carbonshift/client-tls#$pki/client#g" >"$out"
  printf 'clientConnection:\n  kubeconfig: %s\n' "$work/scheduler.kubeconfig" >>"$out"
  if "$SCHEDULER" --config "$out" --write-config-to "$out.effective" \
    >"$logs/validate-no-preemption.log" 2>&1 &&
    grep -A2 '^    postFilter:' "$out.effective" | grep -c 'name: DefaultPreemption' >/dev/null; then
    pass "deploy-configs: kube-scheduler loads the chart's scheduler with preemption turned off (docs/time-shifting.md)"
  else
    fail "deploy-configs: the chart's scheduler with preemption turned off does not load with DefaultPreemption disabled ($(tail -n 1 "$logs/validate-no-preemption.log"))"
  fi
}
want deploy-configs && check_no_preemption_profile

# ---------------------------------------------------------------- scenarios
scenario_mtls() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/server/ca.crt" \
    -H 'Content-Type: application/json' --data-binary "@$fixtures/filter-nodes.request.json" \
    "https://127.0.0.1:$CS_PORT/filter" 2>/dev/null || true)
  [[ $code == 200 ]] && fail "mtls: /filter answered 200 to a client without a certificate" ||
    pass "mtls: /filter refuses a client without a certificate (got ${code:-no reply})"
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/server/ca.crt" \
    --cert "$pki/untrusted/tls.crt" --key "$pki/untrusted/tls.key" \
    -H 'Content-Type: application/json' --data-binary "@$fixtures/filter-nodes.request.json" \
    "https://127.0.0.1:$CS_PORT/filter" 2>/dev/null || true)
  [[ $code == 200 ]] && fail "mtls: /filter answered 200 to a certificate from another CA" ||
    pass "mtls: /filter refuses a certificate from another CA (got ${code:-no reply})"
  code=$(cs_curl /filter -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$fixtures/filter-nodes.request.json" || true)
  [[ $code == 200 ]] && pass "mtls: /filter answers the scheduler's client certificate" ||
    fail "mtls: /filter with the client certificate -> $code"
  # /healthz and /readyz answer without a client certificate on the extender
  # port too (the chart's probes with probes.port=0; its default probes the
  # plain-HTTP probe listener, http.probeListen).
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/server/ca.crt" \
    "https://127.0.0.1:$CS_PORT/healthz" 2>/dev/null || true)
  [[ $code == 200 ]] && pass "mtls: /healthz answers without a client certificate (kubelet probes)" ||
    fail "mtls: /healthz without a client certificate -> ${code:-no reply}; the chart's kubelet probes need it to answer 200"
}

scenario_placement_zone() {
  expect_placement "placement-zone: NO beats DE for identical H100 nodes" \
    zone-1 carbonshift-nodes zone e2e-zone-no '{"carbonshift.io/expected-duration":"36h"}'
  del_pod zone-1
}

scenario_placement_gpu() {
  expect_placement "placement-gpu: H100 beats V100 in one zone (DE)" \
    gpu-1 carbonshift-nodes gpu e2e-gpu-h100 '{"carbonshift.io/expected-duration":"36h"}'
  del_pod gpu-1
}

scenario_events() {
  local ev
  if ! has_kube_client; then
    fail "events: carbonshift has no Kubernetes client ('kubeconfig' missing from 'carbonshift help serve')"
    return 0
  fi
  make_pod ev-1 carbonshift-nodes zone '{"carbonshift.io/expected-duration":"36h"}'
  wait_for 60 "pod ev-1 to bind" pod_bound ev-1 || true
  # carbonshift's own Events (reasons Carbon*), not the scheduler's, whose
  # reportingController is the scheduler name.
  has_cs_event() { pod_events ev-1 | grep -c '^[^ ]* Carbon[A-Za-z]*: ' >/dev/null; }
  if wait_for 20 "an Event from carbonshift about ev-1" has_cs_event; then
    pass "events: carbonshift recorded an Event on the pod: $(pod_events ev-1 | grep '^[^ ]* Carbon[A-Za-z]*: ' | head -n 1)"
  else
    fail "events: no Event from carbonshift about ev-1 (events: $(pod_events ev-1 | tr '\n' ';'))"
  fi
  del_pod ev-1
}

# The chart's percentageOfNodesToScore: 100 makes the scheduler offer every
# feasible node: carbonshift's filter call names all WIDE_NODES (100 under
# kube-scheduler's default), and the pod binds on the one node in NO.
scenario_all_nodes() {
  local count
  expect_placement "all-nodes: the one NO node among $WIDE_NODES is found" \
    wide-1 carbonshift-nodes wide e2e-wide-no '{"carbonshift.io/expected-duration":"36h"}'
  count=$(grep '"msg":"Decision"' "$logs/carbonshift.log" |
    jq -r 'select(.pod.name == "wide-1" and .verb == "filter") | .nodeCount' | tail -n 1)
  if [[ $count == "$WIDE_NODES" ]]; then
    pass "all-nodes: kube-scheduler offered carbonshift all $count feasible nodes"
  else
    fail "all-nodes: kube-scheduler offered carbonshift ${count:-no} of the $WIDE_NODES feasible nodes (percentageOfNodesToScore not in effect?)"
  fi
  del_pod wide-1
}

# preemption: a high-priority pod that carbonshift holds (over its budget)
# finds the one node full of a low-priority pod. The in-tree filters reject
# the node, so /filter is never called, and kube-scheduler's preemption asks
# carbonshift's /preempt (the chart's preemptVerb), which keeps no node: the
# low-priority pod is not evicted. The control: a high-priority pod
# carbonshift would place does evict it. Once with Node objects (victims as
# whole Pods) and once names-only (victims as UIDs, nodes from the watch).
victim_evicted() { # <pod>: being deleted, or gone
  local body
  body=$(kget "/api/v1/namespaces/e2e/pods/$1" 2>/dev/null) || return 0
  jq -e '.metadata.deletionTimestamp != null' <<<"$body" >/dev/null
}
preemption_case() { # <schedulerName> <pod suffix> <victimsAs>
  local sched=$1 victim=victim-$2 held=held-$2 urgent=urgent-$2 as=$3 what="preemption ($3)"
  POD_PRIORITY_CLASS=e2e-low make_pod "$victim" "$sched" preempt \
    '{"carbonshift.io/expected-duration":"36h"}'
  if ! wait_for 60 "$victim to bind" pod_bound "$victim"; then
    fail "$what: the low-priority pod did not bind: $(pod_sched_msg "$victim")"
    del_pod "$victim"
    return 0
  fi
  POD_PRIORITY_CLASS=e2e-high make_pod "$held" "$sched" preempt \
    '{"carbonshift.io/expected-duration":"36h","carbonshift.io/carbon-budget":"1g","carbonshift.io/on-budget-exceeded":"reject"}'
  preempt_lines() {
    grep '"msg":"Decision"' "$logs/carbonshift.log" |
      jq -c --arg pod "$held" 'select(.pod.name == $pod and .verb == "preempt" and .preemption) | .preemption'
  }
  # Not jq -e over many lines (jq 1.6 judges only the last input's output),
  # nor grep -q (under pipefail, jq could die of SIGPIPE once grep has quit).
  preempt_declined() { preempt_lines | jq -c --arg want "$as" 'select(.kept == 0 and .victimsAs == $want)' | grep -c . >/dev/null; }
  if wait_for 60 "carbonshift's /preempt answer for $held" preempt_declined; then
    pass "$what: kube-scheduler asked /preempt for the held pod, and carbonshift kept no node ($(preempt_lines | tail -n 1))"
  else
    fail "$what: no /preempt call for $held declined by carbonshift with victims as $as ($(preempt_lines | tail -n 1); condition: $(pod_sched_msg "$held"))"
  fi
  # Give a wrongful eviction time to happen: kube-scheduler retries the pod
  # with a backoff of 1 s, then 2 s.
  sleep 5
  if victim_evicted "$victim"; then
    fail "$what: $victim was evicted for $held, which carbonshift holds over its budget"
  elif pod_bound "$held"; then
    fail "$what: $held was bound despite its 1 g budget"
  else
    pass "$what: $victim keeps running, $held stays pending ($(pod_sched_msg "$held" | cut -c1-160))"
  fi
  declined_event() { pod_events "$held" | grep -c ' CarbonPreemptionDeclined: ' >/dev/null; }
  if wait_for 20 "a CarbonPreemptionDeclined Event on $held" declined_event; then
    pass "$what: Event $(pod_events "$held" | grep -m1 ' CarbonPreemptionDeclined: ' | cut -c1-200)"
  else
    fail "$what: no CarbonPreemptionDeclined Event on $held ($(pod_events "$held" | tr '\n' ';'))"
  fi
  del_pod "$held"
  POD_PRIORITY_CLASS=e2e-high make_pod "$urgent" "$sched" preempt \
    '{"carbonshift.io/expected-duration":"36h"}'
  if wait_for 60 "$victim to be evicted for $urgent" victim_evicted "$victim"; then
    pass "$what: a high-priority pod carbonshift would place still evicts the low-priority one"
  else
    fail "$what: $urgent evicted nothing (condition: $(pod_sched_msg "$urgent"))"
  fi
  del_pod "$urgent"
  del_pod "$victim"
}
scenario_preemption() {
  local c
  for c in e2e-low:1000 e2e-high:1000000; do
    kmust POST /apis/scheduling.k8s.io/v1/priorityclasses \
      "{\"apiVersion\":\"scheduling.k8s.io/v1\",\"kind\":\"PriorityClass\",\"metadata\":{\"name\":\"${c%%:*}\"},\"value\":${c#*:}}"
  done
  preemption_case carbonshift-nodes p pods
  if ! has_kube_client; then
    fail "preemption (uids): carbonshift has no Kubernetes client for its node cache"
    return 0
  fi
  start_scheduler scheduler-names carbonshift-names true
  preemption_case carbonshift-names u uids
  stop_proc scheduler-names
}

# dra-extended: the pod asks for nvidia.com/gpu as ever; kube-scheduler
# serves it from the DRA driver's ResourceSlices on nodes that advertise no
# allocatable GPUs. carbonshift counts those nodes' GPUs from GPU Feature
# Discovery's nvidia.com/gpu.count label, so it can still judge them: the pod
# binds in NO, not on the bigger DE node the in-tree plugins prefer.
scenario_dra_extended() {
  local gpus
  expect_placement "dra-extended: NO beats DE for GPUs served by DRA (extendedResourceName)" \
    dra-1 carbonshift-nodes dra e2e-dra-no '{"carbonshift.io/expected-duration":"36h"}'
  gpus=$(grep '"msg":"Decision"' "$logs/carbonshift.log" |
    jq -c 'select(.pod.name == "dra-1" and .verb == "filter" and .nodes) | [.nodes[] | {names, gpus}]' | tail -n 1)
  if [[ $(jq '[.[] | select(.gpus == 8)] | length' <<<"${gpus:-[]}") -gt 0 ]]; then
    pass "dra-extended: the nodes' GPUs were counted from nvidia.com/gpu.count ($gpus)"
  else
    fail "dra-extended: carbonshift did not count the DRA nodes' GPUs (${gpus:-no filter line})"
  fi
  del_pod dra-1
}

# The placements above went through bodies parsed while they arrived
# (http.streamBodyBytes=1Ki in cs_args): the access log marks them.
scenario_streamed() {
  local calls streamed
  calls=$(grep '"msg":"HTTP request"' "$logs/carbonshift.log" |
    grep -cE '"path":"/(filter|prioritize)","status":200' || true)
  streamed=$(grep '"msg":"HTTP request"' "$logs/carbonshift.log" |
    grep -E '"path":"/(filter|prioritize)","status":200' | grep -c '"streamed":true' || true)
  if ((streamed > 0)); then
    pass "streamed: $streamed of kube-scheduler's $calls extender calls were parsed while they arrived, and answered 200"
  else
    fail "streamed: none of kube-scheduler's $calls extender calls was parsed while it arrived (http.streamBodyBytes=1Ki)"
  fi
}

# names-only mode: kube-scheduler sends node names, carbonshift knows the
# Nodes from its own watch through the API server.
scenario_names_only() {
  local req
  if ! has_kube_client; then
    fail "names-only: carbonshift has no Kubernetes client for its node cache ('kubeconfig' missing from 'carbonshift help serve')"
    return 0
  fi
  start_scheduler scheduler-names carbonshift-names true
  expect_placement "names-only: NO beats DE with nodeCacheCapable: true" \
    names-1 carbonshift-names zone e2e-zone-no '{"carbonshift.io/expected-duration":"36h"}'
  del_pod names-1
  stop_proc scheduler-names
}

# A budget that no node meets: the pod stays pending, with the numbers.
scenario_budget() {
  local ann='{"carbonshift.io/expected-duration":"36h","carbonshift.io/carbon-budget":"1g","carbonshift.io/on-budget-exceeded":"reject"}'
  local probe
  # Supported when a direct /filter call refuses the nodes for the budget.
  probe=$(jq --argjson ann "$ann" '.Pod.metadata.annotations = $ann' \
    "$fixtures/filter-nodes.request.json" |
    cs_curl /filter -H 'Content-Type: application/json' --data-binary @- 2>/dev/null || true)
  if ! jq -e '(.FailedAndUnresolvableNodes // {}) | length > 0' <<<"$probe" >/dev/null 2>&1; then
    fail "budget: a direct /filter call does not refuse the nodes for a 1 g budget: $(head -c 300 <<<"$probe")"
    return 0
  fi
  make_pod budget-1 carbonshift-nodes budget "$ann"
  budget_msg() { pod_sched_msg budget-1 | grep -ciE 'budget.*[0-9]' >/dev/null; }
  if wait_for 60 "budget-1 to be refused with the numbers" budget_msg; then
    if pod_bound budget-1; then
      fail "budget: budget-1 was bound despite its 1 g budget"
    else
      pass "budget: over-budget pod stays pending: $(pod_sched_msg budget-1)"
    fi
  else
    fail "budget: budget-1 condition: $(pod_sched_msg budget-1)"
  fi
  if has_kube_client; then
    budget_event() { pod_events budget-1 | grep -c ' CarbonBudgetExceeded: ' >/dev/null; }
    if wait_for 20 "a CarbonBudgetExceeded Event" budget_event; then
      pass "budget: Event $(pod_events budget-1 | grep -m1 ' CarbonBudgetExceeded: ')"
    else
      fail "budget: no CarbonBudgetExceeded Event ($(pod_events budget-1 | tr '\n' ';'))"
    fi
  fi
  del_pod budget-1
}

# A flexible pod waits for a greener window, then runs when it arrives. The
# `file` provider replays the real DE trace from ../shared/data; the replay
# starts 75 s before the hour boundary with the sharpest drop in intensity
# found in the trace (computed here, not hard-coded), so the greener window
# arrives 75 s into the test.
scenario_flexible_wait() {
  local trace=$CS_SHARED/data/carbon/em-2023/DE.csv cfg=$work/config-file.json
  local err drop hour from t0 repeat
  drop=$(awk -F, 'NR > 1 && $5 + 0 > 0 && $6 + 0 > 0 { n++; t[n] = $1; a[n] = $5; b[n] = $6 }
    END {
      for (i = 2; i < n; i++) {
        if (a[i + 1] > a[i] * 1.05 || b[i + 1] > b[i] * 1.05) continue
        r = a[i - 1] / a[i]; if (b[i - 1] / b[i] < r) r = b[i - 1] / b[i]
        if (r > best) { best = r; at = t[i] }
      }
      if (best > 1.2) printf "%s|%.2f\n", at, best
    }' "$trace")
  [[ -n $drop ]] || {
    fail "flexible-wait: no hour in $trace drops by 20 % (fixture data changed?)"
    return 0
  }
  hour=${drop%|*}
  from=$(date -u -d "$hour UTC - 75 seconds" +%Y-%m-%dT%H:%M:%SZ)
  jq --arg trace "$trace" --arg from "$from" '. + {
      carbon: {routes: {"*": ["file"]}},
      file: {traces: {DE: $trace}, replayFrom: $from},
      plan: {minSavingGrams: 0}}' "$work/config.json" >"$cfg"
  if ! err=$("$CS_BIN" serve --config "$cfg" --print-config 2>&1 >/dev/null); then
    fail "flexible-wait: carbonshift rejects the file provider's configuration: $(head -n 1 <<<"$err")"
    return 0
  fi
  if ! has_kube_client; then
    fail "flexible-wait: carbonshift has no Kubernetes client to store the plan on the pod"
    return 0
  fi
  log "flexible-wait: replaying DE from $from (intensity drops ${drop#*|}x at $hour)"
  stop_proc carbonshift
  t0=$(date +%s)
  start_carbonshift --config "$cfg" || return 0
  make_pod flex-1 carbonshift-nodes flex \
    '{"carbonshift.io/expected-duration":"5m","carbonshift.io/max-delay":"10m"}'
  wait_msg() { pod_sched_msg flex-1 | grep -ci 'waiting for a greener window' >/dev/null; }
  if wait_for 40 "flex-1 to wait" wait_msg && ! pod_bound flex-1; then
    pass "flexible-wait: pod waits: $(pod_sched_msg flex-1)"
    if pod_events flex-1 | grep -c ' FailedScheduling: .*greener window' >/dev/null; then
      pass "flexible-wait: the scheduler's FailedScheduling Event carries the message"
    else
      fail "flexible-wait: no FailedScheduling Event with the message ($(pod_events flex-1 | tr '\n' ';'))"
    fi
    has_plan() { kget /api/v1/namespaces/e2e/pods/flex-1 |
      jq -e '.metadata.annotations["carbonshift.io/planned-start"] // empty' >/dev/null; }
    if wait_for 20 "the planned start on flex-1" has_plan; then
      pass "flexible-wait: plan stored on the pod (carbonshift.io/planned-start $(kget /api/v1/namespaces/e2e/pods/flex-1 | jq -r '.metadata.annotations["carbonshift.io/planned-start"]'))"
    else
      fail "flexible-wait: no carbonshift.io/planned-start annotation on flex-1"
    fi
    # Each Node update re-queues the waiting pod; tries that decide the same
    # are logged as short lines naming the full one (log.decisionRepeatSeconds).
    for i in 1 2 3; do
      kmust PATCH /api/v1/nodes/e2e-flex-de "{\"metadata\":{\"labels\":{\"e2e.carbonshift.io/retry\":\"$i\"}}}" \
        application/merge-patch+json
      sleep 4
    done
    flex_lines() {
      grep '"msg":"Decision"' "$logs/carbonshift.log" |
        jq -c 'select(.pod.name == "flex-1" and .verb == "filter")'
    }
    repeat=$(flex_lines | jq -c 'select(.sameAs)' | tail -n 1)
    if [[ -n $repeat ]] && flex_lines | jq -c --arg id "$(jq -r .sameAs <<<"$repeat")" \
      'select(.requestId == $id and .nodes)' | grep -c . >/dev/null; then
      pass "flexible-wait: retries of the waiting pod are short lines naming its full one ($(flex_lines | wc -l) lines, the last repeat: $(jq -c '{outcome, sameAs, repeats, sinceSeconds}' <<<"$repeat"))"
    else
      fail "flexible-wait: no short Decision line naming a full one among the waiting pod's $(flex_lines | wc -l) filter lines"
    fi
  else
    fail "flexible-wait: flex-1 did not wait (node '$(pod_node flex-1)'): $(pod_sched_msg flex-1)"
  fi
  # Once the window has arrived, a node update re-queues the pod at once
  # (otherwise the scheduler retries within 5 minutes).
  sleep $((t0 + 80 - $(date +%s) > 0 ? t0 + 80 - $(date +%s) : 0))
  kmust PATCH /api/v1/nodes/e2e-flex-de '{"metadata":{"labels":{"e2e.carbonshift.io/touch":"1"}}}' \
    application/merge-patch+json
  if wait_for 60 "flex-1 to bind when its window arrives" pod_bound flex-1; then
    pass "flexible-wait: pod bound once the greener window arrived ($(($(date +%s) - t0))s after the replay started)"
  else
    fail "flexible-wait: flex-1 still pending after its window: $(pod_sched_msg flex-1)"
  fi
  del_pod flex-1
  stop_proc carbonshift
  start_carbonshift || true
}

# With carbonshift down and ignorable: true, pods still schedule, and land
# where the scheduler's own plugins put them (the node with more room).
scenario_ignorable() {
  stop_proc carbonshift
  expect_placement "ignorable: carbonshift down, pod still scheduled by the in-tree plugins" \
    down-1 carbonshift-nodes zone e2e-zone-de '{"carbonshift.io/expected-duration":"36h"}'
  del_pod down-1
}

# The extender is really in the scheduler's path: with carbonshift down and
# ignorable: false, a GPU pod is refused with the connection error, while a
# pod requesting no GPU (not in managedResources) is never sent and binds.
scenario_extender_wired() {
  local msg
  stop_proc carbonshift
  start_scheduler scheduler-strict carbonshift-strict false false
  make_pod strict-gpu carbonshift-strict zone '{"carbonshift.io/expected-duration":"36h"}'
  make_pod strict-cpu carbonshift-strict cpu '{}' prioritize-plain-pod.request.json
  strict_refused() { pod_sched_msg strict-gpu | grep -c "127.0.0.1:$CS_PORT" >/dev/null; }
  if wait_for 60 "strict-gpu to be refused" strict_refused && ! pod_bound strict-gpu; then
    pass "extender-wired: carbonshift down + ignorable: false keeps a GPU pod pending ($(pod_sched_msg strict-gpu | cut -c1-120)...)"
  else
    fail "extender-wired: GPU pod not refused as expected: bound to '$(pod_node strict-gpu)', condition: $(pod_sched_msg strict-gpu)"
  fi
  if wait_for 60 "strict-cpu to bind" pod_bound strict-cpu; then
    pass "managed-resources: a pod requesting no GPU is not sent to carbonshift (bound to $(pod_node strict-cpu))"
  else
    fail "managed-resources: CPU-only pod not bound: $(pod_sched_msg strict-cpu)"
  fi
  del_pod strict-gpu
  del_pod strict-cpu
  stop_proc scheduler-strict
}

if [[ $have_cs == 1 ]]; then
  log "carbonshift: $("$CS_BIN" version 2>&1 | head -n 1)"
  if "$CS_BIN" serve --config "$work/config.json" --print-config >"$logs/print-config.log" 2>&1; then
    pass "config: carbonshift accepts the config.json the chart rendered ($(jq -c . "$work/config.json"))"
  else
    fail "config: carbonshift rejects the chart's config.json: $(head -n 3 "$logs/print-config.log")"
  fi
  if start_carbonshift; then
    want mtls && scenario_mtls
    want placement-zone && scenario_placement_zone
    want placement-gpu && scenario_placement_gpu
    want all-nodes && scenario_all_nodes
    want streamed && scenario_streamed
    want events && scenario_events
    want names-only && scenario_names_only
    want budget && scenario_budget
    want flexible-wait && scenario_flexible_wait
    want preemption && scenario_preemption
    want dra-extended && scenario_dra_extended
  fi
else
  for s in mtls placement-zone placement-gpu all-nodes streamed events names-only budget flexible-wait preemption dra-extended; do
    want "$s" && fail "$s: no runnable carbonshift ('$CS_BIN help serve' failed)"
  done
fi
want ignorable && scenario_ignorable
want extender-wired && scenario_extender_wired
exit 0
