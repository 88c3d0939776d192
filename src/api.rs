//! The control protocol as the command line sees it: the request, reply and error types it
//! exchanges with the daemon, and the daemon's default socket path.
//!
//! Every other module of the CLI takes these types from here, so that this is the one file that
//! names where they are defined.

pub use vmkstack_stack::config::RawVmknic;
pub use vmkstack_stack::control::{
    Action, Client, ClientError, ErrorKind, GatewayInfo, NeighborInfo, PingReply, ProbeResult,
    RemoteError, StatsInfo, VmknicInfo,
};
pub use vmkstack_stack::daemon::DEFAULT_CONTROL;
pub use vmkstack_stack::forward::ForwardInfo;
pub use vmkstack_stack::storage_probe::ProbeReport;
