//! Bounces in qmail's format (QSBMF): the failure paragraphs collected in `queue/bounce/<id>`
//! and the message qmail-send injects from them.

use std::io::Read;
use std::path::Path;

use crate::addr;
use crate::date::Utc;

/// One failure paragraph as qmail-send appends it to `bounce/<id>`: `<recipient>:`, the
/// report with a final newline, blank lines inside it turned into `/`, then a blank line.
pub fn paragraph(recip: &[u8], report: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(recip.len() + report.len() + 8);
    t.push(b'<');
    t.extend(recip.iter().map(|&c| if c == b'\n' { b'_' } else { c }));
    t.extend_from_slice(b">:\n");
    t.extend_from_slice(report);
    if report.last().is_some_and(|&c| c != b'\n') {
        t.push(b'\n');
    }
    let mut pos = t.len().saturating_sub(2);
    while pos > 0 {
        if t.get(pos) == Some(&b'\n')
            && t.get(pos - 1) == Some(&b'\n')
            && let Some(c) = t.get_mut(pos)
        {
            *c = b'/';
        }
        pos -= 1;
    }
    t.push(b'\n');
    t
}

/// Removes the prefix a virtual domain added (`prepend-user@domain` back to `user@domain`),
/// as qmail-send does before reporting a recipient. `vdom` looks a key up.
pub fn strip_virtual<'a>(recip: &'a [u8], vdom: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> &'a [u8] {
    let Some(at) = recip.iter().rposition(|&c| c == b'@') else {
        return recip;
    };
    let domain = recip.get(at + 1..).unwrap_or_default();
    for i in 0..=domain.len() {
        if !(i == 0 || i == domain.len() || domain.get(i) == Some(&b'.')) {
            continue;
        }
        if let Some(prepend) = vdom(domain.get(i..).unwrap_or_default()) {
            if prepend.is_empty() || !recip.starts_with(&prepend) {
                break;
            }
            if recip.get(prepend.len()) != Some(&b'-') {
                break;
            }
            return recip.get(prepend.len() + 1..).unwrap_or(recip);
        }
    }
    recip
}

/// What a bounce is made of.
pub struct Bounce<'a> {
    /// `control/bouncefrom`.
    pub from: &'a [u8],
    /// `control/bouncehost`.
    pub host: &'a [u8],
    /// The recipient: the original sender, or doublebounceto@doublebouncehost.
    pub to: &'a [u8],
    /// The original envelope sender (empty for a double bounce).
    pub sender: &'a [u8],
    /// The time for the Date: field.
    pub now: i64,
    /// `control/bouncemaxbytes`: 0 copies the whole message.
    pub max_bytes: u64,
}

