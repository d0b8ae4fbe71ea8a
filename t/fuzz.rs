//! Replays the committed fuzz seeds through the fuzz entry points on the stable toolchain,
//! so a regression on a known input fails `cargo test` even where the fuzzer cannot run.

use std::path::Path;

#[test]
fn fuzz_seeds_replay_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 11] = [
        ("envelope", sqmail::fuzzing::envelope),
        ("address", sqmail::fuzzing::address),
        ("files", sqmail::fuzzing::files),
        ("local", sqmail::fuzzing::local),
        ("reports", sqmail::fuzzing::reports),
        ("policy", sqmail::fuzzing::policy),
        ("smtpreply", sqmail::fuzzing::smtpreply),
        ("tlsa", sqmail::fuzzing::tlsa),
        ("smtpd_session", sqmail::fuzzing::smtpd_session),
        ("smtpd_path", sqmail::fuzzing::smtpd_path),
        ("smtpd_data", sqmail::fuzzing::smtpd_data),
    ];
    let mut n = 0;
    for (name, f) in targets {
        for e in std::fs::read_dir(root.join(name)).unwrap() {
            f(&std::fs::read(e.unwrap().path()).unwrap());
            n += 1;
        }
    }
    assert!(n >= 17, "the seed corpus is in place");
}
