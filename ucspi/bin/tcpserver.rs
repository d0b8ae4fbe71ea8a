//! tcpserver: accepts TCP connections and runs a program for each, with the connection on
//! fds 0 and 1 and the tcp-environ variables set (ucspi-tcp 0.88's options, rules and status
//! lines; see tcpserver(1)). Exit 100 usage, 111 set-up failure; SIGTERM exits 0.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<_> = argv.collect();
    ucspi::log::main("tcpserver", || ucspi::server::main(&argv0, &args))
}
