//! SMTP AUTH, server side: the PLAIN, LOGIN and CRAM-MD5 exchanges (RFC 4954, 4616, 2195)
//! and the record handed to the checkpassword program on fd 3.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The most the checkpassword record may hold (the checkpassword interface).
pub const RECORD_MAX: usize = 512;

/// A mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mech {
    /// CRAM-MD5 (RFC 2195).
    CramMd5,
    /// LOGIN.
    Login,
    /// PLAIN (RFC 4616).
    Plain,
}

impl Mech {
    /// The name for AUTHPROTOCOL and the log: `cram-md5`, `login`, `plain`.
    pub fn name(self) -> &'static str {
        match self {
            Mech::CramMd5 => "cram-md5",
            Mech::Login => "login",
            Mech::Plain => "plain",
        }
    }
}

/// Which mechanisms are offered (SMTPAUTH).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mechs {
    /// LOGIN and PLAIN.
    pub password: bool,
    /// CRAM-MD5.
    pub cram: bool,
}

impl Mechs {
    /// The EHLO line: `AUTH LOGIN PLAIN`, `AUTH CRAM-MD5` or `AUTH LOGIN PLAIN CRAM-MD5`.
    pub fn ehlo(self) -> &'static str {
        match (self.password, self.cram) {
            (true, true) => "AUTH LOGIN PLAIN CRAM-MD5",
            (false, true) => "AUTH CRAM-MD5",
            _ => "AUTH LOGIN PLAIN",
        }
    }
}

/// What the client proved it knows, for the checkprogram.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The mechanism used.
    pub mech: Mech,
    /// The user name.
    pub user: Vec<u8>,
    /// The password, or for CRAM-MD5 the hex digest.
    pub secret: Vec<u8>,
    /// The CRAM-MD5 challenge; empty for the others.
    pub challenge: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("mech", &self.mech)
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The fd-3 record `user\0secret\0challenge\0` (the third field empty for LOGIN and
    /// PLAIN); `None` when it would exceed [`RECORD_MAX`] or a field holds a NUL.
    pub fn record(&self) -> Option<Vec<u8>> {
        let fields = [&self.user, &self.secret, &self.challenge];
        if fields.iter().any(|f| f.contains(&0)) {
            return None;
        }
        let mut r = Vec::new();
        for f in fields {
            r.extend_from_slice(f);
            r.push(0);
        }
        (r.len() <= RECORD_MAX).then_some(r)
    }
}

/// Where an exchange stands between two client lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// PLAIN, waiting for the response.
    Plain,
    /// LOGIN, waiting for the user name.
    LoginUser,
    /// LOGIN, waiting for the password of this user.
    LoginPass(Vec<u8>),
    /// CRAM-MD5, waiting for the response to this challenge.
    Cram(Vec<u8>),
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this `334` line and wait for the next client line.
    Prompt(Vec<u8>, Exchange),
    /// The exchange is complete: ask the checkprogram.
    Check(Credentials),
    /// The exchange failed: send this reply.
    Fail(&'static [u8]),
}

/// `501 malformed auth input (#5.5.4)`.
pub const MALFORMED: &[u8] = b"501 malformed auth input (#5.5.4)\r\n";
/// `501 auth exchange canceled (#5.0.0)`.
pub const CANCELED: &[u8] = b"501 auth exchange canceled (#5.0.0)\r\n";
/// `504 auth type unimplemented (#5.5.1)`.
pub const UNIMPLEMENTED: &[u8] = b"504 auth type unimplemented (#5.5.1)\r\n";

fn decode(line: &[u8]) -> Option<Vec<u8>> {
    let v = STANDARD.decode(line.trim_ascii()).ok()?;
    (!v.is_empty()).then_some(v)
}

fn prompt(text: &[u8], next: Exchange) -> Step {
    let mut l = b"334 ".to_vec();
    l.extend_from_slice(text);
    l.extend_from_slice(b"\r\n");
    Step::Prompt(l, next)
}

/// Starts an exchange: `arg` is what followed `AUTH`, `challenge` the CRAM-MD5 challenge
/// (`<pid.time@host>`) to use if that mechanism is chosen.
pub fn start(arg: &[u8], mechs: Mechs, challenge: &[u8]) -> Step {
    let mut words = arg.split(|&c| c == b' ').filter(|w| !w.is_empty());
    let mech = words.next().unwrap_or_default().to_ascii_uppercase();
    let initial = words.next();
    match mech.as_slice() {
        b"PLAIN" if mechs.password => match initial {
            None | Some(b"=") => prompt(b"", Exchange::Plain),
            Some(r) => next(Exchange::Plain, r),
        },
        b"LOGIN" if mechs.password => match initial {
            None => prompt(b"VXNlcm5hbWU6", Exchange::LoginUser),
            Some(r) => next(Exchange::LoginUser, r),
        },
        b"CRAM-MD5" if mechs.cram && initial.is_none() => prompt(
            STANDARD.encode(challenge).as_bytes(),
            Exchange::Cram(challenge.to_vec()),
        ),
        b"" => Step::Fail(MALFORMED),
        _ => Step::Fail(UNIMPLEMENTED),
    }
}

