#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks fsafe's layers (issue 27): reads the diagram in src/README.md (the
# fenced block after "<!-- layers: ... -->") and the symbol tables of the
# built objects (nm), and fails on any call that runs against it:
#   - a file calls (or reads a variable of) a file of its own library on the
#     same line or a line above;
#   - libfsafe-auto.so uses a symbol of libfsafe.so that neither
#     src/common/contract.h nor include/fsafe.h declares;
#   - libfsafe.so uses a symbol defined by libfsafe-auto.so;
#   - an object is missing from the diagram, or the diagram names a file that
#     was not built.
# Only fsafe's own names (fsafe_*, fsafe__*) count: the interposed libc and
# pthread functions are called by their libc names everywhere.
#   test/layers.sh SOURCE-DIR BUILD-DIR [README]
#   test/layers.sh --inverted SOURCE-DIR BUILD-DIR
# README defaults to SOURCE-DIR/src/README.md.  Prints one line per
# violation, then a summary line; exit 1 on any violation, 2 on a usage or
# set-up error.  --inverted proves the check can fail: it moves core/api.c
# to the bottom of the diagram (so every call api.c makes runs upward) and
# exits 0 only if the check then fails and names api.c.
set -eu
if [ "${1:-}" = --inverted ]; then
    [ $# -eq 3 ] || { echo "usage: $0 --inverted SOURCE-DIR BUILD-DIR" >&2; exit 2; }
    t=$(mktemp)
    awk '/^  core\/api\.c / { held = $0; next }
         held != "" && /^libfsafe-auto\.so/ { print held; held = "" }
         { print }' "$2/src/README.md" >"$t"
    rc=0
    out=$(sh "$0" "$2" "$3" "$t") || rc=$?
    rm -f "$t"
    printf '%s\n' "$out" | tail -n 3
    if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q '^layers: core/api.c uses .* upward'; then
        echo "layers.inverted: the check failed on the inverted diagram, as it must"
        exit 0
    fi
    echo "layers.inverted: the check did not notice api.c's upward calls (exit $rc)"
    exit 1
fi
[ $# -ge 2 ] || { echo "usage: $0 SOURCE-DIR BUILD-DIR [README]" >&2; exit 2; }
src=$1 build=$2 readme=${3:-$1/src/README.md}
command -v nm >/dev/null || { echo "layers: nm not found (binutils)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The diagram: "LIB RANK FILE" per file, rank counted from the top.
awk '
    /<!-- layers:/ { want = 1; next }
    want && /^```/ { if (inside) exit; inside = 1; next }
    !inside { next }
    /^[^ ]/ { lib = ($1 == "libfsafe-auto.so") ? "auto" : "core"; rank = 0; next }
    /^  / { rank++; for (i = 1; i <= NF && $i ~ /\.c$/; i++) print lib, rank, $i }
' "$readme" >"$tmp/diagram"
[ -s "$tmp/diagram" ] || { echo "layers: no diagram in $readme" >&2; exit 2; }

# Objects: the ones the library's link line names (objects of files that
# were moved or removed may still lie in the build tree) and that were
# compiled for it (OBJ-DIR; libfsafe-auto.so also links the core's objects,
# which belong to the core's stack); CMake puts src/core/api.c's into
# BUILD/CMakeFiles/fsafe_core.dir/src/core/api.c.o.
nm_of() { # nm_of LIB TARGET-DIR OBJ-DIR-PATTERN
    link=$build/CMakeFiles/$2/link.txt
    [ -f "$link" ] || { echo "layers: $link not found (configure and build first)" >&2; exit 2; }
    tr ' ' '\n' <"$link" | grep '\.c\.o$' | grep -E "^CMakeFiles/$3/" | sort | while read -r o; do
        f=${o#CMakeFiles/*/src/}
        f=${f%.o}
        o=$build/$o
        [ -f "$o" ] || { echo "layers: $o not found (build first)" >&2; exit 2; }
        nm --defined-only -g "$o" | awk -v l="$1" -v f="$f" '$3 ~ /^fsafe_/ { print "D", l, f, $3 }'
        nm -u "$o" | awk -v l="$1" -v f="$f" '$2 ~ /^fsafe_/ { print "U", l, f, $2 }'
        echo "O $1 $f"
    done
}
nm_of core fsafe_shared.dir '(fsafe_shared|fsafe_core)\.dir' >"$tmp/syms"
nm_of auto fsafe_auto.dir 'fsafe_auto\.dir' >>"$tmp/syms"

# What the auto library may use of libfsafe.so: the functions contract.h
# exports (FSAFE_EXPORT) and fsafe.h's API.
{
    sed -n 's/^FSAFE_EXPORT .*[ *]\(fsafe_[a-z0-9_]*\)(.*/\1/p' "$src/src/common/contract.h"
    sed -n 's/^FSAFE_API .*[ *]\(fsafe_[a-z0-9_]*\)(.*/\1/p' "$src/include/fsafe.h"
} | sort -u >"$tmp/contract"
[ -s "$tmp/contract" ] || { echo "layers: no exported names read from contract.h and fsafe.h" >&2; exit 2; }

awk -v diagram="$tmp/diagram" -v contract="$tmp/contract" '
    BEGIN {
        while ((getline line < diagram) > 0) {
            split(line, a, " ")
            rank[a[1] "/" a[3]] = a[2]; named[a[1] "/" a[3]] = 1
        }
        while ((getline line < contract) > 0) allowed[line] = 1
    }
    $1 == "O" { built[$2 "/" $3] = 1; next }
    $1 == "D" { def[$2 "/" $4] = $3; deflib[$4] = deflib[$4] " " $2; next }
    $1 == "U" { n++; ul[n] = $2; uf[n] = $3; us[n] = $4 }
    function bad(msg) { print "layers: " msg; nbad++ }
    END {
        for (k in built) if (!(k in named)) bad(k " is built but not in the diagram")
        for (k in named) if (!(k in built)) bad(k " is in the diagram but was not built")
        for (i = 1; i <= n; i++) {
            lib = ul[i]; file = uf[i]; sym = us[i]
            if ((lib "/" sym) in def) {
                to = def[lib "/" sym]
                r1 = rank[lib "/" file]; r2 = rank[lib "/" to]
                if (r1 != "" && r2 != "" && r2 + 0 <= r1 + 0)
                    bad(file " uses " sym " of " to ": " (r1 == r2 ? "same line" : "upward") \
                        " (line " r1 " -> " r2 ")")
                checked++
            } else if (lib == "auto" && (("core/" sym) in def) && !(sym in allowed)) {
                bad(file " (libfsafe-auto.so) uses " sym " of libfsafe.so, which contract.h does not declare")
            } else if (lib == "core" && (("auto/" sym) in def)) {
                bad(file " (libfsafe.so) uses " sym " of libfsafe-auto.so")
            } else if (("core/" sym) in def) {
                checked++
            }
        }
        nf = 0; for (k in named) nf++
        if (checked == 0) bad("no call between two files was found: is the build complete?")
        printf "layers: %d files, %d uses between them checked, %d violation%s\n", nf, checked,
               nbad, nbad == 1 ? "" : "s"
        exit nbad ? 1 : 0
    }
' "$tmp/syms"
