//! The SMTP services of an instance: copies of the run scripts in the source tree's
//! `service/`, adjusted for the instance (its home and account names), under
//! `home/service/`, ready to be linked into a supervisor's directory; and their access
//! rules, `control/rules.*.txt`, compiled with tcprules into `control/rules.*.cdb`.
//! Nothing is started.

use std::path::Path;
use std::process::Command;

use super::{Owners, dir, file, sysio};
use crate::fail::{Failure, Kind, Result};
use crate::ids::{Group, User};
use crate::sys;

/// The services: name and run script.
pub const SERVICES: &[(&str, &str)] = &[
    ("qmail-smtpd", include_str!("../../service/qmail-smtpd/run")),
    (
        "qmail-smtpd-plain",
        include_str!("../../service/qmail-smtpd-plain/run"),
    ),
    (
        "qmail-smtpsd",
        include_str!("../../service/qmail-smtpsd/run"),
    ),
    (
        "qmail-smtpsub",
        include_str!("../../service/qmail-smtpsub/run"),
    ),
];

/// The access rules: name (`control/rules.NAME.txt`, `.cdb`) and text.
pub const RULES: &[(&str, &str)] = &[
    ("smtpd", include_str!("../../service/rules/smtpd.txt")),
    ("smtpsub", include_str!("../../service/rules/smtpsub.txt")),
];

const LOG_RUN: &str = include_str!("../../service/qmail-smtpd/log/run");

/// `s` quoted for the shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A run script with the instance's home as the default QMAILHOME, its programs first in
/// PATH, and its server account as the default QMAILDUSER.
pub fn adjust_run(script: &str, home: &Path, qmaild: &str) -> String {
    let home = quote(&home.to_string_lossy());
    script
        .replace(
            "QMAILHOME=${QMAILHOME:-/var/qmail}\n",
            &format!("QMAILHOME=${{QMAILHOME:-{home}}}\nPATH=\"$QMAILHOME/bin:$PATH\"\n"),
        )
        .replace(
            "USER=${QMAILDUSER:-qmaild}\n",
            &format!("USER=${{QMAILDUSER:-{}}}\n", quote(qmaild)),
        )
}

/// The logger's run script: multilog as the log account, or as the caller when that can
/// not change accounts (a single-user instance made without root).
pub fn adjust_log(qmaill: Option<&str>) -> String {
    match qmaill {
        Some(u) => LOG_RUN.replace(
            "\"${QMAILLOG:-qmaill}\"",
            &format!("\"${{QMAILLOG:-{}}}\"", quote(u)),
        ),
        None => LOG_RUN.replace("setuidgid \"${QMAILLOG:-qmaill}\" ", ""),
    }
}

pub(super) fn install(home: &Path, o: &Owners, say: &mut dyn FnMut(&str)) -> Result<()> {
    let name = |u: User| String::from_utf8_lossy(o.ids.user_name(u)).into_owned();
    let qmaild = name(User::Qmaild);
    let qmaill = (!o.single || sys::euid() == 0).then(|| name(User::Qmaill));
    let root = home.join("service");
    dir(&root, o, User::Root, Group::Qmail, 0o755)?;
    for (svc, script) in SERVICES {
        let d = root.join(svc);
        dir(&d, o, User::Root, Group::Qmail, 0o755)?;
        let run = adjust_run(script, home, &qmaild);
        file(
            &d.join("run"),
            run.as_bytes(),
            o,
            User::Root,
            Group::Qmail,
            0o755,
        )?;
        dir(&d.join("log"), o, User::Root, Group::Qmail, 0o755)?;
        let log = adjust_log(qmaill.as_deref());
        file(
            &d.join("log/run"),
            log.as_bytes(),
            o,
            User::Root,
            Group::Qmail,
            0o755,
        )?;
        dir(&d.join("log/main"), o, User::Qmaill, Group::Nofiles, 0o750)?;
    }
    let control = home.join("control");
    let tcprules = home.join("bin/tcprules");
    for (r, text) in RULES {
        let txt = control.join(format!("rules.{r}.txt"));
        file(&txt, text.as_bytes(), o, User::Root, Group::Qmail, 0o644)?;
        let cdb = control.join(format!("rules.{r}.cdb"));
        if std::fs::symlink_metadata(&cdb).is_ok() {
            super::own(&cdb, o, User::Root, Group::Qmail, 0o644)?;
            continue;
        }
        if std::fs::metadata(&tcprules).is_err() {
            say(&format!(
                "no tcprules in {}: {} not compiled",
                tcprules.display(),
                txt.display()
            ));
            continue;
        }
        let input = std::fs::File::open(&txt).map_err(sysio(&txt))?;
        let st = Command::new(&tcprules)
            .arg(&cdb)
            .arg(control.join(format!("rules.{r}.tmp")))
            .stdin(input)
            .status()
            .map_err(|e| Failure::temp_io(Kind::System, "unable to run tcprules", e))?;
        if !st.success() {
            return Err(Failure::temp(
                Kind::System,
                format!("tcprules failed on {}", txt.display()),
            ));
        }
        super::own(&cdb, o, User::Root, Group::Qmail, 0o644)?;
    }
    say(&format!(
        "services in {} (not started; see sqmail-setup(8))",
        root.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_scripts_get_the_home_and_account() {
        let (_, s) = SERVICES[0];
        let a = adjust_run(s, Path::new("/srv/it's"), "mail");
        assert!(
            a.contains("QMAILHOME=${QMAILHOME:-'/srv/it'\\''s'}\nPATH=\"$QMAILHOME/bin:$PATH\"\n")
        );
        assert!(a.contains("USER=${QMAILDUSER:-'mail'}\n"));
        for (_, s) in SERVICES {
            let a = adjust_run(s, Path::new("/x"), "u");
            assert!(!a.contains("/var/qmail") && !a.contains("qmaild"), "{a}");
        }
        assert_eq!(
            adjust_log(Some("ml")),
            "#!/bin/sh\nexec setuidgid \"${QMAILLOG:-'ml'}\" multilog t s2000000 ./main\n"
        );
        assert_eq!(
            adjust_log(None),
            "#!/bin/sh\nexec multilog t s2000000 ./main\n"
        );
    }
}
