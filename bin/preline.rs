//! preline: run a command with `$UFLINE`, `$RPLINE` and `$DTLINE` put in front of the
//! message on fd 0 (`-f`, `-r`, `-d` leave each out); exits as the command does, or 100
//! or 111 when it cannot run it. See preline(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::helpers;

fn main() -> ExitCode {
    helpers::preline(&helpers::argv()).exit()
}
