//! qmail-todo: preprocesses new messages for qmail-send. fd 0/1 from/to qmail-send, fd 2/3
//! to/from its own qmail-clean.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::queue::Layout;
use sqmail::send::todo::Daemon;
use sqmail::sys::proc::Signal;
use sqmail::{env, prog, sys};

fn main() -> ExitCode {
    prog::run("qmail-todo", || {
        let home = env::home();
        let layout = Layout::open(&home)?;
        std::env::set_current_dir(home.join("queue")).map_err(|e| {
            sqmail::fail::Failure::temp_io(
                sqmail::fail::Kind::Queue,
                "unable to switch to queue directory",
                e,
            )
        })?;
        sys::proc::catch(&[Signal::Terminate, Signal::Hangup]);
        sys::umask(0o077);
        let fd = |n| {
            sys::inherited_fd(n).ok_or_else(|| {
                sqmail::fail::Failure::temp(
                    sqmail::fail::Kind::Usage,
                    format!("fd {n} is not open"),
                )
            })
        };
        let d = Daemon {
            home,
            layout,
            from_send: fd(0)?,
            to_send: fd(1)?,
            to_clean: fd(2)?,
            from_clean: fd(3)?,
        };
        d.run()
    })
}
