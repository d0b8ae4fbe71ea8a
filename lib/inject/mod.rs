//! qmail-inject and its companions: sendmail, predate, datemail and mailsubj.
//!
//! qmail-inject reads a message on fd 0, fixes its header the way qmail 1.03 does
//! (qmail-header(5)), works out the envelope, and hands both to qmail-queue (or prints the
//! message with `-n`). The pieces: [`token`] and [`list`] (RFC 822 tokens and address lists,
//! qmail's token822), [`rewrite`] (address rewriting and quoting), [`fields`] (field
//! names), [`read`] (header/body split under [`read::HEADER_MAX`]), [`header`] (the fixing
//! itself), [`config`] (environment and control files) and [`getopt`] (DJB's option
//! parser). [`sendmail`], [`predate`] and [`zone`] serve the companion programs.
//!
//! Errors are printed the way qmail-inject prints them, `qmail-inject: fatal: <text>`,
//! where the text may hold the offending header bytes unchanged; so these programs report
//! through [`Fatal`] rather than the generic runner.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use crate::fail::{Class, Failure};
use crate::queue::client::{Queue, Refused};
use crate::{date, env, prog};

pub mod config;
pub mod fields;
pub mod getopt;
pub mod header;
pub mod list;
pub mod predate;
pub mod read;
pub mod rewrite;
pub mod sendmail;
pub mod token;
pub mod zone;

use config::Settings;
use getopt::{Getopt, Opt};
use header::Header;

/// A failure of one of these programs, with the exact bytes to print after
/// `prog: fatal: `, or a whole line of its own (sgetopt's complaints).
#[derive(Debug)]
pub struct Fatal {
    class: Class,
    text: Vec<u8>,
    whole_line: bool,
}

impl Fatal {
    /// A permanent failure (exit 100).
    pub fn perm(text: &[u8]) -> Fatal {
        Fatal {
            class: Class::Perm,
            text: text.to_vec(),
            whole_line: false,
        }
    }

    /// A temporary failure (exit 111).
    pub fn temp(text: &[u8]) -> Fatal {
        Fatal {
            class: Class::Temp,
            text: text.to_vec(),
            whole_line: false,
        }
    }

    /// A permanent failure printed as the line given, with no `fatal:` prefix.
    pub fn line(line: Vec<u8>) -> Fatal {
        Fatal {
            class: Class::Perm,
            text: line,
            whole_line: true,
        }
    }

    /// qmail's doordie: `unable to parse this line:` and the text.
    pub fn unparsable(text: Vec<u8>) -> Fatal {
        Fatal::perm(&[&b"unable to parse this line:\n"[..], &text].concat())
    }

    /// Permanent or temporary.
    pub fn class(&self) -> Class {
        self.class
    }

    /// 100 or 111.
    pub fn exit_code(&self) -> u8 {
        if self.class == Class::Perm { 100 } else { 111 }
    }

    /// What is printed on fd 2: `prog: fatal: text`, newline ended.
    pub fn message(&self, prog: &str) -> Vec<u8> {
        let mut m = if self.whole_line {
            Vec::new()
        } else {
            [prog.as_bytes(), b": fatal: "].concat()
        };
        m.extend_from_slice(&self.text);
        if !m.ends_with(b"\n") {
            m.push(b'\n');
        }
        m
    }
}

impl From<Refused> for Fatal {
    /// qmail-queue's refusal, printed as qmail-inject prints it.
    fn from(r: Refused) -> Fatal {
        Fatal {
            class: r.class,
            text: r.text.as_bytes().to_vec(),
            whole_line: false,
        }
    }
}

impl From<Failure> for Fatal {
    fn from(f: Failure) -> Fatal {
        Fatal {
            class: f.class(),
            text: f.to_string().into_bytes(),
            whole_line: false,
        }
    }
}

/// Prints a failure and turns the outcome into an exit status.
pub fn exit(prog: &str, r: Result<u8, Fatal>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            prog::err(&f.message(prog));
            ExitCode::from(f.exit_code())
        }
    }
}

