//! qbiff: announce the message on fd 0 on the terminals of `$USER` that have `biff y`.
//! Always exits 0. See qbiff(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::notify;

fn main() -> ExitCode {
    notify::qbiff().exit()
}
