//! `control/morercpthosts`, compiled by qmail-newmrh into `control/morercpthosts.cdb`: one
//! record per host, keyed by the lower-cased line without trailing spaces, tabs and
//! newlines, with empty data. Empty lines and lines starting with `#` are skipped.
//!
//! The database is written through `control/morercpthosts.tmp` (qmail's name), fsynced and
//! renamed; a failure leaves the old one untouched. Every failure is temporary (exit 111).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::cdb;
use crate::fail::{Failure, Kind, Result};
use crate::users::{self, Ending};

/// The list, relative to the qmail home.
pub const SOURCE: &str = "control/morercpthosts";
/// The database qmail-smtpd reads.
pub const CDB: &str = "control/morercpthosts.cdb";
/// The temporary file, as qmail-newmrh names it.
pub const TMP: &str = "control/morercpthosts.tmp";

/// The key one line gives, if any: lower-cased, trailing spaces, tabs and newlines removed;
/// `None` for empty lines and comments.
pub fn key(line: &[u8]) -> Option<Vec<u8>> {
    let mut end = line.len();
    while end > 0 && matches!(line.get(end - 1), Some(b' ' | b'\t' | b'\n')) {
        end -= 1;
    }
    let k = line.get(..end)?;
    if k.is_empty() || k.first() == Some(&b'#') {
        return None;
    }
    Some(k.to_ascii_lowercase())
}

fn read(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Read, "unable to read control/morercpthosts", e)
}

fn write(e: io::Error) -> Failure {
    Failure::temp_io(
        Kind::Write,
        "unable to write to control/morercpthosts.tmp",
        e,
    )
}

/// Every key of a list read from `input`, in order.
pub fn keys(input: &mut impl BufRead) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    each_key(input, &mut |k| {
        out.push(k.to_vec());
        Ok(())
    })?;
    Ok(out)
}

fn each_key(input: &mut impl BufRead, add: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut line = Vec::new();
    loop {
        let ending = users::getln(input, &mut line, users::LINE_MAX_BYTES).map_err(read)?;
        if let Some(k) = key(&line) {
            add(&k)?;
        }
        if ending == Ending::Eof {
            return Ok(());
        }
    }
}

/// qmail-newmrh: compiles `home/control/morercpthosts` into `control/morercpthosts.cdb`.
pub fn compile(home: &Path) -> Result<()> {
    let mut input = BufReader::new(File::open(home.join(SOURCE)).map_err(read)?);
    let mut w =
        cdb::Writer::create(&home.join(CDB), &home.join(TMP), users::CDB_MODE).map_err(write)?;
    if let Err(f) = each_key(&mut input, &mut |k| w.add(k, b"").map_err(write)) {
        w.abandon();
        return Err(f);
    }
    w.finish().map_err(|e| {
        Failure::temp_io(
            Kind::Write,
            "unable to write control/morercpthosts.tmp and move it to control/morercpthosts.cdb",
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_lower_cased_keys() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"Example.COM\n", Some(b"example.com")),
            (b"example.net \t \n", Some(b"example.net")),
            (b"  lead.example\n", Some(b"  lead.example")),
            (b"last.example", Some(b"last.example")),
            (b"\n", None),
            (b" \t\n", None),
            (b"#comment\n", None),
            (b"# \n", None),
            (b"a#b\n", Some(b"a#b")),
            (b"cr.example\r\n", Some(b"cr.example\r")),
        ];
        for (line, want) in cases {
            assert_eq!(key(line).as_deref(), *want, "{line:?}");
        }
        let all = keys(&mut &b"A.example\n\n#x\nB.example"[..]).unwrap();
        assert_eq!(all, vec![b"a.example".to_vec(), b"b.example".to_vec()]);
    }

    #[test]
    fn compile_writes_empty_data_and_keeps_the_old_database_on_failure() {
        let home = std::env::temp_dir().join(format!("sqmail-mrh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("control")).unwrap();
        let e = compile(&home).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to read control/morercpthosts: No such file or directory"
        );
        std::fs::write(home.join(SOURCE), b"One.Example\n# no\ntwo.example  \n").unwrap();
        compile(&home).unwrap();
        let r = cdb::Reader::open(&home.join(CDB)).unwrap().unwrap();
        let want = vec![
            (b"one.example".to_vec(), vec![]),
            (b"two.example".to_vec(), vec![]),
        ];
        assert_eq!(r.records().unwrap(), want);
        assert!(!home.join(TMP).exists());
        std::fs::remove_dir_all(home).unwrap();
    }
}
