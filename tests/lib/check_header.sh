#!/usr/bin/env bash
# check_header.sh CC CXX INCLUDE_DIR SOURCE OUT_DIR: compiles SOURCE (which includes only
# paxos-shm/paxos_shm.h) as strict C11 and as C++11, warnings as errors. Missing compilers fail.
set -euo pipefail
cc=$1
cxx=$2
inc=$3
src=$4
out=$5
for c in "$cc" "$cxx"; do
    command -v "$c" >/dev/null ||
        { echo "check_header: no compiler '$c' (scripts/deps installs g++)" >&2; exit 1; }
done
"$cc" -std=c11 -Wall -Wextra -Werror -pedantic -Wstrict-prototypes -Wmissing-prototypes \
    -I"$inc" -c "$src" -o "$out/uses_header_c.o"
"$cxx" -std=c++11 -Wall -Wextra -Werror -pedantic -x c++ -I"$inc" -c "$src" \
    -o "$out/uses_header_cxx.o"
echo "check_header: paxos_shm.h compiles as C11 ($cc) and C++11 ($cxx)"
