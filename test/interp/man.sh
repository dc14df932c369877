#!/bin/sh
# SPDX-License-Identifier: MIT
# The installed man pages work as a user reaches them: `man fsafe`,
# `man fsafe-run`, `man FUNCTION` for every public function of fsafe.h (some
# pages are .so links), and `man -k fsafe` once mandb has indexed the tree.
#   man.sh PREFIX MANDIR FSAFE_H
prefix=$1 mandir=$1/$2 header=$3
bad=0
fail() { echo "FAIL: $*" >&2; bad=1; }
command -v man >/dev/null && command -v mandb >/dev/null ||
    { echo "FAIL: man and mandb are needed (man-db, test/packages.txt)" >&2; exit 1; }
export MANPATH="$mandir" MANPAGER=cat PAGER=cat MANWIDTH=100 LC_ALL=C.UTF-8
unset MANSECT
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# page NAME: renders from the install tree, with NAME's own header
page() {
    w=$(man -w "$1" 2>&1)
    case $w in "$mandir"/*) ;; *) fail "man -w $1: '$w', not under $mandir"; return 1 ;; esac
    man "$1" >"$tmp/$1" 2>"$tmp/$1.err" || { fail "man $1: $(cat "$tmp/$1.err")"; return 1; }
    [ -s "$tmp/$1.err" ] && fail "man $1 warns: $(cat "$tmp/$1.err")"
    grep -q "^NAME" "$tmp/$1" || fail "man $1 has no NAME section"
    grep -q "$1" "$tmp/$1" || fail "man $1 does not mention $1"
}
page fsafe
grep -q "^ENVIRONMENT" "$tmp/fsafe" || fail "man fsafe: no ENVIRONMENT"
page fsafe-run
grep -q "^OPTIONS" "$tmp/fsafe-run" || fail "man fsafe-run: no OPTIONS"
grep -q "^EXIT STATUS" "$tmp/fsafe-run" || fail "man fsafe-run: no EXIT STATUS"
fns=$(sed -n 's/^\(FSAFE_API\|static inline\) [a-z_ *]*[ *]\(fsafe_[a-z_]*\)(.*/\2/p' "$header" | sort -u)
[ "$(echo "$fns" | wc -l)" -ge 12 ] || fail "too few functions parsed from $header"
for f in $fns; do
    page "$f" && grep -q "SYNOPSIS" "$tmp/$f" && grep -q "$f *(" "$tmp/$f" ||
        fail "man $f: no synopsis for $f"
done
# man -k reads the index mandb builds from each page's NAME line.
mandb -q "$mandir" 2>"$tmp/mandb.err" || fail "mandb $mandir: $(cat "$tmp/mandb.err")"
man -k fsafe >"$tmp/apropos" 2>&1 || fail "man -k fsafe: $(cat "$tmp/apropos")"
for f in fsafe fsafe-run $fns; do
    grep -q "^$f (" "$tmp/apropos" || fail "man -k fsafe does not list $f"
done
[ $bad = 0 ] && echo "ok: man fsafe, man fsafe-run, $(echo "$fns" | wc -l) function pages, man -k fsafe ($(wc -l <"$tmp/apropos") entries)"
exit $bad
