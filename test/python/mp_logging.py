# SPDX-License-Identifier: MIT
"""issue 15's program: multiprocessing with the fork start method while one
thread logs to a file in a loop and (with --getaddrinfo) another calls
socket.getaddrinfo('localhost', 80) in a loop.  Each worker logs one line
through the same handler (the file's BufferedWriter lock) and, with
--getaddrinfo, resolves localhost too (glibc's NSS/resolver locks).
Workers start one at a time; one still alive after --timeout seconds is hung
and is killed.  --expect ok: no worker may hang; --expect hang: at least
--min-hung of them must.  Exit 0 when the expectation holds, 1 otherwise."""
import argparse
import logging
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--expect", choices=("ok", "hang"), required=True)
ap.add_argument("--workers", type=int, default=50)
ap.add_argument("--timeout", type=float, default=3.0)
ap.add_argument("--min-hung", type=int, default=0,
                help="with --expect hang: hung workers needed (default: more than half)")
ap.add_argument("--getaddrinfo", action="store_true")
a = ap.parse_args()

log = logging.getLogger("mp_logging")


def worker(resolve):
    log.info("worker %d", os.getpid())
    if resolve:
        socket.getaddrinfo("localhost", 80)


def main():
    fd, path = tempfile.mkstemp(prefix="fsafe-mp-logging-", suffix=".log")
    os.close(fd)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    stop = threading.Event()

    def logger():
        n = 0
        while not stop.is_set():
            log.info("background line %d %s", n, "x" * 200)
            n += 1

    def resolver():
        while not stop.is_set():
            socket.getaddrinfo("localhost", 80)

    # Warm up first: a module that another thread is importing at the fork
    # (the idna codec, on the first getaddrinfo) stays owned by that thread
    # in importlib's own bookkeeping, and the child's import of it waits
    # forever.  No lock fsafe could free is involved; README says so.
    log.info("start")
    if a.getaddrinfo:
        socket.getaddrinfo("localhost", 80)
    threads = [threading.Thread(target=logger, daemon=True)]
    if a.getaddrinfo:
        threads.append(threading.Thread(target=resolver, daemon=True))
    for t in threads:
        t.start()

    ctx = mp.get_context("fork")
    hung = failed = 0
    for _ in range(a.workers):
        p = ctx.Process(target=worker, args=(a.getaddrinfo,))
        p.start()
        p.join(a.timeout)
        if p.is_alive():
            hung += 1
            p.kill()
            p.join()
        elif p.exitcode != 0:
            failed += 1
    stop.set()
    for t in threads:
        t.join()
    handler.close()
    os.unlink(path)

    what = "logging + getaddrinfo" if a.getaddrinfo else "logging"
    print(f"mp_logging ({what}): {hung} of {a.workers} workers hung and were killed, "
          f"{failed} failed (expect {a.expect})")
    if failed:
        return 1
    if a.expect == "ok":
        return 0 if hung == 0 else 1
    need = a.min_hung or a.workers // 2 + 1
    return 0 if hung >= need else 1


if __name__ == "__main__":
    sys.exit(main())
