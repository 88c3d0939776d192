//! The vmkstack daemon: a netstack's configuration (the single store, like esx.conf), its data
//! plane (TAP vmknics, the routing core, forwarding, the smoltcp endpoint) and the daemon that
//! runs it.

pub mod apps;
pub mod config;
pub mod control;
pub mod daemon;
pub mod device;
pub mod engine;
pub mod governor;
pub mod metrics;
pub mod netstack;
pub mod packet;
pub mod service;
mod sys;
pub mod workers;

pub use config::{
    Config, ConfigError, MacStyle, RawConfig, StaticRoute, VmknicConfig, DEFAULT_NETSTACK, IP_DHCP,
};
pub use engine::{Engine, SocketError, Vmknic};
pub use netstack::{Netstack, StackError};
