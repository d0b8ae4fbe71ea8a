//! argv0: `argv0 realname program [ arg ... ]` runs realname with `argv[0]` set to program
//! (see argv0(1)). Exit 100 usage, 111 when realname cannot run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ucspi::environ::Edits;
use ucspi::{errstr, exec, log};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    log::main("argv0", || {
        let (Some(real), Some(rest)) = (args.first(), args.get(1..)) else {
            return Err(log::usage("argv0 realname program [ arg ... ]"));
        };
        if rest.is_empty() {
            return Err(log::usage("argv0 realname program [ arg ... ]"));
        }
        let e = exec::run_file(real, rest, &Edits::new());
        Err(log::fatal(format!(
            "unable to run {}: {}",
            real.to_string_lossy(),
            errstr::text(&e)
        )))
    })
}
