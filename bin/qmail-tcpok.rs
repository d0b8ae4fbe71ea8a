//! qmail-tcpok: clears `queue/lock/tcpto`, so qmail-remote forgets which hosts timed out.
//! No arguments; exits 0, or 111 with `qmail-tcpok: fatal: ...`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, prog, tcpto};

fn main() -> ExitCode {
    prog::run("qmail-tcpok", || tcpto::clear(&env::home()))
}
