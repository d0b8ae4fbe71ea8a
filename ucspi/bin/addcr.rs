//! addcr: copies stdin to stdout with a CR inserted before every LF (see addcr(1)). Exit 0,
//! or 111 on a read or write error.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    ucspi::log::main("addcr", || ucspi::relay::filter(false))
}
