//! qmail-lspawn: runs local deliveries for qmail-send. `qmail-lspawn defaultdelivery`;
//! requests on fd 0, reports on fd 1.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::ids::{Ids, User};
use sqmail::spawn::{self, local::Local};
use sqmail::{env, prog, sys};

fn main() -> ExitCode {
    prog::run("qmail-lspawn", || {
        let Some(aliasempty) = std::env::args_os().nth(1) else {
            return Err(Failure::perm(
                Kind::Usage,
                "usage: qmail-lspawn defaultdelivery",
            ));
        };
        let home = env::home();
        let ids = Ids::load(&home)?;
        let qmailq = ids.uid(User::Qmailq)?;
        std::env::set_current_dir(home.join("queue/mess"))
            .map_err(|e| Failure::temp_io(Kind::Queue, "unable to switch to queue/mess", e))?;
        let aliasempty = std::os::unix::ffi::OsStringExt::into_vec(aliasempty);
        let mut d = Local {
            home,
            ids,
            aliasempty,
        };
        let pipe = |n| {
            sys::inherited_fd(n)
                .ok_or_else(|| Failure::temp(Kind::Usage, format!("fd {n} is not open")))
        };
        let (mut input, mut out) = (pipe(0)?, pipe(1)?);
        spawn::serve(&mut d, qmailq, &mut input, &mut out)
            .map_err(|e| Failure::temp_io(Kind::System, "pipe trouble", e))
    })
}
