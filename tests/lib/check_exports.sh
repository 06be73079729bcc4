#!/usr/bin/env bash
# check_exports.sh NM LIB.so: fails naming every dynamic symbol LIB.so defines that is not a
# call of the public header (pxs_*), the version node PXS_0, or a symbol of the linker's own.
set -euo pipefail
nm=$1
lib=$2
syms=$("$nm" -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//')
[ -n "$syms" ] || { echo "check_exports: $lib defines no dynamic symbols" >&2; exit 1; }
bad=$(grep -v -E '^(pxs_[a-z0-9_]+|PXS_0|_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_)$' <<<"$syms" || true)
if [ -n "$bad" ]; then
    echo "check_exports: $lib exports names outside pxs_*:" >&2
    sed 's/^/  /' <<<"$bad" >&2
    exit 1
fi
echo "check_exports: $lib exports only $(grep -c '^pxs_' <<<"$syms") pxs_* calls"
