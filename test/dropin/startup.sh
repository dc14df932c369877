#!/bin/sh
# SPDX-License-Identifier: MIT
# fsafe changes nothing a program finds at start-up: the environment, errno,
# argv and the program name, the signal mask and dispositions, the locale,
# stdio's state, the file descriptors, the thread count (test_startup_state
# prints them; python3 and ruby print theirs).  Each run with fsafe is compared
# with the same run without it, under every FSAFE_* setting (valid and bad
# values) and every fsafe-run option.
#   startup.sh FSAFE_RUN BINDIR settings|options|python3|ruby
. "$(dirname "$0")/lib.sh"
lib=$(sed -n "s/^lib='\(.*\)'$/\1/p" "$run")
[ -f "$lib" ] || fail "cannot find the library in $run"
prog=$bin/test_startup_state
what=$1

# Values for each setting: valid ones, then bad ones (one warning, the default).
values() {
    case $1 in
    FSAFE_LOCKS) echo "zz zz@libm.so.6 legacy_lock legacy_lock@liblegacy_test.so:mutex:5
        legacy_lock+0@liblegacy_test.so zz@libnot-loaded.so.1 legacy_lock@libm.so.6
        legacy_readonly legacy_call 1bad zz+1x,@" ;;
    FSAFE_CHURN) echo "2 auto off 0 lots" ;;
    FSAFE_WARN_MS) echo "50 0 abc" ;;
    FSAFE_LOG_FD) echo "2 1 99 abc" ;;
    *) echo "1 0 maybe" ;;
    esac
}

# The program as each interpreter prints its start-up state.
py='import os, sys, locale, signal
print(sorted((k, v) for k, v in os.environ.items() if k != "LD_PRELOAD"))
print(sys.argv, sys.flags, locale.setlocale(locale.LC_ALL), sys.getfilesystemencoding())
print(sys.stdout.encoding, sys.stdout.line_buffering, sys.stderr.line_buffering)
print([str(signal.getsignal(s)) for s in range(1, signal.NSIG) if s not in (32, 33)])
print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
print(sorted(int(f) for f in os.listdir("/proc/self/fd")))
print(os.getcwd(), os.umask(0o22))'
rb='p ENV.to_h.reject { |k, _| k == "LD_PRELOAD" }.sort
p $0, ARGV, Encoding.default_external, Encoding.default_internal, __ENCODING__
p $stdout.sync, $stderr.sync, $stdout.external_encoding
p Signal.list.values.sort.map { |s| (trap(s, "SYSTEM_DEFAULT") rescue "-") }.map(&:to_s)
p Dir.children("/proc/self/fd").map(&:to_i).sort, Dir.pwd, File.umask'

# One program run twice: without fsafe (through sh's exec, as fsafe-run runs
# it) and with it; the outputs must be identical.  $1: label, $2: how fsafe
# comes in ("preload VAR=VALUE" or "run OPTION"), rest: the command.
n=0
PATH=/usr/bin:/bin # Debian's python3 and ruby, not a pyenv shim
compare() {
    label=$1 how=$2 arg=$3
    shift 3
    n=$((n + 1))
    if [ "$how" = preload ]; then
        env -i HOME=/ PATH="$PATH" LANG=C.UTF-8 TZ=UTC "$arg" sh -c 'exec "$@"' sh "$@" \
            >"$tmp/without" 2>"$tmp/stderr.without" </dev/null
        env -i HOME=/ PATH="$PATH" LANG=C.UTF-8 TZ=UTC "$arg" LD_PRELOAD="$lib" sh -c 'exec "$@"' sh "$@" \
            >"$tmp/with" 2>"$tmp/stderr" </dev/null
    else
        env -i HOME=/ PATH="$PATH" LANG=C.UTF-8 TZ=UTC sh -c 'exec "$@"' sh "$@" \
            >"$tmp/without.raw" 2>"$tmp/stderr.without" </dev/null
        env -i HOME=/ PATH="$PATH" LANG=C.UTF-8 TZ=UTC "$run" "$arg" "$@" \
            >"$tmp/with.raw" 2>"$tmp/stderr" </dev/null
        # An option sets its FSAFE_* variable: the one difference allowed.
        grep -v "^env FSAFE_" "$tmp/without.raw" | sed "s/('FSAFE_[A-Z_]*', '[^']*'), //g;
            s/\[\"FSAFE_[A-Z_]*\", \"[^\"]*\"\], //g" >"$tmp/without"
        grep -v "^env FSAFE_" "$tmp/with.raw" | sed "s/('FSAFE_[A-Z_]*', '[^']*'), //g;
            s/\[\"FSAFE_[A-Z_]*\", \"[^\"]*\"\], //g" >"$tmp/with"
    fi
    # The one documented exception: with a report at exit asked for
    # (FSAFE_STATS, FSAFE_WARN_THREADS), libfsafe keeps a close-on-exec copy
    # of the log descriptor at 960, so that the report survives a program
    # that closes stderr (fsafe-run(1), DIAGNOSTICS).
    case $label in
    *STATS=1* | *STATS=true* | *STATS=yes* | *STATS=on* | *THREADS=1* | *THREADS=true* | \
        *THREADS=yes* | *THREADS=on* | -s | "-s "* | --stats* | --warn-threads*)
        sed -i '/^fd 960: .* fdflags 1 /d; s/, 960\]/]/' "$tmp/with" ;;
    esac
    [ -s "$tmp/without" ] || fail "$label: no output without fsafe"
    cmp -s "$tmp/without" "$tmp/with" ||
        fail "$label: the program's start-up state differs with fsafe:
$(diff "$tmp/without" "$tmp/with" | head -20)"
}

settings_each() { # $@: the command
    for v in $(settings); do
        for val in $(values "$v"); do
            compare "$v=$val" preload "$v=$val" "$@"
        done
    done
}

case $what in
settings) settings_each "$prog" a "b c" ;;
python3) settings_each python3 -c "$py" ;;
ruby) settings_each ruby -e "$rb" ;;
options)
    "$run" --help >"$tmp/help" || fail "fsafe-run --help"
    for o in $(sed -n 's/^ *\(-., \)\{0,1\}\(--[a-z-]*\).*/\2/p' "$tmp/help"); do
        case $o in
        --help | --version) continue ;;
        --warn-ms) args="--warn-ms=50" ;;
        --churn) args="--churn=2 --churn=auto" ;;
        --log-fd) args="--log-fd=2 --log-fd=1" ;;
        --locks) args="--locks=zz@libm.so.6 --locks=legacy_lock@liblegacy_test.so" ;;
        --auto-on-timeout) args="--auto-on-timeout=keep --auto-on-timeout=reset" ;;
        *) grep -q -- "$o=" "$tmp/help" && args="$o=1" || args=$o ;;
        esac
        for a in $args; do
            for cmd in "$prog a" "python3 -c" "ruby -e"; do
                case $cmd in
                python3*) compare "$a python3" run "$a" python3 -c "$py" ;;
                ruby*) compare "$a ruby" run "$a" ruby -e "$rb" ;;
                *) compare "$a" run "$a" $cmd ;;
                esac
            done
        done
    done
    ;;
*) fail "unknown case $what" ;;
esac
ok "$what: $n runs, each the same with and without fsafe"
