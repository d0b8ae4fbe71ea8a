//! The SMTP session as a pure state machine: a command line in, a reply and an action out.
//! The driver ([`super::server`]) does what the action asks (start TLS, run the
//! checkprogram, read the message) and reports back.

use super::auth::{self, Credentials, Exchange};

mod finish;
use super::command::{self, mail_params};
use super::config::{Config, HeloCheck, Vars};
use super::data::Defect;
use super::filter::{self, Client};
use super::policy::{ContentCheck, Dns, DnsTrouble, Policy, RcptCheck};
use super::text::{self, Context, Event};
use crate::policy::mfrules::Client as MfClient;
use crate::queue::client::Refused;

/// What the driver must do after sending the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing: read the next command.
    Continue,
    /// Close the connection and exit 0 (QUIT).
    Quit,
    /// Close the connection and exit (a refusal that ends the session).
    Hangup,
    /// Switch to TLS (UCSPI-TLS), then call [`Session::tls_started`].
    StartTls,
    /// Run the checkprogram with these credentials, then call [`Session::auth_result`].
    Auth(Credentials),
    /// Start qmail-queue, send the reply (354) and read the message; if qmail-queue cannot
    /// start, send `451 qqt failure (#4.3.0)` instead. Then call [`Session::data_end`].
    Data,
}

/// A reply and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The complete reply, CRLF ended; may be empty.
    pub reply: Vec<u8>,
    /// Seconds to wait before sending the reply (tarpit, failed AUTH).
    pub delay: u64,
    /// What to do next.
    pub action: Action,
}

fn reply(r: impl Into<Vec<u8>>) -> Step {
    Step {
        reply: r.into(),
        delay: 0,
        action: Action::Continue,
    }
}

/// The last reply of a session.
fn hangup(r: impl Into<Vec<u8>>) -> Step {
    Step {
        reply: r.into(),
        delay: 0,
        action: Action::Hangup,
    }
}

