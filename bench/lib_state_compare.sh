#!/usr/bin/env bash
# bench/lib_state_compare.sh OLD_BUILD NEW_BUILD [REPS]: lib_throughput of two build trees side
# by side in one run, alternating, REPS (3) times, for states of 0, 1 MiB, 16 MiB and 64 MiB
# (--state-bytes): what a state machine's snapshots cost in each. Quote the medians.
set -euo pipefail
old=${1:?usage: lib_state_compare.sh OLD_BUILD NEW_BUILD [REPS]}
new=${2:?usage: lib_state_compare.sh OLD_BUILD NEW_BUILD [REPS]}
reps=${3:-3}
for b in "$old" "$new"; do
    [ -x "$b/bench/lib_throughput" ] || { echo "lib_state_compare: no $b/bench/lib_throughput" >&2; exit 2; }
done
for rep in $(seq 1 "$reps"); do
    for sb in 0 1048576 16777216 67108864; do
        for b in "$old" "$new"; do
            echo "$rep $b $("$b/bench/lib_throughput" --nodes 3 --commands 10000 --bytes 8 \
                --state-bytes "$sb" 2>&1 | tr '\n' ' ')"
        done
    done
done
