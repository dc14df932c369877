# SPDX-License-Identifier: MIT
# Auto mode (libfsafe-auto.so): locks nobody registered.  Each case runs twice
# where it can: plain, where a child must hang or fail (the case shows the
# fault), and with libfsafe-auto.so preloaded, where every child completes.
include(CheckLanguage)
check_language(CXX)
if(NOT CMAKE_CXX_COMPILER)
  message(WARNING "no C++ compiler: the auto-mode tests (std::mutex cases) are not built")
  return()
endif()
enable_language(CXX)

add_library(auto_lib_test SHARED auto/auto_lib.c)
target_link_libraries(auto_lib_test PRIVATE Threads::Threads)
add_library(auto_cxx_test SHARED auto/auto_cxx.cpp)
set_target_properties(auto_cxx_test PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_link_libraries(auto_cxx_test PRIVATE Threads::Threads)
add_library(auto_plugin_test MODULE auto/auto_plugin.c)
target_link_libraries(auto_plugin_test PRIVATE Threads::Threads)
# Built without -rdynamic (CMP0065): exe_lock is in .symtab only.
fsafe_test_exe(test_auto SOURCES test_auto.c OPTIONAL LIBS auto_lib_test auto_cxx_test ${CMAKE_DL_LIBS})
add_dependencies(test_auto auto_plugin_test)
set_target_properties(auto_lib_test auto_cxx_test auto_plugin_test PROPERTIES
                      C_VISIBILITY_PRESET default CXX_VISIBILITY_PRESET default)

set(FSAFE_AUTO_LIB $<TARGET_FILE:fsafe_auto>)
if(FSAFE_SANITIZER_RUNTIME AND FSAFE_SANITIZE STREQUAL "address" AND TARGET fsafe_elf)
  # Under LeakSanitizer a report does not load the symbol reader itself
  # (src/retrofit/elf_reader.c): preloaded, it names the static locks and
  # functions the tests look for.
  set(_auto_preload "LD_PRELOAD=${FSAFE_SANITIZER_RUNTIME}:$<TARGET_FILE:fsafe_elf>:${FSAFE_AUTO_LIB}")
elseif(FSAFE_SANITIZER_RUNTIME)
  set(_auto_preload "LD_PRELOAD=${FSAFE_SANITIZER_RUNTIME}:${FSAFE_AUTO_LIB}")
else()
  set(_auto_preload "LD_PRELOAD=${FSAFE_AUTO_LIB}")
endif()
set(_auto_env AUTO_PLUGIN=$<TARGET_FILE:auto_plugin_test>)

fsafe_cases(FSAFE_AUTO_CASES test_auto.c)
# Cases whose plain run shows a hang or a failure.
set(FSAFE_AUTO_HANG lib_static_mutex heap_rwlock_write heap_rwlock_read spinlock exe_global_mutex
    cxx_member_mutex cxx_shared_mutex_write cxx_shared_mutex_read cond_wait c11 dlopen_later
    recursive_twice forker_holds paused_thread failed_attempts acquiring_not_stale)
foreach(c ${FSAFE_AUTO_CASES})
  set(env ${_auto_preload} ${_auto_env})
  if(c MATCHES "^paused_thread")
    list(APPEND env FSAFE_AUTO_WAIT_MS=100)
  endif()
  if(c STREQUAL "paused_thread_keep")
    list(APPEND env FSAFE_AUTO_ON_TIMEOUT=keep)
  endif()
  if(c STREQUAL "failed_attempts")
    list(APPEND env FSAFE_VERBOSE=1 FSAFE_AUTO_WAIT_MS=5000)
  endif()
  # signal_handler: its worker's lock call once stayed unfinished for the
  # default 250 ms on a loaded machine (Debian 13 chroot beside two builds,
  # load average 6; 0 of 110 runs after): the test asks that no fork ever
  # waits out its bound, which a protocol bug makes every fork do.
  if(c MATCHES "^(acquiring_not_stale|cond_wait_holding|forker_holds_cond_mutex|forker_reads_writer_waits|previous_forker_releases|signal_handler)$")
    list(APPEND env FSAFE_AUTO_WAIT_MS=5000)
  endif()
  fsafe_add_test(auto.${c}.ok TIMEOUT 120 COMMAND test_auto ${c} ok ENV ${env})
endforeach()
# Under TSan: its runtime keeps its own object behind each pthread_cond_t (a
# pointer stored in the condition variable), which the child's reset cannot
# know, and its C11 thread interceptors crash with or without fsafe.
set_tests_properties(auto.cond_wait.ok auto.cond_versions.ok auto.c11.ok auto.cond_wait_holding.ok
                     auto.forker_holds_cond_mutex.ok auto.pshared_cond_wait.ok
                     auto.handler_in_cond_wait.ok
                     PROPERTIES LABELS no-tsan)
foreach(c ${FSAFE_AUTO_HANG})
  fsafe_add_test(auto.${c}.hang TIMEOUT 60 COMMAND test_auto ${c} hang ENV ${_auto_env})
  # The plain twins show glibc's behaviour, which TSan's interceptors change.
  set_tests_properties(auto.${c}.hang PROPERTIES LABELS no-tsan)
endforeach()

# The stress run (test/test_stress.c: registered locks of every kind, malloc,
# stdio, registration churn, forks from random threads) with auto mode on top.
math(EXPR _auto_stress_s "${FSAFE_STRESS_SECONDS} / 3 + 1")
math(EXPR _auto_stress_timeout "${_auto_stress_s} * 2 + 120")
fsafe_add_test(stress.auto TIMEOUT ${_auto_stress_timeout} COMMAND test_stress ${_auto_stress_s}
               ENV ${_auto_preload})
set_tests_properties(stress.auto PROPERTIES LABELS stress RUN_SERIAL TRUE)

# Linked instead of preloaded: -lfsafe-auto ahead of libc in the link order
# interposes the lock calls just the same.
fsafe_test_exe(test_auto_linked SOURCES test_auto.c OPTIONAL
               LIBS fsafe_auto auto_lib_test auto_cxx_test ${CMAKE_DL_LIBS})
foreach(c lib_static_mutex cxx_member_mutex forker_holds)
  fsafe_add_test(auto.linked.${c} TIMEOUT 120 COMMAND test_auto_linked ${c} ok ENV ${_auto_env})
endforeach()
# FSAFE_AUTO=0 with the library loaded: no tracking, the child hangs again.
fsafe_add_test(auto.off.lib_static_mutex TIMEOUT 60 COMMAND test_auto lib_static_mutex hang
               ENV ${_auto_preload} ${_auto_env} FSAFE_AUTO=0)
set_tests_properties(auto.off.lib_static_mutex PROPERTIES LABELS no-tsan)
# FSAFE_AUTO=1 with only libfsafe.so: one warning, and the hang it cannot fix.
if(NOT FSAFE_SANITIZE)
  add_test(NAME auto.without_library
           COMMAND /bin/sh -c "\"$0\" lib_static_mutex hang 2>\"$1\"; rc=$?; cat \"$1\"; [ $rc = 0 ] && [ $(grep -c 'libfsafe-auto.so is not loaded' \"$1\") = 1 ]"
                   $<TARGET_FILE:test_auto> ${CMAKE_CURRENT_BINARY_DIR}/auto-without-library.err)
  set_tests_properties(auto.without_library PROPERTIES TIMEOUT 60
                       ENVIRONMENT "LD_PRELOAD=${FSAFE_LIB};FSAFE_AUTO=1;${_auto_env}")
endif()

# ---- the soak (issue 25) ------------------------------------------------------------------
# 8 threads on 16 locks of every kind, semaphores as locks and as a counter,
# every gated libc family, dlopen/dlclose, threads coming and going, signal
# handlers that lock, while two threads fork; every child takes every lock,
# calls every family and sometimes forks a grandchild; no fork may reach the
# (high) FSAFE_AUTO_WAIT_MS bound.  soak: auto mode; soak.registered: every
# other mutex registered too; soak.without: the same without fsafe, where a
# child must go wrong.  Label "stress".  The long run:
#   -DFSAFE_SOAK_FORKS=100000 (then FSAFE_SOAK_SECONDS only bounds it).
# Tolerated: FSAFE_SOAK_TOLERATE bad children per 10,000 forks, at least one
# (default 5); a stuck parent fails at once.  The 10^5-fork runs are strict
# (-DFSAFE_SOAK_TOLERATE=0).  Two faults the long runs found are fixed; a
# third showed once, under ThreadSanitizer (a condition lock's mutex held in
# 1 child of 151): not diagnosed yet (test/README.md, "Soak").
if(FSAFE_SANITIZE STREQUAL "")
  set(_soak_default 40)
else()
  set(_soak_default 20)
endif()
set(FSAFE_SOAK_SECONDS ${_soak_default} CACHE STRING "How long the soak test runs (seconds)")
set(FSAFE_SOAK_FORKS 0 CACHE STRING "Run the soak until this many forks (0: for FSAFE_SOAK_SECONDS)")
set(FSAFE_SOAK_TOLERATE 5 CACHE STRING "Bad children per 10,000 forks the soak passes with")
fsafe_test_exe(test_auto_stress SOURCES test_auto_stress.c OPTIONAL LIBS ${CMAKE_DL_LIBS})
if(NOT FSAFE_SANITIZE STREQUAL "")
  # The sanitizers' own dlopen interceptors take a runtime lock (TSan's
  # LibIgnore mutex) that another thread may hold at the fork: the child's
  # dlopen then hangs inside the sanitizer, with or without fsafe.
  target_compile_definitions(test_auto_stress PRIVATE FSAFE_SOAK_NO_DLOPEN)
endif()
set(_soak_args ${FSAFE_SOAK_SECONDS} --soak --tolerate-per-10k ${FSAFE_SOAK_TOLERATE})
set(_soak_timeout ${FSAFE_SOAK_SECONDS})
if(FSAFE_SOAK_FORKS GREATER 0)
  set(_soak_seconds 86400)
  if(FSAFE_SOAK_SECONDS GREATER 3600)
    set(_soak_seconds ${FSAFE_SOAK_SECONDS})
  endif()
  set(_soak_args ${_soak_seconds} --soak --forks ${FSAFE_SOAK_FORKS} --tolerate-per-10k
      ${FSAFE_SOAK_TOLERATE})
  set(_soak_timeout ${_soak_seconds})
endif()
math(EXPR _soak_timeout "${_soak_timeout} * 2 + 120")
fsafe_add_test(soak TIMEOUT ${_soak_timeout}
  COMMAND test_auto_stress ${_soak_args} ENV ${_auto_preload} FSAFE_AUTO_WAIT_MS=5000)
math(EXPR _soak_reg_s "${FSAFE_SOAK_SECONDS} / 3 + 1")
math(EXPR _soak_reg_timeout "${_soak_reg_s} * 2 + 120")
fsafe_add_test(soak.registered TIMEOUT ${_soak_reg_timeout}
  COMMAND test_auto_stress ${_soak_reg_s} --soak --register --tolerate-per-10k ${FSAFE_SOAK_TOLERATE}
  ENV ${_auto_preload} FSAFE_AUTO_WAIT_MS=5000)
fsafe_add_test(soak.without TIMEOUT 120 COMMAND test_auto_stress 60 --soak --expect-bad)
set_tests_properties(soak soak.registered soak.without PROPERTIES LABELS stress RUN_SERIAL TRUE)

# Every case of test_auto.c has a test; every case listed above is one.
fsafe_cases_check(test_auto.c auto SUBSET ${FSAFE_AUTO_HANG})
