#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian package (issue 28, part 6): builds fsafe's .debs from this tree
# with dpkg-buildpackage in a Debian 12 chroot (and the source package, for
# lintian's source checks), runs lintian on them, installs them with
# `apt-get install ./*.deb` into a fresh minimal Debian 12 chroot and checks
# them there: first libfsafe0 and fsafe alone, no compiler:
# fsafe-run on examples/hang (its children hang without fsafe, bounded by
# hang's own 2 s per child, and complete under fsafe-run, in auto mode and with
# --locks, which preloads the symbol reader libfsafe-elf.so.0); then libfsafe-dev:
# the man pages, pkg-config, the consumer it ships as an example built
# against it (pkg-config shared and static, CMake find_package shared and
# static); then a clean purge.
# Last line: "platform debian-12-deb: N passed, M failed"; exit 1 on any failure.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: test/platforms/deb.sh [--source head|worktree] [--keep] [--rebuild-chroots] [--help]

  --source head      build `git archive HEAD` of this repository (default)
  --source worktree  build the working tree as it is (git ls-files -c -o,
                     build directories left out)
  --keep             keep the install chroot after the run (for a look inside)
  --rebuild-chroots  make the cached chroots again (debootstrap, build tools)

Chroots, all Debian 12 bookworm, under FSAFE_MATRIX_CACHE (default
/var/cache/fsafe-matrix, as test/platforms/matrix.sh):
  bookworm-clean/root      debootstrap --variant=minbase, made once, never
                           changed afterwards: the "clean place"
  bookworm-deb/build-root  a copy of it with debian/control's Build-Depends
                           (apt-get build-dep) and lintian, cached
  bookworm-deb/install-root  a fresh copy of the clean one for every run,
                           removed at the end (unless --keep)
The .debs, .changes, .buildinfo and the source package go to
bookworm-deb/out/, the logs to
bookworm-deb/*.log.  Needs root, debootstrap (installed with apt-get if
missing) and the network to FSAFE_MATRIX_MIRROR (default
http://deb.debian.org/debian): the install chroot fetches the packages'
dependencies and the consumers' tools (gcc, cmake, pkg-config, man-db)
on every run.  The host's own packages are not used or changed.
EOF
}

cache=${FSAFE_MATRIX_CACHE:-/var/cache/fsafe-matrix}
mirror=${FSAFE_MATRIX_MIRROR:-http://deb.debian.org/debian}
source='head'
keep=0
rebuild=0
while [ $# -gt 0 ]; do
  case $1 in
    --source) source=${2:?--source needs head or worktree}; shift 2 ;;
    --source=*) source=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --rebuild-chroots) rebuild=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deb.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $source in head|worktree) ;; *) echo "deb.sh: --source must be head or worktree" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "deb.sh: must run as root (debootstrap, chroot, mount)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
if ! command -v debootstrap >/dev/null; then
  echo "deb.sh: installing debootstrap" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
clean_dir=$cache/bookworm-clean
clean=$clean_dir/root
dir=$cache/bookworm-deb
broot=$dir/build-root
iroot=$dir/install-root
out=$dir/out
mkdir -p "$clean_dir" "$dir"
exec 9>"$dir/lock"
flock -w 3600 9 || { echo "deb.sh: another run holds $dir/lock" >&2; exit 1; }
# The upstream version, from debian/changelog: "fsafe (0.1.0-1) ...".
version=$(sed -n '1s/^fsafe (\([^)-]*\)-[^)]*).*/\1/p' "$repo/debian/changelog")
[ -n "$version" ] || { echo "deb.sh: no version in debian/changelog" >&2; exit 1; }

