//! Command lines: the verb, the argument, the path inside `<…>` and the MAIL parameters.

use crate::addr::PATH_MAX;

/// A command line split into its verb (lower-cased) and its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// The verb, lower-cased ASCII.
    pub verb: Vec<u8>,
    /// What follows the verb, leading spaces skipped.
    pub arg: &'a [u8],
}

/// Splits a command line (without its line end) as qmail's commands.c does: the verb runs to
/// the first space, the argument is the rest after the spaces.
pub fn split(line: &[u8]) -> Command<'_> {
    let i = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
    let (verb, rest) = line.split_at(i);
    let skip = rest.iter().take_while(|&&c| c == b' ').count();
    Command {
        verb: verb.to_ascii_lowercase(),
        arg: rest.get(skip..).unwrap_or_default(),
    }
}

/// A path read from `MAIL FROM:<…>` or `RCPT TO:<…>`: the address and the text after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path<'a> {
    /// The address: source route removed, quotes and backslashes taken out.
    pub addr: Vec<u8>,
    /// What follows the closing `>` (the ESMTP parameters).
    pub params: &'a [u8],
}

/// Reads the path out of a MAIL or RCPT argument. `None` without a `<`, without the closing
/// `>`, or with an address over [`PATH_MAX`] bytes: the caller answers `555 syntax error`.
pub fn path(arg: &[u8]) -> Option<Path<'_>> {
    let open = arg.iter().position(|&c| c == b'<')?;
    let mut rest = arg.get(open + 1..)?;
    if rest.first() == Some(&b'@') {
        let colon = rest.iter().position(|&c| c == b':' || c == b'>')?;
        if rest.get(colon) == Some(&b':') {
            rest = rest.get(colon + 1..)?;
        }
    }
    let mut addr = Vec::new();
    let (mut esc, mut quoted) = (false, false);
    for (i, &c) in rest.iter().enumerate() {
        if esc {
            addr.push(c);
            esc = false;
        } else if c == b'\\' {
            esc = true;
        } else if c == b'"' {
            quoted = !quoted;
        } else if c == b'>' && !quoted {
            return Some(Path {
                addr,
                params: rest.get(i + 1..).unwrap_or_default(),
            });
        } else {
            addr.push(c);
        }
        if addr.len() > PATH_MAX {
            return None;
        }
    }
    None
}

/// The ESMTP parameters of MAIL that qmail-smtpd looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`, when given and numeric (saturating at `u64::MAX`).
    pub size: Option<u64>,
    /// `AUTH=<xtext>`, decoded; `<>` stays as it is.
    pub auth: Option<Vec<u8>>,
    /// `SMTPUTF8` was given.
    pub smtputf8: bool,
    /// `BODY=8BITMIME` (or any other BODY value) was given.
    pub body: Option<Vec<u8>>,
}

/// Reads the parameters after the path; unknown ones are ignored as qmail ignores them.
pub fn mail_params(params: &[u8]) -> MailParams {
    let mut p = MailParams::default();
    for word in params.split(|&c| c == b' ').filter(|w| !w.is_empty()) {
        let (key, value) = match word.iter().position(|&c| c == b'=') {
            Some(i) => (word.get(..i).unwrap_or_default(), word.get(i + 1..)),
            None => (word, None),
        };
        let key = key.to_ascii_uppercase();
        match (key.as_slice(), value) {
            (b"SIZE", Some(v)) => p.size = Some(size_value(v)),
            (b"AUTH", Some(v)) => p.auth = Some(xtext(v)),
            (b"BODY", Some(v)) => p.body = Some(v.to_vec()),
            (b"SMTPUTF8", None) => p.smtputf8 = true,
            _ => {}
        }
    }
    p
}

fn size_value(v: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &c in v.iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    n
}

/// Decodes RFC 3461 xtext (`+XX` hex escapes); malformed escapes are kept as they are.
pub fn xtext(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&c) = v.get(i) {
        if c == b'+'
            && let Some(b) = v
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_lower_cased_and_arguments_trimmed() {
        let c = split(b"MaIl   FROM:<a@b>");
        assert_eq!(c.verb, b"mail");
        assert_eq!(c.arg, b"FROM:<a@b>");
        assert_eq!(split(b"QUIT").arg, b"");
        assert_eq!(split(b"").verb, b"");
    }

    #[test]
    fn paths_follow_qmail_addrparse() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"FROM:<a@b>", Some(b"a@b")),
            (b"FROM:<>", Some(b"")),
            (b"TO:<@x,@y:u@z>", Some(b"u@z")),
            (b"TO:<\"a b\"@c>", Some(b"a b@c")),
            (b"TO:<\"a>b\"@c>", Some(b"a>b@c")),
            (b"TO:<a\\>b@c>", Some(b"a>b@c")),
            (b"TO:a@b", None),
            (b"TO:<a@b", None),
            (b"TO:<@x>", Some(b"@x")),
        ];
        for (arg, want) in cases {
            let got = path(arg).map(|p| p.addr);
            assert_eq!(got.as_deref(), *want, "{:?}", String::from_utf8_lossy(arg));
        }
    }

    #[test]
    fn path_length_limit_is_900() {
        let ok = format!("FROM:<{}>", "a".repeat(PATH_MAX));
        assert!(path(ok.as_bytes()).is_some());
        let long = format!("FROM:<{}>", "a".repeat(PATH_MAX + 1));
        assert!(path(long.as_bytes()).is_none());
    }

    #[test]
    fn mail_parameters() {
        let p = path(b"FROM:<a@b> size=1000 BODY=8BITMIME SMTPUTF8 AUTH=x+2By+3D").unwrap();
        let m = mail_params(p.params);
        assert_eq!(m.size, Some(1000));
        assert_eq!(m.body.as_deref(), Some(&b"8BITMIME"[..]));
        assert!(m.smtputf8);
        assert_eq!(m.auth.as_deref(), Some(&b"x+y="[..]));
        assert_eq!(
            mail_params(b" SIZE=99999999999999999999999").size,
            Some(u64::MAX)
        );
        assert_eq!(xtext(b"+4"), b"+4");
    }
}
