# SPDX-License-Identifier: MIT
# Interpreters and packaging: the optional-linking library, Ruby and Python
# with real interpreters, and out-of-tree consumers of an installed fsafe.
# Each "without" test shows the hang that the others show fsafe removing.
set(IT ${CMAKE_CURRENT_SOURCE_DIR}/interp)

# A test that always fails and says why, for a demonstration that could not be
# built: never skipped silently.
function(fsafe_interp_missing name why)
  add_test(NAME ${name} COMMAND sh -c "echo 'FAIL: ${why}' >&2; exit 1")
endfunction()

# ---- a library that uses fsafe only if present --------------------------------
# One binary (libfsafe-counter.so, FSAFE_OPTIONAL, no -lfsafe): plain, children
# hang and nothing is printed; preloaded, registered and every child completes.
fsafe_add_test(optional.elf TIMEOUT 30
  COMMAND ${IT}/check-optional-elf.sh $<TARGET_FILE:fsafe_counter>)
fsafe_add_test(optional.without TIMEOUT 60
  COMMAND ${IT}/no-stderr.sh $<TARGET_FILE:optional-demo> --expect hang --registered no --forks 30)
fsafe_add_test(optional.preload TIMEOUT 60 PRELOAD
  COMMAND ${IT}/no-stderr.sh $<TARGET_FILE:optional-demo> --expect ok --registered yes)
if(EXISTS ${CMAKE_BINARY_DIR}/fsafe-run)
  fsafe_add_test(optional.fsafe-run TIMEOUT 60
    COMMAND ${IT}/no-stderr.sh ${CMAKE_BINARY_DIR}/fsafe-run $<TARGET_FILE:optional-demo>
            --expect ok --registered yes)
endif()

if(NOT FSAFE_SANITIZE)
  # ---- Ruby ---------------------------------------------------------------------
  if(TARGET fsafe_rb_optional)
    set(rb ${FSAFE_RUBY} -I)
    set(rbs ${PROJECT_SOURCE_DIR}/examples/ruby/fork_demo.rb)
    fsafe_add_test(ruby.without TIMEOUT 90
      COMMAND ${rb} $<TARGET_FILE_DIR:fsafe_rb_optional> ${rbs} --expect hang --fsafe absent --forks 30)
    fsafe_add_test(ruby.preload TIMEOUT 60 PRELOAD
      COMMAND ${IT}/no-stderr.sh ${rb} $<TARGET_FILE_DIR:fsafe_rb_optional> ${rbs} --expect ok --fsafe preload)
    fsafe_add_test(ruby.linked TIMEOUT 60
      COMMAND ${IT}/no-stderr.sh ${rb} $<TARGET_FILE_DIR:fsafe_rb_linked> ${rbs} --expect ok --fsafe linked)
  else()
    fsafe_interp_missing(ruby.build "the Ruby extension was not built: install ruby and ruby-dev (test/deps.sh) and reconfigure")
  endif()

  # ---- Python -------------------------------------------------------------------
  if(TARGET fsafe_py_optional)
    set(pys ${PROJECT_SOURCE_DIR}/examples/python/fork_demo.py)
    fsafe_add_test(python.without TIMEOUT 90
      COMMAND ${FSAFE_PYTHON} ${pys} $<TARGET_FILE_DIR:fsafe_py_optional> --expect hang --fsafe absent --forks 30)
    fsafe_add_test(python.preload TIMEOUT 60 PRELOAD
      COMMAND ${IT}/no-stderr.sh ${FSAFE_PYTHON} ${pys} $<TARGET_FILE_DIR:fsafe_py_optional> --expect ok --fsafe preload)
    fsafe_add_test(python.linked TIMEOUT 60
      COMMAND ${IT}/no-stderr.sh ${FSAFE_PYTHON} ${pys} $<TARGET_FILE_DIR:fsafe_py_linked> --expect ok --fsafe linked)
  else()
    fsafe_interp_missing(python.build "the Python extension was not built: install python3 and python3-dev (test/deps.sh) and reconfigure")
  endif()

  # ---- installation and out-of-tree consumers ----------------------------------
  # install.prefix installs this build tree into a scratch prefix; the others
  # need it (a CTest fixture), so they run after it even under ctest -j.
  set(prefix ${CMAKE_BINARY_DIR}/test-install)
  add_test(NAME install.prefix
    COMMAND sh -c "rm -rf \"$1\" && \"$2\" --install \"$3\" --prefix \"$1\" >/dev/null"
            sh ${prefix} ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR})
  set_tests_properties(install.prefix PROPERTIES TIMEOUT 60 FIXTURES_SETUP fsafe_install)
  if(FSAFE_RUN_INSTALL_SCRIPT)
    set(with_run with-fsafe-run)
  else()
    set(with_run no-fsafe-run)
  endif()
  if(TARGET fsafe_elf)
    set(with_elf with-elf)
  else()
    set(with_elf no-elf)
  endif()
  add_test(NAME install.contents
    COMMAND ${IT}/check-install.sh ${prefix} ${CMAKE_INSTALL_LIBDIR} ${CMAKE_INSTALL_INCLUDEDIR}
            ${CMAKE_INSTALL_BINDIR} ${CMAKE_INSTALL_MANDIR} ${with_run} ${with_elf})
  set(install_tests install.contents)
  # man fsafe, man fsafe-run, man FUNCTION and man -k fsafe from the install tree.
  add_test(NAME install.man
    COMMAND ${IT}/man.sh ${prefix} ${CMAKE_INSTALL_MANDIR} ${PROJECT_SOURCE_DIR}/include/fsafe.h)
  list(APPEND install_tests install.man)
  foreach(how cmake pkg-config)
    foreach(link shared static)
      add_test(NAME install.consumer.${how}.${link}
        COMMAND ${IT}/consumer.sh ${how} ${link} ${prefix} ${CMAKE_INSTALL_LIBDIR}
                ${PROJECT_SOURCE_DIR}/examples/consumer ${CMAKE_BINARY_DIR}/test-consumer-${how}-${link}
                ${CMAKE_C_COMPILER} ${CMAKE_COMMAND})
      list(APPEND install_tests install.consumer.${how}.${link})
    endforeach()
  endforeach()
  if(FSAFE_RUN_INSTALL_SCRIPT)
    # The installed wrapper must find the installed library, wherever the prefix.
    add_test(NAME install.fsafe-run
      COMMAND ${IT}/no-stderr.sh ${prefix}/${CMAKE_INSTALL_BINDIR}/fsafe-run
              $<TARGET_FILE:optional-demo> --expect ok --registered yes)
    list(APPEND install_tests install.fsafe-run)
    if(TARGET fsafe_elf AND TARGET test_dropin_retrofit)
      # --locks: the installed wrapper preloads the installed symbol reader.
      # Without it the entry is ignored, and the child hangs on legacy_lock
      # (the program bounds the wait and exits non-zero).
      add_test(NAME install.fsafe-run.locks
        COMMAND ${IT}/no-stderr.sh ${prefix}/${CMAKE_INSTALL_BINDIR}/fsafe-run --no-auto
                --locks=legacy_lock:mutex:10 $<TARGET_FILE:test_dropin_retrofit> ok)
      list(APPEND install_tests install.fsafe-run.locks)
    endif()
  endif()
  set_tests_properties(${install_tests} PROPERTIES TIMEOUT 120 FIXTURES_REQUIRED fsafe_install
                                                   SKIP_RETURN_CODE 77)
endif()
