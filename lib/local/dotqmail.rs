//! The `.qmail` file: which file applies to an extension, what each of its lines asks for,
//! and the envelope sender forwards get. Pure functions; the driver in [`super`] does the
//! file-system work.
//!
//! The rules are qmail-local's: the extension is lower-cased and every `.` in it becomes
//! `:` so that no name can climb out of the home directory; `.qmail<dash><ext>` is tried
//! first, then `<prefix>-default` for every prefix that ends before a `-`, longest first.
//! A candidate whose extension part holds a `/` is skipped, so an address cannot reach
//! into a subdirectory either.

/// The most bytes a `.qmail` file (or the default delivery) may hold.
pub const FILE_MAX: usize = 1 << 20;
/// The longest line, without its newline.
pub const LINE_MAX: usize = 4096;
/// The most lines.
pub const LINES_MAX: usize = 65_536;

/// The extension as it appears in file names: lower case, `.` replaced by `:`.
pub fn safe_ext(ext: &[u8]) -> Vec<u8> {
    ext.iter()
        .map(|&c| {
            if c == b'.' {
                b':'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// A file name to try, and what `DEFAULT` becomes when it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The name, relative to the home directory.
    pub name: Vec<u8>,
    /// The value of `DEFAULT` if this file is used.
    pub default: Option<Vec<u8>>,
}

fn dotqmail(dash: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut n = b".qmail".to_vec();
    n.extend_from_slice(dash);
    for p in parts {
        n.extend_from_slice(p);
    }
    n
}

/// The files qmail-local tries, in order, for `dash` and the original `ext`.
pub fn candidates(dash: &[u8], ext: &[u8]) -> Vec<Candidate> {
    let safe = safe_ext(ext);
    let mut out = Vec::new();
    if !safe.contains(&b'/') {
        let default = safe
            .len()
            .checked_sub(7)
            .filter(|&i| safe.get(i..) == Some(&b"default"[..]))
            .and_then(|i| ext.get(i..))
            .map(<[u8]>::to_vec);
        out.push(Candidate {
            name: dotqmail(dash, &[&safe]),
            default,
        });
    }
    for i in (0..=safe.len()).rev() {
        if i != 0 && safe.get(i - 1) != Some(&b'-') {
            continue;
        }
        let prefix = safe.get(..i).unwrap_or_default();
        if prefix.contains(&b'/') {
            continue;
        }
        out.push(Candidate {
            name: dotqmail(dash, &[prefix, b"default"]),
            default: ext.get(i..).map(<[u8]>::to_vec),
        });
    }
    out
}

/// The names whose existence changes the sender of forwards: `.qmail<dash><ext>-owner`
/// and `-owner-default`. `None` when the extension holds a `/`.
pub fn owner_names(dash: &[u8], ext: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let safe = safe_ext(ext);
    if safe.contains(&b'/') {
        return None;
    }
    Some((
        dotqmail(dash, &[&safe, b"-owner"]),
        dotqmail(dash, &[&safe, b"-owner-default"]),
    ))
}

/// Whether the `-owner` files exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// No `-owner` file: forwards keep the sender.
    Absent,
    /// `-owner` exists: forwards come from `local-owner@host`.
    Plain,
    /// `-owner` and `-owner-default` exist: forwards get a VERP sender.
    Verp,
}

/// The sender forwards use (`NEWSENDER`). Bounces (`""` and `#@[]`) keep their sender.
pub fn new_sender(sender: &[u8], local: &[u8], host: &[u8], owner: Owner) -> Vec<u8> {
    if sender.is_empty() || sender == b"#@[]" {
        return sender.to_vec();
    }
    let tail: &[&[u8]] = match owner {
        Owner::Absent => return sender.to_vec(),
        Owner::Plain => &[b"-owner@", host],
        Owner::Verp => &[b"-owner-@", host, b"-@[]"],
    };
    let mut s = local.to_vec();
    for t in tail {
        s.extend_from_slice(t);
    }
    s
}

/// One delivery instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// An empty line after the first: nothing to do.
    Blank,
    /// `#…`
    Comment,
    /// `&address` or a bare address.
    Forward(&'a [u8]),
    /// `+list`: the rest of the file may only forward.
    ForwardOnly,
    /// Another line starting with `+`: ignored.
    Ignored,
    /// A path ending in `/`.
    Maildir(&'a [u8]),
    /// A path not ending in `/`.
    Mbox(&'a [u8]),
    /// `|command`: the command.
    Program(&'a [u8]),
}

/// Why a `.qmail` file cannot be used. Each is a temporary failure with qmail's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// The first line is empty.
    FirstLineBlank,
    /// More than [`FILE_MAX`] bytes.
    TooLong,
    /// A line longer than [`LINE_MAX`].
    LineTooLong,
    /// More than [`LINES_MAX`] lines.
    TooManyLines,
}

impl Bad {
    /// The report text.
    pub fn text(self) -> String {
        match self {
            Bad::FirstLineBlank => "Uh-oh: first line of .qmail file is blank. (#4.2.1)".into(),
            Bad::TooLong => format!("Uh-oh: .qmail file is longer than {FILE_MAX} bytes. (#4.2.1)"),
            Bad::LineTooLong => {
                format!("Uh-oh: .qmail file has a line longer than {LINE_MAX} bytes. (#4.2.1)")
            }
            Bad::TooManyLines => {
                format!("Uh-oh: .qmail file has more than {LINES_MAX} lines. (#4.2.1)")
            }
        }
    }
}

/// Classifies one line. A NUL ends the line, as it does for qmail's C strings; trailing
/// spaces and tabs are ignored.
pub fn classify(raw: &[u8]) -> Line<'_> {
    let mut line = raw.split(|&c| c == 0).next().unwrap_or_default();
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    match line.first() {
        None => Line::Blank,
        Some(b'#') => Line::Comment,
        Some(b'.' | b'/') if line.last() == Some(&b'/') => Line::Maildir(line),
        Some(b'.' | b'/') => Line::Mbox(line),
        Some(b'|') => Line::Program(line.get(1..).unwrap_or_default()),
        Some(b'+') if line == b"+list" => Line::ForwardOnly,
        Some(b'+') => Line::Ignored,
        Some(b'&') => Line::Forward(line.get(1..).unwrap_or_default()),
        Some(_) => Line::Forward(line),
    }
}

/// Splits the contents of a `.qmail` file into classified lines, checking the limits and
/// the blank first line. A missing final newline is supplied.
pub fn parse(text: &[u8]) -> Result<Vec<Line<'_>>, Bad> {
    if text.len() > FILE_MAX {
        return Err(Bad::TooLong);
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut out = Vec::new();
    for raw in body.split(|&c| c == b'\n') {
        if raw.len() > LINE_MAX {
            return Err(Bad::LineTooLong);
        }
        if out.len() == LINES_MAX {
            return Err(Bad::TooManyLines);
        }
        let line = classify(raw);
        if out.is_empty() && line == Line::Blank {
            return Err(Bad::FirstLineBlank);
        }
        out.push(line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dash: &str, ext: &str) -> Vec<(String, Option<String>)> {
        candidates(dash.as_bytes(), ext.as_bytes())
            .into_iter()
            .map(|c| {
                (
                    String::from_utf8(c.name).unwrap(),
                    c.default.map(|d| String::from_utf8(d).unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn candidates_follow_qmesearch() {
        let d = |s: &str| Some(s.to_string());
        for (dash, ext, want) in [
            ("", "", vec![(".qmail", None), (".qmaildefault", d(""))]),
            ("-", "", vec![(".qmail-", None), (".qmail-default", d(""))]),
            (
                "-",
                "a",
                vec![(".qmail-a", None), (".qmail-default", d("a"))],
            ),
            (
                "-",
                "a-",
                vec![
                    (".qmail-a-", None),
                    (".qmail-a-default", d("")),
                    (".qmail-default", d("a-")),
                ],
            ),
            (
                "-",
                "Foo.Bar-Baz",
                vec![
                    (".qmail-foo:bar-baz", None),
                    (".qmail-foo:bar-default", d("Baz")),
                    (".qmail-default", d("Foo.Bar-Baz")),
                ],
            ),
            (
                "-",
                "a-b-c",
                vec![
                    (".qmail-a-b-c", None),
                    (".qmail-a-b-default", d("c")),
                    (".qmail-a-default", d("b-c")),
                    (".qmail-default", d("a-b-c")),
                ],
            ),
            (
                "-",
                "list-Default",
                vec![
                    (".qmail-list-default", d("Default")),
                    (".qmail-list-default", d("Default")),
                    (".qmail-default", d("list-Default")),
                ],
            ),
            ("-", "../x", vec![(".qmail-default", d("../x"))]),
            ("-", "a/b-c", vec![(".qmail-default", d("a/b-c"))]),
        ] {
            let want: Vec<(String, Option<String>)> =
                want.into_iter().map(|(n, d)| (n.to_string(), d)).collect();
            assert_eq!(names(dash, ext), want, "dash {dash:?} ext {ext:?}");
        }
    }

    #[test]
    fn safe_ext_lowers_and_maps_dots() {
        assert_eq!(safe_ext(b"A.B..C-d"), b"a:b::c-d");
        assert_eq!(safe_ext(b"\xc3\x89"), b"\xc3\x89");
    }

    #[test]
    fn owner_names_and_new_sender() {
        assert_eq!(
            owner_names(b"-", b"List"),
            Some((
                b".qmail-list-owner".to_vec(),
                b".qmail-list-owner-default".to_vec()
            ))
        );
        assert_eq!(owner_names(b"-", b"a/b"), None);
        for (sender, owner, want) in [
            ("a@b.example", Owner::Absent, "a@b.example"),
            ("a@b.example", Owner::Plain, "joe-list-owner@h.example"),
            ("a@b.example", Owner::Verp, "joe-list-owner-@h.example-@[]"),
            ("", Owner::Verp, ""),
            ("#@[]", Owner::Plain, "#@[]"),
        ] {
            assert_eq!(
                new_sender(sender.as_bytes(), b"joe-list", b"h.example", owner),
                want.as_bytes(),
                "{sender:?} {owner:?}"
            );
        }
    }

    #[test]
    fn lines_are_classified_like_qmail_local() {
        for (raw, want) in [
            (&b""[..], Line::Blank),
            (b" \t ", Line::Blank),
            (b"# hi", Line::Comment),
            (b"./Maildir/", Line::Maildir(b"./Maildir/")),
            (b"./Maildir/  \t", Line::Maildir(b"./Maildir/")),
            (b"/var/mail/joe", Line::Mbox(b"/var/mail/joe")),
            (b".Mailbox", Line::Mbox(b".Mailbox")),
            (b"|preline procmail ", Line::Program(b"preline procmail")),
            (b"|", Line::Program(b"")),
            (b"&joe@example.org", Line::Forward(b"joe@example.org")),
            (b"joe@example.org", Line::Forward(b"joe@example.org")),
            (b" joe@example.org", Line::Forward(b" joe@example.org")),
            (b"&", Line::Forward(b"")),
            (b"+list", Line::ForwardOnly),
            (b"+list ", Line::ForwardOnly),
            (b"+lists", Line::Ignored),
            (b"+", Line::Ignored),
            (b"|cmd\0rest", Line::Program(b"cmd")),
            (b"\0abc", Line::Blank),
        ] {
            assert_eq!(classify(raw), want, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn parse_never_panics_on_noise() {
        const ABC: &[u8] = b"\n \t#&|./+x\0-";
        let mut x = 7u64;
        for len in 0..2000 {
            let data: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ABC[usize::try_from(x >> 60).unwrap() % ABC.len()]
                })
                .collect();
            if let Ok(lines) = parse(&data) {
                assert!(lines.len() <= LINES_MAX);
                assert_ne!(lines.first(), Some(&Line::Blank));
            }
            let ext: Vec<u8> = data.iter().copied().take(40).collect();
            for c in candidates(b"-", &ext) {
                assert!(!c.name.get(6..).unwrap_or_default().contains(&b'/'));
                assert!(c.name.starts_with(b".qmail-"));
            }
        }
    }

    #[test]
    fn parse_checks_the_first_line_and_the_limits() {
        assert_eq!(parse(b"\n./Maildir/\n"), Err(Bad::FirstLineBlank));
        assert_eq!(parse(b"  \n"), Err(Bad::FirstLineBlank));
        assert_eq!(
            parse(b"./Maildir/\n\n#x\n|true"),
            Ok(vec![
                Line::Maildir(b"./Maildir/"),
                Line::Blank,
                Line::Comment,
                Line::Program(b"true")
            ])
        );
        let at = vec![b'#'; LINE_MAX];
        assert_eq!(parse(&at).map(|v| v.len()), Ok(1));
        let past = vec![b'#'; LINE_MAX + 1];
        assert_eq!(parse(&past), Err(Bad::LineTooLong));
        let lines = b"#\n".repeat(LINES_MAX);
        assert_eq!(parse(&lines).map(|v| v.len()), Ok(LINES_MAX));
        let lines = b"#\n".repeat(LINES_MAX + 1);
        assert_eq!(parse(&lines), Err(Bad::TooManyLines));
        let mut line = vec![b'#'; 4095];
        line.push(b'\n');
        let mut big = line.repeat(FILE_MAX / 4096);
        assert_eq!(parse(&big).map(|v| v.len()), Ok(256));
        big.push(b'#');
        assert_eq!(parse(&big), Err(Bad::TooLong));
        assert_eq!(
            Bad::TooLong.text(),
            "Uh-oh: .qmail file is longer than 1048576 bytes. (#4.2.1)"
        );
    }
}
