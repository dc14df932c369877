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
# The same program linked with libfsafe.so (which it never calls by name:
# --no-as-needed), run under fsafe-run: two copies of the core are mapped,
# libfsafe.so's and libfsafe-auto.so's, and exactly one may act.
add_executable(test_dropin_linked test_dropin_retrofit.c)
target_include_directories(test_dropin_linked PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_dropin_linked PRIVATE legacy_test -Wl,--no-as-needed fsafe_shared
                                                 -Wl,--as-needed Threads::Threads)
foreach(p prog status)
  add_executable(test_dropin_${p} test_dropin_${p}.c)
  target_include_directories(test_dropin_${p} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(test_dropin_${p} PRIVATE Threads::Threads)
endforeach()
# Prints what a program finds at start-up; linked with libm and the legacy
# library so that FSAFE_LOCKS entries naming them resolve.
add_executable(test_startup_state test_startup_state.c)
target_include_directories(test_startup_state PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_startup_state PRIVATE legacy_test m)
target_link_options(test_startup_state PRIVATE -Wl,--no-as-needed)
# Linked with fsafe: secure execution ignores LD_PRELOAD from the build tree.
# Linked with the symbol reader too (nothing calls it by name: --no-as-needed),
# so that FSAFE_LOCKS works in the control run, and the secure run shows it is
# ignored for AT_SECURE, not for want of the reader.
fsafe_test_exe(test_dropin_secure SOURCES test_dropin_secure.c
               LIBS legacy_test -Wl,--no-as-needed fsafe_elf -Wl,--as-needed)
# The FSAFE_LOCKS parser, through the static library's internal symbol.
add_executable(test_dropin_parse test_dropin_parse.c)
target_include_directories(test_dropin_parse PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR}/src/core ${PROJECT_SOURCE_DIR}/src/common)
target_link_libraries(test_dropin_parse PRIVATE fsafe_static ${FSAFE_AO_TARGET})
fsafe_add_test(dropin.locks_parse TIMEOUT 30 COMMAND test_dropin_parse)
# fsafe__addr_describe, likewise; without -rdynamic (CMake's default), so
# that only .symtab names the program's globals.
add_executable(test_dropin_describe test_dropin_describe.c)
target_include_directories(test_dropin_describe PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR}/src/core ${PROJECT_SOURCE_DIR}/src/common)
target_link_libraries(test_dropin_describe PRIVATE fsafe_static legacy_test ${FSAFE_AO_TARGET})
fsafe_add_test(dropin.describe TIMEOUT 30 COMMAND test_dropin_describe)
# Locks only .symtab names (a program's globals and statics, a library's statics).
# and a lock that is not a pthread lock (a futex word, laid out as Rust's).
add_library(fsafe_futexlock SHARED dropin/futexlock.c)
target_link_libraries(fsafe_futexlock PRIVATE Threads::Threads)
add_executable(test_dropin_symtab test_dropin_symtab.c)
target_include_directories(test_dropin_symtab PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_dropin_symtab PRIVATE legacy_test fsafe_futexlock Threads::Threads)
# Libraries loaded later: a plugin loaded and unloaded, a Python extension.
add_library(fsafe_plugin_test SHARED dropin/plugin.c)
add_library(fsafe_chain_test SHARED dropin/chain.c)
target_link_libraries(fsafe_chain_test PRIVATE ${CMAKE_DL_LIBS})
add_executable(test_dropin_dlclose test_dropin_dlclose.c)
target_include_directories(test_dropin_dlclose PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_dropin_dlclose PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
# Built for Debian's /usr/bin/python3 (FSAFE_PYTHON, examples/python), not a
# python3 earlier on PATH.
set(_py ${FSAFE_PYTHON})
if(NOT _py)
  set(_py /usr/bin/python3)
endif()
execute_process(COMMAND ${_py} -c "import sysconfig; print(sysconfig.get_paths()['include'] + ';' + sysconfig.get_config_var('EXT_SUFFIX'), end='')"
                OUTPUT_VARIABLE _pyc RESULT_VARIABLE _pyrc)
list(LENGTH _pyc _pyn)
if(_pyrc EQUAL 0 AND _pyn EQUAL 2 AND NOT FSAFE_SANITIZE)
  list(GET _pyc 0 _pyinc)
  list(GET _pyc 1 _pysuffix)
endif()
if(_pyinc AND EXISTS ${_pyinc}/Python.h)
  add_library(fsafe_lockext MODULE dropin/pyext/lockext.c)
  set_target_properties(fsafe_lockext PROPERTIES PREFIX "" SUFFIX "${_pysuffix}"
                        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/pyext)
  target_include_directories(fsafe_lockext PRIVATE ${_pyinc})
  target_link_libraries(fsafe_lockext PRIVATE Threads::Threads)
  target_compile_options(fsafe_lockext PRIVATE -Wno-unused-parameter -Wno-missing-field-initializers)
endif()
# FSAFE_LOCKS's "is this a lock of that kind?" check, likewise.
add_executable(test_dropin_lockcheck test_dropin_lockcheck.c)
target_include_directories(test_dropin_lockcheck PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                           ${PROJECT_SOURCE_DIR}/src/core ${PROJECT_SOURCE_DIR}/src/common)
target_link_libraries(test_dropin_lockcheck PRIVATE fsafe_static ${FSAFE_AO_TARGET})
fsafe_add_test(dropin.locks_lockcheck TIMEOUT 30 COMMAND test_dropin_lockcheck)
# It locks mutexes it then inspects byte by byte and re-creates in place,
# which ThreadSanitizer reports as use of an invalid mutex.
set_tests_properties(dropin.locks_lockcheck PROPERTIES LABELS no-tsan)

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

foreach(i sh python3 perl ruby)
  fsafe_dropin_test(real.${i} TIMEOUT 60 SCRIPT real.sh ARGS ${i})
endforeach()
foreach(c help version unknown bad-value no-command not-found not-executable exit-status signal
          exec no-dashdash keep-preload options locks-syntax)
  fsafe_dropin_test(cli.${c} TIMEOUT 30 SCRIPT cli.sh ARGS ${c} ${PROJECT_VERSION})
endforeach()
foreach(c without no-locks with with-library env no-reader needed unchanged resolve-errors offset
          linked-run linked-preload linked-reversed)
  fsafe_dropin_test(retrofit.${c} TIMEOUT 60 SCRIPT retrofit.sh ARGS ${c})
endforeach()
# Auto mode's report names a static function: the report loads the symbol
# reader itself; without it, exported names.
foreach(c lazy fallback)
  fsafe_dropin_test(report.${c} TIMEOUT 60 SCRIPT report.sh ARGS ${c})
endforeach()
foreach(c without global static libstatic ambiguous stripped futex)
  fsafe_dropin_test(symtab.${c} TIMEOUT 60 SCRIPT symtab.sh ARGS ${c})
endforeach()
fsafe_dropin_test(later.dlclose TIMEOUT 60 SCRIPT later.sh
                  ARGS dlclose $<TARGET_FILE:fsafe_plugin_test>)
fsafe_dropin_test(later.no-reader TIMEOUT 60 SCRIPT later.sh
                  ARGS no-reader $<TARGET_FILE:fsafe_plugin_test>)
fsafe_dropin_test(later.chained TIMEOUT 60 SCRIPT later.sh
                  ARGS chained $<TARGET_FILE:fsafe_plugin_test> $<TARGET_FILE:fsafe_chain_test>)
if(TARGET fsafe_lockext)
  foreach(c without bare library)
    fsafe_dropin_test(later.python.${c} TIMEOUT 60 SCRIPT later.sh
                      ARGS python-${c} $<TARGET_FILE:fsafe_lockext> ${_py})
  endforeach()
else()
  if(NOT FSAFE_SANITIZE)
    add_test(NAME dropin.later.python
             COMMAND sh -c "echo 'FAIL: no Python extension: install python3-dev' >&2; exit 1")
  endif()
endif()
foreach(c settings options python3 ruby)
  fsafe_dropin_test(startup.${c} TIMEOUT 120 SCRIPT startup.sh ARGS ${c})
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
if(NOT FSAFE_SANITIZE)
  # README's walkthrough program (examples/hang, not instrumented).
  fsafe_dropin_test(example_hang TIMEOUT 60 SCRIPT example_hang.sh ARGS $<TARGET_FILE:hang>)
endif()
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
