//! qmail-smtpd: the SMTP server of s/qmail.
//!
//! The protocol is a pure state machine, apart from every descriptor and process:
//! * [`command`] splits command lines and reads paths and MAIL parameters;
//! * [`filter`] holds rcpthosts, badmailfrom, badrcptto and badhelo matching (wildmat);
//! * [`session`] turns one command line into a reply and an action for the driver;
//! * [`auth`] decodes the SASL exchanges (PLAIN, LOGIN, CRAM-MD5);
//! * [`data`] reads the DATA stream: dot-unstuffing, the end mark, bare CR and LF, sizes and hops;
//! * [`text`] writes the Received header and the log lines;
//! * [`policy`] is the one place where recipient verification, the senders of relay clients
//!   (LOCALMFCHECK) and the attachment filters hook in;
//! * [`config`] reads the control files and the environment (I/O);
//! * [`server`] is the driver: fds 0 and 1, timeouts, STARTTLS, checkpassword, qmail-queue.
//!
//! Every limit is a named constant here or next to the code that enforces it.

pub mod auth;
pub mod command;
pub mod config;
pub mod data;
pub mod filter;
pub mod policy;
pub mod server;
pub mod session;
pub mod text;

#[cfg(test)]
mod tests;

/// The longest command line accepted, CRLF included (RFC 5321 4.5.3.1.4). A longer line is
/// read to its end, answered [`REPLY_TOO_LONG`] and not executed.
pub const COMMAND_MAX: usize = 512;

/// The longest line accepted inside an AUTH exchange, CRLF included.
pub const AUTH_LINE_MAX: usize = 2048;

/// The answer to a command line over [`COMMAND_MAX`] bytes.
pub const REPLY_TOO_LONG: &[u8] = b"500 command line too long (#5.5.6)\r\n";

/// The default number of seconds to wait for the client (control/timeoutsmtpd).
pub const TIMEOUT_SECS: u64 = 1200;

/// Bad commands (unknown, malformed, out of order, overlong) a session may send; the next
/// one ends it with [`REPLY_TOO_MANY_BAD`], as Postfix's smtpd_hard_error_limit does.
pub const BAD_COMMANDS_MAX: u64 = 20;

/// The reply that ends a session after [`BAD_COMMANDS_MAX`] bad commands.
pub const REPLY_TOO_MANY_BAD: &[u8] = b"421 too many bad commands; closing connection (#4.7.0)\r\n";

/// The recipients accepted per message when MAXRECIPIENTS does not say fewer.
pub const RCPT_HARD_MAX: usize = 1000;

/// Seconds to wait before answering a failed authentication.
pub const AUTH_FAIL_DELAY_SECS: u64 = 5;
