//! qmail-pw2u: turns a V7 passwd file (`user:password:uid:gid:gecos:home:shell`) into
//! `users/assign` lines, by qmail-getpw's rules unless told otherwise.
//!
//! An account is skipped when its uid is 0, its home directory is missing or owned by
//! someone else, or its name has upper-case letters. Each remaining account gets its name
//! (or the names `users/mailnames` gives it) and every `name<break>ext`; the alias account
//! also gets the catch-all `+` line. `users/include` and `users/exclude` filter accounts,
//! `users/subusers` adds addresses handled by another account's `.qmail-pre` files, and
//! `users/append` is copied to the end. Lookups in these files ignore ASCII case and the
//! last of duplicate entries wins, as with qmail's constmap.
//!
//! Every failure is temporary (exit 111); a bad option is a usage error (exit 100).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::control;
use crate::fail::{Failure, Kind, Result};
use crate::users::{self, Ending};

/// The largest `users/include`, `users/exclude` or `users/mailnames` read.
pub const TABLE_MAX_BYTES: u64 = 64 << 20;

/// What to do about an account's home directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeCheck {
    /// `-H`: do not look at it.
    Ignore,
    /// `-o` (default): skip the account when it is missing or not owned by the account.
    Skip,
    /// `-h`: stop when it is missing; skip the account when it is not owned by it.
    Stop,
}

/// qmail-pw2u's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// How home directories are checked (`-o`, `-h`, `-H`).
    pub home: HomeCheck,
    /// Accept names with upper-case letters (`-u`; `-U` is the default).
    pub upper: bool,
    /// The user-extension delimiter (`-c`), or none (`-C`).
    pub brk: Option<u8>,
    /// `-/`: `.qmail-/ext` instead of `.qmail-ext`.
    pub slash: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            home: HomeCheck::Skip,
            upper: false,
            brk: Some(users::BREAK),
            slash: false,
        }
    }
}

impl Options {
    /// Parses the arguments after the program name as qmail's getopt does with
    /// `/ohHuUc:C`: clustered flags, `-c` taking the rest of its word or the next word (only
    /// its first character counts; an empty one means no delimiter), `--` ending the
    /// options. Words after the options are ignored. A permanent usage failure otherwise.
    pub fn parse(args: &[&[u8]]) -> Result<Options> {
        let usage = || Failure::perm(Kind::Usage, "usage: qmail-pw2u [ -/ohHuUC ] [ -cchar ]");
        let mut o = Options::default();
        let mut words = args.iter();
        while let Some(&word) = words.next() {
            if word == b"--" {
                break;
            }
            let Some(flags) = word.strip_prefix(b"-").filter(|f| !f.is_empty()) else {
                break;
            };
            for (i, &c) in flags.iter().enumerate() {
                match c {
                    b'/' => o.slash = true,
                    b'o' => o.home = HomeCheck::Skip,
                    b'h' => o.home = HomeCheck::Stop,
                    b'H' => o.home = HomeCheck::Ignore,
                    b'u' => o.upper = true,
                    b'U' => o.upper = false,
                    b'C' => o.brk = None,
                    b'c' => {
                        let rest = flags.get(i + 1..).unwrap_or_default();
                        let arg = if rest.is_empty() {
                            *words.next().ok_or_else(usage)?
                        } else {
                            rest
                        };
                        o.brk = arg.first().copied().filter(|&b| b != 0);
                        break;
                    }
                    _ => return Err(usage()),
                }
            }
        }
        Ok(o)
    }

    fn dash(&self) -> &'static [u8] {
        if self.slash { b"-/:" } else { b"-:" }
    }
}

fn controls(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Config, "unable to read controls", e)
}

fn read_input(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Read, "unable to read input", e)
}

fn write_output(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Write, "unable to write output", e)
}

/// Opens `home/name`; `Ok(None)` when it does not exist.
fn open(home: &Path, name: &str) -> Result<Option<File>> {
    match File::open(home.join(name)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(controls(e)),
    }
}

/// A list file read as qmail's control_readfile does; `None` when absent.
fn table(home: &Path, name: &str) -> Result<Option<Vec<Vec<u8>>>> {
    let Some(f) = open(home, name)? else {
        return Ok(None);
    };
    let mut b = Vec::new();
    f.take(TABLE_MAX_BYTES + 1)
        .read_to_end(&mut b)
        .map_err(controls)?;
    if u64::try_from(b.len()).unwrap_or(u64::MAX) > TABLE_MAX_BYTES {
        return Err(controls(io::Error::new(
            io::ErrorKind::InvalidData,
            "file too large",
        )));
    }
    Ok(Some(control::list_lines(&b)))
}

