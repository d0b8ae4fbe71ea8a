//! The attachment filters of qmail-smtpd: `control/badmimetypes.cdb` (the first 9 base64
//! characters of a forbidden attachment: the encoding of its magic bytes) and
//! `control/badloadertypes.cdb` (5-character base64 signatures found anywhere in an
//! attachment), with their compilers qmail-badmimetypes and qmail-badloadertypes.
//!
//! The scanner follows the message body line by line. A base64 part starts after a
//! `Content-Transfer-Encoding: base64` header line and the blank line that ends its header;
//! its first line (at least 10 characters) is looked up in badmimetypes, and every line of
//! the part is searched for loader signatures. A line starting with `-` (a MIME boundary)
//! or a blank line ends the part. Only the first [`LINE_MAX`] bytes of a line are kept, so
//! the scanner needs a fixed amount of memory whatever the message.

use std::path::Path;

use crate::cdb;
use crate::fail::{Failure, Kind, Result};

/// Significant characters of a badmimetypes entry.
pub const MIMETYPE_LEN: usize = 9;
/// Significant characters of a badloadertypes entry.
pub const LOADER_LEN: usize = 5;
/// The bytes of one line the scanner keeps (qmail-smtpd's buffer).
pub const LINE_MAX: usize = 1024;

/// The control files, relative to the qmail home.
pub const MIME_SOURCE: &str = "control/badmimetypes";
/// The badmimetypes database.
pub const MIME_CDB: &str = "control/badmimetypes.cdb";
/// The loader source.
pub const LOADER_SOURCE: &str = "control/badloadertypes";
/// The badloadertypes database.
pub const LOADER_CDB: &str = "control/badloadertypes.cdb";

const BASE64_HEADER: &[u8] = b"content-transfer-encoding: base64";

fn compile_prefixes(home: &Path, src: &str, dst: &str, len: usize) -> Result<()> {
    let tmp = format!("{}.tmp", src);
    super::compile(home, src, dst, &tmp, &mut |line, add| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.get(..len) {
            Some(k) if line.first() != Some(&b'#') => add(k, b""),
            _ => Ok(()),
        }
    })
}

/// qmail-badmimetypes: the first 9 characters of each line of `control/badmimetypes` (lines
/// starting with `#` and shorter lines skipped) become keys of `control/badmimetypes.cdb`.
pub fn compile_mimetypes(home: &Path) -> Result<()> {
    compile_prefixes(home, MIME_SOURCE, MIME_CDB, MIMETYPE_LEN)
}

/// qmail-badloadertypes: as qmail-badmimetypes with 5 characters, for
/// `control/badloadertypes.cdb`.
pub fn compile_loadertypes(home: &Path) -> Result<()> {
    compile_prefixes(home, LOADER_SOURCE, LOADER_CDB, LOADER_LEN)
}

/// What the scanner found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A forbidden attachment type, or (with `BADMIMETYPE=!`) white space inside base64:
    /// log `Bad_MIME`, qmail-queue's envelope gets `M`.
    Mime(Vec<u8>),
    /// A loader signature: log `Bad_Loader`, envelope `L`.
    Loader(Vec<u8>),
}

impl Hit {
    /// The condition qmail-smtpd logs (`Reject::DATA::<condition>`).
    pub fn log_condition(&self) -> &'static str {
        match self {
            Hit::Mime(_) => "Bad_MIME",
            Hit::Loader(_) => "Bad_Loader",
        }
    }

    /// The letter s/qmail appends to the envelope it hands qmail-queue.
    pub fn envelope_letter(&self) -> u8 {
        match self {
            Hit::Mime(_) => b'M',
            Hit::Loader(_) => b'L',
        }
    }
}

/// The scanner, set up from qmail-smtpd's environment.
pub struct ContentFilter {
    mime_db: Option<cdb::Reader>,
    whitespace: bool,
    loader_db: Option<cdb::Reader>,
    loader_first: Option<u8>,
    line: Vec<u8>,
    lineno: u64,
    blank_at: u64,
    b64_at: u64,
    base_at: u64,
    saw_base64: bool,
    hit: Option<Hit>,
}

fn open(home: &Path, name: &str) -> Result<Option<cdb::Reader>> {
    cdb::Reader::open(&home.join(name))
        .map_err(|e| Failure::temp_io(Kind::Config, format!("unable to read {name}"), e))
}

