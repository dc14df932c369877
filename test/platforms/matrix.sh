#!/bin/bash
# SPDX-License-Identifier: MIT
# The glibc matrix (issue 28, part 1): builds fsafe and runs test areas in
# Debian chroots made with debootstrap from Debian's archive, one per release,
# with that release's compiler, glibc, Python and Ruby.  See
# test/platforms/README.md for the times and the results measured.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: test/platforms/matrix.sh [--releases LIST] [--areas LIST] [--source head|worktree]
                                [--jobs N] [--rebuild-chroots] [--help]

For each Debian release in LIST, in order: makes a chroot with debootstrap
(--variant=minbase, from FSAFE_MATRIX_MIRROR) or reuses the cached one,
installs the build and test packages of test/packages.txt from that release
(minus clang, libclang-rt-*, spin and valgrind, which only the fuzz, model and
sanitizer builds use; redis only with --areas compose), copies this source
tree in, configures and builds it (RelWithDebInfo, fresh build directory each
run), and runs the chosen test areas with ctest (each test keeps the TIMEOUT
it has in test/*.cmake).  Then one line per release:
  platform debian-13 (glibc 2.41, gcc 14, python 3.13.5, ruby 3.3.8): N passed, M failed, K skipped
Exit status 0 only if every release built and no test failed; 2 on bad usage.

  --releases LIST   comma-separated Debian code names (default bullseye,trixie;
                    bookworm works too, and any release debootstrap knows)
  --areas LIST      comma-separated test areas (default
                    core,auto,libc,sem,dropin,interp,omp,glib,absl,local_scope,
                    watch);
                    each is a regex over CTest names:
                      core    core kinds misuse forkways onethread order static preload
                      auto    auto.*          libc    libc.*        sem   sem.*
                      dropin  dropin.*        omp     omp.*
                      glib    glib.*          absl    absl.*
                      local_scope  local_scope.*     watch  watch.*
                      interp  optional.* python.* ruby.* install.*
                      churn   churn.*         compose compose.*
                    (stress, soak, model and fuzz are never run here)
  --source head     build `git archive HEAD` of this repository (default)
  --source worktree build the working tree as it is, uncommitted changes and
                    untracked files included (git ls-files; build dirs left out)
  --jobs N          parallel build and ctest jobs (default: FSAFE_MATRIX_JOBS,
                    else 2)
  --rebuild-chroots remove the cached chroots of these releases first
  --help            this text

Environment:
  FSAFE_MATRIX_CACHE   where the chroots and logs live (default
                       /var/cache/fsafe-matrix): CACHE/RELEASE/root is the
                       chroot, CACHE/RELEASE/*.log the logs of the last run
  FSAFE_MATRIX_MIRROR  Debian mirror (default http://deb.debian.org/debian)
  FSAFE_MATRIX_JOBS    default for --jobs

Needs root (debootstrap, chroot, mount), debootstrap (installed with apt-get
if missing) and the network to Debian's archive the first time a release is
made or its package list changes; later runs reuse the chroot offline.  Nothing
asks for input.  /proc, /dev, /dev/pts and /dev/shm are mounted in the chroot
only while it is in use and unmounted on exit, also on failure or a signal.
EOF
}

cache=${FSAFE_MATRIX_CACHE:-/var/cache/fsafe-matrix}
mirror=${FSAFE_MATRIX_MIRROR:-http://deb.debian.org/debian}
jobs=${FSAFE_MATRIX_JOBS:-2}
releases=bullseye,trixie
areas=core,auto,libc,sem,dropin,interp,omp,glib,absl,local_scope,watch
source=head
rebuild=0
while [ $# -gt 0 ]; do
  case $1 in
    --releases) releases=${2:?--releases needs a list}; shift 2 ;;
    --releases=*) releases=${1#*=}; shift ;;
    --areas) areas=${2:?--areas needs a list}; shift 2 ;;
    --areas=*) areas=${1#*=}; shift ;;
    --source) source=${2:?--source needs head or worktree}; shift 2 ;;
    --source=*) source=${1#*=}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --jobs=*) jobs=${1#*=}; shift ;;
    --rebuild-chroots) rebuild=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "matrix.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $source in head|worktree) ;; *) echo "matrix.sh: --source must be head or worktree" >&2; exit 2 ;; esac
case $jobs in ''|*[!0-9]*|0) echo "matrix.sh: --jobs must be a positive number" >&2; exit 2 ;; esac

# Test areas as CTest regexes (test/platforms/areas.sh, shared with arm64.sh).
. "$(dirname "$0")/areas.sh"
regex=""
for a in ${areas//,/ }; do
  r=$(area_regex "$a") || { echo "matrix.sh: unknown area '$a' (see --help)" >&2; exit 2; }
  regex=${regex:+$regex|}$r
done
[ -n "$regex" ] || { echo "matrix.sh: no test area given" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || { echo "matrix.sh: must run as root (debootstrap, chroot, mount)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
if ! command -v debootstrap >/dev/null; then
  echo "matrix.sh: installing debootstrap" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$cache"

# ---- mounts: every one is recorded and undone on exit (chroot.sh) -----------
# shellcheck source=chroot.sh
. "$repo/test/platforms/chroot.sh"
trap 'umount_all' EXIT
trap 'umount_all; trap - EXIT; exit 130' INT
trap 'umount_all; trap - EXIT; exit 143' TERM
# The packages: test/packages.txt minus what only other builds use.
packages() {
  local p out=""
  for p in $(grep -v '^#' "$repo/test/packages.txt"); do
    case $p in
      clang|libclang-rt-*|spin|valgrind) continue ;;
      redis-server|redis-tools) case ",$areas," in *,compose,*) ;; *) continue ;; esac ;;
    esac
    out="$out $p"
  done
  echo "$out"
}

copy_tree() { # copy_tree DEST
  local dest=$1
  rm -rf "$dest"
  mkdir -p "$dest"
  if [ -d "$repo/.git" ] || git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    if [ "$source" = head ]; then
      git -C "$repo" archive --format=tar HEAD | tar -x -C "$dest"
    else
      (cd "$repo" && git ls-files -z -c -o --exclude-standard |
        grep -zv -E '^build[^/]*/' | xargs -0 tar -c --no-recursion -f - 2>/dev/null) | tar -x -C "$dest"
    fi
  else
    (cd "$repo" && tar -c --exclude='./build*' -f - .) | tar -x -C "$dest"
  fi
}

