//! The TLS engine's I/O: the handshake on a socket with a deadline, then the relay that
//! copies between the network (encrypted) and a program's two pipes (plaintext).
//!
//! Everything is non-blocking and driven by `poll`. Each direction holds at most one
//! bounded buffer: the relay reads from the program only when rustls has sent everything
//! before, and reads from the network only while the program keeps up.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rustls::Connection;
use sqmail::fail::{Failure, Kind};
use sqmail::sys::proc::{Ready, poll, set_nonblocking};

/// Bytes read at once from the program or the network.
pub const CHUNK: usize = 16 * 1024;
/// Most decrypted bytes held for a program that does not read.
pub const MAX_PENDING: usize = 64 * 1024;

fn temp(what: String) -> Failure {
    Failure::temp(Kind::System, what)
}

fn io_temp(what: &str, e: &io::Error) -> Failure {
    temp(format!("{what}: {}", sqmail::sys::strerror(e)))
}

fn ms_left(deadline: Instant) -> Result<i32, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(temp("timed out".into()));
    }
    Ok(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1))
}

/// Sends whatever rustls has queued (an alert, say) without waiting long.
pub fn flush_briefly(conn: &mut Connection, sock: &TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while conn.wants_write() {
        match conn.write_tls(&mut &*sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let Ok(ms) = ms_left(deadline) else { return };
                if poll(
                    &[(
                        sock.as_raw_fd(),
                        Ready {
                            read: false,
                            write: true,
                        },
                    )],
                    ms,
                )
                .is_err()
                {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn tls_error(conn: &mut Connection, sock: &TcpStream, e: &rustls::Error) -> Failure {
    flush_briefly(conn, sock);
    temp(format!("{e}"))
}

/// Runs the handshake on `sock` (made non-blocking) within `secs` seconds.
///
/// # Errors
/// Temporary: timeout, end of file, or a TLS error (garbage, a bad certificate); rustls
/// sends its alert before returning.
pub fn handshake(conn: &mut Connection, sock: &TcpStream, secs: u64) -> Result<(), Failure> {
    set_nonblocking(sock, true).map_err(|e| io_temp("unable to set socket options", &e))?;
    let deadline = Instant::now() + Duration::from_secs(secs.max(1));
    while conn.is_handshaking() {
        if conn.wants_write() {
            match conn.write_tls(&mut &*sock) {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(io_temp("write", &e)),
            }
        }
        let want = Ready {
            read: conn.wants_read(),
            write: conn.wants_write(),
        };
        let r = poll(&[(sock.as_raw_fd(), want)], ms_left(deadline)?)
            .map_err(|e| io_temp("poll", &e))?;
        if !r.first().copied().unwrap_or_default().read {
            continue;
        }
        match conn.read_tls(&mut &*sock) {
            Ok(0) => return Err(temp("connection closed during handshake".into())),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    return Err(tls_error(conn, sock, &e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_temp("read", &e)),
        }
    }
    Ok(())
}

/// The relay's state.
struct Relay<'a> {
    conn: &'a mut Connection,
    sock: &'a TcpStream,
    to_prog: Option<File>,
    from_prog: Option<File>,
    pending: Vec<u8>,
    net_eof: bool,
}

impl Relay<'_> {
    fn net_read(&mut self) -> Result<(), Failure> {
        match self.conn.read_tls(&mut &*self.sock) {
            Ok(0) => self.net_eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.net_eof = true,
            Err(e) => return Err(io_temp("read", &e)),
        }
        if let Err(e) = self.conn.process_new_packets() {
            return Err(tls_error(self.conn, self.sock, &e));
        }
        self.drain_plaintext()
    }

    fn drain_plaintext(&mut self) -> Result<(), Failure> {
        let mut buf = [0u8; CHUNK];
        while self.pending.len() < MAX_PENDING {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => {
                    // close_notify: the program sees end of file once pending data is out.
                    self.net_eof = true;
                    break;
                }
                Ok(n) => self
                    .pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.net_eof = true;
                    break;
                }
                Err(e) => return Err(io_temp("read", &e)),
            }
        }
        if self.net_eof && self.pending.is_empty() {
            self.to_prog = None;
        }
        Ok(())
    }

    fn prog_write(&mut self) {
        let Some(f) = self.to_prog.as_mut() else {
            self.pending.clear();
            return;
        };
        match f.write(&self.pending) {
            Ok(n) => {
                self.pending.drain(..n.min(self.pending.len()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                // The program stopped reading; what it did not take is dropped.
                self.to_prog = None;
                self.pending.clear();
            }
        }
        if self.net_eof && self.pending.is_empty() {
            self.to_prog = None;
        }
    }

    fn prog_read(&mut self) -> Result<(), Failure> {
        let Some(f) = self.from_prog.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; CHUNK];
        match f.read(&mut buf) {
            Ok(0) | Err(_) => {
                self.from_prog = None;
                self.conn.send_close_notify();
            }
            Ok(n) => self
                .conn
                .writer()
                .write_all(buf.get(..n).unwrap_or_default())
                .map_err(|e| io_temp("write", &e))?,
        }
        Ok(())
    }

    fn net_write(&mut self) -> Result<(), Failure> {
        match self.conn.write_tls(&mut &*self.sock) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(io_temp("write", &e)),
        }
    }
}

/// Copies between the network and the program until the program closes its output and
/// everything is sent, or nothing moves for `idle_secs` seconds.
///
/// # Errors
/// Temporary: a TLS error from the peer, a network error, the idle timeout.
pub fn relay(
    conn: &mut Connection,
    sock: &TcpStream,
    to_prog: File,
    from_prog: File,
    idle_secs: u64,
) -> Result<(), Failure> {
    for f in [&to_prog, &from_prog] {
        set_nonblocking(f, true).map_err(|e| io_temp("unable to set pipe options", &e))?;
    }
    set_nonblocking(sock, true).map_err(|e| io_temp("unable to set socket options", &e))?;
    let mut r = Relay {
        conn,
        sock,
        to_prog: Some(to_prog),
        from_prog: Some(from_prog),
        pending: Vec::new(),
        net_eof: false,
    };
    let idle_ms = i32::try_from(idle_secs.saturating_mul(1000)).unwrap_or(i32::MAX);
    r.drain_plaintext()?;
    loop {
        if r.from_prog.is_none() && !r.conn.wants_write() {
            return Ok(());
        }
        let fds = [
            (
                r.sock.as_raw_fd(),
                Ready {
                    read: !r.net_eof && r.pending.len() < MAX_PENDING,
                    write: r.conn.wants_write(),
                },
            ),
            (
                r.from_prog.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                Ready {
                    read: r.from_prog.is_some() && !r.conn.wants_write(),
                    write: false,
                },
            ),
            (
                r.to_prog.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                Ready {
                    read: false,
                    write: !r.pending.is_empty(),
                },
            ),
        ];
        let ready = poll(&fds, idle_ms).map_err(|e| io_temp("poll", &e))?;
        let [net, prog_out, prog_in] = [0, 1, 2].map(|i| ready.get(i).copied().unwrap_or_default());
        if !(net.read || net.write || prog_out.read || prog_in.write) {
            if sqmail::sys::proc::take(sqmail::sys::proc::Signal::Child) {
                continue;
            }
            return Err(temp("timed out".into()));
        }
        if net.write {
            r.net_write()?;
        }
        if net.read && fds[0].1.read {
            r.net_read()?;
        }
        if prog_in.write {
            r.prog_write();
        }
        if prog_out.read && fds[1].1.read {
            r.prog_read()?;
        }
        if r.net_eof && r.to_prog.is_some() && r.pending.is_empty() {
            r.to_prog = None;
        }
    }
}