# ---- mounts: every one is recorded and undone on exit (chroot.sh) -----------
# shellcheck source=chroot.sh
. "$(dirname "$0")/chroot.sh"
on_exit() {
  umount_all
  if [ "$keep" = 0 ] && [ -d "$iroot" ]; then remove_root "$iroot"; fi
}
trap 'on_exit' EXIT
trap 'on_exit; trap - EXIT; exit 130' INT
trap 'on_exit; trap - EXIT; exit 143' TERM
chroot_prepare() { # after mount_chroot: apt can resolve names, no service starts
  cp /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
  printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
  chmod 755 "$1/usr/sbin/policy-rc.d"
}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1" >&2; }
summary() {
  echo "times: $(tr '\n' ',' <"$dir/times" | sed 's/,$//; s/,/, /g')"
  echo "platform debian-12-deb: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
: >"$dir/times"

# ---- 1. the clean chroot (debootstrap, once) ------------------------------------
if [ "$rebuild" = 1 ]; then
  remove_root "$clean"; rm -f "$clean_dir/debootstrap.ok"
  remove_root "$broot"; rm -f "$dir/build-deps.ok"
fi
if [ ! -f "$clean_dir/debootstrap.ok" ]; then
  remove_root "$clean"
  echo "== debootstrap --variant=minbase bookworm (log: $clean_dir/debootstrap.log)"
  t0=$(now)
  cur_root=$clean
  debootstrap --variant=minbase bookworm "$clean" "$mirror" >"$clean_dir/debootstrap.log" 2>&1 </dev/null &
  bg_pid=$!
  if ! wait "$bg_pid"; then
    tail -n 5 "$clean_dir/debootstrap.log" >&2
    fail "debootstrap (log: $clean_dir/debootstrap.log)"
    summary
    exit 1
  fi
  bg_pid=""
  umount_stale "$clean"
  cur_root=""
  grep -qs localhost "$clean/etc/hosts" ||
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >>"$clean/etc/hosts"
  echo "debootstrap $(($(now) - t0)) s" >>"$dir/times"
  touch "$clean_dir/debootstrap.ok"
fi

# ---- 2. the build chroot: the clean one plus the Build-Depends -------------------
# Again whenever debian/control's Build-Depends change.
deps_key=$(sed -n '/^Build-Depends:/,/^[^ ]/{/^Build-Depends:/p;/^ /p}' "$repo/debian/control" |
  md5sum | cut -d' ' -f1)
if [ "$(cat "$dir/build-deps.ok" 2>/dev/null)" != "$deps_key" ]; then
  remove_root "$broot"
  echo "== build chroot: copy of the clean one, apt-get build-dep, lintian (log: $dir/build-deps.log)"
  t0=$(now)
  cp -a "$clean" "$broot"
  mkdir -p "$broot/build/deps/debian"
  cp "$repo/debian/control" "$repo/debian/changelog" "$broot/build/deps/debian/"
  mount_chroot "$broot"
  if ! in_root "$broot" "apt-get update -q && apt-get build-dep -y -q --no-install-recommends /build/deps &&
        apt-get install -y -q --no-install-recommends lintian" >"$dir/build-deps.log" 2>&1; then
    tail -n 5 "$dir/build-deps.log" >&2
    fail "build tools (log: $dir/build-deps.log)"
    summary
    exit 1
  fi
  umount_all
  echo "$deps_key" >"$dir/build-deps.ok"
  echo "build tools $(($(now) - t0)) s" >>"$dir/times"
fi

# ---- 3. dpkg-buildpackage -b in the build chroot -------------------------------
src=$broot/build/fsafe-$version
rm -rf "$broot/build"
mkdir -p "$src"
if [ "$source" = head ]; then
  git -C "$repo" archive --format=tar HEAD | tar -x -C "$src"
else
  (cd "$repo" && git ls-files -z -c -o --exclude-standard |
    grep -zv -E '^build[^/]*/' | xargs -0 tar -c --no-recursion -f - 2>/dev/null) | tar -x -C "$src"
fi
mount_chroot "$broot"
# The source package too (for lintian's source checks): the tree without
# debian/ as the upstream tarball, made while the tree is still clean.
if tar -C "$broot/build" --exclude="fsafe-$version/debian" -czf "$broot/build/fsafe_$version.orig.tar.gz" \
    "fsafe-$version" && in_root "$broot" "cd /build && dpkg-source -b fsafe-$version" >"$dir/source.log" 2>&1; then
  pass "dpkg-source -b (fsafe_$version-*.dsc)"
else
  tail -n 5 "$dir/source.log" >&2
  fail "dpkg-source -b (log: $dir/source.log)"
fi
echo "== dpkg-buildpackage -b -us -uc (log: $dir/build.log)"
t0=$(now)
if in_root "$broot" "cd /build/fsafe-$version && dpkg-buildpackage -b -us -uc -j2" >"$dir/build.log" 2>&1; then
  pass "dpkg-buildpackage -b -us -uc"
else
  tail -n 15 "$dir/build.log" >&2
  fail "dpkg-buildpackage (log: $dir/build.log)"
fi
echo "package build $(($(now) - t0)) s" >>"$dir/times"
rm -rf "$out"
mkdir -p "$out"
cp "$broot"/build/*.deb "$broot"/build/*.ddeb "$broot"/build/*.changes "$broot"/build/*.buildinfo \
  "$broot"/build/*.dsc "$broot"/build/*.tar.* "$out"/ 2>/dev/null || true
declare -A deb=()
for p in libfsafe0 fsafe libfsafe-dev; do
  set -- "$out/${p}"_*.deb
  if [ -f "$1" ]; then deb[$p]=./${1##*/}; else fail "package $p was not built"; fi
