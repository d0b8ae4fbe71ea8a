//! qmail-qread: lists the queued messages: date, `#id`, size, sender, then each recipient
//! as `local` or `remote`, `done` once delivered. No arguments; output and messages go to
//! fd 1, as qmail-qread's do. Exits 0, or 111 when a queue directory cannot be read.
#![forbid(unsafe_code)]

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use sqmail::queue::{Layout, scan};
use sqmail::{env, prog};

fn main() -> ExitCode {
    let layout = match Layout::open(&env::home()) {
        Ok(l) => l,
        Err(f) => {
            let _ = prog::out(format!("fatal: {f}\n").as_bytes());
            return ExitCode::from(111);
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let code = scan::qread(&layout, &mut out).and_then(|code| out.flush().map(|()| code));
    ExitCode::from(code.unwrap_or(111))
}