impl ContentFilter {
    /// Sets the filters up from the values of BADMIMETYPE and BADLOADERTYPE (`None` when
    /// unset) for a client that is (`relay`) or is not a relay client. `None` when no filter
    /// is on: both unset or `-`, or their databases missing.
    ///
    /// BADMIMETYPE: empty or any other value uses badmimetypes.cdb; `!` also refuses white
    /// space inside base64 lines; `+` uses the database for clients that are not relay
    /// clients only; `-` turns the filter off. BADLOADERTYPE: one character, the first
    /// character of every signature looked for; `+` looks every window up and only for
    /// clients that are not relay clients; `-` turns it off.
    pub fn new(
        home: &Path,
        badmimetype: Option<&[u8]>,
        badloadertype: Option<&[u8]>,
        relay: bool,
    ) -> Result<Option<ContentFilter>> {
        let (mime_db, whitespace) = match badmimetype {
            None | Some(b"-") => (None, false),
            Some(b"+") if relay => (None, false),
            Some(b"!") => (open(home, MIME_CDB)?, true),
            Some(_) => (open(home, MIME_CDB)?, false),
        };
        let (loader_db, loader_first) = match badloadertype {
            None | Some(b"-") => (None, None),
            Some(b"+") if relay => (None, None),
            Some(b"+") => (open(home, LOADER_CDB)?, None),
            Some([c]) => (open(home, LOADER_CDB)?, Some(*c)),
            Some(_) => (None, None),
        };
        if mime_db.is_none() && !whitespace && loader_db.is_none() {
            return Ok(None);
        }
        Ok(Some(ContentFilter {
            mime_db,
            whitespace,
            loader_db,
            loader_first,
            line: Vec::with_capacity(LINE_MAX),
            lineno: 0,
            blank_at: 0,
            b64_at: 0,
            base_at: 0,
            saw_base64: false,
            hit: None,
        }))
    }