done
if [ "$failed" -ne 0 ]; then summary; exit 1; fi
(cd "$out" && for f in "${deb[@]}"; do
  dpkg-deb -f "$f" Package Version Installed-Size | tr '\n' ' '
  echo "($(stat -c %s "$f") bytes)"
done) | tee "$dir/sizes.txt"

# lintian on the binary packages and the source package: errors fail; the
# warnings and the rest are listed in lintian.log.
echo "== lintian (log: $dir/lintian.log)"
t0=$(now)
set -- "$broot"/build/*.changes
changes=${1##*/}
set -- "$broot"/build/*.dsc
dsc=${1##*/}
if in_root "$broot" "cd /build && lintian --fail-on error --display-info --pedantic $changes $dsc" \
  >"$dir/lintian.log" 2>&1; then
  pass "lintian: no error ($(grep -c '^W: ' "$dir/lintian.log" || true) warnings, $(grep -c '^[IP]: ' "$dir/lintian.log" || true) info/pedantic; $dir/lintian.log)"
else
  grep '^E: ' "$dir/lintian.log" >&2 || tail -n 5 "$dir/lintian.log" >&2
  fail "lintian (log: $dir/lintian.log)"
fi
echo "lintian $(($(now) - t0)) s" >>"$dir/times"
# examples/hang, built here so that the runtime packages are checked in a
# chroot with no compiler: liblogq's flusher thread holds its lock, and each
# of hang's 3 children logs a line (the parent kills a child after 2 s).
if in_root "$broot" "mkdir -p /build/hang && cd /build/hang &&
    gcc -O2 -fPIC -shared -o liblogq.so /build/fsafe-$version/examples/hang/logq.c -pthread &&
    gcc -O2 -o hang /build/fsafe-$version/examples/hang/hang.c -I/build/fsafe-$version/examples/hang \
      -L. -llogq -Wl,-rpath,'\$ORIGIN' -pthread" >"$dir/hang-build.log" 2>&1; then
  pass "build examples/hang (liblogq.so, hang) in the build chroot"
else
  cat "$dir/hang-build.log" >&2
  fail "build examples/hang (log: $dir/hang-build.log)"
fi
umount_all

