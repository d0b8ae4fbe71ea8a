//! Constant databases in D. J. Bernstein's cdb format, byte-identical to cdbmake's.
//!
//! Reading and the table layout come from the `cdb2` crate; this module adds what qmail's
//! compilers do around it: a temporary file named as qmail names it, its mode, an fsync of
//! the data before the rename and of the directory after it, so a crash leaves either the old
//! database or the new one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::sys;

/// An open database.
pub struct Reader(cdb::CDB);

impl Reader {
    /// Opens a database; `Ok(None)` when the file does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Reader>> {
        match cdb::CDB::open(path) {
            Ok(c) => Ok(Some(Reader(c))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The data of the first record with this key.
    pub fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.0.get(key).transpose()
    }

    /// The data of every record with this key, in insertion order.
    pub fn find_all(&self, key: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.0.find(key).collect()
    }

    /// Every record, in file order.
    pub fn records(&self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.0.iter().collect()
    }
}

/// A database being written to a temporary file, renamed into place by [`Writer::finish`].
pub struct Writer {
    make: cdb::CDBMake,
    file: File,
    tmp: PathBuf,
    dst: PathBuf,
}

impl Writer {
    /// Starts writing `dst` through the temporary file `tmp` (same directory), created with
    /// `mode` (before the umask). An existing temporary file is replaced.
    pub fn create(dst: &Path, tmp: &Path, mode: u32) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(tmp)?;
        let make = cdb::CDBMake::new(file.try_clone()?)?;
        Ok(Writer {
            make,
            file,
            tmp: tmp.to_path_buf(),
            dst: dst.to_path_buf(),
        })
    }

    /// Starts writing `dst` through `dst.tmp`, the name qmail's compilers use.
    pub fn create_beside(dst: &Path, mode: u32) -> io::Result<Writer> {
        let mut tmp = dst.as_os_str().to_os_string();
        tmp.push(".tmp");
        Writer::create(dst, Path::new(&tmp), mode)
    }

    /// Adds a record; duplicate keys are kept.
    pub fn add(&mut self, key: &[u8], data: &[u8]) -> io::Result<()> {
        self.make.add(key, data)
    }

    /// Writes the tables, makes the file durable and renames it over the destination.
    pub fn finish(self) -> io::Result<()> {
        let Writer {
            make,
            file,
            tmp,
            dst,
        } = self;
        let done = make.finish().and_then(|()| file.sync_all());
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &dst)?;
        sys::fsync_dir(
            dst.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
    }

    /// Gives up: removes the temporary file.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The cdb hash of a key.
pub fn hash(key: &[u8]) -> u32 {
    key.iter()
        .fold(5381u32, |h, &c| h.wrapping_mul(33) ^ u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_reference_vectors() {
        assert_eq!(hash(b""), 5381);
        assert_eq!(hash(b"a"), 177_604);
        assert_eq!(hash(b"ab"), 5_860_902);
        assert_eq!(hash(b"!"), 177_540);
    }

    #[test]
    fn one_record_file_is_byte_exact() {
        let dir = std::env::temp_dir().join(format!("sqmail-cdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dst = dir.join("one.cdb");
        let mut w = Writer::create_beside(&dst, 0o644).unwrap();
        w.add(b"a", b"b").unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&dst).unwrap();
        assert_eq!(bytes.len(), 2074);
        let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        assert_eq!((word(0), word(4)), (2058, 0));
        assert_eq!((word(196 * 8), word(196 * 8 + 4)), (2058, 2));
        assert_eq!((word(197 * 8), word(197 * 8 + 4)), (2074, 0));
        assert_eq!(&bytes[2048..2058], b"\x01\0\0\0\x01\0\0\0ab");
        assert_eq!(&bytes[2058..2066], &[0u8; 8]);
        assert_eq!(&bytes[2066..2074], b"\xc4\xb5\x02\x00\x00\x08\x00\x00");
        let r = Reader::open(&dst).unwrap().unwrap();
        assert_eq!(r.get(b"a").unwrap(), Some(b"b".to_vec()));
        assert_eq!(r.get(b"b").unwrap(), None);
        assert!(!dir.join("one.cdb.tmp").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
