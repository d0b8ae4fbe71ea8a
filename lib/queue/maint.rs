//! qmail-qmaint: checks the queue's consistency, repairs what can be repaired safely, and
//! deletes single messages.
//!
//! The check is read-only. It reports one problem a line on standard output, as
//! `<path>: <problem>` with the path relative to `queue/`: files outside their split
//! directory, names that are not message numbers, missing split directories, files owned by
//! the wrong account (only when run as root), records that do not parse, and files that no
//! longer belong to a complete message (a `mess` file with neither `info` nor `todo` for 36
//! hours, `info` or `todo` without `mess`, `todo` without `intd`, `local`/`remote`/`bounce`
//! without `info`). Messages still being queued or preprocessed are never reported.
//!
//! Repairs and deletions change files that qmail-send owns, so they need its lock,
//! `lock/sendmutex`: repairs refuse to run while qmail-send holds it. Deleting a message
//! under a running qmail-send never removes a file qmail-send may be reading: every
//! recipient still to do in `local/` and `remote/` is marked done, the way qmail-send marks
//! a finished delivery, and `bounce/` is removed; qmail-send then finishes the message
//! itself at its next pass (SIGALRM makes that now).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, Metadata};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::Layout;
use super::scan::RECORD_MAX_BYTES;
use crate::fail::{Failure, Kind, Result};
use crate::ids::{Ids, User};
use crate::sys;

/// A `mess` file with neither `info` nor `todo` this long after its last access is garbage
/// (qmail's OSSIFIED, 36 hours; qmail-send's own cleanup uses the same rule).
pub const GARBAGE_SECS: i64 = 129_600;
/// Exit code: problems were found, or some were left unrepaired (s/qmail's warning code).
pub const EXIT_PROBLEMS: u8 = 99;
/// Exit code: a queue directory cannot be read (s/qmail's code).
pub const EXIT_DIRECTORY: u8 = 110;
/// The longest answer read from standard input in interactive mode.
const ANSWER_MAX_BYTES: u64 = 100;
/// The usage line.
pub const USAGE: &str = "usage: qmail-qmaint [ -f | -i | -d messid | -D ]";

/// What the program is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Ask before each repair (`-i`).
    Ask,
    /// Report problems only (no option).
    Check,
    /// Delete one message (`-d messid`).
    Delete(u64),
    /// Repair every problem that can be repaired (`-f`).
    Fix,
    /// Remove stale DKIM staging files (`-D`).
    PurgeDkim,
}

/// Parses the arguments after the program name; a usage failure is permanent.
pub fn parse_args(args: &[&[u8]]) -> Result<Command> {
    let usage = || Failure::perm(Kind::Usage, USAGE);
    let id = |b: &[u8]| -> Result<u64> {
        let b = b.strip_prefix(b"#").unwrap_or(b);
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return Err(usage());
        }
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(usage)
    };
    match args {
        [] => Ok(Command::Check),
        [b"-f"] => Ok(Command::Fix),
        [b"-i"] => Ok(Command::Ask),
        [b"-D"] => Ok(Command::PurgeDkim),
        [b"-d", n] => Ok(Command::Delete(id(n)?)),
        [a] if a.starts_with(b"-d") && a.len() > 2 => Ok(Command::Delete(id(&a[2..])?)),
        _ => Err(usage()),
    }
}

/// The exit code for a failure: 110 when a queue directory cannot be read, else 111
/// (temporary) or 100 (permanent).
pub fn exit_code(f: &Failure) -> u8 {
    if f.kind() == Kind::Queue {
        EXIT_DIRECTORY
    } else {
        f.exit_code()
    }
}

