# SPDX-License-Identifier: MIT
# Reliability: every way to fork, misuse, the stress run, the model check and
# the fuzzers.  Labels: "forkways", "misuse", "stress", "model", "fuzz"; tests
# that ThreadSanitizer cannot run carry "no-tsan" (see README, reliability).

# ---- every way to fork (README table) ------------------------------------------
fsafe_test_exe(test_forkways SOURCES test_forkways.c)
fsafe_test_exe(test_forkways_opt SOURCES test_forkways.c OPTIONAL)
fsafe_cases(_forkways_cases test_forkways.c)
foreach(c ${_forkways_cases})
  fsafe_add_test(forkways.${c} TIMEOUT 60 COMMAND test_forkways ${c})
  set_tests_properties(forkways.${c} PROPERTIES LABELS forkways)
endforeach()
fsafe_add_test(forkways.without.atfork_fork TIMEOUT 60 COMMAND test_forkways_opt atfork_fork)
set_tests_properties(forkways.without.atfork_fork PROPERTIES LABELS forkways)

# ---- misuse (README table) ----------------------------------------------------------
fsafe_test_exe(test_misuse SOURCES test_misuse.c)
fsafe_cases(_misuse_cases test_misuse.c)
# musl records no owner in a NORMAL mutex or a write-held rwlock: forking
# while holding one is the same self-deadlock, named (README, musl); on glibc
# fsafe sees the owner, so these two are musl's only.
if(FSAFE_LIBC_GLIBC)
  list(REMOVE_ITEM _misuse_cases self_held_normal self_held_wrlock)
endif()
foreach(c ${_misuse_cases})
  fsafe_add_test(misuse.${c} TIMEOUT 60 COMMAND test_misuse ${c})
  set_tests_properties(misuse.${c} PROPERTIES LABELS misuse)
endforeach()

# ---- the stress run -------------------------------------------------------------------
# FSAFE_STRESS_SECONDS: 60 in CI; test/run-tests.sh --long runs 600.  Under the
# sanitizers run-tests.sh passes a shorter time (they are 2-10x slower).
fsafe_test_exe(test_stress SOURCES test_stress.c)
if(FSAFE_SANITIZE)
  target_compile_definitions(test_stress PRIVATE FSAFE_STRESS_SANITIZED)
endif()
math(EXPR _stress_timeout "${FSAFE_STRESS_SECONDS} * 2 + 120")
fsafe_add_test(stress TIMEOUT ${_stress_timeout} COMMAND test_stress ${FSAFE_STRESS_SECONDS})
set_tests_properties(stress PROPERTIES LABELS stress RUN_SERIAL TRUE)
# The stress test can fail: a child stuck on a lock fsafe does not know is named.
fsafe_add_test(stress.selftest TIMEOUT 60 COMMAND test_stress 3 selftest)
set_tests_properties(stress.selftest PROPERTIES LABELS stress
  PASS_REGULAR_EXPRESSION "child status 3 \\(hung\\): stuck on lock 'selftest-unregistered'")

