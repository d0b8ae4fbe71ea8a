//! maildirwatch: show the new messages of `$MAILDIR` on the terminal, every 30 seconds.
//! Runs until interrupted; exits 111 on trouble. See maildirwatch(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::notify;

fn main() -> ExitCode {
    notify::maildirwatch().exit()
}
