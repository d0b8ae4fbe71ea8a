//! qmail-local: deliver or forward one message as a `.qmail` file says. Arguments
//! `[-nN] user homedir local dash ext domain sender defaultdelivery`; the message is on
//! fd 0 (seekable). Prints `did f+w+p` (and `qp <pid>` after a forward) and exits 0, or
//! prints why and exits 100 (permanent) or 111 (temporary). See qmail-local(8).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::{self, helpers};
use sqmail::{env, sys};

fn main() -> ExitCode {
    let args = match local::Args::parse(&helpers::argv()) {
        Ok(a) => a,
        Err(f) => return local::exit(Err(f)),
    };
    let Some(message) = sys::inherited_fd(0) else {
        return ExitCode::from(111);
    };
    local::exit(local::delivery::deliver(&args, &message, &env::home()))
}
