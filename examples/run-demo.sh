#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds fsafe and runs two demos on a fresh Debian 12 machine, installing
# only what the build needs (a C compiler, CMake, make, pkg-config,
# libatomic_ops, libelf; no test toolchain):
#   1. fsafe-demo: a library that registers its lock through fsafe's optional
#      API; its children hang without fsafe and not with libfsafe.so preloaded;
#   2. examples/hang: a library nobody changed; its children hang without fsafe
#      and not under fsafe-run (auto mode).
# The build goes to build-demo/ (tests and benchmarks off).
set -eu
cd "$(dirname "$0")/.."
need="gcc cmake make pkg-config libatomic-ops-dev libelf-dev"
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "run-demo: installing:$missing" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFSAFE_BUILD_TESTS=OFF \
  -DFSAFE_BUILD_BENCH=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target fsafe-demo hang fsafe_shared fsafe_auto >/dev/null

echo "== fsafe-demo: a library that registers its lock with fsafe (optional API)"
demo=0
build-demo/examples/fsafe-demo "$@" || demo=$?

echo
echo "== examples/hang: a library that knows nothing of fsafe (see README.md)"
echo "\$ build-demo/examples/hang/hang"
plain=0
build-demo/examples/hang/hang || plain=$?
echo "\$ build-demo/fsafe-run build-demo/examples/hang/hang     (auto mode: nothing registered)"
auto=0
build-demo/fsafe-run build-demo/examples/hang/hang || auto=$?
if [ "$plain" -ne 0 ] && [ "$auto" -eq 0 ]; then
  echo "result: hang's children hang without fsafe; under fsafe-run auto mode made each fork wait until no thread held the library's lock"
else
  echo "result: UNEXPECTED (hang exited $plain plain, $auto under fsafe-run)"
  exit 1
fi
exit $demo
