#!/bin/sh
# SPDX-License-Identifier: MIT
# The installable fsafe-run (fsafe-run.install) finds the library relative to
# itself: lay out a prefix by hand, run it from there, and through a PATH look-up.
#   install.sh FSAFE_RUN BINDIR INSTALL_SCRIPT LIBFILE BINDIR_REL LIBDIR_REL SONAME
#              AUTO_LIBFILE AUTO_SONAME
. "$(dirname "$0")/lib.sh"
script=$1 libfile=$2 bindir=$3 libdir=$4 soname=$5 autofile=$6 autoname=$7
mkdir -p "$tmp/pre fix/$bindir" "$tmp/pre fix/$libdir"
case $libdir in /*) echo "skip: absolute CMAKE_INSTALL_LIBDIR"; exit 77 ;; esac
# A blank in the prefix must be refused clearly (LD_PRELOAD cannot carry it).
cp "$script" "$tmp/pre fix/$bindir/fsafe-run"
cp "$libfile" "$tmp/pre fix/$libdir/$soname"
cp "$autofile" "$tmp/pre fix/$libdir/$autoname"
"$tmp/pre fix/$bindir/fsafe-run" true 2>"$tmp/err"
[ $? = 2 ] && grep -q "contains a blank" "$tmp/err" || fail "a blank in the library path was not refused"
mv "$tmp/pre fix" "$tmp/prefix"
inst=$tmp/prefix/$bindir/fsafe-run
out=$("$inst" sh -c 'echo "$LD_PRELOAD"') || fail "status $?"
d=$(cd "$tmp/prefix/$libdir" && pwd -P)
[ "$out" = "$d/$autoname" ] || fail "LD_PRELOAD=$out"
out=$("$inst" --no-auto sh -c 'echo "$LD_PRELOAD"') || fail "status $?"
[ "$out" = "$(cd "$tmp/prefix/$libdir" && pwd -P)/$soname" ] || fail "--no-auto: LD_PRELOAD=$out"
out=$(PATH="$tmp/prefix/$bindir:$PATH" fsafe-run --stats "$bin/test_dropin_prog" flush 2>&1 >/dev/null)
echo "$out" | grep -q "^${M}stats for test_dropin_prog: 1 forks" || fail "library not loaded: $out"
# A copy of the script outside the prefix: it falls back to the library's
# install directory, and names every place it looked when that has none.
mkdir -p "$tmp/elsewhere"
cp "$script" "$tmp/elsewhere/fsafe-run"
out=$("$tmp/elsewhere/fsafe-run" true 2>&1)
st=$?
if [ $st = 2 ]; then
    echo "$out" | grep -q "cannot find the fsafe library (looked for $autoname in [^;]*; FSAFE_RUN_LIBDIR=DIR names its directory)" \
        || fail "copied script: $out"
else
    [ $st = 0 ] || fail "copied script: status $st: $out" # the library is installed
fi
out=$(FSAFE_RUN_LIBDIR="$tmp/prefix/$libdir" "$tmp/elsewhere/fsafe-run" sh -c 'echo "$LD_PRELOAD"') \
    || fail "copied script with FSAFE_RUN_LIBDIR: status $?"
[ "$out" = "$tmp/prefix/$libdir/$autoname" ] || fail "FSAFE_RUN_LIBDIR: LD_PRELOAD=$out"
out=$("$inst" --version) || fail "--version"
ok "installed layout works: $out, preloads $autoname (--no-auto: $soname)"
