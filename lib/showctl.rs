//! qmail-showctl: the settings qmail compiles in, then every control file with what it means
//! and its value or default, in qmail-showctl's words and layout.
//!
//! The files qmail 1.03 knows are explained with its sentences; the other files of
//! [`control::FILES`] with the meaning given there. Files in `control/` that nobody reads are
//! named as such. The report goes to standard output; trouble with the control directory is
//! reported there too ("Oops! ..."), ending the program with exit code 111.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::control::{self, Control, Form};
use crate::fail::Result;
use crate::ids::{Group, Ids, User};
use crate::queue::Layout;
use crate::users;

/// qmail's conf-patrn: permission bits that make `~` and `.qmail` files suspect (octal 002).
pub const PATERNALISM: u32 = 0o002;
/// qmail's conf-spawn: the most deliveries run at once, whatever the control files say.
pub const SPAWN: u32 = 120;

/// How qmail-showctl explains one file.
#[derive(Clone, Copy, Debug)]
enum Show {
    /// A number: default text, text before and after the value.
    Int(&'static str, &'static str, &'static str),
    /// A line: whether `me` is the default, the default text, the text before the value.
    Str(bool, &'static str, &'static str),
    /// A list: default text, text before and after each entry.
    List(&'static str, &'static str, &'static str),
}

/// qmail 1.03's explanations, in its order.
const QMAIL: &[(&str, Show)] = &[
    (
        "badmailfrom",
        Show::List(
            "Any MAIL FROM is allowed.",
            "",
            " not accepted in MAIL FROM.",
        ),
    ),
    (
        "bouncefrom",
        Show::Str(false, "MAILER-DAEMON", "Bounce user name is "),
    ),
    (
        "bouncehost",
        Show::Str(true, "bouncehost", "Bounce host name is "),
    ),
    (
        "concurrencylocal",
        Show::Int("10", "Local concurrency is ", ""),
    ),
    (
        "concurrencyremote",
        Show::Int("20", "Remote concurrency is ", ""),
    ),
    ("databytes", Show::Int("0", "SMTP DATA limit is ", " bytes")),
    (
        "defaultdomain",
        Show::Str(true, "defaultdomain", "Default domain name is "),
    ),
    (
        "defaulthost",
        Show::Str(true, "defaulthost", "Default host name is "),
    ),
    (
        "doublebouncehost",
        Show::Str(true, "doublebouncehost", "2B recipient host: "),
    ),
    (
        "doublebounceto",
        Show::Str(false, "postmaster", "2B recipient user: "),
    ),
    (
        "envnoathost",
        Show::Str(true, "envnoathost", "Presumed domain name is "),
    ),
    (
        "helohost",
        Show::Str(true, "helohost", "SMTP client HELO host name is "),
    ),
    (
        "idhost",
        Show::Str(true, "idhost", "Message-ID host name is "),
    ),
    (
        "localiphost",
        Show::Str(true, "localiphost", "Local IP address becomes "),
    ),
    (
        "locals",
        Show::List(
            "Messages for me are delivered locally.",
            "Messages for ",
            " are delivered locally.",
        ),
    ),
    ("me", Show::Str(false, "undefined! Uh-oh", "My name is ")),
    (
        "percenthack",
        Show::List(
            "The percent hack is not allowed.",
            "The percent hack is allowed for user%host@",
            ".",
        ),
    ),
    (
        "plusdomain",
        Show::Str(true, "plusdomain", "Plus domain name is "),
    ),
    (
        "qmqpservers",
        Show::List("No QMQP servers.", "QMQP server: ", "."),
    ),
    (
        "queuelifetime",
        Show::Int("604800", "Message lifetime in the queue is ", " seconds"),
    ),
    (
        "rcpthosts",
        Show::List(
            "SMTP clients may send messages to any recipient.",
            "SMTP clients may send messages to recipients at ",
            ".",
        ),
    ),
    (
        "smtpgreeting",
        Show::Str(true, "smtpgreeting", "SMTP greeting: 220 "),
    ),
    (
        "smtproutes",
        Show::List("No artificial SMTP routes.", "SMTP route: ", ""),
    ),
    (
        "timeoutconnect",
        Show::Int("60", "SMTP client connection timeout is ", " seconds"),
    ),
    (
        "timeoutremote",
        Show::Int("1200", "SMTP client data timeout is ", " seconds"),
    ),
    (
        "timeoutsmtpd",
        Show::Int("1200", "SMTP server data timeout is ", " seconds"),
    ),
    (
        "virtualdomains",
        Show::List("No virtual domains.", "Virtual domain: ", ""),
    ),
];

/// Files in `control/` that are shown in the header rather than one by one.
const HEADER_FILES: [&str; 3] = ["conf-users", "conf-groups", "conf-split"];

/// What qmail compiles in and this package reads at run time.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The qmail home directory.
    pub home: PathBuf,
    /// User ids in qmail's order: alias, qmaild, qmaill, root, qmailp, qmailq, qmailr, qmails.
    pub uids: [u32; 8],
    /// Group ids in qmail's order: nofiles, then the qmail group.
    pub gids: [u32; 2],
    /// The queue's subdirectory split.
    pub split: u64,
}

impl Settings {
    /// Reads the ids by role and the split of the instance at `home`. Temporary failure when
    /// an account or group does not exist, as qmail's start-up lookups fail.
    pub fn load(home: &Path) -> Result<Settings> {
        let ids = Ids::load(home)?;
        let roles = [
            User::Alias,
            User::Qmaild,
            User::Qmaill,
            User::Root,
            User::Qmailp,
            User::Qmailq,
            User::Qmailr,
            User::Qmails,
        ];
        let mut uids = [0u32; 8];
        for (slot, role) in uids.iter_mut().zip(roles) {
            *slot = ids.uid(role)?;
        }
        let gids = [ids.gid(Group::Nofiles)?, ids.gid(Group::Qmail)?];
        let split = Layout::open(home)?.split;
        Ok(Settings {
            home: home.to_path_buf(),
            uids,
            gids,
            split,
        })
    }
}

/// qmail-showctl's `safeput`: bytes outside printable ASCII become `?`.
fn safe(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(
        s.iter()
            .map(|&c| if (32..=126).contains(&c) { c } else { b'?' }),
    );
}

/// The report and the exit code: 0, or 111 after an "Oops!" line about the control
/// directory.
pub fn report(s: &Settings) -> (Vec<u8>, u8) {
    let mut o = Vec::new();
    let nums = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let brk = char::from(users::BREAK);
    o.extend_from_slice(
        format!(
            "qmail home directory: {}.\nuser-ext delimiter: {brk}.\n\
             paternalism (in decimal): {PATERNALISM}.\nsilent concurrency limit: {SPAWN}.\n\
             subdirectory split: {}.\nuser ids: {}.\ngroup ids: {}.\n",
            s.home.display(),
            s.split,
            nums(&s.uids),
            nums(&s.gids)
        )
        .as_bytes(),
    );
    let dir = s.home.join("control");
    if !s.home.is_dir() {
        o.extend_from_slice(format!("Oops! Unable to chdir to {}.\n", s.home.display()).as_bytes());
        return (o, 111);
    }
    if !dir.is_dir() {
        o.extend_from_slice(b"Oops! Unable to chdir to control.\n");
        return (o, 111);
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        o.extend_from_slice(b"Oops! Unable to open current directory.\n");
        return (o, 111);
    };
    let Ok(c) = Control::open(&s.home) else {
        o.extend_from_slice(b"Oops! Trouble reading control/me.");
        return (o, 111);
    };
    let mut shown: Vec<String> = HEADER_FILES.iter().map(|n| n.to_string()).collect();
    for name in order() {
        shown.push(name.to_string());
        match QMAIL.iter().find(|q| q.0 == name) {
            Some(&(_, how)) => qmail_file(&mut o, &c, name, how),
            None => other_file(&mut o, &c, name),
        }
        if name == "rcpthosts" {
            let has = matches!(c.list("rcpthosts"), Ok(Some(_)));
            more_rcpthosts(&mut o, &c, &dir, has);
            shown.extend(["morercpthosts".to_string(), "morercpthosts.cdb".to_string()]);
        }
    }
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !shown.contains(&name) {
            o.extend_from_slice(
                format!("\n{name}: I have no idea what this file does.\n").as_bytes(),
            );
        }
    }
    (o, 0)
}

