//! The qmail-command interface: the lines qmail-local adds to a message (`Delivered-To`,
//! `Return-Path`, the mbox `From ` line), the environment a `|command` sees, and running
//! the command with the message on its standard input.
//!
//! Every value here comes from the envelope and is under a remote sender's control; it is
//! passed on as bytes, never interpreted.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::addr;
use crate::date::Utc;
use crate::fail::{Failure, Kind};
use crate::prog;
use crate::sys;

/// The most bytes of output from all `|command` lines of one delivery that are passed on
/// into the delivery report (qmail-lspawn keeps 3000 bytes of a report); the rest is
/// read and dropped.
pub const REPORT_MAX: usize = 3000;

/// `Delivered-To: local@host\n`, with any newline in the address turned into `_`.
pub fn dtline(local: &[u8], host: &[u8]) -> Vec<u8> {
    let mut l = b"Delivered-To: ".to_vec();
    l.extend_from_slice(local);
    l.push(b'@');
    l.extend_from_slice(host);
    newlines_to_underscores(&mut l);
    l.push(b'\n');
    l
}

/// qmail's quote2: the address with its local part quoted when RFC 821 needs it. The
/// empty address stays empty; an empty local part before an `@` becomes `""`.
pub fn quote2(a: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return Vec::new();
    }
    if a.iter().rposition(|&c| c == b'@') == Some(0) {
        let mut q = b"\"\"".to_vec();
        q.extend_from_slice(a);
        return q;
    }
    addr::quote(a)
}

/// `Return-Path: <sender>\n`, the sender quoted, any newline turned into `_`.
pub fn rpline(sender: &[u8]) -> Vec<u8> {
    let mut l = b"Return-Path: <".to_vec();
    l.extend_from_slice(&quote2(sender));
    newlines_to_underscores(&mut l);
    l.extend_from_slice(b">\n");
    l
}

/// The mbox `From ` line: `From sender date\n`, the sender `MAILER-DAEMON` when empty, its
/// spaces, tabs and newlines turned into `-`, the date in ctime form in UTC.
pub fn ufline(sender: &[u8], now: i64) -> Vec<u8> {
    let mut l = b"From ".to_vec();
    if sender.is_empty() {
        l.extend_from_slice(b"MAILER-DAEMON");
    } else {
        l.extend(sender.iter().map(|&c| {
            if matches!(c, b' ' | b'\t' | b'\n') {
                b'-'
            } else {
                c
            }
        }));
    }
    l.push(b' ');
    l.extend_from_slice(Utc::from_unix(now).ctime().as_bytes());
    l
}

fn newlines_to_underscores(l: &mut [u8]) {
    for c in l.iter_mut().filter(|c| **c == b'\n') {
        *c = b'_';
    }
}

/// `EXT2`, `EXT3`, `EXT4`: what follows the first, second and third `-` of the extension
/// (empty when there are fewer).
pub fn ext_parts(ext: &[u8]) -> [&[u8]; 3] {
    let mut out: [&[u8]; 3] = [&[]; 3];
    let mut rest = ext;
    for slot in &mut out {
        rest = match rest.iter().position(|&c| c == b'-') {
            Some(i) => rest.get(i + 1..).unwrap_or_default(),
            None => &[],
        };
        *slot = rest;
    }
    out
}

/// `HOST2`, `HOST3`, `HOST4`: the host without its last one, two and three dot-separated
/// parts (unchanged when there are no more dots).
pub fn host_parts(host: &[u8]) -> [&[u8]; 3] {
    let mut out: [&[u8]; 3] = [&[]; 3];
    let mut rest = host;
    for slot in &mut out {
        if let Some(i) = rest.iter().rposition(|&c| c == b'.') {
            rest = rest.get(..i).unwrap_or_default();
        }
        *slot = rest;
    }
    out
}

/// The variables of the qmail-command environment, set for every command.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: Vec<(&'static str, Vec<u8>)>,
    default: Option<Vec<u8>>,
}

/// What the environment is built from.
pub struct Fields<'a> {
    /// The account name.
    pub user: &'a [u8],
    /// Its home directory.
    pub home: &'a [u8],
    /// The recipient's local part.
    pub local: &'a [u8],
    /// The recipient's domain.
    pub host: &'a [u8],
    /// The extension.
    pub ext: &'a [u8],
    /// The envelope sender.
    pub sender: &'a [u8],
    /// The sender forwards use.
    pub newsender: &'a [u8],
    /// What `default` matched in the chosen file name, if it was a default file.
    pub default: Option<&'a [u8]>,
    /// The three lines qmail-local adds.
    pub dtline: &'a [u8],
    /// See `dtline`.
    pub rpline: &'a [u8],
    /// See `dtline`.
    pub ufline: &'a [u8],
}

