//! fixcrio: runs a program with a CR inserted before every bare LF in both directions of
//! its input and output (see fixcrio(1)). Exit 100 usage, 111 when the program cannot run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ucspi::relay::{self, Mode};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    ucspi::log::main("fixcrio", || relay::wrap("fixcrio", |_| Mode::FixCr, &args))
}
