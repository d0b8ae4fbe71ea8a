//! SMTP policy data that qmail-smtpd consults: recipient verification (`control/recipients`),
//! the senders relay clients may use (`control/mailfromrules`), and the attachment filters
//! (`control/badmimetypes`, `control/badloadertypes`), with the compilers that turn the
//! editable files into cdb databases.
//!
//! Every lookup here is pure apart from reading its database (and, for recipient PAMs,
//! running the program the control file names), so qmail-smtpd calls them per command.

pub mod mfrules;
pub mod mime;
pub mod recipients;
pub mod smtpam;

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use crate::cdb;
use crate::fail::{Failure, Kind, Result};
use crate::users::{self, Ending};

/// Adds one record to the database being written.
pub(crate) type Add<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// Compiles the text file `src` (relative to `home`) into the cdb `dst` through `tmp`, the
/// way qmail-newmrh does: `each` turns one line (newline removed) into records; the old
/// database stays in place on any failure. Read and write failures are temporary; `each`
/// decides the class of its own.
pub(crate) fn compile(
    home: &Path,
    src: &str,
    dst: &str,
    tmp: &str,
    each: &mut dyn FnMut(&[u8], Add<'_>) -> Result<()>,
) -> Result<()> {
    let read = |e: io::Error| Failure::temp_io(Kind::Read, format!("unable to read {src}"), e);
    let write =
        |e: io::Error| Failure::temp_io(Kind::Write, format!("unable to write to {tmp}"), e);
    let mut input = BufReader::new(File::open(home.join(src)).map_err(read)?);
    let mut w =
        cdb::Writer::create(&home.join(dst), &home.join(tmp), users::CDB_MODE).map_err(write)?;
    let mut line = Vec::new();
    let mut body = || -> Result<()> {
        loop {
            let ending =
                users::getln(&mut input, &mut line, users::LINE_MAX_BYTES).map_err(read)?;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            each(&line, &mut |k, d| w.add(k, d).map_err(write))?;
            if ending == Ending::Eof {
                return Ok(());
            }
        }
    };
    let done = body();
    if let Err(f) = done {
        w.abandon();
        return Err(f);
    }
    w.finish()
        .map_err(|e| Failure::temp_io(Kind::Write, format!("unable to move {tmp} to {dst}"), e))
}

/// Removes trailing spaces, tabs, carriage returns and newlines.
pub(crate) fn trim_end(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}