/// The files shown one by one, in qmail's order (alphabetical, with the morercpthosts files
/// right after rcpthosts), those of [`control::FILES`] qmail does not know included.
fn order() -> Vec<&'static str> {
    let mut names: Vec<&str> = QMAIL.iter().map(|q| q.0).collect();
    for (n, _, _) in control::FILES {
        if !names.contains(n) && !n.starts_with("morercpthosts") {
            names.push(n);
        }
    }
    names.sort_unstable();
    names
}

fn qmail_file(o: &mut Vec<u8>, c: &Control, name: &str, how: Show) {
    o.extend_from_slice(format!("\n{name}: ").as_bytes());
    match how {
        Show::Int(def, pre, post) => int(o, c, name, def, pre, post),
        Show::Str(flagme, def, pre) => {
            let def = match (flagme, c.me()) {
                (true, Some(me)) => me.to_vec(),
                _ => def.as_bytes().to_vec(),
            };
            line(o, c, name, &def, pre);
        }
        Show::List(def, pre, post) => {
            list(o, c, name, def, pre, post);
        }
    }
}

fn int(o: &mut Vec<u8>, c: &Control, name: &str, def: &str, pre: &str, post: &str) {
    match c.line(name) {
        Ok(l) => match l.as_deref().and_then(control::leading_number) {
            Some(n) => o.extend_from_slice(format!("{pre}{n}{post}.\n").as_bytes()),
            None => o.extend_from_slice(format!("(Default.) {pre}{def}{post}.\n").as_bytes()),
        },
        Err(_) => o.extend_from_slice(b"Oops! Trouble reading this file.\n"),
    }
}

