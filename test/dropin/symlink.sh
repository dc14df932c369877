#!/bin/sh
# SPDX-License-Identifier: MIT
# The installed fsafe-run started through symbolic links (absolute, relative,
# a chain, and found through PATH) finds its library; FSAFE_RUN_LIBDIR names
# the library directory instead.
#   symlink.sh FSAFE_RUN BINDIR INSTALL_SCRIPT LIBFILE BINDIR_REL LIBDIR_REL SONAME
#              AUTO_LIBFILE AUTO_SONAME
. "$(dirname "$0")/lib.sh"
script=$1 libfile=$2 bindir=$3 libdir=$4 soname=$5 autofile=$6 autoname=$7
case $libdir in /*) echo "skip: absolute CMAKE_INSTALL_LIBDIR"; exit 77 ;; esac
mkdir -p "$tmp/prefix/$bindir" "$tmp/prefix/$libdir" "$tmp/home/bin" "$tmp/other"
cp "$script" "$tmp/prefix/$bindir/fsafe-run"
cp "$libfile" "$tmp/prefix/$libdir/$soname"
cp "$autofile" "$tmp/prefix/$libdir/$autoname"
want=$(cd "$tmp/prefix/$libdir" && pwd -P)/$autoname
check() { # HOW COMMAND...: LD_PRELOAD starts with the installed auto library
    h=$1
    shift
    out=$("$@" sh -c 'echo "$LD_PRELOAD"' 2>"$tmp/err") || fail "$h: status $?: $(cat "$tmp/err")"
    case $out in "$want" | "$want":*) ;; *) fail "$h: LD_PRELOAD=$out" ;; esac
}
ln -s "$tmp/prefix/$bindir/fsafe-run" "$tmp/home/bin/fsafe-run"
check absolute "$tmp/home/bin/fsafe-run"
check path env PATH="$tmp/home/bin:$PATH" fsafe-run
ln -s ../home/bin/fsafe-run "$tmp/other/chain"
check chain "$tmp/other/chain"
(cd "$tmp/home/bin" && check relative-dir ./fsafe-run) || exit 1
# The library is really loaded through the link.
out=$("$tmp/home/bin/fsafe-run" --stats "$bin/test_dropin_prog" flush 2>&1 >/dev/null)
echo "$out" | grep -q "^${M}stats for test_dropin_prog: 1 forks" || fail "not loaded: $out"
# FSAFE_RUN_LIBDIR: the libraries from another directory, by the same names.
mkdir "$tmp/libs"
cp "$libfile" "$tmp/libs/$soname"
cp "$autofile" "$tmp/libs/$autoname"
out=$(FSAFE_RUN_LIBDIR=$tmp/libs "$tmp/home/bin/fsafe-run" sh -c 'echo "$LD_PRELOAD"')
[ "$out" = "$tmp/libs/$autoname" ] || fail "FSAFE_RUN_LIBDIR: LD_PRELOAD=$out"
FSAFE_RUN_LIBDIR=$tmp/nowhere "$tmp/home/bin/fsafe-run" true 2>"$tmp/err"
[ $? = 2 ] && grep -q "looked for $tmp/nowhere/$autoname" "$tmp/err" \
    || fail "a wrong FSAFE_RUN_LIBDIR: $(cat "$tmp/err")"
ok "symbolic links and FSAFE_RUN_LIBDIR"
