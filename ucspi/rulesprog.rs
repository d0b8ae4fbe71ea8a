//! The programs around the rules database: tcprules (rule lines on stdin to a cdb written
//! through a temporary file and renamed into place) and tcprulescheck (how tcpserver would
//! treat the connection described by `$TCPREMOTEIP`, `$TCPREMOTEHOST`, `$TCPREMOTEINFO`).

use std::ffi::OsString;
use std::io::{BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sqmail::fail::Failure;

use crate::{environ, errstr, log, rules};

/// The longest rule line tcprules reads (bytes).
pub const LINE_MAX: usize = 1 << 20;

fn shown(p: &OsString) -> String {
    String::from_utf8_lossy(p.as_bytes()).into_owned()
}

/// Reads one line (with its newline, if any) of at most [`LINE_MAX`] bytes.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<usize, Failure> {
    line.clear();
    let limit = u64::try_from(LINE_MAX).unwrap_or(u64::MAX) + 1;
    let n = input
        .by_ref()
        .take(limit)
        .read_until(b'\n', line)
        .map_err(|e| log::fatal(format!("unable to read input: {}", errstr::text(&e))))?;
    if n > LINE_MAX {
        return Err(log::fatal("out of memory"));
    }
    Ok(n)
}

/// tcprules: `args` are the database and the temporary file.
///
/// # Errors
/// Usage (100), a line that is not a rule (100), or an I/O failure (111).
pub fn tcprules(args: &[OsString], input: &mut impl BufRead) -> Result<(), Failure> {
    let (Some(cdb), Some(tmp)) = (args.first(), args.get(1)) else {
        return Err(log::usage("tcprules rules.cdb rules.tmp"));
    };
    let tmp_path = Path::new(tmp);
    let mut w = sqmail::cdb::Writer::create(tmp_path, tmp_path, 0o644).map_err(|e| {
        log::fatal(format!(
            "unable to create {}: {}",
            shown(tmp),
            errstr::text(&e)
        ))
    })?;
    let write_err = |e: &std::io::Error| {
        log::fatal(format!(
            "unable to write to {}: {}",
            shown(tmp),
            errstr::text(e)
        ))
    };
    let mut line = Vec::new();
    while read_line(input, &mut line)? > 0 {
        let records = rules::compile(&line).map_err(|rules::BadLine| {
            let t = rules::trim(&line);
            let t = t.split(|&c| c == 0).next().unwrap_or_default();
            Failure::perm(
                sqmail::fail::Kind::Input,
                format!("unable to parse this line: {}", String::from_utf8_lossy(t)),
            )
        })?;
        for (k, v) in records {
            w.add(&k, &v).map_err(|e| write_err(&e))?;
        }
    }
    w.finish().map_err(|e| write_err(&e))?;
    std::fs::rename(tmp, cdb).map_err(|e| {
        log::fatal(format!(
            "unable to move {} to {}: {}",
            shown(tmp),
            shown(cdb),
            errstr::text(&e)
        ))
    })?;
    // Make the rename itself durable (0.88 leaves this to the file system).
    let dir = Path::new(cdb)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let _ = sqmail::sys::fsync_dir(dir);
    Ok(())
}

/// tcprulescheck's report for one lookup.
pub fn report(found: Option<&rules::Found>) -> Vec<u8> {
    let Some(f) = found else {
        return b"default:\nallow connection\n".to_vec();
    };
    let mut out = [b"rule ".as_slice(), &f.key, b":\n"].concat();
    for it in rules::items(&f.data) {
        match it {
            rules::Item::Deny => {
                out.extend_from_slice(b"deny connection\n");
                return out;
            }
            rules::Item::Set(x) => {
                out.extend_from_slice(b"set environment variable ");
                out.extend_from_slice(x);
                out.push(b'\n');
            }
            rules::Item::Other => {}
        }
    }
    out.extend_from_slice(b"allow connection\n");
    out
}

/// tcprulescheck: `args` holds the database.
///
/// # Errors
/// Usage (100) or an unreadable database (111).
pub fn tcprulescheck(args: &[OsString]) -> Result<(), Failure> {
    let Some(path) = args.first() else {
        return Err(log::usage("tcprulescheck rules.cdb"));
    };
    let ip = environ::var("TCPREMOTEIP").unwrap_or_else(|| b"0.0.0.0".to_vec());
    let info = environ::var("TCPREMOTEINFO");
    let host = environ::var("TCPREMOTEHOST");
    let fail = |e: &std::io::Error| {
        log::fatal(format!(
            "unable to read {}: {}",
            shown(path),
            errstr::text(e)
        ))
    };
    let db = rules::open(Path::new(path))
        .map_err(|e| fail(&e))?
        .ok_or_else(|| fail(&std::io::Error::from_raw_os_error(errstr::ENOENT)))?;
    let found = rules::lookup(&db, &ip, host.as_deref(), info.as_deref()).map_err(|e| fail(&e))?;
    let _ = sqmail::prog::out(&report(found.as_ref()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_as_tcprulescheck_prints_them() {
        let f = rules::Found {
            key: b"10.".to_vec(),
            data: b"+RELAYCLIENT=\0".to_vec(),
        };
        assert_eq!(
            report(Some(&f)),
            b"rule 10.:\nset environment variable RELAYCLIENT=\nallow connection\n"
        );
        let f = rules::Found {
            key: Vec::new(),
            data: b"D\0+X=1\0".to_vec(),
        };
        assert_eq!(report(Some(&f)), b"rule :\ndeny connection\n");
        assert_eq!(report(None), b"default:\nallow connection\n");
    }
}