/// Runs a command on the queue of `home`. Reports go to `out`; in interactive mode the
/// answers are read from `answers`. Returns 0, or [`EXIT_PROBLEMS`].
pub fn run(
    home: &Path,
    cmd: Command,
    out: &mut impl Write,
    answers: &mut impl BufRead,
) -> Result<u8> {
    let layout = Layout::open(home)?;
    let owners = if sys::euid() == 0 {
        let ids = Ids::load(home)?;
        Some(Owners {
            queue: (ids.uid(User::Qmailq)?, name(&ids, User::Qmailq)),
            send: (ids.uid(User::Qmails)?, name(&ids, User::Qmails)),
        })
    } else {
        None
    };
    let now = crate::date::now();
    let mode = match cmd {
        Command::Check => Mode::Check,
        Command::Fix => Mode::Fix,
        Command::Ask => Mode::Ask,
        Command::Delete(id) => {
            let line = delete(&layout, id, now)?;
            write_out(out, line.as_bytes())?;
            return Ok(0);
        }
        Command::PurgeDkim => return purge_dkim(&layout, now, out),
    };
    let _mutex = match mode {
        Mode::Check => None,
        Mode::Fix | Mode::Ask => Some(stopped(&layout)?),
    };
    let mut m = Maint {
        layout: &layout,
        owners,
        now,
        mode,
        out,
        answers,
        left: 0,
    };
    m.inspect()?;
    Ok(if m.left == 0 { 0 } else { EXIT_PROBLEMS })
}

fn name(ids: &Ids, u: User) -> String {
    String::from_utf8_lossy(ids.user_name(u)).into_owned()
}

fn write_out(out: &mut impl Write, b: &[u8]) -> Result<()> {
    out.write_all(b)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::temp_io(Kind::Write, "unable to write output", e))
}

// ---------------------------------------------------------------------- qmail-send's lock

/// Whether qmail-send runs: `Ok(Some(lock))` when it does not (the lock is then held until
/// dropped, so that it cannot start meanwhile), `Ok(None)` when it does.
fn sendmutex(layout: &Layout) -> Result<Option<File>> {
    let p = layout.dir.join("lock/sendmutex");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .map_err(|e| Failure::temp_io(Kind::System, "unable to open lock/sendmutex", e))?;
    match sys::try_lock_exclusive(&f) {
        Ok(true) => Ok(Some(f)),
        Ok(false) => Ok(None),
        Err(e) => Err(Failure::temp_io(
            Kind::System,
            "unable to lock lock/sendmutex",
            e,
        )),
    }
}

/// The lock, or a temporary failure when qmail-send runs.
fn stopped(layout: &Layout) -> Result<File> {
    sendmutex(layout)?.ok_or_else(|| {
        Failure::temp(
            Kind::System,
            "qmail-send is running; stop it before repairing the queue",
        )
    })
}

// ---------------------------------------------------------------------- problems and fixes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ask,
    Check,
    Fix,
}

/// A repair, applied to the problem's path.
#[derive(Clone, Debug)]
enum Fix {
    /// Set the file's owner.
    Chown(u32, String),
    /// Hard-link the file to another name.
    Link(String),
    /// Create the directory with the mode and owner of its parent.
    Mkdir,
    /// Remove these files (missing ones are fine), in this order.
    Remove(Vec<String>),
    /// Rename the file.
    Rename(String),
    /// Remove the (empty) directory.
    Rmdir,
}

impl Fix {
    fn verb(&self) -> String {
        match self {
            Fix::Chown(_, n) => format!("set owner to {n}"),
            Fix::Link(to) => format!("link to {to}"),
            Fix::Mkdir => "create".into(),
            Fix::Remove(_) | Fix::Rmdir => "remove".into(),
            Fix::Rename(to) => format!("move to {to}"),
        }
    }

    fn done(&self) -> String {
        match self {
            Fix::Chown(_, n) => format!("owner set to {n}"),
            Fix::Link(to) => format!("linked to {to}"),
            Fix::Mkdir => "created".into(),
            Fix::Remove(_) | Fix::Rmdir => "removed".into(),
            Fix::Rename(to) => format!("moved to {to}"),
        }
    }

