//! DJB's getopt (ucspi-tcp's sgetopt): options come before operands; flags cluster
//! (`-vR`); an option's argument is the rest of its word or the next word (`-c5`, `-c 5`,
//! even `-c ""` and `-c --`); `--` ends the options and is consumed; a lone `-` is the first
//! operand. A problem is reported as `name: illegal option -- x` or `name: option requires
//! an argument -- x`, where `name` is the last path component of `argv[0]`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One option letter with its argument, if it takes one.
pub type Opt = (u8, Option<OsString>);

/// Why option parsing stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A letter not in the spec.
    Illegal(u8),
    /// A letter that takes an argument came last.
    NeedsArgument(u8),
}

impl Problem {
    /// The line sgetopt prints for the problem, `argv0` being the program's `argv[0]`.
    pub fn message(&self, argv0: &OsStr) -> Vec<u8> {
        let b = argv0.as_bytes();
        let name = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
        let (text, c): (&[u8], u8) = match *self {
            Problem::Illegal(c) => (b": illegal option -- ", c),
            Problem::NeedsArgument(c) => (b": option requires an argument -- ", c),
        };
        let mut m = name.to_vec();
        m.extend_from_slice(text);
        m.push(c);
        m.push(b'\n');
        m
    }
}

/// Whether `c` is in `spec`, and whether it takes an argument. A `:` is never a letter.
fn lookup(spec: &[u8], c: u8) -> Option<bool> {
    let mut i = 0;
    while let Some(&s) = spec.get(i) {
        let takes = spec.get(i + 1) == Some(&b':');
        if s == c && s != b':' {
            return Some(takes);
        }
        i += if takes { 2 } else { 1 };
    }
    None
}

/// Parses the options at the front of `args` (argv without `argv[0]`). Returns them in order
/// with the index of the first operand in `args`.
///
/// # Errors
/// The first [`Problem`]; the options before it have been seen but are not returned.
pub fn parse(args: &[OsString], spec: &[u8]) -> Result<(Vec<Opt>, usize), Problem> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(word) = args.get(i) {
        let w = word.as_bytes();
        if w.first() != Some(&b'-') || w.len() < 2 {
            break;
        }
        if w == b"--" {
            i += 1;
            break;
        }
        let mut pos = 1;
        while let Some(&c) = w.get(pos) {
            pos += 1;
            match lookup(spec, c) {
                None => return Err(Problem::Illegal(c)),
                Some(false) => out.push((c, None)),
                Some(true) => {
                    let rest = w.get(pos..).unwrap_or_default();
                    if rest.is_empty() {
                        i += 1;
                        let next = args.get(i).ok_or(Problem::NeedsArgument(c))?;
                        out.push((c, Some(next.clone())));
                    } else {
                        out.push((c, Some(OsString::from_vec(rest.to_vec()))));
                    }
                    break;
                }
            }
        }
        i += 1;
    }
    Ok((out, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn clusters_arguments_and_the_end_marker() {
        let (o, n) = parse(&args(&["-vRc5", "-x", "r.cdb", "--", "-h"]), b"vRc:x:h").unwrap();
        assert_eq!(
            o,
            vec![
                (b'v', None),
                (b'R', None),
                (b'c', Some("5".into())),
                (b'x', Some("r.cdb".into()))
            ]
        );
        assert_eq!(n, 4, "-- is consumed");
        let (o, n) = parse(&args(&["-c", "--", "0"]), b"c:").unwrap();
        assert_eq!(o, vec![(b'c', Some("--".into()))]);
        assert_eq!(n, 2);
        let (o, n) = parse(&args(&["-", "-v"]), b"v").unwrap();
        assert!(o.is_empty());
        assert_eq!(n, 0, "a lone dash is an operand");
        let (_, n) = parse(&args(&["0", "-v"]), b"v").unwrap();
        assert_eq!(n, 0, "options stop at the first operand");
    }

    #[test]
    fn problems_read_as_sgetopt_prints_them() {
        let e = parse(&args(&["-vz"]), b"v").unwrap_err();
        assert_eq!(e, Problem::Illegal(b'z'));
        assert_eq!(
            e.message(OsStr::new("/usr/bin/x/tcpserver")),
            b"tcpserver: illegal option -- z\n"
        );
        let e = parse(&args(&["-v", "-c"]), b"vc:").unwrap_err();
        assert_eq!(e, Problem::NeedsArgument(b'c'));
        assert_eq!(
            e.message(OsStr::new("p")),
            b"p: option requires an argument -- c\n"
        );
        assert_eq!(
            parse(&args(&["-:"]), b"a:b").unwrap_err(),
            Problem::Illegal(b':')
        );
    }
}