fn lower(s: &[u8]) -> Vec<u8> {
    s.to_ascii_lowercase()
}

/// The lookup tables from `users/`.
struct Tables {
    include: Option<HashSet<Vec<u8>>>,
    exclude: Option<HashSet<Vec<u8>>>,
    mailnames: Option<HashMap<Vec<u8>, Vec<u8>>>,
}

impl Tables {
    fn load(home: &Path) -> Result<Tables> {
        let set = |l: Vec<Vec<u8>>| -> HashSet<Vec<u8>> { l.iter().map(|n| lower(n)).collect() };
        let map = |l: Vec<Vec<u8>>| -> HashMap<Vec<u8>, Vec<u8>> {
            l.iter()
                .filter_map(|n| {
                    let c = n.iter().position(|&b| b == b':')?;
                    Some((lower(n.get(..c)?), n.get(c + 1..)?.to_vec()))
                })
                .collect()
        };
        Ok(Tables {
            include: table(home, "users/include")?.map(set),
            exclude: table(home, "users/exclude")?.map(set),
            mailnames: table(home, "users/mailnames")?.map(map),
        })
    }
}

/// One conversion run.
struct Run<'a, W: Write> {
    home: &'a Path,
    opts: &'a Options,
    alias: &'a [u8],
    tables: Tables,
    /// Accepted accounts by lower-cased name: `:user:uid:gid:home:`.
    accounts: HashMap<Vec<u8>, Vec<u8>>,
    saw_alias: bool,
    out: W,
}

impl<W: Write> Run<'_, W> {
    fn put(&mut self, parts: &[&[u8]]) -> Result<()> {
        for p in parts {
            self.out.write_all(p).map_err(write_output)?;
        }
        Ok(())
    }

    fn account(&mut self, line: &[u8]) -> Result<()> {
        if line.contains(&0) {
            return Ok(());
        }
        let f: Vec<&[u8]> = line.splitn(7, |&c| c == b':').collect();
        let [user, _, uid, gid, _, home, _] = f[..] else {
            return Ok(());
        };
        let Some(uid_n) = control::leading_number(uid).filter(|&n| n != 0) else {
            return Ok(());
        };
        if !self.opts.upper && user.iter().any(u8::is_ascii_uppercase) {
            return Ok(());
        }
        let name = lower(user);
        if self
            .tables
            .include
            .as_ref()
            .is_some_and(|s| !s.contains(&name))
        {
            return Ok(());
        }
        if self
            .tables
            .exclude
            .as_ref()
            .is_some_and(|s| s.contains(&name))
        {
            return Ok(());
        }
        if self.opts.home != HomeCheck::Ignore {
            let dir = self.home.join(std::ffi::OsStr::from_bytes(home));
            let die = |e: io::Error| {
                let what = format!("unable to stat {}", String::from_utf8_lossy(home));
                Failure::temp_io(Kind::System, what, e)
            };
            match std::fs::metadata(&dir) {
                Ok(m) if u64::from(m.uid()) != uid_n => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound && self.opts.home == HomeCheck::Skip =>
                {
                    return Ok(());
                }
                Err(e) => return Err(die(e)),
            }
        }
        let uugh = [b":", user, b":", uid, b":", gid, b":", home, b":"].concat();
        self.accounts.insert(name.clone(), uugh.clone());
        let dash = self.opts.dash();
        if user == self.alias {
            self.put(&[b"+", &uugh, dash, b":\n"])?;
            self.saw_alias = true;
        }
        let names = self
            .tables
            .mailnames
            .as_ref()
            .and_then(|m| m.get(&name))
            .cloned()
            .unwrap_or_else(|| user.to_vec());
        for n in names.split(|&c| c == b':').filter(|n| !n.is_empty()) {
            self.put(&[b"=", n, &uugh, b"::\n"])?;
            if let Some(b) = self.opts.brk {
                self.put(&[b"+", n, &[b], &uugh, dash, b":\n"])?;
            }
        }
        Ok(())
    }

    fn subuser(&mut self, line: &[u8]) -> Result<()> {
        let mut f = line.splitn(4, |&c| c == b':');
        let (Some(sub), Some(user), Some(rest)) = (f.next(), f.next(), f.next()) else {
            return Ok(());
        };
        let Some(uugh) = self.accounts.get(&lower(user)).cloned() else {
            let what = format!(
                "unable to find {} user for subuser",
                String::from_utf8_lossy(user)
            );
            return Err(Failure::temp(Kind::Config, what));
        };
        let Some(pre) = f.next().map(|_| rest) else {
            return Ok(());
        };
        let dash = self.opts.dash();
        self.put(&[b"=", sub, &uugh, dash, pre, b":\n"])?;
        if let Some(b) = self.opts.brk {
            self.put(&[b"+", sub, &[b], &uugh, dash, pre, b"-:\n"])?;
        }
        Ok(())
    }
}

