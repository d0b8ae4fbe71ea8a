//! sslserver and sslclient against real TLS peers: openssl s_client/s_server, Python's ssl
//! module and swaks. Certificates come from a test CA made with rcgen per test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

const SSLSERVER: &str = env!("CARGO_BIN_EXE_sslserver");
const SSLCLIENT: &str = env!("CARGO_BIN_EXE_sslclient");

fn smtpish() -> String {
    format!("{}/t/data/smtpish.py", env!("CARGO_MANIFEST_DIR"))
}

static N: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory with a test CA, a server certificate for localhost/127.0.0.1,
/// a client certificate from the same CA and one from a CA nobody trusts.
struct Pki {
    dir: PathBuf,
}

fn leaf(issuer: &Issuer<'_, KeyPair>, cn: &str, sans: Vec<SanType>, dir: &Path, name: &str) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Test Org");
    p.subject_alt_names = sans;
    let c = p.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), c.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn ca(dir: &Path, name: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let c = p.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), c.pem()).unwrap();
    Issuer::new(p, key)
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "ucspi-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca1 = ca(&dir, "ca");
        let ca2 = ca(&dir, "otherca");
        leaf(
            &ca1,
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
            ],
            &dir,
            "server",
        );
        leaf(
            &ca1,
            "dnsonly.test",
            vec![SanType::DnsName("dnsonly.test".try_into().unwrap())],
            &dir,
            "dnsonly",
        );
        leaf(&ca1, "client.test", vec![], &dir, "client");
        leaf(&ca2, "intruder.test", vec![], &dir, "intruder");
        Pki { dir }
    }
    fn p(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An sslserver on 127.0.0.1 at a port it picked (`-1`), killed by pid on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(pki: &Pki, opts: &[&str], env: &[(&str, &str)], prog: &[&str]) -> Server {
        let log = pki
            .dir
            .join(format!("server{}.log", N.fetch_add(1, Ordering::SeqCst)));
        let mut cmd = Command::new(SSLSERVER);
        cmd.args(["-1", "-H", "-l", "0"])
            .args(opts)
            .args(["127.0.0.1", "0"])
            .args(prog)
            .env("CERTFILE", pki.p("server.pem"))
            .env("KEYFILE", pki.p("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "no port: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Server { child, port, log }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("peer program missing: install the test packages");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
        // Keep stdin open a moment so the peer reads the replies before seeing EOF.
        std::thread::sleep(Duration::from_millis(700));
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn python(script: &str, args: &[&str]) -> Output {
    run(
        Command::new("python3").arg("-c").arg(script).args(args),
        b"",
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const SH_ECHO: &str = "echo \"hello $SSL_PROTOCOL $SSL_CIPHER\"; read l; echo \"got $l\"";

#[test]
fn implicit_tls_with_openssl_s_client() {
    let pki = Pki::new();
    let s = Server::start(&pki, &["-s"], &[], &["sh", "-c", SH_ECHO]);
    let o = run(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &s.addr(),
            "-CAfile",
            &pki.p("ca.pem"),
            "-verify_return_error",
            "-servername",
            "localhost",
            "-quiet",
        ]),
        b"ping\n",
    );
    let t = text(&o);
    assert!(t.contains("hello TLSv1.3 TLS_"), "{t}\n{}", s.log());
    assert!(t.contains("got ping"), "{t}");
}

const PY_CLIENT: &str = r#"
import socket, ssl, sys
port, ca, maxv, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
if maxv == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if cert != "-":
    ctx.load_cert_chain(cert, key)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            f = s.makefile("rwb")
            f.write(b"x\n"); f.flush()
            print("PEER", s.version(), s.cipher()[0])
            print(f.read().decode())
except Exception as e:
    print("FAILED", type(e).__name__, e)
"#;

const ENV_VARS: &str = "for v in SSL_PROTOCOL SSL_SESSION_ID SSL_CIPHER SSL_CIPHER_USEKEYSIZE SSL_CIPHER_ALGKEYSIZE \
SSL_CLIENT_S_DN SSL_CLIENT_I_DN SSL_CLIENT_VERIFY SSL_SERVER_S_DN PROTO SSLREMOTEIP TCPREMOTEIP \
TCPLOCALPORT; do eval \"echo $v=\\${$v-unset}\"; done; read x";

#[test]
fn python_ssl_sees_the_ssl_environment_for_tls13_and_tls12() {
    let pki = Pki::new();
    let s = Server::start(&pki, &["-s", "-e"], &[], &["sh", "-c", ENV_VARS]);
    let port = s.port.to_string();
    let o = python(PY_CLIENT, &[&port, &pki.p("ca.pem"), "1.3", "-", "-"]);
    let t = text(&o);
    assert!(t.contains("PEER TLSv1.3"), "{t}");
    for want in [
        "SSL_PROTOCOL=TLSv1.3",
        "SSL_CIPHER_USEKEYSIZE=",
        "SSL_CLIENT_VERIFY=NONE",
        "SSL_CLIENT_S_DN=unset",
        "SSL_SERVER_S_DN=/CN=localhost/O=Test Org",
        "PROTO=TCP",
        "SSLREMOTEIP=127.0.0.1",
        "TCPREMOTEIP=127.0.0.1",
        &format!("TCPLOCALPORT={port}"),
    ] {
        assert!(t.contains(want), "missing {want}: {t}");
    }
    let id = t
        .lines()
        .find_map(|l| l.strip_prefix("SSL_SESSION_ID="))
        .unwrap_or_default();
    assert!(
        id.len() == 64
            && id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{t}"
    );
    let o = python(PY_CLIENT, &[&port, &pki.p("ca.pem"), "1.2", "-", "-"]);
    let t = text(&o);
    assert!(t.contains("PEER TLSv1.2 ECDHE-ECDSA-"), "{t}");
    assert!(t.contains("SSL_PROTOCOL=TLSv1.2"), "{t}");
    assert!(t.contains("SSL_CIPHER=ECDHE-ECDSA-"), "{t}");
}

#[test]
fn client_certificates_are_verified_against_the_ca() {
    let pki = Pki::new();
    let ca = pki.p("ca.pem");
    let s = Server::start(
        &pki,
        &["-s", "-m"],
        &[("CAFILE", &ca)],
        &["sh", "-c", ENV_VARS],
    );
    let port = s.port.to_string();
    let good = python(
        PY_CLIENT,
        &[
            &port,
            &ca,
            "1.3",
            &pki.p("client.pem"),
            &pki.p("client.key"),
        ],
    );
    let t = text(&good);
    assert!(
        t.contains("SSL_CLIENT_S_DN=/CN=client.test/O=Test Org"),
        "{t}\n{}",
        s.log()
    );
    assert!(t.contains("SSL_CLIENT_I_DN=/CN=ca CA"), "{t}");
    assert!(t.contains("SSL_CLIENT_VERIFY=SUCCESS"), "{t}");
    for (cert, key) in [("-", "-"), ("intruder.pem", "intruder.key")] {
        let (c, k) = if cert == "-" {
            ("-".into(), "-".into())
        } else {
            (pki.p(cert), pki.p(key))
        };
        let bad = python(PY_CLIENT, &[&port, &ca, "1.3", &c, &k]);
        let t = text(&bad);
        assert!(!t.contains("SSL_CLIENT_VERIFY"), "{cert}: program ran: {t}");
    }
    assert!(s.log().contains("dropping SSL connection"), "{}", s.log());
}

fn starttls_server(pki: &Pki, env: &[(&str, &str)]) -> Server {
    let mut e = vec![("UCSPITLS", "")];
    e.extend_from_slice(env);
    Server::start(pki, &["-n", "-s", "-e"], &e, &["python3", &smtpish()])
}

#[test]
fn starttls_hand_off_with_openssl_s_client() {
    let pki = Pki::new();
    let s = starttls_server(&pki, &[]);
    let o = run(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &s.addr(),
            "-starttls",
            "smtp",
            "-CAfile",
            &pki.p("ca.pem"),
            "-verify_return_error",
            "-quiet",
        ]),
        b"EHLO again\r\nENV SSL_PROTOCOL SSL_CIPHER PROTO\r\nQUIT\r\n",
    );
    let t = text(&o);
    assert!(
        t.contains("250 SSL_PROTOCOL=TLSv1.3 SSL_CIPHER=TLS_"),
        "{t}\n{}",
        s.log()
    );
    assert!(t.contains("PROTO=TCP"), "{t}");
    assert!(t.contains("221 bye"), "{t}");
    let log = s.log();
    assert!(log.contains("cmd: STARTTLS"), "{log}");
    assert!(log.contains("cmd: EHLO again"), "{log}");
}

#[test]
fn swaks_starttls_and_implicit_tls() {
    let pki = Pki::new();
    let s = starttls_server(&pki, &[]);
    let o = run(
        Command::new("swaks").args([
            "--server",
            "127.0.0.1",
            "--port",
            &s.port.to_string(),
            "--tls",
            "--to",
            "a@example.test",
            "--from",
            "b@example.test",
            "--tls-verify",
            "--tls-ca-path",
            &pki.p("ca.pem"),
        ]),
        b"",
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}\n{}", s.log());
    assert!(t.contains("TLS started"), "{t}");
    let implicit = Server::start(&pki, &["-s"], &[], &["python3", &smtpish()]);
    let o = run(
        Command::new("swaks").args([
            "--server",
            "127.0.0.1",
            "--port",
            &implicit.port.to_string(),
            "--tlsc",
            "--to",
            "a@example.test",
            "--from",
            "b@example.test",
        ]),
        b"",
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}\n{}", implicit.log());
    assert!(t.contains("221 bye"), "{t}");
}

const PIPELINE: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO x\r\n")
while True:
    l = f.readline()
    if l.startswith(b"250 "): break
raw.sendall(b"STARTTLS\r\nNOOP injected\r\n")
print("REPLY", f.readline().decode().strip())
ctx = ssl.create_default_context(cafile=ca)
try:
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"EHLO y\r\nQUIT\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d: break
        data += d
    print("TLS", data.decode().replace("\r\n", "|"))
except Exception as e:
    print("HANDSHAKE FAILED", type(e).__name__)
"#;

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let pki = Pki::new();
    // The program read the injected command along with STARTTLS: it must drop it.
    let s = starttls_server(&pki, &[]);
    let t = text(&python(PIPELINE, &[&s.port.to_string(), &pki.p("ca.pem")]));
    assert!(t.contains("REPLY 220 Ready to start TLS"), "{t}");
    assert!(
        t.contains("TLS 220") || t.contains("TLS 250"),
        "{t}\n{}",
        s.log()
    );
    assert!(
        !t.contains("TLS 250 ok"),
        "the injected NOOP was answered inside TLS: {t}"
    );
    // The injected command is still in the socket when TLS starts: the engine must refuse.
    let s2 = starttls_server(&pki, &[("BYTEWISE", "1")]);
    let t = text(&python(PIPELINE, &[&s2.port.to_string(), &pki.p("ca.pem")]));
    assert!(t.contains("HANDSHAKE FAILED"), "{t}");
    std::thread::sleep(Duration::from_millis(300));
    for log in [s.log(), s2.log()] {
        assert!(!log.contains("cmd: NOOP injected"), "{log}");
    }
    assert!(s2.log().contains("dropping SSL connection"), "{}", s2.log());
}

fn still_serves(s: &Server, pki: &Pki) {
    let t = text(&python(
        PY_CLIENT,
        &[&s.port.to_string(), &pki.p("ca.pem"), "1.3", "-", "-"],
    ));
    assert!(
        t.contains("PEER TLSv1.3"),
        "server stopped serving: {t}\n{}",
        s.log()
    );
}

#[test]
fn garbage_truncated_handshakes_and_renegotiation_end_only_that_connection() {
    let pki = Pki::new();
    let s = Server::start(&pki, &["-T", "2"], &[], &["sh", "-c", SH_ECHO]);
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("hello"), "{buf:?}");
    still_serves(&s, &pki);
    // A ClientHello cut short, then silence: the handshake timeout ends it.
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    still_serves(&s, &pki);
    // Renegotiation (TLS 1.2, `R` in s_client's interactive mode) is refused.
    let o = run(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &s.addr(),
            "-tls1_2",
            "-CAfile",
            &pki.p("ca.pem"),
        ]),
        b"R\n",
    );
    let t = text(&o);
    assert!(t.contains("RENEGOTIATING"), "{t}");
    assert!(!t.contains("got R"), "{t}");
    still_serves(&s, &pki);
    assert!(s.log().contains("dropping SSL connection"), "{}", s.log());
}

