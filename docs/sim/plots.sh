#!/usr/bin/env bash
# Redraws the two plots of docs/benchmarks.md from carbonshift simulate's
# output, with gnuplot (Debian: gnuplot-nox):
#   docs/sim/week.png    a week of intensity per zone (DE, NO, ES, 2023) and
#                        the GPUs busy there under each policy (Philly, 24 h
#                        of slack, from --jobs-out);
#   docs/sim/slack.png   savings against slack (Philly, from --csv).
# Run from the repository root with ../shared beside it: docs/sim/plots.sh
# Simulations run one at a time, under nice.
set -euo pipefail
export TZ=UTC # awk's mktime reads the trace times as local time

B=${CS_BIN:-bin/carbonshift}
SH=${CS_SHARED:-../shared}
S=$SH/data/carbon/em-2023
P=$SH/data/jobs/philly.csv
C=(--cluster docs/sim/cluster-eu.json --carbon "$S/DE.csv" --carbon "$S/NO.csv"
  --carbon "$S/ES.csv" --year 2023)
OUT=docs/sim
WEEK_FROM=2023-10-16 # a Monday
WEEK_S=$(date -u -d "$WEEK_FROM" +%s)
WEEK_E=$((WEEK_S + 7 * 86400))
command -v gnuplot >/dev/null || {
  echo "plots.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2
  exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. the week ----------------------------------------------------------
echo "+ carbonshift simulate --jobs $P ${C[*]} --slack 24h --policy agnostic,carbonshift,oracle --jobs-out $tmp/jobs.csv" >&2
nice "$B" simulate --jobs "$P" "${C[@]}" --slack 24h \
  --policy agnostic,carbonshift,oracle --jobs-out "$tmp/jobs.csv" >/dev/null
for z in DE NO ES; do
  # Hourly intensity (the LCA column, as the simulator reads it).
  awk -F, -v a="$WEEK_S" -v b="$WEEK_E" 'NR > 1 {
      gsub(/[-:]/, " ", $1); t = mktime($1)
      if (t >= a && t < b) print t, $6 }' "$S/$z.csv" >"$tmp/$z.int"
  # GPUs busy per hour in the zone, per policy (a job's GPUs times the
  # share of the hour it runs).
  awk -F, -v z="$z" -v a="$WEEK_S" -v b="$WEEK_E" '
    NR > 1 && $9 == "ran" && $7 == z && $5 > a && $4 < b {
      k = $1 == "agnostic" ? 1 : $1 == "carbonshift" ? 2 : 3
      for (h = a + int(($4 > a ? $4 - a : 0) / 3600) * 3600; h < $5 && h < b; h += 3600) {
        s = $4 > h ? $4 : h; e = $5 < h + 3600 ? $5 : h + 3600
        busy[k, h] += $8 * (e - s) / 3600
      }
    }
    END { for (h = a; h < b; h += 3600)
            print h, busy[1, h] + 0, busy[2, h] + 0, busy[3, h] + 0 }' \
    "$tmp/jobs.csv" >"$tmp/$z.busy"
done
gnuplot <<EOF
set terminal pngcairo size 1200,1050 font "DejaVu Sans,11"
set output "$OUT/week.png"
set multiplot layout 3,1 title "Philly jobs (24 h slack) on cluster-eu, week of $WEEK_FROM: intensity and GPUs busy per zone"
set xdata time
set timefmt "%s"
set format x "%a %d"
set xtics 86400
set grid xtics
set ytics nomirror
set y2tics
set ylabel "gCO2e/kWh"
set y2label "GPUs busy"
set key outside bottom center horizontal
set lmargin 10
set rmargin 10
do for [z in "DE NO ES"] {
  set title z
  plot "$tmp/".z.".int" using 1:2 with lines lw 2 lc rgb "black" title "intensity (LCA)", \
       "$tmp/".z.".busy" using 1:2 axes x1y2 with steps lw 1.5 lc rgb "#999999" title "agnostic", \
       "$tmp/".z.".busy" using 1:3 axes x1y2 with steps lw 1.5 lc rgb "#1b9e77" title "carbonshift", \
       "$tmp/".z.".busy" using 1:4 axes x1y2 with steps lw 1.5 dt 2 lc rgb "#d95f02" title "oracle (ignores capacity)"
}
unset multiplot
EOF

# ---- 2. savings against slack --------------------------------------------
printf 'slack_h,agnostic_kg,carbonshift_pct,oracle_pct,carbonshift_timing_pct,oracle_timing_pct\n' >"$tmp/slack.csv"
for h in 0 1 3 6 12 24 48; do
  extra=()
  [ "$h" != 0 ] && extra=(--slack "${h}h")
  echo "+ carbonshift simulate --jobs $P ${C[*]} ${extra[*]} --policy agnostic,carbonshift,oracle --csv" >&2
  nice "$B" simulate --jobs "$P" "${C[@]}" "${extra[@]}" \
    --policy agnostic,carbonshift,oracle --csv |
    awk -F, -v h="$h" 'NR > 1 { tot[$1] = $17; pct[$1] = $9; tim[$1] = $11 }
      END { printf "%s,%s,%s,%s,%.4f,%.4f\n", h, tot["agnostic"],
              pct["carbonshift"], pct["oracle"],
              100 * tim["carbonshift"] / tot["agnostic"],
              100 * tim["oracle"] / tot["agnostic"] }' >>"$tmp/slack.csv"
done
cp "$tmp/slack.csv" "$OUT/slack.csv"
gnuplot <<EOF
set terminal pngcairo size 900,700 font "DejaVu Sans,11"
set output "$OUT/slack.png"
set datafile separator ","
set multiplot layout 2,1 title "Philly on cluster-eu (2023 traces): savings against agnostic, by slack given to every job"
set xrange [-1:49]
set xtics (0, 1, 3, 6, 12, 24, 48)
set grid
set key bottom right
set ylabel "total saving (%)"
set title "all of the saving (placement and timing)"
plot "$OUT/slack.csv" using 1:3 every ::1 with linespoints lw 2 pt 7 lc rgb "#1b9e77" title "carbonshift", \
     "$OUT/slack.csv" using 1:4 every ::1 with linespoints lw 2 pt 5 lc rgb "#d95f02" title "oracle (ignores capacity)"
set title "its timing part (saving against the same pool at the agnostic start)"
set ylabel "timing saving (% of agnostic)"
set xlabel "slack (hours)"
set key top left
plot "$OUT/slack.csv" using 1:5 every ::1 with linespoints lw 2 pt 7 lc rgb "#1b9e77" title "carbonshift", \
     "$OUT/slack.csv" using 1:6 every ::1 with linespoints lw 2 pt 5 lc rgb "#d95f02" title "oracle (ignores capacity)"
unset multiplot
EOF
echo "plots.sh: wrote $OUT/week.png, $OUT/slack.png and $OUT/slack.csv" >&2
