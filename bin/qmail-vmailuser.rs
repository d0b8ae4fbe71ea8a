//! qmail-vmailuser: a recipient check for VMailMgr and vpopmail virtual users, run from
//! `control/recipients`. Reads `address\0\0\0` (at most 128 bytes) from descriptor 3.
//! Exits 0 (the user exists), 1 (it does not), 2 (misuse) or 111 (temporary).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{auth, env};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match auth::vmailuser::run(&args, &env::home()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(r) => ExitCode::from(r.code()),
    }
}
