//! The connection to the next hop: a socket, plain or inside TLS, with qmail-remote's
//! deadline on every read and write (the socket's timeouts) and a bounded line reader.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use super::reply::LINE_MAX;
use super::tls;

/// The stream under the line reader.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tls::Stream>),
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Why a line could not be had.
#[derive(Debug)]
pub enum LineError {
    /// The peer closed, the deadline passed or the socket failed.
    Dropped,
    /// A line longer than the bound (more than [`LINE_MAX`] bytes plus CRLF).
    TooLong,
}

/// A connection with a read buffer.
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Conn {
    /// Wraps a stream.
    pub fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            buf: vec![0; 4096],
            pos: 0,
            end: 0,
        }
    }

    /// True once TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Reads one line, its LF removed.
    ///
    /// # Errors
    /// [`LineError`].
    pub fn line(&mut self) -> Result<Vec<u8>, LineError> {
        let mut line = Vec::new();
        loop {
            if self.pos == self.end {
                self.pos = 0;
                self.end = match self.stream.read(&mut self.buf) {
                    Ok(0) | Err(_) => return Err(LineError::Dropped),
                    Ok(n) => n,
                };
            }
            let avail = self.buf.get(self.pos..self.end).unwrap_or_default();
            if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(avail.get(..i).unwrap_or_default());
                self.pos += i + 1;
                return if line.len() > LINE_MAX + 1 {
                    Err(LineError::TooLong)
                } else {
                    Ok(line)
                };
            }
            line.extend_from_slice(avail);
            self.pos = self.end;
            if line.len() > LINE_MAX + 1 {
                return Err(LineError::TooLong);
            }
        }
    }

    /// Reads exactly one byte.
    ///
    /// # Errors
    /// [`LineError::Dropped`].
    pub fn byte(&mut self) -> Result<u8, LineError> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = match self.stream.read(&mut self.buf) {
                Ok(0) | Err(_) => return Err(LineError::Dropped),
                Ok(n) => n,
            };
        }
        let b = *self.buf.get(self.pos).ok_or(LineError::Dropped)?;
        self.pos += 1;
        Ok(b)
    }

    /// Writes everything and flushes.
    ///
    /// # Errors
    /// The socket's error.
    pub fn send(&mut self, b: &[u8]) -> io::Result<()> {
        self.stream.write_all(b)?;
        self.stream.flush()
    }

    /// Takes the plain socket out for a TLS handshake, dropping whatever the server sent
    /// before it (no response injection). `None` when TLS is already on.
    pub fn into_plain(self) -> Option<TcpStream> {
        match self.stream {
            Stream::Plain(s) => Some(s),
            Stream::Tls(_) => None,
        }
    }

    /// Sends TLS close_notify, if TLS is on; errors are ignored.
    pub fn close(&mut self) {
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}
