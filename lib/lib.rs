//! sqmail: s/qmail rebuilt in Rust.
//!
//! The library behind the programs in `bin/`. Each module owns one concern; a module uses
//! only modules declared above it. Only [`sys`] may hold code the compiler cannot check.
#![warn(missing_docs)]

pub mod sys;

pub mod fail;

pub mod prog;

pub mod env;

pub mod date;

pub mod control;

pub mod ids;

pub mod cdb;

pub mod dns;

pub mod dnstools;

pub mod envelope;

pub mod addr;

pub mod queue;

pub mod inject;

pub mod setup;

pub mod getpw;

pub mod send;

pub mod spawn;

pub mod start;

pub mod users;

pub mod pw2u;

pub mod morercpthosts;

pub mod tcpto;

pub mod showctl;

pub mod local;

pub mod remote;

pub mod auth;

pub mod policy;

pub mod smtpd;

#[doc(hidden)]
pub mod fuzzing;
