//! qmail-showctl: explains the configuration: the compiled-in settings, the user and group
//! ids by role, then every control file with its value or default. No arguments; exits 0,
//! or 111 (after an `Oops!` line when the control directory is unusable).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::showctl::{self, Settings};
use sqmail::{env, prog};

fn main() -> ExitCode {
    let settings = match Settings::load(&env::home()) {
        Ok(s) => s,
        Err(f) => {
            prog::err(format!("qmail-showctl: fatal: {f}\n").as_bytes());
            return ExitCode::from(111);
        }
    };
    let (text, code) = showctl::report(&settings);
    if prog::out(&text).is_err() {
        return ExitCode::from(111);
    }
    ExitCode::from(code)
}
