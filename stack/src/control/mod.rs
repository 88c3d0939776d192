//! The daemon's side of the control protocol. The protocol itself (requests, replies, errors,
//! the client) is the `vmkstack-api` crate; here a request becomes a change of state:
//!
//! - [`server`]: the socket's threads: a client's rights, one JSON line at a time, parsed there;
//! - [`command`]: [`command::parse`], the pure function that turns an [`Action`](vmkstack_api::Action) into a typed
//!   [`Command`](command::Command) (addresses, prefixes, MTUs, timeouts parsed and checked);
//! - `apply`: the state owner (the configuration, the netstack, the applications) and one
//!   function per effect of a command;
//! - `forwards`: the port forwards, one forwarder per netstack that has any;
//! - [`store`]: the configuration file as the single store (atomic saves, the last good copy).
//!
//! A new operation is one [`Action`](vmkstack_api::Action) variant (in `vmkstack-api`), one
//! [`Command`](command::Command) variant with its parse arm, and one effect in `apply`.

pub(crate) mod apply;
pub mod command;
pub(crate) mod forwards;
pub mod server;
pub mod store;
