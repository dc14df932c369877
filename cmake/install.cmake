# SPDX-License-Identifier: MIT
# Installation: header, libfsafe.so*/libfsafe.a, libfsafe-auto.so*,
# libfsafe-elf.so* (the symbol reader, beside libfsafe.so: fsafe-run and
# libfsafe.so's reports find it there), fsafe-run (when the drop-in
# part defines FSAFE_RUN_INSTALL_SCRIPT), fsafe.pc, the CMake package
# (find_package(fsafe) -> fsafe::fsafe, fsafe::fsafe_static) and the man pages.
# Everything installed is relocatable: `cmake --install build --prefix P` works.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FSAFE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fsafe)

set_target_properties(fsafe_shared PROPERTIES EXPORT_NAME fsafe)
set_target_properties(fsafe_static PROPERTIES EXPORT_NAME fsafe_static)
set(_fsafe_install_targets fsafe_shared fsafe_static)
if(TARGET fsafe_auto) # not in a core-only build (FSAFE_AUTO off)
  set_target_properties(fsafe_auto PROPERTIES EXPORT_NAME fsafe_auto)
  list(APPEND _fsafe_install_targets fsafe_auto)
endif()
if(TARGET fsafe_elf) # not in a build without FSAFE_LOCKS (no libelf)
  set_target_properties(fsafe_elf PROPERTIES EXPORT_NAME fsafe_elf)
  list(APPEND _fsafe_install_targets fsafe_elf)
endif()
install(TARGETS ${_fsafe_install_targets} EXPORT fsafeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/fsafe.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT fsafeTargets NAMESPACE fsafe:: DESTINATION ${FSAFE_CMAKE_DIR})

# fsafe::fsafe_static links libatomic_ops privately (as $<LINK_ONLY:...>), so
# the package config recreates the same imported target name.
set(FSAFE_CONFIG_AO_TARGET ${FSAFE_AO_TARGET})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/fsafeConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/fsafeConfig.cmake
                              INSTALL_DESTINATION ${FSAFE_CMAKE_DIR})
# 0.x: a minor release may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fsafeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fsafeConfig.cmake ${PROJECT_BINARY_DIR}/fsafeConfigVersion.cmake
        DESTINATION ${FSAFE_CMAKE_DIR})

# fsafe.pc: prefix is the install prefix, written at install time (so that
# `cmake --install build --prefix P` and DESTDIR staging both give P), and
# absolute, so that pkg-config prints clean paths (a ${pcfiledir}/../.. prefix
# came out as .../lib/pkgconfig/../../include).  A tree moved after
# installing: `pkg-config --define-prefix` (pkgconf) recomputes the prefix
# from the .pc file's place.
set(FSAFE_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
set(FSAFE_PC_PREFIX "@FSAFE_PC_INSTALL_PREFIX@")
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(FSAFE_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(FSAFE_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
# The static library's own dependencies, for `pkg-config --static`.  They go in
# Libs.private rather than Requires.private, so that a shared-library consumer
# does not need atomic_ops.pc installed.
set(FSAFE_PC_AO_LIBS "")
foreach(_d ${ATOMIC_OPS_LIBRARY_DIRS})
  if(NOT _d IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
    string(APPEND FSAFE_PC_AO_LIBS " -L${_d}")
  endif()
endforeach()
if(NOT ATOMIC_OPS_LIBRARIES)
  set(ATOMIC_OPS_LIBRARIES atomic_ops)
endif()
foreach(_l ${ATOMIC_OPS_LIBRARIES})
  string(APPEND FSAFE_PC_AO_LIBS " -l${_l}")
endforeach()
string(STRIP "${FSAFE_PC_AO_LIBS}" FSAFE_PC_AO_LIBS)
set(FSAFE_PC_DL_LIBS "")
foreach(_l ${CMAKE_DL_LIBS})
  string(APPEND FSAFE_PC_DL_LIBS " -l${_l}")
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/fsafe.pc.in ${PROJECT_BINARY_DIR}/fsafe.pc.in @ONLY)
install(CODE "set(FSAFE_PC_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
configure_file(\"${PROJECT_BINARY_DIR}/fsafe.pc.in\" \"${PROJECT_BINARY_DIR}/fsafe.pc\" @ONLY)")
install(FILES ${PROJECT_BINARY_DIR}/fsafe.pc DESTINATION ${FSAFE_PC_DIR})

# Every page in doc/man: fsafe(3), fsafe-run(1), one page per public function
# (some are ".so" links to the page that describes a group).
file(GLOB FSAFE_MAN3 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/doc/man/*.3)
file(GLOB FSAFE_MAN1 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/doc/man/*.1)
install(FILES ${FSAFE_MAN3} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
install(FILES ${FSAFE_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# fsafe-run belongs to cmake/fsafe-run.cmake, included before this file; it
# names its install-time variant in FSAFE_RUN_INSTALL_SCRIPT.
if(FSAFE_RUN_INSTALL_SCRIPT)
  install(PROGRAMS ${FSAFE_RUN_INSTALL_SCRIPT} DESTINATION ${CMAKE_INSTALL_BINDIR} RENAME fsafe-run)
endif()