summaries=()
status=0
for rel in ${releases//,/ }; do
  dir=$cache/$rel
  root=$dir/root
  mkdir -p "$dir"
  exec 9>"$dir/lock"
  if ! flock -w 3600 9; then
    summaries+=("platform $rel: FAILED (another matrix run holds $dir/lock)")
    status=1
    continue
  fi
  : >"$dir/times"
  t_boot=0 t_deps=0 t_build=0 t_test=0

  # 1. the chroot (cached; a marker says debootstrap finished)
  if [ "$rebuild" = 1 ]; then remove_root "$root"; rm -f "$dir/debootstrap.ok" "$dir/deps.ok"; fi
  if [ ! -f "$dir/debootstrap.ok" ]; then
    remove_root "$root"
    echo "== $rel: debootstrap (log: $dir/debootstrap.log)"
    t0=$(now)
    cur_root=$root
    debootstrap --variant=minbase "$rel" "$root" "$mirror" >"$dir/debootstrap.log" 2>&1 </dev/null &
    bg_pid=$!
    if ! wait "$bg_pid"; then
      umount_stale "$root"
      cur_root=""
      tail -n 5 "$dir/debootstrap.log" >&2
      summaries+=("platform $rel: FAILED: debootstrap (log: $dir/debootstrap.log)")
      status=1
      continue
    fi
    umount_stale "$root"
    cur_root=""
    t_boot=$(($(now) - t0))
    echo "debootstrap $t_boot s" >>"$dir/times"
    touch "$dir/debootstrap.ok"
  else
    echo "== $rel: reusing the chroot $root"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  grep -qs localhost "$root/etc/hosts" || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >>"$root/etc/hosts"
  # no service starts in the chroot (redis-server's postinst)
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"

  mount_chroot "$root"

  # 2. the packages (again whenever the list changes)
  pk=$(packages)
  if [ "$(cat "$dir/deps.ok" 2>/dev/null)" != "$pk" ]; then
    echo "== $rel: installing$pk (log: $dir/deps.log)"
    t0=$(now)
    # Unstable's Release file is valid for a week only: from a mirror that
    # is a snapshot older than that (this machine's), apt refuses it
    # ("expired") unless told not to check.  Released suites have no limit.
    apt_opts=
    case $rel in sid | unstable) apt_opts="-o Acquire::Check-Valid-Until=false" ;; esac
    if ! in_root "$root" "apt-get $apt_opts update -q && apt-get $apt_opts install -y -q --no-install-recommends $pk" >"$dir/deps.log" 2>&1; then
      tail -n 5 "$dir/deps.log" >&2
      summaries+=("platform $rel: FAILED: installing the packages (log: $dir/deps.log)")
      status=1
      umount_all
      continue
    fi
    t_deps=$(($(now) - t0))
    echo "deps $t_deps s" >>"$dir/times"
    echo "$pk" >"$dir/deps.ok"
  fi

  # what this platform is
  deb=$(cut -d. -f1 "$root/etc/debian_version")
  case $deb in [0-9]*) name=debian-$deb ;; *) name=debian-$rel ;; esac
  glibc=$(in_root "$root" "getconf GNU_LIBC_VERSION" 2>/dev/null | awk '{print $2}')
  gccv=$(in_root "$root" "gcc -dumpversion" 2>/dev/null)
  pyv=$(in_root "$root" "python3 -c 'import platform; print(platform.python_version())'" 2>/dev/null)
  rbv=$(in_root "$root" "ruby -e 'print RUBY_VERSION'" 2>/dev/null)
  cmv=$(in_root "$root" "cmake --version" 2>/dev/null | awk 'NR==1{print $3}')
  label="platform $name (glibc ${glibc:-?}, gcc ${gccv:-?}, python ${pyv:-?}, ruby ${rbv:-?})"
  echo "== $label, cmake ${cmv:-?}"

  # 3. the tree and the build (fresh each run)
  copy_tree "$root/fsafe-src"
  rm -rf "$root/fsafe-build"
  echo "== $rel: building $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)${source/head/} (log: $dir/build.log)"
  t0=$(now)
  # Configure, then build with make -k: a test program that does not compile
  # on this release fails its tests ("Not Run"), the others still run.
  build_ok=1
  if ! in_root "$root" "cmake -S /fsafe-src -B /fsafe-build -DCMAKE_BUILD_TYPE=RelWithDebInfo" >"$dir/build.log" 2>&1; then
    tail -n 20 "$dir/build.log" >&2
    summaries+=("$label: FAILED: cmake could not configure (log: $dir/build.log)")
    status=1
    umount_all
    continue
  fi
  in_root "$root" "cmake --build /fsafe-build -j$jobs -- -k" >>"$dir/build.log" 2>&1 || build_ok=0
  t_build=$(($(now) - t0))
  echo "build $t_build s" >>"$dir/times"
  warnings=$(grep -c 'warning:' "$dir/build.log" || true)
  if [ "$build_ok" = 0 ]; then
    echo "   the build FAILED in part; errors:"
    grep -E 'error:' "$dir/build.log" | sed 's|^/fsafe-src/|     |' | sort -u | head -n 20
    status=1
  fi

  # 4. the tests: ctest in the build directory (CMake 3.18 in bullseye has
  # no --test-dir), with the timeouts test/*.cmake gives
  echo "== $rel: ctest -R '$regex' (log: $dir/ctest.log)"
  t0=$(now)
  in_root "$root" "cd /fsafe-build && ctest -j$jobs --output-on-failure -R '$regex'" >"$dir/ctest.log" 2>&1 || true
  t_test=$(($(now) - t0))
  echo "tests $t_test s" >>"$dir/times"
  umount_all

  # One line per test: "N/T Test #I: NAME ....   Passed  0.1 sec"
  results=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$dir/ctest.log" || true)
  # "Not Run (Disabled)" is a skip; any other "Not Run" is a program that
  # was not built, a failure.
  passed=$(printf '%s\n' "$results" | grep -c ' Passed ' || true)
  skipped=$(printf '%s\n' "$results" | grep -cE 'Skipped|Not Run \(Disabled\)' || true)
  total=$(printf '%s\n' "$results" | grep -c 'Test' || true)
  failed=$((total - passed - skipped))
  if [ "$total" -eq 0 ]; then
    failed=1
    echo "matrix.sh: no test ran in $rel (see $dir/ctest.log)" >&2
  fi
  # (grep finds nothing when every test passed: not an error here)
  { printf '%s\n' "$results" | grep -vE ' Passed |Skipped|Not Run \(Disabled\)' || true; } |
    sed -n 's/^.*Test *#[0-9]*: \([^ ]*\) .*\*\*\*\(.*\)$/  failed: \1 (\2)/p' | sed 's/  *[0-9.]* sec)$/)/' >"$dir/failed.txt"
  cat "$dir/failed.txt"
  echo "   times: debootstrap $([ "$t_boot" = 0 ] && echo cached || echo "${t_boot}s"), packages $([ "$t_deps" = 0 ] && echo cached || echo "${t_deps}s"), build ${t_build}s ($warnings warnings), tests ${t_test}s"
  note=""
  [ "$build_ok" = 1 ] || note="; the build FAILED in part (log: $dir/build.log)"
  summaries+=("$label: $passed passed, $failed failed, $skipped skipped$note")
  [ "$failed" -eq 0 ] || status=1
  exec 9>&-
done

echo "== glibc matrix ($areas)"
printf '%s\n' "${summaries[@]}"
exit $status
