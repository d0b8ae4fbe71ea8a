//! sslserver: accepts TCP connections and runs a program for each behind a TLS engine
//! (fehcom ucspi-ssl's options and environment; see sslserver(1)). Exit 100 usage, 111
//! system or TLS-setting failure, 0 on SIGTERM.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    sqmail::prog::run("sslserver", || {
        let o = ucspi::sslopts::parse(&args)?;
        ucspi::sslserver::serve(&o, &args)
    })
}
