//! The header as qmail-inject fixes it: each field is checked, address fields are
//! rewritten and their recipients collected, Bcc, Resent-Bcc, Return-Path and
//! Content-Length are dropped, and at the end the missing Date, Message-ID, From and Cc (or
//! their Resent- forms) and Mail-Followup-To are put in front of the fields kept.

use super::Fatal;
use super::config::Settings;
use super::fields::{self, Field};
use super::list::{self, ListError};
use super::rewrite::{self, quote2};
use super::token::{self, Kind, Token};
use crate::date::Utc;

/// qmail-inject folds rewritten address fields at this width.
pub const LINE_LEN: usize = 80;
/// The most bytes the rewritten header and its recipient lists may take.
pub const REWRITTEN_MAX: usize = 64 << 20;

/// What a field's addresses are collected for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Sender fields: rewritten only.
    Sender,
    /// Return-Path: rewritten; the first one sets the envelope sender.
    Return,
    /// To and Cc: header recipients, and candidates for Mail-Followup-To.
    ToCc,
    /// Bcc and Apparently-To: header recipients.
    Recipient,
    /// Resent-To, Resent-Cc, Resent-Bcc: recipients of a resent message.
    Resent,
}

fn role(f: Field) -> Option<Role> {
    Some(match f {
        Field::To | Field::Cc => Role::ToCc,
        Field::Bcc | Field::ApparentlyTo => Role::Recipient,
        Field::ResentTo | Field::ResentCc | Field::ResentBcc => Role::Resent,
        Field::ReturnPath => Role::Return,
        Field::Sender
        | Field::From
        | Field::ReplyTo
        | Field::ReturnReceiptTo
        | Field::ErrorsTo
        | Field::ResentSender
        | Field::ResentFrom
        | Field::ResentReplyTo => Role::Sender,
        _ => return None,
    })
}

/// The header being fixed, and the addresses found in it.
pub struct Header<'a> {
    s: &'a Settings,
    seen: u32,
    kept: Vec<Vec<u8>>,
    used: usize,
    /// The envelope sender, once known (from `-f`, Return-Path or the default).
    pub sender: Option<Vec<u8>>,
    /// Recipients given as arguments.
    pub args: Vec<Vec<u8>>,
    /// Recipients from To, Cc, Bcc and Apparently-To, in qmail's order.
    pub header: Vec<Vec<u8>>,
    /// Recipients from Resent-To, Resent-Cc and Resent-Bcc.
    pub resent: Vec<Vec<u8>>,
    /// The To and Cc addresses, for Mail-Followup-To.
    to_cc: Vec<Vec<u8>>,
}

