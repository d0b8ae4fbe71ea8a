//! Option parsing as DJB's sgetopt does it, which qmail-inject and sendmail use: options
//! stop at the first argument that does not start with `-`, at a lone `-` (kept as an
//! argument) and at an argument starting `--` (dropped, whatever follows the dashes).

/// One step of the parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opt {
    /// An option letter, with its argument if the letter takes one.
    Found(u8, Option<Vec<u8>>),
    /// A letter not in the list: `prog: illegal option -- x`.
    Illegal(u8),
    /// A letter whose argument is missing: `prog: option requires an argument -- x`.
    MissingArgument(u8),
}

impl Opt {
    /// The line sgetopt prints for a problem, `None` for a good option.
    pub fn complaint(&self, prog: &[u8]) -> Option<Vec<u8>> {
        let (what, c) = match self {
            Opt::Found(..) => return None,
            Opt::Illegal(c) => (&b": illegal option -- "[..], *c),
            Opt::MissingArgument(c) => (&b": option requires an argument -- "[..], *c),
        };
        Some([prog, what, &[c, b'\n']].concat())
    }
}

/// A parse of `args` (argument 0 is the program name) against `spec`, where a letter
/// followed by `:` takes an argument.
pub struct Getopt<'a> {
    args: &'a [Vec<u8>],
    spec: &'static [u8],
    index: usize,
    pos: usize,
}

impl<'a> Getopt<'a> {
    /// Starts a parse.
    pub fn new(args: &'a [Vec<u8>], spec: &'static [u8]) -> Getopt<'a> {
        Getopt {
            args,
            spec,
            index: 1,
            pos: 0,
        }
    }

    /// The arguments left after the options.
    pub fn rest(&self) -> &'a [Vec<u8>] {
        self.args.get(self.index..).unwrap_or_default()
    }

    /// Skips what is left of the current argument (sendmail's `-E` and `-J`).
    pub fn skip_rest_of_argument(&mut self) {
        if let Some(a) = self.args.get(self.index) {
            self.pos = a.len();
        }
    }

    fn takes_argument(&self, c: u8) -> Option<bool> {
        let at = self.spec.iter().position(|&s| s == c && c != b':')?;
        Some(self.spec.get(at + 1) == Some(&b':'))
    }

    /// The next option, or `None` when the options are over.
    pub fn next_opt(&mut self) -> Option<Opt> {
        let mut arg = self.args.get(self.index)?;
        if self.pos > 0 && self.pos >= arg.len() {
            self.index += 1;
            self.pos = 0;
            arg = self.args.get(self.index)?;
        }
        if self.pos == 0 {
            if arg.first() != Some(&b'-') {
                return None;
            }
            match arg.get(1) {
                None => return None,
                Some(b'-') => {
                    self.index += 1;
                    return None;
                }
                Some(_) => self.pos = 1,
            }
        }
        let c = *arg.get(self.pos)?;
        self.pos += 1;
        match self.takes_argument(c) {
            None => Some(Opt::Illegal(c)),
            Some(false) => Some(Opt::Found(c, None)),
            Some(true) => {
                let attached = arg.get(self.pos..).unwrap_or_default().to_vec();
                self.index += 1;
                self.pos = 0;
                if !attached.is_empty() {
                    return Some(Opt::Found(c, Some(attached)));
                }
                match self.args.get(self.index) {
                    Some(next) => {
                        self.index += 1;
                        Some(Opt::Found(c, Some(next.clone())))
                    }
                    None => Some(Opt::MissingArgument(c)),
                }
            }
        }
    }
}

/// The last path component of a program name, as sgetopt names the program.
pub fn basename(argv0: &[u8]) -> &[u8] {
    argv0.rsplit(|&c| c == b'/').next().unwrap_or(argv0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(args: &[&str], spec: &'static [u8]) -> (Vec<Opt>, Vec<String>) {
        let v: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let mut g = Getopt::new(&v, spec);
        let mut out = Vec::new();
        while let Some(o) = g.next_opt() {
            let bad = !matches!(o, Opt::Found(..));
            out.push(o);
            if bad {
                break;
            }
        }
        let rest = g
            .rest()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (out, rest)
    }

    fn found(c: u8, a: Option<&str>) -> Opt {
        Opt::Found(c, a.map(|s| s.as_bytes().to_vec()))
    }

    #[test]
    fn options_parse_as_sgetopt_does() {
        let spec = b"aAhHnNf:";
        assert_eq!(
            all(&["p", "-an", "x"], spec),
            (vec![found(b'a', None), found(b'n', None)], vec!["x".into()])
        );
        assert_eq!(
            all(&["p", "-ffoo", "-f", "bar", "x"], spec).0,
            vec![found(b'f', Some("foo")), found(b'f', Some("bar"))]
        );
        assert_eq!(
            all(&["p", "-af", "s@h"], spec).0,
            vec![found(b'a', None), found(b'f', Some("s@h"))]
        );
        assert_eq!(all(&["p", "--", "-a"], spec), (vec![], vec!["-a".into()]));
        assert_eq!(all(&["p", "--x", "-a"], spec), (vec![], vec!["-a".into()]));
        assert_eq!(
            all(&["p", "-", "-a"], spec),
            (vec![], vec!["-".into(), "-a".into()])
        );
        assert_eq!(all(&["p", "-x"], spec).0, vec![Opt::Illegal(b'x')]);
        assert_eq!(all(&["p", "-f"], spec).0, vec![Opt::MissingArgument(b'f')]);
        assert_eq!(all(&["p", "-:"], spec).0, vec![Opt::Illegal(b':')]);
        assert_eq!(all(&["p", "-f", ""], spec).0, vec![found(b'f', Some(""))]);
    }

    #[test]
    fn complaints_name_the_program_and_letter() {
        assert_eq!(
            Opt::Illegal(b'x').complaint(b"qmail-inject").unwrap(),
            b"qmail-inject: illegal option -- x\n"
        );
        assert_eq!(
            Opt::MissingArgument(b'f').complaint(b"sendmail").unwrap(),
            b"sendmail: option requires an argument -- f\n"
        );
        assert_eq!(basename(b"/var/qmail/bin/sendmail"), b"sendmail");
        assert_eq!(basename(b"mailq"), b"mailq");
    }
}
