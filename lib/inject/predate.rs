//! predate and mailsubj: programs that put a line or two in front of a message and hand it
//! to another program.
//!
//! predate runs its child with a pipe on fd 0 carrying a `Date:` line in local time
//! (`Date: 5 Mar 2024 08:08:09 +0100`) followed by predate's own input, and exits with the
//! child's status. mailsubj is qmail's two-line script without a shell: it writes
//! `Subject:` and `To:` lines, a blank line and its input into `bin/qmail-inject`.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Fatal, zone};
use crate::date::Utc;
use crate::sys;

/// predate's `Date:` line for time `t` with the local zone `offset` seconds east of UTC.
pub fn date_line(t: i64, offset: i64) -> Vec<u8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = Utc::from_unix(t.saturating_add(offset));
    let (sign, secs) = if offset < 0 {
        ('-', -offset)
    } else {
        ('+', offset)
    };
    let minutes = (secs + 30) / 60;
    format!(
        "Date: {} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}\n",
        local.mday,
        MONTHS.get(local.mon).unwrap_or(&"Jan"),
        local.year,
        local.hour,
        local.min,
        local.sec,
        minutes / 60,
        minutes % 60
    )
    .into_bytes()
}

/// Runs `argv` with `head` and then all of `input` on its fd 0; returns its exit code.
/// A child killed by a signal is a temporary failure, `crashed`.
fn feed(argv: &[Vec<u8>], head: &[u8], mut input: impl Read, crashed: &[u8]) -> Result<u8, Fatal> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(Fatal::perm(b"no program to run"));
    };
    let name = OsString::from_vec(prog.clone());
    let mut child = Command::new(&name)
        .args(args.iter().map(|a| OsString::from_vec(a.clone())))
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let text = format!(
                "unable to run {}: {}",
                name.to_string_lossy(),
                sys::strerror(&e)
            );
            Fatal::temp(text.as_bytes())
        })?;
    if let Some(mut pipe) = child.stdin.take() {
        // Like qmail's predate, a child that stops reading is not an error here: its exit
        // status says what happened.
        if pipe.write_all(head).is_ok() {
            let _ = io::copy(&mut input, &mut pipe);
        }
    }
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Fatal::temp(
                    format!("wait failed: {}", sys::strerror(&e)).as_bytes(),
                ));
            }
        }
    };
    match (status.code(), status.signal()) {
        (Some(c), _) => Ok(u8::try_from(c & 0xff).unwrap_or(111)),
        _ => Err(Fatal::temp(crashed)),
    }
}

/// predate with its arguments (argument 0 is the program name).
pub fn predate(args: &[Vec<u8>], input: impl Read) -> Result<u8, Fatal> {
    let child = args.get(1..).unwrap_or_default();
    if child.is_empty() {
        return Err(Fatal::line(b"predate: usage: predate child\n".to_vec()));
    }
    let now = crate::date::now();
    feed(
        child,
        &date_line(now, zone::offset(now)),
        input,
        b"child crashed",
    )
}

/// mailsubj: `mailsubj subject recipient ...`, the body on `input`.
pub fn mailsubj(home: &Path, args: &[Vec<u8>], input: impl Read) -> Result<u8, Fatal> {
    let Some((subject, to)) = args.get(1..).and_then(<[Vec<u8>]>::split_first) else {
        return Err(Fatal::line(
            b"mailsubj: usage: mailsubj subject [ recip ... ]\n".to_vec(),
        ));
    };
    let mut head = [&b"Subject: "[..], subject, b"\nTo:"].concat();
    for r in to {
        head.push(b' ');
        head.extend_from_slice(r);
    }
    head.extend_from_slice(b"\n\n");
    let inject = home.join("bin/qmail-inject").into_os_string().into_vec();
    feed(&[inject], &head, input, b"qmail-inject crashed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_lines_carry_the_local_offset() {
        // 1709622489 = 5 Mar 2024 07:08:09 UTC.
        for (offset, want) in [
            (0, "Date: 5 Mar 2024 07:08:09 +0000\n"),
            (3600, "Date: 5 Mar 2024 08:08:09 +0100\n"),
            (-5 * 3600, "Date: 5 Mar 2024 02:08:09 -0500\n"),
            (19_800, "Date: 5 Mar 2024 12:38:09 +0530\n"),
            (-8 * 3600, "Date: 4 Mar 2024 23:08:09 -0800\n"),
            (29, "Date: 5 Mar 2024 07:08:38 +0000\n"),
            (31, "Date: 5 Mar 2024 07:08:40 +0001\n"),
        ] {
            assert_eq!(
                date_line(1_709_622_489, offset),
                want.as_bytes(),
                "offset {offset}"
            );
        }
    }
}
