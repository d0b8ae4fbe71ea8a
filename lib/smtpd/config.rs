//! What a session is configured with: the control files and the environment, read once at
//! start (the only I/O of the library's pure side lives in [`Config::load`], and in the
//! interfaces' reader it hands [`LocalIps`], called at the first `[ip]` literal).

use std::cell::OnceCell;
use std::net::IpAddr;
use std::path::Path;

use super::auth::Mechs;
use super::filter::RcptHosts;
use super::text::Peer;
use crate::cdb;
use crate::control::Control;
use crate::env;
use crate::fail::{Failure, Kind, Result};

/// Environment variables as (name, value) pairs of bytes.
pub type Vars = Vec<(Vec<u8>, Vec<u8>)>;

/// HELOCHECK: how the HELO/EHLO argument is judged (at RCPT, for clients that may not relay).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeloCheck {
    /// Unset: no check.
    #[default]
    Off,
    /// `""` (or any other value): control/badhelo, and HELO required.
    BadHelo,
    /// `!`: HELO/EHLO required.
    Required,
    /// `.`: required and control/badhelo.
    RequiredBadHelo,
    /// `=`: the argument must equal TCPREMOTEHOST.
    RemoteHost,
    /// `A`: the argument must have an A record, and control/badhelo.
    DnsA,
    /// `M`: the argument must have an MX record, and control/badhelo.
    DnsMx,
}

impl HeloCheck {
    /// Reads the value of HELOCHECK.
    pub fn parse(v: Option<&[u8]>) -> HeloCheck {
        match v {
            None => HeloCheck::Off,
            Some(b"!") => HeloCheck::Required,
            Some(b".") => HeloCheck::RequiredBadHelo,
            Some(b"=") => HeloCheck::RemoteHost,
            Some(b"A" | b"a") => HeloCheck::DnsA,
            Some(b"M" | b"m") => HeloCheck::DnsMx,
            Some(_) => HeloCheck::BadHelo,
        }
    }
}

/// SMTPAUTH (with a checkprogram given on the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthMode {
    /// The mechanisms offered; `None` when AUTH is not available.
    pub mechs: Option<Mechs>,
    /// A leading `!`: AUTH is required before MAIL.
    pub required: bool,
    /// PLAINTEXTAUTH is set: AUTH is offered without TLS too.
    pub plaintext: bool,
}

impl AuthMode {
    /// Reads SMTPAUTH: unset or `-` off; `cram` CRAM-MD5 only; `+cram` LOGIN, PLAIN and
    /// CRAM-MD5; anything else LOGIN and PLAIN; a leading `!` makes AUTH required.
    pub fn parse(v: Option<&[u8]>, have_checkprogram: bool, plaintext: bool) -> AuthMode {
        let Some(v) = v.filter(|_| have_checkprogram) else {
            return AuthMode::default();
        };
        if v == b"-" {
            return AuthMode::default();
        }
        let (required, rest) = match v.strip_prefix(b"!") {
            Some(r) => (true, r),
            None => (false, v),
        };
        let mechs = match rest.to_ascii_lowercase().as_slice() {
            b"cram" => Mechs {
                password: false,
                cram: true,
            },
            b"+cram" => Mechs {
                password: true,
                cram: true,
            },
            _ => Mechs {
                password: true,
                cram: false,
            },
        };
        AuthMode {
            mechs: Some(mechs),
            required,
            plaintext,
        }
    }
}

/// UCSPITLS: whether STARTTLS is offered and required.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsMode {
    /// STARTTLS is offered (UCSPITLS set and not `-`, and SSLCTLFD present).
    pub offered: bool,
    /// `!`: TLS is required before MAIL.
    pub required: bool,
}

impl TlsMode {
    /// Reads UCSPITLS; `ctl` says whether sslserver -n gave us SSLCTLFD.
    pub fn parse(v: Option<&[u8]>, ctl: bool) -> TlsMode {
        match v {
            None | Some(b"-") => TlsMode::default(),
            Some(v) => TlsMode {
                offered: ctl,
                required: v == b"!",
            },
        }
    }
}