#[test]
fn rules_can_deny_and_set_variables() {
    let pki = Pki::new();
    let rules = pki.p("rules.cdb");
    for (text_rules, expect_ran) in [
        ("127.0.0.1:deny\n", false),
        ("127.:allow,GREETING=\"hi there\"\n", true),
    ] {
        let o = Command::new("tcprules")
            .args([&rules, &pki.p("rules.tmp")])
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(text_rules.as_bytes())?;
                c.wait()
            })
            .expect("Debian's tcprules (package ucspi-tcp)");
        assert!(o.success());
        let s = Server::start(
            &pki,
            &["-x", &rules],
            &[],
            &["sh", "-c", "echo \"$GREETING\"; read x"],
        );
        let t = text(&python(
            PY_CLIENT,
            &[&s.port.to_string(), &pki.p("ca.pem"), "1.3", "-", "-"],
        ));
        assert_eq!(t.contains("hi there"), expect_ran, "{t}\n{}", s.log());
    }
}

const PY_SERVER: &str = r#"
import socket, ssl, sys
cert, key, ca, need = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
names = [None]
ctx.sni_callback = lambda sock, name, c: names.append(name)
if need == "1":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(5)
print(srv.getsockname()[1], flush=True)
srv.settimeout(20)
while True:
    try:
        c, _ = srv.accept()
    except Exception:
        break
    try:
        s = ctx.wrap_socket(c, server_side=True)
        peer = s.getpeercert()
        who = dict(x[0] for x in peer["subject"])["commonName"] if peer else "nobody"
        s.sendall(("hello " + who + " sni=" + str(names[-1]) + "\n").encode())
        s.sendall(b"echo " + s.recv(100))
        s.unwrap()
    except Exception as e:
        print("server:", type(e).__name__, e, file=sys.stderr, flush=True)
