# SPDX-License-Identifier: MIT
# Semaphores used as locks under auto mode (src/auto/sem.c): the C rules, and
# CPython 3.11's interpreter-level locks (threading.Lock, RLock, the lock of a
# buffered file) with Debian's python3.  Every "without" test shows the child
# stuck when fsafe is absent; the others run under the build tree's fsafe-run.
# A sanitizer build of libfsafe-auto cannot be preloaded into these programs.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return()
endif()

# Built without fsafe: it gets fsafe only from fsafe-run.
add_executable(test_sem test_sem.c)
target_include_directories(test_sem PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_sem PRIVATE Threads::Threads)

fsafe_cases(_sem_cases test_sem.c)
foreach(c ${_sem_cases})
  if(c MATCHES "_without$")
    # Run plainly: the child stuck without fsafe.
    fsafe_add_test(sem.c.${c} TIMEOUT 60 COMMAND test_sem ${c})
  else()
    fsafe_add_test(sem.c.${c} TIMEOUT 60 COMMAND ${FSAFE_RUN_SCRIPT} $<TARGET_FILE:test_sem> ${c})
  endif()
endforeach()

if(NOT FSAFE_PYTHON)
  set(FSAFE_PYTHON /usr/bin/python3)
endif()
set(PYT ${CMAKE_CURRENT_SOURCE_DIR}/python)
set(NOERR ${CMAKE_CURRENT_SOURCE_DIR}/interp/no-stderr.sh)

# A lock another thread holds at os.fork(): the child can take it.
foreach(w lock rlock buffered)
  fsafe_add_test(sem.python.${w} TIMEOUT 120
    COMMAND ${NOERR} ${FSAFE_RUN_SCRIPT} ${FSAFE_PYTHON} ${PYT}/held_lock.py --what ${w} --expect ok)
  fsafe_add_test(sem.python.${w}.without TIMEOUT 120
    COMMAND ${FSAFE_PYTHON} ${PYT}/held_lock.py --what ${w} --expect hang --forks 3)
endforeach()

# CPython 3.13.1+: a PyMutex held at the fork is out of reach, and the
# child's watch names it (skipped, exit 77, on an older interpreter).
fsafe_add_test(sem.python.pymutex_watch TIMEOUT 60 ENV FSAFE_CHILD_WATCH_MS=500
  COMMAND ${NOERR} ${FSAFE_RUN_SCRIPT} ${FSAFE_PYTHON} ${PYT}/pymutex_watch.py --expect line)
fsafe_add_test(sem.python.pymutex_watch.without TIMEOUT 60 ENV FSAFE_CHILD_WATCH_MS=500
  COMMAND ${FSAFE_PYTHON} ${PYT}/pymutex_watch.py --expect silent)

# issue 15's program: multiprocessing (fork) while a thread logs to a file.
# The "getaddrinfo" pair adds a thread resolving localhost: the child then
# also needs glibc's resolver locks (libc gates, src/auto/libc.c).
fsafe_add_test(sem.python.mp_logging TIMEOUT 300
  COMMAND ${NOERR} ${FSAFE_RUN_SCRIPT} ${FSAFE_PYTHON} ${PYT}/mp_logging.py --expect ok --workers 50)
fsafe_add_test(sem.python.mp_logging.without TIMEOUT 300
  COMMAND ${FSAFE_PYTHON} ${PYT}/mp_logging.py --expect hang --workers 20 --timeout 2)
fsafe_add_test(sem.python.mp_logging_getaddrinfo TIMEOUT 300
  COMMAND ${NOERR} ${FSAFE_RUN_SCRIPT} ${FSAFE_PYTHON} ${PYT}/mp_logging.py --expect ok --workers 50
          --getaddrinfo)
fsafe_add_test(sem.python.mp_logging_getaddrinfo.without TIMEOUT 300
  COMMAND ${FSAFE_PYTHON} ${PYT}/mp_logging.py --expect hang --workers 20 --timeout 2 --getaddrinfo)
