//! The control protocol: newline-delimited JSON over the daemon's Unix socket, one request per
//! line, one response line each. Shared by the daemon and the CLI.
//!
//! ```text
//! → {"v":1,"action":{"op":"route_add","network":"198.18.100.0/24","gateway":"198.18.1.1"}}
//! ← {"v":1,"ok":true,"result":null}
//! ← {"v":1,"ok":false,"error":{"kind":"gateway_unreachable","message":"Unable to ..."}}
//! ```
//!
//! Addresses travel as strings so that the daemon checks them with the same rules and
//! messages as the configuration file and the ESX commands. [`parse_request`] is the pure
//! function that turns a line into a [`Request`]; the loop that owns the state applies it.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use vmkstack_routing::{Explanation, RouteEntry, VmknicId};

use crate::config::RawVmknic;
use crate::counters::CountersView;

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted (bytes, without the newline).
pub const MAX_LINE: usize = 64 * 1024;

/// One request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub v: u32,
    /// What to do.
    pub action: Action,
}

/// Every operation. Names of vmknics may be `vmkN` or a port group name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// List vmknics.
    VmknicList,
    /// Add a vmknic (same fields and rules as a `[[vmknic]]` table).
    VmknicAdd {
        /// The vmknic.
        vmknic: RawVmknic,
    },
    /// Remove a vmknic.
    VmknicRemove {
        /// `vmkN` or port group.
        vmknic: String,
    },
    /// Enable a vmknic: its connected route returns and its TAP comes up.
    VmknicEnable {
        /// `vmkN` or port group.
        vmknic: String,
    },
    /// Disable a vmknic: its connected route is withdrawn and its TAP goes down.
    VmknicDisable {
        /// `vmkN` or port group.
        vmknic: String,
    },
    /// Change a vmknic's MTU.
    VmknicSetMtu {
        /// `vmkN` or port group.
        vmknic: String,
        /// 68-9000.
        mtu: u32,
    },
    /// Change a vmknic's primary address.
    VmknicSetAddress {
        /// `vmkN` or port group.
        vmknic: String,
        /// `a.b.c.d/len`.
        ip: String,
    },
    /// List routes in ESX order.
    RouteList,
    /// Add a static route.
    RouteAdd {
        /// `a.b.c.d/len`.
        network: String,
        /// Gateway on a vmknic subnet.
        gateway: String,
    },
    /// Remove a static route.
    RouteRemove {
        /// `a.b.c.d/len`.
        network: String,
        /// When given, must match the route's gateway.
        #[serde(default)]
        gateway: Option<String>,
    },
    /// Which route, vmknic, gateway and source traffic to a destination uses.
    RouteGet {
        /// The destination.
        destination: String,
    },
    /// Show the default gateway.
    GatewayShow,
    /// Set (replace) the default gateway.
    GatewaySet {
        /// Gateway on a vmknic subnet.
        gateway: String,
    },
    /// Remove the default gateway.
    GatewayClear {
        /// When given, must match the current gateway.
        #[serde(default)]
        gateway: Option<String>,
    },
    /// List neighbours (ARP table).
    NeighborList,
    /// Forget a neighbour.
    NeighborRemove {
        /// Its address.
        ip: String,
    },
    /// Per-vmknic counters.
    Stats,
    /// Send one ICMP echo from the stack and wait for the answer (vmkping sends one per line).
    Ping {
        /// Destination address.
        destination: String,
        /// Send from this vmknic, bypassing the routing lookup (`vmkping -I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// ICMP payload bytes.
        size: u32,
        /// Set don't-fragment.
        #[serde(default)]
        df: bool,
        /// IP TTL.
        ttl: u8,
        /// How long to wait for the reply.
        timeout_ms: u32,
        /// ICMP sequence number.
        seq: u16,
    },
    /// Forward a kernel listening address through the stack to a remote address.
    ForwardAdd {
        /// Kernel address to listen on, `a.b.c.d:port` (in the daemon's namespace).
        listen: String,
        /// Where the stack connects, `a.b.c.d:port`.
        remote: String,
        /// Source vmknic (`-I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// Most connections at once (default 64).
        #[serde(default)]
        max_connections: Option<u32>,
    },
    /// List forwards with their counters.
    ForwardList,
    /// Stop a forward (its connections are reset).
    ForwardRemove {
        /// Its listening address.
        listen: String,
    },
    /// Check a storage server from the stack: `iscsi` (connect, discovery login, SendTargets)
    /// or `nfs` (RPC NULL to portmapper, mountd and nfs; MOUNT EXPORT).
    StorageProbe {
        /// `iscsi` or `nfs`.
        kind: String,
        /// Server address.
        host: String,
        /// iSCSI port (default 3260).
        #[serde(default)]
        port: Option<u16>,
        /// Source vmknic (`-I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// Timeout per step.
        timeout_ms: u32,
    },
    /// Open a TCP connection from the stack and close it (`nc -z`).
    TcpProbe {
        /// Destination address.
        destination: String,
        /// Destination port.
        port: u16,
        /// Send from this vmknic (`-I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// How long to wait.
        timeout_ms: u32,
    },
}

