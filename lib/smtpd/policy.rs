//! The hooks where the policy data of `lib/policy` plugs into a session, and the DNS
//! questions the session asks.
//!
//! [`Policy`] is the single place where
//! * a recipient of a client that may not relay is verified against `control/recipients`
//!   ([`Policy::rcpt`], after rcpthosts accepted its domain);
//! * a relay client's sender is looked up in `control/mailfromrules.cdb`
//!   ([`Policy::mail_from_rules`], for `LOCALMFCHECK=!`);
//! * the message is scanned for forbidden attachments as it is read (BADMIMETYPE,
//!   BADLOADERTYPE: [`Policy::begin_message`], [`Policy::content`],
//!   [`Policy::content_verdict`]).
//!
//! Each database is opened at its first use, once per session, and only when the session
//! needs it: a relay client never causes `control/recipients` to be read. The scanner keeps
//! one line of at most [`crate::policy::mime::LINE_MAX`] bytes, whatever the message.
//! [`Policy::default`] checks nothing: every recipient exists, every message is clean.

use std::path::{Path, PathBuf};

use crate::fail::Result;
use crate::policy::mfrules::{Client, MailFromRules};
use crate::policy::mime::{ContentFilter, Hit};
use crate::policy::recipients::{Recipients, Verdict};

/// The answer when `control/recipients` exists but cannot be read.
pub const REPLY_CONTROLS: &[u8] = b"421 unable to read controls (#4.3.0)\r\n";
/// The answer when a recipient cannot be checked now (a PAM exited 111 or a database is
/// unreadable).
pub const REPLY_RECIPIENTS: &[u8] = b"421 unable to check recipients (#4.3.0)\r\n";

/// What the recipient check says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptCheck {
    /// Accept; the log condition names the source (`Rcpthosts_Rcptto`, `Recipients_Cdb`,
    /// `Recipients_Pam`, `Recipients_Wild`).
    Accept(&'static str),
    /// No such mailbox: 550 (450 with RECIPIENTS450); it counts as a failed RCPT.
    Unknown,
    /// The check cannot be made now: answer this 421 line and end the session.
    Trouble(&'static [u8]),
}

/// What the content check says about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentCheck {
    /// Queue it.
    Accept,
    /// Do not queue; answer `554 sorry, invalid message content (#5.3.2)`, logging this
    /// condition (`Bad_MIME`, `Bad_Loader`) and the base64 text that matched.
    Refuse(&'static str, Vec<u8>),
    /// A database could not be read: do not queue, answer `421 unable to read controls`
    /// and end the session.
    Trouble,
}

/// When a database is opened: not yet, or with what came out (`None`: it does not exist).
enum Lazy<T> {
    Unread,
    Read(Option<T>),
}

/// Recipient verification, mail-from rules and content filters.
pub struct Policy {
    home: Option<PathBuf>,
    badmimetype: Option<Vec<u8>>,
    badloadertype: Option<Vec<u8>>,
    recipients: Lazy<Recipients>,
    mfrules: Lazy<MailFromRules>,
    filter: Option<ContentFilter>,
    trouble: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            home: None,
            badmimetype: None,
            badloadertype: None,
            recipients: Lazy::Unread,
            mfrules: Lazy::Unread,
            filter: None,
            trouble: false,
        }
    }
}

impl Policy {
    /// The policy of the qmail home `home`, with the values of BADMIMETYPE and
    /// BADLOADERTYPE (`None` when unset). Nothing is read yet.
    pub fn new(
        home: &Path,
        badmimetype: Option<Vec<u8>>,
        badloadertype: Option<Vec<u8>>,
    ) -> Policy {
        Policy {
            home: Some(home.to_path_buf()),
            badmimetype,
            badloadertype,
            ..Policy::default()
        }
    }

