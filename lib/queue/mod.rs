//! The queue: its layout under `queue/`, the qmail-queue algorithm that puts a message into
//! it, and the caller's side of the qmail-queue interface.
//!
//! A message is known by the inode number of its file in `mess/`. Most directories are
//! split into `split` subdirectories (s/qmail's conf-split, default 23) by `id % split`.

use std::path::{Path, PathBuf};

use crate::control;
use crate::fail::{Failure, Kind, Result};

pub mod client;
pub mod inject;
pub mod maint;

pub mod scan;

/// s/qmail's default conf-split.
pub const DEFAULT_SPLIT: u64 = 23;
/// The largest split accepted.
pub const MAX_SPLIT: u64 = 10_000;

/// Directories split by message number.
pub const SPLIT_DIRS: [&str; 6] = ["mess", "intd", "todo", "info", "local", "remote"];
/// Directories that are not split.
pub const FLAT_DIRS: [&str; 3] = ["pid", "bounce", "lock"];

/// How the queue under a home directory is laid out.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The queue directory, `home/queue`.
    pub dir: PathBuf,
    /// The number of split subdirectories.
    pub split: u64,
}

impl Layout {
    /// The layout of `home/queue`, with the split from `control/conf-split` (default 23).
    pub fn open(home: &Path) -> Result<Layout> {
        let path = home.join("control/conf-split");
        let split = match std::fs::read(&path) {
            Ok(b) => control::leading_number(control::first_line(&b)).unwrap_or(DEFAULT_SPLIT),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_SPLIT,
            Err(e) => {
                return Err(Failure::temp_io(
                    Kind::Config,
                    "unable to read control/conf-split",
                    e,
                ));
            }
        };
        if split == 0 || split > MAX_SPLIT {
            return Err(Failure::temp(
                Kind::Config,
                "control/conf-split is out of range",
            ));
        }
        Ok(Layout {
            dir: home.join("queue"),
            split,
        })
    }

    /// The path of message `id` in a split directory, relative to the queue directory:
    /// `mess/<id % split>/<id>`.
    pub fn rel(&self, dir: &str, id: u64) -> PathBuf {
        PathBuf::from(format!("{dir}/{}/{id}", id % self.split))
    }

    /// The absolute path of message `id` in a split directory.
    pub fn path(&self, dir: &str, id: u64) -> PathBuf {
        self.dir.join(self.rel(dir, id))
    }
}
