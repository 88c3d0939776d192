//! `vmkstack`: a userspace VMkernel TCP/IP stack on Linux TAP devices.

use std::process::ExitCode;

fn main() -> ExitCode {
    vmkstack::cli::run(std::env::args_os().collect())
}