impl<'a> Header<'a> {
    /// An empty header for a run with these settings.
    pub fn new(s: &'a Settings) -> Header<'a> {
        Header {
            s,
            seen: 0,
            kept: Vec::new(),
            used: 0,
            sender: None,
            args: Vec::new(),
            header: Vec::new(),
            resent: Vec::new(),
            to_cc: Vec::new(),
        }
    }

    fn has(&self, f: Field) -> bool {
        self.seen & f.bit() != 0
    }

    fn charge(&mut self, n: usize) -> Result<(), Fatal> {
        self.used = self.used.saturating_add(n);
        if self.used > REWRITTEN_MAX {
            let text = format!("header too long after rewriting (limit {REWRITTEN_MAX} bytes)");
            return Err(Fatal::perm(text.as_bytes()));
        }
        Ok(())
    }

    /// True when the message is resent: it has a Resent- field other than the ones
    /// qmail-inject adds itself.
    pub fn is_resent(&self) -> bool {
        [
            Field::ResentSender,
            Field::ResentFrom,
            Field::ResentReplyTo,
            Field::ResentTo,
            Field::ResentCc,
            Field::ResentBcc,
            Field::ResentDate,
            Field::ResentMessageId,
        ]
        .iter()
        .any(|&f| self.has(f))
    }

    /// Takes one header field (with its continuation lines and final newline).
    pub fn field(&mut self, mut h: Vec<u8>) -> Result<(), Fatal> {
        let f = fields::known(&h);
        let flags = self.s.flags;
        let deleted = match f {
            Some(Field::From) => flags.delete_from,
            Some(Field::MessageId) => flags.delete_message_id,
            Some(Field::ReturnPath) => flags.delete_sender,
            _ => false,
        };
        if deleted {
            return Ok(());
        }
        match f {
            Some(f) => self.seen |= f.bit(),
            None if !fields::valid(&h) => {
                return Err(Fatal::perm(&[b"invalid header field: ", &h[..]].concat()));
            }
            None => {}
        }
        if let Some(r) = f.and_then(role) {
            h = self.rewrite(&h, r)?;
        }
        if matches!(
            f,
            Some(Field::Bcc | Field::ResentBcc | Field::ReturnPath | Field::ContentLength)
        ) {
            return Ok(());
        }
        self.charge(h.len())?;
        self.kept.push(h);
        Ok(())
    }

    /// Parses a field, rewrites every address in it and writes it back folded.
    fn rewrite(&mut self, h: &[u8], r: Role) -> Result<Vec<u8>, Fatal> {
        let tokens = token::parse(h).ok_or_else(|| Fatal::unparsable(h.to_vec()))?;
        match list::addrlist(&tokens, |a| self.address(a, r)) {
            Ok(out) => Ok(token::unparse(&out, LINE_LEN)),
            Err(ListError::Syntax) => Err(Fatal::unparsable(h.to_vec())),
            Err(ListError::Callback(e)) => Err(e),
        }
    }

    fn address(&mut self, a: &mut Vec<Token>, r: Role) -> Result<(), Fatal> {
        self.s.rules.generic(a);
        let text = rewrite::text(a);
        self.charge(text.len().saturating_mul(2).saturating_add(a.len()))?;
        match r {
            Role::Sender => {}
            Role::Return => {
                if self.sender.is_none() {
                    let mut s = text;
                    if self.s.flags.verp_recipient {
                        s.extend_from_slice(b"-@[]");
                    }
                    self.sender = Some(s);
                }
            }
            Role::ToCc => {
                self.header.push(text.clone());
                self.to_cc.push(text);
            }
            Role::Recipient => self.header.push(text),
            Role::Resent => self.resent.push(text),
        }
        Ok(())
    }

    /// A recipient given as an argument (qmail's dorecip).
    pub fn arg(&mut self, arg: &[u8]) -> Result<(), Fatal> {
        let Some(mut a) = token::parse(&quote2(arg)) else {
            return Err(Fatal::perm(&[b"unable to parse address: ", arg].concat()));
        };
        a.reverse();
        self.s.rules.generic(&mut a);
        self.args.push(rewrite::text(&a));
        Ok(())
    }

    /// The envelope sender given with `-f`.
    pub fn set_sender(&mut self, arg: &[u8]) -> Result<(), Fatal> {
        let quoted = quote2(arg);
        let mut a = token::parse(&quoted).ok_or(Fatal::unparsable(quoted))?;
        a.reverse();
        self.s.rules.generic(&mut a);
        self.sender = Some(rewrite::text(&a));
        Ok(())
    }

    fn default_from(&mut self) -> Result<Vec<u8>, Fatal> {
        let s = self.s;
        let mut t = vec![Token::word(Kind::Atom, b"From"), Token::punct(Kind::Colon)];
        let name = s.full_name.as_deref();
        let comment = s.flags.name_comment;
        if let Some(n) = name.filter(|_| !comment) {
            t.extend([Token::word(Kind::Quote, n), Token::punct(Kind::Left)]);
        }
        let kind = if s.user_needs_quotes() {
            Kind::Quote
        } else {
            Kind::Atom
        };
        t.push(Token::word(kind, &s.mail_user));
        if let Some(h) = &s.mail_host {
            t.extend([Token::punct(Kind::At), Token::word(Kind::Atom, h)]);
        }
        match name {
            Some(_) if !comment => t.push(Token::punct(Kind::Right)),
            Some(n) => t.push(Token::word(Kind::Comment, n)),
            None => {}
        }
        self.rewrite(&token::unparse(&t, LINE_LEN), Role::Sender)
    }

    fn default_return_path(&mut self) -> Result<(), Fatal> {
        let s = self.s;
        let mut user = s.sender_user.clone();
        if s.flags.verp_message {
            user.extend_from_slice(format!("-{}.{}", s.start, s.pid).as_bytes());
        }
        if s.flags.verp_recipient {
            user.push(b'-');
        }
        let mut t = vec![
            Token::word(Kind::Atom, b"Return-Path"),
            Token::punct(Kind::Colon),
            Token::word(Kind::Quote, &user),
        ];
        if let Some(h) = &s.sender_host {
            t.extend([Token::punct(Kind::At), Token::word(Kind::Atom, h)]);
        }
        self.rewrite(&token::unparse(&t, LINE_LEN), Role::Return)?;
        Ok(())
    }

    fn followup_to(&self) -> Option<Vec<u8>> {
        if self.has(Field::MailFollowupTo) || !self.to_cc.iter().any(|a| self.s.is_list(a)) {
            return None;
        }
        let mut out = b"Mail-Followup-To: ".to_vec();
        for (i, a) in self.to_cc.iter().rev().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n  ");
            }
            out.extend_from_slice(&quote2(a));
        }
        out.push(b'\n');
        Some(out)
    }

    /// Ends the header (qmail's finishheader): settles the envelope sender and returns the
    /// header to write. With `print`, it starts with the `Return-Path:` line qmail-inject
    /// `-n` shows.
    pub fn finish(&mut self, print: bool) -> Result<Vec<u8>, Fatal> {
        if self.sender.is_none() {
            self.default_return_path()?;
        }
        let mut out = Vec::new();
        if print {
            let sender = self.sender.as_deref().unwrap_or_default();
            out.extend_from_slice(&[&b"Return-Path: <"[..], &quote2(sender), b">\n"].concat());
        }
        let now = Utc::from_unix(self.s.start);
        let date = format!("Date: {}", now.rfc822());
        let id = [
            format!("Message-ID: <{}.{}.qmail@", now.compact(), self.s.pid).as_bytes(),
            &self.s.id_host,
            b">\n",
        ]
        .concat();
        let resent = self.is_resent();
        let (prefix, [date_f, id_f, from_f, to_f, cc_f]) = if resent {
            (
                &b"Resent-"[..],
                [
                    Field::ResentDate,
                    Field::ResentMessageId,
                    Field::ResentFrom,
                    Field::ResentTo,
                    Field::ResentCc,
                ],
            )
        } else {
            (
                &b""[..],
                [
                    Field::Date,
                    Field::MessageId,
                    Field::From,
                    Field::To,
                    Field::Cc,
                ],
            )
        };
        if !self.has(date_f) {
            out.extend_from_slice(&[prefix, date.as_bytes()].concat());
        }
        if !self.has(id_f) {
            out.extend_from_slice(&[prefix, &id[..]].concat());
        }
        if !self.has(from_f) {
            let from = self.default_from()?;
            out.extend_from_slice(&[prefix, &from[..]].concat());
        }
        if !self.has(to_f) && !self.has(cc_f) {
            out.extend_from_slice(&[prefix, b"Cc: recipient list not shown: ;\n"].concat());
        }
        if !resent {
            out.extend(self.followup_to().unwrap_or_default());
        }
        for h in std::mem::take(&mut self.kept) {
            out.extend_from_slice(&h);
        }
        Ok(out)
    }

    /// The envelope recipients: the arguments, then (with `use_header`) the Resent-
    /// recipients of a resent message or the header recipients of any other, each cut at a
    /// NUL as qmail's C strings are.
    pub fn recipients(&self, use_header: bool) -> Vec<Vec<u8>> {
        let from_header: &[Vec<u8>] = match (use_header, self.is_resent()) {
            (false, _) => &[],
            (true, true) => &self.resent,
            (true, false) => &self.header,
        };
        self.args
            .iter()
            .chain(from_header)
            .map(|a| rewrite::cstr(a).to_vec())
            .collect()
    }
}
