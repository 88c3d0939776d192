//! The vmkstack daemon: a netstack's configuration (this crate's single store, like esx.conf)
//! and, with the data plane, its event loop, forwarding and control API.

pub mod config;

pub use config::{Config, ConfigError, RawConfig, StaticRoute, VmknicConfig, DEFAULT_NETSTACK};
