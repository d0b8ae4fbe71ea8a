//! qmail-inject's address rewriting (rwgeneric) and qmail's quoting of local parts
//! (quote.c).
//!
//! An address arrives as tokens in reverse order, the last token first, as the address-list
//! walk in [`super::list::addrlist`] hands it over. The rules, in qmail's order: leave
//! `<>` and `<foo@[]>` alone; drop a source route; drop a trailing dot or `@`; add
//! `@defaulthost` when there is no `@`; replace a trailing `+` of the host with
//! `.plusdomain`; add `.defaultdomain` to a host without dots (literals excepted).

use super::token::{self, Kind, Token};

/// The three names qmail-inject adds to addresses, each held as the tokens qmail parses
/// from `@defaulthost`, `.defaultdomain` and `.plusdomain`.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Tokens of `@` + defaulthost.
    pub default_host: Vec<Token>,
    /// Tokens of `.` + defaultdomain.
    pub default_domain: Vec<Token>,
    /// Tokens of `.` + plusdomain.
    pub plus_domain: Vec<Token>,
}

impl Rules {
    /// Rules from the three names; `Err` carries the text qmail could not parse.
    pub fn new(host: &[u8], domain: &[u8], plus: &[u8]) -> Result<Rules, Vec<u8>> {
        let tokens = |prefix: &[u8], name: &[u8]| {
            let s = [prefix, name].concat();
            token::parse(&s).ok_or(s)
        };
        Ok(Rules {
            default_host: tokens(b"@", host)?,
            default_domain: tokens(b".", domain)?,
            plus_domain: tokens(b".", plus)?,
        })
    }

    /// Rewrites a reversed address in place (qmail's rwgeneric).
    pub fn generic(&self, a: &mut Vec<Token>) {
        if a.is_empty() {
            return; // <>
        }
        if let [first, second, ..] = a.as_slice()
            && second.kind == Kind::At
            && first.kind == Kind::Literal
            && first.text.is_empty()
        {
            return; // <foo@[]>
        }
        drop_route(a);
        if a.is_empty() {
            return;
        }
        drop_first(a, Kind::Dot);
        if a.is_empty() {
            return;
        }
        drop_first(a, Kind::At);
        if a.is_empty() {
            return;
        }
        if !a.iter().any(|t| t.kind == Kind::At) {
            prepend(a, &self.default_host);
        }
        self.plus(a);
        self.no_dot(a);
    }

    fn plus(&self, a: &mut Vec<Token>) {
        let Some(last) = a.first_mut() else { return };
        if last.kind != Kind::Atom || last.text.last() != Some(&b'+') {
            return;
        }
        last.text.pop();
        prepend(a, &self.plus_domain);
    }

    fn no_dot(&self, a: &mut Vec<Token>) {
        let host = a.iter().take_while(|t| t.kind != Kind::At);
        if host
            .clone()
            .any(|t| t.kind == Kind::Dot || t.kind == Kind::Literal)
        {
            return;
        }
        prepend(a, &self.default_domain);
    }
}

/// `<@a,@b:user@host>` loses everything up to the colon; the address is reversed, so the
/// route sits at the end.
fn drop_route(a: &mut Vec<Token>) {
    if a.last().is_some_and(|t| t.kind == Kind::At) {
        while let Some(t) = a.pop() {
            if t.kind == Kind::Colon {
                return;
            }
        }
    }
}

fn drop_first(a: &mut Vec<Token>, kind: Kind) {
    if a.first().is_some_and(|t| t.kind == kind) {
        a.remove(0);
    }
}

/// Appends `tokens` (in reading order) to the end of a reversed address.
fn prepend(a: &mut Vec<Token>, tokens: &[Token]) {
    a.splice(0..0, tokens.iter().rev().cloned());
}

/// The plain text of a reversed address.
pub fn text(reversed: &[Token]) -> Vec<u8> {
    let forward: Vec<Token> = reversed.iter().rev().cloned().collect();
    token::unquote(&forward)
}

/// Whether a local part needs quoting in RFC 821 and RFC 822 (qmail's quote_need).
pub fn quote_need(s: &[u8]) -> bool {
    let ok = |c: u8| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'/'
                    | b'='
                    | b'?'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'{'
                    | b'|'
                    | b'}'
                    | b'~'
                    | b'.'
            )
    };
    s.is_empty()
        || !s.iter().all(|&c| ok(c))
        || s.starts_with(b".")
        || s.ends_with(b".")
        || s.windows(2).any(|w| w == b"..")
}

/// A local part, quoted if it needs it (qmail's quote).
pub fn quote(s: &[u8]) -> Vec<u8> {
    if !quote_need(s) {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &c in s {
        if matches!(c, b'\r' | b'\n' | b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
    out
}

/// An address with its local part (before the last `@`) quoted if needed (qmail's
/// quote2). Like qmail, which sees a C string, it stops at a NUL byte.
pub fn quote2(s: &[u8]) -> Vec<u8> {
    let s = cstr(s);
    if s.is_empty() {
        return Vec::new();
    }
    match s.iter().rposition(|&c| c == b'@') {
        None => quote(s),
        Some(at) => {
            let mut out = quote(s.get(..at).unwrap_or_default());
            out.extend_from_slice(s.get(at..).unwrap_or_default());
            out
        }
    }
}

/// The bytes before the first NUL: what qmail's C strings keep of an address.
pub fn cstr(s: &[u8]) -> &[u8] {
    s.split(|&c| c == 0).next().unwrap_or_default()
}
