//! Authentication: the checkpassword record, `users/authuser` and the back ends of
//! qmail-authuser, and the recipient check of qmail-vmailuser.
//!
//! Privileges. qmail-authuser may be installed setuid root, as s/qmail installs it, so that
//! it can read the shadow file and become a system account. It rests at once: the caller's
//! user and group become the effective ones and root is kept only as the saved id. Root is
//! taken back for the shadow lookup alone and, after a successful `!` login, to become the
//! account. Before any other program runs (the back ends checkvpw, vchkpw and doveadm, or the
//! subprogram) every privilege is given up for good. No path ends in a program running as
//! uid 0: system accounts with uid 0 are refused, and the subprogram is never started as
//! root.

pub mod authuser;
pub mod checkpw;
pub mod vmailuser;

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::sys;
use authuser::{Lookup, Table, Token};
use checkpw::{Bad, Record};

/// The result of a check that did not succeed, as a checkpassword exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Exit 1: the credentials are not acceptable.
    Credentials,
    /// Exit 2: the program was misused (arguments, input or configuration).
    Misuse,
    /// Exit 111: a temporary problem.
    Temporary,
}

impl Refusal {
    /// The exit code of the checkpassword interface.
    pub fn code(self) -> u8 {
        match self {
            Refusal::Credentials => 1,
            Refusal::Misuse => 2,
            Refusal::Temporary => 111,
        }
    }
}

/// The command line of qmail-authuser.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// `-s authsocket`: Dovecot's auth socket for `=` logins.
    pub socket: Option<OsString>,
    /// `-x info` (repeatable): passed on to `doveadm auth test`.
    pub info: Vec<OsString>,
    /// The subprogram and its arguments.
    pub sub: Vec<OsString>,
}

/// Parses `qmail-authuser [-s authsocket [-x info]...] subprogram [args...]`.
pub fn parse_args(argv: &[OsString]) -> Result<Args, Refusal> {
    let mut rest = argv.get(1..).unwrap_or_default();
    let mut args = Args {
        socket: None,
        info: Vec::new(),
        sub: Vec::new(),
    };
    if rest.first().is_some_and(|a| a == "-s") {
        let s = rest.get(1).ok_or(Refusal::Misuse)?;
        args.socket = Some(s.clone());
        rest = rest.get(2..).unwrap_or_default();
        while rest.first().is_some_and(|a| a == "-x") {
            args.info.push(rest.get(1).ok_or(Refusal::Misuse)?.clone());
            rest = rest.get(2..).unwrap_or_default();
        }
    }
    if rest.is_empty() {
        return Err(Refusal::Misuse);
    }
    args.sub = rest.to_vec();
    if let Some(mbox) = mailbox_argument(&args.sub)
        && (mbox.first() == Some(&b'/') || mbox.split(|&b| b == b'/').any(|c| c == b".."))
    {
        return Err(Refusal::Misuse);
    }
    Ok(args)
}

/// In the "program maildirname" form used for POP3 and IMAP, the mailbox argument: the
/// subprogram's first argument when it starts with `mail` or `mbox` in any case.
pub fn mailbox_argument(sub: &[OsString]) -> Option<&[u8]> {
    let a = sub.get(1)?.as_bytes();
    let head = a.get(..4)?.to_ascii_lowercase();
    (head == b"mail" || head == b"mbox").then_some(a)
}

/// The account a `!` login becomes.
struct Become {
    user: sys::crypt::SystemUser,
}

fn say(text: &str) {
    crate::prog::err(format!("qmail-authuser: {text}\n").as_bytes());
}

/// Runs qmail-authuser. Returns only when the login is refused or the subprogram could not
/// be started; on success the process becomes the subprogram.
pub fn authuser(argv: &[OsString], home: &Path) -> Refusal {
    if sys::crypt::rest_privileges().is_err() {
        say("fatal: unable to set the effective ids");
        return Refusal::Temporary;
    }
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(r) => {
            say("usage: qmail-authuser [-s authsocket [-x info]] subprogram [args]");
            return r;
        }
    };
    let Some(mut fd3) = sys::inherited_fd(3) else {
        say("fatal: descriptor 3 is not open");
        return Refusal::Misuse;
    };
    let record = match Record::read_from(&mut fd3) {
        Ok(r) => r,
        Err(Bad::Read) => return Refusal::Temporary,
        Err(_) => return Refusal::Misuse,
    };
    drop(fd3);
    let table = match read_table(home) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let token = match table.lookup(record.login()) {
        Lookup::Disabled | Lookup::Unknown => return Refusal::Credentials,
        Lookup::Found(t) => t,
    };
    drop(table);
    let become_ = match check(&token, &record, &args) {
        Ok(b) => b,
        Err(r) => return r,
    };
    drop(record);
    start_subprogram(&args.sub, become_)
}