impl Environment {
    /// The environment of qmail-command(8).
    pub fn new(f: &Fields<'_>) -> Environment {
        let mut recipient = f.local.to_vec();
        recipient.push(b'@');
        recipient.extend_from_slice(f.host);
        let [e2, e3, e4] = ext_parts(f.ext);
        let [h2, h3, h4] = host_parts(f.host);
        let vars = vec![
            ("HOST", f.host.to_vec()),
            ("HOME", f.home.to_vec()),
            ("USER", f.user.to_vec()),
            ("LOCAL", f.local.to_vec()),
            ("RECIPIENT", recipient),
            ("DTLINE", f.dtline.to_vec()),
            ("SENDER", f.sender.to_vec()),
            ("RPLINE", f.rpline.to_vec()),
            ("UFLINE", f.ufline.to_vec()),
            ("EXT", f.ext.to_vec()),
            ("EXT2", e2.to_vec()),
            ("EXT3", e3.to_vec()),
            ("EXT4", e4.to_vec()),
            ("HOST2", h2.to_vec()),
            ("HOST3", h3.to_vec()),
            ("HOST4", h4.to_vec()),
            ("NEWSENDER", f.newsender.to_vec()),
        ];
        Environment {
            vars,
            default: f.default.map(<[u8]>::to_vec),
        }
    }

    /// The variables, `DEFAULT` last when set.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.vars
            .iter()
            .map(|(k, v)| (*k, v.as_slice()))
            .chain(self.default.as_deref().map(|d| ("DEFAULT", d)))
    }

    fn apply(&self, c: &mut Command) {
        for (k, v) in self.vars() {
            c.env(k, OsStr::from_bytes(v));
        }
        if self.default.is_none() {
            c.env_remove("DEFAULT");
        }
    }
}

/// What a command's exit status asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: delivered.
    Success,
    /// 99: delivered; ignore the rest of the `.qmail` file.
    Stop,
    /// 100, 64, 65, 70, 76, 77, 78, 112: a permanent failure.
    Perm,
    /// Anything else: a temporary failure.
    Temp,
}

/// qmail-local's reading of a command's exit code.
pub fn exit_class(code: i32) -> Exit {
    match code {
        0 => Exit::Success,
        99 => Exit::Stop,
        64 | 65 | 70 | 76 | 77 | 78 | 100 | 112 => Exit::Perm,
        _ => Exit::Temp,
    }
}

fn temp(text: String) -> Failure {
    Failure::temp(Kind::System, text)
}

