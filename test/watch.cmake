# SPDX-License-Identifier: MIT
# The child's watch (issue 24; src/auto/watch.c): a child of a multithreaded
# fork that waits on what no thread of it can end gets one line of fsafe's
# after FSAFE_CHILD_WATCH_MS, and waits on as before; healthy children get
# nothing.  watch.<case>.with under auto mode (500 ms), watch.<case>.without
# the hanging cases without fsafe (the same hang, nothing said), watch.off
# the cond case with FSAFE_CHILD_WATCH_MS=0.  The cases: test_watch.c.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return() # libfsafe-auto.so cannot be preloaded into a sanitizer build
endif()
add_executable(test_watch test_watch.c)
target_link_libraries(test_watch PRIVATE Threads::Threads)
set_target_properties(test_watch PROPERTIES ENABLE_EXPORTS ON) # its waiters' names in the line
set(_watch_auto "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>" FSAFE_CHILD_WATCH_MS=500)
foreach(c cond cnd sem futex thread handler shared single)
  fsafe_add_test(watch.${c}.with TIMEOUT 60 ENV ${_watch_auto} COMMAND test_watch ${c} with)
endforeach()
foreach(c cond cnd sem futex)
  fsafe_add_test(watch.${c}.without TIMEOUT 60 ENV FSAFE_CHILD_WATCH_MS=500
                 COMMAND test_watch ${c} without)
endforeach()
fsafe_add_test(watch.off TIMEOUT 60 ENV "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>" FSAFE_CHILD_WATCH_MS=0
               COMMAND test_watch cond with)
