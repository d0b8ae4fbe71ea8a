//! maildirmake: makes a Maildir, `name` with `tmp`, `new` and `cur` inside, all mode 0700.
//! Usage `maildirmake name`; exits 0, 100 without a name, 111 when a directory cannot be
//! made (`maildirmake: fatal: unable to mkdir ...`).
#![forbid(unsafe_code)]

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::{prog, sys};

fn main() -> ExitCode {
    sys::umask(0o077);
    let Some(name) = std::env::args_os().nth(1).map(PathBuf::from) else {
        prog::err(b"maildirmake: usage: maildirmake name\n");
        return ExitCode::from(100);
    };
    prog::run("maildirmake", || {
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o700);
        let shown = name.display();
        b.create(&name)
            .map_err(|e| Failure::temp_io(Kind::System, format!("unable to mkdir {shown}"), e))?;
        for sub in ["tmp", "new", "cur"] {
            b.create(name.join(sub)).map_err(|e| {
                Failure::temp_io(Kind::System, format!("unable to mkdir {shown}/{sub}"), e)
            })?;
        }
        Ok(())
    })
}