    /// Called for every recipient a client that may not relay gives, after rcpthosts
    /// accepted its domain. Without `control/recipients` every address exists.
    pub fn rcpt(&mut self, addr: &[u8]) -> RcptCheck {
        if let Lazy::Unread = self.recipients {
            let loaded = match &self.home {
                Some(h) => match Recipients::load(h) {
                    Ok(r) => r,
                    Err(_) => return RcptCheck::Trouble(REPLY_CONTROLS),
                },
                None => None,
            };
            self.recipients = Lazy::Read(loaded);
        }
        let Lazy::Read(Some(r)) = &self.recipients else {
            return RcptCheck::Accept(Verdict::Pass.log_tag());
        };
        match r.check(addr) {
            Ok(Verdict::Unknown) => RcptCheck::Unknown,
            Ok(v) => RcptCheck::Accept(v.log_tag()),
            Err(_) => RcptCheck::Trouble(REPLY_RECIPIENTS),
        }
    }

    /// `LOCALMFCHECK=!`: whether `control/mailfromrules.cdb` lets `who` use `sender`;
    /// `Ok(None)` when the database does not exist (the session then checks the sender's
    /// domain against rcpthosts, as s/qmail does). A temporary failure when it cannot be
    /// read.
    pub fn mail_from_rules(&mut self, who: &Client, sender: &[u8]) -> Result<Option<bool>> {
        if let Lazy::Unread = self.mfrules {
            let loaded = match &self.home {
                Some(h) => MailFromRules::open(h)?,
                None => None,
            };
            self.mfrules = Lazy::Read(loaded);
        }
        match &self.mfrules {
            Lazy::Read(Some(m)) => m.allowed(who, sender).map(Some),
            _ => Ok(None),
        }
    }

    /// Called when a message starts; `relay` says whether the client may relay (the `+`
    /// forms of BADMIMETYPE and BADLOADERTYPE then check nothing).
    pub fn begin_message(&mut self, relay: bool) {
        self.trouble = false;
        self.filter = None;
        let Some(home) = &self.home else {
            return;
        };
        match ContentFilter::new(
            home,
            self.badmimetype.as_deref(),
            self.badloadertype.as_deref(),
            relay,
        ) {
            Ok(f) => self.filter = f,
            Err(_) => self.trouble = true,
        }
    }

    /// Called with each piece of the message as it is read (after dot-unstuffing and CRLF
    /// to LF).
    pub fn content(&mut self, chunk: &[u8]) {
        if let Some(f) = self.filter.as_mut()
            && f.feed(chunk).is_err()
        {
            self.trouble = true;
        }
    }

    /// True once the message is known to be refused: the rest need not be queued.
    pub fn content_refused(&self) -> bool {
        self.trouble || self.filter.as_ref().is_some_and(|f| f.hit().is_some())
    }

    /// Called at the end of the message.
    pub fn content_verdict(&mut self) -> ContentCheck {
        let filter = self.filter.take();
        if std::mem::take(&mut self.trouble) {
            return ContentCheck::Trouble;
        }
        let Some(mut f) = filter else {
            return ContentCheck::Accept;
        };
        match f.finish() {
            Err(_) => ContentCheck::Trouble,
            Ok(None) => ContentCheck::Accept,
            Ok(Some(hit)) => {
                let (Hit::Mime(text) | Hit::Loader(text)) = hit;
                ContentCheck::Refuse(hit.log_condition(), text.clone())
            }
        }
    }
}

/// No DNS answer could be had (timeout, SERVFAIL): a temporary condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsTrouble;

/// The DNS questions of HELOCHECK and MFDNSCHECK.
pub trait Dns {
    /// True when `domain` has an MX record, or failing that an A or AAAA record.
    fn mail_domain_exists(&mut self, domain: &[u8]) -> std::result::Result<bool, DnsTrouble>;
    /// True when `name` has an A (or AAAA) record.
    fn has_address(&mut self, name: &[u8]) -> std::result::Result<bool, DnsTrouble>;
    /// True when `name` has an MX record.
    fn has_mx(&mut self, name: &[u8]) -> std::result::Result<bool, DnsTrouble>;
}

/// A resolver that knows nothing: every name exists. For tests and fuzzing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDns;

impl Dns for NoDns {
    fn mail_domain_exists(&mut self, _domain: &[u8]) -> std::result::Result<bool, DnsTrouble> {
        Ok(true)
    }
    fn has_address(&mut self, _name: &[u8]) -> std::result::Result<bool, DnsTrouble> {
        Ok(true)
    }
    fn has_mx(&mut self, _name: &[u8]) -> std::result::Result<bool, DnsTrouble> {
        Ok(true)
    }
}
