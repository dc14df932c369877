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
foreach(v ${FSAFE_KIND_VARIANTS})
  fsafe_add_test(kinds.linked.${v} TIMEOUT 60 COMMAND test_kinds ${v} ok)
  fsafe_add_test(kinds.preload.${v} TIMEOUT 60 PRELOAD COMMAND test_kinds_opt ${v} ok)
endforeach()
foreach(v ${FSAFE_KIND_HANG})
  fsafe_add_test(kinds.without.${v} TIMEOUT 60 COMMAND test_kinds_opt ${v} hang)
endforeach()
