//! The vmkstack control protocol: newline-delimited JSON over the daemon's Unix socket, one
//! request per line, one response line each. A leaf crate (serde only) shared by the daemon and
//! the CLI: neither imports the other's internals to speak it.
//!
//! ```text
//! → {"v":1,"action":{"op":"route_add","network":"198.18.100.0/24","gateway":"198.18.1.1"}}
//! ← {"v":1,"ok":true,"result":null}
//! ← {"v":1,"ok":false,"error":{"kind":"gateway_unreachable","message":"Unable to ..."}}
//! ```
//!
//! - [`request`]: what a client sends ([`Request`], [`Action`], [`RawVmknic`]) and
//!   [`parse_request`], the pure function that turns a line into a [`Request`];
//! - [`response`]: what comes back ([`Response`], [`RemoteError`], [`ErrorKind`]);
//! - [`info`]: the typed results of the informational operations ([`VmknicInfo`], ...);
//! - [`client`]: a blocking [`Client`] of the socket;
//! - [`capture`]: the capture request's filter and the packet records it streams.
//!
//! Addresses in requests travel as strings so that the daemon checks them with the same rules
//! and messages as the configuration file and the ESX commands; the daemon parses each
//! [`Action`] once into a typed command before applying it.

pub mod capture;
pub mod client;
pub mod info;
pub mod request;
pub mod response;

pub use client::{Client, ClientError, DEFAULT_CONTROL};
pub use info::{
    Check, CountersInfo, ExportInfo, ForwardInfo, GatewayInfo, Ipv6AddressInfo, NeighborInfo,
    NetstackInfo, PingReply, ProbeReport, ProbeResult, ReadTestInfo, Route6Info, RouteExplanation,
    RouteGetResult, RouteInfo, RouteListResult, RouteOrigin, StageInfo, StatsInfo, TargetInfo,
    VmknicInfo,
};
pub use request::{parse_request, Action, RawVmknic, Request, MAX_LINE, PROTOCOL_VERSION};
pub use response::{ErrorKind, RemoteError, Response};