"#;

struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(pki: &Pki, cert: &str, need_client: bool) -> PyServer {
        let mut child = Command::new("python3")
            .args([
                "-c",
                PY_SERVER,
                &pki.p(&format!("{cert}.pem")),
                &pki.p(&format!("{cert}.key")),
                &pki.p("ca.pem"),
            ])
            .arg(if need_client { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        PyServer {
            child,
            port: line.trim().parse().unwrap(),
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FD67: &str = "read l <&6; echo \"$l $SSL_PROTOCOL\"; echo ping >&7; read m <&6; echo \"$m\"";

fn sslclient(args: &[&str], host: &str, port: u16) -> Output {
    run(
        Command::new(SSLCLIENT)
            .args(args)
            .args([host, &port.to_string(), "sh", "-c", FD67]),
        b"",
    )
}

#[test]
fn sslclient_verifies_the_server_sends_sni_and_client_certificates() {
    let pki = Pki::new();
    let ca = pki.p("ca.pem");
    let py = PyServer::start(&pki, "server", false);
    let o = sslclient(&["-s", "-a", &ca], "localhost", py.port);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("hello nobody sni=localhost TLSv1.3"), "{t}");
    assert!(t.contains("echo ping"), "{t}");
    // A CA that did not sign the server: refused, the program never runs.
    let o = sslclient(&["-a", &pki.p("otherca.pem")], "localhost", py.port);
    assert_eq!(o.status.code(), Some(111), "{}", text(&o));
    assert!(!text(&o).contains("hello"));
    // -X: no verification at all.
    let o = sslclient(&["-X"], "localhost", py.port);
    assert!(text(&o).contains("hello nobody"), "{}", text(&o));
    // A name the certificate does not carry fails, unless -N.
    let dns = PyServer::start(&pki, "dnsonly", false);
    let o = sslclient(&["-a", &ca], "localhost", dns.port);
    assert_eq!(o.status.code(), Some(111), "{}", text(&o));
    let o = sslclient(&["-a", &ca, "-N"], "localhost", dns.port);
    assert!(text(&o).contains("hello nobody"), "{}", text(&o));
    // A server that requires a client certificate.
    let need = PyServer::start(&pki, "server", true);
    let o = sslclient(
        &[
            "-a",
            &ca,
            "-c",
            &pki.p("client.pem"),
            "-k",
            &pki.p("client.key"),
        ],
        "localhost",
        need.port,
    );
    assert!(text(&o).contains("hello client.test"), "{}", text(&o));
}

#[test]
fn sslclient_against_openssl_s_server() {
    let pki = Pki::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut srv = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &port.to_string(),
            "-cert",
            &pki.p("server.pem"),
            "-key",
            &pki.p("server.key"),
            "-naccept",
            "1",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sin = srv.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    sin.write_all(b"banner from s_server\n").unwrap();
    let o = run(
        Command::new(SSLCLIENT).args([
            "-a",
            &pki.p("ca.pem"),
            "localhost",
            &port.to_string(),
            "sh",
            "-c",
            "read l <&6; echo \"$l\"",
        ]),
        b"",
    );
    let _ = srv.kill();
    let _ = srv.wait();
    let t = text(&o);
    assert!(t.contains("banner from s_server"), "{t}");
}

const PY_MANY: &str = r#"
import socket, ssl, sys, threading
port, ca, total, nthreads, every = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                     int(sys.argv[4]), int(sys.argv[5]))
ctx = ssl.create_default_context(cafile=ca)
lock = threading.Lock()
counts = {"full": 0, "bare": 0}
errors = []
def work(t):
    for i in range(t, total, nthreads):
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=30)
            if i % every == 0:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    data = b""
                    while True:
                        d = s.recv(100)
                        if not d: break
                        data += d
                    if data != b"x\n":
                        raise Exception("read %r" % data)
                key = "full"
            else:
                raw.close()
                key = "bare"
            with lock:
                counts[key] += 1
        except Exception as e:
            with lock:
                errors.append("%d: %s %s" % (i, type(e).__name__, e))
threads = [threading.Thread(target=work, args=(t,)) for t in range(nthreads)]
for t in threads: t.start()
for t in threads: t.join()
print("FULL", counts["full"], "BARE", counts["bare"], "ERRORS", len(errors))
for e in errors[:10]: print(e)
"#;

/// Waits up to a minute for the server's log to satisfy `f`.
fn wait_log(s: &Server, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = s.log();
        if f(&log) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waiting for {what}: {}",
            log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 10,000 connections from 8 client threads: every 20th completes a TLS handshake and reads
/// the program's output, the others close right after connecting (each still takes an
/// engine process, which sees the end of input before any handshake). Afterwards the
/// server has the descriptors it had after its first connection and no child left.
#[test]
fn ten_thousand_connections_leave_no_zombie_and_no_descriptor() {
    const TOTAL: usize = 10_000;
    const EVERY: usize = 20;
    let pki = Pki::new();
    let s = Server::start(&pki, &["-v", "-R", "-c", "64"], &[], &["echo", "x"]);
    let pid = s.child.id();
    let first = text(&python(
        PY_MANY,
        &[&s.port.to_string(), &pki.p("ca.pem"), "1", "1", "1"],
    ));
    assert!(
        first.contains("FULL 1 BARE 0 ERRORS 0"),
        "{first}\n{}",
        s.log()
    );
    wait_log(&s, "the first connection to end", |l| {
        l.matches("sslserver: end ").count() == 1 && l.ends_with("status: 0/64\n")
    });
    let before = crate::tcp::server::fds(pid);
    let o = python(
        PY_MANY,
        &[
            &s.port.to_string(),
            &pki.p("ca.pem"),
            &TOTAL.to_string(),
            "8",
            &EVERY.to_string(),
        ],
    );
    let t = text(&o);
    let full = TOTAL.div_ceil(EVERY);
    assert!(
        t.contains(&format!("FULL {full} BARE {} ERRORS 0", TOTAL - full)),
        "{t}"
    );
    let log = wait_log(&s, "all connections to end", |l| {
        l.matches("sslserver: end ").count() == TOTAL + 1 && l.ends_with("status: 0/64\n")
    });
    assert_eq!(
        crate::tcp::server::fds(pid),
        before,
        "descriptors of the server"
    );
    let left = crate::tcp::server::children(pid);
    assert!(left.is_empty(), "children left: {left:?}");
    let most = log
        .lines()
        .filter_map(|l| l.strip_prefix("sslserver: status: "))
        .filter_map(|l| l.split('/').next()?.parse::<u32>().ok())
        .max()
        .unwrap();
    assert!(most <= 64, "never more than -c children: {most}");
}

/// `-r` asks the client's ident server and the answer reaches the program as both
/// SSLREMOTEINFO and (with `-e`) TCPREMOTEINFO; `-b` and `-o` are taken.
#[test]
fn ident_answers_reach_the_program() {
    let pki = Pki::new();
    let client_ip = crate::tcp::loopback();
    let _ident = crate::tcp::FakeIdent::start(client_ip, "joe");
    let s = Server::start(
        &pki,
        &["-n", "-e", "-r", "-t", "5", "-b", "5", "-o"],
        &[],
        &[
            "sh",
            "-c",
            "echo \"$SSLREMOTEINFO $TCPREMOTEINFO $TCPREMOTEIP\"",
        ],
    );
    let local = std::net::SocketAddr::new(client_ip.into(), 0);
    let mut c = sqmail::sys::tcp_connect(
        Some(&local),
        &s.addr().parse().unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert_eq!(out, format!("joe joe {client_ip}\n"), "{}", s.log());
}
