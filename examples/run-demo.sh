#!/bin/sh
# SPDX-License-Identifier: MIT
# Sets up a fresh Debian 12 machine, builds fsafe, and runs the demo: a child
# that hangs without fsafe and doesn't with it.
set -eu
cd "$(dirname "$0")/.."
test/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target fsafe-demo >/dev/null
exec build/examples/fsafe-demo "$@"
