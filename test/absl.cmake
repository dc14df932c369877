# SPDX-License-Identifier: MIT
# abseil's absl::Mutex in a child (issue 24; src/auto/absl.c), built against
# Debian's shared libabsl (libabsl-dev).  absl.mutex: mutexes held by other
# threads in a loop; absl.cond: threads in Await, CondVar waits and
# LockWhenWithTimeout must not hold a fork up.  .with under auto mode (every
# child takes the mutexes, and fsafe prints nothing); .without: some child
# cannot.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return() # libfsafe-auto.so cannot be preloaded into a sanitizer build
endif()
find_package(absl QUIET CONFIG)
if(NOT absl_FOUND OR NOT CMAKE_CXX_COMPILER)
  message(STATUS "fsafe: no abseil (libabsl-dev): the absl.* tests are not built")
  return()
endif()
add_executable(test_absl test_absl.cc)
set_target_properties(test_absl PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_link_libraries(test_absl PRIVATE absl::synchronization absl::time Threads::Threads)
set(_absl_auto "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>" FSAFE_AUTO_WAIT_MS=5000)
foreach(c mutex cond)
  fsafe_add_test(absl.${c}.with TIMEOUT 120 ENV ${_absl_auto} COMMAND test_absl ${c} ok)
  set_tests_properties(absl.${c}.with PROPERTIES FAIL_REGULAR_EXPRESSION "fsafe\\[")
endforeach()
fsafe_add_test(absl.mutex.without TIMEOUT 120 COMMAND test_absl mutex hang)
