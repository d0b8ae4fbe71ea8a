//! qmail-todo: preprocesses new messages for qmail-send. fd 0/1 from/to qmail-send, fd 2/3
//! to/from its own qmail-clean. Its own trouble goes to qmail-send's log as `L` records,
//! since fd 2 is not a log here. fd 9, when open, is the queue lock qmail-start took: it is
//! kept open, untouched, until the process ends, so that a new start waits for this one.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::queue::Layout;
use sqmail::send::todo::Daemon;
use sqmail::sys::proc::Signal;
use sqmail::{env, sys};

fn main() -> ExitCode {
    sys::proc::catch(&[Signal::Terminate, Signal::Hangup]);
    let Some(mut to_send) = sys::inherited_fd(1) else {
        return ExitCode::from(111);
    };
    let started = (|| {
        let home = env::home();
        let layout = Layout::open(&home)?;
        std::env::set_current_dir(home.join("queue"))
            .map_err(|e| Failure::temp_io(Kind::Queue, "unable to switch to queue directory", e))?;
        sys::umask(0o077);
        let fd = |n| {
            sys::inherited_fd(n)
                .ok_or_else(|| Failure::temp(Kind::Usage, format!("fd {n} is not open")))
        };
        let (from_send, to_clean, from_clean) = (fd(0)?, fd(2)?, fd(3)?);
        let log = to_send
            .try_clone()
            .map_err(|e| Failure::temp_io(Kind::System, "unable to dup fd 1", e))?;
        let queue = std::fs::File::open(".")
            .map_err(|e| Failure::temp_io(Kind::Queue, "unable to open the queue directory", e))?;
        Ok::<_, Failure>(Daemon {
            home,
            layout,
            from_send,
            to_send: log,
            to_clean,
            from_clean,
            queue,
            trouble: false,
        })
    })();
    let result = started.and_then(Daemon::run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = to_send
                .write_all(format!("Lalert: qmail-todo: cannot continue: {f}\n\0").as_bytes());
            ExitCode::from(f.exit_code())
        }
    }
}