    /// Feeds body bytes (after CRLF to LF conversion and dot-unstuffing), in pieces of any
    /// size. Returns the first hit once there is one; later input is not examined.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<&Hit>> {
        let mut rest = data;
        while self.hit.is_none() && !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.keep(rest.get(..i).unwrap_or_default());
                    rest = rest.get(i + 1..).unwrap_or_default();
                    self.end_line()?;
                }
                None => {
                    self.keep(rest);
                    rest = &[];
                }
            }
        }
        Ok(self.hit.as_ref())
    }

    /// Ends the input: a last line without a newline is examined.
    pub fn finish(&mut self) -> Result<Option<&Hit>> {
        if self.hit.is_none() && !self.line.is_empty() {
            self.end_line()?;
        }
        Ok(self.hit.as_ref())
    }

    /// The first hit, if any.
    pub fn hit(&self) -> Option<&Hit> {
        self.hit.as_ref()
    }

    /// Whether a base64 part was seen (qmail-smtpd's `BASE64` setting runs the virus scanner
    /// only then).
    pub fn saw_base64(&self) -> bool {
        self.saw_base64
    }

    fn keep(&mut self, b: &[u8]) {
        let room = LINE_MAX.saturating_sub(self.line.len());
        self.line
            .extend_from_slice(b.get(..room.min(b.len())).unwrap_or_default());
    }

    fn end_line(&mut self) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let r = self.examine(&line);
        line.clear();
        self.line = line;
        r
    }

    fn examine(&mut self, line: &[u8]) -> Result<()> {
        self.lineno += 1;
        let n = self.lineno;
        if line.is_empty() {
            self.blank_at = n;
            self.base_at = 0;
        }
        if line.len() >= BASE64_HEADER.len()
            && line
                .get(..BASE64_HEADER.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(BASE64_HEADER))
        {
            self.b64_at = n;
        }
        if self.b64_at != 0
            && self.blank_at > self.b64_at
            && n == self.blank_at + 1
            && line.len() > MIMETYPE_LEN
        {
            self.base_at = n;
        }
        if line.first() == Some(&b'-') {
            self.b64_at = 0;
            self.base_at = 0;
        }
        if self.base_at == 0 {
            return Ok(());
        }
        let trouble =
            |e| Failure::temp_io(Kind::Config, "unable to read the attachment filters", e);
        if self.base_at == n {
            self.saw_base64 = true;
            if let (Some(db), Some(t)) = (&self.mime_db, line.get(..MIMETYPE_LEN))
                && db.get(t).map_err(trouble)?.is_some()
            {
                self.hit = Some(Hit::Mime(t.to_vec()));
                return Ok(());
            }
        }
        if line.len() <= LOADER_LEN {
            return Ok(());
        }
        if self.whitespace
            && let Some(i) = line.iter().position(|&b| b == b' ' || b == b'\t')
        {
            let from = i.saturating_sub(2);
            let to = (from + MIMETYPE_LEN).min(line.len());
            self.hit = Some(Hit::Mime(line.get(from..to).unwrap_or_default().to_vec()));
            return Ok(());
        }
        if let Some(db) = &self.loader_db {
            for w in line.windows(LOADER_LEN) {
                if self.loader_first.is_some_and(|c| w.first() != Some(&c)) {
                    continue;
                }
                if db.get(w).map_err(trouble)?.is_some() {
                    self.hit = Some(Hit::Loader(w.to_vec()));
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(tag: &str) -> std::path::PathBuf {
        let h = std::env::temp_dir().join(format!("sqmail-mime-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&h);
        std::fs::create_dir_all(h.join("control")).unwrap();
        h
    }

    const EXE: &[u8] = b"From: a\n\
        Content-Type: multipart/mixed; boundary=\"b\"\n\
        \n\
        --b\n\
        Content-Type: text/plain\n\
        \n\
        hello\n\
        --b\n\
        Content-Type: application/octet-stream; name=\"x.exe\"\n\
        Content-Transfer-Encoding: base64\n\
        \n\
        TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
        AAAAgAAAAA4fug4AtAnNIbgBTM0hVGhpcyBwcm9ncmFtIGNhbm5vdCBiZSBydW4gaW4gRE9TIG1v\n\
        --b--\n";

    #[test]
    fn an_exe_attachment_is_caught_by_its_first_line() {
        let h = home("exe");
        std::fs::write(
            h.join(MIME_SOURCE),
            b"# windows programs\nTVqQAAMAAAAE exe\nshort\n",
        )
        .unwrap();
        compile_mimetypes(&h).unwrap();
        let db = cdb::Reader::open(&h.join(MIME_CDB)).unwrap().unwrap();
        assert_eq!(db.records().unwrap(), vec![(b"TVqQAAMAA".to_vec(), vec![])]);
        let mut f = ContentFilter::new(&h, Some(b""), None, false)
            .unwrap()
            .unwrap();
        // Fed one byte at a time: the result does not depend on how the input is cut.
        for b in EXE {
            f.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(f.hit(), Some(&Hit::Mime(b"TVqQAAMAA".to_vec())));
        assert!(f.saw_base64());
        assert!(
            ContentFilter::new(&h, Some(b"+"), None, true)
                .unwrap()
                .is_none()
        );
        assert!(
            ContentFilter::new(&h, Some(b"-"), None, false)
                .unwrap()
                .is_none()
        );
        std::fs::remove_dir_all(h).unwrap();
    }

    #[test]
    fn loader_signatures_are_found_anywhere_in_the_part() {
        let h = home("loader");
        std::fs::write(h.join(LOADER_SOURCE), b"#x\nVGhpc\n").unwrap();
        compile_loadertypes(&h).unwrap();
        let mut f = ContentFilter::new(&h, None, Some(b"V"), false)
            .unwrap()
            .unwrap();
        assert_eq!(f.feed(EXE).unwrap(), Some(&Hit::Loader(b"VGhpc".to_vec())));
        let mut f = ContentFilter::new(&h, None, Some(b"+"), false)
            .unwrap()
            .unwrap();
        assert!(f.feed(EXE).unwrap().is_some());
        let mut f = ContentFilter::new(&h, None, Some(b"Q"), false)
            .unwrap()
            .unwrap();
        assert_eq!(f.feed(EXE).unwrap(), None);
        std::fs::remove_dir_all(h).unwrap();
    }

    #[test]
    fn text_outside_base64_parts_is_not_examined_and_memory_is_bounded() {
        let h = home("plain");
        std::fs::write(h.join(MIME_SOURCE), b"TVqQAAMAA\n").unwrap();
        compile_mimetypes(&h).unwrap();
        let mut f = ContentFilter::new(&h, Some(b"!"), None, false)
            .unwrap()
            .unwrap();
        f.feed(b"Subject: x\n\nTVqQAAMAAAAEAAAA with spaces\n")
            .unwrap();
        assert_eq!(f.hit(), None);
        let mut big = b"Content-Transfer-Encoding: base64\n\n".to_vec();
        big.extend(std::iter::repeat_n(b'A', 10 << 20));
        f.feed(&big).unwrap();
        assert!(f.line.capacity() <= 2 * LINE_MAX);
        assert_eq!(f.finish().unwrap(), None);
        let mut f = ContentFilter::new(&h, Some(b"!"), None, false)
            .unwrap()
            .unwrap();
        f.feed(b"Content-Transfer-Encoding: BASE64\r\n\r\nQUFBQUFBQUFB QUFB\r\n")
            .unwrap();
        assert_eq!(f.hit(), Some(&Hit::Mime(b"FB QUFB".to_vec())));
        std::fs::remove_dir_all(h).unwrap();
    }
}
