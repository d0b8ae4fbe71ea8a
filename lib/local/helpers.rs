//! The small programs used from `.qmail` files: forward, preline, condredirect,
//! bouncesaying and except. Each returns a [`Done`]: the exit code and the text for fd 2,
//! exactly as the qmail program prints it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::env;
use crate::fail::{self, Class};
use crate::queue::client::Queue;
use crate::sys;

/// How a helper ends: its exit code and what it says on fd 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The exit code.
    pub code: u8,
    /// The text for fd 2, newline included; may be empty.
    pub text: Vec<u8>,
}

impl Done {
    /// Ends with `code` and the line `text`.
    pub fn say(code: u8, text: impl AsRef<[u8]>) -> Done {
        let mut t = text.as_ref().to_vec();
        t.push(b'\n');
        Done { code, text: t }
    }

    /// Ends with `code`, silently.
    pub fn quiet(code: u8) -> Done {
        Done {
            code,
            text: Vec::new(),
        }
    }
}

impl Done {
    /// Prints the text on fd 2 and gives the exit code.
    pub fn exit(self) -> std::process::ExitCode {
        if !self.text.is_empty() {
            crate::prog::err(&self.text);
        }
        std::process::ExitCode::from(self.code)
    }
}

/// The program's arguments after its name, as bytes.
pub fn argv() -> Vec<Vec<u8>> {
    std::env::args_os()
        .skip(1)
        .map(std::ffi::OsString::into_vec)
        .collect()
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// How a child program ended, as qmail's helpers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// It exited with this code (111 or 100 when it could not be started).
    Exited(i32),
    /// A signal killed it.
    Crashed,
}

/// Runs `argv` (found through `PATH`) with our fds and waits for it. A program that
/// cannot be started counts as exiting 111 if the reason may pass, else 100.
pub fn run_child(argv: &[Vec<u8>]) -> Child {
    let Some((prog, args)) = argv.split_first() else {
        return Child::Exited(100);
    };
    match Command::new(os(prog))
        .args(args.iter().map(|a| os(a)))
        .status()
    {
        Err(e) => Child::Exited(if fail::is_temp(&e) { 111 } else { 100 }),
        Ok(s) => match s.code() {
            Some(c) if s.signal().is_none() => Child::Exited(c),
            _ => Child::Crashed,
        },
    }
}

/// Queues fd 0's contents after `dtline` from `sender` to `recipients`; `Ok(qp)` or the
/// failure as qmail's helpers report it (`<prog>: fatal: <text>`).
fn queue(prog: &str, dtline: &[u8], sender: &[u8], recipients: &[Vec<u8>]) -> Result<u32, Done> {
    let fatal = |class: Class, text: &str| {
        Done::say(
            if class == Class::Perm { 100 } else { 111 },
            format!("{prog}: fatal: {text}"),
        )
    };
    let mut q = Queue::open(&env::home()).map_err(|r| fatal(r.class, r.text))?;
    let qp = q.pid();
    q.put(dtline);
    let mut input = io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => q.put(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                drop(q);
                let t = format!("unable to read message: {}", sys::strerror(&e));
                return Err(fatal(Class::Temp, &t));
            }
        }
    }
    q.close(sender, recipients)
        .map_err(|r| fatal(r.class, r.text))?;
    Ok(qp)
}

fn need(prog: &str, var: &str) -> Result<Vec<u8>, Done> {
    env::var(var).ok_or_else(|| Done::say(100, format!("{prog}: fatal: {var} not set")))
}

/// forward: queues the message to the addresses given, from `$NEWSENDER`, with `$DTLINE`
/// in front.
pub fn forward(args: &[Vec<u8>]) -> Done {
    let run = || -> Result<Done, Done> {
        let sender = need("forward", "NEWSENDER")?;
        let dtline = need("forward", "DTLINE")?;
        let qp = queue("forward", &dtline, &sender, args)?;
        Ok(Done::say(0, format!("forward: qp {qp}")))
    };
    run().unwrap_or_else(|d| d)
}