/// Reads a passwd file from `input` and writes assignments to `out`, consulting the files
/// in `home/users/`; `alias` is the name of the alias account, which must be among the
/// accounts accepted.
pub fn convert(
    home: &Path,
    opts: &Options,
    alias: &[u8],
    input: &mut impl BufRead,
    out: impl Write,
) -> Result<()> {
    let tables = Tables::load(home)?;
    let mut run = Run {
        home,
        opts,
        alias,
        tables,
        accounts: HashMap::new(),
        saw_alias: false,
        out,
    };
    let mut line = Vec::new();
    loop {
        let ending = users::getln(input, &mut line, users::LINE_MAX_BYTES).map_err(read_input)?;
        run.account(&line)?;
        if ending == Ending::Eof {
            break;
        }
    }
    if !run.saw_alias {
        let what = format!("unable to find {} user", String::from_utf8_lossy(alias));
        return Err(Failure::temp(Kind::Config, what));
    }
    if let Some(f) = open(home, "users/subusers")? {
        let mut r = BufReader::new(f);
        loop {
            let ending =
                users::getln(&mut r, &mut line, users::LINE_MAX_BYTES).map_err(read_input)?;
            run.subuser(&line)?;
            if ending == Ending::Eof {
                break;
            }
        }
    }
    if let Some(mut f) = open(home, "users/append")? {
        let mut buf = [0u8; 8192];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_input(e)),
            };
            run.put(&[buf.get(..n).unwrap_or_default()])?;
        }
    }
    run.put(&[b".\n"])?;
    run.out.flush().map_err(write_output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(s: &[&str]) -> Result<Options> {
        let v: Vec<&[u8]> = s.iter().map(|a| a.as_bytes()).collect();
        Options::parse(&v)
    }

    #[test]
    fn options_follow_getopt() {
        let d = Options::default();
        let cases: &[(&[&str], Options)] = &[
            (&[], d.clone()),
            (
                &["-h"],
                Options {
                    home: HomeCheck::Stop,
                    ..d.clone()
                },
            ),
            (
                &["-hH"],
                Options {
                    home: HomeCheck::Ignore,
                    ..d.clone()
                },
            ),
            (
                &["-H", "-o"],
                Options {
                    home: HomeCheck::Skip,
                    ..d.clone()
                },
            ),
            (
                &["-uU", "-u"],
                Options {
                    upper: true,
                    ..d.clone()
                },
            ),
            (
                &["-c+"],
                Options {
                    brk: Some(b'+'),
                    ..d.clone()
                },
            ),
            (
                &["-c", "+x"],
                Options {
                    brk: Some(b'+'),
                    ..d.clone()
                },
            ),
            (
                &["-C"],
                Options {
                    brk: None,
                    ..d.clone()
                },
            ),
            (
                &["-c", ""],
                Options {
                    brk: None,
                    ..d.clone()
                },
            ),
            (
                &["-/"],
                Options {
                    slash: true,
                    ..d.clone()
                },
            ),
            (&["--", "-h"], d.clone()),
            (&["x", "-h"], d.clone()),
            (
                &["-uc.h"],
                Options {
                    upper: true,
                    brk: Some(b'.'),
                    ..d.clone()
                },
            ),
        ];
        for (a, want) in cases {
            assert_eq!(&args(a).unwrap(), want, "{a:?}");
        }
        for bad in [&["-x"][..], &["-c"], &["-hq"]] {
            let e = args(bad).unwrap_err();
            assert_eq!(e.exit_code(), 100, "{bad:?}");
        }
    }

    struct Home(std::path::PathBuf);
    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The uid the test accounts use: the caller's, or an unused one when running as root
    /// (uid 0 accounts are always skipped).
    fn test_uid() -> u32 {
        match crate::sys::euid() {
            0 => 64_123,
            u => u,
        }
    }

    /// An instance with home directories `a` and `j` owned by [`test_uid`].
    fn home(files: &[(&str, &[u8])]) -> Home {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let h = std::env::temp_dir().join(format!("sqmail-pw2u-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&h);
        std::fs::create_dir_all(h.join("users")).unwrap();
        for d in ["a", "j"] {
            std::fs::create_dir(h.join(d)).unwrap();
            std::fs::set_permissions(h.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
            if crate::sys::euid() == 0 {
                std::os::unix::fs::chown(h.join(d), Some(test_uid()), None).unwrap();
            }
        }
        for (name, body) in files {
            std::fs::write(h.join(name), body).unwrap();
        }
        Home(h)
    }

    fn run(h: &Home, opts: &Options, passwd: &str) -> Result<String> {
        let mut out = Vec::new();
        convert(&h.0, opts, b"alias", &mut passwd.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn accounts_become_assignments() {
        let u = test_uid();
        let other = u + 1;
        let h = home(&[]);
        let o = Options::default();
        let pw = format!(
            "root:x:0:0:root:/root:/bin/sh\n\
             alias:x:{u}:9:A:a:/bin/false\n\
             joe:x:{u}:100:Joe:j:/bin/sh\n\
             Upper:x:{u}:1:U:j:/bin/sh\n\
             gone:x:{u}:1:G:missing:/bin/sh\n\
             theirs:x:{other}:1:T:j:/bin/sh\n\
             nouid:x:abc:1:N:j:/bin/sh\n\
             short:x:{u}:1:S:j\n\
             nul:x:{u}:1:\0:j:/bin/sh\n\
             last:x:{u}:7:L:j:"
        );
        let want = format!(
            "+:alias:{u}:9:a:-::\n\
             =alias:alias:{u}:9:a:::\n\
             +alias-:alias:{u}:9:a:-::\n\
             =joe:joe:{u}:100:j:::\n\
             +joe-:joe:{u}:100:j:-::\n\
             =last:last:{u}:7:j:::\n\
             +last-:last:{u}:7:j:-::\n\
             .\n"
        );
        assert_eq!(run(&h, &o, &pw).unwrap(), want);

        let opts = Options {
            upper: true,
            brk: Some(b'+'),
            slash: true,
            ..o.clone()
        };
        let got = run(
            &h,
            &opts,
            &format!("alias:x:{u}:9:A:a:\nUpper:x:{u}:1:U:j:\n"),
        )
        .unwrap();
        let want = format!(
            "+:alias:{u}:9:a:-/::\n=alias:alias:{u}:9:a:::\n+alias+:alias:{u}:9:a:-/::\n\
             =Upper:Upper:{u}:1:j:::\n+Upper+:Upper:{u}:1:j:-/::\n.\n"
        );
        assert_eq!(got, want);

        let ignore = Options {
            home: HomeCheck::Ignore,
            brk: None,
            ..o.clone()
        };
        let got = run(
            &h,
            &ignore,
            &format!("alias:x:{u}:9:A:nowhere:\ngone:x:5:1:G:x:\n"),
        )
        .unwrap();
        let want = format!(
            "+:alias:{u}:9:nowhere:-::\n=alias:alias:{u}:9:nowhere:::\n=gone:gone:5:1:x:::\n.\n"
        );
        assert_eq!(got, want);

        let stop = Options {
            home: HomeCheck::Stop,
            ..o.clone()
        };
        let e = run(
            &h,
            &stop,
            &format!("alias:x:{u}:9:A:a:\ngone:x:{u}:1:G:missing:\n"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to stat missing: No such file or directory"
        );
        assert_eq!(e.exit_code(), 111);

        let e = run(&h, &o, &format!("joe:x:{u}:1:J:j:\n")).unwrap_err();
        assert_eq!(e.to_string(), "unable to find alias user");
    }

    #[test]
    fn users_files_shape_the_output() {
        let u = test_uid();
        let h = home(&[
            ("users/include", b"alias\nJOE\nbob\n# comment\n"),
            ("users/exclude", b"bob\n"),
            (
                "users/mailnames",
                b"joe:joe.shmoe::shmoe\nnocolon\nJoe:j.s:js\n",
            ),
            ("users/subusers", b"list:JOE:lst:\nbad\nsub:joe\n"),
            ("users/append", b"=extra:x:1:1:/x:::\npartial"),
        ]);
        let pw = format!(
            "alias:x:{u}:9:A:a:\njoe:x:{u}:100:J:j:\nbob:x:{u}:1:B:j:\ncarl:x:{u}:1:C:j:\n"
        );
        let want = format!(
            "+:alias:{u}:9:a:-::\n=alias:alias:{u}:9:a:::\n+alias-:alias:{u}:9:a:-::\n\
             =j.s:joe:{u}:100:j:::\n+j.s-:joe:{u}:100:j:-::\n\
             =js:joe:{u}:100:j:::\n+js-:joe:{u}:100:j:-::\n\
             =list:joe:{u}:100:j:-:lst:\n+list-:joe:{u}:100:j:-:lst-:\n\
             =extra:x:1:1:/x:::\npartial.\n"
        );
        assert_eq!(run(&h, &Options::default(), &pw).unwrap(), want);
        std::fs::write(h.0.join("users/subusers"), b"s:nobody:p:\n").unwrap();
        let e = run(&h, &Options::default(), &pw).unwrap_err();
        assert_eq!(e.to_string(), "unable to find nobody user for subuser");
    }
}
