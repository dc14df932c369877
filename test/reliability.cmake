# SPDX-License-Identifier: MIT
# Reliability: every way to fork, misuse, the stress run, the model check and
# the fuzzers.  Labels: "forkways", "misuse", "stress", "model", "fuzz"; tests
# that ThreadSanitizer cannot run carry "no-tsan" (see README, reliability).

# ---- every way to fork (README table) ------------------------------------------
fsafe_test_exe(test_forkways SOURCES test_forkways.c)
fsafe_test_exe(test_forkways_opt SOURCES test_forkways.c OPTIONAL)
foreach(c signal_fork signal_in_fork signal_in_register atfork_fork atfork_register_unregister
          nested_child vfork posix_spawn system popen _Fork clone)
  fsafe_add_test(forkways.${c} TIMEOUT 60 COMMAND test_forkways ${c})
  set_tests_properties(forkways.${c} PROPERTIES LABELS forkways)
endforeach()
fsafe_add_test(forkways.without.atfork_fork TIMEOUT 60 COMMAND test_forkways_opt atfork_fork)
set_tests_properties(forkways.without.atfork_fork PROPERTIES LABELS forkways)

# ---- misuse (README table) ----------------------------------------------------------
fsafe_test_exe(test_misuse SOURCES test_misuse.c)
foreach(c bogus_misaligned bogus_unmapped ops_opaque_key destroyed two_kinds unregister_race
          self_held_spin self_held_rdlock self_held_ops)
  fsafe_add_test(misuse.${c} TIMEOUT 60 COMMAND test_misuse ${c})
  set_tests_properties(misuse.${c} PROPERTIES LABELS misuse)
endforeach()

# ---- the stress run -------------------------------------------------------------------
# FSAFE_STRESS_SECONDS: 60 in CI; test/run-tests.sh --long runs 600.  Under the
# sanitizers run-tests.sh passes a shorter time (they are 2-10x slower).
fsafe_test_exe(test_stress SOURCES test_stress.c)
math(EXPR _stress_timeout "${FSAFE_STRESS_SECONDS} * 2 + 120")
fsafe_add_test(stress TIMEOUT ${_stress_timeout} COMMAND test_stress ${FSAFE_STRESS_SECONDS})
set_tests_properties(stress PROPERTIES LABELS stress RUN_SERIAL TRUE)
# The stress test can fail: a child stuck on a lock fsafe does not know is named.
fsafe_add_test(stress.selftest TIMEOUT 60 COMMAND test_stress 3 selftest)
set_tests_properties(stress.selftest PROPERTIES LABELS stress
  PASS_REGULAR_EXPRESSION "child status 3 \\(hung\\): stuck on lock 'selftest-unregistered'")

# ---- the model check (src/registry.pml) ------------------------------------------------
# About 12.5 million states, 15 s and 650 MB; FSAFE_MODEL_LONG adds a second fork.
option(FSAFE_MODEL_LONG "Model-check with two forks (hours, GBs)" OFF)
set(_model_opts)
if(FSAFE_MODEL_LONG)
  set(_model_opts -DFORKS=2)
endif()
fsafe_add_test(model.registry TIMEOUT 300
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/model_check.sh ${PROJECT_SOURCE_DIR}/src/registry.pml
          ${CMAKE_CURRENT_BINARY_DIR}/model ${_model_opts})
set_tests_properties(model.registry PROPERTIES LABELS "model;no-sanitize" RUN_SERIAL TRUE)
