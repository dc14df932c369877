# SPDX-License-Identifier: MIT
"""CPython 3.13.1 and later: threading.Lock is a PyMutex, a byte that no
call fsafe sees changes, so a child cannot take one that a thread of the
parent held (the README's "Where fsafe cannot reach").  What fsafe can do is
say so: the child's watch (FSAFE_CHILD_WATCH_MS, src/auto/watch.c) names
the wait, which is a sem_wait in CPython's parking lot (_PySemaphore_Wait).

The parent's thread holds a threading.Lock; the main thread forks; the child
calls lock.acquire() (no timeout) with its stderr on a pipe.  The parent
reads that pipe for FSAFE_CHILD_WATCH_MS + 5 s, then kills the child.
  --expect line    exactly one line of fsafe's, naming _PySemaphore_Wait
                   and the PyMutex, and the child still waiting after it
  --expect silent  nothing on the child's stderr, the child still waiting
Exit 0 when the expectation holds, 1 otherwise, 77 (skipped) when this
interpreter's threading.Lock is not a PyMutex (before 3.13.1)."""
import argparse
import os
import select
import signal
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--expect", choices=("line", "silent"), required=True)
a = ap.parse_args()
if sys.version_info < (3, 13, 1):
    print(f"pymutex_watch: Python {sys.version.split()[0]}: threading.Lock is not a PyMutex")
    sys.exit(77)

lock = threading.Lock()
held = threading.Event()
threading.Thread(target=lambda: (lock.acquire(), held.set(), time.sleep(3600)),
                 daemon=True).start()
held.wait()
watch_s = int(os.environ.get("FSAFE_CHILD_WATCH_MS", "10000")) / 1000
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.dup2(w, 2)
    lock.acquire()
    os._exit(0)
os.close(w)
out = b""
deadline = time.monotonic() + watch_s + 5
while time.monotonic() < deadline:
    ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
    if ready:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        out += chunk
got, _ = os.waitpid(pid, os.WNOHANG)
if not got:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
text = out.decode(errors="replace")
lines = [l for l in text.splitlines() if l.startswith("fsafe[")]
print(f"pymutex_watch: child {'ended' if got else 'still waiting (killed)'}, "
      f"{len(lines)} fsafe line(s){': ' + lines[0] if lines else ''}")
if got:
    sys.exit(1)
if a.expect == "silent":
    sys.exit(0 if not text else 1)
sys.exit(0 if len(lines) == 1 and "_PySemaphore_Wait" in lines[0] and "PyMutex" in lines[0]
         else 1)
