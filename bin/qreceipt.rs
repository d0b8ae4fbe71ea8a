//! qreceipt: answer a `Notice-Requested-Upon-Delivery-To` naming the address given with
//! a success notice to `$SENDER`. Exits 0, 100 or 111. See qreceipt(1).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sqmail::local::{helpers, notify};

fn main() -> ExitCode {
    notify::qreceipt(&helpers::argv()).exit()
}
