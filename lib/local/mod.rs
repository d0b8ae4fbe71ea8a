//! Local delivery: qmail-local and the `.qmail` helpers.
//!
//! qmail-local runs under the recipient's uid with the queued message on fd 0 (a seekable
//! file, rewound for every delivery). [`delivery`] chooses the `.qmail` file ([`dotqmail`]), checks
//! the home directory and the file, refuses a message that already carries its
//! `Delivered-To` line, and follows the file's lines in order: mbox ([`mbox`]) and maildir
//! ([`maildir`]) deliveries and programs ([`command`]) at once, forwards together at the
//! end in one qmail-queue call. Any failure stops it; the class decides the exit code
//! (100 permanent, 111 temporary) and the text is qmail's, byte for byte.
//!
//! It never runs a delivery as root.

use crate::fail::{Failure, Kind};
use crate::prog;

pub mod command;
pub mod convert;
pub mod delivery;
pub mod dotqmail;
pub mod header;
pub mod helpers;
pub mod maildir;
pub mod mbox;
pub mod notify;

/// qmail's conf-patrn: a home directory or `.qmail` file with these mode bits is refused.
pub const PATRN: u32 = 0o002;

/// qmail-local's usage text.
pub const USAGE: &str =
    "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty";

/// The arguments of qmail-local.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `-N` (deliver, the default) or `-n` (print the instructions).
    pub deliver: bool,
    /// The account name (`USER`).
    pub user: Vec<u8>,
    /// Its home directory, absolute.
    pub home: Vec<u8>,
    /// The recipient's local part.
    pub local: Vec<u8>,
    /// Put between `.qmail` and the extension: empty or `-`.
    pub dash: Vec<u8>,
    /// The extension.
    pub ext: Vec<u8>,
    /// The recipient's domain.
    pub host: Vec<u8>,
    /// The envelope sender.
    pub sender: Vec<u8>,
    /// The instructions used when there is no `.qmail` file, or it is empty.
    pub default_delivery: Vec<u8>,
}

fn usage(extra: Option<u8>) -> Failure {
    let text = match extra {
        Some(c) => format!("qmail-local: illegal option -- {}\n{USAGE}", char::from(c)),
        None => USAGE.to_string(),
    };
    Failure::perm(Kind::Usage, text)
}

impl Args {
    /// Reads the arguments after the program name, with qmail's getopt rules.
    pub fn parse(argv: &[Vec<u8>]) -> Result<Args, Failure> {
        let mut deliver = true;
        let mut rest = argv;
        while let Some((a, tail)) = rest.split_first() {
            if a == b"--" {
                rest = tail;
                break;
            }
            if a.len() < 2 || a.first() != Some(&b'-') {
                break;
            }
            for &c in a.get(1..).unwrap_or_default() {
                match c {
                    b'n' => deliver = false,
                    b'N' => deliver = true,
                    c => return Err(usage(Some(c))),
                }
            }
            rest = tail;
        }
        let [user, home, local, dash, ext, host, sender, default_delivery] = rest else {
            return Err(usage(None));
        };
        if home.first() != Some(&b'/') {
            return Err(usage(None));
        }
        Ok(Args {
            deliver,
            user: user.clone(),
            home: home.clone(),
            local: local.clone(),
            dash: dash.clone(),
            ext: ext.clone(),
            host: host.clone(),
            sender: sender.clone(),
            default_delivery: default_delivery.clone(),
        })
    }
}

/// What a successful run did: qmail-local's `did files+forwards+programs` line and, after
/// forwarding, the pid of qmail-queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// mbox and maildir lines.
    pub files: u64,
    /// Forward lines.
    pub forwards: u64,
    /// Program lines.
    pub programs: u64,
    /// The qmail-queue pid of the forward, if any.
    pub qp: Option<u32>,
}

impl Report {
    /// The text qmail-local ends with on fd 1.
    pub fn text(&self) -> Vec<u8> {
        let mut t = format!("did {}+{}+{}\n", self.files, self.forwards, self.programs);
        if let Some(qp) = self.qp {
            t.push_str(&format!("qp {qp}\n"));
        }
        t.into_bytes()
    }
}

/// Ends qmail-local: the report on fd 1 and exit 0, or the failure's text (if any) on
/// fd 2 and exit 111 or 100.
pub fn exit(r: Result<Report, Failure>) -> std::process::ExitCode {
    match r {
        Ok(report) => {
            let _ = prog::out(&report.text());
            std::process::ExitCode::SUCCESS
        }
        Err(f) => {
            let t = f.to_string();
            if !t.is_empty() {
                prog::err(format!("{t}\n").as_bytes());
            }
            std::process::ExitCode::from(f.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn arguments_follow_qmail_getopt() {
        let base = [
            "joe",
            "/home/joe",
            "joe",
            "",
            "",
            "h.example",
            "s@x",
            "./Maildir/",
        ];
        let a = Args::parse(&argv(&base)).unwrap();
        assert!(a.deliver);
        assert_eq!(a.default_delivery, b"./Maildir/");
        for (pre, deliver) in [
            (&["--"][..], true),
            (&["-n"], false),
            (&["-nN"], true),
            (&["-Nn", "--"], false),
        ] {
            let mut v = pre.to_vec();
            v.extend(base);
            assert_eq!(Args::parse(&argv(&v)).unwrap().deliver, deliver, "{pre:?}");
        }
        let e = Args::parse(&argv(&["-x"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("qmail-local: illegal option -- x\n{USAGE}")
        );
        assert_eq!(e.exit_code(), 100);
        assert_eq!(
            Args::parse(&argv(&base[..7])).unwrap_err().to_string(),
            USAGE
        );
        let mut long = base.to_vec();
        long.push("extra");
        assert!(Args::parse(&argv(&long)).is_err());
        let mut rel = base.to_vec();
        rel[1] = "home/joe";
        assert!(Args::parse(&argv(&rel)).is_err());
        // "-" alone is an argument (an empty dash is "", but a user may be called "-").
        let mut dashy = vec!["-"];
        dashy.extend(&base[1..]);
        assert_eq!(Args::parse(&argv(&dashy)).unwrap().user, b"-");
    }

    #[test]
    fn report_text_matches_qmail_local() {
        let mut r = Report {
            files: 1,
            forwards: 2,
            programs: 3,
            qp: None,
        };
        assert_eq!(r.text(), b"did 1+2+3\n");
        r.qp = Some(4242);
        assert_eq!(r.text(), b"did 1+2+3\nqp 4242\n");
    }
}
