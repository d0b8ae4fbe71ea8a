#!/usr/bin/env python3
"""Remote deliveries per second from a full queue: qmail-send + qmail-remote beside Postfix's
smtp client, both delivering the same load to the same sink, measured in the same run.

usage: bench/remote.py PROGRAMDIR [MESSAGES]

Needs root: it installs a multi-user sqmail instance (qmail's accounts; qmail-remote runs as
qmailr) and private Postfix instances (their own config_directory and queue_directory).
MESSAGES (10000) messages of 4 KiB, one recipient each, are queued while the system is
stopped; the system is then started and timed from its start command until its queue is
empty, and its log must show every message sent. Both run with 20 parallel deliveries
(qmail's concurrencyremote default; Postfix's default_destination_concurrency_limit set to
match). Two sinks:
  plain     Postfix's smtp-sink on a loopback port;
  STARTTLS  a private Postfix smtpd with a self-signed certificate that hands every
            message to its discard transport (smtp-sink has no TLS); both clients use
            opportunistic STARTTLS without verifying the certificate (tlsdestinations
            `*:`; smtp_tls_security_level=may).
The systems alternate within every round, ROUNDS rounds; medians and the ratio
sqmail/Postfix are printed, with the CPU per message of each sender's process tree
(utime+stime+cutime+cstime from /proc).
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from common import PostfixInstance, free_port, run, tree_cpu, wait_listening

ROUNDS = 3
CONCURRENCY = 20
DOMAIN = "sink.example"
SENDER = "bench@bench.example"
RCPT = "user@" + DOMAIN
BODY = b"Subject: bench\n\n" + (b"x" * 63 + b"\n") * 64


class SmtpSink:
    def __init__(self, top):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "127.0.0.1:%d" % self.port, "1000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, "smtp-sink")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None


class TlsSink:
    """Postfix's smtpd with STARTTLS; every message goes to the discard transport."""

    def __init__(self, top):
        self.port = free_port()
        key, cert = os.path.join(top, "sink.key"), os.path.join(top, "sink.pem")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=sink.example", "-keyout", key, "-out", cert])
        self.pf = PostfixInstance(os.path.join(top, "tlssink"), [
            "myhostname=sink.example",
            "mydestination=",
            "mynetworks=127.0.0.0/8",
            "smtpd_tls_cert_file=" + cert,
            "smtpd_tls_key_file=" + key,
            "smtpd_tls_security_level=may",
            "smtpd_peername_lookup=no",
            "default_transport=discard",
            "relay_transport=discard",
        ], "127.0.0.1:%d  inet  n  -  n  -  100  smtpd\n" % self.port)

    def start(self):
        self.pf.start()
        wait_listening(self.port, "the TLS sink")

    def stop(self):
        self.pf.stop()


class Sqmail:
    name = "sqmail"

    def __init__(self, programs, top):
        self.home = os.path.join(top, "qmail")
        self.log = os.path.join(top, "qmail-send.log")
        run([os.path.join(programs, "sqmail-setup"), "-m", "bench.example", "-p", programs,
             self.home])
        with open(os.path.join(self.home, "control", "concurrencyremote"), "w") as f:
            f.write("%d\n" % CONCURRENCY)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QMAILHOME": self.home}
        self.proc = None

    def route(self, port, tls):
        with open(os.path.join(self.home, "control", "smtproutes"), "w") as f:
            f.write("%s:127.0.0.1;%d\n" % (DOMAIN, port))
        with open(os.path.join(self.home, "control", "tlsdestinations"), "w") as f:
            f.write("*:\n" if tls else "")

    def inject(self, n):
        cmd = [os.path.join(self.home, "bin", "qmail-inject"), "-f", SENDER, RCPT]
        for _ in range(n):
            subprocess.run(cmd, input=BODY, env=self.env, check=True)

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([os.path.join(self.home, "bin", "qmail-start"), "./Maildir/"],
                                     env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd="/")
        out.close()
        return self.proc.pid

    def root(self):
        return self.proc.pid

    def queued(self):
        n = 0
        for sub in os.listdir(os.path.join(self.home, "queue", "mess")):
            n += len(os.listdir(os.path.join(self.home, "queue", "mess", sub)))
        return n

    def sent(self):
        try:
            with open(self.log, "rb") as f:
                return len(re.findall(rb"delivery \d+: success", f.read()))
        except FileNotFoundError:
            return 0

    def stop(self):
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class Postfix:
    name = "Postfix"

    def __init__(self, top):
        self.top = top
        self.pf = None

    def route(self, port, tls):
        if self.pf:
            shutil.rmtree(os.path.join(self.top, "postfix"), ignore_errors=True)
        self.pf = PostfixInstance(os.path.join(self.top, "postfix"), [
            "myhostname=bench.example",
            "mydestination=",
            "relayhost=[127.0.0.1]:%d" % port,
            "default_destination_concurrency_limit=%d" % CONCURRENCY,
            "smtp_tls_security_level=" + ("may" if tls else "none"),
            "smtp_dns_support_level=disabled",
        ])

    def inject(self, n):
        cmd = ["/usr/sbin/sendmail", "-C", self.pf.conf, "-i", "-f", SENDER, RCPT]
        for _ in range(n):
            # postdrop warns that pickup is not running yet; the message is in maildrop/.
            subprocess.run(cmd, input=BODY, env=self.pf.env, check=True,
                           stderr=subprocess.DEVNULL)

    def start(self):
        return self.pf.start()

    def root(self):
        return self.pf.pid

    def queued(self):
        return self.pf.queued()

    def sent(self):
        try:
            with open(self.pf.log, "rb") as f:
                return len(re.findall(rb" status=sent ", f.read()))
        except FileNotFoundError:
            return 0

    def stop(self):
        self.pf.stop()


