//! qmail-qstat: counts the messages in the queue, and those not yet preprocessed (still in
//! `todo/`). No arguments; exits 0, or 111 with `qmail-qstat: fatal: ...`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::queue::{Layout, scan};
use sqmail::{env, prog};

fn main() -> ExitCode {
    prog::run("qmail-qstat", || {
        let text = scan::qstat(&Layout::open(&env::home())?)?;
        prog::out(&text).map_err(|e| Failure::temp_io(Kind::Write, "unable to write output", e))
    })
}
