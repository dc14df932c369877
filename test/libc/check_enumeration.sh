#!/bin/bash
# SPDX-License-Identifier: MIT
# Checks src/auto/glibc-locks.tsv, the enumeration of glibc's internal locks
# (issue 23), against the source and the test suite:
#   - every row has the 10 columns, none empty, a unique id, a known kind,
#     glibc_fork and fsafe value;
#   - a gate:<family>, fork or locks row names at least one test, and every
#     test a row names is known to CTest (the CTestTestfile.cmake files in BUILD_DIR);
#   - a locks row's note gives its entry, FSAFE_LOCKS=<lock>@libc.so.6[:kind];
#   - every function of a gate:<family> row is interposed by src/auto/libc.c,
#     and, for the functions of its GATED_FUNCTIONS lists and the gates it
#     defines by hand, in that family.
#   - with README (src/README.md), that it has the counts sentence of this
#     file word for word ("**N rows**: ...", below), so the docs' numbers
#     are the data's.
# Then prints the rows per fsafe value and every not-covered row.
#
# Usage: check_enumeration.sh TSV AUTO_LIBC_C BUILD_DIR [README]
set -u
export LC_ALL=C

if [ $# -ne 3 ] && [ $# -ne 4 ]; then
    echo "usage: $0 glibc-locks.tsv src/auto/libc.c build-dir [src/README.md]" >&2
    exit 2
fi
tsv=$1 src=$2 build=$3 readme=${4:-}
for f in "$tsv" "$src"; do
    [ -r "$f" ] || { echo "check_enumeration: cannot read $f" >&2; exit 2; }
done

# The test names from the CTestTestfile.cmake files CMake wrote (not ctest
# -N: run from inside a test, it rewrites the build tree's
# Testing/Temporary/LastTest.log that the running suite writes to).
tests=$(find "$build" -name CTestTestfile.cmake -exec sed -n 's/^add_test(\(\[=\[\)\{0,1\}\([^] "]*\).*/\2/p' {} + 2>/dev/null)
if [ -z "$tests" ]; then
    echo "check_enumeration: no tests found in the CTestTestfile.cmake files under $build" >&2
    exit 2
fi

# The interposed functions, "name family" per line (family "*" when it cannot
# be told from the definition, e.g. syslog, which calls the vsyslog wrapper).
wrappers=$(awk '
    function norm(s) { sub(/ \(.*/, "", s); gsub(/ /, "-", s); return s }
    # #define TZ "time zone"
    /^#define [A-Z_]+ "[^"]*"[ \t]*$/ {
        name = $2; s = $0; sub(/^[^"]*"/, "", s); sub(/".*/, "", s); fam[name] = norm(s)
    }
    # static struct fsafe__gate gate_x = {FAM " (x)", 0};  or  = {"loader (...)", 1};
    /^static struct fsafe__gate [a-z_0-9]+ = \{/ {
        g = $4; s = $0; sub(/^[^{]*\{[ \t]*/, "", s)
        if (s ~ /^"/) { sub(/^"/, "", s); sub(/".*/, "", s); gfam[g] = norm(s) }
        else { m = s; sub(/[ \t"].*/, "", m); gmac[g] = m }
    }
    # X(ret, name, FAM, (params), (args))  and  V(name, FAM, (params), (args))
    /^[ \t]*X\([^,]+,[ \t]*[A-Za-z_0-9]+,[ \t]*[A-Z_]+[ \t]*,/ {
        s = $0; sub(/^[ \t]*X\([^,]+,[ \t]*/, "", s); n = s; sub(/[ \t]*,.*/, "", n)
        m = s; sub(/^[A-Za-z_0-9]+,[ \t]*/, "", m); sub(/[ \t]*,.*/, "", m)
        xn[++nx] = n; xm[nx] = m
    }
    /^[ \t]*V\([A-Za-z_0-9]+,[ \t]*[A-Z_]+[ \t]*,/ {
        s = $0; sub(/^[ \t]*V\([ \t]*/, "", s); n = s; sub(/[ \t]*,.*/, "", n)
        m = s; sub(/^[A-Za-z_0-9]+,[ \t]*/, "", m); sub(/[ \t]*,.*/, "", m)
        xn[++nx] = n; xm[nx] = m
    }
    # FSAFE_EXPORT ... name(...)  defined by hand: its family from the body
    /^FSAFE_EXPORT/ && /\(/ {
        s = $0; sub(/\(.*/, "", s); n = s; sub(/.*[ *]/, "", n)
        cur = n; ef[n] = "*"; ++ne; en[ne] = n; next
    }
    cur != "" && /LOADER_CALL/ { ef[cur] = "loader" }
    cur != "" && /&gate_[a-z_0-9]+/ {
        s = $0; sub(/.*&gate_/, "gate_", s); sub(/[^a-z_0-9].*/, "", s); eg[cur] = s
    }
    cur != "" && /^}/ { cur = "" }
    END {
        for (i = 1; i <= nx; i++) print xn[i], (xm[i] in fam ? fam[xm[i]] : "?" xm[i])
        for (i = 1; i <= ne; i++) {
            n = en[i]; f = ef[n]
            if (f == "*" && (n in eg)) {
                g = eg[n]
                if (g in gfam) f = gfam[g]
                else if ((g in gmac) && (gmac[g] in fam)) f = fam[gmac[g]]
            }
            print n, f
        }
    }' "$src")

if [ -z "$wrappers" ]; then
    echo "check_enumeration: found no wrappers in $src (has its layout changed?)" >&2
    exit 2
fi

awk -F'\t' -v tests="$tests" -v wrappers="$wrappers" -v tsv="$tsv" '
    BEGIN {
        n = split(tests, t, "\n"); for (i = 1; i <= n; i++) known[t[i]] = 1
        n = split(wrappers, w, "\n")
        for (i = 1; i <= n; i++) { split(w[i], p, " "); wfam[p[1]] = p[2] }
        split("libc_lock libc_lock_recursive libc_rwlock rtld_lock lll io_lock pthread_mutex futex other", k, " ")
        for (i in k) kinds[k[i]] = 1
        split("take reset none", k, " "); for (i in k) forks[k[i]] = 1
        header = "id\tsource\tlock\tkind\tfunctions\tglibc_fork\tfsafe\ttest\tglibc_2_41\tnote"
        errors = 0; rows = 0
    }
    function bad(msg) { printf "%s:%d: %s\n", tsv, NR, msg; errors++ }
    /^#/ { next }
    !seen_header {
        seen_header = 1
        if ($0 != header) bad("header is not: " header)
        next
    }
    {
        rows++
        id = $1
        if (NF != 10) { bad("row " id ": " NF " columns, not 10"); next }
        for (i = 1; i <= 10; i++)
            if ($i == "") bad("row " id ": column " i " is empty (use -)")
        if (id in ids) bad("row " id ": duplicate id (also line " ids[id] ")")
        ids[id] = NR
        if (!($4 in kinds)) bad("row " id ": unknown kind \"" $4 "\"")
        if (!($6 in forks)) bad("row " id ": unknown glibc_fork \"" $6 "\"")
        fs = $7
        if (fs !~ /^(gate:[A-Za-z][A-Za-z+-]*|fork|locks|glibc|tracked|unreachable:[a-z0-9][a-z0-9.-]*|not-covered)$/) {
            bad("row " id ": unknown fsafe value \"" fs "\"")
            next
        }
        cls = fs; if (cls ~ /^unreachable:/) cls = "unreachable"
        count[fs]++
        if ($8 == "-") {
            if (fs ~ /^gate:/ || fs == "fork" || fs == "locks")
                bad("row " id ": fsafe is " fs " but no test exercises it")
        } else {
            n = split($8, tl, " ")
            for (i = 1; i <= n; i++)
                if (!(tl[i] in known)) bad("row " id ": test " tl[i] " is not known to CTest")
        }
        if (fs ~ /^gate:/) {
            fam = substr(fs, 6)
            n = split($5, fl, " ")
            if ($5 == "-") bad("row " id ": a gate row lists no function")
            for (i = 1; i <= n; i++) {
                f = fl[i]
                if (!(f in wfam)) bad("row " id ": " f " is not interposed by src/auto/libc.c")
                else if (wfam[f] != "*" && wfam[f] != fam)
                    bad("row " id ": " f " is gated as family " wfam[f] ", not " fam)
            }
        }
        if (fs == "locks" && index($10, "FSAFE_LOCKS=" $3 "@libc.so.6") == 0)
            bad("row " id ": fsafe is locks but the note does not give its entry, FSAFE_LOCKS=" $3 "@libc.so.6[:kind]")
        if (fs == "not-covered") gaps[++ngaps] = id "\t" $3 "\t" $5
    }
    END {
        if (!seen_header) bad("no header line")
        printf "%d rows in %s\n", rows, tsv
        for (v in count) printf "  %-28s %d\n", v, count[v] | "sort"
        close("sort")
        printf "not-covered rows (%d):\n", ngaps
        for (i = 1; i <= ngaps; i++) { split(gaps[i], g, "\t"); printf "  %s  [%s]  %s\n", g[1], g[2], g[3] }
        if (errors) { printf "libc.enumeration: %d error(s)\n", errors; exit 1 }
        print "libc.enumeration: ok"
    }' "$tsv"
st=$?
[ $st -eq 0 ] || exit $st
if [ -n "$readme" ]; then
    sentence=$(awk -F '\t' '
        /^#/ || $1 == "id" || NF < 2 { next }
        { n++; v = $7; sub(/:.*/, "", v); c[v]++ }
        END {
            printf "**%d rows**: %d gated, %d by lock tracking, %d by auto mode'"'"'s fork, ", n, c["gate"], c["tracked"], c["fork"]
            printf "%d by an FSAFE_LOCKS entry (with libc'"'"'s debug file), ", c["locks"]
            printf "%d by glibc'"'"'s own fork, %d unreachable, %d not covered.", c["glibc"], c["unreachable"], c["not-covered"]
        }' "$tsv")
    if ! grep -qF -- "$sentence" "$readme"; then
        echo "libc.enumeration: $readme does not have the counts of $tsv; expected the line:" >&2
        echo "  $sentence" >&2
        exit 1
    fi
    echo "libc.enumeration: $readme's counts match: $sentence"
fi
