#!/usr/bin/env bash
# Reruns every command of docs/benchmarks.md and prints its tables as
# Markdown, one command per figure (the commands are echoed to stderr).
# Run from the repository root with ../shared beside it:
#   docs/sim/benchmarks.sh [lwa1|ar1|lwa2|ceiling|noise|philly|short|split|bound|speed]...
# Needs bin/carbonshift (make) and jq. Runs one simulation at a time, under
# nice, as the machine is shared.
set -euo pipefail

B=${CS_BIN:-bin/carbonshift}
SH=${CS_SHARED:-../shared}
L=$SH/data/carbon/lwa-2020
S=$SH/data/carbon/em-2023
P=$SH/data/jobs/philly.csv
C=(--cluster docs/sim/cluster-eu.json --carbon "$S/DE.csv" --carbon "$S/NO.csv"
  --carbon "$S/ES.csv" --year 2023)

sim() {
  echo "+ carbonshift simulate $*" >&2
  nice "$B" simulate "$@"
}

# The savings of one policy in a --json report.
pct() { jq -r --arg p "$1" '.policies[] | select(.policy == $p) | .savingsPct'; }

lwa1() {
  echo "| zone, window | published (5 %) | carbonshift 0 % | 5 % | 10 % | bound |"
  echo "|---|---|---|---|---|---|"
  local pub=(1.40 2.20 11.74 4.77 6.30 7.95 3.00 4.08 5.58) i=0
  for z in DE GB FR; do
    for w in 2 4 8; do
      local row="| $z ±$w h | ${pub[$i]}"
      for f in perfect gauss:5% gauss:10%; do
        local j
        j=$(sim --preset lwa-nightly --window "${w}h" --carbon "$L/$z.csv" \
          --forecast "$f" --seeds 10 --json)
        row+=" | $(jq -r .savingsPct <<<"$j")"
        [ "$f" = gauss:10% ] && row+=" | $(pct bound <<<"$j")"
      done
      echo "$row |"
      i=$((i + 1))
    done
  done
}

# White against autocorrelated noise of the same sigma.
ar1() {
  echo "| zone, window | perfect | gauss:10% | ar1:10%:0.9 | ar1:10%:0.99 |"
  echo "|---|---|---|---|---|"
  for z in DE GB FR; do
    local row="| $z ±8 h"
    for f in perfect gauss:10% ar1:10%:0.9 ar1:10%:0.99; do
      row+=" | $(sim --preset lwa-nightly --window 8h --carbon "$L/$z.csv" \
        --forecast "$f" --seeds 10 --policy agnostic,carbonshift --json |
        jq -r .savingsPct)"
    done
    echo "$row |"
  done
}

lwa2() {
  echo "| zone | published | oracle | carbonshift, 72 h horizon | carbonshift, 7 d horizon | bound (preemptive) |"
  echo "|---|---|---|---|---|---|"
  local pub=("5.93 / 5.91 / 5.88" "6.57 / 6.56 / 6.52" "4.79 / 4.77 / 4.72") i=0
  for z in DE GB FR; do
    local o="" h72="" h7d="" bound=""
    for f in perfect gauss:5% gauss:10%; do
      local j
      j=$(sim --preset lwa-ml --carbon "$L/$z.csv" --forecast "$f" --seeds 10 --json)
      h72+="${h72:+ / }$(jq -r .savingsPct <<<"$j")"
      if [ "$f" = perfect ]; then
        o=$(pct oracle <<<"$j")
        bound=$(pct bound <<<"$j")
      fi
      j=$(sim --preset lwa-ml --carbon "$L/$z.csv" --forecast "$f" --seeds 10 \
        --horizon 7d --policy agnostic,carbonshift --json)
      h7d+="${h7d:+ / }$(jq -r .savingsPct <<<"$j")"
    done
    echo "| $z | ${pub[$i]} | $o | $h72 | $h7d | $bound |"
    i=$((i + 1))
  done
  echo
  # The 7 d runs drop the late-December jobs whose horizon leaves the trace,
  # so they give the oracle over their own jobs too.
  echo "| semi-weekly, 5 % noise | published | oracle | carbonshift 72 h | carbonshift 7 d | oracle on the 7 d jobs |"
  echo "|---|---|---|---|---|---|"
  pub=(14.11 14.73 11.12)
  i=0
  for z in DE GB FR; do
    local j k
    j=$(sim --preset lwa-ml --deadline semi-weekly --carbon "$L/$z.csv" \
      --forecast gauss:5% --seeds 10 --policy agnostic,carbonshift,oracle --json)
    k=$(sim --preset lwa-ml --deadline semi-weekly --carbon "$L/$z.csv" \
      --forecast gauss:5% --seeds 10 --horizon 7d \
      --policy agnostic,carbonshift,oracle --json)
    echo "| $z | ${pub[$i]} | $(pct oracle <<<"$j") | $(jq -r .savingsPct <<<"$j") | $(jq -r .savingsPct <<<"$k") | $(pct oracle <<<"$k") ($(jq -r .comparedJobs <<<"$k") jobs) |"
    i=$((i + 1))
  done
}

