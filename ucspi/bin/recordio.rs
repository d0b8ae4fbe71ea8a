//! recordio: runs a program with its input and output relayed through pipes and logs every
//! piece of data to fd 2 as `pid < text` / `pid > text` (see recordio(1)). Exit 100 usage,
//! 111 when the program cannot run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ucspi::relay::{self, Mode};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    ucspi::log::main("recordio", || relay::wrap("recordio", Mode::Record, &args))
}
