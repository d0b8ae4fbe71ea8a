//! What the ucspi tools write to fd 2, and how they end.
//!
//! Verbosity is ucspi-tcp's: 0 (`-q`) prints nothing at all, 1 (`-Q`, the default) prints
//! errors, 2 (`-v`) adds status lines. Each line goes out in one write so lines from many
//! processes sharing a log pipe do not mix.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use sqmail::fail::{Failure, Kind};
use sqmail::prog;

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// How much to print: 0, 1 or 2.
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// The verbosity in force.
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Writes a complete line (or lines) to fd 2 unless the program is quiet.
pub fn line(b: &[u8]) {
    if verbosity() >= 1 {
        prog::err(b);
    }
}

/// Writes a status line (verbosity 2 only).
pub fn status(b: &[u8]) {
    if verbosity() >= 2 {
        prog::err(b);
    }
}

/// ucspi-tcp's `safecats` for the variable parts of a status line: at most 100 bytes, each
/// byte outside 33..=126 and each `%` or `:` replaced by `?`, and `...` when cut.
pub fn safe(s: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = s
        .iter()
        .take(100)
        .map(|&c| {
            if !(33..=126).contains(&c) || c == b'%' || c == b':' {
                b'?'
            } else {
                c
            }
        })
        .collect();
    if s.len() > 100 {
        out.extend_from_slice(b"...");
    }
    out
}

/// A usage failure: prints as `prog: usage: text`, exit 100.
pub fn usage(text: &str) -> Failure {
    Failure::perm(Kind::Usage, text)
}

/// A temporary failure: prints as `prog: fatal: text`, exit 111.
pub fn fatal(text: impl Into<String>) -> Failure {
    Failure::temp(Kind::System, text)
}

/// A failure whose message has already been printed (or has none): exit 111.
pub fn silent() -> Failure {
    Failure::temp(Kind::System, "")
}

/// Runs a program body and turns its result into the exit status, printing
/// `prog: usage: ...` or `prog: fatal: ...` as ucspi-tcp does (nothing when quiet).
pub fn main(prog: &str, body: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let what = f.to_string();
            if !what.is_empty() {
                let tag = if f.kind() == Kind::Usage {
                    "usage"
                } else {
                    "fatal"
                };
                line(format!("{prog}: {tag}: {what}\n").as_bytes());
            }
            ExitCode::from(f.exit_code())
        }
    }
}

/// Prints `line` (unless quiet) and ends the process with `code`: for a child that must
/// not return into its parent's code.
pub fn die(text: &[u8], code: i32) -> ! {
    line(text);
    prog::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safecats_masks_and_cuts() {
        assert_eq!(safe(b"a:b%c d\x7f"), b"a?b?c?d?");
        assert_eq!(safe(&[b'x'; 101]).len(), 103);
        assert!(safe(&[b'x'; 101]).ends_with(b"x..."));
        assert_eq!(safe(&[b'x'; 100]).len(), 100);
    }
}
