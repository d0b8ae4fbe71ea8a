#!/usr/bin/env python3
"""Local deliveries per second to a Maildir: sqmail beside Postfix and the disk's fsync rate.

usage: bench/local.py PROGRAMDIR [BULK_MESSAGES [STREAM_MESSAGES]]

Needs root: it installs a multi-user sqmail instance (qmail's accounts, qmail-lspawn running
qmail-local as the recipient) and a private Postfix instance (its own config_directory and
queue_directory, no inet services, nothing on port 25), and creates the local account
`sqmailbench` whose home, under a scratch directory on the checkout's file system, holds the
Maildir both systems deliver to (qmail: `qmail-start ./Maildir/` with qmail-getpw; Postfix:
`home_mailbox = Maildir/`). Messages are 4 KiB. Each system runs with its shipped concurrency
(qmail concurrencylocal 10; Postfix local_destination_concurrency_limit 2 per recipient).

Two tests, the systems alternating within every round:
  bulk    BULK_MESSAGES (10000) are queued while the system is stopped (qmail-inject |
          qmail-queue into queue/todo; Postfix sendmail | postdrop into maildrop/), then the
          system is started and timed from its start command until the Maildir holds them
          all. ROUNDS_BULK rounds.
  stream  with the system running, STREAM_MESSAGES (3000) are injected as fast as two
          parallel injectors go; timed from the first injection to the last delivery, so
          the figure is the sustained rate at which mail gets through. ROUNDS rounds.
The physical limit, write 4 KiB + fsync + rename in a loop, is measured in every round.

CPU per message: the daemons' process tree is read from /proc before the system stops:
for every process in it, utime + stime + cutime + cstime (a process's cutime/cstime hold
the children it has reaped, such as qmail-local under qmail-lspawn or Postfix's services
under master, so nothing is counted twice). The tree is rooted at qmail-start's pid (which
becomes qmail-send) and at Postfix's master pid. The injectors (qmail-inject with its
qmail-queue; Postfix's sendmail with its postdrop) are counted with getrusage(
RUSAGE_CHILDREN) of this script around the injection. In the bulk test the daemon figure
for Postfix includes pickup and cleanup writing its queue files, work qmail-queue did at
injection, so the bulk CPU is given both ways. Prints medians and ratios (sqmail / Postfix).
"""

import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from common import run, tree_cpu
from inject import fsync_rate  # the same physical-limit loop as bench/inject.py

ROUNDS = 3
ROUNDS_BULK = 3
USER = "sqmailbench"
DOMAIN = "bench.example"
RCPT = USER + "@" + DOMAIN
SENDER = "bench@" + DOMAIN
BODY = b"Subject: bench\n\n" + (b"x" * 63 + b"\n") * 64


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def count_new(maildir):
    try:
        return sum(1 for _ in os.scandir(os.path.join(maildir, "new")))
    except FileNotFoundError:
        return 0


def wait_count(maildir, n, what, timeout=900):
    deadline = time.monotonic() + timeout
    while True:
        if count_new(maildir) >= n:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise SystemExit("%s: only %d of %d delivered after %d s" % (what, count_new(maildir), n, timeout))
        time.sleep(0.05)


def empty_maildir(maildir):
    for d in ("new", "cur", "tmp"):
        p = os.path.join(maildir, d)
        for f in os.listdir(p):
            os.unlink(os.path.join(p, f))


