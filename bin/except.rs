//! except: run a program and reverse its verdict: 0 becomes 100, permanent failures
//! become 0, 111 stays 111. See except(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::helpers;

fn main() -> ExitCode {
    helpers::except(&helpers::argv()).exit()
}
