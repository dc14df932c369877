# SPDX-License-Identifier: MIT
# later.py DIR ok|hang: imports fsafe_lockext from DIR (loaded only now, by
# dlopen), starts its worker and forks while the worker holds the mutex; the
# child takes it.  "ok": the child must finish; "hang": it must time out.
import os, sys, time
sys.path.insert(0, sys.argv[1])
expect = sys.argv[2]
before = [l for l in open("/proc/self/maps") if "fsafe_lockext" in l]
assert not before, "the extension was loaded before the import"
import fsafe_lockext
fsafe_lockext.start(1000)
pid = os.fork()
if pid == 0:
    fsafe_lockext.take()
    os._exit(0)
deadline = time.monotonic() + 4
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.02)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    if expect == "hang":
        print("child hung on lockext_mutex, as expected")
        sys.exit(0)
    sys.exit("FAIL: the child hung on lockext_mutex")
if expect == "hang":
    sys.exit("FAIL: the child finished; expected it to hang")
if status != 0:
    sys.exit("FAIL: child status %d" % status)
print("child took lockext_mutex")
