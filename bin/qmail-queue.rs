//! qmail-queue: queue one message. fd 0 is the message, fd 1 the envelope
//! (`F<sender>\0` `T<recipient>\0`... `\0`). Prints nothing; exits 0 once the message is
//! safely in the queue, else with one of the codes in qmail-queue(8).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::queue::inject::{self, DEATH_SECS};
use sqmail::{env, sys};

fn main() -> ExitCode {
    sys::settle_signals();
    sys::alarm_exit(DEATH_SECS, 52);
    sys::crash_exit(81);
    let Some(envelope) = sys::inherited_fd(1) else {
        return ExitCode::from(54);
    };
    let message = std::io::stdin().lock();
    match inject::queue(&env::home(), message, envelope) {
        Ok(_) => ExitCode::SUCCESS,
        Err(f) => ExitCode::from(f.qq_code()),
    }
}
