#!/usr/bin/env bash
# The container image's runtime stage (deploy/Dockerfile) installs its shared
# libraries by package name, separately from the build. This check reads the
# libraries bin/carbonshift really links (ELF NEEDED entries), finds the
# Debian package that ships each one on this machine, and fails when the
# runtime stage's apt-get line does not name it: an image that builds but
# cannot start ("error while loading shared libraries") is caught here, where
# no container runtime is available.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-$root/bin/carbonshift}
dockerfile=$root/deploy/Dockerfile

# The runtime stage is everything after the last FROM line.
runtime=$(awk '/^FROM /{buf=""} {buf = buf $0 "\n"} END{printf "%s", buf}' "$dockerfile")
# Packages of the base image itself (libc6 and what it pulls in).
base_pkgs=" libc6 libgcc-s1 "

# Read once: an awk that stops early in `ldconfig -p | awk` would kill
# ldconfig with SIGPIPE, which pipefail turns into a failed check.
cache=$(ldconfig -p)
fails=0 checked=0
while read -r soname; do
  path=$(awk -v s="$soname" '$1 == s && /x86-64|x86_64/ && !p {print $NF; p = 1}' <<<"$cache")
  [[ -n $path ]] || path=$(awk -v s="$soname" '$1 == s && !p {print $NF; p = 1}' <<<"$cache")
  if [[ -z $path ]]; then
    echo "check-image-libs: FAIL $soname: not found by ldconfig on this machine"
    fails=$((fails + 1))
    continue
  fi
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | awk -F: 'NR == 1 {print $1}') || true
  [[ -n $pkg ]] || pkg=$(dpkg -S "$path" 2>/dev/null | awk -F: 'NR == 1 {print $1}') || true
  checked=$((checked + 1))
  if [[ -z $pkg ]]; then
    echo "check-image-libs: FAIL $soname ($path): no Debian package owns it"
    fails=$((fails + 1))
  elif [[ $base_pkgs == *" $pkg "* ]] || grep -qE "(^|[[:space:]])$pkg([[:space:]]|\\\\|$)" <<<"$runtime"; then
    echo "check-image-libs: ok   $soname from $pkg"
  else
    echo "check-image-libs: FAIL $soname is linked but its package $pkg is not installed by the runtime stage of deploy/Dockerfile"
    fails=$((fails + 1))
  fi
done < <(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}')

[[ $checked -gt 0 ]] || { echo "check-image-libs: FAIL no NEEDED entries read from $bin"; exit 1; }
echo "check-image-libs: $((checked - fails)) passed, $fails failed"
[[ $fails -eq 0 ]]
