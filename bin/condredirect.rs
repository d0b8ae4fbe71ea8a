//! condredirect: run a program on the message; if it exits 0, forward the message to
//! `newaddress` and exit 99. Arguments `newaddress program [arg ...]`. Exits 0, 99, 100
//! or 111. See condredirect(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::helpers;
use sqmail::sys;

fn main() -> ExitCode {
    let Some(message) = sys::inherited_fd(0) else {
        return ExitCode::from(111);
    };
    helpers::condredirect(&helpers::argv(), &message).exit()
}
