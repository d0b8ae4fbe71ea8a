//! qmail-newmrh: compiles `control/morercpthosts` into `control/morercpthosts.cdb` for
//! qmail-smtpd, replacing it atomically. No arguments; exits 0, or 111 with
//! `qmail-newmrh: fatal: ...` on any problem, leaving the old database alone.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, morercpthosts, prog, sys};

fn main() -> ExitCode {
    sys::umask(0o033);
    prog::run("qmail-newmrh", || morercpthosts::compile(&env::home()))
}
