//! The SMTP AUTH client (RFC 4954): PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195), and
//! the xtext of the `AUTH=` parameter. Pure: the texts to send, no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

/// The mechanisms this client speaks, in the order it prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// CRAM-MD5: the password never crosses the wire.
    CramMd5,
    /// LOGIN: user and password, each base64 in answer to a 334.
    Login,
    /// PLAIN: `authzid NUL user NUL password` in one base64 line.
    Plain,
}

impl Mechanism {
    /// The name after `AUTH`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Login => "LOGIN",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// The short name in s/qmail's reports.
    pub fn short(self) -> &'static str {
        match self {
            Mechanism::CramMd5 => "cram",
            Mechanism::Login => "login",
            Mechanism::Plain => "plain",
        }
    }
}

/// The preferred mechanism among those offered (upper-cased names).
pub fn choose(offered: &[String]) -> Option<Mechanism> {
    [Mechanism::CramMd5, Mechanism::Login, Mechanism::Plain]
        .into_iter()
        .find(|m| offered.iter().any(|o| o == m.name()))
}

/// Base64 of bytes.
pub fn b64(b: &[u8]) -> Vec<u8> {
    STANDARD.encode(b).into_bytes()
}

/// The PLAIN response: the envelope sender as authorisation identity, as s/qmail sends.
pub fn plain(sender: &[u8], user: &[u8], pass: &[u8]) -> Vec<u8> {
    let mut v = sender.to_vec();
    v.push(0);
    v.extend_from_slice(user);
    v.push(0);
    v.extend_from_slice(pass);
    b64(&v)
}

/// The CRAM-MD5 response to a 334 challenge text (base64), or `None` if it does not
/// decode.
pub fn cram(user: &[u8], pass: &[u8], challenge: &[u8]) -> Option<Vec<u8>> {
    let c = STANDARD.decode(challenge.trim_ascii()).ok()?;
    let mut m = <hmac::Hmac<md5::Md5> as KeyInit>::new_from_slice(pass).ok()?;
    m.update(&c);
    let digest = m.finalize().into_bytes();
    let mut v = user.to_vec();
    v.push(b' ');
    for b in digest {
        v.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    Some(b64(&v))
}

/// xtext (RFC 3461) as s/qmail writes it for `AUTH=`: `+` and `=` and bytes outside
/// 33..=126 become `+XX`.
pub fn xtext(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len());
    for &b in s {
        if b == b'+' || b == b'=' || !(33..=126).contains(&b) {
            v.extend_from_slice(format!("+{b:02X}").as_bytes());
        } else {
            v.push(b);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2195_example() {
        let challenge = b64(b"<1896.697170952@postoffice.reston.mci.net>");
        let r = cram(b"tim", b"tanstaaftanstaaf", &challenge).unwrap();
        assert_eq!(
            STANDARD.decode(&r).unwrap(),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        assert_eq!(cram(b"u", b"p", b"!!notbase64"), None);
    }

    #[test]
    fn plain_xtext_and_choice() {
        assert_eq!(
            STANDARD.decode(plain(b"s@x", b"u", b"p")).unwrap(),
            b"s@x\0u\0p"
        );
        assert_eq!(xtext(b"a+b=c d"), b"a+2Bb+3Dc+20d");
        let offered = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose(&offered(&["PLAIN", "LOGIN"])),
            Some(Mechanism::Login)
        );
        assert_eq!(
            choose(&offered(&["PLAIN", "CRAM-MD5"])),
            Some(Mechanism::CramMd5)
        );
        assert_eq!(choose(&offered(&["PLAIN"])), Some(Mechanism::Plain));
        assert_eq!(choose(&offered(&["XOAUTH2"])), None);
    }
}
