//! sslengine: sslserver's per-connection TLS engine (see sslengine(8)). Started by
//! sslserver with the accepted socket on fd 0 and sslserver's own arguments; exits with the
//! program's status, 100 when the rules deny, 111 when TLS fails.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let check = args
        .first()
        .is_some_and(|a| a == ucspi::sslserver::CHECK_ARG);
    if check {
        args.remove(0);
    }
    let o = match ucspi::sslopts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            sqmail::prog::err(format!("sslserver: fatal: {e}\n").as_bytes());
            return ExitCode::from(100);
        }
    };
    let code = if check {
        ucspi::sslengine::check(&o)
    } else {
        ucspi::sslengine::run(&o)
    };
    ExitCode::from(u8::try_from(code).unwrap_or(111))
}
