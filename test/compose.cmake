# SPDX-License-Identifier: MIT
# fsafe composes with a program's own fork protocol (issue 22): the test
# program's cases (test/test_compose.c), and real programs that already handle
# fork themselves (test/compose/).  Each runs plain, under fsafe-run --no-auto
# and under fsafe-run (auto mode): a difference from plain is a bug.
fsafe_test_exe(test_compose SOURCES test_compose.c OPTIONAL LIBS ${CMAKE_DL_LIBS})
set(_compose_run ${PROJECT_BINARY_DIR}/fsafe-run)
foreach(c atfork_cond_reinit atfork_cond_unlock)
  fsafe_add_test(compose.${c}.plain TIMEOUT 60 COMMAND test_compose ${c} ok)
  fsafe_add_test(compose.${c}.noauto TIMEOUT 60 COMMAND ${_compose_run} --no-auto $<TARGET_FILE:test_compose> ${c} ok)
  fsafe_add_test(compose.${c}.auto TIMEOUT 60 COMMAND ${_compose_run} $<TARGET_FILE:test_compose> ${c} ok)
endforeach()
fsafe_add_test(compose.flag_release.hang TIMEOUT 60 COMMAND test_compose flag_release hang)
fsafe_add_test(compose.flag_release.auto TIMEOUT 60
               COMMAND ${_compose_run} --auto-wait-ms=5000 $<TARGET_FILE:test_compose> flag_release ok)
fsafe_add_test(compose.flag_signal.hang TIMEOUT 60 COMMAND test_compose flag_signal hang)
fsafe_add_test(compose.flag_signal.auto TIMEOUT 60
               COMMAND ${_compose_run} --auto-wait-ms=5000 $<TARGET_FILE:test_compose> flag_signal ok)
fsafe_add_test(compose.signal_then_pipe.plain TIMEOUT 60 COMMAND test_compose signal_then_pipe ok)
fsafe_add_test(compose.signal_then_pipe.auto TIMEOUT 60
               COMMAND ${_compose_run} --auto-wait-ms=2000 $<TARGET_FILE:test_compose> signal_then_pipe ok)
fsafe_add_test(compose.report_waiters.auto TIMEOUT 60
               COMMAND ${_compose_run} -v $<TARGET_FILE:test_compose> report_waiters ok)
# It reads the static x_lock's name in the report, which under LeakSanitizer
# fsafe-run's report cannot give (the symbol reader is not loaded late
# there: src/retrofit/elf_reader.c); the plain and TSan builds run it.
if(FSAFE_SANITIZE STREQUAL "address")
  set_tests_properties(compose.report_waiters.auto PROPERTIES LABELS no-sanitize)
endif()
# TSan keeps its own object behind each pthread_cond_t, which the child's
# reset of a waited-on condition variable cannot know (as auto.cond_wait).
set_tests_properties(compose.atfork_cond_reinit.auto compose.atfork_cond_unlock.auto
                     compose.flag_release.auto compose.flag_release.hang
                     compose.flag_signal.auto compose.flag_signal.hang
                     PROPERTIES LABELS no-tsan)

# Real programs that handle fork themselves.  Their packages are in
# test/packages.txt; a missing one fails the test, it is never skipped.
find_library(FSAFE_JEMALLOC NAMES libjemalloc.so.2 jemalloc)
if(FSAFE_JEMALLOC)
  set(_je_env LD_PRELOAD=${FSAFE_JEMALLOC} MALLOC_CONF=background_thread:true)
  fsafe_add_test(compose.jemalloc_bg.plain TIMEOUT 60 COMMAND test_compose jemalloc_bg ok ENV ${_je_env})
  fsafe_add_test(compose.jemalloc_bg.noauto TIMEOUT 60 COMMAND ${_compose_run} --no-auto $<TARGET_FILE:test_compose> jemalloc_bg ok ENV ${_je_env})
  fsafe_add_test(compose.jemalloc_bg.auto TIMEOUT 60 COMMAND ${_compose_run} $<TARGET_FILE:test_compose> jemalloc_bg ok ENV ${_je_env})
else()
  fsafe_add_test(compose.jemalloc_bg.missing COMMAND sh -c "echo 'libjemalloc.so.2 not found: install libjemalloc2'; exit 1")
endif()
foreach(m plain noauto auto)
  fsafe_add_test(compose.redis.${m} TIMEOUT 90
                 COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/compose/redis.sh ${m} ${_compose_run})
endforeach()
# jemalloc replaces the sanitizers' allocator; redis-server is not built with them.
set_tests_properties(compose.redis.plain compose.redis.noauto compose.redis.auto PROPERTIES LABELS no-sanitize RUN_SERIAL FALSE)
if(FSAFE_JEMALLOC)
  set_tests_properties(compose.jemalloc_bg.plain compose.jemalloc_bg.noauto compose.jemalloc_bg.auto
                       PROPERTIES LABELS no-sanitize)
endif()
# -s counts the hand-overs, and the wait is part of the fork's time.
fsafe_add_test(compose.atfork_cond_reinit.stats TIMEOUT 60
               COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/compose/stats.sh ${_compose_run} $<TARGET_FILE:test_compose>)
set_tests_properties(compose.atfork_cond_reinit.stats PROPERTIES LABELS no-tsan)
# A registered lock that a prepare handler takes too: auto mode hands the
# walk's hold over (with --no-auto nothing sees the handler's call).
fsafe_add_test(compose.atfork_registered.auto TIMEOUT 60
               COMMAND ${_compose_run} $<TARGET_FILE:test_compose> atfork_registered ok)

# Every case of test_compose.c has a test.
fsafe_cases_check(test_compose.c compose)
