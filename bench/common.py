"""What the benchmarks share: running commands, CPU and memory of a process tree from /proc,
loopback ports, and private Postfix instances (own config and queue directories, loopback
only) to measure against."""

import os
import pwd
import signal
import socket
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if r.returncode != 0:
        raise SystemExit("%s exited %d:\n%s" % (cmd[0], r.returncode, r.stdout.decode(errors="replace")))
    return r.stdout



def tree_cpu(root):
    """Seconds of CPU of the process tree under (and including) pid `root`, from /proc."""
    stats = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rfind(")") + 2:].split()
        # state ppid ... utime(14) stime(15) cutime(16) cstime(17), counted from pid as 1
        stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    total, todo, seen = 0, [root], set()
    while todo:
        p = todo.pop()
        if p in seen or p not in stats:
            continue
        seen.add(p)
        total += stats[p][1]
        todo.extend(c for c, (pp, _) in stats.items() if pp == p)
    return total / TICK



def tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out



def pss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total



def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port



def wait_listening(port, what):
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("%s does not listen on port %d" % (what, port))
            time.sleep(0.05)



def master_cf(extra):
    """Debian's master.cf with every service out of chroot, no inet service, plus `extra`."""
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
    return "".join(lines) + extra



class PostfixInstance:
    """A private Postfix under `top` with the given main.cf settings and extra master lines."""

    def __init__(self, top, settings, extra_master=""):
        self.conf = os.path.join(top, "etc")
        self.spool = os.path.join(top, "spool")
        self.data = os.path.join(top, "data")
        self.log = os.path.join(top, "maillog")
        for d in (self.conf, self.spool, self.data):
            os.makedirs(d)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, -1)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(master_cf(extra_master))
        open(os.path.join(self.conf, "main.cf"), "w").close()
        base = [
            "compatibility_level=3.6",
            "config_directory=" + self.conf,
            "queue_directory=" + self.spool,
            "data_directory=" + self.data,
            "mail_owner=postfix",
            "setgid_group=postdrop",
            "inet_interfaces=loopback-only",
            "inet_protocols=ipv4",
            "alias_maps=",
            "alias_database=",
            "biff=no",
            "maillog_file=" + self.log,
            "maillog_file_prefixes=" + top,
        ]
        run(["postconf", "-c", self.conf, "-e"] + base + settings)
        run(["postfix", "-c", self.conf, "check"])
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MAIL_CONFIG": self.conf}
        self.pid = None

    def start(self):
        run(["postfix", "-c", self.conf, "start"], env=self.env)
        with open(os.path.join(self.spool, "pid", "master.pid")) as f:
            self.pid = int(f.read().split()[0])
        return self.pid

    def stop(self):
        if self.pid is None:
            return
        run(["postfix", "-c", self.conf, "stop"], env=self.env)
        deadline = time.monotonic() + 60
        while os.path.exists("/proc/%d" % self.pid):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.05)
        self.pid = None

    def queued(self):
        n = 0
        for d in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.spool, d)):
                n += len(files)
        return n

