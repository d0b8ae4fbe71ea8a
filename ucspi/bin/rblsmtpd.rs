//! rblsmtpd: blocks SMTP clients listed in DNS block lists or named by `$RBLSMTPD`, else
//! runs the SMTP server (ucspi-tcp 0.88 behaviour; see rblsmtpd(1)). Reads `TCPREMOTEIP`,
//! `RBLSMTPD`, `DNSCACHEIP`. Exit 0 after a blocking conversation, 100 usage, 111 when the
//! server cannot be run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if ucspi::rbl::parse(&args).is_err() {
        sqmail::prog::err(format!("{}\n", ucspi::rbl::USAGE).as_bytes());
        return ExitCode::from(100);
    }
    sqmail::prog::run("rblsmtpd", || ucspi::rbl::run(&args))
}
