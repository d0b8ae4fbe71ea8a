#!/usr/bin/env python3
"""Injection rate of qmail-inject | qmail-queue beside the disk's own fsync rate.

usage: bench/inject.py PROGRAMDIR [MESSAGES]

Builds a private single-user instance on the same file system as the checkout, then
alternates, ROUNDS times:
  * the physical limit: write 4 KiB, fsync, rename, in a loop (fsyncs per second);
  * qmail-inject of a 4 KiB message, one at a time, and two at a time.
qmail-queue makes four fsyncs per message (message, envelope, and two directories), so the
limit for it is a quarter of the fsync rate. Prints medians and the ratio to that limit.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROUNDS = 3
FSYNCS_PER_MESSAGE = 4


def fsync_rate(directory, seconds=2.0):
    data = b"x" * 4096
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        tmp = os.path.join(directory, "f.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, os.path.join(directory, "f"))
        n += 1
    return n / (time.monotonic() - start)


def inject_rate(home, count, parallel):
    env = dict(os.environ, QMAILHOME=home)
    body = b"Subject: bench\n\n" + (b"x" * 63 + b"\n") * 64
    prog = os.path.join(home, "bin", "qmail-inject")

    def one(i):
        r = subprocess.run([prog, "-f", "bench@localhost", "bench%d@localhost" % i],
                           input=body, env=env)
        if r.returncode != 0:
            raise SystemExit("qmail-inject exited %d" % r.returncode)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as ex:
        list(ex.map(one, range(count)))
    return count / (time.monotonic() - start)


def clear_queue(home):
    q = os.path.join(home, "queue")
    for d in ("mess", "intd", "todo"):
        for sub in os.listdir(os.path.join(q, d)):
            p = os.path.join(q, d, sub)
            for f in os.listdir(p):
                os.unlink(os.path.join(p, f))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    programs = os.path.abspath(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
    os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="bench-inject-", dir=root)
    os.chmod(scratch, 0o755)  # the queue's account must reach the instance
    try:
        home = os.path.join(scratch, "qmail")
        subprocess.run([os.path.join(programs, "sqmail-setup"), "-s", "-l", "-m", "localhost",
                        "-p", programs, home], check=True, stderr=subprocess.DEVNULL)
        fs, one, two = [], [], []
        for _ in range(ROUNDS):
            fs.append(fsync_rate(scratch))
            one.append(inject_rate(home, count, 1))
            clear_queue(home)
            two.append(inject_rate(home, count, 2))
            clear_queue(home)
        limit = statistics.median(fs) / FSYNCS_PER_MESSAGE
        print("disk: %.0f fsyncs/s (write 4 KiB + fsync + rename), median of %d"
              % (statistics.median(fs), ROUNDS))
        print("limit for qmail-queue (%d fsyncs per message): %.0f msg/s" % (FSYNCS_PER_MESSAGE, limit))
        for name, rates in (("1 at a time", one), ("2 at a time", two)):
            m = statistics.median(rates)
            print("qmail-inject | qmail-queue, 4 KiB, %s: %.0f msg/s  ratio to limit %.2f"
                  % (name, m, m / limit))
        print("target: ratio >= 0.70")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
