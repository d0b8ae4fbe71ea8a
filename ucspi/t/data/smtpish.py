#!/usr/bin/env python3
"""A tiny line-based SMTP-ish server for sslserver tests: it offers STARTTLS through the
UCSPI-TLS hand-off (SSLCTLFD/SSLREADFD/SSLWRITEFD) and logs every command it executes to
stderr. With BYTEWISE=1 it reads the plaintext socket one byte at a time, so bytes the client
pipelined after STARTTLS stay in the kernel for the TLS engine to see."""
import os, sys

rfd, wfd = 0, 1
buf = b""
tls = False

def log(s):
    sys.stderr.write("cmd: " + s + "\n"); sys.stderr.flush()

def out(s):
    os.write(wfd, s.encode() + b"\r\n")

def readline():
    global buf
    while b"\n" not in buf:
        n = 1 if (os.environ.get("BYTEWISE") and not tls) else 4096
        d = os.read(rfd, n)
        if not d:
            return None
        buf += d
    line, buf = buf.split(b"\n", 1)
    return line.rstrip(b"\r").decode("latin-1")

out("220 smtpish ready")
indata = False
while True:
    l = readline()
    if l is None:
        break
    if indata:
        if l == ".":
            indata = False
            out("250 ok")
        continue
    log(l)
    verb = l.split(" ")[0].upper()
    if verb in ("EHLO", "HELO"):
        ext = [] if tls or "SSLCTLFD" not in os.environ else ["STARTTLS"]
        lines = ["smtpish"] + ext
        for i, x in enumerate(lines):
            out(("250 " if i == len(lines) - 1 else "250-") + x)
    elif verb == "STARTTLS" and not tls and "SSLCTLFD" in os.environ:
        out("220 Ready to start TLS")
        ctl = int(os.environ["SSLCTLFD"])
        os.write(ctl, b"Y")
        block = b""
        while not (block.endswith(b"\0\0") or block == b"\0"):
            d = os.read(ctl, 8192)
            if not d:
                sys.exit(111)
            block += d
        for e in block.split(b"\0"):
            if b"=" in e:
                k, v = e.split(b"=", 1)
                os.environ[k.decode()] = v.decode("latin-1")
        rfd, wfd = int(os.environ["SSLREADFD"]), int(os.environ["SSLWRITEFD"])
        buf = b""   # discard plaintext read before the hand-off
        tls = True
    elif verb == "ENV":
        out("250 " + " ".join("%s=%s" % (k, os.environ.get(k, "-")) for k in l.split(" ")[1:]))
    elif verb == "DATA":
        indata = True
        out("354 go ahead")
    elif verb == "QUIT":
        out("221 bye")
        break
    else:
        out("250 ok")
