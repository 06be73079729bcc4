#!/usr/bin/env bash
# check_install.sh BUILD_DIR PREFIX SRC CC CMAKE: installs BUILD_DIR into PREFIX (emptied first)
# and checks what a user gets, then builds SRC/examples against the installed library (and
# examples/sim/tally.c as a shared object for the installed simulator, paxos-shm-sim). Fails
# with one line naming what is missing.
set -euo pipefail
build=$1
prefix=$2
src=$3
cc=$4
cmake=$5
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
fail() {
    echo "check_install: $*" >&2
    exit 1
}
[ -x "$prefix/bin/paxos-shm" ] || fail "bin/paxos-shm was not installed"
[ -x "$prefix/bin/paxos-shm-keygen" ] || fail "bin/paxos-shm-keygen was not installed"
version=$("$prefix/bin/paxos-shm" --version)
case $version in
paxos-shm\ *) ;;
*) fail "paxos-shm --version printed '$version'" ;;
esac
for b in ring throughput store_bench; do
    [ -x "$prefix/libexec/paxos-shm/$b" ] || fail "libexec/paxos-shm/$b was not installed"
done
page="$prefix/share/man/man1/paxos-shm.1"
[ -f "$page" ] || fail "share/man/man1/paxos-shm.1 was not installed"
# man -l renders the installed file itself; MANWIDTH keeps the layout independent of a terminal.
rendered=$(MANWIDTH=80 MAN_KEEP_FORMATTING=0 man -l "$page" 2>&1 | col -b)
for section in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT "EXIT STATUS"; do
    grep -q "^$section" <<<"$rendered" || fail "the man page has no $section section"
done
# Every long option --help lists is documented in the man page.
for flag in $("$prefix/bin/paxos-shm" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$flag" <<<"$rendered" || fail "the man page does not document $flag"
done
# The installed benchmark finds the installed command (bin/ next to libexec/).
"$prefix/libexec/paxos-shm/throughput" --nodes 3 --window 1 --store shm --reps 1 --rounds 200 \
    >/dev/null 2>&1 || fail "the installed throughput bench could not run the installed paxos-shm"

# The library: header, libraries, pkg-config file, CMake package, man page.
[ -f "$prefix/include/paxos-shm/paxos_shm.h" ] || fail "include/paxos-shm/paxos_shm.h was not installed"
lib="$prefix/lib/libpaxos-shm.so.0"
for f in "$lib" "$prefix/lib/libpaxos-shm.so" "$prefix/lib/libpaxos-shm.a" \
    "$prefix/lib/pkgconfig/paxos-shm.pc" "$prefix/lib/cmake/paxos-shm/paxos-shmConfig.cmake" \
    "$prefix/lib/cmake/paxos-shm/paxos-shmConfigVersion.cmake"; do
    [ -e "$f" ] || fail "${f#"$prefix"/} was not installed"
done
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = libpaxos-shm.so.0 ] || fail "libpaxos-shm.so.0 has soname '$soname'"
page3="$prefix/share/man/man3/pxs.3"
[ -f "$page3" ] || fail "share/man/man3/pxs.3 was not installed"
rendered3=$(MANWIDTH=80 MAN_KEEP_FORMATTING=0 man -l "$page3" 2>&1 | col -b)
for section in NAME LIBRARY SYNOPSIS DESCRIPTION "RETURN VALUE" ERRORS; do
    grep -q "^$section" <<<"$rendered3" || fail "pxs(3) has no $section section"
done
# Every call the header declares is in the man page, and has its own name in man3.
calls=$(grep -o 'pxs_[a-z_]*(' "$prefix/include/paxos-shm/paxos_shm.h" | tr -d '(' | sort -u)
for call in $calls; do
    grep -q "$call(" <<<"$rendered3" || fail "pxs(3) does not document $call"
    [ -f "$prefix/share/man/man3/$call.3" ] || fail "share/man/man3/$call.3 was not installed"
done

