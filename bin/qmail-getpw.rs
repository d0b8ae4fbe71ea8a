//! qmail-getpw: `qmail-getpw local` prints `user\0uid\0gid\0home\0dash\0ext\0` for the
//! account that receives mail for a local part, as qmail-lspawn expects.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::ids::{Ids, User};
use sqmail::{env, getpw, prog};

fn main() -> ExitCode {
    let Some(local) = std::env::args_os().nth(1) else {
        return ExitCode::from(100);
    };
    let local = std::os::unix::ffi::OsStringExt::into_vec(local);
    let Ok(ids) = Ids::load(&env::home()) else {
        return ExitCode::from(118);
    };
    match getpw::getpw(&local, ids.user_name(User::Alias)) {
        Ok(answer) => match prog::out(&answer) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(118),
        },
        Err(code) => ExitCode::from(code),
    }
}
