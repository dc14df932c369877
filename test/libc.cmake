# SPDX-License-Identifier: MIT
# glibc's own locks under auto mode (issue 11): test_libc_locks runs plain
# ("without": children hang) and with libfsafe-auto.so preloaded ("with":
# none hang, and fsafe prints nothing).  The program does not link fsafe.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return() # libfsafe-auto.so cannot be preloaded into a sanitizer build
endif()

# A plugin in a directory of its own, loaded by path (the dlopen family) and by
# bare name from a library whose RUNPATH holds that directory.
set(_rp_dir ${CMAKE_CURRENT_BINARY_DIR}/libc-plugin)
add_library(fsafe_rp_plugin SHARED libc/rp_plugin.c)
set_target_properties(fsafe_rp_plugin PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${_rp_dir})
add_library(fsafe_rp_loader SHARED libc/rp_loader.c)
set_target_properties(fsafe_rp_loader PROPERTIES BUILD_RPATH ${_rp_dir} SKIP_BUILD_RPATH OFF)
target_link_options(fsafe_rp_loader PRIVATE -Wl,--enable-new-dtags)
add_library(fsafe_ctor_fork SHARED libc/ctor_fork.c)
set(_ctor_lock_dir ${CMAKE_CURRENT_BINARY_DIR}/libc-ctor-lock)
add_library(fsafe_ctor_lock SHARED libc/ctor_lock.c)
set_target_properties(fsafe_ctor_lock PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${_ctor_lock_dir})
target_link_libraries(fsafe_ctor_lock PRIVATE Threads::Threads)

# pthread_kill's two glibc versions through auto mode's wrapper (libc.c).
add_library(fsafe_kill_old SHARED libc/kill_old.c)
# A call, not a jump: the wrapper tells the versions apart by its caller's
# object, and a tail call's return address is the caller's caller.
target_compile_options(fsafe_kill_old PRIVATE -fno-optimize-sibling-calls)
target_link_libraries(fsafe_kill_old PRIVATE Threads::Threads) # (before 2.34: libpthread)
add_executable(test_kill_versions libc/kill_versions.c)
target_link_libraries(test_kill_versions PRIVATE fsafe_kill_old Threads::Threads)

add_executable(test_libc_locks test_libc_locks.c)
target_include_directories(test_libc_locks PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_libc_locks PRIVATE fsafe_rp_loader Threads::Threads ${CMAKE_DL_LIBS} ${FSAFE_RESOLV_LIBS} ${FSAFE_RT_LIBS})
add_dependencies(test_libc_locks fsafe_rp_plugin fsafe_ctor_fork fsafe_ctor_lock)

