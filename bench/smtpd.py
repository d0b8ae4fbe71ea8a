#!/usr/bin/env python3
"""Messages accepted per second over SMTP: tcpserver + qmail-smtpd + qmail-queue beside
Postfix's smtpd, with Postfix's smtp-source as the client, measured in the same run.

usage: bench/smtpd.py PROGRAMDIR [MESSAGES]

Needs root: it installs a multi-user sqmail instance (qmail's accounts; qmail-smtpd runs as
qmaild under our tcpserver, qmail-queue setuid qmailq) and a private Postfix instance (its
own config_directory and queue_directory; one smtpd service on a loopback port). Neither
system delivers while it is measured: qmail-send is not started (messages stay in
queue/todo) and Postfix's smtpd puts every message on hold (messages stay in hold/), so both
figures are the rate at which mail is accepted and made safe on disk. Neither server looks
up the client's name. tcpserver gets a listen backlog of 100 (-b 100): with ucspi-tcp's
default of 20, fifty clients connecting at once lose SYNs and wait for their retransmission.

For 1, 10 and 50 sessions, MESSAGES (20000) messages of 4 KiB, one recipient each, are sent
by `smtp-source -s SESSIONS -m MESSAGES -l 4096`; the systems alternate within every round,
ROUNDS rounds. Printed: medians of messages per second and the ratio sqmail/Postfix; CPU per
message of the server's process tree (utime+stime+cutime+cstime from /proc, so the
qmail-smtpd and qmail-queue children reaped by tcpserver count); fsyncs per second the disk
allows (write 4 KiB + fsync + rename); and the memory (PSS) each idle session costs, from
50 sessions held open after EHLO.
"""

import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from inject import fsync_rate  # the physical limit, the same loop as bench/inject.py
from common import PostfixInstance, free_port, pss_kib, run, tree, tree_cpu, wait_listening

ROUNDS = 3
SESSIONS = (1, 10, 50)
IDLE = 50
DOMAIN = "bench.example"
SENDER = "bench@" + DOMAIN
RCPT = "user@" + DOMAIN


class Sqmail:
    name = "sqmail"

    def __init__(self, programs, scratch):
        self.home = os.path.join(scratch, "qmail")
        run([os.path.join(programs, "sqmail-setup"), "-m", DOMAIN, "-p", programs, self.home])
        with open(os.path.join(self.home, "control", "rcpthosts"), "w") as f:
            f.write(DOMAIN + "\n")
        self.tcpserver = os.path.join(programs, "tcpserver")
        self.port = free_port()
        self.proc = None

    def start(self):
        qmaild = pwd.getpwnam("qmaild")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QMAILHOME": self.home}
        self.proc = subprocess.Popen(
            [self.tcpserver, "-H", "-R", "-l", "0", "-c", "100", "-b", "100",
             "-u", str(qmaild.pw_uid), "-g", str(qmaild.pw_gid),
             "127.0.0.1", str(self.port), os.path.join(self.home, "bin", "qmail-smtpd")],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd="/")
        wait_listening(self.port, "tcpserver")
        return self.proc.pid

    def root(self):
        return self.proc.pid

    def stop(self):
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def queued(self):
        return sum(len(fs) for _, _, fs in os.walk(os.path.join(self.home, "queue", "todo")))

    def clear(self):
        q = os.path.join(self.home, "queue")
        for d in ("mess", "todo", "intd", "info", "local", "remote"):
            for top, _, files in os.walk(os.path.join(q, d)):
                for f in files:
                    os.unlink(os.path.join(top, f))


class Postfix:
    name = "Postfix"

    def __init__(self, scratch):
        self.port = free_port()
        self.pf = PostfixInstance(os.path.join(scratch, "postfix"), [
            "myhostname=" + DOMAIN,
            "mydomain=" + DOMAIN,
            "myorigin=" + DOMAIN,
            "mydestination=" + DOMAIN,
            "local_recipient_maps=",
            "mynetworks=127.0.0.0/8",
            "smtpd_peername_lookup=no",
            "smtpd_client_restrictions=check_client_access static:HOLD",
        ], "127.0.0.1:%d  inet  n  -  n  -  -  smtpd\n" % self.port)
        self.pid = None

    def start(self):
        self.pid = self.pf.start()
        wait_listening(self.port, "Postfix smtpd")
        return self.pid

    def root(self):
        return self.pid

    def stop(self):
        self.pf.stop()
        self.pid = None

    def queued(self):
        return sum(len(fs) for _, _, fs in os.walk(os.path.join(self.pf.spool, "hold")))

    def clear(self):
        for d in ("incoming", "active", "deferred", "maildrop", "hold"):
            for top, _, files in os.walk(os.path.join(self.pf.spool, d)):
                for f in files:
                    os.unlink(os.path.join(top, f))


