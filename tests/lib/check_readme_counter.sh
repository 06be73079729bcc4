#!/usr/bin/env bash
# check_readme_counter.sh README COUNTER_C: the README quotes COUNTER_C whole, byte for byte.
set -euo pipefail
quoted=$(awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' "$1")
if [ "$quoted" != "$(cat "$2")" ]; then
    echo "check_readme_counter: the README's counter example differs from $2:" >&2
    diff <(echo "$quoted") "$2" >&2 || true
    exit 1
fi
echo "check_readme_counter: the README quotes $2 as it is"
