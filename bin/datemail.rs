//! datemail: sendmail with a `Date:` line in local time added; runs `bin/predate
//! bin/sendmail` with its arguments. Exits with sendmail's status, or 111 when predate
//! cannot be run.
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::env;
use sqmail::inject::{self, sendmail};

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    inject::exit("datemail", Err(sendmail::datemail(&env::home(), &args)))
}
