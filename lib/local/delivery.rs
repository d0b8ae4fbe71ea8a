//! qmail-local's delivery: the checks on the home directory, the `.qmail` file and the
//! message, and following the file's lines in order (mbox, maildir and programs at once,
//! forwards together at the end in one qmail-queue call).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::command::{self, Environment, Exit, Fields};
use super::dotqmail::{self, Line, Owner};
use super::{Args, PATRN, Report, header, maildir, mbox};
use crate::date;
use crate::fail::{self, Failure, Kind};
use crate::prog;
use crate::queue::client::{Queue, Refused};
use crate::sys;

fn temp(text: impl Into<String>) -> Failure {
    Failure::temp(Kind::System, text)
}

fn errtext(e: &io::Error) -> String {
    sys::strerror(e)
}

/// Seeks the message back to its start.
pub fn rewind(message: &File) -> Result<(), Failure> {
    let mut m = message;
    m.seek(SeekFrom::Start(0))
        .map(drop)
        .map_err(|_| temp("Unable to rewind message. (#4.3.0)"))
}

fn check_home(deliver: bool) -> Result<(), Failure> {
    let st = std::fs::metadata(".").map_err(|e| {
        temp(format!(
            "Unable to stat home directory: {}. (#4.3.0)",
            errtext(&e)
        ))
    })?;
    let mode = st.permissions().mode();
    if mode & PATRN != 0 {
        return Err(temp("Uh-oh: home directory is writable. (#4.7.0)"));
    }
    if mode & 0o1000 != 0 {
        if deliver {
            return Err(temp(
                "Home directory is sticky: user is editing his .qmail file. (#4.2.1)",
            ));
        }
        prog::err(b"Warning: home directory is sticky.\n");
    }
    Ok(())
}

/// qmail-local's loop check: a header line byte-identical to `dtline` is a permanent
/// failure. Only the header is read (up to the first empty line), in bounded memory.
pub fn check_loop(message: &File, dtline: &[u8]) -> Result<(), Failure> {
    rewind(message)?;
    let mut r = BufReader::with_capacity(16 * 1024, message);
    let mut line = Vec::with_capacity(dtline.len() + 1);
    let read = |e: io::Error| temp(format!("Unable to read message: {}. (#4.3.0)", errtext(&e)));
    // A longer line is cut to dtline.len() bytes plus its newline, so it never compares equal.
    while let Some(true) = header::read_line(&mut r, dtline.len(), &mut line).map_err(read)? {
        if line.len() <= 1 {
            break;
        }
        if line == dtline {
            return Err(Failure::perm(
                Kind::Input,
                "This message is looping: it already has my Delivered-To line. (#5.4.6)",
            ));
        }
    }
    Ok(())
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// An open `.qmail` file: its contents and whether its user-execute bit is set.
struct DotQmail {
    text: Vec<u8>,
    forward_only: bool,
}

fn open_failure(name: &[u8], e: &io::Error) -> Failure {
    temp(format!(
        "Unable to open {}: {}. (#4.3.0)",
        String::from_utf8_lossy(name),
        errtext(e)
    ))
}

/// qmail's qmeexists: `Ok(None)` when the file is missing or not a regular file.
fn open_dotqmail(name: &[u8]) -> Result<Option<DotQmail>, Failure> {
    let f = match sys::open_read_nonblock(os(name)) {
        Ok(f) => f,
        // PermissionDenied is both EACCES and EPERM.
        Err(e) if fail::is_temp(&e) || e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(open_failure(name, &e));
        }
        Err(_) => return Ok(None),
    };
    let st = f.metadata().map_err(|e| open_failure(name, &e))?;
    if !st.is_file() {
        return Ok(None);
    }
    let mode = st.permissions().mode();
    if mode & PATRN != 0 {
        return Err(temp("Uh-oh: .qmail file is writable. (#4.7.0)"));
    }
    let mut text = Vec::new();
    let limit = u64::try_from(dotqmail::FILE_MAX)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    f.take(limit).read_to_end(&mut text).map_err(|e| {
        temp(format!(
            "Unable to read {}: {}. (#4.3.0)",
            String::from_utf8_lossy(name),
            errtext(&e)
        ))
    })?;
    Ok(Some(DotQmail {
        text,
        forward_only: mode & 0o100 != 0,
    }))
}

