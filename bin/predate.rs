//! predate: `predate child [arg ...]` runs child with a `Date:` line in local time followed
//! by predate's fd 0 on the child's fd 0. Exits with the child's status; 100 on a usage
//! error, 111 when the child cannot be run or crashes.
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::inject::{self, predate};

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    inject::exit("predate", predate::predate(&args, std::io::stdin().lock()))
}
