# SPDX-License-Identifier: MIT
# Forks from a multithreaded CPython; the child uses stdio and exits 5.
import os, sys, threading
ev = threading.Event()
t = threading.Thread(target=ev.wait, daemon=True)
t.start()
print("start", flush=True)
pid = os.fork()
if pid == 0:
    print("child", flush=True)
    os._exit(5)
_, st = os.waitpid(pid, 0)
print("child status", os.waitstatus_to_exitcode(st))
ev.set()
sys.exit(4)
