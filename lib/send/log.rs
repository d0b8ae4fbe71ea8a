//! qmail-send's activity log: fixed texts on fd 0, variable parts made safe as qmail's
//! `logsafe` makes them, so that qmailanalog and qmail-mrtg parse every line.

use std::io::Write;

/// True for bytes qmail writes unchanged into a log line.
fn safe(c: u8) -> bool {
    c != b'%' && (33..=126).contains(&c)
}

/// The text with newlines as `/` and every other byte a log must not carry as `_`.
pub fn safe_text(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&c| match c {
            b'\n' => b'/',
            c if safe(c) => c,
            _ => b'_',
        })
        .collect()
}

/// The log: lines are written whole, and a failing log never stops mail.
pub struct Log<W: Write> {
    out: W,
}

impl<W: Write> Log<W> {
    /// Logs to `out`.
    pub fn new(out: W) -> Self {
        Log { out }
    }

    /// Writes pieces as one line; pieces must carry their own final newline.
    pub fn line(&mut self, pieces: &[&[u8]]) {
        let mut l = Vec::with_capacity(128);
        for p in pieces {
            l.extend_from_slice(p);
        }
        let _ = self.out.write_all(&l);
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_bytes_are_replaced() {
        assert_eq!(safe_text(b"did 0+0+1\nqp 12\n"), b"did_0+0+1/qp_12/");
        assert_eq!(safe_text(b"a%b\x80\x01c"), b"a_b__c");
    }
}
