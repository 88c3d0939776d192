//! The daemon's side of the control protocol. The protocol itself (requests, replies, errors,
//! the client) is the `vmkstack-api` crate; here a request becomes a change of state:
//!
//! - [`command`]: [`command::parse`], the pure function that turns an [`Action`] into a typed
//!   [`Command`](command::Command) (addresses, prefixes, MTUs, timeouts parsed and checked);
//! - `apply`: the state owner (the configuration, the netstack, the applications) and one
//!   function per effect of a command;
//! - [`store`]: the configuration file as the single store (atomic saves, the last good copy).
//!
//! A new operation is one [`Action`] variant (in `vmkstack-api`), one
//! [`Command`](command::Command) variant with its parse arm, and one effect in `apply`.
//!
//! The re-exports below keep `vmkstack_stack::control::*` paths working; new code imports
//! `vmkstack_api` directly.

pub(crate) mod apply;
pub mod command;
pub mod store;

pub use vmkstack_api::{
    parse_request, Action, Client, ClientError, ErrorKind, GatewayInfo, NeighborInfo, PingReply,
    ProbeResult, RemoteError, Request, Response, RouteGetResult, RouteListResult, StatsInfo,
    VmknicInfo, MAX_LINE, PROTOCOL_VERSION,
};
