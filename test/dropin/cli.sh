#!/bin/sh
# SPDX-License-Identifier: MIT
# fsafe-run's command line, one behaviour per invocation:
#   cli.sh FSAFE_RUN BINDIR help|version|unknown|bad-value|no-command|not-found|
#          not-executable|exit-status|signal|exec|no-dashdash|keep-preload|options|
#          locks-syntax VERSION
. "$(dirname "$0")/lib.sh"
case=$1
version=${2:-}
st=0
case $case in
help)
    "$run" --help >"$tmp/out" 2>"$tmp/err" || fail "--help exit status $?"
    [ ! -s "$tmp/err" ] || fail "--help wrote to stderr"
    # Every setting of the option table is named, and every option works.
    for v in $(settings); do
        grep -q "$v" "$tmp/out" || fail "--help does not mention $v"
    done
    for o in $(sed -n 's/^ *\(-., \)\{0,1\}\(--[a-z-]*\).*/\2/p' "$tmp/out"); do
        case $o in --help | --version) continue ;; esac
        case $o in
        --warn-ms | --churn | --log-fd | --auto-wait-ms | --child-watch-ms) arg="$o=1" ;;
        --locks) arg="$o=x" ;;
        --auto-on-timeout) arg="$o=keep" ;;
        *) arg=$o ;;
        esac
        "$run" $arg true 2>"$tmp/err.opt" || fail "documented option $arg is refused: $(cat "$tmp/err.opt")"
    done
    ok "--help names every FSAFE_* setting and each documented option is accepted"
    ;;
version)
    out=$("$run" --version) || fail "--version exit status $?"
    [ "$out" = "fsafe-run (fsafe) $version" ] || fail "--version printed '$out', expected version $version"
    out=$("$run" -V) || fail "-V exit status $?"
    [ "$out" = "fsafe-run (fsafe) $version" ] || fail "-V printed '$out'"
    ok "$out"
    ;;
unknown)
    "$run" --frobnicate true >"$tmp/out" 2>"$tmp/err" && fail "unknown option accepted"
    st=$?
    [ $st = 2 ] || fail "unknown option: exit status $st, expected 2"
    grep -q "unknown option '--frobnicate'" "$tmp/err" || fail "no clear message"
    ok "$(head -1 "$tmp/err")"
    ;;
bad-value)
    # Every value fsafe-run passes on is checked first: out of range, a
    # descriptor that is not open for writing, a lock list the library would
    # refuse.  A usage message, exit 2, and the command does not run.
    exec 8</dev/null # open, but read-only
    for a in --warn-ms=abc --log-fd=-1 --churn=lots --locks= "--warn-ms" --churn=5000 \
             --churn=1025 --log-fd=99 --log-fd=8 --locks=1bad --locks=a:semaphore \
             --locks=ok,a:b:c:d --locks=a:mutex:2147483648 --auto-wait-ms=86400001 \
             --warn-ms=86400001 --auto-on-timeout=later --auto-wait-ms=-1 --child-watch-ms=x \
             --child-watch-ms=86400001; do
        "$run" $a sh -c 'echo ran' >"$tmp/out" 2>"$tmp/err"
        st=$?
        [ $st = 2 ] || fail "$a: exit status $st, expected 2"
        grep -q "^fsafe-run: " "$tmp/err" || fail "$a: no message"
        grep -q "^Try 'fsafe-run --help'" "$tmp/err" || fail "$a: no usage hint"
        [ ! -s "$tmp/out" ] || fail "$a: the command ran"
    done
    # The limits themselves are accepted.
    for a in --churn=1024 --churn=0 --churn=AUTO --warn-ms=86400000 --auto-wait-ms=0 \
             --log-fd=1 --auto-on-timeout=KEEP --locks=a:mutex:-2147483648; do
        "$run" $a true 2>"$tmp/err" || fail "$a refused: $(cat "$tmp/err")"
    done
    "$run" --flush=1 true 2>"$tmp/err"
    [ $? = 2 ] || fail "--flush=1 should be refused (the option takes no value)"
    ok "bad option values exit 2 with a message"
    ;;