# ---- the layers (src/README.md's diagram against the objects' symbols) ----------------------
# Checked on the full build (auto mode and FSAFE_LOCKS in it): the diagram
# names every file of both libraries.
if(FSAFE_AUTO AND FSAFE_WITH_LOCKS)
fsafe_add_test(layers TIMEOUT 60
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/layers.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
# The check can fail: with core/api.c moved to the bottom of the diagram.
fsafe_add_test(layers.inverted TIMEOUT 60
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/layers.sh --inverted ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
# Once, in the plain build: the sanitizer builds compile the same files.
set_tests_properties(layers layers.inverted PROPERTIES LABELS "layers;no-sanitize")
endif()

# ---- the model check (doc/model/registry.pml) ------------------------------------------------
# About 75 million states, 3 minutes and (COLLAPSE) a few GB at most, then
# the seeded bugs (seconds).  FSAFE_MODEL_LONG adds a second fork (not
# measured for the snapshot protocol: expect several times that).
option(FSAFE_MODEL_LONG "Model-check with two forks (1 min, 2.2 GB)" OFF)
set(_model_opts)
if(FSAFE_MODEL_LONG)
  set(_model_opts -DFORKS=2)
endif()
fsafe_add_test(model.registry TIMEOUT 900
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/model_check.sh ${PROJECT_SOURCE_DIR}/doc/model/registry.pml
          ${CMAKE_CURRENT_BINARY_DIR}/model ${_model_opts})
# One core for a few minutes: it runs beside the other tests (not serially).
set_tests_properties(model.registry PROPERTIES LABELS "model;no-sanitize")

# ---- fuzzers (test/fuzz) ----------------------------------------------------------------
# Every build replays the checked-in corpus (seeds plus every crash ever found)
# through each target: "fuzz.<target>.corpus".  With -DFSAFE_FUZZ=ON (clang;
# test/run-tests.sh builds build-fuzz) libFuzzer also explores for
# FSAFE_FUZZ_SECONDS: "fuzz.<target>".  A crash it finds is written to
# build-fuzz/test/fuzz-crash-<target>-*; add it to test/fuzz/corpus/<target>/.
set(FSAFE_FUZZ_SECONDS 30 CACHE STRING "How long each libFuzzer target runs in the suite")
set(_fuzz_targets config)
# "fsafe_fuzz_all" builds just the fuzzers: with clang, libfsafe.so cannot link
# under ASan (clang puts the ASan runtime only into executables).
add_custom_target(fsafe_fuzz_all)
if(FSAFE_WITH_LOCKS) # src/retrofit/locks_env.c is in this build
  list(APPEND _fuzz_targets locks)
endif()
foreach(t ${_fuzz_targets})
  set(_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${t})
  add_executable(fuzz_${t}_replay fuzz/fuzz_${t}.c fuzz/replay.c)
  target_include_directories(fuzz_${t}_replay PRIVATE ${PROJECT_SOURCE_DIR}/src/core ${PROJECT_SOURCE_DIR}/src/common)
  target_link_libraries(fuzz_${t}_replay PRIVATE fsafe_static ${FSAFE_AO_TARGET})
  add_dependencies(fsafe_fuzz_all fuzz_${t}_replay)
  fsafe_add_test(fuzz.${t}.corpus TIMEOUT 60 COMMAND fuzz_${t}_replay ${_corpus})
  set_tests_properties(fuzz.${t}.corpus PROPERTIES LABELS fuzz)
  if(FSAFE_FUZZ)
    add_executable(fuzz_${t} fuzz/fuzz_${t}.c)
    target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/src/core ${PROJECT_SOURCE_DIR}/src/common)
    target_link_libraries(fuzz_${t} PRIVATE fsafe_static ${FSAFE_AO_TARGET})
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fsafe_fuzz_all fuzz_${t})
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz-${t})
    math(EXPR _fuzz_timeout "${FSAFE_FUZZ_SECONDS} + 60")
    fsafe_add_test(fuzz.${t} TIMEOUT ${_fuzz_timeout}
      COMMAND fuzz_${t} -max_total_time=${FSAFE_FUZZ_SECONDS} -print_final_stats=1
              -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-crash-${t}-
              ${CMAKE_CURRENT_BINARY_DIR}/fuzz-${t} ${_corpus})
    set_tests_properties(fuzz.${t} PROPERTIES LABELS fuzz)
  endif()
endforeach()

# ---- what ThreadSanitizer cannot run (label "no-tsan"; README, reliability) --------------
# - rwlocks across fork: TSan's shadow state still has the rwlock write-held in
#   the child after fsafe re-initialised it ("read lock of a write locked mutex").
# - priority-protect mutexes: TSan reports them as invalid mutexes.
# - a child of a multithreaded fork that makes threads (nested_child): TSan
#   does not support threads after a multithreaded fork.
# - vfork: TSan turns it into fork and the case hangs.
# - stress.selftest: TSan defers the child's SIGALRM while it blocks in an
#   intercepted pthread_mutex_lock, so the stuck child cannot report.
# The "model" test runs only in the plain build (label "no-sanitize").
foreach(v rwlock rwlock-writer rwlock-pshared pp)
  foreach(how linked preload)
    if(TEST kinds.${how}.${v})
      set_tests_properties(kinds.${how}.${v} PROPERTIES LABELS no-tsan)
    endif()
  endforeach()
endforeach()
if(TEST kinds.without.pp) # not on musl (test/core.cmake)
  set_tests_properties(kinds.without.pp PROPERTIES LABELS no-tsan)
endif()
set_tests_properties(forkways.nested_child forkways.vfork PROPERTIES LABELS "forkways;no-tsan")
set_tests_properties(stress.selftest PROPERTIES LABELS "stress;no-tsan")

# ---- ranks that contradict the program's nesting (issue 12, item 5) -----------------------
# Linked statically: the no_backoff twin turns the back-off off through an
# internal setter and shows the parent's deadlock (killed by its own timeout).
add_executable(test_order test_order.c)
target_include_directories(test_order PRIVATE ${PROJECT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_order PRIVATE fsafe_static Threads::Threads)
foreach(c backoff no_backoff learned)
  # TSan would report the deliberate lock-order inversion itself.
  fsafe_add_test(order.${c} TIMEOUT 150 ENV TSAN_OPTIONS=detect_deadlocks=0 COMMAND test_order ${c})
  set_tests_properties(order.${c} PROPERTIES LABELS reliability)
endforeach()
fsafe_cases_check(test_order.c order)
