#!/usr/bin/env bash
# check_exports.sh NM LIB: fails naming every symbol LIB defines for its users that is not a
# call of the public header (pxs_*), the version node PXS_0, or a symbol of the linker's own.
# LIB.so: its dynamic symbols; LIB.a: the global symbols of its objects.
set -euo pipefail
nm=$1
lib=$2
case $lib in
*.a) syms=$("$nm" -g --defined-only "$lib" | awk 'NF == 3 {print $3}') ;;
*) syms=$("$nm" -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//') ;;
esac
[ -n "$syms" ] || { echo "check_exports: $lib defines no symbols for its users" >&2; exit 1; }
bad=$(grep -v -E '^(pxs_[a-z0-9_]+|PXS_0|_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_)$' <<<"$syms" || true)
if [ -n "$bad" ]; then
    echo "check_exports: $lib exports $(wc -l <<<"$bad") names outside pxs_*:" >&2
    head -20 <<<"$bad" | sed 's/^/  /' >&2
    exit 1
fi
echo "check_exports: $lib exports only $(grep -c '^pxs_' <<<"$syms") pxs_* calls"
