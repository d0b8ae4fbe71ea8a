//! qmail-start: `qmail-start [defaultdelivery [logger arg...]]` starts qmail-lspawn,
//! qmail-rspawn, qmail-clean, qmail-todo and the logger under their accounts, then becomes
//! qmail-send. Exits 111 if anything cannot be set up.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, prog, start};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let failure = start::start(&env::home(), &args);
    prog::err(format!("qmail-start: fatal: {failure}\n").as_bytes());
    ExitCode::from(111)
}