no-command)
    for args in "" "--" "--verbose" "--stats --"; do
        "$run" $args >"$tmp/out" 2>"$tmp/err"
        st=$?
        [ $st = 2 ] || fail "'fsafe-run $args': exit status $st, expected 2"
        grep -q "no command given" "$tmp/err" || fail "'fsafe-run $args': no clear message"
    done
    ok "missing command exits 2"
    ;;
not-found)
    "$run" fsafe-no-such-command-here 2>"$tmp/err"
    st=$?
    [ $st = 127 ] || fail "command not found: exit status $st, expected 127 (as env(1))"
    grep -q "command not found" "$tmp/err" || fail "no clear message"
    "$run" "$tmp/nope" 2>"$tmp/err"
    [ $? = 127 ] || fail "missing path: expected 127"
    ok "not found: 127"
    ;;
not-executable)
    printf 'echo hi\n' >"$tmp/script"
    chmod 644 "$tmp/script"
    "$run" "$tmp/script" 2>"$tmp/err"
    st=$?
    [ $st = 126 ] || fail "not executable: exit status $st, expected 126"
    ok "not executable: 126"
    ;;
exit-status)
    for n in 0 1 42 255; do
        "$run" sh -c "exit $n"
        st=$?
        [ $st = $n ] || fail "exit $n came back as $st"
    done
    ok "exit statuses pass through"
    ;;
signal)
    # The command kills itself: whoever waits for fsafe-run sees that signal.
    "$bin/test_dropin_status" "$run" sh -c 'kill -TERM $$' >"$tmp/out"
    grep -qx "signal 15" "$tmp/out" || fail "expected 'signal 15', got: $(cat "$tmp/out")"
    "$bin/test_dropin_status" "$run" sh -c 'kill -KILL $$' >"$tmp/out"
    grep -qx "signal 9" "$tmp/out" || fail "expected 'signal 9', got: $(cat "$tmp/out")"
    ok "killed by SIGTERM / SIGKILL as the command was"
    ;;
exec)
    # fsafe-run execs: the command runs in the very process that was started.
    "$bin/test_dropin_status" "$run" sh -c 'echo "self $$"' >"$tmp/out"
    started=$(sed -n 's/^pid //p' "$tmp/out")
    self=$(sed -n 's/^self //p' "$tmp/out")
    [ -n "$started" ] && [ "$started" = "$self" ] || fail "command ran as pid $self, started $started"
    ok "exec in place (pid $self)"
    ;;
no-dashdash)
    # Without "--", option parsing stops at the command; its options are its own.
    out=$("$run" sh -c 'echo "$0 $1"' --verbose --frob) || fail "status $?"
    [ "$out" = "--verbose --frob" ] || fail "got '$out'"
    out=$("$run" --stats -- sh -c 'echo "$FSAFE_STATS"' 2>/dev/null) || fail "status $?"
    [ "$out" = 1 ] || fail "--stats did not set FSAFE_STATS=1 (got '$out')"
    ok "options after the command are the command's"
    ;;
keep-preload)
    other=$bin/liblegacy_test.so
    out=$(LD_PRELOAD=$other "$run" sh -c 'echo "$LD_PRELOAD"') || fail "status $?"
    case $out in
    */libfsafe-auto.so*:"$other") ;;
    *) fail "LD_PRELOAD became '$out'" ;;
    esac
    ok "LD_PRELOAD=$out"
    ;;