def deliver(system, n):
    """Queue n while stopped, start, time until the queue is empty: (msg/s, CPU/msg)."""
    system.inject(n)
    before = system.sent()
    t0 = time.monotonic()
    system.start()
    deadline = t0 + 1800
    while system.queued():
        if time.monotonic() > deadline:
            raise SystemExit("%s: %d still queued after 30 minutes" % (system.name, system.queued()))
        time.sleep(0.05)
    t1 = time.monotonic()
    time.sleep(0.5)
    cpu = tree_cpu(system.root())
    system.stop()
    got = system.sent() - before
    if got != n:
        raise SystemExit("%s: %d of %d messages sent" % (system.name, got, n))
    return n / (t1 - t0), cpu / n


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if os.geteuid() != 0:
        raise SystemExit("bench/remote.py needs root: it installs qmail's accounts and runs Postfix")
    for prog in ("postfix", "postconf", "smtp-sink", "openssl"):
        if shutil.which(prog) is None:
            raise SystemExit("%s is missing: apt-get install postfix openssl" % prog)
    programs = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
    os.makedirs(root, exist_ok=True)
    top = tempfile.mkdtemp(prefix="bench-remote-", dir=root)
    os.chmod(top, 0o755)
    sinks, systems = [], []
    try:
        sinks = [("plain", SmtpSink(top), False), ("STARTTLS", TlsSink(top), True)]
        systems = [Sqmail(programs, top), Postfix(top)]
        res = {}
        for label, sink, tls in sinks:
            sink.start()
            try:
                for r in range(ROUNDS):
                    order = systems if r % 2 == 0 else systems[::-1]
                    for s in order:
                        s.route(sink.port, tls)
                        rate, cpu = deliver(s, n)
                        res.setdefault((label, s.name), []).append((rate, cpu))
                        print("round %d %s %s: %.0f msg/s, %.2f ms CPU/msg"
                              % (r + 1, label, s.name, rate, cpu * 1e3), flush=True)
            finally:
                sink.stop()
        print()
        print("remote delivery from a full queue of %d messages of 4 KiB, %d parallel "
              "deliveries, medians of %d rounds (sqmail/Postfix ratio):" % (n, CONCURRENCY, ROUNDS))
        for label, _, _ in sinks:
            q = [x for x in res[(label, "sqmail")]]
            p = [x for x in res[(label, "Postfix")]]
            qr, pr = statistics.median(x[0] for x in q), statistics.median(x[0] for x in p)
            qc, pc = statistics.median(x[1] for x in q), statistics.median(x[1] for x in p)
            print("  %-8s sqmail %.0f msg/s, Postfix %.0f msg/s, ratio %.2f; CPU/msg sqmail "
                  "%.2f ms, Postfix %.2f ms" % (label, qr, pr, qr / pr, qc * 1e3, pc * 1e3))
    finally:
        for s in systems:
            try:
                if s.name == "sqmail" and s.proc:
                    s.stop()
                elif s.name == "Postfix" and s.pf and s.pf.pid:
                    s.stop()
            except (OSError, SystemExit):
                pass
        for _, sink, _ in sinks:
            try:
                sink.stop()
            except (OSError, SystemExit):
                pass
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