impl Bounce<'_> {
    /// The part before the failure paragraphs.
    pub fn head(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(512);
        h.extend_from_slice(b"Date: ");
        h.extend_from_slice(Utc::from_unix(self.now).rfc822().as_bytes());
        h.extend_from_slice(b"From: ");
        h.extend_from_slice(&addr::quote(self.from));
        h.push(b'@');
        h.extend_from_slice(self.host);
        h.extend_from_slice(b"\nTo: ");
        h.extend_from_slice(&addr::quote(self.to));
        h.extend_from_slice(b"\nSubject: failure notice\n\nHi. This is the qmail-send program at ");
        h.extend_from_slice(self.host);
        if self.sender.is_empty() {
            h.extend_from_slice(
                b".\nI tried to deliver a bounce message to this address, but the bounce bounced!\n\n",
            );
        } else {
            h.extend_from_slice(
                b".\nI'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\n",
            );
        }
        h
    }

    /// The part between the failure paragraphs and the copy of the message.
    pub fn middle(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        m.extend_from_slice(if self.sender.is_empty() {
            &b"--- Below this line is the original bounce.\n\n"[..]
        } else {
            &b"--- Below this line is a copy of the message.\n\n"[..]
        });
        m.extend_from_slice(b"Return-Path: <");
        m.extend_from_slice(&addr::quote(self.sender));
        m.extend_from_slice(b">\n");
        m
    }

    /// Copies the message into `put`, cut after `max_bytes` bytes when that is set, with a
    /// closing line saying so.
    pub fn copy(&self, mess: &Path, put: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        let mut f = std::fs::File::open(mess)?;
        let mut buf = vec![0u8; 64 * 1024];
        let limit = if self.max_bytes == 0 {
            u64::MAX
        } else {
            self.max_bytes
        };
        let mut written: u64 = 0;
        let mut last = b'\n';
        loop {
            let n = f.read(&mut buf)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                return Ok(());
            };
            let room = limit - written;
            if n as u64 > room {
                let head = chunk
                    .get(..usize::try_from(room).unwrap_or(0))
                    .unwrap_or_default();
                put(head);
                if head.last().copied().unwrap_or(last) != b'\n' {
                    put(b"\n");
                }
                put(b"--- Rest of message truncated.\n");
                return Ok(());
            }
            put(chunk);
            last = chunk.last().copied().unwrap_or(last);
            written += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_follow_qmail_send() {
        assert_eq!(paragraph(b"a@b", b"Sorry.\n"), b"<a@b>:\nSorry.\n\n");
        assert_eq!(paragraph(b"a@b", b"no newline"), b"<a@b>:\nno newline\n\n");
        assert_eq!(paragraph(b"a\nb@c", b"x\n\ny\n"), b"<a_b@c>:\nx\n/y\n\n");
        assert_eq!(paragraph(b"a@b", b"x\n\n\ny"), b"<a@b>:\nx\n//y\n\n");
        assert_eq!(paragraph(b"a@b", b""), b"<a@b>:\n\n");
    }

    #[test]
    fn virtual_prefixes_are_stripped() {
        let vd = |k: &[u8]| match k {
            b"virt.example" => Some(b"v".to_vec()),
            b"ex.virt.example" => Some(Vec::new()),
            _ => None,
        };
        assert_eq!(
            strip_virtual(b"v-joe@virt.example", &vd),
            b"joe@virt.example"
        );
        assert_eq!(
            strip_virtual(b"w-joe@virt.example", &vd),
            b"w-joe@virt.example"
        );
        assert_eq!(
            strip_virtual(b"v-joe@ex.virt.example", &vd),
            b"v-joe@ex.virt.example"
        );
        assert_eq!(strip_virtual(b"joe", &vd), b"joe");
    }

    #[test]
    fn bounce_head_and_middle_are_byte_exact() {
        let b = Bounce {
            from: b"MAILER-DAEMON",
            host: b"mx.example",
            to: b"s@example.org",
            sender: b"s@example.org",
            now: 812_090_814,
            max_bytes: 0,
        };
        assert_eq!(
            String::from_utf8(b.head()).unwrap(),
            "Date: 26 Sep 1995 04:46:54 -0000\nFrom: MAILER-DAEMON@mx.example\nTo: s@example.org\n\
Subject: failure notice\n\nHi. This is the qmail-send program at mx.example.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        );
        assert_eq!(
            b.middle(),
            b"--- Below this line is a copy of the message.\n\nReturn-Path: <s@example.org>\n"
        );
        let d = Bounce {
            sender: b"",
            to: b"postmaster@mx.example",
            ..b
        };
        assert!(
            String::from_utf8(d.head())
                .unwrap()
                .ends_with("but the bounce bounced!\n\n")
        );
        assert_eq!(
            d.middle(),
            b"--- Below this line is the original bounce.\n\nReturn-Path: <>\n"
        );
    }

    #[test]
    fn bouncemaxbytes_cuts_the_copy_and_says_so() {
        let p = std::env::temp_dir().join(format!("sqmail-bounce-{}", std::process::id()));
        std::fs::write(&p, b"Subject: x\n\n0123456789\n").unwrap();
        let copy = |max| {
            let b = Bounce {
                from: b"M",
                host: b"h",
                to: b"t",
                sender: b"s",
                now: 0,
                max_bytes: max,
            };
            let mut out = Vec::new();
            b.copy(&p, &mut |c| out.extend_from_slice(c)).unwrap();
            out
        };
        assert_eq!(copy(0), b"Subject: x\n\n0123456789\n");
        assert_eq!(
            copy(23),
            b"Subject: x\n\n0123456789\n",
            "exactly the limit: no note"
        );
        assert_eq!(
            copy(15),
            b"Subject: x\n\n012\n--- Rest of message truncated.\n"
        );
        assert_eq!(copy(12), b"Subject: x\n\n--- Rest of message truncated.\n");
        std::fs::remove_file(p).unwrap();
    }
}
