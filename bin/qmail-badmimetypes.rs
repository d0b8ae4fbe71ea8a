//! qmail-badmimetypes: compiles `control/badmimetypes`
//! into `control/badmimetypes.cdb` for qmail-smtpd, replacing it atomically.
//! No arguments; exits 0, or 111 with `qmail-badmimetypes: fatal: ...`
//! on any problem, leaving the old database alone.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{env, policy, prog, sys};

fn main() -> ExitCode {
    sys::umask(0o033);
    prog::run("qmail-badmimetypes", || {
        policy::mime::compile_mimetypes(&env::home())
    })
}
