//! The hooks where checks built elsewhere plug in, and the DNS questions the session asks.
//!
//! [`Policy`] is the single place where a recipient is verified (control/recipients,
//! RECIPIENTS450) and where message content is judged (BADMIMETYPE, BADLOADERTYPE). Today
//! both accept everything; the session calls them at the right moment, so wiring a check in
//! changes only this file.

/// What the recipient check says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptCheck {
    /// Accept; the log condition names the source (`Rcpthosts_Rcptto`, `Recipients_Cdb`, …).
    Accept(&'static str),
    /// Refuse with this complete reply line (CRLF included); it counts as a failed RCPT.
    Refuse(Vec<u8>),
}

/// What the content check says about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentCheck {
    /// Queue it.
    Accept,
    /// Do not queue; answer `554 sorry, invalid message content (#5.3.2)`, logging this
    /// condition (`Bad_MIME`, `Bad_Loader`).
    Refuse(&'static str),
}

/// Recipient verification and content filters.
#[derive(Clone, Debug, Default)]
pub struct Policy {}

impl Policy {
    /// Called for every recipient a client that may not relay gives, after rcpthosts
    /// accepted its domain.
    pub fn rcpt(&mut self, _addr: &[u8]) -> RcptCheck {
        RcptCheck::Accept("Rcpthosts_Rcptto")
    }

    /// Called with each piece of the message as it is read (after dot-unstuffing and CRLF
    /// to LF); `relay` is true for clients that may relay.
    pub fn content(&mut self, _chunk: &[u8], _relay: bool) {}

    /// Called at the end of the message.
    pub fn content_verdict(&mut self) -> ContentCheck {
        ContentCheck::Accept
    }
}

/// No DNS answer could be had (timeout, SERVFAIL): a temporary condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsTrouble;

/// The DNS questions of HELOCHECK and MFDNSCHECK.
pub trait Dns {
    /// True when `domain` has an MX record, or failing that an A or AAAA record.
    fn mail_domain_exists(&mut self, domain: &[u8]) -> Result<bool, DnsTrouble>;
    /// True when `name` has an A (or AAAA) record.
    fn has_address(&mut self, name: &[u8]) -> Result<bool, DnsTrouble>;
    /// True when `name` has an MX record.
    fn has_mx(&mut self, name: &[u8]) -> Result<bool, DnsTrouble>;
}

/// A resolver that knows nothing: every name exists. For tests and fuzzing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDns;

impl Dns for NoDns {
    fn mail_domain_exists(&mut self, _domain: &[u8]) -> Result<bool, DnsTrouble> {
        Ok(true)
    }
    fn has_address(&mut self, _name: &[u8]) -> Result<bool, DnsTrouble> {
        Ok(true)
    }
    fn has_mx(&mut self, _name: &[u8]) -> Result<bool, DnsTrouble> {
        Ok(true)
    }
}