/// The REPLY_* texts inserted into refusals.
#[derive(Clone, Debug, Default)]
pub struct Replies {
    /// REPLY_HELO.
    pub helo: Option<Vec<u8>>,
    /// REPLY_MAXSIZE.
    pub maxsize: Option<Vec<u8>>,
    /// REPLY_BADMAILFROM.
    pub badmailfrom: Option<Vec<u8>>,
    /// REPLY_BADRCPTTO.
    pub badrcptto: Option<Vec<u8>>,
    /// REPLY_SENDEREXIST.
    pub senderexist: Option<Vec<u8>>,
    /// REPLY_NOGATEWAY.
    pub nogateway: Option<Vec<u8>>,
    /// REPLY_CONTENT.
    pub content: Option<Vec<u8>>,
    /// REPLY_MAILBOX.
    pub mailbox: Option<Vec<u8>>,
    /// REPLY_SENDERINVALID (s/qmail 3), else REPLYMAV (s/qmail 4).
    pub senderinvalid: Option<Vec<u8>>,
}

/// Everything a session is configured with.
#[derive(Default)]
pub struct Config {
    /// control/smtpgreeting (default control/me).
    pub greeting: Vec<u8>,
    /// databytes (DATABYTES, control/databytes); 0 is no limit.
    pub databytes: u64,
    /// control/timeoutsmtpd.
    pub timeout_secs: u64,
    /// control/localiphost (default control/me).
    pub localiphost: Vec<u8>,
    /// rcpthosts and morercpthosts.cdb.
    pub rcpthosts: RcptHosts,
    /// control/badmailfrom.
    pub badmailfrom: Vec<Vec<u8>>,
    /// control/badrcptto.
    pub badrcptto: Vec<Vec<u8>>,
    /// control/badhelo (read only with HELOCHECK).
    pub badhelo: Vec<Vec<u8>>,
    /// The client and the local name.
    pub peer: Peer,
    /// This machine's addresses (ipme) and TCPLOCALIP, for `[ip]` literals.
    pub local_ips: LocalIps,
    /// RELAYCLIENT.
    pub relayclient: Option<Vec<u8>>,
    /// HELOCHECK.
    pub helocheck: HeloCheck,
    /// MFDNSCHECK is set.
    pub mfdnscheck: bool,
    /// MAXRECIPIENTS (0: only [`super::RCPT_HARD_MAX`]).
    pub maxrecipients: usize,
    /// TARPITCOUNT (0: off).
    pub tarpitcount: u64,
    /// TARPITDELAY.
    pub tarpitdelay: u64,
    /// RECIPIENTS450 is set: an unknown recipient gets 450, not 550.
    pub recipients450: bool,
    /// LOCALMFCHECK: which senders relay clients may use.
    pub localmfcheck: Option<Vec<u8>>,
    /// BADMIMETYPE.
    pub badmimetype: Option<Vec<u8>>,
    /// BADLOADERTYPE.
    pub badloadertype: Option<Vec<u8>>,
    /// SMTPAUTH.
    pub auth: AuthMode,
    /// UCSPITLS.
    pub tls: TlsMode,
    /// The connection is TLS from the start (SMTPS): sslserver's SSL_* variables.
    pub tls_vars: Option<Vars>,
    /// REPLY_* texts.
    pub replies: Replies,
    /// DELIVERTO.
    pub deliverto: Option<Vec<u8>>,
    /// RBLSMTPD.
    pub rblsmtpd: Option<Vec<u8>>,
    /// This process's id.
    pub pid: u32,
}

fn num(v: Option<Vec<u8>>) -> Option<u64> {
    v.and_then(|v| crate::control::leading_number(&v))
}

fn nonempty(v: Option<Vec<u8>>) -> Option<Vec<u8>> {
    v.filter(|v| !v.is_empty())
}