    fn apply(&self, q: &Path, path: &str) -> io::Result<()> {
        let p = q.join(path);
        match self {
            Fix::Chown(uid, _) => std::os::unix::fs::chown(&p, Some(*uid), None),
            Fix::Link(to) => fs::hard_link(&p, q.join(to)).and_then(|()| sync_parent(q, to)),
            Fix::Mkdir => {
                let parent = fs::metadata(p.parent().unwrap_or(q))?;
                fs::create_dir(&p)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(parent.mode() & 0o7777))?;
                if sys::euid() == 0 {
                    std::os::unix::fs::chown(&p, Some(parent.uid()), Some(parent.gid()))?;
                }
                sync_parent(q, path)
            }
            Fix::Remove(files) => {
                for f in files {
                    match fs::remove_file(q.join(f)) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => sync_parent(q, f)?,
                    }
                }
                Ok(())
            }
            Fix::Rename(to) => {
                if fs::symlink_metadata(q.join(to)).is_ok() {
                    return Err(io::Error::from(io::ErrorKind::AlreadyExists));
                }
                fs::rename(&p, q.join(to))
                    .and_then(|()| sync_parent(q, to))
                    .and_then(|()| sync_parent(q, path))
            }
            Fix::Rmdir => fs::remove_dir(&p).and_then(|()| sync_parent(q, path)),
        }
    }
}

fn sync_parent(q: &Path, rel: &str) -> io::Result<()> {
    let p = q.join(rel);
    sys::fsync_dir(p.parent().unwrap_or(q))
}

/// One finding: where, what, and how to repair it if that is safe.
struct Problem {
    path: String,
    text: String,
    fix: Option<Fix>,
}

fn problem(path: &str, text: impl Into<String>, fix: Option<Fix>) -> Problem {
    Problem {
        path: path.to_string(),
        text: text.into(),
        fix,
    }
}

/// The expected owners, known only when running as root.
struct Owners {
    queue: (u32, String),
    send: (u32, String),
}

/// A message file found in the queue.
struct Entry {
    rel: String,
    meta: Metadata,
}

/// The message files by directory and number.
type Index = BTreeMap<&'static str, BTreeMap<u64, Entry>>;

struct Maint<'a, W, R> {
    layout: &'a Layout,
    owners: Option<Owners>,
    now: i64,
    mode: Mode,
    out: &'a mut W,
    answers: &'a mut R,
    left: usize,
}

impl<W: Write, R: BufRead> Maint<'_, W, R> {
    /// Reports (and in the repair modes repairs) one problem; returns true when repaired.
    fn handle(&mut self, p: &Problem) -> Result<bool> {
        let q = &self.layout.dir;
        let head = format!("{}: {}", p.path, p.text);
        let Some(fix) = p.fix.as_ref().filter(|_| self.mode != Mode::Check) else {
            self.left += 1;
            write_out(self.out, format!("{head}\n").as_bytes())?;
            return Ok(false);
        };
        if self.mode == Mode::Ask {
            write_out(self.out, format!("{head}; {}? ", fix.verb()).as_bytes())?;
            let mut answer = Vec::new();
            let mut input = Read::take(&mut *self.answers, ANSWER_MAX_BYTES);
            input
                .read_until(b'\n', &mut answer)
                .map_err(|e| Failure::temp_io(Kind::Read, "unable to read answer", e))?;
            if !matches!(answer.first(), Some(b'y' | b'Y')) {
                self.left += 1;
                write_out(self.out, b"skipped\n")?;
                return Ok(false);
            }
        } else {
            write_out(self.out, format!("{head}; ").as_bytes())?;
        }
        match fix.apply(q, &p.path) {
            Ok(()) => {
                write_out(self.out, format!("{}\n", fix.done()).as_bytes())?;
                Ok(true)
            }
            Err(e) => {
                self.left += 1;
                let line = format!("unable to {}: {}\n", fix.verb(), sys::strerror(&e));
                write_out(self.out, line.as_bytes())?;
                Ok(false)
            }
        }
    }

    fn inspect(&mut self) -> Result<()> {
        let (mut structure, candidates) = scan_dirs(self.layout)?;
        let mut index = Index::new();
        let mut moves = Vec::new();
        for (dir, id, entry) in candidates {
            let canon = canonical(self.layout, dir, id);
            if entry.rel == canon {
                index.entry(dir).or_default().insert(id, entry);
            } else if fs::symlink_metadata(self.layout.dir.join(&canon)).is_ok() {
                let text = format!("in the wrong split directory; {canon} exists too");
                structure.push((1, problem(&entry.rel, text, None)));
            } else {
                let fix = Some(Fix::Rename(canon.clone()));
                let p = problem(&entry.rel, "in the wrong split directory", fix);
                moves.push((p.path.clone(), dir, id, entry));
                structure.push((1, p));
            }
        }
        structure.sort_by(|a, b| (a.0, &a.1.path).cmp(&(b.0, &b.1.path)));
        for (_, p) in &structure {
            let fixed = self.handle(p)?;
            if let Some(i) = moves.iter().position(|m| m.0 == p.path) {
                let (_, dir, id, mut entry) = moves.swap_remove(i);
                if fixed {
                    entry.rel = canonical(self.layout, dir, id);
                }
                index.entry(dir).or_default().entry(id).or_insert(entry);
            }
        }
        let ids: BTreeSet<u64> = index.values().flat_map(|m| m.keys().copied()).collect();
        for id in ids {
            for p in self.files(&index, id)? {
                self.handle(&p)?;
            }
            for p in consistency(&index, id, self.now) {
                self.handle(&p)?;
            }
        }
        Ok(())
    }

    /// Owner and record problems of message `id`'s files.
    fn files(&self, index: &Index, id: u64) -> Result<Vec<Problem>> {
        let mut v = Vec::new();
        for dir in ALL_DIRS {
            let Some(e) = index.get(dir).and_then(|m| m.get(&id)) else {
                continue;
            };
            if let Some(o) = &self.owners {
                let (uid, name) = match dir {
                    "mess" | "intd" | "todo" => &o.queue,
                    _ => &o.send,
                };
                if e.meta.uid() != *uid {
                    let text = format!("owned by uid {}, not {name}", e.meta.uid());
                    v.push(problem(&e.rel, text, Some(Fix::Chown(*uid, name.clone()))));
                }
            }
            let kind = match dir {
                "info" => Records::Info,
                "local" | "remote" => Records::Channel,
                "todo" => Records::Todo,
                _ => continue,
            };
            let f = File::open(self.layout.dir.join(&e.rel));
            let bad = f.and_then(|f| bad_records(kind, &mut BufReader::new(f)));
            match bad {
                Ok(None) => {}
                Ok(Some(why)) => v.push(problem(&e.rel, format!("unparsable: {why}"), None)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    let text = format!("unable to read: {}", sys::strerror(&err));
                    v.push(problem(&e.rel, text, None));
                }
            }
        }
        Ok(v)
    }
}

