//! `users/assign`, the address assignments of qmail-users(5): the compiler behind qmail-newu
//! and the lookup qmail-lspawn makes in the database it writes.
//!
//! An assignment line is `=local:user:uid:gid:homedir:dash:ext:` (exactly `local`) or
//! `+loc:user:uid:gid:homedir:dash:pre:` (every address starting with `loc`); the file ends
//! with a line starting with `.`. In the database a simple assignment is keyed by `!`, the
//! lower-cased local part and a NUL, a wildcard by `!` and the lower-cased prefix; the data
//! is the six fields joined by NULs. One more record, under the empty key, lists the last
//! characters of all wildcard prefixes, so a lookup tries only the prefixes that can match.
//!
//! The database is written twice, with the same bytes: `users/assign.cdb` (s/qmail 4.x) and
//! `users/cdb` (qmail 1.03, s/qmail 3.x). Each is replaced atomically; a format error leaves
//! both untouched. Every failure here is temporary, as in qmail-newu (exit 111).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::cdb;
use crate::fail::{Failure, Kind, Result};

/// The assignments, relative to the qmail home.
pub const ASSIGN: &str = "users/assign";
/// The database s/qmail 4.x reads.
pub const CDB: &str = "users/assign.cdb";
/// The database qmail 1.03 and s/qmail 3.x read.
pub const LEGACY_CDB: &str = "users/cdb";
/// qmail's conf-break: the character between a user name and an extension.
pub const BREAK: u8 = b'-';
/// The longest line read from the files in `users/` and `control/morercpthosts`, newline
/// included. qmail has no limit; assignments are a few hundred bytes.
pub const LINE_MAX_BYTES: usize = 1 << 20;
/// Mode of the databases written (qmail-newu's umask 033 on a 0644 file).
pub const CDB_MODE: u32 = 0o644;

/// How a line read by [`getln`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// With a newline (kept in the buffer).
    Newline,
    /// At the end of the input, without a newline; the buffer may be empty.
    Eof,
}

/// Reads one line, newline included, into `line` (cleared first), as qmail's getln does, but
/// refuses lines longer than `max` bytes with `InvalidData`.
pub fn getln(input: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> io::Result<Ending> {
    line.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX);
    Read::take(&mut *input, limit).read_until(b'\n', line)?;
    if line.last() == Some(&b'\n') {
        return Ok(Ending::Newline);
    }
    if line.len() >= max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(Ending::Eof)
}

/// What one line of `users/assign` means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A database record.
    Record(Vec<u8>, Vec<u8>),
    /// The final `.` line.
    End,
}

fn bad_format() -> Failure {
    Failure::temp(Kind::Input, "bad format in users/assign")
}

/// Turns assignment lines into database records, collecting the wildcard characters.
#[derive(Clone, Debug, Default)]
pub struct Compiler {
    wildchars: Vec<u8>,
}

impl Compiler {
    /// A compiler that has seen no wildcard yet.
    pub fn new() -> Compiler {
        Compiler::default()
    }

    /// One line, with its newline when `ending` says it had one. A line starting with `.`
    /// ends the file; any other line must end with a newline, hold no NUL, have a non-empty
    /// first field and at least six more colons. A first character other than `+` makes a
    /// simple assignment, as in qmail-newu.
    pub fn line(&mut self, line: &[u8], ending: Ending) -> Result<Step> {
        if line.first() == Some(&b'.') {
            return Ok(Step::End);
        }
        if ending == Ending::Eof || line.contains(&0) {
            return Err(bad_format());
        }
        let colon = line
            .iter()
            .position(|&c| c == b':')
            .ok_or_else(bad_format)?;
        if colon == 0 {
            return Err(bad_format());
        }
        let name = line.get(1..colon).unwrap_or_default();
        let mut key = Vec::with_capacity(name.len() + 2);
        key.push(b'!');
        key.extend(name.iter().map(u8::to_ascii_lowercase));
        if line.first() == Some(&b'+') {
            if let Some(&last) = name.last()
                && !self.wildchars.contains(&last)
            {
                self.wildchars.push(last);
            }
        } else {
            key.push(0);
        }
        let rest = line.get(colon + 1..).unwrap_or_default();
        let mut data = Vec::with_capacity(rest.len());
        let mut colons = 0;
        for &c in rest {
            if c == b':' {
                colons += 1;
                if colons == 6 {
                    break;
                }
                data.push(0);
            } else {
                data.push(c);
            }
        }
        if colons < 6 {
            return Err(bad_format());
        }
        Ok(Step::Record(key, data))
    }

