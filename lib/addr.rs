//! Envelope addresses: SMTP paths as qmail-smtpd reads them, quoting for `Return-Path:` and
//! the SMTP client, and qmail-send's recipient rewriting (percenthack, locals,
//! virtualdomains, envnoathost).
//!
//! Addresses are bytes: qmail never assumed an encoding and neither does this module.

use std::collections::HashSet;

use crate::envelope::ADDR_MAX;

/// qmail-smtpd refuses paths longer than this (its `addrparse`).
pub const PATH_MAX: usize = 900;

/// Reads the address out of the argument of `MAIL FROM:` or `RCPT TO:` as qmail-smtpd
/// does: the text inside `<…>` (or, from a client that ignores RFC 5321, up to the first
/// space), a source route `@a,@b:` removed, backslash escapes and double quotes taken out.
/// `None` when the path is longer than [`PATH_MAX`].
pub fn parse_path(arg: &[u8]) -> Option<Vec<u8>> {
    let (mut rest, terminator) = match arg.iter().position(|&c| c == b'<') {
        Some(i) => (arg.get(i + 1..)?, b'>'),
        None => (arg.trim_ascii_start(), b' '),
    };
    if rest.first() == Some(&b'@') {
        rest = match rest.iter().position(|&c| c == b':') {
            Some(i) => rest.get(i + 1..)?,
            None => &[],
        };
    }
    let mut out = Vec::new();
    let (mut esc, mut quoted) = (false, false);
    for &c in rest {
        if esc {
            out.push(c);
            esc = false;
        } else if !quoted && c == terminator {
            break;
        } else {
            match c {
                b'\\' => esc = true,
                b'"' => quoted = !quoted,
                _ => out.push(c),
            }
        }
        if out.len() > PATH_MAX {
            return None;
        }
    }
    Some(out)
}

/// Characters a local part may carry unquoted (qmail's quote.c table; `.` is checked apart).
fn atom_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&c)
}

/// True when the local part needs quoting in an RFC 821/822 address.
pub fn quote_needed(local: &[u8]) -> bool {
    if local.is_empty() {
        return false;
    }
    if !local.iter().all(|&c| atom_ok(c)) {
        return true;
    }
    local.first() == Some(&b'.')
        || local.last() == Some(&b'.')
        || local.windows(2).any(|w| w == b"..")
}

/// qmail's `quote`: the address with its local part (up to the last `@`) in double quotes
/// when it needs them, with `\` before CR, LF, `"` and `\`.
pub fn quote(addr: &[u8]) -> Vec<u8> {
    let at = addr.iter().rposition(|&c| c == b'@').unwrap_or(addr.len());
    let (local, host) = addr.split_at(at);
    if !quote_needed(local) {
        return addr.to_vec();
    }
    let mut out = Vec::with_capacity(addr.len() + 4);
    out.push(b'"');
    for &c in local {
        if matches!(c, b'\r' | b'\n' | b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
    out.extend_from_slice(host);
    out
}

/// True when the address fits the queue's limit.
pub fn fits_queue(addr: &[u8]) -> bool {
    addr.len() < ADDR_MAX
}

/// Where a recipient goes after rewriting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Local delivery to this address (with any virtual-domain prefix added).
    Local(Vec<u8>),
    /// Remote delivery to this address.
    Remote(Vec<u8>),
}

/// qmail-send's recipient rewriting rules, loaded from control files.
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    locals: HashSet<Vec<u8>>,
    percenthack: HashSet<Vec<u8>>,
    virtualdomains: Vec<(Vec<u8>, Vec<u8>)>,
    envnoathost: Vec<u8>,
}

