# SPDX-License-Identifier: MIT
# Cross-build for 64-bit Arm Linux with Debian's cross compilers
# (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu) and the arm64 -dev packages
# installed by dpkg multiarch (libelf-dev:arm64, zlib1g-dev:arm64), plus
# libatomic_ops for arm64 (see FSAFE_AARCH64_PKG_CONFIG_DIRS below):
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake \
#         -DFSAFE_AARCH64_PKG_CONFIG_DIRS=DIR-OF-atomic_ops.pc
# The tests run the arm64 programs directly: the kernel hands them to
# qemu-user through binfmt_misc (test/platforms/arm64.sh registers it), so the
# shell scripts of the suite exec them, and LD_PRELOAD reaches them, unchanged.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch, not a sysroot: the arm64 libraries are in /usr/lib/aarch64-linux-gnu,
# which CMake searches from CMAKE_LIBRARY_ARCHITECTURE (taken from the compiler).
# pkg-config must read the arm64 .pc files only, never the host's;
# FSAFE_AARCH64_PKG_CONFIG_DIRS (':'-separated) comes first: arm64.sh puts
# there libatomic-ops-dev:arm64, unpacked beside the host's libatomic-ops-dev
# (the package is not Multi-Arch: same, so both cannot be installed).
# Not inside a try_compile, which reads this file again without the cache
# variable and whose ENV changes are the whole process's.
get_property(_fsafe_in_try_compile GLOBAL PROPERTY IN_TRY_COMPILE)
if(NOT _fsafe_in_try_compile)
  set(FSAFE_AARCH64_PKG_CONFIG_DIRS "" CACHE STRING "More arm64 pkg-config directories, searched first")
  set(ENV{PKG_CONFIG_LIBDIR} "${FSAFE_AARCH64_PKG_CONFIG_DIRS}:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
  set(ENV{PKG_CONFIG_PATH} "")
endif()
# No emulator here (CMAKE_CROSSCOMPILING_EMULATOR): a test that runs a shell
# script, which execs the program, would not get it; binfmt_misc covers both.
# The host's python3 is an x86-64 program with x86-64 headers
# (pyconfig.h includes x86_64-linux-gnu/...): no Python extension is built
# (examples/python, test/dropin.cmake), so the interp area cannot run.
set(FSAFE_PYTHON /nonexistent/python3-for-aarch64 CACHE FILEPATH "No Python for the cross-build")
