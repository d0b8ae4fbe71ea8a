#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sqmail::fuzzing::smtpd_path(data));
