# SPDX-License-Identifier: MIT
# GLib's locks in a child (issue 24; src/auto/glib.c), built against
# Debian's libglib2.0-dev.  glib.mutex: a GMutex (a futex word, no pthread
# call) held by GThreadPool workers; glib.rec: GRecMutex and GRWLock (pthread
# objects inside GLib); glib.cond: threads in g_cond_wait/_until must not
# hold a fork up.  .with under auto mode (every child takes the locks, and
# fsafe prints nothing); .without: some child cannot.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return() # libfsafe-auto.so cannot be preloaded into a sanitizer build
endif()
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(GLIB QUIET IMPORTED_TARGET glib-2.0)
endif()
if(NOT GLIB_FOUND)
  message(STATUS "fsafe: no glib-2.0 (libglib2.0-dev): the glib.* tests are not built")
  return()
endif()
add_executable(test_glib test_glib.c)
target_link_libraries(test_glib PRIVATE PkgConfig::GLIB Threads::Threads)
set(_glib_auto "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>" FSAFE_AUTO_WAIT_MS=5000)
foreach(c mutex rec cond)
  fsafe_add_test(glib.${c}.with TIMEOUT 120 ENV ${_glib_auto} COMMAND test_glib ${c} ok)
  set_tests_properties(glib.${c}.with PROPERTIES FAIL_REGULAR_EXPRESSION "fsafe\\[")
endforeach()
foreach(c mutex rec)
  fsafe_add_test(glib.${c}.without TIMEOUT 120 COMMAND test_glib ${c} hang)
endforeach()