set(_auto "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>")
# The "with" runs wait up to 5 s for other threads (the default 250 ms can run
# out on a loaded 2-core machine, and then a child may hang: the documented
# limit of the bound, not what these tests are about).  A fork that waits for
# a thread blocked on the forker itself still shows: it prints a message.
set(_auto_patient ${_auto} FSAFE_AUTO_WAIT_MS=5000)
set(_plugin $<TARGET_FILE:fsafe_rp_plugin>)
# fsafe_libc_test(name [SOME] [ARGS ...]): libc.NAME.with always; with SOME
# also libc.NAME.without, which must see a child hang.
function(fsafe_libc_test name)
  cmake_parse_arguments(A "SOME" "TIMEOUT" "ARGS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 60)
  endif()
  fsafe_add_test(libc.${name}.with TIMEOUT ${A_TIMEOUT} ENV ${_auto_patient}
                 COMMAND test_libc_locks ${name} none ${A_ARGS})
  if(A_SOME)
    fsafe_add_test(libc.${name}.without TIMEOUT ${A_TIMEOUT}
                   COMMAND test_libc_locks ${name} some ${A_ARGS})
  endif()
endfunction()

# The families with a plain twin that shows the hang (all but cookie_flush
# and the dlopen pair below); test_libc_locks.c's families[] table is the
# list, checked at the end of this file.
set(_libc_some localtime rand atexit utmp strerror cxa_guard sem_open popen setenv_tzset syslog
    iconv wide_string newlocale getpwnam gethostbyaddr getaddrinfo dl_iterate_phdr getservent_r getrpcbyname
    netgroup resolv account_files fmtmsg lckpwdf schedparam pthread_kill printf_register bindresvport
    regexec readdir getopt)
foreach(f ${_libc_some})
  fsafe_libc_test(${f} SOME)
endforeach()
fsafe_libc_test(dlopen SOME ARGS ${_plugin})
# By bare name (issue 25): the gate cannot cover it, so the fork takes the
# loader's lock itself; without fsafe a child's dlopen aborts in ld.so.
# 1000 forks: about a minute on a loaded 2-core machine (seen at 68-78 s).
fsafe_libc_test(dlopen_name SOME TIMEOUT 240 ARGS libm.so.6)
# By bare name, a constructor and destructor that lock: the thread holding
# the loader's lock must not be parked at its mutex (the fork waits for it).
fsafe_add_test(libc.dlopen_ctor.with TIMEOUT 240 ENV ${_auto_patient} LD_LIBRARY_PATH=${_ctor_lock_dir}
               COMMAND test_libc_locks dlopen_name none libfsafe_ctor_lock.so)
# glibc's locks that libc takes inside itself (no wrapper sees them), covered
# by FSAFE_LOCKS entries of the "lll" and mutex kinds, found in libc's debug
# file (libc6-dbg; the "with" run is skipped without it): __cxa_finalize's
# walk of the exit handlers, and SIGEV_THREAD timers (glibc-locks.tsv, "locks").
foreach(_f "exit_finalize;__exit_funcs_lock@libc.so.6:lll"
           "timer;__timer_active_sigev_thread_lock@libc.so.6")
  list(GET _f 0 _name)
  list(GET _f 1 _locks)
  fsafe_add_test(libc.${_name}.without TIMEOUT 60 COMMAND test_libc_locks ${_name} some)
  if(TARGET fsafe_elf) # (FSAFE_LOCKS needs the symbol reader)
    fsafe_add_test(libc.${_name}.with TIMEOUT 60
                   ENV "LD_PRELOAD=$<TARGET_FILE:fsafe_elf>:$<TARGET_FILE:fsafe_auto>"
                       FSAFE_AUTO_WAIT_MS=5000 "FSAFE_LOCKS=${_locks}"
                   COMMAND test_libc_locks ${_name} none)
  endif()
endforeach()
# The lll entry's own limits (test_libc_locks.c): the forker's own atexit
# from another library's prepare handler, and a single-threaded fork from a
# signal handler inside __cxa_finalize.  Each program runs plain too.
# Without auto mode (libfsafe.so alone) an lll entry is not taken: one line.
if(TARGET fsafe_elf)
  fsafe_add_test(libc.lll_prepare_atexit.no_auto TIMEOUT 60
                 ENV "LD_PRELOAD=$<TARGET_FILE:fsafe_elf>:${FSAFE_LIB}"
                     "FSAFE_LOCKS=__exit_funcs_lock@libc.so.6:lll"
                 COMMAND test_libc_locks prepare_atexit none no_auto)
endif()
foreach(_c prepare_atexit handler_exit)
  fsafe_add_test(libc.lll_${_c}.plain TIMEOUT 60 COMMAND test_libc_locks ${_c} none)
  if(TARGET fsafe_elf)
    fsafe_add_test(libc.lll_${_c}.with TIMEOUT 60
                   ENV "LD_PRELOAD=$<TARGET_FILE:fsafe_elf>:$<TARGET_FILE:fsafe_auto>"
                       "FSAFE_LOCKS=__exit_funcs_lock@libc.so.6:lll"
                   COMMAND test_libc_locks ${_c} none)
  endif()
endforeach()
# fflush(NULL) calling a cookie callback that takes a mutex: no hang plain
# (glibc's fork waits for the stdio list lock), and none with fsafe either.
fsafe_libc_test(cookie_flush)
# The self-deadlock cases: calls inside calls, forks inside calls, handlers.
fsafe_libc_test(iterate_fork SOME)
fsafe_libc_test(ctor_fork ARGS $<TARGET_FILE:fsafe_ctor_fork>)
fsafe_libc_test(nested)
# A fork from a stream callback inside fgetpwent: the fork does not wait for
# the other callers, blocked on the forker's lock (its own gate excludes them).
fsafe_libc_test(account_fork)
fsafe_add_test(libc.signal.with TIMEOUT 60 ENV ${_auto_patient} COMMAND test_libc_locks signal none)
# The same with the account file parsers in the workers, the time zone in the
# handler: a handler fork inside sgetspent must not let another thread's fork
# skip the other parsers' calls (an exclusive gate did: 25 of 40 runs hung).
fsafe_add_test(libc.signal_entry.with TIMEOUT 60 ENV ${_auto_patient} COMMAND test_libc_locks signal_entry none)
# Forks from signal handlers, some from inside a gated pthread_kill, while
# other threads signal the forker.
fsafe_add_test(libc.kill_fork.with TIMEOUT 60 ENV ${_auto_patient} COMMAND test_libc_locks kill_fork none)
# sched_fork and tz_fork: the same with pthread_setschedparam/getschedparam,
# or localtime_r and mktime, on the forker.  Two threads whose handlers fork,
# each inside a different gated function of one glibc lock (one holds it,
# the other waits for it), backed off for each other without end: the parent
# hung past 30 s in 5 of 6 sched_fork runs and 4 of 4 tz_fork runs before
# only the higher thread id backed off (backoff_helps, src/auto/fork.c).
fsafe_add_test(libc.sched_fork.with TIMEOUT 60 ENV ${_auto} COMMAND test_libc_locks sched_fork none)
fsafe_add_test(libc.tz_fork.with TIMEOUT 60 ENV ${_auto} COMMAND test_libc_locks tz_fork none)
# A program linked before glibc 2.34 still gets ESRCH from pthread_kill of an
# exited, unjoined thread (the GLIBC_2.2.5 version), one linked since gets 0:
# the wrapper forwarded both to the new version before (the library's call
# gave 0 under auto mode, checked), now each to its own.
fsafe_add_test(libc.kill_versions.plain TIMEOUT 30 COMMAND test_kill_versions)
fsafe_add_test(libc.kill_versions.with TIMEOUT 30 ENV ${_auto} COMMAND test_kill_versions)
# A call held in flight: the fork waits FSAFE_AUTO_WAIT_MS and names it.
fsafe_add_test(libc.held TIMEOUT 60 ENV ${_auto} COMMAND test_libc_locks held ${CMAKE_CURRENT_BINARY_DIR})
fsafe_add_test(libc.held_entry TIMEOUT 60 ENV ${_auto} COMMAND test_libc_locks held_entry)
fsafe_add_test(libc.held_regex TIMEOUT 60 ENV ${_auto} COMMAND test_libc_locks held_regex)
# The dlopen wrapper keeps the caller's RUNPATH (a tail call), plain and with.
fsafe_add_test(libc.dlopen_runpath.with TIMEOUT 30 ENV ${_auto} COMMAND test_libc_locks runpath)
fsafe_add_test(libc.dlopen_runpath.without TIMEOUT 30 COMMAND test_libc_locks runpath)
# The enumeration of glibc's internal locks (issue 23): src/auto/glibc-locks.tsv is
# well formed, its gated functions are interposed by src/auto/libc.c, and the
# tests it names exist (ctest -N in this build tree).
fsafe_add_test(libc.enumeration TIMEOUT 30
               COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/libc/check_enumeration.sh
                       ${PROJECT_SOURCE_DIR}/src/auto/glibc-locks.tsv ${PROJECT_SOURCE_DIR}/src/auto/libc.c
                       ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR}/src/README.md)
fsafe_cases_check(test_libc_locks.c libc TABLE families SUBSET ${_libc_some})
