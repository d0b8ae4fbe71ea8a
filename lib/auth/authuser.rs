//! `users/authuser`: which back end checks a login, and the checks that need no other
//! program (stored plain text, stored hashes, CRAM-MD5, APOP).
//!
//! Each line is `key:token`; lines starting with `#` and empty lines are skipped, trailing
//! spaces and tabs are removed, keys are compared without regard to case and the first line
//! with a key wins. Keys: `user@domain`, `@domain`, `@` (any login), `*` (any login, usually
//! with a system token); `!user@domain` and `!@domain` disable a login or a whole domain.
//!
//! A stored hash is only ever compared with the hash of what the client sent: sending the
//! stored hash itself as the password fails (the pass-the-hash hole of s/qmail 3.2.18).

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};

/// The largest `users/authuser` read; a bigger file is a configuration error.
pub const FILE_MAX: usize = 4 << 20;

/// How a login is checked, from the token of its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A password stored in plain text (PLAIN, LOGIN, CRAM-MD5, APOP).
    Plain(Vec<u8>),
    /// `%` and the lower-case hex MD5 (32), SHA-1 (40) or SHA-256 (64) of the password.
    Hash(Vec<u8>),
    /// `?`: the system account's password (passwd/shadow through crypt(3)).
    System,
    /// `!`: as `?`, then become that account (uid, gid, home, USER/HOME/SHELL).
    SystemUser,
    /// `+`: VMailMgr's checkvpw.
    Checkvpw,
    /// `&`: vpopmail's vchkpw.
    Vchkpw,
    /// `=`: Dovecot, through `doveadm auth test`.
    Dovecot,
    /// A token this program does not understand (misuse).
    Invalid,
}

impl Token {
    /// Classifies a token string.
    pub fn parse(t: &[u8]) -> Token {
        match t {
            b"?" => Token::System,
            b"!" => Token::SystemUser,
            b"+" => Token::Checkvpw,
            b"&" => Token::Vchkpw,
            b"=" => Token::Dovecot,
            [_] | [] => Token::Invalid,
            [b'%', hex @ ..] => {
                if matches!(hex.len(), 32 | 40 | 64) && hex.iter().all(u8::is_ascii_hexdigit) {
                    Token::Hash(hex.to_ascii_lowercase())
                } else {
                    Token::Invalid
                }
            }
            [b'=', plain @ ..] => Token::Plain(plain.to_vec()),
            plain => Token::Plain(plain.to_vec()),
        }
    }
}

/// The parsed file: (lower-cased key, token) in file order.
pub struct Table {
    lines: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Drop for Table {
    fn drop(&mut self) {
        for (_, t) in &mut self.lines {
            t.fill(0);
        }
    }
}

/// What the table says about a login.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The login or its domain is disabled (`!` key).
    Disabled,
    /// No line applies.
    Unknown,
    /// The token of the first line that applies.
    Found(Token),
}

impl Table {
    /// Parses the contents of `users/authuser`.
    pub fn parse(text: &[u8]) -> Table {
        let mut lines = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            let mut end = line.len();
            while end > 0 && matches!(line.get(end - 1), Some(b' ' | b'\t' | b'\r')) {
                end -= 1;
            }
            let line = line.get(..end).unwrap_or_default();
            if line.is_empty() || line.first() == Some(&b'#') {
                continue;
            }
            let (key, token) = match line.iter().position(|&b| b == b':') {
                Some(i) => (
                    line.get(..i).unwrap_or_default(),
                    line.get(i + 1..).unwrap_or_default(),
                ),
                None => (line, &b""[..]),
            };
            lines.push((key.to_ascii_lowercase(), token.to_vec()));
        }
        Table { lines }
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let key = key.to_ascii_lowercase();
        self.lines
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| t.as_slice())
    }

    /// Looks a login up: `!login`, `!@domain` first, then `login`, `@domain`, `@`, `*`.
    pub fn lookup(&self, login: &[u8]) -> Lookup {
        let domain = login
            .iter()
            .rposition(|&b| b == b'@')
            .and_then(|i| login.get(i..));
        let bang = |k: &[u8]| [&b"!"[..], k].concat();
        if self.get(&bang(login)).is_some() || domain.is_some_and(|d| self.get(&bang(d)).is_some())
        {
            return Lookup::Disabled;
        }
        let found = self
            .get(login)
            .or_else(|| domain.and_then(|d| self.get(d)))
            .or_else(|| self.get(b"@"))
            .or_else(|| self.get(b"*"));
        match found {
            Some(t) => Lookup::Found(Token::parse(t)),
            None => Lookup::Unknown,
        }
    }
}

