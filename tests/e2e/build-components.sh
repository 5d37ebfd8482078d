#!/usr/bin/env bash
# Builds the real Kubernetes components the e2e test runs (kube-apiserver,
# kube-scheduler, etcd) and helm from the Go module proxy, pinned by the
# wrapper modules in tests/e2e/components/*/go.mod (+ go.sum).
#
# Binaries are cached outside the work tree, keyed by component and version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/carbonshift-e2e/<component>-<version>/
# A directory is reused when its .stamp matches the sha256 of the wrapper
# module's files, so later runs and fresh clones on the same machine (CI) skip
# the build; editing a wrapper module rebuilds only that component.
#
# Usage: build-components.sh [--print-dirs] [etcd|kube|helm ...]
#        build-components.sh --version etcd|kube|helm
#   Prints "<component>=<dir>" lines for the built components on stdout;
#   progress and build timings go to stderr. --print-dirs builds nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
comp_dir=$here/components
cache_root=${CARBONSHIFT_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/carbonshift-e2e}

# The Go toolchain on PATH builds everything; never download another one.
export GOTOOLCHAIN=local
export GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
export CGO_ENABLED=0

log() { printf 'build-components: %s\n' "$*" >&2; }

# Version of a required module, read from the wrapper's go.mod.
mod_version() { # <component> <module path>
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }
                 $1 == "require" && $2 == m { print $3; exit }' \
    "$comp_dir/$1/go.mod"
}

# The stamp covers the wrapper module's files and the component's build
# function (flags), so changing either rebuilds that component only.
stamp_of() { # <component>
  {
    (cd "$comp_dir/$1" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    declare -f "build_$1" go_build
  } | sha256sum | cut -d' ' -f1
}

# Runs "$@" (a go build) into a temporary directory next to <dir>, then moves
# it into place so an interrupted build never leaves a half-filled cache dir.
build_into() { # <component> <dir> <build function>
  local comp=$1 dir=$2 fn=$3 stamp tmp start end
  stamp=$(stamp_of "$comp")
  if [[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$stamp" ]]; then
    log "$comp: cached in $dir"
    return 0
  fi
  mkdir -p "$cache_root"
  tmp=$(mktemp -d "$cache_root/.tmp-$comp.XXXXXX")
  need_go
  log "$comp: building into $dir (this can take a while on a cold cache)"
  start=$(date +%s)
  if ! (cd "$comp_dir/$comp" && "$fn" "$tmp"); then
    rm -rf "$tmp"
    log "$comp: build FAILED"
    return 1
  fi
  end=$(date +%s)
  chmod 755 "$tmp"
  echo "$stamp" >"$tmp/.stamp"
  printf '%s built in %ss on %s (%s cores)\n' "$comp" $((end - start)) \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" >"$tmp/.build-time"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "$comp: built in $((end - start))s"
}

go_build() { # <out dir> <ldflags> <packages...>
  local out=$1 ldflags=$2
  shift 2
  nice -n 10 go build -ldflags="-s -w $ldflags" -o "$out/" "$@"
}

kube_version() { mod_version kube k8s.io/kubernetes; }
etcd_version() { mod_version etcd go.etcd.io/etcd/server/v3; }
helm_version() { mod_version helm helm.sh/helm/v3; }

build_kube() {
  local v major minor x
  v=$(kube_version)
  major=${v#v}
  major=${major%%.*}
  minor=${v#v*.}
  minor=${minor%%.*}
  # The same version variables hack/lib/version.sh sets, so /version and
  # helm's Capabilities.KubeVersion report the real release.
  x=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean"
  done
  go_build "$1" "$x" ./cmd/kube-apiserver ./cmd/kube-scheduler
}

build_etcd() {
  go_build "$1" "" .
  mv "$1/etcd" "$1/etcd.tmp" 2>/dev/null || true
  mv "$1/etcd.tmp" "$1/etcd"
}

build_helm() {
  # As helm's own Makefile: the default Capabilities.KubeVersion (lint and
  # template without a cluster) follows the client-go it is built with.
  local cg major minor p x
  cg=$(go list -m -f '{{.Version}}' k8s.io/client-go)
  major=${cg#v}
  major=$((${major%%.*} + 1))
  minor=${cg#v*.}
  minor=${minor%%.*}
  x="-X helm.sh/helm/v3/internal/version.version=$(helm_version)"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    x+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
  go_build "$1" "$x" helm.sh/helm/v3/cmd/helm
}

dir_of() { # <component>
  case $1 in
  kube) echo "$cache_root/kubernetes-$(kube_version)" ;;
  etcd) echo "$cache_root/etcd-$(etcd_version)" ;;
  helm) echo "$cache_root/helm-$(helm_version)" ;;
  *)
    log "unknown component '$1' (expected etcd, kube or helm)"
    return 2
    ;;
  esac
}

print_only=0
case ${1:-} in
--print-dirs)
  print_only=1
  shift
  ;;
--version) # --version <component>: the pinned version, nothing built
  "${2:?--version needs a component}_version"
  exit 0
  ;;
esac
comps=("$@")
[[ ${#comps[@]} -gt 0 ]] || comps=(etcd kube helm)

# Only needed when something is not cached yet.
need_go() {
  local want have
  # The official Go tarball's place, for environments whose PATH omits it.
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || {
    log "go is not on PATH (needed to build the e2e components)"
    exit 2
  }
  want=$(awk '$1 == "go" { print $2; exit }' "$comp_dir/kube/go.mod")
  have=$(go env GOVERSION | sed 's/^go//')
  if [[ $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n 1) != "$want" ]]; then
    log "go $have is too old: the pinned Kubernetes needs go >= $want"
    exit 2
  fi
}

for c in "${comps[@]}"; do
  d=$(dir_of "$c")
  if [[ $print_only == 0 ]]; then
    build_into "$c" "$d" "build_$c"
  fi
  echo "$c=$d"
done