# The per-job ceiling: one J-hour job per hourly arrival of 2023 that may
# wait S hours; oracle (non-interrupting) / bound (interrupting), in %.
ceiling() {
  echo "| zone | J1 S24 | J6 S24 | J24 S24 | J24 S168 | J48 S24 | J168 S24 |"
  echo "|---|---|---|---|---|---|---|"
  local jobs
  jobs=$(mktemp)
  for z in DE GB US-CAL-CISO; do
    local row="| $z"
    for js in "1 24" "6 24" "24 24" "24 168" "48 24" "168 24"; do
      set -- $js
      awk -v J="$1" -v S="$2" 'BEGIN { print "id,submit,duration,gpus,max_delay"
        for (i = 0; i < 8760 - J - S; i++)
          printf "j%d,%s,%dh,1,%dh\n", i, strftime("%Y-%m-%dT%H:%M:%SZ", 1672531200 + i * 3600, 1), J, S }' >"$jobs"
      row+=" | $(sim --jobs "$jobs" --carbon "$S/$z.csv" \
        --policy agnostic,oracle,bound --bound-max 5000000 --json |
        jq -r '"\(.policies[1].savingsPct) / \(.policies[2].savingsPct)"')"
    done
    echo "$row |"
  done
  rm -f "$jobs"
}

# White forecast noise against the oracle: J = 6 h, S = 24 h arrivals, how
# much more carbonshift emits than the oracle, in %.
noise() {
  echo "| zone | perfect | gauss:10% | gauss:20% | gauss:50% |"
  echo "|---|---|---|---|---|"
  local jobs
  jobs=$(mktemp)
  awk 'BEGIN { print "id,submit,duration,gpus,max_delay"
    for (i = 0; i < 8760 - 30; i++)
      printf "j%d,%s,6h,1,24h\n", i, strftime("%Y-%m-%dT%H:%M:%SZ", 1672531200 + i * 3600, 1) }' >"$jobs"
  for z in DE GB US-CAL-CISO; do
    local row="| $z"
    for f in perfect gauss:10% gauss:20% gauss:50%; do
      row+=" | +$(sim --jobs "$jobs" --carbon "$S/$z.csv" --forecast "$f" \
        --seeds 10 --policy agnostic,carbonshift,oracle --json |
        jq -r '[.policies[] | {key: .policy, value: .comparedTotalKg}] |
          from_entries | 1000 * (.carbonshift / .oracle - 1) | round / 10')"
    done
    echo "$row |"
  done
  rm -f "$jobs"
}

# One row per policy of a Philly report: total, savings, the split. The
# operational and embodied savings are over the compared jobs, as the
# saving and its split are, so that they add up.
philly_rows() {
  jq -r --arg s "$1" '
    (.policies[] | select(.policy == "agnostic")) as $a |
    .policies[] |
    "| \($s) | \(.policy) | \(.jobs) | \(.notRun) | \(.energyKwh | round) | \(.totalKg | round) | \(.savingsPct) | \(($a.comparedOperationalKg - .comparedOperationalKg) | round) | \(($a.comparedEmbodiedKg - .comparedEmbodiedKg) | round) | \(.placementSavingKg | round) | \(.timingSavingKg | round) | \(.waitMeanHours) / \(.waitP95Hours) | \(.deadlineMisses) |"'
}