def inject(cmd, env, count, parallel):
    """Runs `cmd` count times with the message on stdin; returns (seconds, CPU seconds)."""
    def one(_):
        r = subprocess.run(cmd, input=BODY, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise SystemExit("%s exited %d: %s" % (cmd[0], r.returncode, r.stderr.decode(errors="replace")))

    cpu0, t0 = children_cpu(), time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as ex:
        list(ex.map(one, range(count)))
    return time.monotonic() - t0, children_cpu() - cpu0


class Sqmail:
    name = "sqmail"

    def __init__(self, programs, scratch, maildir):
        self.home = os.path.join(scratch, "qmail")
        self.maildir = maildir
        self.log = os.path.join(scratch, "qmail-send.log")
        run([os.path.join(programs, "sqmail-setup"), "-m", DOMAIN, "-p", programs, self.home])
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QMAILHOME": self.home}
        self.proc = None

    def inject(self, count, parallel):
        return inject([os.path.join(self.home, "bin", "qmail-inject"), "-f", SENDER, RCPT],
                      self.env, count, parallel)

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([os.path.join(self.home, "bin", "qmail-start"), "./Maildir/"],
                                     env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd="/")
        out.close()
        return self.proc.pid

    def wait_ready(self):
        deadline = time.monotonic() + 20
        while True:
            with open(self.log, "rb") as f:
                if b"status: local" in f.read():
                    return
            if time.monotonic() > deadline:
                raise SystemExit("qmail-send did not start")
            time.sleep(0.02)

    def root(self):
        return self.proc.pid

    def stop(self):
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def queued(self):
        n = 0
        for sub in os.listdir(os.path.join(self.home, "queue", "mess")):
            n += len(os.listdir(os.path.join(self.home, "queue", "mess", sub)))
        return n

    def wait_queue_empty(self):
        deadline = time.monotonic() + 60
        while self.queued() and time.monotonic() < deadline:
            time.sleep(0.05)


class Postfix:
    name = "Postfix"

    def __init__(self, scratch, maildir):
        self.conf = os.path.join(scratch, "postfix-etc")
        self.spool = os.path.join(scratch, "postfix-spool")
        self.data = os.path.join(scratch, "postfix-data")
        self.maildir = maildir
        os.makedirs(self.conf)
        for d in (self.spool, self.data):
            os.makedirs(d)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, -1)
        # Debian's master.cf, every service out of chroot (the private queue directory has
        # no copy of /etc) and no inet service at all.
        lines = []
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                fields = line.split()
                if line[:1] not in ("#", " ", "\t", "\n") and len(fields) >= 8:
                    if fields[1] == "inet":
                        continue
                    if fields[4] == "y":
                        fields[4] = "n"
                    line = "  ".join(fields) + "\n"
                lines.append(line)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.writelines(lines)
        open(os.path.join(self.conf, "main.cf"), "w").close()
        settings = [
            "compatibility_level=3.6",
            "config_directory=" + self.conf,
            "queue_directory=" + self.spool,
            "data_directory=" + self.data,
            "mail_owner=postfix",
            "setgid_group=postdrop",
            "myhostname=" + DOMAIN,
            "mydomain=" + DOMAIN,
            "myorigin=" + DOMAIN,
            "mydestination=" + DOMAIN + ", localhost",
            "inet_interfaces=loopback-only",
            "inet_protocols=ipv4",
            "master_service_disable=inet",
            "home_mailbox=Maildir/",
            "alias_maps=",
            "alias_database=",
            "biff=no",
            "maillog_file=" + os.path.join(scratch, "postfix.log"),
            "maillog_file_prefixes=" + scratch,
        ]
        run(["postconf", "-c", self.conf, "-e"] + settings)
        run(["postfix", "-c", self.conf, "check"])
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MAIL_CONFIG": self.conf}
        self.pid = None

    def inject(self, count, parallel):
        return inject(["/usr/sbin/sendmail", "-C", self.conf, "-i", "-f", SENDER, RCPT],
                      self.env, count, parallel)

    def start(self):
        run(["postfix", "-c", self.conf, "start"], env=self.env)
        with open(os.path.join(self.spool, "pid", "master.pid")) as f:
            self.pid = int(f.read().split()[0])
        return self.pid

    def wait_ready(self):
        pass

    def root(self):
        return self.pid

    def stop(self):
        run(["postfix", "-c", self.conf, "stop"], env=self.env)
        deadline = time.monotonic() + 60
        while os.path.exists("/proc/%d" % self.pid):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.05)
        self.pid = None

    def queued(self):
        n = 0
        for d in ("maildrop", "incoming", "active", "deferred"):
            for _, _, files in os.walk(os.path.join(self.spool, d)):
                n += len(files)
        return n

    def wait_queue_empty(self):
        deadline = time.monotonic() + 60
        while self.queued() and time.monotonic() < deadline:
            time.sleep(0.05)


def bulk(system, n):
    """Queue n while stopped, start, time until delivered: (msg/s, daemon CPU/msg, inject CPU/msg)."""
    empty_maildir(system.maildir)
    _, icpu = system.inject(n, 4)
    t0 = time.monotonic()
    system.start()
    t1 = wait_count(system.maildir, n, system.name + " bulk")
    time.sleep(0.3)
    cpu = tree_cpu(system.root())
    system.stop()
    return n / (t1 - t0), cpu / n, icpu / n


def stream(system, n):
    """With the system running, inject n as fast as 2 injectors go: (msg/s, CPU/msg)."""
    empty_maildir(system.maildir)
    system.start()
    system.wait_ready()
    time.sleep(0.5)
    cpu0 = tree_cpu(system.root())
    t0 = time.monotonic()
    _, icpu = system.inject(n, 2)
    t1 = wait_count(system.maildir, n, system.name + " stream")
    system.wait_queue_empty()
    time.sleep(0.3)
    cpu = tree_cpu(system.root()) - cpu0
    system.stop()
    return n / (t1 - t0), (cpu + icpu) / n