/// The part of a login a system account is looked up by: everything before the last `@`.
pub fn unix_name(login: &[u8]) -> &[u8] {
    match login.iter().rposition(|&b| b == b'@') {
        Some(i) => login.get(..i).unwrap_or_default(),
        None => login,
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
    out
}

/// The CRAM-MD5 response to `challenge` for `password` (RFC 2195): the hex HMAC-MD5.
pub fn cram_md5(password: &[u8], challenge: &[u8]) -> Vec<u8> {
    match hmac::Hmac::<Md5>::new_from_slice(password) {
        Ok(mut m) => {
            m.update(challenge);
            hex(&m.finalize().into_bytes())
        }
        // HMAC takes keys of any length; an error is impossible, and no answer matches.
        Err(_) => Vec::new(),
    }
}

/// The APOP digest (RFC 1939): hex MD5 of the timestamp followed by the password.
pub fn apop(password: &[u8], timestamp: &[u8]) -> Vec<u8> {
    let mut h = Md5::new();
    h.update(timestamp);
    h.update(password);
    hex(&h.finalize())
}

/// Checks what the client sent against a plain-text password: the password itself, or
/// with a challenge the CRAM-MD5 response, or with an APOP timestamp (`<...>`) the digest.
pub fn check_plain(stored: &[u8], secret: &[u8], challenge: &[u8]) -> bool {
    let mut ok = same(stored, secret);
    if !challenge.is_empty() {
        ok |= same(&cram_md5(stored, challenge), &secret.to_ascii_lowercase());
        if challenge.first() == Some(&b'<') {
            ok |= same(&apop(stored, challenge), &secret.to_ascii_lowercase());
        }
    }
    ok
}

/// Checks a password against a stored hex hash; the hash function follows from its length.
/// Only the hash of what the client sent is compared, never the string itself.
pub fn check_hash(stored_hex: &[u8], secret: &[u8]) -> bool {
    let got = match stored_hex.len() {
        32 => hex(&Md5::digest(secret)),
        40 => hex(&sha1::Sha1::digest(secret)),
        64 => hex(&sha2::Sha256::digest(secret)),
        _ => return false,
    };
    same(&got, &stored_hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_classified() {
        let md5 = b"%5f4dcc3b5aa765d61d8327deb882cf99";
        for (t, want) in [
            (&b"?"[..], Token::System),
            (b"!", Token::SystemUser),
            (b"+", Token::Checkvpw),
            (b"&", Token::Vchkpw),
            (b"=", Token::Dovecot),
            (b"x", Token::Invalid),
            (b"", Token::Invalid),
            (b"%abc", Token::Invalid),
            (b"%5F4DCC3B5AA765D61D8327DEB882CF9Z", Token::Invalid),
            (md5, Token::Hash(md5[1..].to_vec())),
            (b"=%literal", Token::Plain(b"%literal".to_vec())),
            (b"secret", Token::Plain(b"secret".to_vec())),
        ] {
            assert_eq!(Token::parse(t), want, "{t:?}");
        }
    }

    #[test]
    fn lookup_order_and_disables() {
        let t = Table::parse(
            b"# comment\n\
              !bad@example.com:x\n\
              !@off.example:x\n\
              Joe@Example.COM:secret  \n\
              joe@example.com:second\n\
              @example.com:?\n\
              @:=\n\
              *:!\n",
        );
        let found = |l: &[u8]| t.lookup(l);
        assert_eq!(
            found(b"joe@example.com"),
            Lookup::Found(Token::Plain(b"secret".to_vec()))
        );
        assert_eq!(found(b"ann@example.com"), Lookup::Found(Token::System));
        assert_eq!(found(b"ann@other.example"), Lookup::Found(Token::Dovecot));
        assert_eq!(found(b"bad@example.com"), Lookup::Disabled);
        assert_eq!(found(b"BAD@example.com"), Lookup::Disabled);
        assert_eq!(found(b"x@off.example"), Lookup::Disabled);
        let t = Table::parse(b"*:!\n");
        assert_eq!(t.lookup(b"ann"), Lookup::Found(Token::SystemUser));
        assert_eq!(Table::parse(b"").lookup(b"ann"), Lookup::Unknown);
        assert_eq!(unix_name(b"ann@x@y"), b"ann@x");
        assert_eq!(unix_name(b"ann"), b"ann");
    }

    #[test]
    fn cram_md5_matches_rfc_2195() {
        let got = cram_md5(
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>",
        );
        assert_eq!(got, b"b913a602c7eda7a495b4e6e7334d3890".to_vec());
        assert!(check_plain(
            b"tanstaaftanstaaf",
            b"b913a602c7eda7a495b4e6e7334d3890",
            b"<1896.697170952@postoffice.reston.mci.net>"
        ));
    }

    #[test]
    fn apop_matches_rfc_1939() {
        assert_eq!(
            apop(b"tanstaaf", b"<1896.697170952@dbc.mtview.ca.us>"),
            b"c4c9334bac560ecc979e58001b3e22fb".to_vec()
        );
    }

    #[test]
    fn hashes_compare_only_hashes() {
        let md5 = b"5f4dcc3b5aa765d61d8327deb882cf99"; // "password"
        let sha1 = b"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
        let sha256 = b"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
        for h in [&md5[..], sha1, sha256] {
            assert!(check_hash(h, b"password"));
            assert!(!check_hash(h, b"Password"));
            assert!(!check_hash(h, h), "pass-the-hash must fail");
            assert!(
                !check_hash(h, &[b"%", h].concat()),
                "pass-the-hash must fail"
            );
        }
        assert!(check_hash(&md5.to_ascii_uppercase(), b"password"));
    }

    #[test]
    fn plain_checks() {
        assert!(check_plain(b"pw", b"pw", b""));
        assert!(!check_plain(b"pw", b"pW", b""));
        assert!(!check_plain(b"pw", b"", b""));
        assert!(same(b"", b""));
        assert!(!same(b"a", b"ab"));
    }
}
