//! forward: queue the message on fd 0 to the addresses given, from `$NEWSENDER`, with
//! `$DTLINE` in front. Exits 0, 100 or 111. See forward(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::helpers;

fn main() -> ExitCode {
    helpers::forward(&helpers::argv()).exit()
}
