//! The `vmkstack` command line: ESX-style listings, the `check` command, the client commands
//! that talk to a running daemon over its control socket, and the ESX personalities
//! (`esxcfg-route`, `esxcfg-vmknic`, `vmkping`, `esxcli`, `nc -z`).
//!
//! Modules only import downwards, in this order (a module uses only those below it):
//!
//! - [`cli`]: the binary's clap arguments, its dispatch and the native subcommands;
//! - [`personality`]: the ESX commands, one file each (parsing and running), and their dispatch;
//! - [`check`], [`route_target`]: offline checking; route values shared by `route` and `esxcli`;
//! - [`client`], [`listing`], [`pcapng`]: the daemon connection, console and exit codes; pure
//!   formatting; the capture file writer;
//! - [`api`]: the control protocol's types, the one place that names where they come from.
//!
//! [`esxcfg`] keeps the esxcfg parsers under their former path.

pub mod api;
pub mod check;
pub mod cli;
pub mod client;
pub mod esxcfg;
pub mod listing;
pub mod pcapng;
pub mod personality;
pub mod route_target;