# ---- 4. a fresh copy of the clean chroot: install the .debs and check -------------
remove_root "$iroot"
t0=$(now)
cp -a "$clean" "$iroot"
echo "copy of the clean chroot $(($(now) - t0)) s" >>"$dir/times"
mkdir -p "$iroot/debs" "$iroot/work"
cp "$out"/*.deb "$iroot/debs/"
cp "$broot/build/hang/hang" "$broot/build/hang/liblogq.so" "$iroot/work/" 2>/dev/null || true
mount_chroot "$iroot"
: >"$dir/install.log"
# install_debs NAME...: apt-get install ./NAME_*.deb, and dpkg says installed.
install_debs() {
  local p files="" n=0
  for p in "$@"; do files="$files ${deb[$p]}"; n=$((n + 1)); done
  echo "== apt-get install$files (log: $dir/install.log)"
  if in_root "$iroot" "cd /debs && apt-get install -y -q --no-install-recommends $files" >>"$dir/install.log" 2>&1 &&
    in_root "$iroot" "dpkg-query -W -f='\${Package} \${Version} \${Status}\n' $*" |
    tee -a "$dir/install.log" | grep -c " $version-[^ ]* install ok installed" | grep -qx "$n"; then
    pass "apt-get install$files"
  else
    tail -n 10 "$dir/install.log" >&2
    fail "apt-get install$files (log: $dir/install.log)"
    summary
    exit 1
  fi
}
t0=$(now)
in_root "$iroot" "apt-get update -q" >>"$dir/install.log" 2>&1 || true
install_debs libfsafe0 fsafe
echo "install of libfsafe0 and fsafe $(($(now) - t0)) s" >>"$dir/times"

t0=$(now)
# check NAME COMMAND: COMMAND (a shell line) runs in the install chroot, in
# /work, its output to checks.log; exit 0 is a pass.
: >"$dir/checks.log"
check() {
  local name=$1 rc=0
  shift
  echo "---- $name" >>"$dir/checks.log"
  in_root "$iroot" "cd /work && $*" >>"$dir/checks.log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then pass "$name"; else fail "$name (exit $rc; log: $dir/checks.log)"; fi
}
# The runtime packages alone (no compiler, no -dev package): fsafe-run.
libdir=$(in_root "$iroot" "dpkg -L libfsafe0" | sed -n 's,/libfsafe\.so\.0$,,p')
check "no -dev package, no compiler: only the runtime packages and their dependencies" \
  "! dpkg -s libfsafe-dev >/dev/null 2>&1 && ! command -v gcc && [ -n '$libdir' ] && [ -r '$libdir/libfsafe-auto.so.0' ]"
check "fsafe-run --version is $version" \
  "fsafe-run --version && fsafe-run --version | grep -qx 'fsafe-run (fsafe) $version'"
check "the packages' files are where fsafe-run looks" \
  "set -e; for f in $libdir/libfsafe.so.0 $libdir/libfsafe-auto.so.0 $libdir/libfsafe-elf.so.0 /usr/bin/fsafe-run; do dpkg -S \$f; done;
   fsafe-run --help | grep -F '$libdir/libfsafe-auto.so.0'; fsafe-run --help | grep -F '$libdir/libfsafe-elf.so.0'"
# Without fsafe at least one child must hang (hang exits 1); a loaded machine
# can let all 3 children through (the flusher not yet running), so up to 3 runs.
check "examples/hang without fsafe: a child hangs (killed after 2 s)" \
  "for i in 1 2 3; do rc=0; timeout -k 5 60 ./hang || rc=\$?; echo \"run \$i: exit \$rc\";
     [ \$rc -eq 1 ] && exit 0; [ \$rc -eq 0 ] || exit 1; done; exit 1"
check "examples/hang under fsafe-run: every child completes" \
  "timeout -k 5 60 fsafe-run ./hang"
# The static lock and the static function that took it are named by the
# symbol reader, libfsafe-elf.so.0, which the report loads itself (no
# FSAFE_LOCKS here, so fsafe-run does not preload it).
check "examples/hang under fsafe-run -v: every child completes, the fork waited for queue_lock" \
  "rc=0; timeout -k 5 60 fsafe-run -v ./hang >hang-v.log 2>&1 || rc=\$?; cat hang-v.log;
   [ \$rc -eq 0 ] && grep -q 'queue_lock (liblogq.so) held by thread.*(flusher+0x' hang-v.log"
# FSAFE_LOCKS: fsafe-run preloads the packaged reader; the lock is registered
# by name (a static of liblogq.so's .symtab) and no child hangs.
check "examples/hang under fsafe-run --no-auto --locks=queue_lock@liblogq.so: every child completes" \
  "rc=0; timeout -k 5 60 fsafe-run --no-auto -v --locks=queue_lock@liblogq.so ./hang >hang-l.log 2>&1 || rc=\$?;
   cat hang-l.log; [ \$rc -eq 0 ] && grep -q \"FSAFE_LOCKS: registered 'queue_lock'\" hang-l.log"
echo "checks of the runtime packages $(($(now) - t0)) s" >>"$dir/times"

# The -dev package, then what its consumers need.
t0=$(now)
install_debs libfsafe-dev
echo "install of libfsafe-dev $(($(now) - t0)) s" >>"$dir/times"
echo "== the consumers' tools: gcc, libc6-dev, pkg-config, cmake, make, man-db (log: $dir/tools.log)"
t0=$(now)
if ! in_root "$iroot" "apt-get install -y -q --no-install-recommends gcc libc6-dev pkg-config cmake make man-db" \
  >"$dir/tools.log" 2>&1; then
  tail -n 5 "$dir/tools.log" >&2
  fail "installing gcc, cmake, pkg-config, man-db in the install chroot (log: $dir/tools.log)"
  summary
  exit 1
fi
echo "consumers' tools $(($(now) - t0)) s" >>"$dir/times"
t0=$(now)
check "man fsafe-run (fsafe), man 3 fsafe_fork and a .so page (libfsafe-dev)" \
  "man -w fsafe-run | grep -qx '/usr/share/man/man1/fsafe-run.1.gz' &&
   MANWIDTH=80 man -P cat fsafe-run 2>/dev/null | grep -q 'fsafe-run' &&
   MANWIDTH=80 man -P cat 3 fsafe_fork 2>/dev/null | grep -q 'fsafe_fork' &&
   MANWIDTH=80 man -P cat 3 fsafe_opt_register_lock 2>/dev/null | grep -q 'fsafe_present'"
check "pkg-config: --modversion $version, --libs -lfsafe" \
  "pkg-config --modversion fsafe | grep -qx '$version' && pkg-config --libs fsafe | grep -qx -- '-lfsafe *' &&
   pkg-config --variable=autolib fsafe | grep -qx '$libdir/libfsafe-auto.so.0'"
# examples/consumer, as libfsafe-dev installs it
ex=/usr/share/doc/libfsafe-dev/examples/consumer
cat >"$iroot/usr/local/bin/run-consumer" <<'EOF'
#!/bin/sh
# run-consumer PROGRAM LIBDIR: runs examples/consumer (60 s at most); exit 0
# if it passed and the libfsafe.so it reports (dladdr; /lib/... through
# usrmerge's symbolic link) is LIBDIR/libfsafe.so.0, the package's.
out=$(timeout -k 5 60 "$1") || exit 1
echo "$out"
used=$(echo "$out" | sed -n 's/.* from \(.*\): .*/\1/p')
[ -n "$used" ] && [ "$(realpath "$used")" = "$(realpath "$2/libfsafe.so.0")" ]
EOF
chmod 755 "$iroot/usr/local/bin/run-consumer"
check "examples/consumer with pkg-config, libfsafe.so (forks with a held lock)" \
  "gcc -o consumer-shared $ex/consumer.c \$(pkg-config --cflags --libs fsafe) &&
   run-consumer ./consumer-shared $libdir"
