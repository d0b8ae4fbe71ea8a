//! maildir2mbox: move the messages of `$MAILDIR` into the mbox `$MAIL` through the
//! temporary file `$MAILTMP`. Exits 0 or 111. See maildir2mbox(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::convert;

fn main() -> ExitCode {
    convert::maildir2mbox().exit()
}