/// Every directory holding message files, in report order.
const ALL_DIRS: [&str; 7] = ["mess", "intd", "todo", "info", "local", "remote", "bounce"];

fn canonical(layout: &Layout, dir: &str, id: u64) -> String {
    if dir == "bounce" {
        format!("bounce/{id}")
    } else {
        format!("{dir}/{}/{id}", id % layout.split)
    }
}

/// The consistency problems of message `id`.
fn consistency(index: &Index, id: u64, now: i64) -> Vec<Problem> {
    let get = |d: &str| index.get(d).and_then(|m| m.get(&id));
    let rel = |d: &str| get(d).map(|e| e.rel.clone());
    let (mess, intd, todo, info) = (get("mess"), get("intd"), get("todo"), get("info"));
    let mut v = Vec::new();
    let remove = |ds: &[&str]| Some(Fix::Remove(ds.iter().filter_map(|d| rel(d)).collect()));
    match (mess, info, todo, intd) {
        (None, Some(e), _, _) => v.push(problem(
            &e.rel,
            "no mess file",
            remove(&["local", "remote", "bounce", "todo", "intd", "info"]),
        )),
        (None, None, Some(e), _) => {
            v.push(problem(&e.rel, "no mess file", remove(&["todo", "intd"])));
        }
        (None, None, None, Some(e)) => {
            v.push(problem(&e.rel, "no mess file", remove(&["intd"])));
        }
        (Some(m), None, None, _) if now > m.meta.atime().saturating_add(GARBAGE_SECS) => {
            let text = "garbage: no info or todo file for 36 hours";
            v.push(problem(&m.rel, text, remove(&["intd", "mess"])));
        }
        (Some(_), None, Some(t), None) => {
            let to = t.rel.replacen("todo/", "intd/", 1);
            v.push(problem(&t.rel, "no intd file", Some(Fix::Link(to))));
        }
        (Some(_), Some(_), Some(t), None) => {
            let text = "no intd file, but already preprocessed";
            v.push(problem(&t.rel, text, remove(&["todo"])));
        }
        _ => {}
    }
    let todo_lives = todo.is_some() && mess.is_some();
    if info.is_none() && !todo_lives {
        for d in ["local", "remote"] {
            if let Some(e) = get(d) {
                v.push(problem(&e.rel, "no info file", remove(&[d])));
            }
        }
    }
    if info.is_none()
        && let Some(e) = get("bounce")
    {
        v.push(problem(&e.rel, "no info file", remove(&["bounce"])));
    }
    v
}