def account(home):
    try:
        pwd.getpwnam(USER)
        run(["usermod", "--home", home, USER])
    except KeyError:
        run(["useradd", "--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", USER])
    a = pwd.getpwnam(USER)
    os.makedirs(home)
    maildir = os.path.join(home, "Maildir")
    for d in ("", "new", "cur", "tmp"):
        p = os.path.join(maildir, d)
        os.makedirs(p, exist_ok=True)
        os.chown(p, a.pw_uid, a.pw_gid)
        os.chmod(p, 0o700)
    os.chown(home, a.pw_uid, a.pw_gid)
    os.chmod(home, 0o755)
    return maildir


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if os.geteuid() != 0:
        raise SystemExit("bench/local.py needs root: it installs qmail's accounts and runs Postfix")
    for prog in ("postfix", "postconf"):
        if shutil.which(prog) is None:
            raise SystemExit("Postfix is missing: apt-get install postfix")
    programs = os.path.abspath(sys.argv[1])
    nbulk = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    nstream = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
    os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="bench-local-", dir=root)
    os.chmod(scratch, 0o755)
    systems = []
    try:
        maildir = account(os.path.join(scratch, "home"))
        q = Sqmail(programs, scratch, maildir)
        p = Postfix(scratch, maildir)
        systems = [q, p]
        fs = []
        res = {s.name: {"bulk": [], "bcpu": [], "icpu": [], "stream": [], "scpu": []} for s in systems}
        for r in range(max(ROUNDS, ROUNDS_BULK)):
            order = systems if r % 2 == 0 else systems[::-1]
            fs.append(fsync_rate(scratch))
            for s in order:
                if r < ROUNDS_BULK:
                    rate, dcpu, icpu = bulk(s, nbulk)
                    res[s.name]["bulk"].append(rate)
                    res[s.name]["bcpu"].append(dcpu)
                    res[s.name]["icpu"].append(icpu)
                    print("round %d %s bulk %d: %.0f msg/s" % (r + 1, s.name, nbulk, rate), flush=True)
                if r < ROUNDS:
                    rate, cpu = stream(s, nstream)
                    res[s.name]["stream"].append(rate)
                    res[s.name]["scpu"].append(cpu)
                    print("round %d %s stream %d: %.0f msg/s" % (r + 1, s.name, nstream, rate), flush=True)
        med = {s: {k: statistics.median(v) for k, v in d.items()} for s, d in res.items()}
        f = statistics.median(fs)
        print()
        print("disk: %.0f fsyncs/s (write 4 KiB + fsync + rename), median of %d" % (f, len(fs)))
        print("local delivery to a Maildir, 4 KiB messages, medians (sqmail/Postfix ratio):")
        qs, ps = med["sqmail"], med["Postfix"]
        print("  bulk, %d queued then started (%d rounds): sqmail %.0f msg/s, Postfix %.0f msg/s, ratio %.2f"
              % (nbulk, ROUNDS_BULK, qs["bulk"], ps["bulk"], qs["bulk"] / ps["bulk"]))
        print("    the disk's fsyncs per second divided by that rate: sqmail %.1f, Postfix %.1f"
              % (f / qs["bulk"], f / ps["bulk"]))
        print("    CPU per message, daemons: sqmail %.2f ms, Postfix %.2f ms (includes pickup+cleanup)"
              % (qs["bcpu"] * 1e3, ps["bcpu"] * 1e3))
        print("    CPU per message, daemons + injection: sqmail %.2f ms, Postfix %.2f ms, ratio %.2f"
              % ((qs["bcpu"] + qs["icpu"]) * 1e3, (ps["bcpu"] + ps["icpu"]) * 1e3,
                 (qs["bcpu"] + qs["icpu"]) / (ps["bcpu"] + ps["icpu"])))
        print("  stream, %d injected by 2 injectors while delivering (%d rounds): sqmail %.0f msg/s, "
              "Postfix %.0f msg/s, ratio %.2f" % (nstream, ROUNDS, qs["stream"], ps["stream"],
                                                  qs["stream"] / ps["stream"]))
        print("    CPU per message, daemons + injection: sqmail %.2f ms, Postfix %.2f ms, ratio %.2f"
              % (qs["scpu"] * 1e3, ps["scpu"] * 1e3, qs["scpu"] / ps["scpu"]))
        print("CPU: utime+stime+cutime+cstime of the daemons' process tree from /proc, plus "
              "getrusage(RUSAGE_CHILDREN) of the injectors")
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