fn line(o: &mut Vec<u8>, c: &Control, name: &str, def: &[u8], pre: &str) {
    match c.line(name) {
        Ok(Some(l)) => {
            o.extend_from_slice(pre.as_bytes());
            safe(o, &l);
        }
        Ok(None) => {
            o.extend_from_slice(b"(Default.) ");
            o.extend_from_slice(pre.as_bytes());
            safe(o, def);
        }
        Err(_) => {
            o.extend_from_slice(b"Oops! Trouble reading this file.\n");
            return;
        }
    }
    o.extend_from_slice(b".\n");
}

/// Prints a list; true when the file exists.
fn list(o: &mut Vec<u8>, c: &Control, name: &str, def: &str, pre: &str, post: &str) -> bool {
    match c.list(name) {
        Ok(Some(entries)) => {
            o.push(b'\n');
            for e in entries {
                o.extend_from_slice(pre.as_bytes());
                safe(o, &e);
                o.extend_from_slice(post.as_bytes());
                o.push(b'\n');
            }
            true
        }
        Ok(None) => {
            o.extend_from_slice(format!("(Default.) {def}\n").as_bytes());
            false
        }
        Err(_) => {
            o.extend_from_slice(b"Oops! Trouble reading this file.\n");
            false
        }
    }
}

