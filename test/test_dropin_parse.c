/* SPDX-License-Identifier: MIT */
/*
 * The FSAFE_LOCKS parser on its own (linked with libfsafe.a): valid entries
 * with their fields, one error per bad entry, empty entries skipped, and the
 * on_entry stop contract.
 */
#include "common.h"

#include "internal.h"

struct seen {
    int entries, errors, stop_after;
    char log[4096];
};

static void add(struct seen *s, const char *text)
{
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%s;", text);
}

static int on_entry(const struct fsafe__lock_spec *e, void *arg)
{
    struct seen *s = arg;
    char buf[512];
    if (e->has_offset)
        snprintf(buf, sizeof buf, "%s+%lu|%s|%d|%d", e->symbol, e->offset, e->library, e->kind,
                 e->rank);
    else
        snprintf(buf, sizeof buf, "%s|%s|%d|%d", e->symbol, e->library, e->kind, e->rank);
    add(s, buf);
    s->entries++;
    return s->stop_after && s->entries >= s->stop_after;
}

static void on_error(const char *entry, size_t len, const char *why, void *arg)
{
    struct seen *s = arg;
    char buf[512];
    CHECK(why && *why);
    snprintf(buf, sizeof buf, "ERR(%.*s)", (int)len, entry);
    add(s, buf);
    s->errors++;
}

static void expect(const char *spec, int stop_after, int n, const char *log)
{
    struct seen s = {0, 0, stop_after, ""};
    int r = fsafe__locks_parse(spec, on_entry, on_error, &s);
    if (r != n || r != s.entries || strcmp(s.log, log) != 0)
        FAIL("spec '%s': returned %d (%d entries), log '%s'; expected %d, '%s'", spec ? spec : "NULL",
             r, s.entries, s.log, n, log);
}

int main(void)
{
    char big[600];
    expect(NULL, 0, 0, "");
    expect("", 0, 0, "");
    expect(" , ,,\t", 0, 0, "");
    expect("lk", 0, 1, "lk||1|0;");
    expect(" lk ", 0, 1, "lk||1|0;");
    expect("a@libx.so.1:rwlock:-5, b:spin:7,c::3,d:MUTEX:", 0, 4,
           "a|libx.so.1|2|-5;b||3|7;c||1|3;d||1|0;");
    expect("e:spinlock:+2147483647,f:mutex:-2147483648", 0, 2,
           "e||3|2147483647;f||1|-2147483648;");
    /* lll: glibc's internal low-level lock (FSAFE__SPEC_LLL, 16). */
    expect("__exit_funcs_lock@libc.so.6:lll,g:LLL:-1", 0, 2,
           "__exit_funcs_lock|libc.so.6|16|0;g||16|-1;");
    expect("a:llll,a:ll", 0, 0, "ERR(a:llll);ERR(a:ll);");
    expect("_x.y$z@/opt/lib/libq.so", 0, 1, "_x.y$z|/opt/lib/libq.so|1|0;");
    /* One error per bad entry, the good ones still count. */
    expect("ok1,9bad,ok2", 0, 2, "ok1||1|0;ERR(9bad);ok2||1|0;");
    expect("a:b:c:d", 0, 0, "ERR(a:b:c:d);");
    expect("a:semaphore", 0, 0, "ERR(a:semaphore);");
    expect("a:mutex:12x,a:mutex:-,a:mutex:2147483648,a:mutex:99999999999999999999", 0, 0,
           "ERR(a:mutex:12x);ERR(a:mutex:-);ERR(a:mutex:2147483648);"
           "ERR(a:mutex:99999999999999999999);");
    expect("@lib,a@,a@li b,:mutex", 0, 0, "ERR(@lib);ERR(a@);ERR(a@li b);ERR(:mutex);");
    expect("%%garbage%%", 0, 0, "ERR(%%garbage%%);");
    expect("a-b", 0, 0, "ERR(a-b);");
    /* symbol+OFFSET: bytes, decimal or 0x hex, before any @library. */
    expect("_ZZN3app8Registry8InstanceEvE1r+48@libappreg.so:mutex:30,a+0,b+0x30,c+0X7fffffff", 0,
           4, "_ZZN3app8Registry8InstanceEvE1r+48|libappreg.so|1|30;a+0||1|0;b+48||1|0;"
              "c+2147483647||1|0;");
    expect("a+2147483647@libstdc++.so.6", 0, 1, "a+2147483647|libstdc++.so.6|1|0;");
    expect("a@libstdc++.so.6", 0, 1, "a|libstdc++.so.6|1|0;");
    expect("a+,a+0x,a+12x,a+0x1g,a+-1,a+2147483648,a+0x80000000,+4,a++1,a+1+2", 0, 0,
           "ERR(a+);ERR(a+0x);ERR(a+12x);ERR(a+0x1g);ERR(a+-1);ERR(a+2147483648);"
           "ERR(a+0x80000000);ERR(+4);ERR(a++1);ERR(a+1+2);");
    expect("a+99999999999999999999999", 0, 0, "ERR(a+99999999999999999999999);");
    /* C++ names go in mangled: a demangled one is refused (':' and ',' separate). */
    expect("app::Registry::mutex_", 0, 0, "ERR(app::Registry::mutex_);");
    /* Length limits: 127 bytes of symbol fit, 128 do not. */
    memset(big, 'a', 127);
    big[127] = '\0';
    struct seen s = {0, 0, 0, ""};
    CHECK_EQ(fsafe__locks_parse(big, on_entry, on_error, &s), 1);
    big[127] = 'a';
    big[128] = '\0';
    s = (struct seen){0, 0, 0, ""};
    CHECK_EQ(fsafe__locks_parse(big, on_entry, on_error, &s), 0);
    CHECK_EQ(s.errors, 1);
    memcpy(big, "s@", 2);
    memset(big + 2, 'l', 256);
    big[258] = '\0';
    s = (struct seen){0, 0, 0, ""};
    CHECK_EQ(fsafe__locks_parse(big, on_entry, on_error, &s), 0);
    CHECK_EQ(s.errors, 1);
    big[257] = '\0'; /* 255 bytes of library: fits */
    s = (struct seen){0, 0, 0, ""};
    CHECK_EQ(fsafe__locks_parse(big, on_entry, on_error, &s), 1);
    /* A non-zero return from on_entry stops the parse. */
    expect("a,b,c", 2, 2, "a||1|0;b||1|0;");
    /* NULL callbacks are allowed: the count is still returned. */
    CHECK_EQ(fsafe__locks_parse("a,!,b", NULL, NULL, NULL), 2);
    /* Any bytes: high bytes and control characters are errors, not crashes. */
    CHECK_EQ(fsafe__locks_parse("\xff\xfe:\x01,\x7f@\x80", NULL, NULL, NULL), 0);
    puts("parse ok");
    return 0;
}
