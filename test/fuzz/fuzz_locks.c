/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the FSAFE_LOCKS parser (src/retrofit/locks_env.c,
 * fsafe__locks_parse).  Built only once that file exists.  Checks: no crash,
 * no sanitizer report, every error names a slice of the input, and the parse
 * stops calling back once a callback asks it to.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECKF(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

struct seen {
    const char *spec;
    size_t len;
    unsigned entries, errors, stop_after;
};

static int on_entry(const struct fsafe__lock_spec *e, void *arg)
{
    struct seen *s = arg;
    CHECKF(e != NULL);
    CHECKF(e->offset <= 0x7fffffffUL && (e->has_offset || e->offset == 0));
    CHECKF(e->symbol[0] != '\0' && strchr(e->symbol, '+') == NULL);
    CHECKF(s->stop_after == 0 || s->entries < s->stop_after);
    s->entries++;
    return s->stop_after && s->entries == s->stop_after;
}

static void on_error(const char *entry, size_t len, const char *why, void *arg)
{
    struct seen *s = arg;
    CHECKF(why != NULL && why[0] != '\0');
    CHECKF(entry >= s->spec && entry + len <= s->spec + s->len);
    s->errors++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    char *spec = malloc(size);
    memcpy(spec, data + 1, size - 1);
    spec[size - 1] = '\0';
    struct seen s = {spec, strlen(spec), 0, 0, data[0] % 4};
    fsafe__locks_parse(spec, on_entry, on_error, &s);
    free(spec);
    return 0;
}
