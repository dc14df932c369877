# SPDX-License-Identifier: MIT
# Throwaway threads (FSAFE_CHURN, fsafe_set_churn).  On Linux the seed's child
# works with or without fsafe, so the "without" run is a baseline, not a hang.

fsafe_test_exe(test_churn SOURCES test_churn.c)
fsafe_test_exe(test_churn_seed SOURCES test_churn_seed.c)
fsafe_test_exe(test_churn_seed_opt SOURCES test_churn_seed.c OPTIONAL)

# ---- the seed's reproducer, 200 forks from the third thread per test -----------
fsafe_add_test(churn.seed.off TIMEOUT 120 ENV FSAFE_CHURN=0 COMMAND test_churn_seed 0)
fsafe_add_test(churn.seed.env TIMEOUT 120 ENV FSAFE_CHURN=4 COMMAND test_churn_seed 4)
# fsafe_set_churn() overrides the environment.
fsafe_add_test(churn.seed.api TIMEOUT 120 ENV FSAFE_CHURN=off COMMAND test_churn_seed 3 api)
fsafe_add_test(churn.seed.preload TIMEOUT 120 PRELOAD ENV FSAFE_CHURN=4
               COMMAND test_churn_seed_opt 4)
fsafe_add_test(churn.seed.without TIMEOUT 120 COMMAND test_churn_seed_opt 0)

# ---- forced count: exact counters, tasks back to before, no stack leak ----------
fsafe_add_test(churn.count.env TIMEOUT 120 ENV FSAFE_CHURN=5 COMMAND test_churn count 5 100 env)
fsafe_add_test(churn.count.api TIMEOUT 120 COMMAND test_churn count 3 100 api)
fsafe_add_test(churn.count.one TIMEOUT 120 ENV FSAFE_CHURN=1 COMMAND test_churn count 1 200 env)
fsafe_add_test(churn.count.max TIMEOUT 120 ENV FSAFE_CHURN=1024 COMMAND test_churn count 1024 5 env)

# ---- failures and settings ------------------------------------------------------
fsafe_add_test(churn.fail TIMEOUT 120 ENV FSAFE_CHURN=3 COMMAND test_churn fail)
fsafe_add_test(churn.badenv TIMEOUT 60 ENV FSAFE_CHURN=lots COMMAND test_churn badenv)
fsafe_add_test(churn.auto.unset TIMEOUT 60 COMMAND test_churn auto env)
fsafe_add_test(churn.auto.env TIMEOUT 60 ENV FSAFE_CHURN=auto COMMAND test_churn auto env)
fsafe_add_test(churn.auto.api TIMEOUT 60 COMMAND test_churn auto api)
fsafe_add_test(churn.off.env TIMEOUT 60 ENV FSAFE_CHURN=off COMMAND test_churn auto off)

# ---- no trace: what the program observes is the same as without churn -----------
fsafe_test_exe(test_churn_trace SOURCES test_churn_trace.c)
foreach(a stack mask errno affinity sched)
  fsafe_add_test(churn.trace.${a} TIMEOUT 60 COMMAND test_churn_trace ${a} 2)
endforeach()
fsafe_add_test(churn.trace.stack.many TIMEOUT 60 COMMAND test_churn_trace stack 64)
# ThreadSanitizer gives every thread at least ~900 KiB of stack: the sizes
# these compare are its, not the program's.
set_tests_properties(churn.trace.stack churn.trace.stack.many PROPERTIES LABELS no-tsan)
# 256 KiB of static TLS does not fit a 64 KiB throwaway stack: churn grows it.
fsafe_test_exe(test_churn_trace_tls SOURCES test_churn_trace.c)
target_compile_definitions(test_churn_trace_tls PRIVATE BIG_TLS)
fsafe_add_test(churn.trace.tls TIMEOUT 60 COMMAND test_churn_trace_tls errno 4)

# ---- the cost figure in the README (a program, not a test) -----------------------
#   build/test/churn_cost [rounds]
fsafe_test_exe(churn_cost SOURCES churn_cost.c)
