//! What every program's `main` shares: writing to fds 1 and 2 without panicking on a closed
//! pipe, and turning a result into an exit status. This is the only place that ends the
//! process.

use std::io::Write;
use std::process::ExitCode;

use crate::fail::Failure;

/// Writes to standard output; errors (a reader gone away) are returned, never panicked on.
pub fn out(b: &[u8]) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(b).and_then(|()| o.flush())
}

/// Writes to standard error, ignoring failure (there is nowhere else to report it).
pub fn err(b: &[u8]) {
    let _ = std::io::stderr().lock().write_all(b);
}

/// Prints `prog: warning: text`.
pub fn warn(prog: &str, text: &str) {
    err(format!("{prog}: warning: {text}\n").as_bytes());
}

/// Runs a 0/100/111 program: `Ok` exits 0; a failure prints `prog: fatal: text` and exits
/// 111 (temporary) or 100 (permanent).
pub fn run(prog: &str, body: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            err(format!("{prog}: fatal: {f}\n").as_bytes());
            ExitCode::from(f.exit_code())
        }
    }
}

/// Ends the process now with `code`, for a program that has to stop from deep inside
/// (after exec-style hand-offs or in a child).
pub fn exit(code: i32) -> ! {
    #[allow(clippy::exit)]
    std::process::exit(code)
}
