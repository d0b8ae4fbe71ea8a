#![forbid(unsafe_code)]
//! qmail-smtpd: receives mail over SMTP on fds 0 and 1 and hands it to qmail-queue.
//!
//! Usage: `qmail-smtpd [checkprogram subprogram ...]`, run by tcpserver or sslserver. The
//! optional checkprogram verifies SMTP AUTH credentials (checkpassword interface, fd 3).
//! Controls and variables: qmail-smtpd(8). Exits 0 when the session ends, 111 when the
//! control files cannot be read.

use std::process::ExitCode;

use sqmail::smtpd::server::{self, Options};
use sqmail::{env, prog};

fn main() -> ExitCode {
    let checkprogram: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let home = env::home();
    prog::run("qmail-smtpd", || {
        std::env::set_current_dir(&home).map_err(|e| {
            sqmail::fail::Failure::temp_io(
                sqmail::fail::Kind::Home,
                "unable to switch to home directory",
                e,
            )
        })?;
        server::serve(&Options {
            home: &home,
            checkprogram: &checkprogram,
        })
    })
}