    /// The record under the empty key: the last characters of the wildcard prefixes, each
    /// once, in the order first seen, as written (not lower-cased).
    pub fn wildcard_record(&self) -> (Vec<u8>, Vec<u8>) {
        (Vec::new(), self.wildchars.clone())
    }
}

/// Where compiled records go: a key and its data.
pub type Sink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Database records: keys and data, in order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads assignments from `input` and hands every record, the empty-key record last, to
/// `add` as soon as it is read. A caller that must not act on a bad file abandons what it
/// made when this fails, as [`newu`] does with its temporary files.
pub fn compile(input: &mut impl BufRead, add: &mut Sink<'_>) -> Result<()> {
    let mut c = Compiler::new();
    let mut line = Vec::new();
    loop {
        let ending = getln(input, &mut line, LINE_MAX_BYTES)
            .map_err(|e| Failure::temp_io(Kind::Read, "unable to read users/assign", e))?;
        match c.line(&line, ending)? {
            Step::End => break,
            Step::Record(k, d) => add(&k, &d)?,
        }
    }
    let (k, d) = c.wildcard_record();
    add(&k, &d)
}

/// The records `users/assign` with contents `text` compiles to.
pub fn records(text: &[u8]) -> Result<Records> {
    let mut out = Vec::new();
    compile(&mut &text[..], &mut |k, d| {
        out.push((k.to_vec(), d.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// qmail-newu: compiles `home/users/assign` into `users/assign.cdb` and `users/cdb`, each
/// through a `.tmp` file that is fsynced and renamed. On any failure the temporary files are
/// removed and the old databases stay as they were; only when the second rename fails after
/// the first succeeded is `users/assign.cdb` (the one [`open`] prefers) newer than
/// `users/cdb`, until the next run.
pub fn newu(home: &Path) -> Result<()> {
    let file = File::open(home.join(ASSIGN))
        .map_err(|e| Failure::temp_io(Kind::Config, "unable to open users/assign", e))?;
    let mut input = BufReader::new(file);
    let mut out: Vec<(&str, cdb::Writer)> = Vec::new();
    for name in [CDB, LEGACY_CDB] {
        match cdb::Writer::create_beside(&home.join(name), CDB_MODE) {
            Ok(w) => out.push((name, w)),
            Err(e) => {
                abandon(out);
                return Err(Failure::temp_io(
                    Kind::Write,
                    format!("unable to open {name}.tmp"),
                    e,
                ));
            }
        }
    }
    let compiled = compile(&mut input, &mut |k, d| {
        for (name, w) in out.iter_mut() {
            w.add(k, d).map_err(|e| {
                Failure::temp_io(Kind::Write, format!("unable to write {name}.tmp"), e)
            })?;
        }
        Ok(())
    });
    if let Err(f) = compiled {
        abandon(out);
        return Err(f);
    }
    let mut writers = out.into_iter();
    while let Some((name, w)) = writers.next() {
        if let Err(e) = w.finish() {
            abandon(writers.collect());
            let what = format!("unable to write {name}.tmp and move it to {name}");
            return Err(Failure::temp_io(Kind::Write, what, e));
        }
    }
    Ok(())
}

fn abandon(out: Vec<(&str, cdb::Writer)>) {
    for (_, w) in out {
        w.abandon();
    }
}

/// An assignment found for a local part: what qmail-lspawn passes to qmail-local.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The account name.
    pub user: Vec<u8>,
    /// The user id, as written.
    pub uid: Vec<u8>,
    /// The group id, as written.
    pub gid: Vec<u8>,
    /// The home directory.
    pub home: Vec<u8>,
    /// The text between `.qmail` and the extension (`-` or empty).
    pub dash: Vec<u8>,
    /// The extension; for a wildcard, the prefix's `pre` followed by the rest of the address.
    pub ext: Vec<u8>,
}

impl Assignment {
    /// Splits qmail-lspawn's record (six NUL-separated fields; the extension ends at the
    /// next NUL if any). `None` when there are fewer than six fields.
    pub fn from_record(data: &[u8]) -> Option<Assignment> {
        let mut f = data.split(|&c| c == 0);
        let mut next = || f.next().map(<[u8]>::to_vec);
        Some(Assignment {
            user: next()?,
            uid: next()?,
            gid: next()?,
            home: next()?,
            dash: next()?,
            ext: next()?,
        })
    }

    /// The user id, read as qmail's scan_ulong does (leading digits); `None` without digits
    /// or beyond 32 bits.
    pub fn uid(&self) -> Option<u32> {
        crate::control::leading_number(&self.uid).and_then(|n| u32::try_from(n).ok())
    }

    /// The group id, read as [`Assignment::uid`] is.
    pub fn gid(&self) -> Option<u32> {
        crate::control::leading_number(&self.gid).and_then(|n| u32::try_from(n).ok())
    }
}

/// Opens the assignment database: `users/assign.cdb`, else `users/cdb`; `Ok(None)` when
/// neither exists. Temporary failure when one exists but cannot be opened.
pub fn open(home: &Path) -> Result<Option<cdb::Reader>> {
    for name in [CDB, LEGACY_CDB] {
        let path: PathBuf = home.join(name);
        match cdb::Reader::open(&path) {
            Ok(Some(r)) => return Ok(Some(r)),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::temp_io(
                    Kind::Config,
                    format!("unable to read {name}"),
                    e,
                ));
            }
        }
    }
    Ok(None)
}

fn trouble(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Config, "trouble reading users/cdb", e)
}

/// qmail-lspawn's lookup of `local` (an address's local part, any case): first the exact
/// key, then the wildcard prefixes from the longest (the whole local part) to the empty one,
/// trying a prefix only when it is empty or its last character is a wildcard character. A
/// wildcard hit gets the unmatched rest of `local`, in its original case, appended to its
/// extension. `Ok(None)` when nothing matches (qmail-getpw decides then). A database
/// without the empty-key record is a temporary failure, as in qmail-lspawn.
pub fn lookup(db: &cdb::Reader, local: &[u8]) -> Result<Option<Assignment>> {
    let wild = db.get(b"").map_err(trouble)?.ok_or_else(|| {
        Failure::temp(
            Kind::Config,
            "trouble reading users/cdb: no wildcard record",
        )
    })?;
    let mut key = Vec::with_capacity(local.len() + 2);
    key.push(b'!');
    key.extend(local.iter().map(u8::to_ascii_lowercase));
    key.push(0);
    let mut len = key.len();
    let mut wildcard = false;
    while len > 0 {
        let last = key.get(len - 1).copied().unwrap_or(0);
        if (!wildcard || len == 1 || wild.contains(&last))
            && let Some(mut data) = db
                .get(key.get(..len).unwrap_or_default())
                .map_err(trouble)?
        {
            if wildcard {
                data.extend_from_slice(local.get(len - 1..).unwrap_or_default());
            }
            return Assignment::from_record(&data).map(Some).ok_or_else(|| {
                Failure::temp(Kind::Config, "trouble reading users/cdb: short record")
            });
        }
        len -= 1;
        wildcard = true;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &[u8], d: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (k.to_vec(), d.to_vec())
    }

    #[test]
    fn lines_compile_to_qmail_newu_records() {
        let cases: &[(&str, &[u8], Records)] = &[
            ("empty file with end", b".\n", vec![rec(b"", b"")]),
            ("end without newline", b".", vec![rec(b"", b"")]),
            (
                "simple lower-cased, with NUL",
                b"=Joe.Shmoe:joe:503:78:/home/joe:::\n.\n",
                vec![rec(b"!joe.shmoe\0", b"joe\x00503\x0078\0/home/joe\0\0"), rec(b"", b"")],
            ),
            (
                "wildcard without NUL, char as written",
                b"+Joe-:joe:507:100:/home/joe:-::\n+:alias:7790:2108:/a:-::\n+BoB:b:1:2:/b:-:x:\n.\n",
                vec![
                    rec(b"!joe-", b"joe\x00507\x00100\0/home/joe\0-\0"),
                    rec(b"!", b"alias\x007790\x002108\0/a\0-\0"),
                    rec(b"!bob", b"b\x001\x002\0/b\0-\0x"),
                    rec(b"", b"-B"),
                ],
            ),
            (
                "wildcard chars once each, first-seen order",
                b"+a-:u:1:1:/h:::\n+b-:u:1:1:/h:::\n+cx:u:1:1:/h:::\n.\n",
                vec![
                    rec(b"!a-", b"u\x001\x001\0/h\0\0"),
                    rec(b"!b-", b"u\x001\x001\0/h\0\0"),
                    rec(b"!cx", b"u\x001\x001\0/h\0\0"),
                    rec(b"", b"-x"),
                ],
            ),
            (
                "text after the sixth colon is dropped",
                b"=x:u:1:2:/h:-:e:junk:more\n.\n",
                vec![rec(b"!x\0", b"u\x001\x002\0/h\0-\0e"), rec(b"", b"")],
            ),
            (
                "any first character but + is simple",
                b"xjoe:u:1:2:/h:::\n.\n",
                vec![rec(b"!joe\0", b"u\x001\x002\0/h\0\0"), rec(b"", b"")],
            ),
            (
                "lines after the dot are ignored",
                b"=a:u:1:2:/h:::\n.anything\ngarbage",
                vec![rec(b"!a\0", b"u\x001\x002\0/h\0\0"), rec(b"", b"")],
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(&records(text).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn format_errors_are_temporary_and_named_as_qmail_does() {
        let cases: &[(&str, &[u8])] = &[
            ("empty file", b""),
            ("no final dot", b"=a:u:1:2:/h:::\n"),
            ("last line without newline", b"=a:u:1:2:/h:::"),
            ("five colons", b"=a:u:1:2:/h::\n.\n"),
            ("no colon", b"=abc\n.\n"),
            ("empty first field", b":u:1:2:/h:::\n.\n"),
            ("NUL byte", b"=a:u:1:2:/h\0x:::\n.\n"),
            ("empty line", b"\n.\n"),
        ];
        for (name, text) in cases {
            let e = records(text).unwrap_err();
            assert!(e.is_temp(), "{name}");
            assert_eq!(e.to_string(), "bad format in users/assign", "{name}");
            assert_eq!(e.exit_code(), 111, "{name}");
        }
    }

    #[test]
    fn line_limit_is_enforced() {
        let ok = [
            &b"=a:u:1:2:/"[..],
            &vec![b'h'; LINE_MAX_BYTES - 14],
            b":::\n.\n",
        ]
        .concat();
        assert_eq!(records(&ok).unwrap().len(), 2);
        let long = [
            &b"=a:u:1:2:/"[..],
            &vec![b'h'; LINE_MAX_BYTES - 13],
            b":::\n.\n",
        ]
        .concat();
        let e = records(&long).unwrap_err();
        assert_eq!(e.to_string(), "unable to read users/assign: line too long");
    }

    fn db(text: &[u8]) -> (PathBuf, cdb::Reader) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let home = std::env::temp_dir().join(format!("sqmail-users-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("users")).unwrap();
        std::fs::write(home.join(ASSIGN), text).unwrap();
        newu(&home).unwrap();
        let r = open(&home).unwrap().unwrap();
        (home, r)
    }

    #[test]
    fn lookup_follows_qmail_lspawn() {
        let (home, r) = db(b"+:alias:7790:2108:/var/qmail/alias:-::\n\
            +joe-:joe:507:100:/home/joe:-::\n\
            =joe:joe:507:100:/home/joe:::\n\
            =joe:second:1:1:/x:::\n\
            +list-:list:9:9:/home/list:-:pre-:\n\
            +uP:up:8:8:/home/up:-:u:\n\
            .\n");
        let f = |u: &str, uid: &str, home: &str, dash: &str, ext: &str| Assignment {
            user: u.into(),
            uid: uid.into(),
            gid: match u {
                "alias" => b"2108".to_vec(),
                "joe" => b"100".to_vec(),
                _ => uid.into(),
            },
            home: home.into(),
            dash: dash.into(),
            ext: ext.into(),
        };
        let cases: &[(&str, &[u8], Assignment)] = &[
            (
                "exact beats wildcard",
                b"joe",
                f("joe", "507", "/home/joe", "", ""),
            ),
            (
                "exact is case-insensitive",
                b"JoE",
                f("joe", "507", "/home/joe", "", ""),
            ),
            (
                "wildcard keeps the tail",
                b"joe-direct",
                f("joe", "507", "/home/joe", "-", "direct"),
            ),
            (
                "tail keeps its case",
                b"JOE-Direct",
                f("joe", "507", "/home/joe", "-", "Direct"),
            ),
            (
                "catch-all",
                b"bill",
                f("alias", "7790", "/var/qmail/alias", "-", "bill"),
            ),
            (
                "prefix appended to pre",
                b"list-x-y",
                f("list", "9", "/home/list", "-", "pre-x-y"),
            ),
            (
                "wildcard matches itself",
                b"list-",
                f("list", "9", "/home/list", "-", "pre-"),
            ),
            (
                "upper-case wildchar never matches",
                b"upx",
                f("alias", "7790", "/var/qmail/alias", "-", "upx"),
            ),
            (
                "empty local part",
                b"",
                f("alias", "7790", "/var/qmail/alias", "-", ""),
            ),
        ];
        for (name, local, want) in cases {
            assert_eq!(lookup(&r, local).unwrap().as_ref(), Some(want), "{name}");
        }
        assert_eq!(lookup(&r, b"joe").unwrap().unwrap().uid(), Some(507));
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn lookup_without_catch_all_can_miss() {
        let (home, r) = db(b"=joe:joe:507:100:/home/joe:::\n.\n");
        assert_eq!(lookup(&r, b"joe-x").unwrap(), None);
        assert_eq!(lookup(&r, b"bill").unwrap(), None);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn both_databases_hold_the_same_bytes_and_failures_keep_them() {
        let (home, r) = db(b"=a:u:1:2:/h:::\n.\n");
        drop(r);
        let old = std::fs::read(home.join(CDB)).unwrap();
        assert_eq!(std::fs::read(home.join(LEGACY_CDB)).unwrap(), old);
        std::fs::write(home.join(ASSIGN), b"=b:u:1:2:/h:::\n").unwrap();
        let e = newu(&home).unwrap_err();
        assert_eq!(e.to_string(), "bad format in users/assign");
        assert_eq!(std::fs::read(home.join(CDB)).unwrap(), old);
        assert_eq!(std::fs::read(home.join(LEGACY_CDB)).unwrap(), old);
        assert!(!home.join("users/cdb.tmp").exists());
        assert!(!home.join("users/assign.cdb.tmp").exists());
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn database_without_wildcard_record_is_trouble() {
        let dir = std::env::temp_dir().join(format!("sqmail-users-nowild-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cdb");
        let mut w = cdb::Writer::create_beside(&p, 0o644).unwrap();
        w.add(b"!joe\0", b"joe\x001\x001\0/h\0\0").unwrap();
        w.finish().unwrap();
        let r = cdb::Reader::open(&p).unwrap().unwrap();
        let e = lookup(&r, b"joe").unwrap_err();
        assert!(e.is_temp());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn short_records_split_into_none() {
        assert_eq!(Assignment::from_record(b"a\0b\0c\0d\0e"), None);
        let a = Assignment::from_record(b"a\x001\x002\0d\0e\0f\0g").unwrap();
        assert_eq!(
            (&a.ext[..], a.uid(), a.gid()),
            (&b"f"[..], Some(1), Some(2))
        );
    }
}
