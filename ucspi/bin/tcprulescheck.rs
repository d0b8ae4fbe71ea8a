//! tcprulescheck: shows which rule of a tcprules database tcpserver would follow for the
//! connection described by $TCPREMOTEIP, $TCPREMOTEHOST and $TCPREMOTEINFO (see
//! tcprulescheck(1)). Exit 100 usage, 111 unreadable database.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    ucspi::log::main("tcprulescheck", || ucspi::rulesprog::tcprulescheck(&args))
}