def accept(system, sessions, n):
    """n messages over `sessions` sessions: (msg/s, CPU seconds per message)."""
    system.clear()
    system.start()
    cpu0 = tree_cpu(system.root())
    t0 = time.monotonic()
    r = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(n), "-l", "4096",
                        "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % system.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t1 = time.monotonic()
    time.sleep(0.3)
    cpu = tree_cpu(system.root()) - cpu0
    got = system.queued()
    system.stop()
    if r.returncode != 0 or got < n:
        raise SystemExit("%s: smtp-source exited %d, %d of %d queued:\n%s"
                         % (system.name, r.returncode, got, n, r.stdout.decode(errors="replace")))
    return n / (t1 - t0), cpu / n


def idle_memory(system):
    """PSS in KiB per idle session (connected, greeted, EHLO answered)."""
    system.start()
    time.sleep(0.3)
    base = pss_kib(tree(system.root()))
    conns = []
    for _ in range(IDLE):
        c = socket.create_connection(("127.0.0.1", system.port), timeout=10)
        c.recv(4096)
        c.sendall(b"EHLO bench.example\r\n")
        got = b""
        while b"\r\n250 " not in got and not got.startswith(b"250 "):
            got += c.recv(4096)
        conns.append(c)
    time.sleep(0.5)
    loaded = pss_kib(tree(system.root()))
    for c in conns:
        c.close()
    system.stop()
    return (loaded - base) / IDLE


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if os.geteuid() != 0:
        raise SystemExit("bench/smtpd.py needs root: it installs qmail's accounts and runs Postfix")
    for prog in ("postfix", "postconf", "smtp-source"):
        if shutil.which(prog) is None:
            raise SystemExit("%s is missing: apt-get install postfix" % prog)
    programs = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
    os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="bench-smtpd-", dir=root)
    os.chmod(scratch, 0o755)
    systems = []
    try:
        systems = [Sqmail(programs, scratch), Postfix(scratch)]
        res = {(s.name, k): [] for s in systems for k in SESSIONS}
        cpu = {(s.name, k): [] for s in systems for k in SESSIONS}
        fs = []
        for r in range(ROUNDS):
            fs.append(fsync_rate(scratch))
            for k in SESSIONS:
                order = systems if (r + k) % 2 == 0 else systems[::-1]
                for s in order:
                    rate, c = accept(s, k, n)
                    res[(s.name, k)].append(rate)
                    cpu[(s.name, k)].append(c)
                    print("round %d %s %d sessions: %.0f msg/s, %.2f ms CPU/msg"
                          % (r + 1, s.name, k, rate, c * 1e3), flush=True)
        mem = {s.name: idle_memory(s) for s in systems}
        print()
        print("disk: %.0f fsyncs/s (write 4 KiB + fsync + rename), median of %d"
              % (statistics.median(fs), len(fs)))
        print("SMTP accept rate, %d messages of 4 KiB per run, smtp-source, medians of %d rounds:"
              % (n, ROUNDS))
        for k in SESSIONS:
            q = statistics.median(res[("sqmail", k)])
            p = statistics.median(res[("Postfix", k)])
            qc = statistics.median(cpu[("sqmail", k)])
            pc = statistics.median(cpu[("Postfix", k)])
            print("  %2d sessions: sqmail %.0f msg/s, Postfix %.0f msg/s, ratio %.2f; "
                  "CPU/msg sqmail %.2f ms, Postfix %.2f ms" % (k, q, p, q / p, qc * 1e3, pc * 1e3))
        print("memory per idle session (PSS after EHLO, %d sessions): sqmail %.0f KiB, "
              "Postfix %.0f KiB" % (IDLE, mem["sqmail"], mem["Postfix"]))
    finally:
        for s in systems:
            try:
                if (s.name == "sqmail" and s.proc) or (s.name == "Postfix" and s.pid):
                    s.stop()
            except (OSError, SystemExit):
                pass
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
