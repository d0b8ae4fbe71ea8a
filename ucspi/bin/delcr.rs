//! delcr: copies stdin to stdout, removing each CR that comes right before an LF (see
//! delcr(1)). Exit 0, or 111 on a read or write error.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    ucspi::log::main("delcr", || ucspi::relay::filter(true))
}
