#!/usr/bin/env python3
"""Connections per second, latency and memory per idle connection of our tcpserver beside
Debian's (DJB's ucspi-tcp 0.88), measured in the same run.

usage: bench/tcpserver.py PROGRAMDIR [ROUNDS]

Both servers listen on 127.0.0.1 (port chosen by the system, read through -1) and run a
trivial program (/bin/echo), first with options that need no DNS (-R -H -l 0 -c 200), then
(when a DNS stub can listen on port 53 of 127.83.83.83, which needs root) with the client's
name looked up (-R -l 0 -c 200), which makes each connection wait for a child of its own.
The two servers alternate, ROUNDS times:
  * throughput: 8 client threads open connections and read to end of file for 3 seconds;
  * latency: one client, 300 connections one after another, connect to end of file;
  * memory: 100 idle connections to a server running cat; the proportional set size (PSS)
    of the server and all its children, less the same with no connection, per connection.
Prints medians and the ratios ours/theirs (throughput above 1 and latency below 1 mean
ours is faster).
"""

import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from common import pss_kib, tree

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
THREADS = 8
SECONDS = 3.0
SEQUENTIAL = 300
IDLE = 100
OPTS = ["-R", "-H", "-l", "0", "-c", "200"]
# With a DNS lookup of the client's name (answered NXDOMAIN by a stub on port 53 of a
# loopback address), each connection needs a child of its own before the program runs.
LOOKUP_OPTS = ["-R", "-l", "0", "-c", "200"]
DNS_IP = "127.83.83.83"
DNS_STUB = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((%r, 53))
print("ready", flush=True)
while True:
    q, a = s.recvfrom(512)
    end = 12
    while q[end]:
        end += q[end] + 1
    r = bytearray(q[:end + 5])
    r[2] = 0x81
    r[3] = 0x83
    s.sendto(bytes(r), a)
""" % DNS_IP

opts = OPTS


def start(binary, prog):
    env = dict(os.environ, DNSCACHEIP=DNS_IP)
    p = subprocess.Popen([binary, "-1"] + opts + ["127.0.0.1", "0"] + prog,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env=env)
    port = int(p.stdout.readline())
    return p, port


def stop(p):
    p.kill()
    p.wait()


def once(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    while s.recv(4096):
        pass
    s.close()


def throughput(binary):
    p, port = start(binary, ["/bin/echo", "ok"])
    count = [0] * THREADS
    stop_at = time.monotonic() + SECONDS

    def worker(i):
        while time.monotonic() < stop_at:
            once(port)
            count[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = sum(count) / (time.monotonic() - begin)
    stop(p)
    return rate


def latency(binary):
    p, port = start(binary, ["/bin/echo", "ok"])
    once(port)
    samples = []
    for _ in range(SEQUENTIAL):
        t = time.perf_counter()
        once(port)
        samples.append(time.perf_counter() - t)
    stop(p)
    return statistics.median(samples) * 1e6


def memory(binary):
    p, port = start(binary, ["cat"])
    time.sleep(0.2)
    base = pss_kib(tree(p.pid))
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(IDLE)]
    deadline = time.monotonic() + 20
    while len(tree(p.pid)) < IDLE + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    loaded = pss_kib(tree(p.pid))
    parent = pss_kib([p.pid])
    for c in conns:
        c.close()
    stop(p)
    return (loaded - base) / IDLE, parent


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    ours = os.path.join(sys.argv[1], "tcpserver")
    theirs = "/usr/bin/tcpserver"
    for b in (ours, theirs):
        if not os.access(b, os.X_OK):
            raise SystemExit("missing %s (ours: make build; theirs: apt-get install ucspi-tcp)" % b)
    global opts
    stub = None
    try:
        stub = subprocess.Popen([sys.executable, "-c", DNS_STUB], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        if stub.stdout.readline().strip() != b"ready":
            stub = None
    except OSError:
        stub = None
    scenarios = [("-R -H -l 0", OPTS, True)]
    if stub:
        scenarios.append(("-R -l 0, client name looked up", LOOKUP_OPTS, False))
    else:
        print("no DNS stub on %s:53 (needs root): skipping the lookup scenario" % DNS_IP)
    try:
        for label, o_, with_memory in scenarios:
            opts = o_
            run(label, ours, theirs, with_memory)
    finally:
        if stub:
            stub.kill()
            stub.wait()


def run(label, ours, theirs, with_memory):
    results = {"ours": {"rate": [], "lat": [], "mem": [], "parent": []},
               "theirs": {"rate": [], "lat": [], "mem": [], "parent": []}}
    for r in range(ROUNDS):
        order = [("ours", ours), ("theirs", theirs)]
        if r % 2:
            order.reverse()
        for name, b in order:
            results[name]["rate"].append(throughput(b))
            results[name]["lat"].append(latency(b))
            if with_memory:
                per, parent = memory(b)
                results[name]["mem"].append(per)
                results[name]["parent"].append(parent)
        print("%s, round %d: ours %.0f conn/s %.0f us, theirs %.0f conn/s %.0f us" % (
            label, r + 1, results["ours"]["rate"][-1], results["ours"]["lat"][-1],
            results["theirs"]["rate"][-1], results["theirs"]["lat"][-1]), flush=True)
    med = {n: {k: statistics.median(v) if v else 0 for k, v in d.items()}
           for n, d in results.items()}
    o, t = med["ours"], med["theirs"]
    print()
    print("tcpserver %s running /bin/echo, %d rounds, medians (ours / Debian's ucspi-tcp 0.88):"
          % (label, ROUNDS))
    print("  connections per second (%d clients): %8.0f / %8.0f   ratio %.2f" % (
        THREADS, o["rate"], t["rate"], o["rate"] / t["rate"]))
    print("  latency, connect to EOF (us):        %8.0f / %8.0f   ratio %.2f" % (
        o["lat"], t["lat"], o["lat"] / t["lat"]))
    if with_memory:
        print("  memory per idle connection (KiB PSS): %7.0f / %8.0f   ratio %.2f" % (
            o["mem"], t["mem"], o["mem"] / t["mem"] if t["mem"] else float("nan")))
        print("  listening process (KiB PSS):          %7.0f / %8.0f" % (
            o["parent"], t["parent"]))
    print()


if __name__ == "__main__":
    main()
