//! The control protocol as the command line sees it: the request, reply and error types it
//! exchanges with the daemon, and the daemon's default socket path.
//!
//! Every other module of the CLI takes these types from here, so that this is the one file that
//! names where they are defined.

pub use vmkstack_api::capture;
pub use vmkstack_api::{
    Action, Client, ClientError, ErrorKind, ForwardInfo, GatewayInfo, NeighborInfo, NetstackInfo,
    PingReply, ProbeReport, ProbeResult, RawVmknic, RemoteError, Route6Info, RouteExplanation,
    StageInfo, StatsInfo, VmknicInfo, DEFAULT_CONTROL,
};
