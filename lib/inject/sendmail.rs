//! sendmail: the sendmail(8) command line translated for qmail, as qmail's sendmail.c
//! (with netqmail's `-f` fix) does it.
//!
//! `-t` becomes qmail-inject `-H`, anything else `-a`; `-f sender` is passed on and also
//! names the user and host of the From field; `-F name` sets `MAILNAME`. `-bp` (or the
//! name `mailq`) runs `bin/qmail-qread`, `-bs` runs `bin/qmail-smtpd` as a local SMTP
//! session. `-bm`, `-B`, `-e`, `-E`, `-i`, `-J`, `-m`, `-o`, `-p`, `-v` and `-x` are
//! accepted and ignored.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::Fatal;
use super::getopt::{self, Getopt, Opt};

const USAGE: &[u8] =
    b"sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n";

/// The environment `-bs` gives qmail-smtpd when `PROTO` is not already set.
pub const SMTPD_ENV: [(&str, &str); 8] = [
    ("RELAYCLIENT", ""),
    ("DATABYTES", "0"),
    ("PROTO", "TCP"),
    ("TCPLOCALIP", "127.0.0.1"),
    ("TCPLOCALHOST", "localhost"),
    ("TCPREMOTEIP", "127.0.0.1"),
    ("TCPREMOTEHOST", "localhost"),
    ("TCPREMOTEINFO", "sendmail-bs"),
];

/// What sendmail runs, relative to the qmail home directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `bin/qmail-inject`, `bin/qmail-qread` or `bin/qmail-smtpd`.
    pub program: &'static str,
    /// The arguments after the program name.
    pub args: Vec<Vec<u8>>,
    /// Environment changes, in order: a value to set, or `None` to remove the variable.
    pub env: Vec<(&'static str, Option<Vec<u8>>)>,
}

