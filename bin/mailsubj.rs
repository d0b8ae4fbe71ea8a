//! mailsubj: `mailsubj subject recip ...` sends fd 0 as the body of a message with that
//! subject to those recipients, through `bin/qmail-inject`. Exits with qmail-inject's
//! status; 100 on a usage error, 111 when qmail-inject cannot be run.
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::env;
use sqmail::inject::{self, predate};

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    inject::exit(
        "mailsubj",
        predate::mailsubj(&env::home(), &args, std::io::stdin().lock()),
    )
}
