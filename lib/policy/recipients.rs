//! Recipient verification: `control/recipients`, evaluated per RCPT for clients that are not
//! relay clients, and its usual database `users/recipients.cdb` built by qmail-recipients.
//!
//! Each line of `control/recipients` is one of
//! * `domain:cdbpath`: look the address up in a cdb (fastforward format: keys `:address`);
//! * `domain|program [args]`: run a checkpassword-style recipient check (a PAM) with
//!   `address\0\0\0` on descriptor 3; exit 0 means the mailbox exists, 111 a temporary
//!   problem, anything else "ask the next line";
//! * `cdbpath` alone: a cdb for every domain (the s/qmail 3.2 form);
//! * `!domain`: every address of that domain exists, nothing is looked up;
//! * `!*`: every address not decided by an earlier line is let through.
//!
//! A domain is `@exact.domain`, `domain` (that domain and its subdomains) or `*` (any).
//! Paths and programs without a leading `/` are relative to the qmail home.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cdb;
use crate::control;
use crate::fail::{Failure, Kind, Result};
use crate::users::BREAK;

/// The control file, relative to the qmail home.
pub const CONTROL: &str = "control/recipients";
/// qmail-recipients' input.
pub const SOURCE: &str = "users/recipients";
/// qmail-recipients' output.
pub const CDB: &str = "users/recipients.cdb";
/// The temporary file qmail-recipients writes first.
pub const TMP: &str = "users/recipients.tmp";
/// A PAM gets its program name and at most this many arguments (s/qmail's limit).
pub const PAM_ARGS_MAX: usize = 5;

/// The outcome of a check; the log tag qmail-smtpd writes is given for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Found in a cdb (`Recipients_Cdb`).
    Cdb,
    /// A PAM said it exists (`Recipients_Pam`).
    Pam,
    /// The domain is wildcarded with `!domain` (`Recipients_Wild`).
    Wild,
    /// Let through by a final `!*` line, unchecked (`Rcpthosts_Rcptto`).
    Pass,
    /// No line vouched for it: qmail-smtpd answers 550 (450 with RECIPIENTS450).
    Unknown,
}

