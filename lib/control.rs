//! The files in `control/`, read with qmail's rules (qmail's control.c).
//!
//! * A single-line file gives its first line, with trailing spaces, tabs and newlines
//!   removed. A missing file is "absent" and the default applies; an existing empty file is
//!   the empty string, not the default. Any other error is a temporary failure.
//! * Many host names default to the contents of `control/me` when absent.
//! * An integer file gives the decimal number its first line starts with; absent or not a
//!   number means the default.
//! * A list file gives every line, trailing white space removed, skipping empty lines and
//!   lines that start with `#`.

use std::io;
use std::path::{Path, PathBuf};

use crate::fail::{Failure, Kind, Result};

/// How a control file is read and what it defaults to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One line; absent means the fixed default.
    Line(&'static str),
    /// One line; absent means `control/me`, else the fixed default.
    LineOrMe(&'static str),
    /// A number; absent or not numeric means the default.
    Int(u64),
    /// A list of lines; absent means empty.
    List,
    /// A list of lines; absent means the single line of `control/me`.
    ListOrMe,
    /// A cdb file built by a helper program.
    Cdb,
}

/// The control files of classic qmail that this package reads, with their forms and defaults
/// (qmail-control(5)). qmail-showctl prints them in this order.
pub const FILES: &[(&str, Form, &str)] = &[
    ("me", Form::Line(""), "the default for many host names"),
    (
        "authcleartext",
        Form::List,
        "qmail-remote: relays that may get AUTH without TLS",
    ),
    (
        "authsenders",
        Form::List,
        "qmail-remote: relays and AUTH credentials by sender",
    ),
    (
        "badhelo",
        Form::List,
        "qmail-smtpd: HELO names refused (HELOCHECK)",
    ),
    (
        "badloadertypes",
        Form::List,
        "attachment loader signatures (compiled by qmail-badloadertypes)",
    ),
    (
        "badloadertypes.cdb",
        Form::Cdb,
        "qmail-smtpd: attachment loader signatures (BADLOADERTYPE)",
    ),
    (
        "badmimetypes",
        Form::List,
        "attachment types refused (compiled by qmail-badmimetypes)",
    ),
    (
        "badmimetypes.cdb",
        Form::Cdb,
        "qmail-smtpd: attachment types refused (BADMIMETYPE)",
    ),
    (
        "badrcptto",
        Form::List,
        "qmail-smtpd: envelope recipients refused",
    ),
    (
        "bouncefrom",
        Form::Line("MAILER-DAEMON"),
        "bounce From: local part",
    ),
    (
        "bouncehost",
        Form::LineOrMe("bouncehost"),
        "bounce From: host",
    ),
    (
        "bouncemaxbytes",
        Form::Int(0),
        "bytes of the message copied into a bounce (0: all)",
    ),
    (
        "concurrencylocal",
        Form::Int(10),
        "simultaneous local deliveries",
    ),
    (
        "concurrencyremote",
        Form::Int(20),
        "simultaneous remote deliveries",
    ),
    (
        "databytes",
        Form::Int(0),
        "largest SMTP message accepted (0: no limit)",
    ),
    (
        "defaultdomain",
        Form::LineOrMe("defaultdomain"),
        "qmail-inject: added to dotless hosts",
    ),
    (
        "defaulthost",
        Form::LineOrMe("defaulthost"),
        "qmail-inject: added to bare local parts",
    ),
    (
        "domaincerts",
        Form::List,
        "qmail-remote: client certificates by sender domain",
    ),
    (
        "domainips",
        Form::List,
        "qmail-remote: source address and HELO by sender domain",
    ),
    (
        "doublebouncehost",
        Form::LineOrMe("doublebouncehost"),
        "double bounces go to this host",
    ),
    (
        "doublebounceto",
        Form::Line("postmaster"),
        "double bounces go to this user",
    ),
    (
        "envnoathost",
        Form::LineOrMe("envnoathost"),
        "added to envelope addresses without @",
    ),
    (
        "helohost",
        Form::LineOrMe(""),
        "qmail-remote: HELO/EHLO argument",
    ),
    (
        "idhost",
        Form::LineOrMe("idhost"),
        "qmail-inject: Message-ID host",
    ),
    (
        "localiphost",
        Form::LineOrMe(""),
        "qmail-smtpd: name for local IP literals",
    ),
    ("locals", Form::ListOrMe, "domains delivered locally"),
    (
        "mailfromrules",
        Form::List,
        "senders allowed to relay clients (compiled by qmail-mfrules)",
    ),
    (
        "mailfromrules.cdb",
        Form::Cdb,
        "qmail-smtpd: senders allowed to relay clients (LOCALMFCHECK=!)",
    ),
    (
        "morercpthosts.cdb",
        Form::Cdb,
        "more rcpthosts (made by qmail-newmrh)",
    ),
    (
        "percenthack",
        Form::List,
        "domains where user%host@domain is allowed",
    ),
    (
        "plusdomain",
        Form::LineOrMe("plusdomain"),
        "qmail-inject: replaces a trailing +",
    ),
    ("qmqpservers", Form::List, "qmail-qmqpc: QMQP servers"),
    ("qmtproutes", Form::List, "qmail-remote: QMTP routes"),
    (
        "queuelifetime",
        Form::Int(604_800),
        "seconds a message may stay in the queue",
    ),
    ("rcpthosts", Form::List, "domains accepted from the network"),
    (
        "recipients",
        Form::List,
        "qmail-smtpd: where recipients are looked up",
    ),
    (
        "smtpgreeting",
        Form::LineOrMe(""),
        "qmail-smtpd: greeting text",
    ),
    ("smtproutes", Form::List, "qmail-remote: artificial routes"),
    (
        "timeoutconnect",
        Form::Int(60),
        "qmail-remote: seconds to wait for a connection",
    ),
    (
        "timeoutlocal",
        Form::Int(86_400),
        "qmail-local: seconds a |program may run",
    ),
    (
        "timeoutremote",
        Form::Int(1200),
        "qmail-remote: seconds to wait for a reply",
    ),
    (
        "timeoutsmtpd",
        Form::Int(1200),
        "qmail-smtpd: seconds to wait for the client",
    ),
    (
        "tlsdestinations",
        Form::List,
        "qmail-remote: TLS policy by destination",
    ),
    ("virtualdomains", Form::List, "virtual users and domains"),
];

/// The control directory of one instance, with `control/me` read once.
#[derive(Clone, Debug)]
pub struct Control {
    dir: PathBuf,
    me: Option<Vec<u8>>,
}

impl Control {
    /// Opens `home/control` and reads `control/me`.
    pub fn open(home: &Path) -> Result<Control> {
        let mut c = Control {
            dir: home.join("control"),
            me: None,
        };
        c.me = c.line("me")?;
        Ok(c)
    }

    /// The directory the files are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first line of `control/me`, if the file exists.
    pub fn me(&self) -> Option<&[u8]> {
        self.me.as_deref()
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Failure::temp_io(
                Kind::Config,
                format!("unable to read control/{name}"),
                e,
            )),
        }
    }

    /// The first line of a file, trailing white space removed; `None` when absent.
    pub fn line(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read(name)?.map(|b| first_line(&b).to_vec()))
    }

    /// The first line of a file, or `default` when absent.
    pub fn line_or(&self, name: &str, default: &[u8]) -> Result<Vec<u8>> {
        Ok(self.line(name)?.unwrap_or_else(|| default.to_vec()))
    }

    /// The first line of a file, or `control/me` when absent, or `default` when both are.
    pub fn line_or_me(&self, name: &str, default: &[u8]) -> Result<Vec<u8>> {
        Ok(match self.line(name)? {
            Some(l) => l,
            None => self.me.clone().unwrap_or_else(|| default.to_vec()),
        })
    }

    /// The number a file starts with, or `default` when absent or not numeric.
    pub fn int(&self, name: &str, default: u64) -> Result<u64> {
        Ok(self
            .line(name)?
            .and_then(|l| leading_number(&l))
            .unwrap_or(default))
    }

    /// The entries of a list file; `None` when absent.
    pub fn list(&self, name: &str) -> Result<Option<Vec<Vec<u8>>>> {
        Ok(self.read(name)?.map(|b| list_lines(&b)))
    }

    /// The entries of a list file, or `control/me` alone when absent (as for `locals`).
    pub fn list_or_me(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        Ok(match self.list(name)? {
            Some(l) => l,
            None => self.me.iter().cloned().collect(),
        })
    }

    /// A file read by the form of its entry in [`FILES`].
    pub fn value(&self, name: &str) -> Result<Value> {
        let form = FILES
            .iter()
            .find(|f| f.0 == name)
            .map_or(Form::List, |f| f.1);
        Ok(match form {
            Form::Line(d) => Value::Line(self.line_or(name, d.as_bytes())?),
            Form::LineOrMe(d) => Value::Line(self.line_or_me(name, d.as_bytes())?),
            Form::Int(d) => Value::Int(self.int(name, d)?),
            Form::List => Value::List(self.list(name)?.unwrap_or_default()),
            Form::ListOrMe => Value::List(self.list_or_me(name)?),
            Form::Cdb => Value::Line(Vec::new()),
        })
    }
}