check "examples/consumer with pkg-config --static, libfsafe.a" \
  "gcc -o consumer-static -DCONSUMER_STATIC $ex/consumer.c -static \$(pkg-config --static --cflags --libs fsafe) &&
   timeout -k 5 60 ./consumer-static"
check "examples/consumer with CMake find_package(fsafe), fsafe::fsafe" \
  "cmake -S $ex -B cm-shared >/dev/null && cmake --build cm-shared >/dev/null &&
   run-consumer cm-shared/fsafe-consumer $libdir"
check "examples/consumer with CMake find_package(fsafe), fsafe::fsafe_static" \
  "cmake -S $ex -B cm-static -DCONSUMER_STATIC=ON >/dev/null && cmake --build cm-static >/dev/null &&
   timeout -k 5 60 cm-static/fsafe-consumer"
check "apt-get purge leaves no file of the packages" \
  "apt-get purge -y -q libfsafe-dev fsafe libfsafe0 >/dev/null &&
   ! ls $libdir/libfsafe* /usr/bin/fsafe-run /usr/include/fsafe.h $libdir/cmake/fsafe /usr/share/doc/libfsafe0 2>/dev/null"
echo "checks of libfsafe-dev $(($(now) - t0)) s" >>"$dir/times"
umount_all
summary