fn with_extra(base: &str, extra: Option<&[u8]>, code: &str) -> Vec<u8> {
    let mut r = base.as_bytes().to_vec();
    if let Some(e) = extra {
        r.push(b' ');
        r.extend(
            e.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
    }
    r.extend_from_slice(b" (");
    r.extend_from_slice(code.as_bytes());
    r.extend_from_slice(b")\r\n");
    r
}

/// How the checkprogram run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Exit 0.
    Accepted,
    /// Any other exit.
    Refused,
    /// The plumbing failed: the complete 454 reply.
    Trouble(&'static [u8]),
}

/// What the driver reports when a message has been read.
#[derive(Clone, Debug)]
pub struct DataResult {
    /// The worst defect the reader found.
    pub defect: Option<Defect>,
    /// What the content policy said.
    pub content: ContentCheck,
    /// qmail-queue's outcome with its pid; `None` when it was not asked (a defect).
    pub queue: Option<Result<u32, Refused>>,
    /// The time, seconds since the epoch.
    pub now: i64,
}

struct Mail {
    from: Vec<u8>,
    too_big: bool,
    bad: filter::Verdict,
    /// LOCALMFCHECK's verdict on the sender of a relay client; `None` when not checked.
    mav: Option<bool>,
}

/// The who of an authenticated session.
#[derive(Clone, Debug)]
struct Authed {
    user: Vec<u8>,
    method: &'static str,
}

/// One SMTP session.
pub struct Session {
    cfg: Config,
    policy: Policy,
    helo: Option<Vec<u8>>,
    tls: Option<Vars>,
    authed: Option<Authed>,
    exchange: Option<Exchange>,
    mail: Option<Mail>,
    rcpts: Vec<Vec<u8>>,
    attempts: u64,
    failed: u64,
    bad: u64,
    log: Vec<u8>,
}

impl Session {
    /// A session with this configuration and policy.
    pub fn new(cfg: Config, policy: Policy) -> Session {
        let mut s = Session {
            tls: cfg.tls_vars.clone(),
            cfg,
            policy,
            helo: None,
            authed: None,
            exchange: None,
            mail: None,
            rcpts: Vec::new(),
            attempts: 0,
            failed: 0,
            bad: 0,
            log: Vec::new(),
        };
        s.cert_relay();
        s
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The policy hooks.
    pub fn policy(&mut self) -> &mut Policy {
        &mut self.policy
    }

    /// The greeting line.
    pub fn greeting(&self) -> Vec<u8> {
        [b"220 ", self.cfg.greeting.as_slice(), b" ESMTP\r\n"].concat()
    }

    /// Log lines produced since the last call.
    pub fn take_log(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.log)
    }

    /// True while an AUTH exchange waits for a client line.
    pub fn in_auth(&self) -> bool {
        self.exchange.is_some()
    }

    /// True once the client may relay.
    pub fn relay(&self) -> bool {
        self.cfg.relayclient.is_some() || self.authed.is_some()
    }

    /// The protocol label: `ESMTP`, then `S` with TLS, `A` when authenticated and `M`
    /// when LOCALMFCHECK accepted the sender of the transaction.
    pub fn proto(&self) -> String {
        let mut p = String::from("ESMTP");
        if self.tls.is_some() {
            p.push('S');
        }
        if self.authed.is_some() {
            p.push('A');
        }
        if self.mail.as_ref().is_some_and(|m| m.mav == Some(true)) {
            p.push('M');
        }
        p
    }

    fn note(&mut self, action: &str, kind: &str, cond: &str, to: &[u8], extra: &[u8]) {
        let proto = self.proto();
        let from = self
            .mail
            .as_ref()
            .map(|m| m.from.clone())
            .unwrap_or_default();
        let helo = self.helo.clone().unwrap_or_default();
        let c = Context {
            pid: self.cfg.pid,
            proto: &proto,
            peer: &self.cfg.peer,
            helo: &helo,
            from: &from,
            to,
        };
        let l = text::log(&c, &Event { action, kind, cond }, extra);
        self.log.extend_from_slice(&l);
    }

    fn reset(&mut self) {
        self.mail = None;
        self.rcpts.clear();
        self.attempts = 0;
        self.failed = 0;
    }

    fn auth_offered(&self) -> Option<auth::Mechs> {
        let m = self.cfg.auth.mechs?;
        (self.tls.is_some() || self.cfg.auth.plaintext).then_some(m)
    }

    fn tls_offered(&self) -> bool {
        self.cfg.tls.offered && self.tls.is_none()
    }

    /// Handles one line from the client, its line end removed.
    pub fn line(&mut self, line: &[u8], dns: &mut dyn Dns) -> Step {
        let step = self.command(line, dns);
        let bad = [&b"500 "[..], b"501 ", b"503 ", b"555 "]
            .iter()
            .any(|p| step.reply.starts_with(p));
        if bad {
            return self.bad_command(step);
        }
        step
    }

    /// Counts a bad command (the driver calls it for an overlong line, answered with
    /// `reply`); past [`super::BAD_COMMANDS_MAX`] the reply becomes
    /// [`super::REPLY_TOO_MANY_BAD`] and the session ends.
    pub fn bad_command(&mut self, step: Step) -> Step {
        self.bad += 1;
        if self.bad <= super::BAD_COMMANDS_MAX {
            return step;
        }
        self.note("Reject", "SNDR", "Bad_Commands", b"", b"");
        hangup(super::REPLY_TOO_MANY_BAD)
    }

    fn command(&mut self, line: &[u8], dns: &mut dyn Dns) -> Step {
        if let Some(ex) = self.exchange.take() {
            return self.auth_step(auth::next(ex, line));
        }
        if line.contains(&0) {
            return reply(&b"501 NUL in command line (#5.5.2)\r\n"[..]);
        }
        let c = command::split(line);
        match c.verb.as_slice() {
            b"helo" => self.helo(c.arg, false),
            b"ehlo" => self.helo(c.arg, true),
            b"mail" => self.mail(c.arg, dns),
            b"rcpt" => self.rcpt(c.arg, dns),
            b"data" => self.data(),
            b"rset" => {
                self.reset();
                reply(&b"250 flushed\r\n"[..])
            }
            b"noop" => reply(&b"250 ok\r\n"[..]),
            b"vrfy" => reply(&b"252 send some mail, i'll try my best\r\n"[..]),
            b"help" => reply(&b"214 sqmail home page: http://fehcom.de/sqmail.html\r\n"[..]),
            b"quit" => Step {
                reply: [b"221 ", self.cfg.greeting.as_slice(), b"\r\n"].concat(),
                delay: 0,
                action: Action::Quit,
            },
            b"starttls" => self.starttls(c.arg),
            b"auth" => self.auth(c.arg),
            _ => reply(&b"500 unimplemented (#5.5.1)\r\n"[..]),
        }
    }

    fn helo(&mut self, arg: &[u8], ehlo: bool) -> Step {
        self.reset();
        self.helo = Some(arg.to_vec());
        let g = &self.cfg.greeting;
        if !ehlo {
            return reply([b"250 ", g.as_slice(), b"\r\n"].concat());
        }
        let mut r = [
            b"250-",
            g.as_slice(),
            b"\r\n250-PIPELINING\r\n250-8BITMIME\r\n",
        ]
        .concat();
        if self.tls_offered() {
            r.extend_from_slice(b"250-STARTTLS\r\n");
        }
        if let Some(m) = self.auth_offered() {
            r.extend_from_slice(format!("250-{}\r\n", m.ehlo()).as_bytes());
        }
        r.extend_from_slice(
            format!("250-SMTPUTF8\r\n250 SIZE {}\r\n", self.cfg.databytes).as_bytes(),
        );
        reply(r)
    }

    fn mail(&mut self, arg: &[u8], dns: &mut dyn Dns) -> Step {
        if self.cfg.tls.required && self.tls.is_none() {
            self.note("Reject", "TLS", "missing", b"", b"");
            return reply(&b"535 STARTTLS required (#5.7.1)\r\n"[..]);
        }
        if self.cfg.auth.required && self.cfg.auth.mechs.is_some() && self.authed.is_none() {
            self.note("Reject", "AUTH", "missing", b"", b"");
            return reply(&b"535 authentication required (#5.7.1)\r\n"[..]);
        }
        let Some(p) = command::path(arg) else {
            return reply(&b"555 syntax error (#5.5.4)\r\n"[..]);
        };
        let params = mail_params(p.params);
        let from = match self.literal(p.addr) {
            Ok(a) => a,
            Err(s) => return s,
        };
        let too_big =
            self.cfg.databytes != 0 && params.size.is_some_and(|s| s > self.cfg.databytes);
        let host = self.cfg.peer.host.clone();
        let client = Client {
            host: host.as_deref(),
            relay: self.relay(),
        };
        let bad = filter::evaluate(&self.cfg.badmailfrom, &from, Some(client));
        self.reset();
        let Ok(mav) = self.mav(&from) else {
            return hangup(&b"421 unable to read controls (#4.3.0)\r\n"[..]);
        };
        if !bad.whitelisted
            && let Some(refusal) = self.sender_check(&from, dns)
        {
            return refusal;
        }
        self.mail = Some(Mail {
            from,
            too_big,
            bad,
            mav,
        });
        reply(&b"250 ok\r\n"[..])
    }

    /// LOCALMFCHECK for a relay client: `Ok(None)` when the sender is not checked (unset,
    /// not a relay client, or `<>`), else whether it may be used; `Err` when
    /// control/mailfromrules.cdb or rcpthosts cannot be read.
    ///
    /// `!` asks control/mailfromrules.cdb (rcpthosts when it does not exist); `=` wants
    /// the sender to equal the authenticated user (or TCPREMOTEINFO); `?` wants it to
    /// equal the e-mail address of the client certificate; a domain wants the sender's
    /// domain to be that one or in rcpthosts; any other value (empty included) wants it in
    /// rcpthosts. Addresses are compared without regard to case.
    fn mav(&mut self, from: &[u8]) -> Result<Option<bool>, ()> {
        let Some(mode) = self.cfg.localmfcheck.clone() else {
            return Ok(None);
        };
        if !self.relay() || from.is_empty() {
            return Ok(None);
        }
        let info = match &self.authed {
            Some(a) => Some(a.user.clone()),
            None => self.cfg.peer.info.clone(),
        };
        let ok = match mode.as_slice() {
            b"=" => info.is_some_and(|i| i.eq_ignore_ascii_case(from)),
            b"?" => self
                .cert_email()
                .is_some_and(|e| e.eq_ignore_ascii_case(from)),
            b"!" => {
                let who = MfClient {
                    ip: self.cfg.peer.ip.clone(),
                    host: self.cfg.peer.host.clone(),
                    info,
                };
                match self.policy.mail_from_rules(&who, from) {
                    Ok(Some(ok)) => ok,
                    Ok(None) => self.mav_domain(&mode, from)?,
                    Err(_) => return Err(()),
                }
            }
            _ => self.mav_domain(&mode, from)?,
        };
        Ok(Some(ok))
    }

    /// The sender's domain is `mode` (when longer than one character) or in rcpthosts.
    fn mav_domain(&self, mode: &[u8], from: &[u8]) -> Result<bool, ()> {
        let domain = from
            .iter()
            .rposition(|&c| c == b'@')
            .and_then(|i| from.get(i + 1..));
        if mode.len() > 1 && domain.is_some_and(|d| d.eq_ignore_ascii_case(mode)) {
            return Ok(true);
        }
        self.cfg.rcpthosts.allowed(from).map_err(|_| ())
    }

    /// The e-mail address of the client certificate: SSL_CLIENT_S_DN_Email, else the
    /// `emailAddress` of SSL_CLIENT_S_DN.
    fn cert_email(&self) -> Option<Vec<u8>> {
        let vars = self.tls.as_ref()?;
        let get = |k: &[u8]| {
            vars.iter()
                .find(|(n, _)| n.as_slice() == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        get(b"SSL_CLIENT_S_DN_Email").or_else(|| {
            get(b"SSL_CLIENT_S_DN")?
                .split(|&c| c == b'/' || c == b',')
                .find_map(|p| {
                    let p = p.trim_ascii();
                    let i = p.iter().position(|&c| c == b'=')?;
                    let (k, v) = (p.get(..i)?, p.get(i + 1..)?);
                    (k.eq_ignore_ascii_case(b"emailAddress") || k.eq_ignore_ascii_case(b"Email"))
                        .then(|| v.to_vec())
                })
        })
    }

    /// MFDNSCHECK, answered at MAIL: `None` when the sender may go on.
    fn sender_check(&mut self, from: &[u8], dns: &mut dyn Dns) -> Option<Step> {
        if !self.cfg.mfdnscheck || self.relay() {
            return None;
        }
        let domain = from
            .iter()
            .rposition(|&c| c == b'@')
            .and_then(|i| from.get(i + 1..))
            .unwrap_or_default();
        if domain.is_empty() {
            return None;
        }
        match dns.mail_domain_exists(domain) {
            Ok(true) => None,
            Ok(false) => {
                self.mail = Some(Mail {
                    from: from.to_vec(),
                    too_big: false,
                    bad: filter::Verdict::default(),
                    mav: None,
                });
                self.note("Reject", "ORIG", "DNS_MF", b"", b"");
                self.mail = None;
                Some(reply(with_extra(
                    "553 sorry, your envelope sender must exist",
                    self.cfg.replies.senderexist.as_deref(),
                    "#5.7.1",
                )))
            }
            Err(DnsTrouble) => Some(reply(&b"451 DNS temporary failure (#4.3.0)\r\n"[..])),
        }
    }

    /// Rewrites `box@[ip]` for our own address to `box@localiphost`. When this machine's
    /// addresses cannot be read the session ends with s/qmail's 421, as its start would.
    fn literal(&self, addr: Vec<u8>) -> Result<Vec<u8>, Step> {
        let Some(at) = addr.iter().rposition(|&c| c == b'@') else {
            return Ok(addr);
        };
        let dom = addr.get(at + 1..).unwrap_or_default();
        let Some(ip) = dom.strip_prefix(b"[").and_then(|d| d.strip_suffix(b"]")) else {
            return Ok(addr);
        };
        let ip = ip
            .strip_prefix(b"IPv6:")
            .or_else(|| ip.strip_prefix(b"ipv6:"))
            .unwrap_or(ip);
        let parsed = std::str::from_utf8(ip)
            .ok()
            .and_then(|t| t.parse::<std::net::IpAddr>().ok());
        let ours = match parsed.map(|a| self.cfg.local_ips.contains(&a)) {
            None => false,
            Some(Ok(b)) => b,
            Some(Err(_)) => {
                return Err(hangup(
                    &b"421 unable to figure out my IP addresses (#4.3.0)\r\n"[..],
                ));
            }
        };
        if ours {
            let mut a = addr.get(..=at).unwrap_or_default().to_vec();
            a.extend_from_slice(&self.cfg.localiphost);
            return Ok(a);
        }
        Ok(addr)
    }

    fn refuse_rcpt(&mut self, kind: &str, cond: &str, to: &[u8], extra: &[u8], r: Vec<u8>) -> Step {
        self.failed = self.failed.saturating_add(1);
        self.note("Reject", kind, cond, to, extra);
        reply(r)
    }

    fn helo_ok(&mut self, dns: &mut dyn Dns) -> Result<bool, DnsTrouble> {
        let check = self.cfg.helocheck;
        if check == HeloCheck::Off {
            return Ok(true);
        }
        let Some(helo) = self.helo.clone() else {
            return Ok(false);
        };
        if matches!(
            check,
            HeloCheck::BadHelo | HeloCheck::RequiredBadHelo | HeloCheck::DnsA | HeloCheck::DnsMx
        ) {
            let accept_nodns = self.cfg.badhelo.iter().any(|l| {
                l.strip_suffix(b"!")
                    .is_some_and(|n| filter::line_matches(n, &helo))
            });
            if accept_nodns {
                return Ok(true);
            }
            if filter::evaluate(&self.cfg.badhelo, &helo, None)
                .bad
                .is_some()
            {
                return Ok(false);
            }
        }
        match check {
            HeloCheck::RemoteHost => Ok(self
                .cfg
                .peer
                .host
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(&helo))),
            HeloCheck::DnsA => dns.has_address(&helo),
            HeloCheck::DnsMx => dns.has_mx(&helo),
            _ => Ok(true),
        }
    }

    /// The checks for clients that may not relay: HELOCHECK, then rcpthosts.
    fn stranger_checks(&mut self, to: &[u8], dns: &mut dyn Dns) -> Option<Step> {
        match self.helo_ok(dns) {
            Ok(true) => {}
            Ok(false) => {
                let r = with_extra(
                    "550 sorry, invalid HELO/EHLO greeting",
                    self.cfg.replies.helo.as_deref(),
                    "#5.7.1",
                );
                return Some(self.refuse_rcpt("SNDR", "Bad_Helo", to, b"", r));
            }
            Err(DnsTrouble) => return Some(reply(&b"451 DNS temporary failure (#4.3.0)\r\n"[..])),
        }
        match self.cfg.rcpthosts.allowed(to) {
            Ok(true) => {}
            Ok(false) => {
                let r = with_extra(
                    "553 sorry, that domain isn't in my list of allowed rcpthosts",
                    self.cfg.replies.nogateway.as_deref(),
                    "#5.7.1",
                );
                return Some(self.refuse_rcpt("SNDR", "Invalid_Relay", to, b"", r));
            }
            Err(_) => {
                return Some(hangup(&b"421 unable to read controls (#4.3.0)\r\n"[..]));
            }
        }
        None
    }

    fn rcpt(&mut self, arg: &[u8], dns: &mut dyn Dns) -> Step {
        let Some(mail) = self.mail.as_ref() else {
            return reply(&b"503 MAIL first (#5.5.1)\r\n"[..]);
        };
        let mav = mail.mav;
        let Some(p) = command::path(arg) else {
            return reply(&b"555 syntax error (#5.5.4)\r\n"[..]);
        };
        let to = match self.literal(p.addr) {
            Ok(a) => a,
            Err(s) => return s,
        };
        self.attempts = self.attempts.saturating_add(1);
        // s/qmail's order: first the checks of the client's side (HELO, rcpthosts, the
        // tarpit and recipient verification for clients that may not relay; the sender
        // for relay clients), then those common to both.
        if self.relay() {
            if mav == Some(false) {
                let r = with_extra(
                    "553 sorry, invalid sender address specified",
                    self.cfg.replies.senderinvalid.as_deref(),
                    "#5.7.1",
                );
                return self.refuse_rcpt("ORIG", "Invalid_Mailfrom", &to, b"", r);
            }
            return self.rcpt_common(to, "Relay_Client");
        }
        if let Some(refusal) = self.stranger_checks(&to, dns) {
            return refusal;
        }
        let delay = match self.tarpit(&to) {
            Ok(d) => d,
            Err(s) => return s,
        };
        let step = match self.policy.rcpt(&to) {
            RcptCheck::Accept(cond) => self.rcpt_common(to, cond),
            RcptCheck::Unknown => {
                let r = if self.cfg.recipients450 {
                    b"450 sorry, mailbox currently unavailable (#4.2.1)\r\n".to_vec()
                } else {
                    with_extra(
                        "550 sorry, no mailbox by that name",
                        self.cfg.replies.mailbox.as_deref(),
                        "#5.7.1",
                    )
                };
                self.refuse_rcpt("RCPT", "Failed_Rcptto", &to, b"", r)
            }
            RcptCheck::Trouble(r) => hangup(r),
        };
        Step { delay, ..step }
    }

    /// The checks for every client (badmailfrom, badrcptto, SIZE, the recipient limits),
    /// then the recipient is accepted; `cond` is the log condition of a client that did
    /// not authenticate and whose sender LOCALMFCHECK did not vouch for.
    fn rcpt_common(&mut self, mut to: Vec<u8>, cond: &'static str) -> Step {
        let (bad_from, too_big, mav) = match &self.mail {
            Some(m) => (m.bad.bad, m.too_big, m.mav),
            None => (None, false, None),
        };
        if let Some(mark) = bad_from {
            let r = with_extra(
                "553 sorry, your envelope sender is in my badmailfrom list",
                self.cfg.replies.badmailfrom.as_deref(),
                "#5.7.1",
            );
            return self.refuse_rcpt("ORIG", "Bad_Mailfrom", &to, mark.as_bytes(), r);
        }
        if filter::evaluate(&self.cfg.badrcptto, &to, None)
            .bad
            .is_some()
        {
            let r = with_extra(
                "553 sorry, your envelope recipient is in my badrcptto list",
                self.cfg.replies.badrcptto.as_deref(),
                "#5.7.1",
            );
            return self.refuse_rcpt("RCPT", "Bad_Rcptto", &to, b"", r);
        }
        if too_big {
            let r = with_extra(
                "552 sorry, that message size exceeds my databytes limit",
                self.cfg.replies.maxsize.as_deref(),
                "#5.3.4",
            );
            return self.refuse_rcpt("RCPT", "Invalid_Size", &to, b"", r);
        }
        let limit = match self.cfg.maxrecipients {
            0 => super::RCPT_HARD_MAX,
            n => n.min(super::RCPT_HARD_MAX),
        };
        if self.rcpts.len() >= limit {
            return self.too_many(&to);
        }
        let cond = if mav == Some(true) {
            ("ORIG", "Local_Sender")
        } else if let Some(a) = &self.authed {
            ("AUTH", a.method)
        } else {
            ("RCPT", cond)
        };
        if let Some(suffix) = &self.cfg.relayclient {
            to.extend_from_slice(suffix);
        }
        if !crate::addr::fits_queue(&to) {
            return reply(&b"555 syntax error (#5.5.4)\r\n"[..]);
        }
        self.note("Accept", cond.0, cond.1, &to, b"");
        self.rcpts.push(to);
        reply(&b"250 ok\r\n"[..])
    }

    fn too_many(&mut self, to: &[u8]) -> Step {
        self.failed = self.failed.saturating_add(1);
        self.note("Reject", "RCPT", "Toomany_Rcptto", to, b"");
        reply(&b"452 sorry, too many recipients (#4.5.3)\r\n"[..])
    }

    /// TARPITCOUNT and TARPITDELAY, for clients that may not relay: a refusal, or the
    /// seconds to wait before answering.
    fn tarpit(&mut self, to: &[u8]) -> Result<u64, Step> {
        let count = self.cfg.tarpitcount;
        let over_count = count != 0 && self.attempts > count;
        // TARPITDELAY 0: no delay, but no recipient after TARPITCOUNT refused ones;
        // 999: no recipient after TARPITCOUNT commands (and no DATA).
        let hard = match self.cfg.tarpitdelay {
            0 => count != 0 && self.failed >= count,
            999 => over_count,
            _ => false,
        };
        if hard {
            return Err(self.too_many(to));
        }
        Ok(if over_count { self.cfg.tarpitdelay } else { 0 })
    }

    fn data(&mut self) -> Step {
        if self.mail.is_none() {
            return reply(&b"503 MAIL first (#5.5.1)\r\n"[..]);
        }
        if self.rcpts.is_empty() {
            return reply(&b"503 RCPT first (#5.5.1)\r\n"[..]);
        }
        if !self.relay()
            && self.cfg.tarpitcount != 0
            && self.cfg.tarpitdelay == 999
            && self.attempts > self.cfg.tarpitcount
        {
            return hangup(&b"503 DATA command not accepted at this time (#5.5.1)\r\n"[..]);
        }
        Step {
            reply: b"354 go ahead\r\n".to_vec(),
            delay: 0,
            action: Action::Data,
        }
    }

    fn starttls(&mut self, arg: &[u8]) -> Step {
        if !self.tls_offered() {
            return reply(&b"500 unimplemented (#5.5.1)\r\n"[..]);
        }
        if !arg.is_empty() {
            return reply(&b"501 syntax error (#5.5.4)\r\n"[..]);
        }
        Step {
            reply: b"220 Ready to start TLS (#5.7.0)\r\n".to_vec(),
            delay: 0,
            action: Action::StartTls,
        }
    }

    /// TLS is on: forget HELO, the transaction and any password authentication, and take
    /// the engine's SSL_* variables.
    pub fn tls_started(&mut self, vars: Vars) {
        self.reset();
        self.helo = None;
        self.authed = None;
        self.exchange = None;
        self.tls = Some(vars);
        self.cert_relay();
    }

    /// A client certificate makes the client a relay client only when sslserver verified it
    /// (`SSL_CLIENT_VERIFY=SUCCESS`) and named its subject.
    fn cert_relay(&mut self) {
        let Some(vars) = &self.tls else {
            return;
        };
        let get = |k: &[u8]| {
            vars.iter()
                .find(|(n, _)| n.as_slice() == k)
                .map(|(_, v)| v.clone())
        };
        let verified = get(b"SSL_CLIENT_VERIFY").as_deref() == Some(b"SUCCESS");
        let dn = get(b"SSL_CLIENT_S_DN").filter(|d| !d.is_empty());
        if let (true, Some(dn)) = (verified, dn) {
            let cn = dn
                .split(|&c| c == b'/' || c == b',')
                .find_map(|p| p.trim_ascii().strip_prefix(b"CN="))
                .map_or(dn.clone(), <[u8]>::to_vec);
            self.authed = Some(Authed {
                user: cn,
                method: "cert",
            });
        }
    }

    /// The SSL_* variables of the TLS session, if TLS is on.
    pub fn tls_vars(&self) -> Option<&[(Vec<u8>, Vec<u8>)]> {
        self.tls.as_deref()
    }

    /// The sender and the recipients of the transaction.
    pub fn envelope(&self) -> (&[u8], &[Vec<u8>]) {
        (
            self.mail
                .as_ref()
                .map(|m| m.from.as_slice())
                .unwrap_or_default(),
            &self.rcpts,
        )
    }
}