/// condredirect: runs the program; when it exits 0, forwards the message to `newaddress`
/// from `$SENDER` and exits 99.
pub fn condredirect(args: &[Vec<u8>], message: &File) -> Done {
    let [to, program @ ..] = args else {
        return usage_condredirect();
    };
    if program.is_empty() {
        return usage_condredirect();
    }
    const P: &str = "condredirect";
    if let Some(d) = decide(P, run_child(program), None) {
        return d;
    }
    let run = || -> Result<Done, Done> {
        let mut m = message;
        io::Seek::rewind(&mut m).map_err(|e| {
            Done::say(
                111,
                format!("{P}: fatal: unable to rewind: {}", sys::strerror(&e)),
            )
        })?;
        let sender = need(P, "SENDER")?;
        let dtline = need(P, "DTLINE")?;
        let qp = queue(P, &dtline, &sender, std::slice::from_ref(to))?;
        Ok(Done::say(99, format!("{P}: qp {qp}")))
    };
    run().unwrap_or_else(|d| d)
}

fn usage_condredirect() -> Done {
    Done::say(
        100,
        "condredirect: usage: condredirect newaddress program [ arg ... ]",
    )
}

/// The shared reading of a child's end: 0 goes on (`None`, or `on_zero`), 111 and a
/// crash are temporary failures, anything else exits 0.
fn decide(prog: &str, child: Child, on_zero: Option<Done>) -> Option<Done> {
    match child {
        Child::Crashed => Some(Done::say(111, format!("{prog}: fatal: child crashed"))),
        Child::Exited(0) => on_zero,
        Child::Exited(111) => Some(Done::say(
            111,
            format!("{prog}: fatal: temporary child error"),
        )),
        Child::Exited(_) => Some(Done::quiet(0)),
    }
}

/// bouncesaying: bounces with `error`, unless the program given exits non-zero.
pub fn bouncesaying(args: &[Vec<u8>]) -> Done {
    let Some((error, program)) = args.split_first() else {
        return Done::say(
            100,
            "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]",
        );
    };
    if !program.is_empty()
        && let Some(d) = decide("bouncesaying", run_child(program), None)
    {
        return d;
    }
    Done::say(100, error)
}

/// except: runs the program and turns its success into a permanent failure and its
/// permanent failures into success.
pub fn except(args: &[Vec<u8>]) -> Done {
    if args.is_empty() {
        return Done::say(100, "except: usage: except program [ arg ... ]");
    }
    decide("except", run_child(args), Some(Done::quiet(100))).unwrap_or(Done::quiet(0))
}

/// preline's flags (which of `From_`, `Return-Path`, `Delivered-To` go in front) and the
/// command.
type PrelineArgs<'a> = ([bool; 3], &'a [Vec<u8>]);

/// Reads preline's options; the error is the illegal option, if that was the trouble.
fn preline_flags(args: &[Vec<u8>]) -> Result<PrelineArgs<'_>, Option<u8>> {
    let mut flags = [true; 3];
    let mut rest = args;
    while let Some((a, tail)) = rest.split_first() {
        if a == b"--" {
            rest = tail;
            break;
        }
        if a.len() < 2 || a.first() != Some(&b'-') {
            break;
        }
        for &c in a.get(1..).unwrap_or_default() {
            let (i, on) = match c {
                b'f' => (0, false),
                b'r' => (1, false),
                b'd' => (2, false),
                b'F' => (0, true),
                b'R' => (1, true),
                b'D' => (2, true),
                c => return Err(Some(c)),
            };
            if let Some(f) = flags.get_mut(i) {
                *f = on;
            }
        }
        rest = tail;
    }
    if rest.is_empty() {
        return Err(None);
    }
    Ok((flags, rest))
}

