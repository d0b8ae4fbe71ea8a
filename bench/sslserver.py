#!/usr/bin/env python3
"""TLS 1.3 handshakes per second and handshake latency: sslserver (one engine process and
one program per connection) against `openssl s_server` (one process, no fork), measured in
the same run, alternating, on loopback.

Usage: bench/sslserver.py [RELEASE_DIR] [SECONDS_PER_ROUND]

A client thread connects, completes the handshake, reads the first byte the server sends
(sslserver's program writes one; s_server is given none, so for it the handshake alone is
timed), and closes. Latency is connect-to-handshake-done; the rate is handshakes per second
with 1 and with 4 concurrent clients. Medians of 3 rounds are printed with the ratio
sslserver / s_server."""
import os, socket, ssl, statistics, subprocess, sys, tempfile, threading, time

RELEASE = sys.argv[1] if len(sys.argv) > 1 else "target/release"
SECS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
ROUNDS = 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_certs(d):
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in ("ca.key", "ca.pem", "k.pem", "c.csr", "c.pem"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=bench CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = os.path.join(d, "ext")
    open(ext, "w").write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start on %d" % port)


def client(ctx, port, read_byte, stop, lat, counter):
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    lat.append(time.perf_counter() - t0)
                    if read_byte:
                        s.recv(1)
                    counter.append(1)
        except OSError:
            pass


def measure(ctx, port, read_byte, conc):
    lat, counter = [], []
    stop = time.monotonic() + SECS
    ts = [threading.Thread(target=client, args=(ctx, port, read_byte, stop, lat, counter)) for _ in range(conc)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(counter) / (time.monotonic() - start), statistics.median(lat) * 1000 if lat else float("nan")


def main():
    d = tempfile.mkdtemp(prefix="bench-ssl-")
    ca, crt, key = make_certs(d)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sp, op = free_port(), free_port()
    env = dict(os.environ, CERTFILE=crt, KEYFILE=key)
    ours = subprocess.Popen([os.path.join(RELEASE, "sslserver"), "-H", "-l", "0", "-c", "100",
                             "127.0.0.1", str(sp), "sh", "-c", "printf x"],
                            env=env, stderr=subprocess.DEVNULL)
    theirs = subprocess.Popen(["openssl", "s_server", "-accept", str(op), "-cert", crt, "-key", key,
                               "-tls1_3", "-quiet", "-no_ticket"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(sp)
        wait_port(op)
        results = {}
        for conc in (1, 4):
            for name, port, rb in (("sslserver", sp, True), ("openssl s_server", op, False)):
                results[(name, conc)] = []
            for _ in range(ROUNDS):
                for name, port, rb in (("sslserver", sp, True), ("openssl s_server", op, False)):
                    results[(name, conc)].append(measure(ctx, port, rb, conc))
        print("TLS 1.3 handshakes, ECDSA P-256, loopback, %d rounds of %.0f s, medians" % (ROUNDS, SECS))
        print("%-18s %5s %12s %14s" % ("server", "conc", "handshakes/s", "latency ms"))
        for conc in (1, 4):
            for name in ("sslserver", "openssl s_server"):
                r = results[(name, conc)]
                print("%-18s %5d %12.0f %14.2f" % (name, conc, statistics.median(x[0] for x in r),
                                                   statistics.median(x[1] for x in r)))
            o = results[("sslserver", conc)]
            t = results[("openssl s_server", conc)]
            print("%-18s %5d %12.2f %14.2f" % ("ratio ours/theirs", conc,
                                               statistics.median(x[0] for x in o) / statistics.median(x[0] for x in t),
                                               statistics.median(x[1] for x in o) / statistics.median(x[1] for x in t)))
    finally:
        for p in (ours, theirs):
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
