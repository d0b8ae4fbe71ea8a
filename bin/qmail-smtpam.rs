//! qmail-smtpam: a recipient PAM that asks another SMTP server. `qmail-smtpam host [port]`,
//! `address\0\0\0` on descriptor 3. Exits 0 (RCPT got 250), 1 (RCPT got 5xx), 2 (misuse) or
//! 111 (anything else).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, policy};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match policy::smtpam::run(&args, &env::home()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(r) => ExitCode::from(r.code()),
    }
}