/// qmail's qmeox: does this name exist? Temporary errors are failures.
fn exists(name: &[u8]) -> Result<bool, Failure> {
    match std::fs::metadata(os(name)) {
        Ok(_) => Ok(true),
        Err(e) if fail::is_temp(&e) => Err(open_failure(name, &e)),
        Err(_) => Ok(false),
    }
}

fn owner(args: &Args) -> Result<Owner, Failure> {
    if args.sender.is_empty() || args.sender == b"#@[]" {
        return Ok(Owner::Absent);
    }
    let Some((plain, verp)) = dotqmail::owner_names(&args.dash, &args.ext) else {
        return Ok(Owner::Absent);
    };
    Ok(match (exists(&plain)?, exists(&verp)?) {
        (false, _) => Owner::Absent,
        (true, false) => Owner::Plain,
        (true, true) => Owner::Verp,
    })
}

fn say(kind: &str, what: &[u8]) {
    let mut l = kind.as_bytes().to_vec();
    l.extend_from_slice(what);
    l.push(b'\n');
    let _ = prog::out(&l);
}

/// The state of one delivery.
struct Run<'a> {
    args: &'a Args,
    message: &'a File,
    env: Environment,
    dtline: Vec<u8>,
    rpline: Vec<u8>,
    ufline: Vec<u8>,
    budget: usize,
}

/// Runs qmail-local: delivers the message on `message` as `args` say, forwarding through
/// the qmail-queue of `qmail_home`. Output of `|command` lines and the `-n` descriptions
/// go to fd 1 as they happen; the returned [`Report`] is what remains to print.
pub fn deliver(args: &Args, message: &File, qmail_home: &Path) -> Result<Report, Failure> {
    sys::umask(0o077);
    if args.deliver && (sys::uid() == 0 || sys::euid() == 0) {
        return Err(temp("Not allowed to perform deliveries as root. (#4.7.0)"));
    }
    let home = os(&args.home);
    std::env::set_current_dir(home).map_err(|e| {
        temp(format!(
            "Unable to switch to {}: {}. (#4.3.0)",
            String::from_utf8_lossy(&args.home),
            errtext(&e)
        ))
    })?;
    check_home(args.deliver)?;
    let dtline = command::dtline(&args.local, &args.host);
    if args.deliver {
        check_loop(message, &dtline)?;
    }
    let rpline = command::rpline(&args.sender);
    let ufline = command::ufline(&args.sender, date::now());
    let mut found = None;
    for c in dotqmail::candidates(&args.dash, &args.ext) {
        if let Some(d) = open_dotqmail(&c.name)? {
            found = Some((d, c.default));
            break;
        }
    }
    if found.is_none() && !args.dash.is_empty() {
        return Err(Failure::perm(
            Kind::Input,
            "Sorry, no mailbox here by that name. (#5.1.1)",
        ));
    }
    let newsender = dotqmail::new_sender(&args.sender, &args.local, &args.host, owner(args)?);
    let (dot, default) = match found {
        Some((d, default)) => (d, default),
        None => (
            DotQmail {
                text: Vec::new(),
                forward_only: false,
            },
            None,
        ),
    };
    let env = Environment::new(&Fields {
        user: &args.user,
        home: &args.home,
        local: &args.local,
        host: &args.host,
        ext: &args.ext,
        sender: &args.sender,
        newsender: &newsender,
        default: default.as_deref(),
        dtline: &dtline,
        rpline: &rpline,
        ufline: &ufline,
    });
    let run = Run {
        args,
        message,
        env,
        dtline,
        rpline,
        ufline,
        budget: command::REPORT_MAX,
    };
    let (text, forward_only) = if dot.text.is_empty() {
        (args.default_delivery.as_slice(), false)
    } else {
        (dot.text.as_slice(), dot.forward_only)
    };
    run.follow(text, forward_only, &newsender, qmail_home)
}

