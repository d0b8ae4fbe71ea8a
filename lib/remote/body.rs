//! The message as SMTP carries it: qmail's LF line ends become CRLF, a line starting with
//! `.` gets a second one, and `.CRLF` ends the data. Pure: bytes in, bytes out.

/// Why a message cannot be sent by SMTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialLine;

/// The DATA stream for `msg`, including the final `.CRLF`.
///
/// # Errors
/// [`PartialLine`] when the message does not end with LF (qmail-remote's
/// "partial final lines"); an empty message is allowed.
pub fn encode(msg: &[u8]) -> Result<Vec<u8>, PartialLine> {
    if !msg.is_empty() && !msg.ends_with(b"\n") {
        return Err(PartialLine);
    }
    let lines = msg.iter().filter(|&&b| b == b'\n').count();
    let mut out = Vec::with_capacity(msg.len() + lines * 2 + 3);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if body.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    Ok(out)
}

/// True when the message has a byte above 127 (it needs 8BITMIME).
pub fn is_8bit(msg: &[u8]) -> bool {
    msg.iter().any(|&b| b >= 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_get_crlf_and_dots_are_doubled() {
        assert_eq!(encode(b"").unwrap(), b".\r\n");
        assert_eq!(
            encode(b"a\n.b\n..\n.\n\nz\r\n").unwrap(),
            b"a\r\n..b\r\n...\r\n..\r\n\r\nz\r\r\n.\r\n"
        );
        assert_eq!(encode(b"no end"), Err(PartialLine));
        assert_eq!(encode(b"a\nno end"), Err(PartialLine));
        assert!(is_8bit("caf\u{e9}\n".as_bytes()));
        assert!(!is_8bit(b"plain\n"));
    }
}
