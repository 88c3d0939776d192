//! The pure `esxcfg-route` and `esxcfg-vmknic` parsers under the path they have always had
//! (the fuzz target `tests/fuzz_cli.rs` uses it). They live with their commands in
//! [`crate::personality::esxcfg_route`] and [`crate::personality::esxcfg_vmknic`].

pub use crate::personality::esxcfg_route::{parse_esxcfg_route, RouteCommand};
pub use crate::personality::esxcfg_usage::{Invocation, Problem, UsageError};
pub use crate::personality::esxcfg_vmknic::{parse_esxcfg_vmknic, VmknicCommand};
