//! The `vmkstack` command line: ESX-style listings, the `check` command, the client commands
//! that talk to a running daemon over its control socket, and the ESX personalities
//! (`esxcfg-route`, `esxcfg-vmknic`, `vmkping`, `esxcli`, `nc -z`).

pub mod api;
pub mod check;
pub mod cli;
pub mod client;
pub mod esxcfg;
pub mod esxcli;
pub mod listing;
pub mod nc;
pub mod personality;
pub mod route_target;
pub mod vmkping;