impl Action {
    /// True for operations that change the stack's configuration (they need root or the
    /// control group).
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            Action::VmknicAdd { .. }
                | Action::VmknicRemove { .. }
                | Action::VmknicEnable { .. }
                | Action::VmknicDisable { .. }
                | Action::VmknicSetMtu { .. }
                | Action::VmknicSetAddress { .. }
                | Action::RouteAdd { .. }
                | Action::RouteRemove { .. }
                | Action::GatewaySet { .. }
                | Action::GatewayClear { .. }
                | Action::NeighborRemove { .. }
                | Action::ForwardAdd { .. }
                | Action::ForwardRemove { .. }
        )
    }
}

/// Kinds of errors, stable for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not JSON, or not a request.
    BadRequest,
    /// A protocol version this daemon does not speak.
    UnsupportedVersion,
    /// A line longer than [`MAX_LINE`].
    TooLong,
    /// The caller may not change state.
    PermissionDenied,
    /// The daemon is overloaded; try again.
    Busy,
    /// A named vmknic, route or neighbour does not exist.
    NotFound,
    /// A value breaks a rule (the message names it).
    Invalid,
    /// A gateway on no vmknic subnet (ESX's message).
    GatewayUnreachable,
    /// No route to the destination.
    NoRoute,
    /// ARP got no answer.
    HostDown,
    /// Larger than the egress MTU with DF set.
    MessageTooLong,
    /// No answer in time.
    Timeout,
    /// The peer refused the connection.
    Refused,
    /// The change could not be saved or applied.
    Io,
}

/// An error as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("{message}")]
pub struct RemoteError {
    /// Its kind.
    pub kind: ErrorKind,
    /// A message for people.
    pub message: String,
}

impl RemoteError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> RemoteError {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// Success.
    pub ok: bool,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RemoteError>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: Value) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(e: RemoteError) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            result: None,
            error: Some(e),
        }
    }

    /// The JSON line (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"v":1,"ok":false,"error":{"kind":"io","message":"cannot encode response"}}"#
                .to_string()
        });
        s.push('\n');
        s
    }
}

/// Parses one request line (without its newline). Pure: the caller applies the request.
pub fn parse_request(line: &str) -> Result<Request, RemoteError> {
    if line.len() > MAX_LINE {
        return Err(RemoteError::new(
            ErrorKind::TooLong,
            format!("request is {} bytes; the limit is {MAX_LINE}", line.len()),
        ));
    }
    let value: Value = serde_json::from_str(line)
        .map_err(|e| RemoteError::new(ErrorKind::BadRequest, format!("not JSON: {e}")))?;
    match value.get("v").and_then(Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(RemoteError::new(
                ErrorKind::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported (this daemon speaks {PROTOCOL_VERSION})"
                ),
            ))
        }
        None => {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                "missing protocol version: send {\"v\":1,\"action\":{\"op\":...}}",
            ))
        }
    }
    let req: Request = serde_json::from_value(value.clone())
        .map_err(|e| RemoteError::new(ErrorKind::BadRequest, format!("bad request: {e}")))?;
    // serde ignores extra fields on unit variants (`{"op":"route_list","x":1}`): compare the
    // keys with the request as it reads back, so every unknown field is refused.
    let back = serde_json::to_value(&req.action).unwrap_or(Value::Null);
    if let (Some(sent), Some(known)) = (value["action"].as_object(), back.as_object()) {
        if let Some(k) = sent.keys().find(|k| !known.contains_key(*k)) {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("bad request: unknown field `{k}` for op `{}`", known["op"]),
            ));
        }
    }
    Ok(req)
}

/// A vmknic as `vmknic_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmknicInfo {
    /// `vmkN`.
    pub name: VmknicId,
    /// Port group.
    pub portgroup: String,
    /// Addresses, primary first, as `a.b.c.d/len`.
    pub addresses: Vec<ipnet::Ipv4Net>,
    /// MAC address.
    pub mac: String,
    /// MTU.
    pub mtu: u16,
    /// Enabled.
    pub enabled: bool,
    /// TAP device.
    pub tap: String,
    /// Bridge, if any.
    pub bridge: Option<String>,
    /// Namespace of the TAP's kernel side, if any.
    pub netns: Option<String>,
}

/// The default gateway as `gateway_show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// The configured gateway.
    pub gateway: Option<Ipv4Addr>,
    /// False when it is on no vmknic subnet.
    pub active: bool,
    /// Its egress vmknic when active.
    pub vmknic: Option<VmknicId>,
}

/// A neighbour as `neighbor_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborInfo {
    /// Address.
    pub ip: Ipv4Addr,
    /// MAC, once resolved.
    pub mac: Option<String>,
    /// vmknic it was learned on.
    pub vmknic: VmknicId,
    /// `reachable`, `incomplete` or `failed`.
    pub state: String,
    /// Seconds until it expires.
    pub expiry_s: Option<u64>,
}

/// Counters of one vmknic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsInfo {
    /// `vmkN`.
    pub vmknic: VmknicId,
    /// Its counters.
    pub counters: CountersView,
}

