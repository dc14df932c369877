# SPDX-License-Identifier: MIT
# Core tests (registry, ordered locking, release in parent and child).

# ---- core: every kind and mutex type --------------------------------------
fsafe_test_exe(test_kinds SOURCES test_kinds.c)
fsafe_test_exe(test_kinds_opt SOURCES test_kinds.c OPTIONAL)
set(FSAFE_KIND_VARIANTS normal errorcheck recursive adaptive robust robust-errorcheck pi
    pi-recursive pp pshared pshared-robust rwlock rwlock-writer rwlock-pshared spin
    spin-pshared ops)
set(FSAFE_KIND_HANG normal errorcheck recursive adaptive robust robust-errorcheck pi
    pi-recursive pp rwlock rwlock-writer spin ops)
if(NOT FSAFE_LIBC_GLIBC)
  # glibc's own kinds, and priority protection, which musl does not have
  # (test_kinds.c skips them there).
  list(REMOVE_ITEM FSAFE_KIND_VARIANTS adaptive rwlock-writer pp)
  list(REMOVE_ITEM FSAFE_KIND_HANG adaptive rwlock-writer pp)
endif()
foreach(v ${FSAFE_KIND_VARIANTS})
  fsafe_add_test(kinds.linked.${v} TIMEOUT 60 COMMAND test_kinds ${v} ok)
  fsafe_add_test(kinds.preload.${v} TIMEOUT 60 PRELOAD COMMAND test_kinds_opt ${v} ok)
endforeach()
foreach(v ${FSAFE_KIND_HANG})
  fsafe_add_test(kinds.without.${v} TIMEOUT 60 COMMAND test_kinds_opt ${v} hang)
endforeach()

# ---- core behaviours: one CTest entry per case ------------------------------
fsafe_test_exe(test_core SOURCES test_core.c LIBS util)
fsafe_cases(_core_cases test_core.c)
foreach(c ${_core_cases})
  fsafe_add_test(core.${c} TIMEOUT 120 COMMAND test_core ${c})
endforeach()

# ---- a process that has never had a second thread ----------------------------
fsafe_test_exe(test_onethread SOURCES test_onethread.c)
fsafe_cases(_onethread_cases test_onethread.c)
foreach(c ${_onethread_cases})
  fsafe_add_test(onethread.${c} TIMEOUT 60 COMMAND test_onethread ${c})
endforeach()

# ---- lock names kept once per distinct name -----------------------------------
fsafe_test_exe(test_names SOURCES test_names.c)
fsafe_add_test(core.names TIMEOUT 120 COMMAND test_names)

# ---- a program that never calls fsafe, preloaded: nothing changes -----------
add_executable(test_plain test_plain.c)
target_link_libraries(test_plain PRIVATE Threads::Threads)
fsafe_add_test(preload.plain_program_unchanged TIMEOUT 60
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/compare_preload.sh ${FSAFE_LIB} $<TARGET_FILE:test_plain>)

# ---- a build without FSAFE_LOCKS (not glibc, or no libelf) ---------------------
# test_plain forks ten times: the message comes once, at start-up.
if(NOT FSAFE_WITH_LOCKS)
  fsafe_add_test(core.locks_unsupported TIMEOUT 60
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/locks_unsupported.sh ${FSAFE_LIB} $<TARGET_FILE:test_plain>)
endif()

# ---- static link: fsafe_fork() -------------------------------------------------
add_executable(test_static test_static.c)
target_include_directories(test_static PRIVATE ${PROJECT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_static PRIVATE fsafe_static Threads::Threads)
fsafe_add_test(static.fsafe_fork TIMEOUT 60 COMMAND test_static)

# ---- LD_PRELOAD: fsafe is initialised first (-z initfirst) --------------------
add_library(test_initorder_lib SHARED test_initorder_lib.c)
target_include_directories(test_initorder_lib PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_initorder_lib PRIVATE Threads::Threads)
set_target_properties(test_initorder_lib PROPERTIES C_VISIBILITY_PRESET default)
add_executable(test_initorder test_initorder.c)
target_include_directories(test_initorder PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_initorder PRIVATE test_initorder_lib Threads::Threads)
fsafe_add_test(preload.init_order TIMEOUT 60 PRELOAD COMMAND test_initorder)
