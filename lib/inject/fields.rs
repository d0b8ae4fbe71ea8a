//! Header field names as qmail's hfield.c knows them: which of the fields qmail-inject
//! cares about a line starts, and whether a line starts a header field at all.

/// The fields qmail-inject treats specially, in qmail's table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `Sender:`
    Sender,
    /// `From:`
    From,
    /// `Reply-To:`
    ReplyTo,
    /// `To:`
    To,
    /// `Cc:`
    Cc,
    /// `Bcc:`
    Bcc,
    /// `Date:`
    Date,
    /// `Message-ID:`
    MessageId,
    /// `Subject:`
    Subject,
    /// `Resent-Sender:`
    ResentSender,
    /// `Resent-From:`
    ResentFrom,
    /// `Resent-Reply-To:`
    ResentReplyTo,
    /// `Resent-To:`
    ResentTo,
    /// `Resent-Cc:`
    ResentCc,
    /// `Resent-Bcc:`
    ResentBcc,
    /// `Resent-Date:`
    ResentDate,
    /// `Resent-Message-ID:`
    ResentMessageId,
    /// `Return-Receipt-To:`
    ReturnReceiptTo,
    /// `Errors-To:`
    ErrorsTo,
    /// `Apparently-To:`
    ApparentlyTo,
    /// `Received:`
    Received,
    /// `Return-Path:`
    ReturnPath,
    /// `Delivered-To:`
    DeliveredTo,
    /// `Content-Length:`
    ContentLength,
    /// `Content-Type:`
    ContentType,
    /// `Content-Transfer-Encoding:`
    ContentTransferEncoding,
    /// `Notice-Requested-Upon-Delivery-To:`
    NoticeRequestedUponDeliveryTo,
    /// `Mail-Followup-To:`
    MailFollowupTo,
}

const NAMES: [(&[u8], Field); 28] = [
    (b"sender", Field::Sender),
    (b"from", Field::From),
    (b"reply-to", Field::ReplyTo),
    (b"to", Field::To),
    (b"cc", Field::Cc),
    (b"bcc", Field::Bcc),
    (b"date", Field::Date),
    (b"message-id", Field::MessageId),
    (b"subject", Field::Subject),
    (b"resent-sender", Field::ResentSender),
    (b"resent-from", Field::ResentFrom),
    (b"resent-reply-to", Field::ResentReplyTo),
    (b"resent-to", Field::ResentTo),
    (b"resent-cc", Field::ResentCc),
    (b"resent-bcc", Field::ResentBcc),
    (b"resent-date", Field::ResentDate),
    (b"resent-message-id", Field::ResentMessageId),
    (b"return-receipt-to", Field::ReturnReceiptTo),
    (b"errors-to", Field::ErrorsTo),
    (b"apparently-to", Field::ApparentlyTo),
    (b"received", Field::Received),
    (b"return-path", Field::ReturnPath),
    (b"delivered-to", Field::DeliveredTo),
    (b"content-length", Field::ContentLength),
    (b"content-type", Field::ContentType),
    (b"content-transfer-encoding", Field::ContentTransferEncoding),
    (
        b"notice-requested-upon-delivery-to",
        Field::NoticeRequestedUponDeliveryTo,
    ),
    (b"mail-followup-to", Field::MailFollowupTo),
];

impl Field {
    /// A bit of its own, for a set of seen fields.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// True for the fields that make a message "resent".
    pub fn is_resent(self) -> bool {
        matches!(
            self,
            Field::ResentSender
                | Field::ResentFrom
                | Field::ResentReplyTo
                | Field::ResentTo
                | Field::ResentCc
                | Field::ResentBcc
                | Field::ResentDate
                | Field::ResentMessageId
        )
    }
}

/// qmail's hmatch: the name, letters in either case, then optional spaces or tabs and a
/// colon.
fn matches_name(line: &[u8], name: &[u8]) -> bool {
    let Some(head) = line.get(..name.len()) else {
        return false;
    };
    let same = head
        .iter()
        .zip(name)
        .all(|(&c, &n)| c == n || (n != b'-' && c == n.wrapping_sub(32)));
    same && line
        .get(name.len()..)
        .unwrap_or_default()
        .iter()
        .find(|&&c| c != b' ' && c != b'\t')
        == Some(&b':')
}

/// The special field a header line starts, if any (qmail's hfield_known).
pub fn known(line: &[u8]) -> Option<Field> {
    NAMES
        .iter()
        .find(|(n, _)| matches_name(line, n))
        .map(|&(_, f)| f)
}

/// Whether a line starts a header field: a non-empty name of printable non-space bytes,
/// optional spaces or tabs, and a colon (qmail's hfield_valid).
pub fn valid(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&c| c == b':') else {
        return false;
    };
    let mut name = line.get(..colon).unwrap_or_default();
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    !name.is_empty() && name.iter().all(|c| (33..=126).contains(c))
}

/// Whether the start of a line too long to hold can still turn out to be a header field
/// (so that it must count against the header limit) rather than the first line of a body.
pub fn may_be_valid(prefix: &[u8]) -> bool {
    if prefix.contains(&b':') {
        valid(prefix)
    } else {
        valid(&[prefix, b":"].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_match_in_any_case_with_space_before_the_colon() {
        for (line, want) in [
            (&b"To: x\n"[..], Some(Field::To)),
            (b"TO : x\n", Some(Field::To)),
            (b"tO\t:x", Some(Field::To)),
            (b"Resent-Message-ID: <a@b>\n", Some(Field::ResentMessageId)),
            (b"RESENT-FROM: a\n", Some(Field::ResentFrom)),
            (b"Resent_From: a\n", None),
            (b"To x: y\n", None),
            (b"Toy: y\n", None),
            (b"To", None),
            (b"Mail-Followup-To: a\n", Some(Field::MailFollowupTo)),
            (b"content-length: 5\n", Some(Field::ContentLength)),
        ] {
            assert_eq!(known(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn valid_fields_have_printable_names() {
        for (line, want) in [
            (&b"X-Foo: bar\n"[..], true),
            (b"X-Foo \t: bar\n", true),
            (b": bar\n", false),
            (b"  : bar\n", false),
            (b"X Foo: bar\n", false),
            (b" X: bar\n", false),
            (b"X\x7f: bar\n", false),
            (b"X\xc3\xa9: bar\n", false),
            (b"no colon\n", false),
            (b"\n", false),
            (b"MBOX-Line: From x\n", true),
        ] {
            assert_eq!(valid(line), want, "{:?}", String::from_utf8_lossy(line));
        }
        assert!(may_be_valid(b"X-Very-Long-Name"));
        assert!(may_be_valid(b"Subject: aaaa"));
        assert!(may_be_valid(b"Subject  "));
        assert!(!may_be_valid(b"Subject a"));
        assert!(!may_be_valid(b"hello world: x"));
    }
}
