//! Every program of ucspi-tcp here has a manual page with an EXIT CODES section, the file
//! formats have theirs, and mandoc finds nothing to warn about in any of them.

use std::path::PathBuf;
use std::process::Command;

fn page(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../doc")
        .join(name)
}

const PROGRAMS: &[&str] = &[
    "tcpserver",
    "tcprules",
    "tcprulescheck",
    "tcpclient",
    "recordio",
    "addcr",
    "delcr",
    "fixcrio",
    "argv0",
];

#[test]
fn every_program_and_format_has_a_clean_page() {
    let mut pages: Vec<PathBuf> = PROGRAMS.iter().map(|p| page(&format!("{p}.1"))).collect();
    pages.push(page("tcp-environ.5"));
    pages.push(page("tcprules.5"));
    for p in &pages {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.contains(".SH NAME"), "{}", p.display());
        if p.extension().is_some_and(|e| e == "1") {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(".SH") && l.contains("EXIT CODES")),
                "{} lacks EXIT CODES",
                p.display()
            );
            assert!(text.contains("111"), "{} names exit 111", p.display());
        }
        let o = Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(p)
            .output()
            .expect("mandoc (Debian's mandoc package) is needed");
        assert!(
            o.status.success() && o.stdout.is_empty(),
            "{}: {}{}",
            p.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
