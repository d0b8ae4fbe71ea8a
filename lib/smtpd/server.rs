//! The driver of a session: fds 0 and 1 (or the UCSPI-TLS pipes after STARTTLS), read
//! deadlines, the checkprogram, qmail-queue, the log on fd 2.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use super::config::Config;
use super::config::Vars;
use super::data::Reader;
use super::policy::{Dns, DnsTrouble, Policy};
use super::session::{Action, AuthOutcome, DataResult, Session, Step};
use super::{AUTH_LINE_MAX, COMMAND_MAX, REPLY_TOO_LONG};
use crate::fail::{Failure, Kind, Result};
use crate::queue::client::Queue;
use crate::{date, dns, env, prog, sys};

const TIMEOUT_REPLY: &[u8] = b"451 timeout (#4.4.2)\r\n";
const TLS_FAILED: &[u8] = b"454 TLS not available due to temporary reason (#5.7.3)\r\n";
const READ_CHUNK: usize = 64 * 1024;
/// The largest environment block accepted from the TLS engine.
pub const TLS_BLOCK_MAX: usize = 64 * 1024;

/// Why reading stopped.
enum Stop {
    Eof,
    Timeout,
}

/// One line of client input.
enum Input {
    Line(Vec<u8>),
    TooLong,
}

struct Conn {
    input: File,
    output: File,
    ctl: Option<File>,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    timeout_ms: i32,
    timeout_secs: u32,
}

impl Conn {
    fn fill(&mut self) -> std::result::Result<(), Stop> {
        loop {
            let ready = sys::proc::poll(
                &[(
                    self.input.as_raw_fd(),
                    sys::proc::Ready {
                        read: true,
                        write: false,
                    },
                )],
                self.timeout_ms,
            )
            .map_err(|_| Stop::Eof)?;
            if !ready.first().is_some_and(|r| r.read) {
                return Err(Stop::Timeout);
            }
            self.chunk.resize(READ_CHUNK, 0);
            match self.input.read(&mut self.chunk) {
                Ok(0) => return Err(Stop::Eof),
                Ok(n) => {
                    self.buf
                        .extend_from_slice(self.chunk.get(..n).unwrap_or_default());
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Stop::Eof),
            }
        }
    }

    /// A line of at most `max` bytes, line end included; longer lines are read to their
    /// end and reported as [`Input::TooLong`].
    fn line(&mut self, max: usize) -> std::result::Result<Input, Stop> {
        let mut too_long = false;
        loop {
            if let Some(i) = self.buf.iter().position(|&c| c == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                if too_long || l.len() > max {
                    return Ok(Input::TooLong);
                }
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(Input::Line(l));
            }
            if self.buf.len() >= max {
                too_long = true;
                self.buf.clear();
            }
            self.fill()?;
        }
    }

    fn write(&mut self, b: &[u8]) -> bool {
        if b.is_empty() {
            return true;
        }
        sys::alarm_exit(self.timeout_secs, 1);
        let ok = self
            .output
            .write_all(b)
            .and_then(|()| self.output.flush())
            .is_ok();
        sys::alarm_cancel();
        ok
    }
}

/// DNS through lib/dns, built at the first question.
#[derive(Default)]
struct RealDns {
    r: Option<dns::Resolver>,
}

impl RealDns {
    fn ask<T>(
        &mut self,
        name: &[u8],
        f: impl Fn(&dns::Resolver, &str) -> std::result::Result<T, Failure>,
    ) -> std::result::Result<Option<T>, DnsTrouble> {
        let Ok(name) = std::str::from_utf8(name) else {
            return Ok(None);
        };
        if self.r.is_none() {
            self.r = Some(dns::Resolver::from_env().map_err(|_| DnsTrouble)?);
        }
        let r = self.r.as_ref().ok_or(DnsTrouble)?;
        f(r, name).map(Some).map_err(|_| DnsTrouble)
    }
}

