#!/usr/bin/env bash
# check_install.sh BUILD_DIR PREFIX: installs BUILD_DIR into PREFIX (emptied first) and checks
# what a user gets. Fails with one line naming what is missing.
set -euo pipefail
build=$1
prefix=$2
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
echo "check_install: $prefix holds paxos-shm ($version), its man page and the benchmarks"
