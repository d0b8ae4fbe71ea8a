//! qmail-rspawn: runs remote deliveries (qmail-remote) for qmail-send; requests on fd 0,
//! reports on fd 1.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::ids::{Ids, User};
use sqmail::spawn::{self, remote::Remote};
use sqmail::{env, prog, sys};

fn main() -> ExitCode {
    prog::run("qmail-rspawn", || {
        let home = env::home();
        let qmailq = Ids::load(&home)?.uid(User::Qmailq)?;
        // As qmail's tcpto_clean: a fresh start forgets earlier connection timeouts.
        let _ = sqmail::tcpto::clear(&home);
        std::env::set_current_dir(home.join("queue/mess"))
            .map_err(|e| Failure::temp_io(Kind::Queue, "unable to switch to queue/mess", e))?;
        let mut d = Remote { home };
        let pipe = |n| {
            sys::inherited_fd(n)
                .ok_or_else(|| Failure::temp(Kind::Usage, format!("fd {n} is not open")))
        };
        let (mut input, mut out) = (pipe(0)?, pipe(1)?);
        spawn::serve(&mut d, qmailq, &mut input, &mut out)
            .map_err(|e| Failure::temp_io(Kind::System, "pipe trouble", e))
    })
}