impl Dns for RealDns {
    fn mail_domain_exists(&mut self, domain: &[u8]) -> std::result::Result<bool, DnsTrouble> {
        if self.has_mx(domain)? {
            return Ok(true);
        }
        self.has_address(domain)
    }
    fn has_address(&mut self, name: &[u8]) -> std::result::Result<bool, DnsTrouble> {
        let a = self
            .ask(name, |r, n| r.a(n))?
            .is_some_and(|v| !v.is_empty());
        Ok(a || self
            .ask(name, |r, n| r.aaaa(n))?
            .is_some_and(|v| !v.is_empty()))
    }
    fn has_mx(&mut self, name: &[u8]) -> std::result::Result<bool, DnsTrouble> {
        Ok(self
            .ask(name, |r, n| r.mx_names(n))?
            .is_some_and(|v| !v.is_empty()))
    }
}

fn fd_var(name: &str) -> Option<i32> {
    std::str::from_utf8(&env::var(name)?).ok()?.parse().ok()
}

/// Asks the engine for TLS (`Y`), reads its environment block and moves to its pipes.
fn start_tls(conn: &mut Conn) -> std::result::Result<Vars, ()> {
    let (c, r, w) = (
        fd_var("SSLCTLFD").ok_or(())?,
        fd_var("SSLREADFD").ok_or(())?,
        fd_var("SSLWRITEFD").ok_or(())?,
    );
    let mut ctl = sys::inherited_fd(c).ok_or(())?;
    ctl.write_all(b"Y").map_err(|_| ())?;
    let mut block = Vec::new();
    let mut chunk = [0u8; 8192];
    while !(block == [0] || block.ends_with(&[0, 0])) {
        let want = sys::proc::Ready {
            read: true,
            write: false,
        };
        let ready = sys::proc::poll(&[(ctl.as_raw_fd(), want)], conn.timeout_ms).map_err(|_| ())?;
        if !ready.first().is_some_and(|r| r.read) {
            return Err(());
        }
        let n = ctl.read(&mut chunk).map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        block.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if block.len() > TLS_BLOCK_MAX {
            return Err(());
        }
    }
    let input = if r == c {
        ctl.try_clone().map_err(|_| ())?
    } else {
        sys::inherited_fd(r).ok_or(())?
    };
    let output = if w == r {
        input.try_clone().map_err(|_| ())?
    } else if w == c {
        ctl.try_clone().map_err(|_| ())?
    } else {
        sys::inherited_fd(w).ok_or(())?
    };
    // As s/qmail does, the pipes take over fds 0 and 1: the plaintext socket is closed
    // here and the descriptor numbers stay occupied (children get /dev/null on 0 and 1).
    for (new, old) in [(&input, &conn.input), (&output, &conn.output)] {
        if new.as_raw_fd() != old.as_raw_fd() {
            sys::fd_copy(new, old.as_raw_fd()).map_err(|_| ())?;
        }
    }
    conn.ctl = Some(ctl);
    conn.buf.clear();
    Ok(block
        .split(|&b| b == 0)
        .filter_map(|e| {
            let i = e.iter().position(|&b| b == b'=')?;
            Some((e.get(..i)?.to_vec(), e.get(i + 1..)?.to_vec()))
        })
        .collect())
}

/// The 454 replies when the checkprogram cannot be asked.
const AUTH_NO_CHILD: &[u8] = b"454 child won't start and I can't auth (#4.3.0)\r\n";
const AUTH_NO_PIPE: &[u8] = b"454 unable to open pipe and I can't auth (#4.3.0)\r\n";
const AUTH_NO_WRITE: &[u8] = b"454 unable to write pipe and I can't auth (#4.3.0)\r\n";
const AUTH_CHILD: &[u8] = b"454 problem with child and I can't auth (#4.3.0)\r\n";

