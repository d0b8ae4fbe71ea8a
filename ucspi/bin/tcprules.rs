//! tcprules: compiles the rule lines on stdin into the cdb tcpserver reads, through a
//! temporary file renamed into place (see tcprules(1), tcprules(5)). Exit 100 usage or a
//! bad line, 111 I/O failure.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    ucspi::log::main("tcprules", || {
        ucspi::rulesprog::tcprules(&args, &mut std::io::stdin().lock())
    })
}
