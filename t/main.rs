//! Integration tests: the real programs, run against fresh instances.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod harness;

mod admin;

mod auth;

mod queue;

mod demo;
mod fuzz;
mod inject;
mod local;
mod privsep;
mod qmaint;
mod remote;
mod send;
mod smtpd;
