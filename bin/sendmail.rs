//! sendmail: the sendmail(8) interface for qmail. Runs `bin/qmail-inject` (`-t` means
//! header recipients), `bin/qmail-qread` (`-bp`, or when called as `mailq`) or
//! `bin/qmail-smtpd` (`-bs`) from the qmail home directory. Exits 100 on a usage error,
//! 111 when the program cannot be run; otherwise the program's own status.
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::env;
use sqmail::inject::{self, sendmail};

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    let failure = sendmail::sendmail(&env::home(), &args, env::is_set("PROTO"));
    inject::exit("sendmail", Err(failure))
}
