//! Address and name filters: rcpthosts (with morercpthosts.cdb), badmailfrom, badrcptto
//! and badhelo.
//!
//! The bad* lists are read line by line, in file order, and **the last matching line
//! decides** (s/qmail's wildmat loop, fixed): a plain line that matches makes the address
//! bad, a `!line` that matches makes it good again. So `*` followed by `!user@dom` refuses
//! everything but `user@dom`. A line is an exact address (case-insensitive), `@domain`
//! (every address at that domain), or a wildmat pattern (`*`, `?`, `[…]`).

use crate::cdb;

/// True when `pat` (a wildmat pattern: `*`, `?`, `[a-z]`, `[!x]`/`[^x]`, `\` escapes)
/// matches all of `s`. Both are compared case-insensitively. Linear in practice: one
/// backtracking point, as in the classic glob algorithm.
pub fn wildmat(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let c = s.get(i).map_or(0, u8::to_ascii_lowercase);
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class(pat, p, c).and_then(|(hit, len)| hit.then_some(len)),
            Some(b'\\') if pat.get(p + 1).map(u8::to_ascii_lowercase) == Some(c) => Some(2),
            Some(&q) if q != b'\\' && q.to_ascii_lowercase() == c => Some(1),
            _ => None,
        };
        match (step, star) {
            (Some(n), _) => {
                p += n;
                i += 1;
            }
            (None, Some((sp, si))) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            (None, None) => return false,
        }
    }
    pat.get(p..).unwrap_or_default().iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pat[p] == '['`: (matched, pattern length).
fn class(pat: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = matches!(pat.get(j), Some(b'!' | b'^'));
    if negate {
        j += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(j)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        let lo = lo.to_ascii_lowercase();
        if pat.get(j + 1) == Some(&b'-') && pat.get(j + 2).is_some_and(|&h| h != b']') {
            let hi = pat.get(j + 2).map_or(0, u8::to_ascii_lowercase);
            hit |= lo <= c && c <= hi;
            j += 3;
        } else {
            hit |= lo == c;
            j += 1;
        }
    }
    Some((hit != negate, j + 1 - p))
}

fn is_pattern(line: &[u8]) -> bool {
    line.iter().any(|c| b"*?[".contains(c))
}

/// True when one list line (without `!` and suffix marks) matches `addr`.
pub fn line_matches(line: &[u8], addr: &[u8]) -> bool {
    if is_pattern(line) {
        wildmat(line, addr)
    } else if line.first() == Some(&b'@') {
        addr.len() > line.len()
            && addr
                .get(addr.len() - line.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(line))
    } else {
        line.eq_ignore_ascii_case(addr)
    }
}

/// What a bad* list says about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The address is refused; the mark says which kind of line decided (`@`, `*`, `+`,
    /// `-`, `=`, `~` or empty for an exact address), as the log's info field.
    pub bad: Option<&'static str>,
    /// A `?address` line matched: skip the other sender checks (MFDNSCHECK).
    pub whitelisted: bool,
}

/// What is known about the client when badmailfrom's extended forms are evaluated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    /// TCPREMOTEHOST, when set.
    pub host: Option<&'a [u8]>,
    /// The client may relay.
    pub relay: bool,
}

/// Evaluates a bad* list against `addr`. `client` enables badmailfrom's extended forms:
/// `?addr` whitelist, `addr+` (only for clients that may not relay), `addr-` (only when
/// the client has no TCPREMOTEHOST), `addr=` (only when TCPREMOTEHOST does not end with
/// the address's domain) and `~text` (when TCPREMOTEHOST contains `text`).
pub fn evaluate(list: &[Vec<u8>], addr: &[u8], client: Option<Client<'_>>) -> Verdict {
    let mut v = Verdict::default();
    for raw in list {
        let (negate, line) = match raw.strip_prefix(b"!") {
            Some(l) => (true, l),
            None => (false, raw.as_slice()),
        };
        let (hit, mark) = match client {
            Some(c) => extended(line, addr, c),
            None => (yes(line_matches(line, addr)), mark_of(line)),
        };
        match hit {
            Hit::No => {}
            Hit::Whitelist => v.whitelisted = true,
            Hit::Yes if negate => v.bad = None,
            Hit::Yes => v.bad = Some(mark),
        }
    }
    v
}

#[derive(PartialEq)]
enum Hit {
    No,
    Yes,
    Whitelist,
}

fn mark_of(line: &[u8]) -> &'static str {
    if is_pattern(line) {
        "*"
    } else if line.first() == Some(&b'@') {
        "@"
    } else {
        ""
    }
}

fn domain(addr: &[u8]) -> &[u8] {
    addr.iter()
        .rposition(|&c| c == b'@')
        .and_then(|i| addr.get(i + 1..))
        .unwrap_or_default()
}

fn yes(b: bool) -> Hit {
    if b { Hit::Yes } else { Hit::No }
}

fn extended(line: &[u8], addr: &[u8], c: Client<'_>) -> (Hit, &'static str) {
    if let Some(w) = line.strip_prefix(b"?") {
        let hit = if line_matches(w, addr) {
            Hit::Whitelist
        } else {
            Hit::No
        };
        return (hit, "?");
    }
    if let Some(t) = line.strip_prefix(b"~") {
        let host = c.host.unwrap_or_default().to_ascii_lowercase();
        let t = t.to_ascii_lowercase();
        let hit = !t.is_empty() && host.windows(t.len()).any(|w| w == t.as_slice());
        return (yes(hit), "~");
    }
    match line.split_last() {
        Some((b'+', l)) => (yes(!c.relay && line_matches(l, addr)), "+"),
        Some((b'-', l)) => (yes(c.host.is_none() && line_matches(l, addr)), "-"),
        Some((b'=', l)) => {
            let d = domain(addr).to_ascii_lowercase();
            let host = c.host.unwrap_or_default().to_ascii_lowercase();
            let mismatch = d.is_empty() || !host.ends_with(&d);
            (yes(mismatch && line_matches(l, addr)), "=")
        }
        _ => (yes(line_matches(line, addr)), mark_of(line)),
    }
}

/// control/rcpthosts and control/morercpthosts.cdb.
#[derive(Default)]
pub struct RcptHosts {
    /// The lines of rcpthosts, lower-cased; `None` when the file does not exist.
    pub hosts: Option<Vec<Vec<u8>>>,
    /// morercpthosts.cdb, when it exists.
    pub more: Option<cdb::Reader>,
}

impl RcptHosts {
    /// qmail's addrallowed: true for an address without `@`, for every address when
    /// rcpthosts does not exist (an open relay: the server logs a warning at start), and
    /// when the domain or a `.suffix` of it is listed. `Err` when the cdb cannot be read.
    pub fn allowed(&self, addr: &[u8]) -> std::io::Result<bool> {
        let Some(hosts) = &self.hosts else {
            return Ok(true);
        };
        let Some(at) = addr.iter().rposition(|&c| c == b'@') else {
            return Ok(true);
        };
        let d = addr.get(at + 1..).unwrap_or_default().to_ascii_lowercase();
        for j in 0..d.len() {
            if j != 0 && d.get(j) != Some(&b'.') {
                continue;
            }
            let key = d.get(j..).unwrap_or_default();
            if hosts.iter().any(|h| h.as_slice() == key) {
                return Ok(true);
            }
            if let Some(more) = &self.more
                && more.get(key)?.is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn wildmat_cases() {
        for (p, s, want) in [
            ("*", "", true),
            ("*@example.com", "joe@EXAMPLE.com", true),
            ("*@example.com", "joe@example.org", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("[]]", "]", true),
            ("[a", "a", false),
        ] {
            assert_eq!(wildmat(p.as_bytes(), s.as_bytes()), want, "{p} vs {s}");
        }
    }

    #[test]
    fn wildmat_does_not_explode() {
        let p = "*a".repeat(40);
        let s = "a".repeat(2000) + "b";
        assert!(!wildmat(p.as_bytes(), s.as_bytes()));
    }

    #[test]
    fn last_matching_line_decides() {
        let list = l(&["*@spam.test", "!friend@spam.test"]);
        assert_eq!(evaluate(&list, b"x@spam.test", None).bad, Some("*"));
        assert_eq!(evaluate(&list, b"friend@SPAM.test", None).bad, None);
        let list = l(&["!friend@spam.test", "*@spam.test"]);
        assert_eq!(evaluate(&list, b"friend@spam.test", None).bad, Some("*"));
        let list = l(&["@bad.test", "joe@x.test"]);
        assert_eq!(evaluate(&list, b"a@bad.test", None).bad, Some("@"));
        assert_eq!(evaluate(&list, b"JOE@x.test", None).bad, Some(""));
        assert_eq!(evaluate(&list, b"bad.test", None).bad, None);
    }

    #[test]
    fn extended_badmailfrom_forms() {
        let list = l(&[
            "?vip@x.test",
            "me@local.test+",
            "*@nodns.test-",
            "*@ptr.test=",
            "~dialup",
        ]);
        let plain = Client {
            host: Some(b"mx.other.test"),
            relay: false,
        };
        let v = evaluate(&list, b"vip@x.test", Some(plain));
        assert!(v.whitelisted && v.bad.is_none());
        assert_eq!(
            evaluate(&list, b"me@local.test", Some(plain)).bad,
            Some("+")
        );
        let relay = Client {
            relay: true,
            ..plain
        };
        assert_eq!(evaluate(&list, b"me@local.test", Some(relay)).bad, None);
        assert_eq!(evaluate(&list, b"a@nodns.test", Some(plain)).bad, None);
        let nohost = Client {
            host: None,
            relay: false,
        };
        assert_eq!(
            evaluate(&list, b"a@nodns.test", Some(nohost)).bad,
            Some("-")
        );
        assert_eq!(evaluate(&list, b"a@ptr.test", Some(plain)).bad, Some("="));
        let ptr = Client {
            host: Some(b"mail.ptr.test"),
            relay: false,
        };
        assert_eq!(evaluate(&list, b"a@ptr.test", Some(ptr)).bad, None);
        let dial = Client {
            host: Some(b"x.DIALUP.isp.test"),
            relay: false,
        };
        assert_eq!(evaluate(&list, b"a@b.test", Some(dial)).bad, Some("~"));
    }

    #[test]
    fn rcpthosts_domains_and_suffixes() {
        let r = RcptHosts {
            hosts: Some(l(&["example.org", ".sub.example.net"])),
            more: None,
        };
        for (a, want) in [
            ("u@example.org", true),
            ("u@EXAMPLE.ORG", true),
            ("u@x.example.org", false),
            ("u@a.sub.example.net", true),
            ("u@sub.example.net", false),
            ("postmaster", true),
            ("u@example.org.", false),
            ("u@example.org@evil.test", false),
            ("u@evil.test@example.org", true),
            ("u@[127.0.0.1]", false),
        ] {
            assert_eq!(r.allowed(a.as_bytes()).unwrap(), want, "{a}");
        }
        assert!(RcptHosts::default().allowed(b"u@any.test").unwrap());
    }
}
