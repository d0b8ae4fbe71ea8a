//! Installing an instance: qmail's accounts and groups, the directory tree with the owners
//! and modes s/qmail gives it (sqmail.md 8.3 and 4.1), the minimal control files, the
//! programs with their modes and setuid bits. `make setup` and the test harness both use it,
//! so installation is tested by every test.
//!
//! Running it again on an existing instance repairs owners and modes and adds what is
//! missing; it never overwrites a control file or an alias file that exists.
//!
//! It also gives the instance a self-signed server certificate ([`cert`]) and the run
//! scripts of its SMTP services with their compiled access rules ([`service`]).

pub mod cert;
pub mod service;

use std::io::{self, Write};
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fail::{Failure, Kind, Result};
use crate::ids::{Group, Ids, User};
use crate::queue::{FLAT_DIRS, SPLIT_DIRS};
use crate::sys;

/// Who owns and runs the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// qmail's separate accounts; needs root.
    Multi,
    /// One account and its group own and run everything.
    Single {
        /// The account.
        user: Vec<u8>,
        /// Its group.
        group: Vec<u8>,
    },
}

/// The account a single-user instance gets when root asks for one: deliveries never run as
/// uid 0.
pub const SINGLE_ACCOUNT: &str = "sqmail";

/// What to install where.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The instance's home directory.
    pub home: PathBuf,
    /// Separate accounts or one.
    pub mode: Mode,
    /// Where the built programs are; `None` installs none.
    pub programs: Option<PathBuf>,
    /// Symbolic links to the programs instead of copies (no setuid then).
    pub link: bool,
    /// The host name for `control/me`; `None` means the kernel's host name.
    pub me: Option<Vec<u8>>,
    /// The queue split (s/qmail's conf-split).
    pub split: u64,
}

/// Owner and mode of every program this package installs; those not listed are
/// root:qmail 0755. s/qmail's hier.c.
pub const PROGRAM_MODES: &[(&str, User, Group, u32)] = &[
    ("qmail-queue", User::Qmailq, Group::Qmail, 0o4711),
    ("qmail-newu", User::Root, Group::Qmail, 0o700),
    ("qmail-newmrh", User::Root, Group::Qmail, 0o700),
    ("qmail-recipients", User::Root, Group::Qmail, 0o700),
    ("qmail-mfrules", User::Root, Group::Qmail, 0o700),
    ("qmail-badmimetypes", User::Root, Group::Qmail, 0o700),
    ("qmail-badloadertypes", User::Root, Group::Qmail, 0o700),
    ("qmail-authuser", User::Root, Group::Qmail, 0o6711),
    ("qmail-vmailuser", User::Root, Group::Qmail, 0o6711),
    ("qmail-pw2u", User::Root, Group::Qmail, 0o711),
    ("qmail-start", User::Root, Group::Qmail, 0o700),
    ("qmail-lspawn", User::Root, Group::Qmail, 0o700),
    ("qmail-getpw", User::Root, Group::Qmail, 0o711),
    ("qmail-local", User::Root, Group::Qmail, 0o711),
    ("qmail-remote", User::Root, Group::Qmail, 0o711),
    ("qmail-rspawn", User::Root, Group::Qmail, 0o711),
    ("qmail-clean", User::Root, Group::Qmail, 0o711),
    ("qmail-send", User::Root, Group::Qmail, 0o711),
    ("qmail-todo", User::Root, Group::Qmail, 0o711),
];

/// Programs never installed into an instance's `bin/`.
const NOT_INSTALLED: &[&str] = &["sqmail-setup"];

struct Owners {
    ids: Ids,
    single: bool,
}

impl Owners {
    fn uid(&self, u: User) -> Result<u32> {
        self.ids.uid(u)
    }
    fn gid(&self, g: Group) -> Result<u32> {
        self.ids.gid(g)
    }
}