fn lower(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

impl Rewrite {
    /// Rules from the lines of `locals`, `percenthack` and `virtualdomains` and the
    /// `envnoathost` name. Lookups ignore ASCII case; a `virtualdomains` line is split at
    /// its first `:`, and the first of duplicate keys wins.
    pub fn new(
        locals: &[Vec<u8>],
        percenthack: &[Vec<u8>],
        virtualdomains: &[Vec<u8>],
        envnoathost: &[u8],
    ) -> Rewrite {
        let virtualdomains = virtualdomains
            .iter()
            .map(|l| match l.iter().position(|&c| c == b':') {
                Some(i) => (
                    lower(l.get(..i).unwrap_or_default()),
                    l.get(i + 1..).unwrap_or_default().to_vec(),
                ),
                None => (lower(l), Vec::new()),
            })
            .collect();
        Rewrite {
            locals: locals.iter().map(|l| lower(l)).collect(),
            percenthack: percenthack.iter().map(|l| lower(l)).collect(),
            virtualdomains,
            envnoathost: envnoathost.to_vec(),
        }
    }

    /// The `virtualdomains` prefix for a key (an address, a domain, a `.suffix` or the
    /// empty key), compared without regard to ASCII case.
    pub fn virtual_prefix(&self, key: &[u8]) -> Option<&[u8]> {
        let key = lower(key);
        self.virtualdomains
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Rewrites one recipient as qmail-send does (qmail-send.c `rewrite`).
    pub fn rewrite(&self, recip: &[u8]) -> Dest {
        let mut addr = recip.to_vec();
        let mut at = match addr.iter().rposition(|&c| c == b'@') {
            Some(i) => i,
            None => {
                let i = addr.len();
                addr.push(b'@');
                addr.extend_from_slice(&self.envnoathost);
                i
            }
        };
        while self
            .percenthack
            .contains(&lower(addr.get(at + 1..).unwrap_or_default()))
        {
            let Some(pct) = addr
                .get(..at)
                .and_then(|l| l.iter().rposition(|&c| c == b'%'))
            else {
                break;
            };
            addr.truncate(at);
            if let Some(c) = addr.get_mut(pct) {
                *c = b'@';
            }
            at = pct;
        }
        let domain = addr.get(at + 1..).unwrap_or_default();
        if self.locals.contains(&lower(domain)) {
            return Dest::Local(addr);
        }
        let n = addr.len();
        for i in 0..=n {
            let is_key = i == 0 || i == at + 1 || i == n || (i > at && addr.get(i) == Some(&b'.'));
            if !is_key {
                continue;
            }
            if let Some(prepend) = self.virtual_prefix(addr.get(i..).unwrap_or_default()) {
                if prepend.is_empty() {
                    break;
                }
                return Dest::Local([prepend, b"-", &addr].concat());
            }
        }
        Dest::Remote(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_qmail_smtpd_reads_them() {
        for (arg, want) in [
            (&b"<a@b>"[..], &b"a@b"[..]),
            (b" <a@b> SIZE=10", b"a@b"),
            (b"<>", b""),
            (b"<@r1,@r2:a@b>", b"a@b"),
            (b"<\"a b\"@c>", b"a b@c"),
            (b"<a\\>b@c>", b"a>b@c"),
            (b"  a@b SIZE=1", b"a@b"),
            (b"<\"x>y\"@c>", b"x>y@c"),
        ] {
            assert_eq!(
                parse_path(arg).as_deref(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(arg)
            );
        }
        let long = [&b"<"[..], &vec![b'a'; PATH_MAX + 1], b">"].concat();
        assert_eq!(parse_path(&long), None);
        let max = [&b"<"[..], &vec![b'a'; PATH_MAX], b">"].concat();
        assert_eq!(parse_path(&max).map(|a| a.len()), Some(PATH_MAX));
    }

    #[test]
    fn quoting_is_minimal() {
        for (a, q) in [
            (&b"user@example.org"[..], &b"user@example.org"[..]),
            (b"first.last@x", b"first.last@x"),
            (b"a b@x", b"\"a b\"@x"),
            (b".a@x", b"\".a\"@x"),
            (b"a..b@x", b"\"a..b\"@x"),
            (b"a\"b@x", b"\"a\\\"b\"@x"),
            (b"a@b@x", b"\"a@b\"@x"),
            (b"\xc3\xa9@x", b"\"\xc3\xa9\"@x"),
            (b"", b""),
        ] {
            assert_eq!(quote(a), q, "{:?}", String::from_utf8_lossy(a));
        }
    }

    fn rules() -> Rewrite {
        let l = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        Rewrite::new(
            &l(&["example.org", "localhost"]),
            &l(&["example.org", "relay.example"]),
            &l(&[
                "joe@virt.example:jv",
                "virt.example:virt",
                ".sub.example:sub",
                "except.sub.example:",
                ":catchall",
            ]),
            b"example.org",
        )
    }

    #[test]
    fn rewriting_follows_qmail_send() {
        let r = rules();
        let local = |s: &str| Dest::Local(s.as_bytes().to_vec());
        let remote = |s: &str| Dest::Remote(s.as_bytes().to_vec());
        for (input, want) in [
            ("bob", local("bob@example.org")),
            ("Bob@Example.ORG", local("Bob@Example.ORG")),
            ("a%b%c@relay.example", local("catchall-a%b@c")),
            ("u%v@example.org", local("catchall-u@v")),
            ("joe@virt.example", local("jv-joe@virt.example")),
            ("ann@VIRT.example", local("virt-ann@VIRT.example")),
            ("x@a.sub.example", local("sub-x@a.sub.example")),
            ("x@except.sub.example", remote("x@except.sub.example")),
            ("x@elsewhere.test", local("catchall-x@elsewhere.test")),
        ] {
            assert_eq!(r.rewrite(input.as_bytes()), want, "{input}");
        }
        let plain = Rewrite::new(&[b"here".to_vec()], &[], &[], b"here");
        assert_eq!(plain.rewrite(b"x@there"), Dest::Remote(b"x@there".to_vec()));
    }

    #[test]
    fn percenthack_relays_to_a_remote_host() {
        let r = Rewrite::new(&[], &[b"gw.example".to_vec()], &[], b"x");
        assert_eq!(
            r.rewrite(b"u%far.test@gw.example"),
            Dest::Remote(b"u@far.test".to_vec())
        );
    }
}