/// A control file's value, read by its form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A number.
    Int(u64),
    /// A list of entries.
    List(Vec<Vec<u8>>),
    /// A line of text.
    Line(Vec<u8>),
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\n' | b'\r'] = s {
        s = rest;
    }
    s
}

/// The first line of `b` without its trailing white space.
pub fn first_line(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    trim_end(b.get(..end).unwrap_or(b))
}

/// The entries of a list file's contents.
pub fn list_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == b'\n')
        .map(trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}

/// The unsigned decimal number `s` starts with (qmail's scan_ulong), if any.
pub fn leading_number(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s.get(..digits)? {
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &[u8])]) -> (PathBuf, Control) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let home = std::env::temp_dir().join(format!("sqmail-control-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("control")).unwrap();
        for (name, body) in files {
            std::fs::write(home.join("control").join(name), body).unwrap();
        }
        let c = Control::open(&home).unwrap();
        (home, c)
    }

    #[test]
    fn single_lines_lose_trailing_white_space_only() {
        let (h, c) = dir(&[
            ("me", b"  mail.example.org \t\nsecond\n"),
            ("bouncefrom", b""),
        ]);
        assert_eq!(c.me(), Some(&b"  mail.example.org"[..]));
        assert_eq!(c.line_or("bouncefrom", b"MAILER-DAEMON").unwrap(), b"");
        assert_eq!(
            c.line_or("doublebounceto", b"postmaster").unwrap(),
            b"postmaster"
        );
        std::fs::remove_dir_all(h).unwrap();
    }

    #[test]
    fn host_names_default_to_me_then_to_the_fixed_name() {
        let (h, c) = dir(&[("me", b"mx.example.org\n")]);
        assert_eq!(
            c.line_or_me("bouncehost", b"bouncehost").unwrap(),
            b"mx.example.org"
        );
        assert_eq!(
            c.list_or_me("locals").unwrap(),
            vec![b"mx.example.org".to_vec()]
        );
        std::fs::remove_dir_all(h).unwrap();
        let (h, c) = dir(&[]);
        assert_eq!(
            c.line_or_me("bouncehost", b"bouncehost").unwrap(),
            b"bouncehost"
        );
        assert!(c.list_or_me("locals").unwrap().is_empty());
        std::fs::remove_dir_all(h).unwrap();
    }

    #[test]
    fn integers_take_the_leading_number_or_the_default() {
        let (h, c) = dir(&[("databytes", b"1000x\n"), ("queuelifetime", b"soon\n")]);
        assert_eq!(c.int("databytes", 0).unwrap(), 1000);
        assert_eq!(c.int("queuelifetime", 604_800).unwrap(), 604_800);
        assert_eq!(c.int("concurrencylocal", 10).unwrap(), 10);
        std::fs::remove_dir_all(h).unwrap();
        assert_eq!(leading_number(b"99999999999999999999999"), None);
    }

    #[test]
    fn lists_skip_comments_and_blank_lines() {
        let (h, c) = dir(&[(
            "rcpthosts",
            b"# hosts\nexample.org \n\n.example.net\t\n#x\nlast",
        )]);
        let l = c.list("rcpthosts").unwrap().unwrap();
        assert_eq!(
            l,
            vec![
                b"example.org".to_vec(),
                b".example.net".to_vec(),
                b"last".to_vec()
            ]
        );
        assert_eq!(c.list("percenthack").unwrap(), None);
        std::fs::remove_dir_all(h).unwrap();
    }

    #[test]
    fn unreadable_file_is_a_temporary_failure() {
        let (h, c) = dir(&[]);
        std::fs::create_dir(h.join("control/locals")).unwrap();
        let e = c.list("locals").unwrap_err();
        assert!(e.is_temp());
        assert_eq!(
            e.to_string(),
            "unable to read control/locals: Is a directory"
        );
        std::fs::remove_dir_all(h).unwrap();
    }
}