/// preline: runs the command with `$UFLINE`, `$RPLINE` and `$DTLINE` put in front of the
/// message, and exits as it does.
pub fn preline(args: &[Vec<u8>]) -> Done {
    let usage = |bad: Option<u8>| {
        let mut t = Vec::new();
        if let Some(c) = bad {
            t.extend_from_slice(
                format!("preline: illegal option -- {}\n", char::from(c)).as_bytes(),
            );
        }
        t.extend_from_slice(b"preline: usage: preline cmd [ arg ... ]\n");
        Done { code: 100, text: t }
    };
    let (Some(uf), Some(rp), Some(dt)) =
        (env::var("UFLINE"), env::var("RPLINE"), env::var("DTLINE"))
    else {
        return usage(None);
    };
    let (flags, argv) = match preline_flags(args) {
        Ok(x) => x,
        Err(bad) => return usage(bad),
    };
    let Some((prog, rest)) = argv.split_first() else {
        return usage(None);
    };
    let spawned = Command::new(os(prog))
        .args(rest.iter().map(|a| os(a)))
        .stdin(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let code = if fail::is_temp(&e) { 111 } else { 100 };
            let name = String::from_utf8_lossy(prog);
            return Done::say(
                code,
                format!(
                    "preline: fatal: unable to run {name}: {}",
                    sys::strerror(&e)
                ),
            );
        }
    };
    let copied = child.stdin.take().map_or(Ok(()), |mut pipe| {
        let mut head = Vec::new();
        for (on, l) in flags.iter().zip([&uf, &rp, &dt]) {
            if *on {
                head.extend_from_slice(l);
            }
        }
        pipe.write_all(&head)
            .and_then(|()| io::copy(&mut io::stdin().lock(), &mut pipe).map(drop))
    });
    if let Err(e) = copied {
        return Done::say(
            111,
            format!(
                "preline: fatal: unable to copy input: {}",
                sys::strerror(&e)
            ),
        );
    }
    match child.wait() {
        Err(e) => Done::say(
            111,
            format!("preline: fatal: wait failed: {}", sys::strerror(&e)),
        ),
        Ok(s) => match s.code() {
            Some(c) if s.signal().is_none() => Done::quiet(u8::try_from(c).unwrap_or(111)),
            _ => Done::say(111, "preline: fatal: child crashed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn preline_options_follow_getopt() {
        let a = argv(&["-f", "-rR", "procmail", "-d"]);
        let (flags, rest) = preline_flags(&a).unwrap();
        assert_eq!(flags, [false, true, true]);
        assert_eq!(rest, &a[2..]);
        let a = argv(&["-fd", "--", "-x"]);
        let (flags, rest) = preline_flags(&a).unwrap();
        assert_eq!(flags, [false, true, false]);
        assert_eq!(rest, &a[2..]);
        assert_eq!(
            preline_flags(&argv(&["-x", "cat"])).unwrap_err(),
            Some(b'x')
        );
        assert_eq!(preline_flags(&argv(&["-f"])).unwrap_err(), None);
        assert_eq!(preline_flags(&argv(&[])).unwrap_err(), None);
    }

    #[test]
    fn child_endings_are_read_like_qmail() {
        assert_eq!(decide("x", Child::Exited(0), None), None);
        assert_eq!(
            decide("x", Child::Exited(111), None),
            Some(Done::say(111, "x: fatal: temporary child error"))
        );
        assert_eq!(
            decide("x", Child::Crashed, None),
            Some(Done::say(111, "x: fatal: child crashed"))
        );
        for code in [1, 99, 100, 112] {
            assert_eq!(decide("x", Child::Exited(code), None), Some(Done::quiet(0)));
        }
        assert_eq!(
            decide("x", Child::Exited(0), Some(Done::quiet(100))),
            Some(Done::quiet(100))
        );
        assert_eq!(
            run_child(&argv(&["/nonexistent/program"])),
            Child::Exited(100)
        );
        assert_eq!(run_child(&argv(&["true"])), Child::Exited(0));
        assert_eq!(run_child(&argv(&["sh", "-c", "exit 7"])), Child::Exited(7));
        assert_eq!(
            run_child(&argv(&["sh", "-c", "kill -9 $$"])),
            Child::Crashed
        );
    }
}
