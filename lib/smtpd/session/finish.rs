//! The session's second half: AUTH exchanges and the checkprogram's verdict, what goes
//! to qmail-queue (environment and header fields), and the reply after DATA.

use super::{Action, AuthOutcome, Authed, DataResult, Session, Step, hangup, reply, with_extra};
use crate::fail::Class;
use crate::smtpd::auth::{self, Credentials};
use crate::smtpd::data::Defect;
use crate::smtpd::policy::ContentCheck;
use crate::smtpd::text;

impl Session {
    pub(super) fn auth(&mut self, arg: &[u8]) -> Step {
        let Some(configured) = self.cfg.auth.mechs else {
            return reply(&b"503 auth not available (#5.3.3)\r\n"[..]);
        };
        if self.auth_offered().is_none() {
            let _ = configured;
            return reply(
                &b"538 encryption required for requested authentication mechanism (#5.7.11)\r\n"[..],
            );
        }
        if self.authed.is_some() {
            return reply(&b"503 you're already authenticated (#5.5.0)\r\n"[..]);
        }
        if self.mail.is_some() {
            return reply(&b"503 no auth during mail transaction (#5.5.0)\r\n"[..]);
        }
        let challenge = format!(
            "<{}.{}@{}>",
            self.cfg.pid,
            crate::date::now(),
            String::from_utf8_lossy(&self.cfg.peer.local)
        );
        self.auth_step(auth::start(arg, configured, challenge.as_bytes()))
    }

    pub(super) fn auth_step(&mut self, s: auth::Step) -> Step {
        match s {
            auth::Step::Prompt(r, ex) => {
                self.exchange = Some(ex);
                reply(r)
            }
            auth::Step::Fail(r) => reply(r),
            auth::Step::Check(c) => Step {
                reply: Vec::new(),
                delay: 0,
                action: Action::Auth(c),
            },
        }
    }

    /// Reports the checkprogram's verdict on `cred`.
    pub fn auth_result(&mut self, cred: &Credentials, outcome: AuthOutcome) -> Step {
        let extra = [b"?~ '".as_slice(), &cred.user, b"'"].concat();
        match outcome {
            AuthOutcome::Accepted => {
                self.authed = Some(Authed {
                    user: cred.user.clone(),
                    method: cred.mech.name(),
                });
                self.note("Accept", "AUTH", cred.mech.name(), b"", &extra);
                reply(&b"235 ok, go ahead (#2.0.0)\r\n"[..])
            }
            AuthOutcome::Refused => {
                self.note("Reject", "AUTH", cred.mech.name(), b"", &extra);
                Step {
                    reply: b"535 authentication failed (#5.7.1)\r\n".to_vec(),
                    delay: crate::smtpd::AUTH_FAIL_DELAY_SECS,
                    action: Action::Continue,
                }
            }
            AuthOutcome::Trouble(r) => reply(r),
        }
    }

    /// The variables qmail-queue (and any QMAILQUEUE filter) gets: HELOHOST, MAILFROM,
    /// RCPTTO (DELIVERTO first), AUTHUSER, AUTHPROTOCOL, TCPREMOTEINFO and the SSL_* set.
    pub fn queue_env(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let (from, rcpts) = self.envelope();
        let mut to: Vec<u8> = self.cfg.deliverto.clone().unwrap_or_default();
        for r in rcpts {
            if !to.is_empty() {
                to.push(b' ');
            }
            to.extend_from_slice(r);
        }
        let mut v = vec![
            (b"HELOHOST".to_vec(), self.helo.clone().unwrap_or_default()),
            (b"MAILFROM".to_vec(), from.to_vec()),
            (b"RCPTTO".to_vec(), to),
        ];
        if let Some(a) = &self.authed {
            v.push((b"AUTHUSER".to_vec(), a.user.clone()));
            v.push((b"AUTHPROTOCOL".to_vec(), a.method.as_bytes().to_vec()));
            v.push((b"TCPREMOTEINFO".to_vec(), a.user.clone()));
        }
        v.extend(self.tls.iter().flatten().cloned());
        v
    }

    /// The header fields put in front of the message: Received, then X-RBL-Info when
    /// RBLSMTPD is set. `date` is qmail's date822fmt, newline included.
    pub fn header(&self, date: &str) -> Vec<u8> {
        let mut peer = self.cfg.peer.clone();
        if let Some(a) = &self.authed {
            peer.info = Some(a.user.clone());
        }
        let tls = self.tls.as_deref().map(text::tls_info);
        let helo = self.helo.clone().unwrap_or_default();
        let mut h = text::received(&peer, &helo, tls.as_deref(), &self.proto(), date);
        if let Some(rbl) = &self.cfg.rblsmtpd {
            h.extend_from_slice(b"X-RBL-Info: ");
            text::safe(&mut h, rbl);
            h.push(b'\n');
        }
        h
    }

    /// qmail-queue could not be started: the transaction ends.
    pub fn data_failed(&mut self) -> Step {
        self.reset();
        reply(&b"451 qqt failure (#4.3.0)\r\n"[..])
    }

    /// The message has been read: the reply for it. The transaction ends.
    pub fn data_end(&mut self, r: DataResult) -> Step {
        let to = self.rcpts.first().cloned().unwrap_or_default();
        let out = match (r.defect, &r.content, &r.queue) {
            (Some(Defect::BareLineEnd), _, _) => {
                self.note("Reject", "DATA", "Bare_LF", &to, b"");
                b"451 Bare Line Feeds (LF) are not accepted in SMTP; CRLF is required according to RFC 2822.\r\n".to_vec()
            }
            (Some(Defect::TooBig), _, _) => {
                self.note("Reject", "DATA", "Invalid_Size", &to, b"");
                with_extra(
                    "552 sorry, that message size exceeds my databytes limit",
                    self.cfg.replies.maxsize.as_deref(),
                    "#5.3.4",
                )
            }
            (Some(Defect::Looping), _, _) => {
                b"554 too many hops, this message is looping (#5.4.6)\r\n".to_vec()
            }
            (None, ContentCheck::Trouble, _) => {
                self.reset();
                return hangup(&b"421 unable to read controls (#4.3.0)\r\n"[..]);
            }
            (None, ContentCheck::Refuse(cond, text), _) => {
                let info = [b"'".as_slice(), text, b"'"].concat();
                self.note("Reject", "DATA", cond, &to, &info);
                with_extra(
                    "554 sorry, invalid message content",
                    self.cfg.replies.content.as_deref(),
                    "#5.3.2",
                )
            }
            (None, ContentCheck::Accept, Some(Ok(pid))) => {
                format!("250 ok {} qp {pid}\r\n", r.now).into_bytes()
            }
            (None, ContentCheck::Accept, Some(Err(refused))) => {
                let code = if refused.class == Class::Perm {
                    "554"
                } else {
                    "451"
                };
                format!("{code} {}\r\n", refused.text).into_bytes()
            }
            (None, ContentCheck::Accept, None) => b"451 qqt failure (#4.3.0)\r\n".to_vec(),
        };
        self.reset();
        reply(out)
    }
}
