/* SPDX-License-Identifier: MIT */
/*
 * libc's own locks (time zone, NSS, syslog, iconv, locale, loader,
 * environment): interposes the public functions of each family and tracks a
 * call as a hold of the family's gate (auto.h).  Placeholder until the
 * families are wired in; fsafe__libc_child runs in the child: async-signal-
 * safe calls only.
 */
#include "auto.h"

void fsafe__libc_init(void)
{
}

void fsafe__libc_child(void)
{
}
