# SPDX-License-Identifier: MIT
# Drop-in tests: fsafe-run, the FSAFE_* settings and diagnostics, on programs
# and libraries that know nothing of fsafe.  The scripts in dropin/ each take
# the build tree's fsafe-run and the directory of the test programs.

# A "legacy" library with an exported global mutex and a worker holding it.
add_library(legacy_test SHARED dropin/legacy.c)
target_link_libraries(legacy_test PRIVATE Threads::Threads)
set_target_properties(legacy_test PROPERTIES C_VISIBILITY_PRESET default)

# Programs that do not link fsafe (built with plain add_executable on purpose).
add_executable(test_dropin_retrofit test_dropin_retrofit.c)
target_include_directories(test_dropin_retrofit PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_dropin_retrofit PRIVATE legacy_test Threads::Threads)
foreach(p prog status)
  add_executable(test_dropin_${p} test_dropin_${p}.c)
  target_include_directories(test_dropin_${p} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(test_dropin_${p} PRIVATE Threads::Threads)
endforeach()
# Linked with fsafe: secure execution ignores LD_PRELOAD from the build tree.
fsafe_test_exe(test_dropin_secure SOURCES test_dropin_secure.c LIBS legacy_test)
# The FSAFE_LOCKS parser, through the static library's internal symbol.
add_executable(test_dropin_parse test_dropin_parse.c)
target_include_directories(test_dropin_parse PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(test_dropin_parse PRIVATE fsafe_static ${FSAFE_AO_TARGET})
fsafe_add_test(dropin.locks_parse TIMEOUT 30 COMMAND test_dropin_parse)

# The script tests preload libfsafe into binaries built without sanitizers
# (/bin/sh, python3, perl, the test programs); a sanitizer build of libfsafe
# cannot be preloaded there ("ASan runtime does not come first"), so sanitizer
# builds run only the parser test above.
if(NOT FSAFE_SANITIZE STREQUAL "")
  return()
endif()

set(_dropin_bin $<TARGET_FILE_DIR:test_dropin_prog>)
# fsafe_dropin_test(name TIMEOUT s SCRIPT file ARGS ...)
function(fsafe_dropin_test name)
  cmake_parse_arguments(A "" "TIMEOUT;SCRIPT" "ARGS" ${ARGN})
  fsafe_add_test(dropin.${name} TIMEOUT ${A_TIMEOUT}
                 COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/dropin/${A_SCRIPT}
                         ${FSAFE_RUN_SCRIPT} ${_dropin_bin} ${A_ARGS})
endfunction()

foreach(i sh python3 perl)
  fsafe_dropin_test(real.${i} TIMEOUT 60 SCRIPT real.sh ARGS ${i})
endforeach()
foreach(c help version unknown bad-value no-command not-found not-executable exit-status signal
          exec no-dashdash keep-preload options locks-syntax)
  fsafe_dropin_test(cli.${c} TIMEOUT 30 SCRIPT cli.sh ARGS ${c} ${PROJECT_VERSION})
endforeach()
foreach(c without no-locks with with-library env unchanged resolve-errors)
  fsafe_dropin_test(retrofit.${c} TIMEOUT 60 SCRIPT retrofit.sh ARGS ${c})
endforeach()
fsafe_dropin_test(warn_ms TIMEOUT 60 SCRIPT warn_ms.sh)
fsafe_dropin_test(stats TIMEOUT 60 SCRIPT stats.sh)
foreach(c _exit _Exit close2 exit no-auto ls)
  fsafe_dropin_test(stats_end.${c} TIMEOUT 30 SCRIPT stats_end.sh ARGS ${c})
endforeach()
fsafe_dropin_test(messages TIMEOUT 30 SCRIPT msgs.sh ARGS ${PROJECT_VERSION})
fsafe_dropin_test(unknown_setting TIMEOUT 60 SCRIPT unknown.sh)
fsafe_dropin_test(setuid TIMEOUT 30 SCRIPT setuid.sh)
fsafe_dropin_test(garbage TIMEOUT 60 SCRIPT garbage.sh)
fsafe_dropin_test(flush TIMEOUT 30 SCRIPT flush.sh)
fsafe_dropin_test(warn_threads TIMEOUT 30 SCRIPT threads.sh)
fsafe_dropin_test(verbose TIMEOUT 30 SCRIPT verbose.sh ARGS ${PROJECT_VERSION})
fsafe_dropin_test(secure TIMEOUT 30 SCRIPT secure.sh)
fsafe_dropin_test(docs TIMEOUT 30 SCRIPT docs.sh)
include(GNUInstallDirs)
fsafe_dropin_test(install_layout TIMEOUT 30 SCRIPT install.sh
                  ARGS ${FSAFE_RUN_INSTALL_SCRIPT} $<TARGET_FILE:fsafe_shared>
                       ${CMAKE_INSTALL_BINDIR} ${CMAKE_INSTALL_LIBDIR}
                       $<TARGET_SONAME_FILE_NAME:fsafe_shared>
                       $<TARGET_FILE:fsafe_auto> $<TARGET_SONAME_FILE_NAME:fsafe_auto>)
fsafe_dropin_test(symlink TIMEOUT 30 SCRIPT symlink.sh
                  ARGS ${FSAFE_RUN_INSTALL_SCRIPT} $<TARGET_FILE:fsafe_shared>
                       ${CMAKE_INSTALL_BINDIR} ${CMAKE_INSTALL_LIBDIR}
                       $<TARGET_SONAME_FILE_NAME:fsafe_shared>
                       $<TARGET_FILE:fsafe_auto> $<TARGET_SONAME_FILE_NAME:fsafe_auto>)