impl Verdict {
    /// The condition qmail-smtpd logs for an accepted recipient (`Accept::RCPT::<tag>`).
    pub fn log_tag(self) -> &'static str {
        match self {
            Verdict::Cdb => "Recipients_Cdb",
            Verdict::Pam => "Recipients_Pam",
            Verdict::Wild => "Recipients_Wild",
            Verdict::Pass | Verdict::Unknown => "Rcpthosts_Rcptto",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Domain {
    Exact(Vec<u8>),
    Suffix(Vec<u8>),
    Any,
}

impl Domain {
    fn parse(d: &[u8]) -> Domain {
        match d {
            b"*" => Domain::Any,
            [b'@', rest @ ..] => Domain::Exact(rest.to_ascii_lowercase()),
            d => Domain::Suffix(d.to_ascii_lowercase()),
        }
    }

    fn matches(&self, domain: &[u8]) -> bool {
        match self {
            Domain::Any => true,
            Domain::Exact(d) => d == domain,
            Domain::Suffix(d) => {
                d.first() == Some(&b'.') && domain.ends_with(d)
                    || domain == d.as_slice()
                    || domain.len() > d.len()
                        && domain.ends_with(d)
                        && domain.get(domain.len() - d.len() - 1) == Some(&b'.')
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    Cdb(Domain, Vec<u8>),
    Pam(Domain, Vec<Vec<u8>>),
    Wild(Vec<u8>),
    PassRest,
}

/// A loaded `control/recipients`.
#[derive(Debug)]
pub struct Recipients {
    home: PathBuf,
    rules: Vec<Rule>,
}

fn parse_rule(line: &[u8]) -> Rule {
    if line == b"!*" {
        return Rule::PassRest;
    }
    let sep = line.iter().position(|&b| b == b':' || b == b'|');
    match sep {
        Some(i) => {
            let domain = Domain::parse(line.get(..i).unwrap_or_default());
            let rest = line.get(i + 1..).unwrap_or_default();
            if line.get(i) == Some(&b'|') {
                let argv = rest
                    .split(|&b| b == b' ' || b == b'\t')
                    .filter(|a| !a.is_empty())
                    .take(PAM_ARGS_MAX + 1)
                    .map(<[u8]>::to_vec)
                    .collect();
                Rule::Pam(domain, argv)
            } else {
                Rule::Cdb(domain, rest.to_vec())
            }
        }
        None => match line {
            [b'!', d @ ..] => Rule::Wild(d.to_ascii_lowercase()),
            path => Rule::Cdb(Domain::Any, path.to_vec()),
        },
    }
}

/// The address as looked up: `(address, domain, verp)`. An address without `@` gets
/// `@localhost`; `verp` is `prefix-@domain` when the local part contains the break
/// character `-`.
fn forms(addr: &[u8]) -> (Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
    let (local, domain) = match addr.iter().rposition(|&b| b == b'@') {
        Some(at) => (
            addr.get(..at).unwrap_or_default(),
            addr.get(at + 1..).unwrap_or_default().to_vec(),
        ),
        None => (addr, b"localhost".to_vec()),
    };
    let full = [local, b"@", &domain].concat();
    let verp = local
        .iter()
        .position(|&b| b == BREAK)
        .map(|i| [local.get(..=i).unwrap_or_default(), b"@", &domain].concat());
    (full, domain.to_ascii_lowercase(), verp)
}

impl Recipients {
    /// Reads `home/control/recipients`; `None` when the file does not exist (no check).
    pub fn load(home: &Path) -> Result<Option<Recipients>> {
        let text = match std::fs::read(home.join(CONTROL)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Failure::temp_io(
                    Kind::Config,
                    "unable to read control/recipients",
                    e,
                ));
            }
        };
        Ok(Some(Recipients::parse(home, &text)))
    }

    /// Builds the rules from the contents of a `control/recipients`.
    pub fn parse(home: &Path, text: &[u8]) -> Recipients {
        Recipients {
            home: home.to_path_buf(),
            rules: control::list_lines(text)
                .iter()
                .map(|l| parse_rule(l))
                .collect(),
        }
    }

    /// Checks one recipient address (as given in RCPT, without angle brackets). A PAM that
    /// exits 111 or crashes, or a database that cannot be read, is a temporary failure.
    pub fn check(&self, addr: &[u8]) -> Result<Verdict> {
        if addr.contains(&0) {
            return Ok(Verdict::Unknown);
        }
        let (full, domain, verp) = forms(addr);
        let key = [&b":"[..], &full].concat().to_ascii_lowercase();
        let vkey = verp
            .as_ref()
            .map(|v| [&b":"[..], v].concat().to_ascii_lowercase());
        for rule in &self.rules {
            match rule {
                Rule::Wild(d) if *d == domain => return Ok(Verdict::Wild),
                Rule::Wild(_) => {}
                Rule::PassRest => return Ok(Verdict::Pass),
                Rule::Cdb(d, path) if d.matches(&domain) => {
                    if self.in_cdb(path, &key, vkey.as_deref())? {
                        return Ok(Verdict::Cdb);
                    }
                }
                Rule::Pam(d, argv) if d.matches(&domain) => {
                    let mut ok = self.pam(argv, &full)?;
                    if let (false, Some(v)) = (ok, &verp) {
                        ok = self.pam(argv, v)?;
                    }
                    if ok {
                        return Ok(Verdict::Pam);
                    }
                }
                Rule::Cdb(..) | Rule::Pam(..) => {}
            }
        }
        Ok(Verdict::Unknown)
    }

    fn path(&self, p: &[u8]) -> PathBuf {
        self.home.join(Path::new(std::ffi::OsStr::from_bytes(p)))
    }

    fn in_cdb(&self, path: &[u8], key: &[u8], vkey: Option<&[u8]>) -> Result<bool> {
        let p = self.path(path);
        let trouble =
            |e| Failure::temp_io(Kind::Config, format!("unable to read {}", p.display()), e);
        let Some(db) = cdb::Reader::open(&p).map_err(trouble)? else {
            return Ok(false);
        };
        if db.get(key).map_err(trouble)?.is_some() {
            return Ok(true);
        }
        match vkey {
            Some(v) => Ok(db.get(v).map_err(trouble)?.is_some()),
            None => Ok(false),
        }
    }

    /// Runs a PAM for one address: `Ok(true)` on exit 0, `Ok(false)` on other exits except
    /// 111, which (like a crash or a failure to run it) is a temporary failure.
    fn pam(&self, argv: &[Vec<u8>], address: &[u8]) -> Result<bool> {
        let Some((prog, args)) = argv.split_first() else {
            return Ok(false);
        };
        let prog = if prog.contains(&b'/') {
            self.path(prog)
        } else {
            PathBuf::from(std::ffi::OsStr::from_bytes(prog))
        };
        let trouble = |e| {
            Failure::temp_io(
                Kind::System,
                format!("unable to run recipients PAM {}", prog.display()),
                e,
            )
        };
        let (r, mut w) = std::io::pipe().map_err(trouble)?;
        let mut c = Command::new(&prog);
        c.args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        crate::sys::proc::map_fds(&mut c, &[(r.as_raw_fd(), 3)]);
        let mut child = c.spawn().map_err(trouble)?;
        drop(r);
        let _ = w.write_all(&[address, b"\0\0\0"].concat());
        drop(w);
        let status = child.wait().map_err(trouble)?;
        match status.code() {
            Some(0) => Ok(true),
            Some(111) | None => Err(Failure::temp(
                Kind::System,
                format!("recipients PAM {} failed temporarily", prog.display()),
            )),
            Some(_) => Ok(false),
        }
    }
}

use std::os::unix::ffi::OsStrExt;

/// qmail-recipients: compiles `users/recipients` (one address per line, `#` comments) into
/// `users/recipients.cdb` with fastforward-style keys `:address`, lower-cased.
pub fn compile(home: &Path) -> Result<()> {
    super::compile(home, SOURCE, CDB, TMP, &mut |line, add| {
        let l = super::trim_end(line);
        if l.is_empty() || l.first() == Some(&b'#') {
            return Ok(());
        }
        add(&[&b":"[..], l].concat().to_ascii_lowercase(), b"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_rules() {
        assert_eq!(parse_rule(b"!*"), Rule::PassRest);
        assert_eq!(
            parse_rule(b"!Example.com"),
            Rule::Wild(b"example.com".to_vec())
        );
        assert_eq!(
            parse_rule(b"users/recipients.cdb"),
            Rule::Cdb(Domain::Any, b"users/recipients.cdb".to_vec())
        );
        assert_eq!(
            parse_rule(b"@a.example:x.cdb"),
            Rule::Cdb(Domain::Exact(b"a.example".to_vec()), b"x.cdb".to_vec())
        );
        assert_eq!(
            parse_rule(b"*|bin/pam  a b c d e f g"),
            Rule::Pam(
                Domain::Any,
                ["bin/pam", "a", "b", "c", "d", "e"]
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect()
            )
        );
    }

    #[test]
    fn domains_match_exactly_or_as_suffix_on_a_dot() {
        let s = Domain::parse(b"example.com");
        assert!(s.matches(b"example.com"));
        assert!(s.matches(b"mx.example.com"));
        assert!(!s.matches(b"badexample.com"));
        assert!(Domain::parse(b".example.com").matches(b"a.example.com"));
        assert!(!Domain::parse(b".example.com").matches(b"example.com"));
        let e = Domain::parse(b"@Example.com");
        assert!(e.matches(b"example.com"));
        assert!(!e.matches(b"mx.example.com"));
        assert!(Domain::parse(b"*").matches(b"anything"));
    }

    #[test]
    fn log_tags() {
        assert_eq!(Verdict::Cdb.log_tag(), "Recipients_Cdb");
        assert_eq!(Verdict::Pam.log_tag(), "Recipients_Pam");
        assert_eq!(Verdict::Wild.log_tag(), "Recipients_Wild");
        assert_eq!(Verdict::Pass.log_tag(), "Rcpthosts_Rcptto");
        let r = Recipients::parse(Path::new("/nonexistent"), b"!*\n");
        assert_eq!(r.check(b"a\0b@x").unwrap(), Verdict::Unknown);
        assert_eq!(r.check(b"ab@x").unwrap(), Verdict::Pass);
    }

    #[test]
    fn address_forms() {
        let (f, d, v) = forms(b"Joe-List@Example.COM");
        assert_eq!(f, b"Joe-List@Example.COM".to_vec());
        assert_eq!(d, b"example.com".to_vec());
        assert_eq!(v, Some(b"Joe-@Example.COM".to_vec()));
        let (f, d, v) = forms(b"postmaster");
        assert_eq!(
            (f, d, v),
            (
                b"postmaster@localhost".to_vec(),
                b"localhost".to_vec(),
                None
            )
        );
    }
}
