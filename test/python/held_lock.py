# SPDX-License-Identifier: MIT
"""A Python-level lock that another thread holds at os.fork(): can the child
take it?  One behaviour per --what:
  lock      a threading.Lock (CPython 3.11: a POSIX semaphore; from 3.13.1
            a PyMutex, out of reach: --expect ok exits 77, skipped)
  rlock     a threading.RLock (the C RLock; its inner lock is a semaphore)
  buffered  the lock of a BufferedWriter whose owner thread is blocked in
            write(2) on a full pipe (the lock of every buffered file object)
Each child tries for --child-timeout seconds and exits 0 if it got the lock
(the buffered case: if its write returned), 3 if not.  The parent also
kills a child that is still running after --kill-after seconds (a hang).
--expect ok: every child succeeds; --expect hang: none does.
Exit 0 when the expectation holds, 1 otherwise."""
import argparse
import os
import signal
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--what", choices=("lock", "rlock", "buffered"), required=True)
ap.add_argument("--expect", choices=("ok", "hang"), required=True)
ap.add_argument("--forks", type=int, default=10)
ap.add_argument("--child-timeout", type=float, default=1.0)
ap.add_argument("--kill-after", type=float, default=5.0)
a = ap.parse_args()
# CPython 3.13.1 made threading.Lock a PyMutex, 3.14 RLock too: out of
# fsafe's reach (sem.python.pymutex_watch shows what fsafe says instead).
pymutex = {"lock": (3, 13, 1), "rlock": (3, 14)}.get(a.what)
if a.expect == "ok" and pymutex and sys.version_info >= pymutex:
    print(f"held_lock {a.what}: Python {sys.version.split()[0]}: a PyMutex, which fsafe cannot "
          "reach (sem.python.pymutex_watch)")
    sys.exit(77)

held = threading.Event()
stop = threading.Event()

if a.what in ("lock", "rlock"):
    lock = threading.Lock() if a.what == "lock" else threading.RLock()

    def holder():
        with lock:
            held.set()
            stop.wait()

    def in_child():
        return lock.acquire(timeout=a.child_timeout)
else:
    r, w = os.pipe()
    f = os.fdopen(w, "wb", buffering=1 << 16)

    def holder():
        held.set()
        try:
            # Larger than the pipe and the buffer: blocks in write(2) with the
            # buffered object's lock held (and the GIL released).
            f.write(b"x" * (4 << 20))
        except (BrokenPipeError, OSError, ValueError):
            pass

    def in_child():
        # A write that fits the buffer takes the lock and returns at once.
        # Without the lock, the child would block; the alarm ends that.
        signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
        signal.setitimer(signal.ITIMER_REAL, a.child_timeout)
        f.write(b"y")
        signal.setitimer(signal.ITIMER_REAL, 0)
        return True

t = threading.Thread(target=holder, daemon=True)
t.start()
held.wait()
time.sleep(0.2)  # the holder is inside its critical section (or blocked in write)

ok = hung = failed = 0
for _ in range(a.forks):
    pid = os.fork()
    if pid == 0:
        try:
            code = 0 if in_child() else 3
        except BaseException:
            code = 4
        os._exit(code)
    deadline = time.monotonic() + a.kill_after
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = None
            break
        time.sleep(0.01)
    if status is None:
        hung += 1
    elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        ok += 1
    else:
        failed += 1

print(f"held_lock {a.what}: {ok} of {a.forks} children took it, {failed} could not, "
      f"{hung} killed (expect {a.expect})")
stop.set()
good = ok == a.forks if a.expect == "ok" else ok == 0
sys.exit(0 if good else 1)
