//! qmail-newu: compiles `users/assign` into `users/assign.cdb` and `users/cdb` (the same
//! bytes under s/qmail's and qmail's names), each replaced atomically. No arguments; exits 0,
//! or 111 with `qmail-newu: fatal: ...` on any problem, leaving the old databases alone.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, prog, sys, users};

fn main() -> ExitCode {
    sys::umask(0o033);
    prog::run("qmail-newu", || users::newu(&env::home()))
}