fn more_rcpthosts(o: &mut Vec<u8>, c: &Control, dir: &Path, rcpthosts: bool) {
    o.extend_from_slice(b"\nmorercpthosts: ");
    if rcpthosts {
        let pre = "SMTP clients may send messages to recipients at ";
        list(o, c, "morercpthosts", "No effect.", pre, ".");
    } else {
        let def = "No rcpthosts; morercpthosts is irrelevant.";
        list(
            o,
            c,
            "morercpthosts",
            def,
            "No rcpthosts; doesn't matter that morercpthosts has ",
            ".",
        );
    }
    o.extend_from_slice(b"\nmorercpthosts.cdb: ");
    let mtime = |n: &str| std::fs::metadata(dir.join(n)).ok().map(|m| m.mtime());
    let text: &[u8] = match (mtime("morercpthosts"), mtime("morercpthosts.cdb")) {
        (None, None) => b"(Default.) No effect.\n",
        (None, Some(_)) => b"Oops! morercpthosts.cdb exists but morercpthosts doesn't.\n",
        (Some(_), None) => b"Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n",
        (Some(src), Some(db)) if src > db => {
            b"Oops! morercpthosts.cdb is older than morercpthosts.\n"
        }
        (Some(_), Some(_)) => b"Modified recently enough; hopefully up to date.\n",
    };
    o.extend_from_slice(text);
}

/// A file of [`control::FILES`] that qmail-showctl does not know, explained by its meaning.
fn other_file(o: &mut Vec<u8>, c: &Control, name: &str) {
    let Some(&(_, form, meaning)) = control::FILES.iter().find(|f| f.0 == name) else {
        return;
    };
    o.extend_from_slice(format!("\n{name}: ").as_bytes());
    let pre = format!("{meaning}: ");
    match form {
        Form::Int(d) => int(o, c, name, &d.to_string(), &pre, ""),
        Form::Line(d) => line(o, c, name, d.as_bytes(), &pre),
        Form::LineOrMe(d) => line(o, c, name, c.me().unwrap_or(d.as_bytes()), &pre),
        Form::List => {
            list(o, c, name, &format!("{meaning}: none."), &pre, ".");
        }
        Form::ListOrMe => {
            let def = [pre.as_bytes(), c.me().unwrap_or(b"none"), b"."].concat();
            list(o, c, name, &String::from_utf8_lossy(&def), &pre, ".");
        }
        Form::Cdb => {
            let text = if c.dir().join(name).exists() {
                "present"
            } else {
                "absent"
            };
            o.extend_from_slice(format!("{meaning}: {text}.\n").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qmail_defaults_agree_with_the_control_table() {
        for (name, how) in QMAIL {
            let Some(&(_, form, _)) = control::FILES.iter().find(|f| f.0 == *name) else {
                continue;
            };
            match (how, form) {
                (Show::Int(d, _, _), Form::Int(n)) => assert_eq!(*d, n.to_string(), "{name}"),
                (Show::Str(false, d, _), Form::Line(f)) => {
                    assert!(f.is_empty() || f == *d, "{name}");
                }
                (Show::Str(true, d, _), Form::LineOrMe(f)) => {
                    assert!(f.is_empty() || f == *d, "{name}");
                }
                (Show::List(..), Form::List | Form::ListOrMe) => {}
                _ => panic!("{name}: forms disagree"),
            }
        }
    }

    #[test]
    fn order_is_qmails_with_the_others_in_alphabetical_place() {
        let o = order();
        let pos = |n: &str| o.iter().position(|x| *x == n).unwrap();
        assert_eq!(o.first(), Some(&"authcleartext"));
        assert!(pos("badmailfrom") < pos("bouncefrom"));
        assert!(pos("bouncehost") < pos("bouncemaxbytes"));
        assert!(pos("bouncemaxbytes") < pos("concurrencylocal"));
        assert!(pos("locals") < pos("me") && pos("me") < pos("percenthack"));
        assert!(!o.contains(&"morercpthosts.cdb"));
    }

    #[test]
    fn safeput_replaces_unprintable_bytes() {
        let mut o = Vec::new();
        safe(&mut o, b"a\tb\x7f\xffc ~");
        assert_eq!(o, b"a?b??c ~");
    }
}
