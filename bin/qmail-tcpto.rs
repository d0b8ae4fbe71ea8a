//! qmail-tcpto: prints qmail-remote's table of hosts that timed out (`queue/lock/tcpto`),
//! one line per host. No arguments; exits 0, or 111 after a `fatal: ...` line on fd 1, as
//! qmail-tcpto reports.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::{date, env, prog, tcpto};

fn main() -> ExitCode {
    match tcpto::read(&env::home()) {
        Ok(table) => {
            let now = u64::try_from(date::now()).unwrap_or(0);
            let text = tcpto::report(&tcpto::parse(&table), now);
            if prog::out(&text).is_err() {
                return ExitCode::from(111);
            }
            ExitCode::SUCCESS
        }
        Err(t) => {
            let _ = prog::out(format!("fatal: {}\n", t.text()).as_bytes());
            ExitCode::from(111)
        }
    }
}