/// One echo answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    /// ICMP bytes received (payload + 8).
    pub bytes: usize,
    /// Who answered.
    pub from: Ipv4Addr,
    /// Sequence number.
    pub seq: u16,
    /// TTL of the reply.
    pub ttl: u8,
    /// Round trip in microseconds.
    pub rtt_us: u64,
    /// The resolved destination (`PING host (ip)`).
    pub destination: Ipv4Addr,
}

/// A TCP probe that connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Local endpoint used.
    pub source: String,
    /// Time to connect, in microseconds.
    pub connect_us: u64,
}

/// Results of the informational operations, for clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteListResult {
    /// Rows in ESX order.
    pub routes: Vec<RouteEntry>,
}

/// `route_get`'s answer.
pub type RouteGetResult = Explanation;

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot reach the vmkstack daemon at {path}: {source}{hint}")]
    Connect {
        /// Socket path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The connection failed mid-call.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon sent something that is not a response.
    #[error("bad response from the daemon: {0}")]
    BadResponse(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Remote(RemoteError),
}

impl ClientError {
    /// The daemon's error, if it sent one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            ClientError::Remote(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| {
            let hint = match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    " (is `vmkstack daemon` running? --control or VMKSTACK_CONTROL pick the socket)"
                }
                std::io::ErrorKind::PermissionDenied => {
                    " (the socket is root-only unless the daemon's config sets control_group)"
                }
                _ => "",
            };
            ClientError::Connect {
                path: path.display().to_string(),
                source,
                hint,
            }
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sets how long a call may wait for its answer.
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.writer.set_read_timeout(t)?;
        Ok(())
    }

    /// Sends `action` and returns the result.
    pub fn call(&mut self, action: Action) -> Result<Value, ClientError> {
        let req = Request {
            v: PROTOCOL_VERSION,
            action,
        };
        let mut line =
            serde_json::to_string(&req).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ClientError::BadResponse(
                "the daemon closed the connection".into(),
            ));
        }
        let resp: Response = serde_json::from_str(answer.trim_end())
            .map_err(|e| ClientError::BadResponse(format!("{e}: {}", answer.trim_end())))?;
        match (resp.ok, resp.result, resp.error) {
            (true, r, _) => Ok(r.unwrap_or(Value::Null)),
            (false, _, Some(e)) => Err(ClientError::Remote(e)),
            (false, _, None) => Err(ClientError::BadResponse("error without a message".into())),
        }
    }

    /// Sends `action` and decodes the result as `T`.
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        action: Action,
    ) -> Result<T, ClientError> {
        let v = self.call(action)?;
        serde_json::from_value(v).map_err(|e| ClientError::BadResponse(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_route_add() {
        let r = parse_request(
            r#"{"v":1,"action":{"op":"route_add","network":"198.18.100.0/24","gateway":"198.18.1.1"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.action,
            Action::RouteAdd {
                network: "198.18.100.0/24".into(),
                gateway: "198.18.1.1".into()
            }
        );
        assert!(r.action.changes_state());
    }

    #[test]
    fn test_round_trip_every_shape() {
        for a in [
            Action::VmknicList,
            Action::RouteGet {
                destination: "198.18.1.1".into(),
            },
            Action::Ping {
                destination: "198.18.1.1".into(),
                vmknic: Some("vmk1".into()),
                size: 56,
                df: true,
                ttl: 64,
                timeout_ms: 1000,
                seq: 3,
            },
            Action::GatewayClear { gateway: None },
        ] {
            let line = serde_json::to_string(&Request {
                v: 1,
                action: a.clone(),
            })
            .unwrap();
            assert_eq!(parse_request(&line).unwrap().action, a);
        }
    }

    #[test]
    fn test_bad_requests() {
        let kind = |l: &str| parse_request(l).unwrap_err().kind;
        assert_eq!(kind("{"), ErrorKind::BadRequest);
        assert_eq!(kind("[]"), ErrorKind::BadRequest);
        assert_eq!(
            kind(r#"{"action":{"op":"route_list"}}"#),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(r#"{"v":2,"action":{"op":"route_list"}}"#),
            ErrorKind::UnsupportedVersion
        );
        let e = parse_request(r#"{"v":1,"action":{"op":"reboot"}}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(
            e.message.contains("unknown variant `reboot`"),
            "{}",
            e.message
        );
        let e = parse_request(r#"{"v":1,"action":{"op":"route_add","network":"x"}}"#).unwrap_err();
        assert!(
            e.message.contains("missing field `gateway`"),
            "{}",
            e.message
        );
        let e = parse_request(r#"{"v":1,"action":{"op":"route_list","x":1}}"#).unwrap_err();
        assert!(e.message.contains("unknown field `x`"), "{}", e.message);
        let long = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(MAX_LINE));
        assert_eq!(kind(&long), ErrorKind::TooLong);
    }

    #[test]
    fn test_read_only_actions() {
        assert!(!Action::RouteList.changes_state());
        assert!(!Action::Stats.changes_state());
        assert!(Action::NeighborRemove {
            ip: "198.18.1.1".into()
        }
        .changes_state());
    }
}
