//! qmail-inject: reads a message on fd 0, fixes its header (qmail-header(5)) and queues it
//! with qmail-queue, or prints it with `-n`. Options `-aAhHnN -f sender`; environment and
//! control files as in qmail-inject(8). Exits 0, 100 (permanent) or 111 (temporary).
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::inject;

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.into_vec()).collect();
    inject::exit(
        "qmail-inject",
        inject::inject(&args, std::io::stdin().lock()),
    )
}