/// Where qmail-inject sends the fixed message.
enum Output {
    /// Not yet known: the header is still being read.
    Closed,
    /// qmail-queue.
    Queue(Queue),
    /// Standard output (`-n`), with bytes waiting to be written.
    Print(Vec<u8>),
}

const PRINT_CHUNK: usize = 64 * 1024;

struct Run<'a, 'h> {
    header: Header<'a>,
    home: &'h Path,
    print: bool,
    out: Output,
}

impl Run<'_, '_> {
    fn put(&mut self, b: &[u8]) {
        match &mut self.out {
            Output::Queue(q) => q.put(b),
            Output::Print(buf) => {
                buf.extend_from_slice(b);
                if buf.len() >= PRINT_CHUNK {
                    // qmail-inject -n ignores write errors, as qmail's does.
                    let _ = prog::out(buf);
                    buf.clear();
                }
            }
            Output::Closed => {}
        }
    }
}

impl read::Sink for Run<'_, '_> {
    fn field(&mut self, f: Vec<u8>) -> Result<(), Fatal> {
        self.header.field(f)
    }

    fn end_header(&mut self) -> Result<(), Fatal> {
        let text = self.header.finish(self.print)?;
        self.out = if self.print {
            Output::Print(Vec::new())
        } else {
            Output::Queue(Queue::open(self.home)?)
        };
        self.put(&text);
        Ok(())
    }

    fn body(&mut self, b: &[u8]) -> Result<(), Fatal> {
        self.put(b);
        Ok(())
    }
}

/// Where the recipients come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recipients {
    /// `-A`: the arguments if there are any, else the header.
    Default,
    /// `-a`: the arguments only.
    Args,
    /// `-h`: the header only.
    Header,
    /// `-H`: both.
    Both,
}

/// Reads qmail-inject's options into `header` (the `-f` sender); returns where the
/// recipients come from and whether to print rather than queue.
fn options(args: &[Vec<u8>], header: &mut Header<'_>) -> Result<(Recipients, bool), Fatal> {
    let mut recipients = Recipients::Default;
    let mut print = false;
    let mut opts = Getopt::new(args, b"aAhHnNf:");
    while let Some(o) = opts.next_opt() {
        match o {
            Opt::Found(b'a', _) => recipients = Recipients::Args,
            Opt::Found(b'A', _) => recipients = Recipients::Default,
            Opt::Found(b'h', _) => recipients = Recipients::Header,
            Opt::Found(b'H', _) => recipients = Recipients::Both,
            Opt::Found(b'n', _) => print = true,
            Opt::Found(b'N', _) => print = false,
            Opt::Found(b'f', Some(s)) => header.set_sender(&s)?,
            o => {
                let prog = getopt::basename(args.first().map_or(&b""[..], Vec::as_slice));
                return Err(Fatal::line(o.complaint(prog).unwrap_or_default()));
            }
        }
    }
    let rest = opts.rest();
    if recipients == Recipients::Default {
        recipients = if rest.is_empty() {
            Recipients::Header
        } else {
            Recipients::Args
        };
    }
    if recipients != Recipients::Header {
        for a in rest {
            header.arg(a)?;
        }
    }
    Ok((recipients, print))
}

/// qmail-inject with its arguments (argument 0 is the program name), reading the message
/// from `input`. Returns the exit code (0) or the failure to report.
pub fn inject(args: &[Vec<u8>], input: impl Read) -> Result<u8, Fatal> {
    let home = env::home();
    let settings = Settings::load(&home, date::now(), std::process::id())?;
    let mut header = Header::new(&settings);
    let (recipients, print) = options(args, &mut header)?;
    let mut run = Run {
        header,
        home: &home,
        print,
        out: Output::Closed,
    };
    let mut input = BufReader::with_capacity(64 * 1024, input);
    read::split(&mut input, read::HEADER_MAX, &mut run)?;
    match run.out {
        Output::Print(buf) => {
            let _ = prog::out(&buf);
        }
        Output::Queue(q) => {
            let sender = rewrite::cstr(run.header.sender.as_deref().unwrap_or_default());
            let to = run.header.recipients(recipients != Recipients::Args);
            q.close(sender, &to)?;
        }
        Output::Closed => {}
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
