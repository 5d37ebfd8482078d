#!/usr/bin/env bash
# Renders plain manifests from charts/carbonshift into deploy/manifests/ for
# users without Helm (`make manifests`), with the pinned, cached helm.
# The manifests use Secrets the user creates (deploy/README.md shows how), so
# no private key is ever rendered into the repository.
# Usage: render-manifests.sh [namespace] [output dir (default deploy/manifests)]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ns=${1:-carbonshift}
helm_dir=$("$root/tests/e2e/build-components.sh" helm | sed -n 's/^helm=//p')
kube_version=$("$root/tests/e2e/build-components.sh" --version kube)
out=${2:-$root/deploy/manifests}
mkdir -p "$out"

render() { # <file> <helm args...>
  local file=$1
  shift
  {
    echo "# Rendered from charts/carbonshift by \`make manifests\` (namespace $ns,"
    echo "# Kubernetes $kube_version). Do not edit: change the chart and re-render."
    echo "# Create the namespace and the Secrets first (deploy/README.md)."
    if [[ " $* " == *" scheduler.enabled=true "* ]]; then
      echo "# kube-scheduler is pinned to $kube_version: deploy/README.md says how to"
      echo "# run your cluster's version instead."
    fi
    HELM_CACHE_HOME=$(mktemp -d) "$helm_dir/helm" template carbonshift "$root/charts/carbonshift" \
      --namespace "$ns" --kube-version "$kube_version" --skip-tests \
      --set tls.source=existing \
      --set tls.existing.serverSecret=carbonshift-server-tls \
      --set tls.existing.clientSecret=carbonshift-client-tls "$@"
  } >"$out/$file"
  echo "manifests: wrote $out/$file"
}
render carbonshift.yaml
render carbonshift-with-scheduler.yaml --set scheduler.enabled=true