/// Runs the checkprogram with the record on fd 3 and AUTHUSER set; fds 0 and 1 are
/// /dev/null, so it can neither read client input nor write to the client. It gets
/// `secs` seconds; after that it is killed and the answer is 454.
fn checkpassword(argv: &[OsString], c: &super::auth::Credentials, secs: u64) -> AuthOutcome {
    use std::os::unix::ffi::OsStringExt;
    let Some((prog, args)) = argv.split_first() else {
        return AuthOutcome::Trouble(AUTH_NO_CHILD);
    };
    let Some(record) = c.record() else {
        return AuthOutcome::Refused;
    };
    let Ok((r, mut w)) = std::io::pipe() else {
        return AuthOutcome::Trouble(AUTH_NO_PIPE);
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("AUTHUSER", OsString::from_vec(c.user.clone()))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    sys::proc::map_fds(&mut cmd, &[(r.as_raw_fd(), 3)]);
    let child = cmd.spawn();
    drop(r);
    let Ok(mut child) = child else {
        return AuthOutcome::Trouble(AUTH_NO_CHILD);
    };
    let wrote = w.write_all(&record).is_ok();
    drop(w);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return AuthOutcome::Trouble(AUTH_CHILD);
            }
        }
    };
    match status.code() {
        Some(0) if wrote => AuthOutcome::Accepted,
        Some(0) => AuthOutcome::Trouble(AUTH_NO_WRITE),
        Some(_) => AuthOutcome::Refused,
        None => AuthOutcome::Trouble(AUTH_CHILD),
    }
}

fn receive(
    conn: &mut Conn,
    s: &mut Session,
    mut q: Queue,
) -> std::result::Result<DataResult, Stop> {
    let mut reader = Reader::new(s.config().databytes);
    q.put(&s.header(&date::Utc::now().rfc822()));
    let relay = s.relay();
    s.policy().begin_message(relay);
    let mut out = Vec::new();
    while !reader.done() {
        if conn.buf.is_empty()
            && let Err(e) = conn.fill()
        {
            q.abort();
            return Err(e);
        }
        let n = reader.feed(&conn.buf, &mut out);
        conn.buf.drain(..n);
        // After a defect or a refused attachment the rest is read but goes nowhere.
        if reader.defect().is_none() && !out.is_empty() && !s.policy().content_refused() {
            s.policy().content(&out);
            q.put(&out);
        }
        out.clear();
    }
    let defect = reader.defect();
    let content = s.policy().content_verdict();
    let queue = if defect.is_none() && content == super::policy::ContentCheck::Accept {
        let pid = q.pid();
        let (from, rcpts) = s.envelope();
        Some(q.close(from, rcpts).map(|()| pid))
    } else {
        q.abort();
        None
    };
    Ok(DataResult {
        defect,
        content,
        queue,
        now: date::now(),
    })
}

fn say(conn: &mut Conn, s: &mut Session, step: &Step) -> bool {
    if step.delay > 0 {
        std::thread::sleep(std::time::Duration::from_secs(step.delay));
    }
    let log = s.take_log();
    if !log.is_empty() {
        prog::err(&log);
    }
    conn.write(&step.reply)
}

/// Does what a step asks until a reply has gone out. Returns whether the session goes on,
/// and whether the checkprogram ran.
fn carry_out(conn: &mut Conn, s: &mut Session, mut step: Step, o: &Options<'_>) -> (bool, bool) {
    let mut auth_ran = false;
    loop {
        if step.action == Action::Data {
            match Queue::open_with(o.home, &s.queue_env()) {
                Err(_) => step = s.data_failed(),
                Ok(q) => {
                    if !say(conn, s, &step) {
                        q.abort();
                        return (false, auth_ran);
                    }
                    match receive(conn, s, q) {
                        Ok(r) => step = s.data_end(r),
                        Err(stop) => {
                            if let Stop::Timeout = stop {
                                conn.write(TIMEOUT_REPLY);
                            }
                            return (false, auth_ran);
                        }
                    }
                }
            }
        }
        if let Action::Auth(c) = &step.action {
            auth_ran = true;
            let c = c.clone();
            let outcome = checkpassword(o.checkprogram, &c, u64::from(conn.timeout_secs));
            step = s.auth_result(&c, outcome);
            continue;
        }
        if !say(conn, s, &step) {
            return (false, auth_ran);
        }
        let go_on = match step.action {
            Action::Quit | Action::Hangup => false,
            Action::StartTls => match start_tls(conn) {
                Ok(vars) => {
                    s.tls_started(vars);
                    true
                }
                Err(()) => {
                    conn.write(TLS_FAILED);
                    false
                }
            },
            _ => true,
        };
        return (go_on, auth_ran);
    }
}

