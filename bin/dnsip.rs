//! dnsip: prints the IPv4 then IPv6 addresses of each name, one line per name.
//! Asks `$DNSCACHEIP` (or /etc/resolv.conf); exits 0, 100 on a usage error or a bad
//! argument, 111 when the DNS gave no answer.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::dnstools::{self, Tool};
use sqmail::fail::{Failure, Kind};
use sqmail::prog;

fn main() -> ExitCode {
    prog::run("dnsip", || {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let out = dnstools::run(Tool::Ip, &args)?;
        prog::out(&out).map_err(|e| Failure::temp_io(Kind::Write, "unable to write output", e))
    })
}
