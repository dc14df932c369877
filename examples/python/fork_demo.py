# SPDX-License-Identifier: MIT
"""Forks repeatedly with os.fork(), alternately from the main thread and from a
threading.Thread, while the fsafe_demo extension's native thread keeps taking
its lock.  Callbacks registered with os.register_at_fork take the same lock
(before: in the parent; after_in_child: in the child; after_in_parent) and
count their calls, which must be exactly one of each per fork.  The child then
takes the lock again.  Every child is waited for with a timeout and its exit
status checked.

  /usr/bin/python3 fork_demo.py EXTDIR --expect ok|hang --fsafe absent|preload|linked [--forks N]

ok: every child completes.  hang: at least one child forked from each kind of
thread hangs (forking stops once both have).
"""
import errno
import os
import signal
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import fsafe_demo  # noqa: E402

CHILD_HUNG, CHILD_BAD_CALLBACKS, KILLED = 3, 4, 124
TAKE_MS = 1000


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


opts = dict(zip(sys.argv[2::2], sys.argv[3::2]))
expect, how, forks = opts.get("--expect"), opts.get("--fsafe"), int(opts.get("--forks", 10))
if expect not in ("ok", "hang") or how not in ("absent", "preload", "linked"):
    fail(__doc__)

# ---- os.register_at_fork callbacks: counted per fork --------------------------
calls = {}
took = {}


def before():
    calls["before"] = calls.get("before", 0) + 1
    # Taking the lock here synchronises with the worker: the fork that follows
    # then finds the lock free, and the child would not show the hang.  So the
    # demonstration without fsafe does not take it before forking.
    if how != "absent":
        took["before"] = fsafe_demo.take(TAKE_MS)


def after_in_parent():
    calls["parent"] = calls.get("parent", 0) + 1
    took["parent"] = fsafe_demo.take(TAKE_MS)


def after_in_child():
    calls["child"] = calls.get("child", 0) + 1
    took["child"] = fsafe_demo.take(TAKE_MS)


os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


def child_main():
    # In the child: the callbacks ran before (in the parent) and after_in_child.
    try:
        if calls != {"before": 1, "child": 1}:
            os.write(2, ("child saw callbacks %r\n" % calls).encode())
            os._exit(CHILD_BAD_CALLBACKS)
        if not took["child"] or not fsafe_demo.take(TAKE_MS):
            os._exit(CHILD_HUNG)
        os._exit(0)
    finally:
        os._exit(1)


def do_fork(out):
    pid = os.fork()
    if pid == 0:
        child_main()
    out.append(pid)


def wait_child(pid, timeout):
    """Exit status of pid, 128+signal, or KILLED after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r, st = os.waitpid(pid, os.WNOHANG)
        if r == pid:
            return os.waitstatus_to_exitcode(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return KILLED
        time.sleep(0.005)


want_reg = errno.ENOSYS if how == "absent" else 0
if fsafe_demo.registration() != want_reg:
    fail("registration returned %d, expected %d" % (fsafe_demo.registration(), want_reg))
if fsafe_demo.LINKED != (how == "linked"):
    fail("extension LINKED=%s with --fsafe %s" % (fsafe_demo.LINKED, how))

fsafe_demo.start()
time.sleep(0.02)

done = hung = 0
hung_from = {}
for i in range(forks):
    origin = "main thread" if i % 2 == 0 else "threading.Thread"
    calls.clear()
    took.clear()
    out = []
    if i % 2 == 0:
        do_fork(out)
    else:
        t = threading.Thread(target=do_fork, args=(out,))
        t.start()
        t.join()
    # In the parent: before and after_in_parent once each, both took the lock.
    # The callbacks that took the lock (before() does not without fsafe).
    takers = ["parent"] if how == "absent" else ["before", "parent"]
    if calls != {"before": 1, "parent": 1} or not all(took.get(k) for k in takers):
        fail("fork %d: parent saw callbacks %r, lock taken %r" % (i, calls, took))
    st = wait_child(out[0], 5)
    if st == 0:
        done += 1
    elif st in (CHILD_HUNG, KILLED):
        hung += 1
        hung_from[origin] = hung_from.get(origin, 0) + 1
    else:
        fail("child %d (forked from the %s) ended with status %d" % (i, origin, st))
    print("child %d forked from the %s: %s" % (i, origin, "completed" if st == 0 else "HUNG"))
    if expect == "hang" and len(hung_from) == 2:
        break

stats = fsafe_demo.stats()
print("children completed: %d, hung: %d; fsafe stats (forks, forks_via_handler): %r"
      % (done, hung, stats))
if how == "absent" and stats is not None:
    fail("fsafe stats present without fsafe")
if how == "preload" and stats != (forks, 0):
    # Preloaded libfsafe comes before libc, so os.fork()'s fork() is fsafe's.
    fail("expected %d forks, none via the atfork handler" % forks)
if how == "linked" and stats != (forks, forks):
    # libfsafe arrived with the extension, after python bound fork() to libc:
    # every fork reached fsafe through its pthread_atfork prepare handler.
    fail("expected %d forks, all via the atfork handler" % forks)
if expect == "ok" and hung:
    fail("expected every child to complete")
if expect == "hang" and len(hung_from) < 2:
    fail("expected children forked from both threads to hang without fsafe, got %r" % hung_from)
print("OK")
