//! Integration tests of the ucspi programs: the real binaries over real sockets, against
//! independent peers (openssl, Python, swaks, dnsmasq, Debian's ucspi-tcp).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod rbl;
mod tcp;
mod tls;
