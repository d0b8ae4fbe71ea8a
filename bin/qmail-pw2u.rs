//! qmail-pw2u: reads a V7 passwd file on fd 0 and prints `users/assign` lines on fd 1,
//! shaped by `users/include`, `exclude`, `mailnames`, `subusers` and `append`. Options
//! `-/ohHuUC` and `-c char`. Exits 0; 100 on a bad option; 111 on any other problem.
#![forbid(unsafe_code)]

use std::io::BufWriter;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use sqmail::ids::{Ids, User};
use sqmail::pw2u::{self, Options};
use sqmail::{env, prog};

fn main() -> ExitCode {
    let args: Vec<Vec<u8>> = std::env::args_os().skip(1).map(|a| a.into_vec()).collect();
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(f) => {
            prog::err(format!("qmail-pw2u: {f}\n").as_bytes());
            return ExitCode::from(f.exit_code());
        }
    };
    prog::run("qmail-pw2u", || {
        let home = env::home();
        let ids = Ids::load(&home)?;
        let mut input = std::io::stdin().lock();
        let out = BufWriter::new(std::io::stdout().lock());
        pw2u::convert(&home, &opts, ids.user_name(User::Alias), &mut input, out)
    })
}