# examples/ against the installed library: version/, counter/ and kv/ (which run pools).
work="$prefix/examples-build"
mkdir -p "$work"
# grep reads all its input here (no -q): under pipefail a grep -q that quits at the first match
# can fail the pipeline, its writer killed by SIGPIPE.
nm -D --defined-only "$lib" | grep ' pxs_open@' >/dev/null || fail "the installed library has no pxs_open"
pools=ON
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib"
pcflags=$(pkg-config --cflags --libs paxos-shm) || fail "pkg-config paxos-shm failed"
# With pkg-config: cc SRC $(pkg-config --cflags --libs paxos-shm).
build_pc() { # NAME SOURCES...
    local name=$1
    shift
    # shellcheck disable=SC2086 # pcflags is a list of flags
    # shellcheck disable=SC2086 # PXS_EXAMPLE_CFLAGS too
    "$cc" -std=c11 -Wall -Wextra -Werror ${PXS_EXAMPLE_CFLAGS:-} -o "$work/$name" "$@" $pcflags ||
        fail "examples: $name did not build with pkg-config"
}
build_pc version_pc "$src/examples/version/version.c"
"$work/version_pc" >/dev/null || fail "examples/version (pkg-config build) failed"
ldd "$work/version_pc" | grep "$prefix/lib/libpaxos-shm.so.0" >/dev/null ||
    fail "examples/version (pkg-config build) did not load the installed libpaxos-shm.so.0"
if [ $pools = ON ]; then
    build_pc counter_pc "$src/examples/counter/counter.c"
    build_pc kv_demo_pc "$src/examples/kv/kv.c" "$src/examples/kv/kv_demo.c"
fi
# With CMake: find_package(paxos-shm) in a project of its own (consumer/), shared and static.
"$cmake" -S "$src/tests/install/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="${PXS_EXAMPLE_CFLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${PXS_EXAMPLE_CFLAGS:-}" \
    -DPXS_EXAMPLES="$src/examples" -DPXS_POOLS=$pools >"$work/cmake.log" 2>&1 ||
    fail "find_package(paxos-shm) project did not configure (see $work/cmake.log)"
"$cmake" --build "$work/cmake" >>"$work/cmake.log" 2>&1 ||
    fail "find_package(paxos-shm) project did not build (see $work/cmake.log)"
for v in version_shared version_static; do
    "$work/cmake/$v" >/dev/null || fail "examples/version ($v, find_package build) failed"
done
ldd "$work/cmake/version_static" | grep -q libpaxos-shm && fail "version_static loads libpaxos-shm.so"
# Runs a program with its output in $work/NAME.log, shown when it fails.
run_logged() { # NAME PROGRAM ARGS...
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 && return 0
    tail -n 20 "$work/$name.log" >&2
    return 1
}
if [ $pools = ON ]; then
    run_logged counter "$work/counter_pc" || fail "examples/counter (pkg-config build) failed"
    run_logged kv_demo "$work/cmake/kv_demo" --commands 300 --chaos 1 ||
        fail "examples/kv kv_demo (find_package build) failed"
    run_logged kv_demo_static "$work/cmake/kv_demo_static" --commands 300 ||
        fail "examples/kv kv_demo_static (find_package build) failed"
    # A program outside the tree, its own state machine, commands of 1 MiB, chaos: verified.
    run_logged kv_demo_1mib "$work/kv_demo_pc" --value-bytes 1048576 --commands 40 --chaos 2 \
        --seed 3 ||
        fail "examples/kv kv_demo (pkg-config build) with 1 MiB values under chaos failed"
fi
# The simulator on a state machine of the user's: examples/sim/tally.c built as a shared object
# against the installed header, a few seeds of the installed paxos-shm-sim.
[ -x "$prefix/bin/paxos-shm-sim" ] || fail "bin/paxos-shm-sim was not installed"
[ -f "$prefix/include/paxos-shm/paxos_shm_sim.h" ] ||
    fail "include/paxos-shm/paxos_shm_sim.h was not installed"
# shellcheck disable=SC2046,SC2086 # flag lists
"$cc" -std=c11 -Wall -Wextra -Werror ${PXS_EXAMPLE_CFLAGS:-} -shared -fPIC -o "$work/tally.so" \
    "$src/examples/sim/tally.c" $(pkg-config --cflags paxos-shm) ||
    fail "examples/sim/tally.c did not build as a shared object against the installed header"
run_logged sim_tally "$prefix/bin/paxos-shm-sim" --sm-lib "$work/tally.so" --seeds 20 ||
    fail "the installed paxos-shm-sim failed on examples/sim/tally.c (--sm-lib, 20 seeds)"
grep -q "seeds 1..20: 20 ok" "$work/sim_tally.log" ||
    fail "the installed paxos-shm-sim did not run 20 seeds of examples/sim/tally.c"

echo "check_install: $prefix holds paxos-shm ($version), its man page, the benchmarks and" \
    "libpaxos-shm ($("$work/version_pc" | head -1)); examples built with pkg-config and" \
    "find_package (pools: $pools); paxos-shm-sim ran examples/sim/tally.c"
