/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the FSAFE_* value parsers in src/core/config.c
 * (fsafe__parse_bool, fsafe__parse_long, fsafe__parse_churn).  The first byte
 * picks the parser ('b' bool, 'm' FSAFE_WARN_MS range, 'c' churn, 'r' a range
 * given by the next 16 bytes), the rest is the value.  Besides "no crash, no sanitizer
 * report", it checks each parser against its contract.  Also built without
 * libFuzzer as a replay driver (replay.c) that runs the checked-in corpus.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define CHECKF(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Reference: is s a plain decimal integer (optional sign) that fits a long? */
static int ref_decimal(const char *s, long *v)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p != '\0')
        return 0;
    errno = 0;
    *v = strtol(s, NULL, 10);
    return errno == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    long ref;
    int isnum = ref_decimal(s, &ref);
    int sel = data[0] == 'b' ? 0 : data[0] == 'm' ? 1 : data[0] == 'c' ? 2 : data[0] == 'r' ? 3
                                                                                 : data[0] % 4;
    switch (sel) {
    case 0: { /* boolean */
        int out = -7;
        int r = fsafe__parse_bool(s, &out);
        int yes = !strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
                  !strcasecmp(s, "on");
        int no = !strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
                 !strcasecmp(s, "off");
        CHECKF(r == ((yes || no) ? 0 : -1));
        CHECKF(r != 0 ? out == -7 : out == yes);
        break;
    }
    case 1: { /* milliseconds, as FSAFE_WARN_MS */
        long out = -7;
        int r = fsafe__parse_long(s, 0, 86400000L, &out);
        CHECKF(r == ((isnum && ref >= 0 && ref <= 86400000L) ? 0 : -1));
        CHECKF(r != 0 ? out == -7 : out == ref);
        break;
    }
    case 2: { /* churn: a count 0..1024, auto, off */
        int out = -7;
        int r = fsafe__parse_churn(s, &out);
        if (!strcasecmp(s, "auto"))
            CHECKF(r == 0 && out == FSAFE_CHURN_AUTO);
        else if (!strcasecmp(s, "off"))
            CHECKF(r == 0 && out == FSAFE_CHURN_OFF);
        else
            CHECKF(r == ((isnum && ref >= 0 && ref <= 1024) ? 0 : -1) &&
                   (r != 0 ? out == -7 : out == ref));
        break;
    }
    case 3: { /* any range: the value's first 16 bytes choose min and max */
        long lim[2] = {0, 0};
        long out = -7;
        if (size >= 17) {
            memcpy(lim, data + 1, sizeof lim);
            memmove(s, s + 16, strlen(s + 16) + 1);
            isnum = ref_decimal(s, &ref);
        }
        int r = fsafe__parse_long(s, lim[0], lim[1], &out);
        CHECKF(r == ((isnum && ref >= lim[0] && ref <= lim[1]) ? 0 : -1));
        CHECKF(r != 0 ? out == -7 : out == ref);
        break;
    }
    }
    free(s);
    return 0;
}
