//! qmail-mfrules: compiles `control/mailfromrules`
//! into `control/mailfromrules.cdb` for qmail-smtpd, replacing it atomically.
//! No arguments; exits 0, or 111 with `qmail-mfrules: fatal: ...`
//! on any problem, leaving the old database alone.
//! A line that does not parse exits 100.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, policy, prog, sys};

fn main() -> ExitCode {
    sys::umask(0o033);
    prog::run("qmail-mfrules", || policy::mfrules::compile(&env::home()))
}
