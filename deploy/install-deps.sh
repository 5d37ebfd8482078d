#!/usr/bin/env bash
# Installs the Debian packages carbonshift needs to build and test, and only
# the missing ones. Called by the Makefile before any build; safe to re-run.
# Uses apt-get as root, sudo otherwise.
# Usage: install-deps.sh [build|test|format]: format adds only clang-format,
# for `make format`.
set -euo pipefail

build_pkgs=(gcc make pkg-config libmicrohttpd-dev libcjson-dev
  libcurl4-openssl-dev libssl-dev libgnutls28-dev libyaml-dev libglpk-dev)
test_pkgs=(check openssl valgrind curl jq clang-14 libclang-rt-14-dev libnghttp2-dev)

case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
format) want=(clang-format) ;;
*) echo "usage: install-deps.sh [build|test|format]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
