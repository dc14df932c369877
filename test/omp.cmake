# SPDX-License-Identifier: MIT
# OpenMP's thread pool in a child (issue 24; src/auto/omp.c): GNU libgomp,
# as GCC builds OpenMP programs.  omp.pool.with: under auto mode every child
# runs every kind of region with one thread and the parent's results;
# omp.pool.without: the same program without fsafe, where a child hangs;
# omp.fresh.*: the child of a thread that never started a region keeps its
# full teams (a fresh pool), with and without fsafe.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return() # libfsafe-auto.so cannot be preloaded into a sanitizer build
endif()
find_package(OpenMP COMPONENTS C)
if(NOT OpenMP_C_FOUND OR NOT CMAKE_C_COMPILER_ID STREQUAL "GNU")
  message(STATUS "fsafe: no GNU OpenMP (libgomp): the omp.* tests are not built")
  return()
endif()
add_executable(test_omp test_omp.c)
target_link_libraries(test_omp PRIVATE OpenMP::OpenMP_C Threads::Threads)
set(_omp_auto "LD_PRELOAD=$<TARGET_FILE:fsafe_auto>" OMP_NUM_THREADS=4)
fsafe_add_test(omp.pool.with TIMEOUT 120 ENV ${_omp_auto} COMMAND test_omp pool ok)
fsafe_add_test(omp.pool.without TIMEOUT 120 ENV OMP_NUM_THREADS=4 COMMAND test_omp pool hang)
fsafe_add_test(omp.fresh.with TIMEOUT 60 ENV ${_omp_auto} COMMAND test_omp fresh ok)
fsafe_add_test(omp.fresh.without TIMEOUT 60 ENV OMP_NUM_THREADS=4 COMMAND test_omp fresh ok)
