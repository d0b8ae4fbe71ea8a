//! qmail-authuser: a checkpassword-compatible authenticator. Reads `login\0secret\0challenge\0`
//! (at most 512 bytes) from descriptor 3, checks it with the back end `users/authuser` names
//! (stored plain text or hash, the system's passwd/shadow, checkvpw, vchkpw, Dovecot) and on
//! success runs `subprogram [args]`. Exits 1 (refused), 2 (misuse) or 111 (temporary).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{auth, env};

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    ExitCode::from(auth::authuser(&argv, &env::home()).code())
}