/// Creates accounts if needed, then installs or repairs the instance.
pub fn install(plan: &Plan, say: &mut dyn FnMut(&str)) -> Result<()> {
    if plan.split == 0 || plan.split > crate::queue::MAX_SPLIT {
        return Err(Failure::perm(
            Kind::Usage,
            format!(
                "the queue split must be between 1 and {}",
                crate::queue::MAX_SPLIT
            ),
        ));
    }
    let existing = crate::queue::Layout::open(&plan.home).map(|l| l.split).ok();
    if plan.home.join("queue/mess").is_dir() && existing != Some(plan.split) {
        return Err(Failure::perm(
            Kind::Usage,
            "the queue exists with another split; a split can only be chosen for a new queue",
        ));
    }
    let ids = match &plan.mode {
        Mode::Multi => {
            if sys::euid() != 0 {
                return Err(Failure::perm(
                    Kind::Usage,
                    "a multi-user instance needs root",
                ));
            }
            let ids = Ids::load(&plan.home)?;
            ensure_accounts(&ids, &plan.home, say)?;
            ids
        }
        Mode::Single { user, group } => Ids::single(user, group),
    };
    let o = Owners {
        ids,
        single: !matches!(plan.mode, Mode::Multi),
    };
    tree(plan, &o)?;
    queue(plan, &o)?;
    control(plan, &o)?;
    aliases(plan, &o)?;
    if o.single {
        single_user_assign(plan, &o)?;
    }
    if let Some(src) = &plan.programs {
        programs(plan, src, &o, say)?;
    }
    let me = std::fs::read(plan.home.join("control/me")).map_err(sysio(&plan.home))?;
    let me = me.split(|&b| b == b'\n').next().unwrap_or_default();
    cert::install(&plan.home, me.trim_ascii(), &o)?;
    service::install(&plan.home, &o, say)?;
    say(&format!("instance ready in {}", plan.home.display()));
    Ok(())
}

/// The single-user mode for the invoking user, or for [`SINGLE_ACCOUNT`] (created if
/// missing) when that is root.
pub fn single_mode(say: &mut dyn FnMut(&str)) -> Result<Mode> {
    let uid = sys::euid();
    if uid == 0 {
        ensure_group(SINGLE_ACCOUNT.as_bytes(), say)?;
        ensure_user(
            SINGLE_ACCOUNT.as_bytes(),
            SINGLE_ACCOUNT.as_bytes(),
            Path::new("/nonexistent"),
            say,
        )?;
        return Ok(Mode::Single {
            user: SINGLE_ACCOUNT.as_bytes().to_vec(),
            group: SINGLE_ACCOUNT.as_bytes().to_vec(),
        });
    }
    let sysfail = |e| Failure::temp_io(Kind::System, "unable to read the user database", e);
    let a = sys::account_by_uid(uid)
        .map_err(sysfail)?
        .ok_or_else(|| Failure::temp(Kind::System, "the invoking user has no account name"))?;
    let g = sys::group_name(sys::egid())
        .map_err(sysfail)?
        .ok_or_else(|| Failure::temp(Kind::System, "the invoking group has no name"))?;
    Ok(Mode::Single {
        user: a.name,
        group: g,
    })
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let st = cmd
        .status()
        .map_err(|e| Failure::temp_io(Kind::System, format!("unable to run {what}"), e))?;
    if !st.success() {
        return Err(Failure::temp(Kind::System, format!("{what} failed")));
    }
    Ok(())
}

fn os(b: &[u8]) -> &std::ffi::OsStr {
    std::os::unix::ffi::OsStrExt::from_bytes(b)
}

fn ensure_group(name: &[u8], say: &mut dyn FnMut(&str)) -> Result<()> {
    let exists = sys::group(name).map_err(|e| Failure::temp_io(Kind::System, "group lookup", e))?;
    if exists.is_none() {
        say(&format!("creating group {}", String::from_utf8_lossy(name)));
        run(
            Command::new("groupadd").arg("--system").arg(os(name)),
            "groupadd",
        )?;
    }
    Ok(())
}

fn ensure_user(name: &[u8], group: &[u8], home: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    let exists =
        sys::account(name).map_err(|e| Failure::temp_io(Kind::System, "user lookup", e))?;
    if exists.is_none() {
        say(&format!("creating user {}", String::from_utf8_lossy(name)));
        run(
            Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--gid",
                ])
                .arg(os(group))
                .arg("--home-dir")
                .arg(home)
                .arg(os(name)),
            "useradd",
        )?;
    }
    Ok(())
}

