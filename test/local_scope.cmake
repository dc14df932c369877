# SPDX-License-Identifier: MIT
# Interposed functions whose only definition is outside the global scope
# (src/auto/svc.c): a C program loads a plugin with dlopen(RTLD_LOCAL), as
# CPython loads extension modules, and the plugin brings the library that
# defines them.  local_scope.<lib>.with: under auto mode the plugin works in
# the parent and in 10 children while its thread takes its lock in a loop
# (before the fix, the first call aborted the program: "dlsym(RTLD_NEXT)
# cannot find __cxa_guard_acquire").  local_scope.<lib>.without: the same
# plugin without fsafe and without its thread, which passes (the program is
# sound by itself); for libgomp it cannot, as a child of a process with a
# pool hangs without fsafe (omp.pool.without), so that twin must fail by
# its children alone.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return() # libfsafe-auto.so cannot be preloaded into a sanitizer build
endif()
add_executable(test_local_scope local_scope/host.c)
target_link_libraries(test_local_scope PRIVATE ${CMAKE_DL_LIBS})
set(_plugins)

if(CMAKE_CXX_COMPILER)
  add_library(local_scope_cxx MODULE local_scope/cxx.cc)
  target_link_libraries(local_scope_cxx PRIVATE Threads::Threads)
  list(APPEND _plugins cxx)
endif()
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(GLIB QUIET IMPORTED_TARGET glib-2.0)
endif()
if(GLIB_FOUND)
  add_library(local_scope_glib MODULE local_scope/glib.c)
  target_link_libraries(local_scope_glib PRIVATE PkgConfig::GLIB)
  list(APPEND _plugins glib)
endif()
find_package(absl QUIET CONFIG)
if(absl_FOUND AND CMAKE_CXX_COMPILER)
  add_library(local_scope_absl MODULE local_scope/absl.cc)
  set_target_properties(local_scope_absl PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_link_libraries(local_scope_absl PRIVATE absl::synchronization Threads::Threads)
  list(APPEND _plugins absl)
endif()
find_package(OpenMP QUIET COMPONENTS C)
if(OpenMP_C_FOUND AND CMAKE_C_COMPILER_ID STREQUAL "GNU")
  add_library(local_scope_omp MODULE local_scope/omp.c)
  target_link_libraries(local_scope_omp PRIVATE OpenMP::OpenMP_C)
  list(APPEND _plugins omp)
endif()
message(STATUS "fsafe: local_scope plugins: ${_plugins}")

foreach(p IN LISTS _plugins)
  set(_so $<TARGET_FILE:local_scope_${p}>)
  fsafe_add_test(local_scope.${p}.with TIMEOUT 120
                 ENV "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>" FSAFE_AUTO_WAIT_MS=5000 OMP_NUM_THREADS=4
                 COMMAND test_local_scope ${_so} busy)
  set_tests_properties(local_scope.${p}.with PROPERTIES FAIL_REGULAR_EXPRESSION "fsafe")
  fsafe_add_test(local_scope.${p}.without TIMEOUT 120 ENV OMP_NUM_THREADS=4
                 COMMAND test_local_scope ${_so} quiet)
  if(p STREQUAL "omp")
    set_tests_properties(local_scope.${p}.without PROPERTIES PASS_REGULAR_EXPRESSION "parent passed, [0-9]/10 children passed")
  endif()
endforeach()
