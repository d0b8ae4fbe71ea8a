//! sqmail-setup: install or repair an instance: accounts, directory tree, queue, control
//! files, programs. `sqmail-setup [-s] [-l] [-m me] [-p programdir] [-S split] home`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use sqmail::fail::{Failure, Kind};
use sqmail::prog;
use sqmail::setup::{self, Mode, Plan};

const USAGE: &str = "usage: sqmail-setup [-s] [-l] [-m me] [-p programdir] [-S split] home";

fn main() -> ExitCode {
    prog::run("sqmail-setup", || {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut o = getopts::Options::new();
        o.parsing_style(getopts::ParsingStyle::StopAtFirstFree);
        o.optflag("s", "", "single-user instance");
        o.optflag("l", "", "link programs instead of copying them");
        o.optopt("m", "", "host name for control/me", "me");
        o.optopt("p", "", "directory of built programs", "dir");
        o.optopt("S", "", "queue split", "n");
        let m = o
            .parse(&args)
            .map_err(|e| Failure::perm(Kind::Usage, format!("{e}; {USAGE}")))?;
        let [home] = m.free.as_slice() else {
            return Err(Failure::perm(Kind::Usage, USAGE));
        };
        let split = match m.opt_str("S") {
            Some(s) => s
                .parse()
                .map_err(|_| Failure::perm(Kind::Usage, "split must be a number"))?,
            None => sqmail::queue::DEFAULT_SPLIT,
        };
        let mut say = |s: &str| prog::err(format!("sqmail-setup: {s}\n").as_bytes());
        let mode = if m.opt_present("s") {
            setup::single_mode(&mut say)?
        } else {
            Mode::Multi
        };
        let plan = Plan {
            home: std::path::absolute(home)
                .map_err(|e| Failure::perm(Kind::Usage, format!("bad home {home}: {e}")))?,
            mode,
            programs: m.opt_str("p").map(PathBuf::from),
            link: m.opt_present("l"),
            me: m.opt_str("m").map(String::into_bytes),
            split,
        };
        setup::install(&plan, &mut say)
    })
}