impl Plan {
    fn of(program: &'static str) -> Plan {
        Plan {
            program,
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

fn usage(complaint: Option<Vec<u8>>) -> Fatal {
    Fatal::line([complaint.unwrap_or_default(), USAGE.to_vec()].concat())
}

/// Works out what to run for sendmail's arguments (argument 0 is the name it was called
/// by); `proto_set` tells whether `PROTO` is in the environment.
pub fn plan(args: &[Vec<u8>], proto_set: bool) -> Result<Plan, Fatal> {
    let prog = getopt::basename(args.first().map_or(&b""[..], Vec::as_slice));
    let mut env = Vec::new();
    let mut header = false;
    let mut sender = None;
    let mut opts = Getopt::new(args, b"vimte:f:p:o:B:F:EJxb:");
    while let Some(o) = opts.next_opt() {
        match o {
            Opt::Found(b't', _) => header = true,
            Opt::Found(b'f', s) => sender = s,
            Opt::Found(b'F', name) => env.push(("MAILNAME", name)),
            Opt::Found(b'E' | b'J', _) => opts.skip_rest_of_argument(),
            Opt::Found(b'b', mode) => match mode.as_deref().and_then(<[u8]>::first) {
                Some(b'm') => {}
                Some(b'p') => return Ok(Plan::of("bin/qmail-qread")),
                Some(b's') => {
                    let mut p = Plan::of("bin/qmail-smtpd");
                    if !proto_set {
                        p.env = SMTPD_ENV
                            .iter()
                            .map(|&(k, v)| (k, Some(v.as_bytes().to_vec())))
                            .collect();
                    }
                    return Ok(p);
                }
                _ => return Err(usage(None)),
            },
            Opt::Found(b'B' | b'p' | b'v' | b'i' | b'x' | b'm' | b'e' | b'o', _) => {}
            o => return Err(usage(o.complaint(prog))),
        }
    }
    if prog == b"mailq" {
        return Ok(Plan::of("bin/qmail-qread"));
    }
    if prog == b"newaliases" {
        return Err(Fatal::perm(b"please use fastforward/newaliases instead"));
    }
    let mut p = Plan::of("bin/qmail-inject");
    p.args.push(if header {
        b"-H".to_vec()
    } else {
        b"-a".to_vec()
    });
    if let Some(s) = sender {
        for name in ["QMAILNAME", "MAILNAME", "NAME", "QMAILHOST", "MAILHOST"] {
            env.push((name, None));
        }
        match s.iter().rposition(|&c| c == b'@') {
            None => env.push(("QMAILUSER", Some(s.clone()))),
            Some(at) => {
                env.push(("QMAILHOST", s.get(at + 1..).map(<[u8]>::to_vec)));
                env.push(("QMAILUSER", s.get(..at).map(<[u8]>::to_vec)));
            }
        }
        p.args.extend([b"-f".to_vec(), s]);
    }
    p.args.push(b"--".to_vec());
    p.args.extend(opts.rest().iter().cloned());
    p.env = env;
    Ok(p)
}

/// Runs a plan in `home` (which must be the current directory); returns only on failure.
pub fn exec(p: &Plan) -> Fatal {
    let mut c = Command::new(p.program);
    c.args(p.args.iter().map(|a| OsString::from_vec(a.clone())));
    for (k, v) in &p.env {
        match v {
            Some(v) => c.env(k, OsString::from_vec(v.clone())),
            None => c.env_remove(k),
        };
    }
    let _ = c.exec();
    let name = p.program.trim_start_matches("bin/");
    Fatal::temp(format!("unable to run {name}").as_bytes())
}

/// sendmail: changes to the qmail home directory and runs what its arguments ask for.
pub fn sendmail(home: &Path, args: &[Vec<u8>], proto_set: bool) -> Fatal {
    if std::env::set_current_dir(home).is_err() {
        return Fatal::temp(b"unable to switch to qmail home directory");
    }
    match plan(args, proto_set) {
        Ok(p) => exec(&p),
        Err(f) => f,
    }
}

/// datemail: runs `home/bin/predate home/bin/sendmail args...`; returns only on failure.
pub fn datemail(home: &Path, args: &[Vec<u8>]) -> Fatal {
    let rest = args.get(1..).unwrap_or_default();
    let e = Command::new(home.join("bin/predate"))
        .arg(home.join("bin/sendmail"))
        .args(rest.iter().map(|a| OsString::from_vec(a.clone())))
        .exec();
    Fatal::temp(format!("unable to run predate: {}", crate::sys::strerror(&e)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn inject(a: &[&str]) -> (Vec<String>, Vec<(&'static str, Option<String>)>) {
        let p = plan(&args(a), false).unwrap();
        assert_eq!(p.program, "bin/qmail-inject");
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            p.args.iter().map(|a| s(a)).collect(),
            p.env
                .iter()
                .map(|(k, v)| (*k, v.as_deref().map(s)))
                .collect(),
        )
    }

    #[test]
    fn options_translate_to_qmail_inject() {
        assert_eq!(inject(&["sendmail", "a@b"]).0, ["-a", "--", "a@b"]);
        assert_eq!(inject(&["sendmail", "-t"]).0, ["-H", "--"]);
        assert_eq!(
            inject(&[
                "sendmail", "-oi", "-i", "-v", "-x", "-m", "-Bx", "-em", "-pz", "-bm", "r"
            ])
            .0,
            ["-a", "--", "r"]
        );
        assert_eq!(
            inject(&["sendmail", "-Efoo", "-J", "-t", "r"]).0,
            ["-H", "--", "r"]
        );
        assert_eq!(
            inject(&["sendmail", "-o", "foo", "--", "-r"]).0,
            ["-a", "--", "-r"]
        );
        let (a, env) = inject(&["sendmail", "-F", "Joe", "-t"]);
        assert_eq!(a, ["-H", "--"]);
        assert_eq!(env, [("MAILNAME", Some("Joe".into()))]);
    }

    #[test]
    fn sender_sets_user_and_host_and_drops_names() {
        let (a, env) = inject(&["sendmail", "-FJoe", "-fjoe@x.example", "r@s"]);
        assert_eq!(a, ["-a", "-f", "joe@x.example", "--", "r@s"]);
        let want = [
            ("MAILNAME", Some("Joe".into())),
            ("QMAILNAME", None),
            ("MAILNAME", None),
            ("NAME", None),
            ("QMAILHOST", None),
            ("MAILHOST", None),
            ("QMAILHOST", Some("x.example".into())),
            ("QMAILUSER", Some("joe".into())),
        ];
        assert_eq!(env, want);
        let (_, env) = inject(&["sendmail", "-f", "joe", "r"]);
        assert_eq!(env.last(), Some(&("QMAILUSER", Some("joe".into()))));
    }

    #[test]
    fn modes_and_names_pick_other_programs() {
        assert_eq!(
            plan(&args(&["sendmail", "-bp"]), false).unwrap(),
            Plan::of("bin/qmail-qread")
        );
        assert_eq!(
            plan(&args(&["/usr/bin/mailq"]), false).unwrap(),
            Plan::of("bin/qmail-qread")
        );
        let bs = plan(&args(&["sendmail", "-bs"]), false).unwrap();
        assert_eq!(bs.program, "bin/qmail-smtpd");
        assert_eq!(bs.env.len(), 8);
        assert_eq!(bs.env[0], ("RELAYCLIENT", Some(Vec::new())));
        assert!(
            plan(&args(&["sendmail", "-bs"]), true)
                .unwrap()
                .env
                .is_empty()
        );
    }

    #[test]
    fn bad_options_print_usage_and_exit_100() {
        let usage = String::from_utf8_lossy(USAGE).into_owned();
        for (a, first) in [
            (&["sendmail", "-q"][..], "sendmail: illegal option -- q\n"),
            (
                &["sendmail", "-f"],
                "sendmail: option requires an argument -- f\n",
            ),
            (&["sendmail", "-bz"], ""),
        ] {
            let f = plan(&args(a), false).unwrap_err();
            assert_eq!(f.exit_code(), 100);
            assert_eq!(
                String::from_utf8_lossy(&f.message("sendmail")),
                format!("{first}{usage}"),
                "{a:?}"
            );
        }
        let f = plan(&args(&["newaliases"]), false).unwrap_err();
        assert_eq!(
            f.message("sendmail"),
            b"sendmail: fatal: please use fastforward/newaliases instead\n"
        );
    }
}
