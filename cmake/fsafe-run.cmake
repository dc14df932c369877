# SPDX-License-Identifier: MIT
# The fsafe-run wrapper command, configured from tools/fsafe-run.in twice:
#   ${CMAKE_BINARY_DIR}/fsafe-run          for the build tree: preloads the built
#                                          library by its absolute path.
#   ${CMAKE_BINARY_DIR}/fsafe-run.install  THE FILE TO INSTALL (as bin/fsafe-run):
#                                          finds the library relative to itself
#                                          (symbolic links to it resolved),
#                                          ../<libdir>/libfsafe.so.<major>, so the
#                                          installed tree can be relocated; a copy
#                                          of it elsewhere falls back to the
#                                          library's install directory.
# Either one honours FSAFE_RUN_LIBDIR=DIR: the libraries, by the same file
# names, are taken from DIR instead.  libfsafe-elf.so (FSAFE_LOCKS's symbol
# reader) is found the same way, beside libfsafe.so.
# cmake/install.cmake should do:
#   install(PROGRAMS ${FSAFE_RUN_INSTALL_SCRIPT} DESTINATION ${CMAKE_INSTALL_BINDIR}
#           RENAME fsafe-run)
# (installing it anywhere other than CMAKE_INSTALL_BINDIR breaks the relative path,
# unless CMAKE_INSTALL_LIBDIR is absolute).
include(GNUInstallDirs)

set(FSAFE_RUN_SCRIPT ${CMAKE_BINARY_DIR}/fsafe-run)
set(FSAFE_RUN_INSTALL_SCRIPT ${CMAKE_BINARY_DIR}/fsafe-run.install)

function(fsafe_run_configure variant lib_setup output)
  set(FSAFE_RUN_VARIANT ${variant})
  set(FSAFE_RUN_LIB_SETUP "${lib_setup}")
  configure_file(${PROJECT_SOURCE_DIR}/tools/fsafe-run.in ${CMAKE_BINARY_DIR}/fsafe-run.${variant}.in @ONLY)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.20)
    file(GENERATE OUTPUT ${output} INPUT ${CMAKE_BINARY_DIR}/fsafe-run.${variant}.in
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
  else()
    # CMake < 3.20 (Debian 11's 3.18) has no FILE_PERMISSIONS here and
    # generates the script mode 664: the build makes it executable.
    file(GENERATE OUTPUT ${output} INPUT ${CMAKE_BINARY_DIR}/fsafe-run.${variant}.in)
    add_custom_target(fsafe_run_chmod_${variant} ALL COMMAND chmod 755 ${output} VERBATIM)
  endif()
endfunction()

# libfsafe-elf.so, the symbol reader FSAFE_LOCKS needs: none in a build
# without FSAFE_LOCKS (no libelf), where libfsafe.so says it is not supported.
if(TARGET fsafe_elf)
  set(_fsafe_run_elf_build "$<TARGET_FILE:fsafe_elf>")
  set(_fsafe_run_elf_soname "$<TARGET_SONAME_FILE_NAME:fsafe_elf>")
else()
  set(_fsafe_run_elf_build "")
  set(_fsafe_run_elf_soname "")
endif()

# Build tree: the library where the build put it.
fsafe_run_configure(build "lib='$<TARGET_FILE:fsafe_shared>'
auto_lib='$<TARGET_FILE:fsafe_auto>'
elf_lib='${_fsafe_run_elf_build}'" ${FSAFE_RUN_SCRIPT})

# Installed: the runtime library (SONAME file), relative to the script's directory.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_fsafe_run_lib "lib='${CMAKE_INSTALL_LIBDIR}/$<TARGET_SONAME_FILE_NAME:fsafe_shared>'
auto_lib='${CMAKE_INSTALL_LIBDIR}/$<TARGET_SONAME_FILE_NAME:fsafe_auto>'")
  if(_fsafe_run_elf_soname)
    string(APPEND _fsafe_run_lib "
elf_lib='${CMAKE_INSTALL_LIBDIR}/${_fsafe_run_elf_soname}'")
  else()
    string(APPEND _fsafe_run_lib "
elf_lib=")
  endif()
else()
  file(RELATIVE_PATH _fsafe_bin_to_lib ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}
       ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR})
  # $0 may be a symbolic link to the installed script (ln -s PREFIX/bin/fsafe-run
  # ~/bin/): resolve it, with readlink -f where there is one, else link by link.
  set(_fsafe_run_lib [=[elf_soname='@ELF_SONAME@'
self=$0
if r=$(readlink -f -- "$self" 2>/dev/null) && [ -n "$r" ]; then
    self=$r
else
    hops=0
    while [ -L "$self" ] && [ $hops -lt 40 ]; do
        t=$(ls -ld -- "$self")
        t=${t#*" -> "}
        case $t in /*) self=$t ;; *) case $self in */*) self=${self%/*}/$t ;; *) self=$t ;; esac ;; esac
        hops=$((hops + 1))
    done
fi
case $self in */*) here=${self%/*} ;; *) here=. ;; esac
# Next to the script first (a relocated prefix), then where it was installed
# (a copy of the script elsewhere).
libdir=$(cd "$here/@BIN_TO_LIB@" 2>/dev/null && pwd -P) || libdir=
lib_tried=
for d in ${libdir:+"$libdir"} '@FULL_LIBDIR@'; do
    lib_tried="$lib_tried${lib_tried:+ and }$d"
    libdir=$d
    [ -r "$d/@SONAME@" ] && break
done
lib=$libdir/@SONAME@
auto_lib=$libdir/@AUTO_SONAME@
elf_lib=${elf_soname:+$libdir/$elf_soname}]=])
  string(REPLACE "@BIN_TO_LIB@" "${_fsafe_bin_to_lib}" _fsafe_run_lib "${_fsafe_run_lib}")
  string(REPLACE "@FULL_LIBDIR@" "${CMAKE_INSTALL_FULL_LIBDIR}" _fsafe_run_lib "${_fsafe_run_lib}")
  string(REPLACE "@SONAME@" "$<TARGET_SONAME_FILE_NAME:fsafe_shared>" _fsafe_run_lib "${_fsafe_run_lib}")
  string(REPLACE "@AUTO_SONAME@" "$<TARGET_SONAME_FILE_NAME:fsafe_auto>" _fsafe_run_lib "${_fsafe_run_lib}")
  string(REPLACE "@ELF_SONAME@" "${_fsafe_run_elf_soname}" _fsafe_run_lib "${_fsafe_run_lib}")
endif()
fsafe_run_configure(install "${_fsafe_run_lib}" ${FSAFE_RUN_INSTALL_SCRIPT})