/// Creates qmail's groups and accounts that are missing (qmail's INSTALL.ids).
pub fn ensure_accounts(ids: &Ids, home: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    for g in [Group::Nofiles, Group::Qmail] {
        ensure_group(ids.group_name(g), say)?;
    }
    let nofiles = ids.group_name(Group::Nofiles);
    let qmail = ids.group_name(Group::Qmail);
    let alias_home = home.join("alias");
    for (u, g, h) in [
        (User::Alias, nofiles, alias_home.as_path()),
        (User::Qmaild, nofiles, home),
        (User::Qmaill, nofiles, home),
        (User::Qmailp, nofiles, home),
        (User::Qmailq, qmail, home),
        (User::Qmailr, qmail, home),
        (User::Qmails, qmail, home),
    ] {
        ensure_user(ids.user_name(u), g, h, say)?;
    }
    Ok(())
}

fn sysio(path: &Path) -> impl FnOnce(io::Error) -> Failure + '_ {
    move |e| {
        Failure::temp_io(
            Kind::System,
            format!("unable to set up {}", path.display()),
            e,
        )
    }
}

/// Creates `path` if missing, then sets its owner and mode.
fn dir(path: &Path, o: &Owners, u: User, g: Group, mode: u32) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(sysio(path)(e)),
    }
    own(path, o, u, g, mode)
}

fn own(path: &Path, o: &Owners, u: User, g: Group, mode: u32) -> Result<()> {
    // A single-user instance keeps its setuid bits only when root installs it for its
    // unprivileged account: then a message root injects is still owned by that account.
    let mode = if o.single && sys::euid() != 0 {
        mode & 0o1777
    } else {
        mode
    };
    // Never follow a symbolic link: directories such as alias/ and queue/lock/ belong to
    // less trusted accounts, and a link planted there must not hand root's files over.
    let meta = std::fs::symlink_metadata(path).map_err(sysio(path))?;
    if meta.file_type().is_symlink() {
        return Err(Failure::temp(
            Kind::System,
            format!("refusing to follow the symbolic link {}", path.display()),
        ));
    }
    if sys::euid() == 0 {
        chown(path, Some(o.uid(u)?), Some(o.gid(g)?)).map_err(sysio(path))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(sysio(path))
}

fn file(path: &Path, body: &[u8], o: &Owners, u: User, g: Group, mode: u32) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(sysio(path))?;
        f.write_all(body)
            .and_then(|()| f.sync_all())
            .map_err(sysio(path))?;
    }
    own(path, o, u, g, mode)
}

fn tree(plan: &Plan, o: &Owners) -> Result<()> {
    std::fs::create_dir_all(&plan.home).map_err(sysio(&plan.home))?;
    own(&plan.home, o, User::Root, Group::Qmail, 0o755)?;
    for d in ["control", "users", "bin", "doc"] {
        dir(&plan.home.join(d), o, User::Root, Group::Qmail, 0o755)?;
    }
    dir(
        &plan.home.join("alias"),
        o,
        User::Alias,
        Group::Qmail,
        0o2755,
    )
}

fn queue(plan: &Plan, o: &Owners) -> Result<()> {
    let q = plan.home.join("queue");
    dir(&q, o, User::Qmailq, Group::Qmail, 0o750)?;
    for d in SPLIT_DIRS {
        let (u, mode) = match d {
            "mess" | "todo" => (User::Qmailq, 0o750),
            "intd" => (User::Qmailq, 0o700),
            _ => (User::Qmails, 0o700),
        };
        dir(&q.join(d), o, u, Group::Qmail, mode)?;
        for n in 0..plan.split {
            dir(&q.join(d).join(n.to_string()), o, u, Group::Qmail, mode)?;
        }
    }
    for d in FLAT_DIRS {
        let (u, mode) = match d {
            "pid" => (User::Qmailq, 0o700),
            "bounce" => (User::Qmails, 0o700),
            _ => (User::Qmailq, 0o750),
        };
        dir(&q.join(d), o, u, Group::Qmail, mode)?;
    }
    let lock = q.join("lock");
    file(
        &lock.join("tcpto"),
        &[0u8; 1024],
        o,
        User::Qmailr,
        Group::Qmail,
        0o644,
    )?;
    file(
        &lock.join("sendmutex"),
        b"",
        o,
        User::Qmails,
        Group::Qmail,
        0o600,
    )?;
    let trigger = lock.join("trigger");
    if std::fs::symlink_metadata(&trigger).is_err() {
        sys::mkfifo(&trigger, 0o622).map_err(sysio(&trigger))?;
    }
    own(&trigger, o, User::Qmails, Group::Qmail, 0o622)
}