/// Runs `/bin/sh -c command` in `home` with the message on fd 0 (already rewound) and the
/// environment set. Its standard output and error are passed on to ours, at most
/// `budget` bytes of them (the budget shrinks by what was passed).
///
/// A crash, or a failure to start the shell, is a temporary failure with qmail's text.
pub fn run(
    command: &[u8],
    message: &File,
    home: &Path,
    env: &Environment,
    budget: &mut usize,
    limit: std::time::Duration,
) -> Result<Exit, Failure> {
    let fork = |e: std::io::Error| temp(format!("Unable to fork: {}. (#4.3.0)", sys::strerror(&e)));
    let (mut out_r, out_w) = std::io::pipe().map_err(fork)?;
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(OsStr::from_bytes(command))
        .current_dir(home)
        .stdin(Stdio::from(message.try_clone().map_err(fork)?))
        .stdout(Stdio::from(out_w.try_clone().map_err(fork)?))
        .stderr(Stdio::from(out_w));
    env.apply(&mut c);
    // Its own process group, so that a program that outstays `limit` goes with everything
    // it started.
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let spawned = c.spawn();
    drop(c);
    let mut child = spawned.map_err(|e| {
        temp(format!(
            "Unable to run /bin/sh: {}. (#4.3.0)",
            sys::strerror(&e)
        ))
    })?;
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let _ = sys::proc::kill_group(child.id());
            let _ = child.wait();
            return Err(temp(format!(
                "Timeout on program delivery: no result after {} seconds. (#4.3.0)",
                limit.as_secs()
            )));
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        let want = sys::proc::Ready {
            read: true,
            write: false,
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&out_r);
        let ready = sys::proc::poll(&[(fd, want)], ms).map_err(fork)?;
        if !ready.first().is_some_and(|r| r.read) {
            continue;
        }
        match out_r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let keep = n.min(*budget);
                if keep > 0 {
                    let _ = prog::out(buf.get(..keep).unwrap_or_default());
                    *budget -= keep;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fork(e)),
        }
    };
    match status.code() {
        Some(code) if status.signal().is_none() => Ok(exit_class(code)),
        _ => Err(temp("Aack, child crashed. (#4.3.0)".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_match_qmail_local() {
        for (sender, want) in [
            ("joe@example.org", "Return-Path: <joe@example.org>\n"),
            ("", "Return-Path: <>\n"),
            ("#@[]", "Return-Path: <#@[]>\n"),
            ("a b@example.org", "Return-Path: <\"a b\"@example.org>\n"),
            ("a\nb@x", "Return-Path: <\"a\\_b\"@x>\n"),
            ("@x", "Return-Path: <\"\"@x>\n"),
            ("a..b@x", "Return-Path: <\"a..b\"@x>\n"),
            ("noat", "Return-Path: <noat>\n"),
        ] {
            assert_eq!(
                String::from_utf8(rpline(sender.as_bytes())).unwrap(),
                want,
                "{sender:?}"
            );
        }
        assert_eq!(
            dtline(b"joe-list", b"example.org"),
            b"Delivered-To: joe-list@example.org\n"
        );
        assert_eq!(dtline(b"a\nb", b"h\n"), b"Delivered-To: a_b@h_\n");
        // 827034880 is Sun Mar 17 03:54:40 1996 UTC.
        for (sender, want) in [
            (
                "joe@example.org",
                "From joe@example.org Sun Mar 17 03:54:40 1996\n",
            ),
            ("", "From MAILER-DAEMON Sun Mar 17 03:54:40 1996\n"),
            ("a b\tc\nd@x", "From a-b-c-d@x Sun Mar 17 03:54:40 1996\n"),
        ] {
            assert_eq!(
                String::from_utf8(ufline(sender.as_bytes(), 827_034_880)).unwrap(),
                want,
                "{sender:?}"
            );
        }
        assert_eq!(
            ufline(b"x", 0),
            b"From x Thu Jan 01 00:00:00 1970\n",
            "day of month is zero-padded"
        );
    }

    #[test]
    fn ext_and_host_split_like_qmail_local() {
        for (ext, want) in [
            ("", ["", "", ""]),
            ("a", ["", "", ""]),
            ("a-b", ["b", "", ""]),
            ("a-b-c-d-e", ["b-c-d-e", "c-d-e", "d-e"]),
            ("-", ["", "", ""]),
            ("a--b", ["-b", "b", ""]),
        ] {
            let got = ext_parts(ext.as_bytes()).map(|p| String::from_utf8_lossy(p).into_owned());
            assert_eq!(got, want, "ext {ext:?}");
        }
        for (host, want) in [
            ("a.b.c.d.e", ["a.b.c.d", "a.b.c", "a.b"]),
            ("example.org", ["example", "example", "example"]),
            ("localhost", ["localhost", "localhost", "localhost"]),
            ("", ["", "", ""]),
            (".x", ["", "", ""]),
        ] {
            let got = host_parts(host.as_bytes()).map(|p| String::from_utf8_lossy(p).into_owned());
            assert_eq!(got, want, "host {host:?}");
        }
    }

    #[test]
    fn exit_codes_are_read_like_qmail_local() {
        for (code, want) in [
            (0, Exit::Success),
            (99, Exit::Stop),
            (100, Exit::Perm),
            (64, Exit::Perm),
            (65, Exit::Perm),
            (70, Exit::Perm),
            (76, Exit::Perm),
            (77, Exit::Perm),
            (78, Exit::Perm),
            (112, Exit::Perm),
            (111, Exit::Temp),
            (1, Exit::Temp),
            (66, Exit::Temp),
            (101, Exit::Temp),
            (255, Exit::Temp),
        ] {
            assert_eq!(exit_class(code), want, "code {code}");
        }
    }

    #[test]
    fn environment_has_every_variable() {
        let f = Fields {
            user: b"joe",
            home: b"/home/joe",
            local: b"joe-a-b",
            host: b"mail.example.org",
            ext: b"a-b",
            sender: b"s@x.example",
            newsender: b"joe-a-b-owner@mail.example.org",
            default: Some(b"b"),
            dtline: b"Delivered-To: joe-a-b@mail.example.org\n",
            rpline: b"Return-Path: <s@x.example>\n",
            ufline: b"From s@x.example Thu Jan 01 00:00:00 1970\n",
        };
        let e = Environment::new(&f);
        let got: Vec<(String, String)> = e
            .vars()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let get = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("RECIPIENT"), Some("joe-a-b@mail.example.org"));
        assert_eq!(get("EXT2"), Some("b"));
        assert_eq!(get("HOST2"), Some("mail.example"));
        assert_eq!(get("HOST4"), Some("mail"));
        assert_eq!(get("DEFAULT"), Some("b"));
        assert_eq!(got.len(), 18);
    }
}
