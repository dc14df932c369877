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
