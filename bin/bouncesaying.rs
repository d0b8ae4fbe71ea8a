//! bouncesaying: bounce the message with the text given, unless the optional program
//! exits non-zero. Arguments `error [program [arg ...]]`. Exits 0, 100 or 111. See
//! bouncesaying(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::helpers;

fn main() -> ExitCode {
    helpers::bouncesaying(&helpers::argv()).exit()
}