/// How the interfaces' addresses are read: [`crate::sys::local_addresses`] for the real
/// server, anything else in tests.
pub type ReadInterfaces = fn() -> std::io::Result<Vec<IpAddr>>;

/// ipme: the interfaces' addresses, plus TCPLOCALIP (a NAT or proxy address). The
/// interfaces are read (a netlink dump) only when an `[ip]` literal first needs them:
/// almost no session has one, and every session would pay for the dump. The default
/// knows no interfaces.
#[derive(Clone, Debug)]
pub struct LocalIps {
    tcplocalip: Option<IpAddr>,
    read: ReadInterfaces,
    interfaces: OnceCell<Vec<IpAddr>>,
}

impl Default for LocalIps {
    fn default() -> LocalIps {
        LocalIps::new(None, || Ok(Vec::new()))
    }
}

impl LocalIps {
    /// TCPLOCALIP as the environment gives it; `read` is called at the first literal.
    pub fn new(tcplocalip: Option<Vec<u8>>, read: ReadInterfaces) -> LocalIps {
        LocalIps {
            tcplocalip: tcplocalip
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse().ok()),
            read,
            interfaces: OnceCell::new(),
        }
    }

    /// Whether `ip` is one of ours. An error is the interfaces' list could not be read;
    /// it is asked again at the next literal.
    pub fn contains(&self, ip: &IpAddr) -> std::io::Result<bool> {
        if self.tcplocalip.as_ref() == Some(ip) {
            return Ok(true);
        }
        let interfaces = match self.interfaces.get() {
            Some(v) => v,
            None => {
                let v = (self.read)()?;
                self.interfaces.get_or_init(|| v)
            }
        };
        Ok(interfaces.contains(ip))
    }
}

/// The SSL_* variables of the environment.
pub fn ssl_vars() -> Vars {
    use std::os::unix::ffi::OsStringExt;
    std::env::vars_os()
        .map(|(k, v)| (k.into_vec(), v.into_vec()))
        .filter(|(k, _)| k.starts_with(b"SSL_"))
        .collect()
}

