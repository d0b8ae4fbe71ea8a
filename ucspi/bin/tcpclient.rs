//! tcpclient: connects to a TCP server and runs a program with the connection on fd 6
//! (read) and fd 7 (write) and the tcp-environ variables set (see tcpclient(1)). Exit 100
//! usage, 111 when no connection could be made or the program could not run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<_> = argv.collect();
    ucspi::log::main("tcpclient", || ucspi::client::main(&argv0, &args))
}