// ---------------------------------------------------------------------- scanning

/// A message number: digits only.
fn number(name: &[u8]) -> Option<u64> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

fn read_dir(q: &Path, rel: &str) -> Result<Vec<(Vec<u8>, Metadata)>> {
    let fail = |e| Failure::temp_io(Kind::Queue, format!("unable to read directory {rel}"), e);
    let mut v = Vec::new();
    for e in fs::read_dir(q.join(rel)).map_err(fail)? {
        let e = e.map_err(fail)?;
        let meta = e.metadata().map_err(fail)?;
        v.push((sys::bytes(&e.file_name()).to_vec(), meta));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

type Found = (Vec<(u8, Problem)>, Vec<(&'static str, u64, Entry)>);

/// Walks the message directories: structural problems (with their sort group: 0 creates a
/// directory, 1 concerns a file, 2 removes a directory) and the message files found.
fn scan_dirs(layout: &Layout) -> Result<Found> {
    let q = &layout.dir;
    let mut problems = Vec::new();
    let mut found = Vec::new();
    let unexpected = |rel: &str, meta: &Metadata| {
        if meta.is_dir() {
            (2, problem(rel, "unexpected directory", Some(Fix::Rmdir)))
        } else {
            (1, problem(rel, "unexpected file", None))
        }
    };
    for dir in ALL_DIRS {
        let mut subdirs = BTreeSet::new();
        for (name, meta) in read_dir(q, dir)? {
            let rel = format!("{dir}/{}", String::from_utf8_lossy(&name));
            let n = number(&name);
            match n {
                Some(n) if meta.is_dir() && dir != "bounce" => {
                    if n >= layout.split {
                        problems.push(unexpected(&rel, &meta));
                    } else {
                        subdirs.insert(n);
                    }
                    file_entries(q, dir, &rel, &mut problems, &mut found)?;
                }
                Some(id) if meta.is_file() => found.push((dir, id, Entry { rel, meta })),
                Some(_) => problems.push((1, problem(&rel, "not a regular file", None))),
                None => problems.push(unexpected(&rel, &meta)),
            }
        }
        if dir != "bounce" {
            for n in (0..layout.split).filter(|n| !subdirs.contains(n)) {
                let rel = format!("{dir}/{n}");
                problems.push((
                    0,
                    problem(&rel, "missing split directory", Some(Fix::Mkdir)),
                ));
            }
        }
    }
    Ok((problems, found))
}

fn file_entries(
    q: &Path,
    dir: &'static str,
    sub: &str,
    problems: &mut Vec<(u8, Problem)>,
    found: &mut Vec<(&'static str, u64, Entry)>,
) -> Result<()> {
    for (name, meta) in read_dir(q, sub)? {
        let rel = format!("{sub}/{}", String::from_utf8_lossy(&name));
        match number(&name) {
            Some(id) if meta.is_file() => found.push((dir, id, Entry { rel, meta })),
            Some(_) => problems.push((1, problem(&rel, "not a regular file", None))),
            None => problems.push((1, problem(&rel, "unexpected file", None))),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- records

/// Which records a queue file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Records {
    /// `local/` and `remote/`: `T` (to do) and `D` (done) records.
    Channel,
    /// `info/`: one `F` record.
    Info,
    /// `todo/`: `u` and `p`, then `F`, then `T` records.
    Todo,
}

/// Why a queue file's records do not parse, if they do not. Every record is bounded by
/// [`RECORD_MAX_BYTES`].
pub fn bad_records(kind: Records, input: &mut impl BufRead) -> io::Result<Option<&'static str>> {
    let limit = u64::try_from(RECORD_MAX_BYTES).unwrap_or(u64::MAX);
    let mut rec = Vec::with_capacity(256);
    let mut sender = false;
    loop {
        rec.clear();
        Read::take(&mut *input, limit).read_until(0, &mut rec)?;
        let Some(&letter) = rec.first() else { break };
        if rec.last() != Some(&0) {
            return Ok(Some(if rec.len() >= RECORD_MAX_BYTES {
                "record too long"
            } else {
                "incomplete last record"
            }));
        }
        let ok = match (kind, letter) {
            (Records::Channel, b'T' | b'D') => true,
            (Records::Info, b'F') | (Records::Todo, b'F') => !sender,
            (Records::Todo, b'u' | b'p') => !sender,
            (Records::Todo, b'T') => sender,
            _ => false,
        };
        if !ok {
            return Ok(Some(if sender || kind == Records::Channel {
                "unknown record type"
            } else {
                "no sender record"
            }));
        }
        sender |= letter == b'F';
    }
    Ok((kind != Records::Channel && !sender).then_some("no sender record"))
}

// ---------------------------------------------------------------------- deleting

/// Deletes message `id`; returns the line to report.
fn delete(layout: &Layout, id: u64, now: i64) -> Result<String> {
    let q = &layout.dir;
    let rel = |d: &str| canonical(layout, d, id);
    let mut has = BTreeMap::new();
    for d in ALL_DIRS {
        match fs::symlink_metadata(q.join(rel(d))) {
            Ok(m) => {
                has.insert(d, m);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let what = format!("unable to stat {}", rel(d));
                return Err(Failure::temp_io(Kind::System, what, e));
            }
        }
    }
    if has.is_empty() {
        let what = format!("message #{id} is not in the queue");
        return Err(Failure::perm(Kind::Input, what));
    }
    let young = has
        .get("mess")
        .is_some_and(|m| now <= m.atime().saturating_add(GARBAGE_SECS));
    if young && !has.contains_key("info") && !has.contains_key("todo") {
        let what = format!("message #{id} is still being queued; try again later");
        return Err(Failure::temp(Kind::System, what));
    }
    let lock = sendmutex(layout)?;
    if lock.is_none() && has.contains_key("todo") {
        let what = format!(
            "message #{id} is not yet preprocessed and qmail-send is running; try again shortly"
        );
        return Err(Failure::temp(Kind::System, what));
    }
    if lock.is_none() && has.contains_key("info") {
        remove(q, &rel("bounce"))?;
        for d in ["local", "remote"] {
            if has.contains_key(d) {
                mark_done(q, &rel(d))?;
            }
        }
        // A delivery that was in flight may have failed meanwhile and started a new one.
        remove(q, &rel("bounce"))?;
        return Ok(format!(
            "#{id}: marked done; qmail-send removes it at its next pass\n"
        ));
    }
    // qmail-send is stopped (its lock is held until the end), or does not know the message.
    // todo goes first, so that no qmail-todo preprocesses it again; info last, so that an
    // interruption leaves a message qmail-send finishes by itself.
    for d in ["todo", "local", "remote", "bounce", "intd", "mess", "info"] {
        remove(q, &rel(d))?;
    }
    drop(lock);
    Ok(format!("#{id}: removed\n"))
}

fn remove(q: &Path, rel: &str) -> Result<()> {
    match fs::remove_file(q.join(rel)) {
        Ok(()) => sync_parent(q, rel)
            .map_err(|e| Failure::temp_io(Kind::System, format!("unable to sync {rel}"), e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::temp_io(
            Kind::System,
            format!("unable to remove {rel}"),
            e,
        )),
    }
}

/// Overwrites the `T` of every record with `D`, as qmail-send marks a finished delivery:
/// one byte at the record's offset.
fn mark_done(q: &Path, rel: &str) -> Result<()> {
    let fail = |e| Failure::temp_io(Kind::System, format!("unable to mark {rel}"), e);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(q.join(rel))
        .map_err(fail)?;
    let mut input = BufReader::new(f.try_clone().map_err(fail)?);
    let limit = u64::try_from(RECORD_MAX_BYTES).unwrap_or(u64::MAX);
    let mut rec = Vec::with_capacity(256);
    let mut pos: u64 = 0;
    loop {
        rec.clear();
        let n = Read::take(&mut input, limit)
            .read_until(0, &mut rec)
            .map_err(fail)?;
        if n == 0 || rec.last() != Some(&0) {
            break;
        }
        if rec.first() == Some(&b'T') {
            f.write_all_at(b"D", pos).map_err(fail)?;
        }
        pos = pos.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
    if !rec.is_empty() && rec.len() >= RECORD_MAX_BYTES {
        let what = format!("unable to mark {rel}: record too long");
        return Err(Failure::perm(Kind::Input, what));
    }
    f.sync_all().map_err(fail)
}

// ---------------------------------------------------------------------- DKIM staging

/// Removes files under `queue/dkim` untouched for [`GARBAGE_SECS`]: remnants of a signer or
/// verifier that died (a live one never takes that long).
fn purge_dkim(layout: &Layout, now: i64, out: &mut impl Write) -> Result<u8> {
    let q = &layout.dir;
    if !q.join("dkim").is_dir() {
        return Ok(0);
    }
    let mut files = Vec::new();
    for (name, meta) in read_dir(q, "dkim")? {
        let rel = format!("dkim/{}", String::from_utf8_lossy(&name));
        if meta.is_dir() {
            for (n, m) in read_dir(q, &rel)? {
                files.push((format!("{rel}/{}", String::from_utf8_lossy(&n)), m));
            }
        } else {
            files.push((rel, meta));
        }
    }
    for (rel, meta) in files {
        if meta.is_file() && now > meta.mtime().saturating_add(GARBAGE_SECS) {
            remove(q, &rel)?;
            write_out(out, format!("{rel}: removed\n").as_bytes())?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_strictly() {
        let ok: &[(&[&[u8]], Command)] = &[
            (&[], Command::Check),
            (&[b"-f"], Command::Fix),
            (&[b"-i"], Command::Ask),
            (&[b"-D"], Command::PurgeDkim),
            (&[b"-d", b"123"], Command::Delete(123)),
            (&[b"-d123"], Command::Delete(123)),
            (&[b"-d", b"#7"], Command::Delete(7)),
        ];
        for (args, want) in ok {
            assert_eq!(parse_args(args).unwrap(), *want, "{args:?}");
        }
        let bad: &[&[&[u8]]] = &[
            &[b"-x"],
            &[b"-d"],
            &[b"-d", b"12a"],
            &[b"-d", b""],
            &[b"-f", b"-i"],
            &[b"-d", b"99999999999999999999999"],
        ];
        for args in bad {
            let e = parse_args(args).unwrap_err();
            assert_eq!(e.exit_code(), 100, "{args:?}");
        }
    }

    #[test]
    fn records_are_checked_per_file_kind() {
        let cases: &[(Records, &[u8], Option<&str>)] = &[
            (Records::Channel, b"Ta@b\0Dc@d\0", None),
            (Records::Channel, b"", None),
            (Records::Channel, b"Ta@b\0Xc\0", Some("unknown record type")),
            (Records::Channel, b"Ta@b", Some("incomplete last record")),
            (Records::Info, b"Fa@b\0", None),
            (Records::Info, b"F\0", None),
            (Records::Info, b"", Some("no sender record")),
            (Records::Info, b"Ta@b\0", Some("no sender record")),
            (Records::Info, b"Fa\0Fb\0", Some("unknown record type")),
            (Records::Todo, b"u0\0p1\0Fa@b\0Tc@d\0", None),
            (Records::Todo, b"u0\0p1\0Tc@d\0", Some("no sender record")),
            (Records::Todo, b"u0\0p1\0", Some("no sender record")),
            (Records::Todo, b"Fa\0Tb\0u0\0", Some("unknown record type")),
        ];
        for (kind, b, want) in cases {
            assert_eq!(bad_records(*kind, &mut &b[..]).unwrap(), *want, "{b:?}");
        }
        let fits = [&b"T"[..], &vec![b'a'; RECORD_MAX_BYTES - 2], b"\0"].concat();
        assert_eq!(bad_records(Records::Channel, &mut &fits[..]).unwrap(), None);
        let long = [&b"T"[..], &vec![b'a'; RECORD_MAX_BYTES - 1], b"\0"].concat();
        assert_eq!(
            bad_records(Records::Channel, &mut &long[..]).unwrap(),
            Some("record too long")
        );
    }
}
