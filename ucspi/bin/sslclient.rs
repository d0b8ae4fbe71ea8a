//! sslclient: connects to host port, completes a TLS handshake (server verified against
//! `-a`/`-A`, SNI, optional client certificate) and runs a program with fd 6 reading from
//! and fd 7 writing to the server (see sslclient(1)). Exits with the program's status; 100
//! usage, 111 connect, TLS or system failure.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut status = 0;
    let code = sqmail::prog::run("sslclient", || {
        let o = ucspi::sslclient::parse(&args)?;
        status = ucspi::sslclient::run(&o)?;
        Ok(())
    });
    if status != 0 {
        ExitCode::from(status)
    } else {
        code
    }
}