fn control(plan: &Plan, o: &Owners) -> Result<()> {
    let c = plan.home.join("control");
    let me = match &plan.me {
        Some(m) => m.clone(),
        None => sys::hostname().map_err(sysio(&c))?,
    };
    let line = |v: &[u8]| [v, b"\n"].concat();
    let domain = me
        .iter()
        .position(|&b| b == b'.')
        .map_or(&me[..], |i| me.get(i + 1..).unwrap_or(&me));
    let (users, groups) = o.ids.files();
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("me", line(&me)),
        ("defaultdomain", line(domain)),
        ("plusdomain", line(domain)),
        ("locals", [line(&me), line(b"localhost")].concat()),
        ("rcpthosts", [line(&me), line(b"localhost")].concat()),
        ("conf-users", users),
        ("conf-groups", groups),
    ];
    if plan.split != crate::queue::DEFAULT_SPLIT {
        files.push(("conf-split", line(plan.split.to_string().as_bytes())));
    }
    for (name, body) in files {
        file(&c.join(name), &body, o, User::Root, Group::Qmail, 0o644)?;
    }
    Ok(())
}

fn aliases(plan: &Plan, o: &Owners) -> Result<()> {
    for name in [".qmail-postmaster", ".qmail-mailer-daemon", ".qmail-root"] {
        file(
            &plan.home.join("alias").join(name),
            b"",
            o,
            User::Alias,
            Group::Qmail,
            0o644,
        )?;
    }
    Ok(())
}

/// A single-user instance delivers everything as its one account: `users/assign` sends
/// every local part to `~alias/.qmail-<local part>` (qmail-users(5)), unless the operator
/// has written an assign file already.
fn single_user_assign(plan: &Plan, o: &Owners) -> Result<()> {
    let assign = plan.home.join("users/assign");
    if std::fs::symlink_metadata(&assign).is_ok() {
        return Ok(());
    }
    let a = o.ids.account(User::Alias)?;
    let gid = o.gid(Group::Qmail)?;
    let mut line = b"+:".to_vec();
    line.extend_from_slice(&a.name);
    line.extend_from_slice(format!(":{}:{gid}:", a.uid).as_bytes());
    line.extend_from_slice(plan.home.join("alias").as_os_str().as_encoded_bytes());
    line.extend_from_slice(b":-::\n.\n");
    file(&assign, &line, o, User::Root, Group::Qmail, 0o644)?;
    crate::users::newu(&plan.home)?;
    for name in [crate::users::CDB, crate::users::LEGACY_CDB] {
        let p = plan.home.join(name);
        if std::fs::symlink_metadata(&p).is_ok() {
            own(&p, o, User::Root, Group::Qmail, 0o644)?;
        }
    }
    Ok(())
}

/// The names of the programs built in `src` (executables that are not tests).
fn built(src: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(src).map_err(sysio(src))? {
        let e = e.map_err(sysio(src))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = e.metadata().map_err(sysio(src))?;
        let exec = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
        if exec && !name.contains('.') && !NOT_INSTALLED.contains(&name.as_str()) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn programs(plan: &Plan, src: &Path, o: &Owners, say: &mut dyn FnMut(&str)) -> Result<()> {
    let bin = plan.home.join("bin");
    let names = built(src)?;
    for name in &names {
        let from = src.join(name);
        let to = bin.join(name);
        let _ = std::fs::remove_file(&to);
        let setuid = PROGRAM_MODES
            .iter()
            .any(|p| p.0 == name && p.3 & 0o6000 != 0);
        if plan.link && !(setuid && sys::euid() == 0) {
            let abs = std::fs::canonicalize(&from).map_err(sysio(&from))?;
            symlink(&abs, &to).map_err(sysio(&to))?;
            continue;
        }
        std::fs::copy(&from, &to).map_err(sysio(&to))?;
        let (u, g, mode) = PROGRAM_MODES
            .iter()
            .find(|p| p.0 == name)
            .map_or((User::Root, Group::Qmail, 0o755), |p| (p.1, p.2, p.3));
        own(&to, o, u, g, mode)?;
    }
    say(&format!("{} programs in {}", names.len(), bin.display()));
    Ok(())
}