/// Takes the client's next line (without its line end).
pub fn next(ex: Exchange, line: &[u8]) -> Step {
    if line.trim_ascii() == b"*" {
        return Step::Fail(CANCELED);
    }
    let Some(v) = decode(line) else {
        return Step::Fail(MALFORMED);
    };
    match ex {
        Exchange::Plain => {
            let mut f = v.split(|&c| c == 0);
            let (Some(_authzid), Some(user), Some(pass), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Step::Fail(MALFORMED);
            };
            check(Mech::Plain, user, pass, b"")
        }
        Exchange::LoginUser => prompt(b"UGFzc3dvcmQ6", Exchange::LoginPass(v)),
        Exchange::LoginPass(user) => check(Mech::Login, &user, &v, b""),
        Exchange::Cram(challenge) => {
            let Some(sp) = v.iter().rposition(|&c| c == b' ') else {
                return Step::Fail(MALFORMED);
            };
            let (user, digest) = v.split_at(sp);
            check(
                Mech::CramMd5,
                user,
                digest.get(1..).unwrap_or_default(),
                &challenge,
            )
        }
    }
}

fn check(mech: Mech, user: &[u8], secret: &[u8], challenge: &[u8]) -> Step {
    if user.is_empty() || secret.is_empty() {
        return Step::Fail(MALFORMED);
    }
    let c = Credentials {
        mech,
        user: user.to_vec(),
        secret: secret.to_vec(),
        challenge: challenge.to_vec(),
    };
    if c.record().is_none() {
        return Step::Fail(MALFORMED);
    }
    Step::Check(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Mechs = Mechs {
        password: true,
        cram: true,
    };

    fn b64(s: &[u8]) -> Vec<u8> {
        STANDARD.encode(s).into_bytes()
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let r = b64(b"\0joe\0secret");
        let Step::Check(c) = start(&[b"PLAIN ".as_slice(), &r].concat(), ALL, b"") else {
            panic!("plain")
        };
        assert_eq!(c.record().unwrap(), b"joe\0secret\0\0");
        let Step::Prompt(p, ex) = start(b"plain", ALL, b"") else {
            panic!("prompt")
        };
        assert_eq!(p, b"334 \r\n");
        assert!(matches!(next(ex, &r), Step::Check(_)));
        assert_eq!(next(Exchange::Plain, b"*"), Step::Fail(CANCELED));
        assert_eq!(next(Exchange::Plain, b"!!!"), Step::Fail(MALFORMED));
        assert_eq!(next(Exchange::Plain, &b64(b"joe")), Step::Fail(MALFORMED));
    }

    #[test]
    fn login_prompts() {
        let Step::Prompt(p, ex) = start(b"LOGIN", ALL, b"") else {
            panic!()
        };
        assert_eq!(p, b"334 VXNlcm5hbWU6\r\n");
        let Step::Prompt(p, ex) = next(ex, &b64(b"joe")) else {
            panic!()
        };
        assert_eq!(p, b"334 UGFzc3dvcmQ6\r\n");
        let Step::Check(c) = next(ex, &b64(b"pw")) else {
            panic!()
        };
        assert_eq!((c.user.as_slice(), c.mech), (&b"joe"[..], Mech::Login));
    }

    #[test]
    fn cram_md5_hands_over_the_challenge() {
        let ch = b"<1.2@host>";
        let Step::Prompt(p, ex) = start(b"CRAM-MD5", ALL, ch) else {
            panic!()
        };
        assert_eq!(p, [b"334 ".as_slice(), &b64(ch), b"\r\n"].concat());
        let Step::Check(c) = next(ex, &b64(b"joe abcdef")) else {
            panic!()
        };
        assert_eq!(c.record().unwrap(), b"joe\0abcdef\0<1.2@host>\0");
    }

    #[test]
    fn unknown_or_disabled_mechanisms() {
        let pw = Mechs {
            password: true,
            cram: false,
        };
        assert_eq!(start(b"CRAM-MD5", pw, b""), Step::Fail(UNIMPLEMENTED));
        assert_eq!(start(b"GSSAPI", ALL, b""), Step::Fail(UNIMPLEMENTED));
        assert_eq!(start(b"", ALL, b""), Step::Fail(MALFORMED));
    }

    #[test]
    fn record_limit_is_512() {
        let c = |n: usize| Credentials {
            mech: Mech::Plain,
            user: b"u".to_vec(),
            secret: vec![b'p'; n],
            challenge: vec![],
        };
        assert!(c(RECORD_MAX - 4).record().is_some());
        assert!(c(RECORD_MAX - 3).record().is_none());
    }
}
