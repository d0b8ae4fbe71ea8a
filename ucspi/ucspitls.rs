//! UCSPI-TLS, ucspi-ssl's hand-off between a program and the TLS engine (ucspi-tls(5)).
//!
//! The program finds three descriptors in its environment: `SSLCTLFD` (a stream socket to
//! the engine), `SSLREADFD` (decrypted data from the client) and `SSLWRITEFD` (data to be
//! encrypted). To start TLS it writes one byte to the control socket: `y`, or `Y` to also
//! receive the connection's `SSL_*` variables there as `NAME=value\0` entries ended by one
//! more `\0`. From then on it reads and writes only the two pipes.
//!
//! This module holds the byte format (both sides) and the program side of the exchange.

use std::io::{self, Read, Write};

/// The command byte: start TLS.
pub const START: u8 = b'y';
/// The command byte: start TLS and send the environment block back.
pub const START_ENV: u8 = b'Y';
/// The largest environment block accepted from the engine.
pub const MAX_BLOCK: usize = 64 * 1024;

/// Encodes variables as an environment block: `NAME=value\0`… then `\0`.
/// Names containing `=` or NUL and values containing NUL are left out.
pub fn encode(vars: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in vars {
        if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
            continue;
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out.push(0);
    out
}

/// True once `buf` holds a complete block (it ends in two NULs, or is a lone NUL).
pub fn complete(buf: &[u8]) -> bool {
    buf == [0] || buf.ends_with(&[0, 0])
}

/// Decodes an environment block into (name, value) pairs. Entries without `=` are skipped.
pub fn decode(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    block
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let i = e.iter().position(|&b| b == b'=')?;
            let (k, v) = e.split_at(i);
            Some((k.to_vec(), v.get(1..).unwrap_or_default().to_vec()))
        })
        .collect()
}

/// Reads a block from the engine's control socket.
///
/// # Errors
/// End of file before the block ended, a block over [`MAX_BLOCK`], or a read error.
pub fn read_block(ctl: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::new();
    let mut buf = [0u8; 8192];
    while !complete(&block) {
        let n = ctl.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        block.extend_from_slice(buf.get(..n).unwrap_or_default());
        if block.len() > MAX_BLOCK {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
    Ok(block)
}

/// The program side: asks the engine to start TLS, and with `want_env` returns the
/// variables it sends back. The caller then reads `SSLREADFD` and writes `SSLWRITEFD`, and
/// must throw away anything it had read from the plaintext connection and not yet used.
///
/// # Errors
/// The engine is gone or sent a malformed block (the caller answers as qmail-smtpd does,
/// `454 TLS not available due to temporary reason`).
pub fn start(ctl: &mut (impl Read + Write), want_env: bool) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    ctl.write_all(&[if want_env { START_ENV } else { START }])?;
    if !want_env {
        return Ok(Vec::new());
    }
    Ok(decode(&read_block(ctl)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trip() {
        let vars = vec![
            ("SSL_PROTOCOL".to_string(), "TLSv1.3".to_string()),
            ("EMPTY".to_string(), String::new()),
            ("BAD=NAME".to_string(), "x".to_string()),
        ];
        let b = encode(&vars);
        assert_eq!(b, b"SSL_PROTOCOL=TLSv1.3\0EMPTY=\0\0");
        assert!(complete(&b));
        assert_eq!(
            decode(&b),
            vec![
                (b"SSL_PROTOCOL".to_vec(), b"TLSv1.3".to_vec()),
                (b"EMPTY".to_vec(), Vec::new())
            ]
        );
        assert_eq!(encode(&[]), b"\0");
        assert!(complete(b"\0"));
        assert!(!complete(b"A=1\0"));
    }

    #[test]
    fn read_block_stops_at_the_end_and_bounds_size() {
        let mut r: &[u8] = b"A=1\0\0";
        assert_eq!(read_block(&mut r).unwrap(), b"A=1\0\0");
        let mut short: &[u8] = b"A=1\0";
        assert!(read_block(&mut short).is_err());
        let huge = vec![b'a'; MAX_BLOCK + 10];
        assert!(read_block(&mut huge.as_slice()).is_err());
    }
}
