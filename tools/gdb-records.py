# SPDX-License-Identifier: MIT
# Prints auto mode's per-thread records of a process (libfsafe-auto.so built
# with debug info): each live record's thread id, its "inside fork()" mark
# and every hold or lock call it records, gates named by family.  In a hung
# child the records are its parent's at the fork (the forker's own is the
# child's), so they show what the fork did not wait for.
#   gdb -p PID -batch -ex 'thread apply all bt' -x tools/gdb-records.py
# Prints one summary line: records shown, holds shown.
import gdb

KINDS = {1: "mutex", 2: "rwlock", 3: "spinlock", 5: "absl", 6: "word", 7: "gate"}
STATES = {0: "held", 1: "waiting", 2: "acquiring"}


def word(v):
    return int(v)


def main():
    token = word(gdb.parse_and_eval("fsafe__at_token"))
    t = gdb.parse_and_eval("(struct fsafe__at_thread *)fsafe__at_threads")
    records = holds = 0
    print("fsafe__at_token %d (records of this process's threads carry it)" % token)
    while word(t) != 0:
        n = word(t["n"])
        in_use = word(t["in_use"])
        if n or in_use:
            records += 1
            print("record tid %d in_use %d forking %d holds %d" %
                  (word(t["tid"]), in_use, word(t["forking"]), n))
        for j in range(min(n, 48)):
            e = t["e"][j]
            lock, info = word(e["lock"]), word(e["info"])
            kind, mode, state = info & 0xff, (info >> 8) & 0xff, (info >> 16) & 0xff
            what = "%#x" % lock
            if kind == 7 and lock > 1:
                g = gdb.parse_and_eval("(struct fsafe__gate *)%d" % lock)
                what = '"%s" exclusive %d' % (g["family"].string(), word(g["exclusive"]))
            where = gdb.execute("info symbol %d" % word(e["caller"]), to_string=True).strip()
            print("  %s %s %s mode %d, called from %s" %
                  (STATES.get(state, str(state)), KINDS.get(kind, str(kind)), what, mode, where))
            holds += 1
        t = t["next"]
    print("gdb-records: %d records, %d holds" % (records, holds))


main()