fn read_table(home: &Path) -> Result<Table, Refusal> {
    let path = home.join("users/authuser");
    let read = std::fs::File::open(&path).and_then(|f| {
        let mut t = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(f, authuser::FILE_MAX as u64 + 1),
            &mut t,
        )
        .map(|_| t)
    });
    match read {
        Ok(t) if t.len() > authuser::FILE_MAX => {
            say("fatal: users/authuser is too large");
            Err(Refusal::Temporary)
        }
        Ok(mut t) => {
            let table = Table::parse(&t);
            t.fill(0);
            Ok(table)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::parse(b"")),
        Err(e) => {
            say(&format!(
                "fatal: unable to read users/authuser: {}",
                sys::strerror(&e)
            ));
            Err(Refusal::Temporary)
        }
    }
}

fn check(token: &Token, record: &Record, args: &Args) -> Result<Option<Become>, Refusal> {
    let ok = |b: bool| {
        if b {
            Ok(None)
        } else {
            Err(Refusal::Credentials)
        }
    };
    match token {
        Token::Plain(p) => ok(authuser::check_plain(
            p,
            record.secret(),
            record.challenge(),
        )),
        Token::Hash(h) => ok(authuser::check_hash(h, record.secret())),
        Token::System => check_system(record).map(|_| None),
        Token::SystemUser => check_system(record).map(|user| Some(Become { user })),
        Token::Checkvpw => helper("checkvpw", &["true", "Maildir"], record.raw()).map(|()| None),
        Token::Vchkpw => helper("vchkpw", &["true"], record.raw()).map(|()| None),
        Token::Dovecot => dovecot(record, args).map(|()| None),
        Token::Invalid => {
            say("fatal: users/authuser has a token this program does not understand");
            Err(Refusal::Misuse)
        }
    }
}

/// Checks a password against the system account named by the login (before any `@`).
fn check_system(record: &Record) -> Result<sys::crypt::SystemUser, Refusal> {
    let name = authuser::unix_name(record.login());
    if name.is_empty() {
        return Err(Refusal::Credentials);
    }
    // Root is needed to read the shadow file; without it passwd's field is all there is.
    let had_root = sys::crypt::regain_root().is_ok();
    let found = sys::crypt::system_user(name);
    if had_root && sys::crypt::rest_privileges().is_err() {
        return Err(Refusal::Temporary);
    }
    let mut user = match found {
        Ok(Some(u)) => u,
        Ok(None) => return Err(Refusal::Credentials),
        Err(_) => return Err(Refusal::Temporary),
    };
    if user.uid == 0 {
        say("refusing a system login with uid 0");
        return Err(Refusal::Credentials);
    }
    let stored = std::mem::take(&mut user.hash);
    let good = match stored.first() {
        None | Some(b'!' | b'*') => false,
        Some(_) => {
            sys::crypt::crypt(record.secret(), &stored).is_some_and(|h| authuser::same(&h, &stored))
        }
    };
    if good {
        Ok(user)
    } else {
        Err(Refusal::Credentials)
    }
}

/// Runs a checkpassword-style back end with the record on its descriptor 3 and `true` as
/// its subprogram; exit 0 accepts.
fn helper(prog: &str, args: &[&str], record: &[u8]) -> Result<(), Refusal> {
    if sys::crypt::drop_privileges().is_err() {
        return Err(Refusal::Temporary);
    }
    let (r, mut w) = std::io::pipe().map_err(|_| Refusal::Temporary)?;
    let mut c = Command::new(prog);
    c.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    sys::proc::map_fds(&mut c, &[(r.as_raw_fd(), 3)]);
    let mut child = c.spawn().map_err(|_| Refusal::Temporary)?;
    drop(r);
    let _ = w.write_all(record);
    drop(w);
    let status = child.wait().map_err(|_| Refusal::Temporary)?;
    match status.code() {
        Some(0) => Ok(()),
        Some(2) => Err(Refusal::Misuse),
        Some(111) | None => Err(Refusal::Temporary),
        Some(_) => Err(Refusal::Credentials),
    }
}