impl Run<'_> {
    fn follow(
        mut self,
        text: &[u8],
        mut forward_only: bool,
        newsender: &[u8],
        qmail_home: &Path,
    ) -> Result<Report, Failure> {
        let lines = dotqmail::parse(text).map_err(|b| temp(b.text()))?;
        let doit = self.args.deliver;
        let mut report = Report::default();
        let mut forwards: Vec<Vec<u8>> = Vec::new();
        for line in lines {
            let file_only = "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)";
            match line {
                Line::Blank | Line::Comment | Line::Ignored => {}
                Line::ForwardOnly => forward_only = true,
                Line::Maildir(p) | Line::Mbox(p) => {
                    report.files += 1;
                    if forward_only {
                        return Err(temp(file_only));
                    }
                    self.file(line, p)?;
                }
                Line::Program(c) => {
                    report.programs += 1;
                    if forward_only {
                        return Err(temp(
                            "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)",
                        ));
                    }
                    if !doit {
                        say("program ", c);
                    } else if self.program(c)? == Exit::Stop {
                        break;
                    }
                }
                Line::Forward(a) => {
                    report.forwards += 1;
                    if doit {
                        forwards.push(a.to_vec());
                    } else {
                        say("forward ", a);
                    }
                }
            }
        }
        if doit && !forwards.is_empty() {
            report.qp = Some(forward(
                self.message,
                qmail_home,
                &self.dtline,
                newsender,
                &forwards,
            )?);
        }
        Ok(report)
    }

    fn file(&self, line: Line<'_>, path: &[u8]) -> Result<(), Failure> {
        let doit = self.args.deliver;
        match line {
            Line::Maildir(_) if !doit => say("maildir ", path),
            Line::Maildir(_) => {
                rewind(self.message)?;
                maildir::deliver(
                    path,
                    self.message,
                    [&self.rpline, &self.dtline],
                    os(&self.args.home),
                )?;
            }
            _ if !doit => say("mbox ", path),
            _ => {
                rewind(self.message)?;
                mbox::deliver(
                    path,
                    self.message,
                    [&self.ufline, &self.rpline, &self.dtline],
                )?;
            }
        }
        Ok(())
    }

    fn program(&mut self, c: &[u8]) -> Result<Exit, Failure> {
        rewind(self.message)?;
        let home = os(&self.args.home);
        let limit = std::time::Duration::from_secs(program_limit());
        match command::run(c, self.message, home, &self.env, &mut self.budget, limit)? {
            Exit::Perm => Err(Failure::perm(Kind::Input, "")),
            Exit::Temp => Err(temp("")),
            ok => Ok(ok),
        }
    }
}

fn forward_failure(r: &Refused) -> Failure {
    let text = format!("Unable to forward message: {}.", r.text);
    match r.class {
        fail::Class::Perm => Failure::perm(Kind::Input, text),
        fail::Class::Temp => temp(text),
    }
}

/// Queues the message, after `dtline`, to `recipients` from `sender` in one qmail-queue
/// call; returns the pid of qmail-queue.
pub fn forward(
    mut message: &File,
    qmail_home: &Path,
    dtline: &[u8],
    sender: &[u8],
    recipients: &[Vec<u8>],
) -> Result<u32, Failure> {
    rewind(message)?;
    let mut q = Queue::open(qmail_home).map_err(|r| forward_failure(&r))?;
    let qp = q.pid();
    q.put(dtline);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => q.put(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // Dropping qmail-queue's pipes before the envelope makes it refuse.
                drop(q);
                return Err(temp("Unable to forward message: qq read error (#4.3.0)."));
            }
        }
    }
    q.close(sender, recipients)
        .map_err(|r| forward_failure(&r))?;
    Ok(qp)
}

/// `control/timeoutlocal`: seconds a `|program` line may run (default one day). The
/// control directory is world-readable, so qmail-local reads it as the recipient.
fn program_limit() -> u64 {
    crate::control::Control::open(&crate::env::home())
        .and_then(|c| c.int("timeoutlocal", TIMEOUT_LOCAL_SECS))
        .unwrap_or(TIMEOUT_LOCAL_SECS)
        .max(1)
}

/// The default for `control/timeoutlocal`.
pub const TIMEOUT_LOCAL_SECS: u64 = 86_400;