impl Config {
    /// Reads the control files of `home` and the environment. `have_checkprogram` says
    /// whether a checkprogram was given. Temporary failure when a control file exists but
    /// cannot be read (`421 unable to read controls`).
    pub fn load(home: &Path, have_checkprogram: bool) -> Result<Config> {
        let c = Control::open(home)?;
        let var = |n: &str| env::var(n).or_else(|| env::var(&format!("TCP6{}", &n[3..])));
        let helocheck = HeloCheck::parse(env::var("HELOCHECK").as_deref());
        let morecdb = home.join("control/morercpthosts.cdb");
        let more = cdb::Reader::open(&morecdb).map_err(|e| {
            Failure::temp_io(Kind::Config, "unable to read control/morercpthosts.cdb", e)
        })?;
        let databytes = match num(env::var("DATABYTES")) {
            Some(n) => n,
            None => c.int("databytes", 0)?,
        };
        let lower = |l: Vec<Vec<u8>>| l.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        // SMTPS: port 465 as in s/qmail, or any port where sslserver finished the handshake
        // before starting us (SSL_PROTOCOL set, no UCSPI-TLS hand-off pending).
        let smtps = var("TCPLOCALPORT").as_deref() == Some(b"465")
            || (env::is_set("SSL_PROTOCOL") && !env::is_set("SSLCTLFD"));
        let tls_vars = smtps.then(ssl_vars);
        Ok(Config {
            greeting: match c.line("smtpgreeting")? {
                Some(g) => g,
                None => c.me().map(<[u8]>::to_vec).ok_or_else(|| {
                    Failure::temp(
                        Kind::Config,
                        "neither control/smtpgreeting nor control/me exists",
                    )
                })?,
            },
            databytes,
            timeout_secs: c.int("timeoutsmtpd", super::TIMEOUT_SECS)?,
            localiphost: c.line_or_me("localiphost", b"")?,
            rcpthosts: RcptHosts {
                hosts: c.list("rcpthosts")?.map(lower),
                more,
            },
            badmailfrom: c.list("badmailfrom")?.unwrap_or_default(),
            badrcptto: c.list("badrcptto")?.unwrap_or_default(),
            badhelo: if helocheck == HeloCheck::Off {
                Vec::new()
            } else {
                c.list("badhelo")?.unwrap_or_default()
            },
            peer: Peer {
                ip: var("TCPREMOTEIP").unwrap_or_else(|| b"unknown".to_vec()),
                host: var("TCPREMOTEHOST"),
                info: var("TCPREMOTEINFO"),
                local: var("TCPLOCALHOST")
                    .or_else(|| var("TCPLOCALIP"))
                    .unwrap_or_else(|| b"unknown".to_vec()),
            },
            local_ips: LocalIps::new(var("TCPLOCALIP"), crate::sys::local_addresses),
            relayclient: env::var("RELAYCLIENT"),
            helocheck,
            mfdnscheck: env::is_set("MFDNSCHECK"),
            maxrecipients: num(env::var("MAXRECIPIENTS"))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            tarpitcount: num(env::var("TARPITCOUNT")).unwrap_or(0),
            tarpitdelay: num(env::var("TARPITDELAY")).unwrap_or(0),
            recipients450: env::is_set("RECIPIENTS450"),
            localmfcheck: env::var("LOCALMFCHECK"),
            badmimetype: env::var("BADMIMETYPE"),
            badloadertype: env::var("BADLOADERTYPE"),
            auth: AuthMode::parse(
                env::var("SMTPAUTH").as_deref(),
                have_checkprogram,
                env::is_set("PLAINTEXTAUTH"),
            ),
            tls: TlsMode::parse(env::var("UCSPITLS").as_deref(), env::is_set("SSLCTLFD")),
            tls_vars,
            replies: Replies {
                helo: nonempty(env::var("REPLY_HELO")),
                maxsize: nonempty(env::var("REPLY_MAXSIZE")),
                badmailfrom: nonempty(env::var("REPLY_BADMAILFROM")),
                badrcptto: nonempty(env::var("REPLY_BADRCPTTO")),
                senderexist: nonempty(env::var("REPLY_SENDEREXIST")),
                nogateway: nonempty(env::var("REPLY_NOGATEWAY")),
                content: nonempty(env::var("REPLY_CONTENT")),
                mailbox: nonempty(env::var("REPLY_MAILBOX")),
                senderinvalid: nonempty(env::var("REPLY_SENDERINVALID"))
                    .or_else(|| nonempty(env::var("REPLYMAV"))),
            },
            deliverto: nonempty(env::var("DELIVERTO")),
            rblsmtpd: nonempty(env::var("RBLSMTPD")),
            pid: std::process::id(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtpauth_values() {
        let m = |v: &str| AuthMode::parse(Some(v.as_bytes()), true, false);
        assert_eq!(m("").mechs.map(|x| x.ehlo()), Some("AUTH LOGIN PLAIN"));
        assert_eq!(
            m("+cram").mechs.map(|x| x.ehlo()),
            Some("AUTH LOGIN PLAIN CRAM-MD5")
        );
        assert_eq!(m("cram").mechs.map(|x| x.ehlo()), Some("AUTH CRAM-MD5"));
        assert!(m("!").required && m("!+cram").mechs.is_some_and(|x| x.cram));
        assert_eq!(m("-").mechs, None);
        assert_eq!(AuthMode::parse(Some(b""), false, false).mechs, None);
        assert_eq!(AuthMode::parse(None, true, false).mechs, None);
    }

    #[test]
    fn ucspitls_values() {
        assert!(TlsMode::parse(Some(b""), true).offered);
        assert!(!TlsMode::parse(Some(b""), false).offered);
        assert!(TlsMode::parse(Some(b"!"), true).required);
        assert!(!TlsMode::parse(Some(b"-"), true).offered);
        assert!(TlsMode::parse(Some(b"?"), true).offered);
        assert!(!TlsMode::parse(None, true).offered);
    }
}