/// Asks Dovecot: `doveadm auth test [-a socket] [-x info]... login password`.
fn dovecot(record: &Record, args: &Args) -> Result<(), Refusal> {
    if sys::crypt::drop_privileges().is_err() {
        return Err(Refusal::Temporary);
    }
    let mut c = Command::new("doveadm");
    c.args(["auth", "test"]);
    if let Some(s) = &args.socket {
        // doveadm says 77 both for a wrong password and for a missing server.
        if std::fs::metadata(s).is_err() {
            say("fatal: the Dovecot auth socket is not there");
            return Err(Refusal::Temporary);
        }
        c.arg("-a").arg(s);
    }
    for x in &args.info {
        c.arg("-x").arg(x);
    }
    c.arg(OsString::from_vec(record.login().to_vec()))
        .arg(OsString::from_vec(record.secret().to_vec()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = c.status().map_err(|_| Refusal::Temporary)?;
    if status.signal().is_some() {
        return Err(Refusal::Temporary);
    }
    match status.code() {
        Some(0) => Ok(()),
        // EX_NOUSER and EX_NOPERM: unknown user or wrong password.
        Some(1 | 67 | 77) => Err(Refusal::Credentials),
        _ => Err(Refusal::Temporary),
    }
}

fn start_subprogram(sub: &[OsString], become_: Option<Become>) -> Refusal {
    let Some((prog, rest)) = sub.split_first() else {
        return Refusal::Misuse;
    };
    let mut c = Command::new(prog);
    c.args(rest);
    match become_ {
        Some(Become { user }) => {
            if user.uid == 0 {
                return Refusal::Credentials;
            }
            let switched = sys::crypt::regain_root()
                .and_then(|()| sys::set_gid(user.gid))
                .and_then(|()| sys::set_uid(user.uid));
            if switched.is_err() {
                say("unable to become the account");
                return Refusal::Credentials;
            }
            let home = OsString::from_vec(user.home.clone());
            if std::env::set_current_dir(&home).is_err() {
                say("unable to chdir to the home directory");
                return Refusal::Temporary;
            }
            c.env("USER", OsString::from_vec(user.name))
                .env("HOME", home)
                .env("SHELL", OsString::from_vec(user.shell));
        }
        None => {
            if sys::crypt::drop_privileges().is_err() {
                return Refusal::Temporary;
            }
        }
    }
    if sys::uid() == 0 || sys::euid() == 0 {
        say("refusing to start the subprogram as root");
        return Refusal::Credentials;
    }
    let e = c.exec();
    say(&format!("unable to run subprogram: {}", sys::strerror(&e)));
    Refusal::Temporary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&os(&["qa"])), Err(Refusal::Misuse));
        assert_eq!(parse_args(&os(&["qa", "-s"])), Err(Refusal::Misuse));
        assert_eq!(
            parse_args(&os(&["qa", "-s", "/sock"])),
            Err(Refusal::Misuse)
        );
        let a = parse_args(&os(&["qa", "-s", "/sock", "-x", "service=smtp", "true"])).unwrap();
        assert_eq!(a.socket, Some("/sock".into()));
        assert_eq!(a.info, os(&["service=smtp"]));
        assert_eq!(a.sub, os(&["true"]));
        let a = parse_args(&os(&["qa", "qmail-pop3d", "Maildir"])).unwrap();
        assert_eq!(mailbox_argument(&a.sub), Some(&b"Maildir"[..]));
        for bad in ["Maildir/../../etc", "mbox/..", "MAILDIR/../x"] {
            assert_eq!(
                parse_args(&os(&["qa", "qmail-pop3d", bad])),
                Err(Refusal::Misuse),
                "{bad}"
            );
        }
        assert_eq!(mailbox_argument(&os(&["true", "x"])), None);
    }
}
