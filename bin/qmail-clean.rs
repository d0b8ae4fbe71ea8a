//! qmail-clean: removes queue files on request from qmail-send or qmail-todo (fd 0 in,
//! fd 1 out).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::queue::Layout;
use sqmail::send::clean;
use sqmail::{env, prog};

fn main() -> ExitCode {
    prog::run("qmail-clean", || {
        let home = env::home();
        let layout = Layout::open(&home)?;
        std::env::set_current_dir(home.join("queue"))
            .map_err(|e| Failure::temp_io(Kind::Queue, "unable to switch to queue directory", e))?;
        let input = std::io::stdin().lock();
        let output = std::io::stdout().lock();
        clean::serve(&layout, input, output)
            .map_err(|e| Failure::temp_io(Kind::System, "pipe trouble", e))
    })
}
