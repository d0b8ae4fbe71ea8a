//! qmail-qmaint: checks the queue (no option), repairs it (`-f`, or `-i` asking on fd 0),
//! deletes one message (`-d messid`) or stale DKIM staging files (`-D`). Reports go to
//! fd 1, `qmail-qmaint: fatal: ...` to fd 2. Exits 0 (clean, repaired, deleted), 99
//! (problems found or left), 100 (usage, no such message), 110 (a queue directory cannot
//! be read) or 111 (temporary trouble, qmail-send running for a repair).
#![forbid(unsafe_code)]

use std::io::BufWriter;
use std::process::ExitCode;

use sqmail::queue::maint;
use sqmail::{env, prog, sys};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&[u8]> = args.iter().map(|a| sys::bytes(a)).collect();
    let result = maint::parse_args(&args).and_then(|cmd| {
        let mut out = BufWriter::new(std::io::stdout().lock());
        let mut answers = std::io::stdin().lock();
        maint::run(&env::home(), cmd, &mut out, &mut answers)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            prog::err(format!("qmail-qmaint: fatal: {f}\n").as_bytes());
            ExitCode::from(maint::exit_code(&f))
        }
    }
}
