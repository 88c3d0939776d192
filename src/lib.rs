//! The `vmkstack` command line: ESX-style listings, the `check` command and the argument
//! parsers of the ESX personalities (`esxcfg-route`, `esxcfg-vmknic`).

pub mod check;
pub mod esxcfg;
pub mod listing;