philly() {
  echo "| slack | policy | jobs | not run | energy kWh | total kg | saving % | operational saving kg | embodied saving kg | placement kg | timing kg | wait mean / p95 h | misses |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for s in none 6h 24h; do
    local extra=()
    [ "$s" != none ] && extra=(--slack "$s")
    sim --jobs "$P" "${C[@]}" "${extra[@]}" --policy agnostic,carbonshift,oracle \
      --json | philly_rows "$s"
  done
}

# The same jobs on cluster-eu with every pool cut to a sixth of its nodes
# (docs/sim/cluster-eu-sixth.json, 224 GPUs): jobs queue, some past the end
# of the traces, and each policy fails to run different ones.
short() {
  echo "| policy | jobs | not run | compared jobs | total kg | compared kg | saving % | placement kg | timing kg | wait mean / p95 h |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  sim --jobs "$P" --cluster docs/sim/cluster-eu-sixth.json --carbon "$S/DE.csv" \
    --carbon "$S/NO.csv" --carbon "$S/ES.csv" --year 2023 \
    --policy agnostic,carbonshift,oracle --json |
    jq -r '.comparedJobs as $n | .policies[] |
      "| \(.policy) | \(.jobs) | \(.notRun) | \($n) | \(.totalKg | round) | \(.comparedTotalKg | round) | \(.savingsPct) | \(.placementSavingKg | round) | \(.timingSavingKg | round) | \(.waitMeanHours) / \(.waitP95Hours) |"'
}

# Placement split: the same jobs on a cluster whose pools differ only by
# zone (every pool A100s, same age and PUE), and on one whose pools differ
# only by GPU and age (every pool in DE).
split() {
  echo "| cluster | carbonshift saving % | oracle saving % |"
  echo "|---|---|---|"
  for c in cluster-eu cluster-eu-zones-only cluster-eu-gpus-only \
    cluster-eu-model-only cluster-eu-pue-only cluster-eu-age-only; do
    local j
    j=$(sim --jobs "$P" --cluster "docs/sim/$c.json" --carbon "$S/DE.csv" \
      --carbon "$S/NO.csv" --carbon "$S/ES.csv" --year 2023 \
      --policy agnostic,carbonshift,oracle --json)
    echo "| $c | $(pct carbonshift <<<"$j") | $(pct oracle <<<"$j") |"
  done
}

bound() {
  echo "| jobs submitted from 2023-10-16 | jobs | carbonshift saving / captured | oracle saving / captured | bound saving | bound's note |"
  echo "|---|---|---|---|---|---|"
  for to in 2023-10-16T06:00:00Z 2023-10-16T12:00:00Z 2023-10-17T00:00:00Z; do
    sim --jobs "$P" "${C[@]}" --slack 6h --from 2023-10-16T00:00:00Z \
      --to "$to" --bound-max 1000000 --json |
      jq -r --arg to "$to" '.scenario.jobCount as $n |
        [.policies[] | {key: .policy, value: .}] | from_entries |
        "| to \($to) | \($n) | \(.carbonshift.savingsPct) % / \(.carbonshift.boundCapturedPct) % | \(.oracle.savingsPct) % / \(.oracle.boundCapturedPct) % | \(.bound.savingsPct) % | \(.bound.note) |"'
  done
}

speed() {
  for s in none 6h 24h; do
    local extra=()
    [ "$s" != none ] && extra=(--slack "$s")
    echo "+ time carbonshift simulate --jobs $P ${C[*]} ${extra[*]} --policy agnostic,carbonshift,oracle" >&2
    local t0 t1
    t0=$(date +%s.%N)
    nice "$B" simulate --jobs "$P" "${C[@]}" "${extra[@]}" \
      --policy agnostic,carbonshift,oracle --json >/dev/null
    t1=$(date +%s.%N)
    echo "| $s | $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s | $(cut -d' ' -f1-3 /proc/loadavg) |"
  done
}

[ $# -eq 0 ] && set -- lwa1 ar1 lwa2 ceiling noise philly short split bound speed
for t in "$@"; do
  echo "### $t"
  "$t"
  echo
done