/// What [`serve`] needs besides the environment.
pub struct Options<'a> {
    /// The qmail home directory.
    pub home: &'a Path,
    /// The checkprogram and its arguments (empty: no AUTH).
    pub checkprogram: &'a [OsString],
}

/// Serves one SMTP session on fds 0 and 1. Returns when the client quits, goes away or
/// times out. A temporary failure when the configuration cannot be read.
pub fn serve(o: &Options<'_>) -> Result<()> {
    let input = sys::inherited_fd(0).ok_or_else(|| Failure::temp(Kind::Read, "no fd 0"))?;
    let output = sys::inherited_fd(1).ok_or_else(|| Failure::temp(Kind::Write, "no fd 1"))?;
    let mut conn = Conn {
        input,
        output,
        ctl: None,
        buf: Vec::new(),
        chunk: Vec::new(),
        timeout_ms: 1_200_000,
        timeout_secs: 1200,
    };
    let cfg = match Config::load(o.home, !o.checkprogram.is_empty()) {
        Ok(c) => c,
        Err(f) => {
            conn.write(if f.kind() == Kind::System {
                b"421 unable to figure out my IP addresses (#4.3.0)\r\n"
            } else {
                b"421 unable to read controls (#4.3.0)\r\n"
            });
            return Err(f);
        }
    };
    let secs = cfg.timeout_secs.clamp(1, 86_400);
    conn.timeout_secs = u32::try_from(secs).unwrap_or(1200);
    conn.timeout_ms = i32::try_from(secs.saturating_mul(1000)).unwrap_or(i32::MAX);
    if cfg.rcpthosts.hosts.is_none() {
        prog::warn(
            "qmail-smtpd",
            "control/rcpthosts is missing: every domain is accepted as a recipient (open relay)",
        );
    }
    if cfg
        .tls_vars
        .as_ref()
        .is_some_and(|v| !v.iter().any(|(k, _)| k == b"SSL_PROTOCOL"))
    {
        conn.write(TLS_FAILED);
        return Ok(());
    }
    let policy = Policy::new(o.home, cfg.badmimetype.clone(), cfg.badloadertype.clone());
    let mut s = Session::new(cfg, policy);
    let mut dns = RealDns::default();
    if !conn.write(&s.greeting()) {
        return Ok(());
    }
    loop {
        let max = if s.in_auth() {
            AUTH_LINE_MAX
        } else {
            COMMAND_MAX
        };
        let line = match conn.line(max) {
            Ok(Input::Line(l)) => l,
            Ok(Input::TooLong) => {
                let step = s.bad_command(Step {
                    reply: REPLY_TOO_LONG.to_vec(),
                    delay: 0,
                    action: Action::Continue,
                });
                let stop = step.action != Action::Continue;
                let log = s.take_log();
                if !log.is_empty() {
                    prog::err(&log);
                }
                if !conn.write(&step.reply) || stop {
                    return Ok(());
                }
                continue;
            }
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Timeout) => {
                conn.write(TIMEOUT_REPLY);
                return Ok(());
            }
        };
        let was_in_auth = s.in_auth();
        let step = s.line(&line, &mut dns);
        let (go_on, auth_ran) = carry_out(&mut conn, &mut s, step, o);
        if !go_on {
            return Ok(());
        }
        if (was_in_auth || auth_ran) && !s.in_auth() {
            conn.buf.clear();
        }
    }
}