options)
    # Each option maps to its variable; --locks accumulates; options win over the environment.
    out=$(FSAFE_WARN_MS=7 FSAFE_CHURN=3 "$run" -v -s --warn-ms 250 --locks=a --locks b:rwlock \
          --flush --warn-threads --log-fd=1 -- sh -c \
          'echo "$FSAFE_VERBOSE $FSAFE_STATS $FSAFE_WARN_MS $FSAFE_LOCKS $FSAFE_FLUSH $FSAFE_WARN_THREADS $FSAFE_LOG_FD $FSAFE_CHURN"' \
          2>/dev/null | grep -v "^$M")
    [ "$out" = "1 1 250 a,b:rwlock 1 1 1 3" ] || fail "got '$out'"
    out=$("$run" --churn=off sh -c 'echo "$FSAFE_CHURN"')
    [ "$out" = off ] || fail "--churn=off gave '$out'"
    # --glibc-locks adds glibc-locks.tsv's "locks" entries for this glibc.
    out=$("$run" --locks=a --glibc-locks sh -c 'echo "$FSAFE_LOCKS"' 2>/dev/null)
    want=a,__exit_funcs_lock@libc.so.6:lll
    minor=$(getconf GNU_LIBC_VERSION | sed -n 's/^glibc 2\.\([0-9]*\).*/\1/p')
    [ "${minor:-0}" -lt 34 ] || want=$want,__timer_active_sigev_thread_lock@libc.so.6
    [ "$out" = "$want" ] || fail "--glibc-locks gave FSAFE_LOCKS='$out', expected '$want'"
    ok "options map to FSAFE_* variables"
    ;;
locks-syntax)
    # fsafe-run refuses exactly the --locks values in which the library's
    # parser (FSAFE_LOCKS set by hand) finds a bad entry.
    a127=$(printf '%0127d' 0 | tr 0 a)
    l255=$(printf '%0255d' 0 | tr 0 l)
    tab=$(printf '\t')
    cat >"$tmp/specs" <<SPECS
lk
 lk${tab}
a@libx.so.1:rwlock:-5, b:spin:7,c::3,d:MUTEX:
e:spinlock:+2147483647,f:mutex:-2147483648
__exit_funcs_lock@libc.so.6:lll,g:LLL:-1
a:llll
_x.y\$z@/opt/lib/libq.so
ok1,9bad,ok2
a:b:c:d
a:semaphore
a:mutex:12x
a:mutex:-
a:mutex:2147483648
a:mutex:99999999999999999999
a:mutex:00000000000000000000001
@lib
a@
a@li b
:mutex
%%garbage%%
a-b
,,a,,
$a127
${a127}a
s@$l255
s@${l255}l
a,!,b
a:rwlock:
a::
x@y@z
SPECS
    n=0
    while IFS= read -r spec; do
        n=$((n + 1))
        FSAFE_LOCKS=$spec "$run" --no-auto true 2>"$tmp/lib.err"
        lib_bad=0
        grep -q "FSAFE_LOCKS: ignoring entry" "$tmp/lib.err" && lib_bad=1
        "$run" --no-auto --locks="$spec" true 2>"$tmp/run.err"
        st=$?
        run_bad=0
        [ $st = 2 ] && run_bad=1
        [ $run_bad = $lib_bad ] \
            || fail "'$spec': fsafe-run status $st, library refused=$lib_bad: $(cat "$tmp/run.err" "$tmp/lib.err")"
    done <"$tmp/specs"
    [ $n -ge 25 ] || fail "only $n specs read"
    # symbol+OFFSET (decimal or 0x hex) is accepted by fsafe-run.
    for spec in a+48 a+0x30@libx.so:mutex:2; do
        out=$("$run" --no-auto --locks="$spec" sh -c 'echo "$FSAFE_LOCKS"' 2>/dev/null) \
            || fail "$spec refused"
        [ "$out" = "$spec" ] || fail "$spec passed on as '$out'"
    done
    for spec in a+ a+0x a+1z a+0xg; do
        "$run" --no-auto --locks="$spec" true 2>/dev/null
        [ $? = 2 ] || fail "$spec accepted"
    done
    ok "$n lock lists: fsafe-run and the library agree"
    ;;
*) fail "unknown case $case" ;;
esac
