//! qmail-remote: `qmail-remote host sender recip...` sends the message on fd 0 to `host`
//! by SMTP or QMTP and prints, on fd 1, one NUL-terminated record per recipient (`r`, `h`,
//! `s`) and one for the message (`K`, `Z`, `D`). Always exits 0; see qmail-remote(8).
#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::{env, prog, remote};

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os()
        .skip(1)
        .map(OsStringExt::into_vec)
        .collect();
    let home = env::home();
    let mut input = std::io::stdin().lock();
    let out = remote::run(&home, &args, &mut input);
    let _ = prog::out(&out);
    ExitCode::SUCCESS
}
