//! A request's action, parsed once: [`parse`] turns every [`Action`] into a typed [`Command`]
//! whose addresses, prefixes, socket addresses, MTUs, timeouts and probe kinds are already
//! checked, with the messages the ESX commands and the configuration file use. It is pure: what
//! needs the daemon's state (which vmknic a name or port group means, whether a route exists,
//! the rules across vmknics) is checked by the applier.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use vmkstack_api::capture::{CaptureSpec, Point};
use vmkstack_api::{Action, ErrorKind, RawVmknic, RemoteError};
use vmkstack_routing::{parse_addr, parse_network};
use vmkstack_vmknic::{MAX_MTU, MIN_MTU};

use crate::apps::iscsi_read::MAX_SECS;
use crate::apps::port_forward::DEFAULT_MAX_CONNECTIONS;
use crate::engine::{Capture, CaptureFilter};

/// The iSCSI port a storage probe uses when the request names none.
pub const DEFAULT_ISCSI_PORT: u16 = 3260;
/// Bounds of a ping's wait for its reply, in milliseconds.
pub const PING_TIMEOUT_MS: (u32, u32) = (1, 60_000);
/// Bounds of a TCP probe's wait, in milliseconds.
pub const TCP_PROBE_TIMEOUT_MS: (u32, u32) = (1, 120_000);
/// Bounds of a storage probe's wait per step, in milliseconds.
pub const STORAGE_PROBE_TIMEOUT_MS: (u32, u32) = (100, 60_000);

/// A vmknic as a request names it: `vmkN` or a port group. The applier resolves it against
/// the configuration (a name that matches no vmknic is `not_found` there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmknicRef(pub String);

impl fmt::Display for VmknicRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a storage probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageProbeKind {
    /// Connect, discovery login, SendTargets; then, with `read_test`, reads from the first
    /// disk LUN of the first target for that long.
    Iscsi {
        /// The target's port.
        port: u16,
        /// How long to read, within 1 s and [`MAX_SECS`].
        read_test: Option<Duration>,
    },
    /// RPC NULL to portmapper, mountd and nfs; MOUNT EXPORT.
    Nfs,
}

/// How a vmknic gets its primary IPv4 address (`esxcli network ip interface ipv4 set -t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Setting {
    /// This address and prefix.
    Static(Ipv4Net),
    /// From a DHCP server.
    Dhcp,
    /// No IPv4 address.
    None,
}

/// One operation, typed and checked. Same operations as [`Action`].
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// List vmknics.
    VmknicList,
    /// Add a vmknic. Kept as written: the file's rules, which also look at the other vmknics,
    /// check it when it is applied (with the file's messages).
    VmknicAdd(Box<RawVmknic>),
    /// Remove a vmknic.
    VmknicRemove(VmknicRef),
    /// Enable (`true`) or disable a vmknic.
    VmknicSetEnabled(VmknicRef, bool),
    /// Change a vmknic's MTU.
    VmknicSetMtu {
        /// The vmknic.
        vmknic: VmknicRef,
        /// Within [`MIN_MTU`]..=[`MAX_MTU`].
        mtu: u16,
    },
    /// Change a vmknic's primary address.
    VmknicSetAddress {
        /// The vmknic.
        vmknic: VmknicRef,
        /// A static address and prefix (whether it is a usable host address is a file rule,
        /// checked when applied), DHCP, or none.
        address: Ipv4Setting,
        /// The vmknic's own gateway, set in the same change (static addresses only).
        gateway: Option<Ipv4Addr>,
    },
    /// List routes in ESX order.
    RouteList,
    /// Add a static route.
    RouteAdd {
        /// Destination network.
        network: Ipv4Net,
        /// Gateway.
        gateway: Ipv4Addr,
    },
    /// Remove a static route.
    RouteRemove {
        /// Destination network.
        network: Ipv4Net,
        /// When given, must be the route's gateway.
        gateway: Option<Ipv4Addr>,
    },
    /// Explain the route to a destination, for traffic from a source address when given.
    RouteGet(Ipv4Addr, Option<Ipv4Addr>),
    /// List the IPv6 routes.
    Route6List,
    /// Explain the IPv6 route to a destination.
    Route6Get(std::net::Ipv6Addr, Option<std::net::Ipv6Addr>),
    /// Add an IPv6 static route (`Some`) or set the IPv6 default gateway (`None`).
    Route6Add(Option<ipnet::Ipv6Net>, vmkstack_routing::Gateway6),
    /// Remove an IPv6 static route (`Some`) or the IPv6 default gateway (`None`).
    Route6Remove(Option<ipnet::Ipv6Net>),
    /// List the netstacks.
    NetstackList,
    /// One netstack's settings.
    NetstackGet(String),
    /// Add an empty netstack (its name checked).
    NetstackAdd(String),
    /// Remove a netstack.
    NetstackRemove(String),
    /// Turn a vmknic's IPv6 autoconfiguration on or off.
    VmknicSetIpv6Autoconf {
        /// The vmknic.
        vmknic: VmknicRef,
        /// On or off.
        enabled: bool,
    },
    /// Set a vmknic's IPv6 switches (an absent one is kept).
    VmknicSetIpv6 {
        /// The vmknic.
        vmknic: VmknicRef,
        /// IPv6 on or off.
        enabled: Option<bool>,
        /// Router-advertisement autoconfiguration.
        autoconf: Option<bool>,
        /// DHCPv6.
        dhcp: Option<bool>,
    },
    /// Add or remove a static IPv6 address of a vmknic.
    VmknicIpv6Address {
        /// The vmknic.
        vmknic: VmknicRef,
        /// The address and its prefix length (its rules checked when applied).
        address: ipnet::Ipv6Net,
        /// Remove it instead.
        remove: bool,
    },
    /// Set (or clear, `None`) a vmknic's own default gateway.
    VmknicSetGateway {
        /// The vmknic.
        vmknic: VmknicRef,
        /// The gateway (on its subnet: checked when applied).
        gateway: Option<Ipv4Addr>,
    },
    /// Show the default gateway.
    GatewayShow,
    /// Set (replace) the default gateway.
    GatewaySet(Ipv4Addr),
    /// Remove the default gateway; when given, it must be the current one.
    GatewayClear(Option<Ipv4Addr>),
    /// List neighbours.
    NeighborList,
    /// Forget a neighbour.
    NeighborRemove {
        /// Its address.
        ip: Ipv4Addr,
        /// Only if it was learned on this vmknic.
        vmknic: Option<VmknicRef>,
    },
    /// Per-vmknic counters.
    Stats,
    /// Send one ICMP echo.
    Ping {
        /// Destination.
        destination: Ipv4Addr,
        /// Source vmknic, bypassing the routing lookup.
        vmknic: Option<VmknicRef>,
        /// ICMP payload bytes.
        size: usize,
        /// Set don't-fragment.
        df: bool,
        /// IP TTL, at least 1.
        ttl: u8,
        /// Send through this gateway, bypassing the routing table (`vmkping -N`).
        next_hop: Option<Ipv4Addr>,
        /// Wait for the reply, within [`PING_TIMEOUT_MS`].
        timeout: Duration,
        /// ICMP sequence number.
        seq: u16,
    },
    /// Send one ICMPv6 echo request from the stack (`vmkping -6`).
    Ping6 {
        /// Destination.
        destination: std::net::Ipv6Addr,
        /// `-I`: out of this vmknic.
        vmknic: Option<VmknicRef>,
        /// `-N`: through this neighbour.
        next_hop: Option<std::net::Ipv6Addr>,
        /// ICMPv6 payload bytes.
        size: usize,
        /// Hop limit, at least 1.
        hop_limit: u8,
        /// Wait for the reply, within [`PING_TIMEOUT_MS`].
        timeout: Duration,
        /// ICMPv6 sequence number.
        seq: u16,
    },
    /// Forward a kernel listening address through the stack.
    ForwardAdd {
        /// Kernel address to listen on.
        listen: SocketAddr,
        /// Where the stack connects.
        remote: SocketAddr,
        /// Source vmknic.
        vmknic: Option<VmknicRef>,
        /// Most connections at once.
        max_connections: usize,
    },
    /// List forwards.
    ForwardList,
    /// Apply the configuration file on disk (a hand edit).
    Reload,
    /// Stop the forward listening on this address.
    ForwardRemove(SocketAddr),
    /// Check a storage server from the stack.
    StorageProbe {
        /// What to check.
        kind: StorageProbeKind,
        /// Server address.
        host: IpAddr,
        /// Source vmknic.
        vmknic: Option<VmknicRef>,
        /// Wait per step, within [`STORAGE_PROBE_TIMEOUT_MS`].
        timeout: Duration,
    },
    /// Start a packet capture whose records go to `slot`.
    Capture {
        /// Only this vmknic's packets.
        vmknic: Option<VmknicRef>,
        /// The rest of the filter (its `vmknic` is set when the name is resolved).
        filter: CaptureFilter,
        /// Where the started capture is handed to the client's thread.
        slot: CaptureSlot,
    },
    /// What each data-plane stage cost.
    Runtime,
    /// Render the Prometheus metrics (from the metrics listener, never from a request line).
    Metrics,
    /// Open a TCP connection from the stack and close it.
    TcpProbe {
        /// Destination.
        destination: SocketAddr,
        /// Source vmknic.
        vmknic: Option<VmknicRef>,
        /// Source address (it chooses the vmknic); never together with `vmknic`.
        source: Option<IpAddr>,
        /// Wait, within [`TCP_PROBE_TIMEOUT_MS`].
        timeout: Duration,
    },
}

impl Command {
    /// The operation's name, as the metrics count it (the protocol's `op` where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Command::VmknicList => "vmknic_list",
            Command::VmknicAdd(..) => "vmknic_add",
            Command::VmknicRemove(_) => "vmknic_remove",
            Command::VmknicSetEnabled(_, true) => "vmknic_enable",
            Command::VmknicSetEnabled(_, false) => "vmknic_disable",
            Command::VmknicSetMtu { .. } => "vmknic_set_mtu",
            Command::VmknicSetAddress { .. } => "vmknic_set_address",
            Command::RouteList => "route_list",
            Command::Route6List => "route6_list",
            Command::Route6Get(..) => "route_get",
            Command::Route6Add(..) => "route6_add",
            Command::Route6Remove(_) => "route6_remove",
            Command::RouteAdd { .. } => "route_add",
            Command::RouteRemove { .. } => "route_remove",
            Command::RouteGet(..) => "route_get",
            Command::NetstackList => "netstack_list",
            Command::NetstackGet(_) => "netstack_get",
            Command::NetstackAdd(_) => "netstack_add",
            Command::NetstackRemove(_) => "netstack_remove",
            Command::VmknicSetGateway { .. } => "vmknic_set_gateway",
            Command::VmknicSetIpv6Autoconf { .. } => "vmknic_set_ipv6_autoconf",
            Command::VmknicIpv6Address { .. } => "vmknic_ipv6_address",
            Command::VmknicSetIpv6 { .. } => "vmknic_set_ipv6",
            Command::GatewayShow => "gateway_show",
            Command::GatewaySet(_) => "gateway_set",
            Command::GatewayClear(_) => "gateway_clear",
            Command::NeighborList => "neighbor_list",
            Command::NeighborRemove { .. } => "neighbor_remove",
            Command::Stats => "stats",
            Command::Runtime => "runtime",
            Command::Capture { .. } => "capture",
            Command::Metrics => "metrics",
            Command::Ping { .. } | Command::Ping6 { .. } => "ping",
            Command::ForwardAdd { .. } => "forward_add",
            Command::ForwardList => "forward_list",
            Command::Reload => "reload",
            Command::ForwardRemove(_) => "forward_remove",
            Command::StorageProbe { .. } => "storage_probe",
            Command::TcpProbe { .. } => "tcp_probe",
        }
    }
}

/// Where the applier hands a started capture to the control client thread that streams it
/// (set by the server, empty after [`parse`]).
#[derive(Clone, Default)]
pub struct CaptureSlot(pub Option<crossbeam_channel::Sender<Arc<Capture>>>);

impl fmt::Debug for CaptureSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptureSlot")
    }
}

impl PartialEq for CaptureSlot {
    /// Slots are a way back, not part of what a command means.
    fn eq(&self, _: &CaptureSlot) -> bool {
        true
    }
}

/// A capture request's filter, checked (ESX's `pktcap-uw` options).
fn capture_filter(spec: CaptureSpec) -> Result<(Option<VmknicRef>, CaptureFilter), RemoteError> {
    let ip = |s: Option<String>, what: &str| {
        s.map(|s| addr(&s).map_err(|e| invalid(format!("{what}: {}", e.message))))
            .transpose()
    };
    let dir = match spec.dir.unwrap_or(0) {
        0 => Point::Rx.bit(),
        1 => Point::Tx.bit(),
        2 => Point::Rx.bit() | Point::Tx.bit(),
        d => {
            return Err(invalid(format!(
                "--dir {d}: expected 0 (in), 1 (out) or 2 (both)"
            )))
        }
    };
    let points = match spec
        .point
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => dir,
        Some("drop") => Point::Drop.bit(),
        Some("forward") => Point::Forward.bit(),
        Some("endpoint") => Point::EndpointIn.bit() | Point::EndpointOut.bit(),
        Some(other) => {
            return Err(invalid(format!(
                "--capture {other}: unknown capture point (Drop, Forward or Endpoint)"
            )))
        }
    };
    if spec.tcp_port.is_some() && spec.udp_port.is_some() {
        return Err(invalid("--tcpport and --udpport cannot be used together"));
    }
    Ok((
        vmknic_ref(spec.vmknic),
        CaptureFilter {
            vmknic: None,
            points,
            src: ip(spec.src_ip, "--srcip")?,
            dst: ip(spec.dst_ip, "--dstip")?,
            any: ip(spec.ip, "--ip")?,
            proto: spec.proto,
            tcp_port: spec.tcp_port,
            udp_port: spec.udp_port,
        },
    ))
}

fn invalid(msg: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::Invalid, msg)
}

/// An IPv4 address, with the routing core's message.
/// An IPv6 network `addr/len`; `default` or `::/0` is the default route (`None`).
fn network6(s: &str) -> Result<Option<ipnet::Ipv6Net>, RemoteError> {
    if s.trim() == "default" {
        return Ok(None);
    }
    let n = vmkstack_routing::parse_network6(s).map_err(|e| invalid(e.to_string()))?;
    Ok((n.prefix_len() > 0).then_some(n))
}

fn addr(s: &str) -> Result<Ipv4Addr, RemoteError> {
    parse_addr(s).map_err(|e| invalid(e.to_string()))
}

/// A network `a.b.c.d/len`, with the routing core's message.
fn network(s: &str) -> Result<Ipv4Net, RemoteError> {
    parse_network(s).map_err(|e| invalid(e.to_string()))
}

fn vmknic_ref(name: Option<String>) -> Option<VmknicRef> {
    name.map(VmknicRef)
}

/// `timeout_ms` clamped to `(lo, hi)`.
fn timeout(ms: u32, (lo, hi): (u32, u32)) -> Duration {
    Duration::from_millis(u64::from(ms.clamp(lo, hi)))
}

/// A vmknic MTU within [`MIN_MTU`]..=[`MAX_MTU`] (the file's rule).
fn mtu(vmknic: &VmknicRef, mtu: u32) -> Result<u16, RemoteError> {
    u16::try_from(mtu)
        .ok()
        .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
        .ok_or_else(|| {
            invalid(format!(
                "vmknic ({vmknic}).mtu = {mtu}: MTU must be between {MIN_MTU} and {MAX_MTU}"
            ))
        })
}

/// A vmknic's new primary address, `a.b.c.d/len`, `dhcp` or empty (the file's rules for
/// `ip`).
fn interface_address(vmknic: &VmknicRef, ip: &str) -> Result<Ipv4Setting, RemoteError> {
    if ip.trim().is_empty() {
        return Ok(Ipv4Setting::None);
    }
    if ip.trim().eq_ignore_ascii_case(crate::config::IP_DHCP) {
        return Ok(Ipv4Setting::Dhcp);
    }
    let rule = if ip.contains('/') {
        match ip.parse::<Ipv4Net>() {
            Ok(net) => return Ok(Ipv4Setting::Static(net)),
            Err(_) => "expected a.b.c.d/len with len 1-32",
        }
    } else {
        "needs a netmask: `netmask`, `prefix_len` or ip/len"
    };
    Err(invalid(format!("vmknic ({vmknic}).ip = \"{ip}\": {rule}")))
}

/// `a.b.c.d:port` or `[ipv6]:port`; `what` names the field in the message.
fn socket(s: &str, what: &str) -> Result<SocketAddr, RemoteError> {
    s.parse()
        .map_err(|_| invalid(format!("{what}`{s}` is not a.b.c.d:port or [ipv6]:port")))
}

/// An IPv4 or IPv6 address (IPv6 when it holds a colon), with the routing core's message.
fn ip_addr(s: &str) -> Result<IpAddr, RemoteError> {
    if s.contains(':') {
        vmkstack_routing::parse_addr6(s)
            .map(IpAddr::V6)
            .map_err(|e| invalid(e.to_string()))
    } else {
        addr(s).map(IpAddr::V4)
    }
}

/// A netstack name, checked with the file's rule.
pub fn netstack_name(name: String) -> Result<String, RemoteError> {
    match crate::config::netstack_name_problem(&name) {
        Some(rule) => Err(RemoteError::new(
            ErrorKind::Invalid,
            format!("netstack `{name}`: {rule}"),
        )),
        None => Ok(name),
    }
}

/// Parses an action into a typed command. Pure; the error is what the client is told.
pub fn parse(action: Action) -> Result<Command, RemoteError> {
    Ok(match action {
        Action::VmknicList => Command::VmknicList,
        Action::VmknicAdd {
            mut vmknic,
            netstack,
        } => {
            // The netstack may come in the vmknic (as in the file) or beside it
            // (`esxcli network ip interface add -N`); the vmknic's own wins.
            if vmknic.netstack.is_none() {
                vmknic.netstack = netstack;
            }
            Command::VmknicAdd(Box::new(vmknic))
        }
        Action::VmknicRemove { vmknic } => Command::VmknicRemove(VmknicRef(vmknic)),
        Action::VmknicEnable { vmknic } => Command::VmknicSetEnabled(VmknicRef(vmknic), true),
        Action::VmknicDisable { vmknic } => Command::VmknicSetEnabled(VmknicRef(vmknic), false),
        Action::VmknicSetMtu { vmknic, mtu: m } => {
            let vmknic = VmknicRef(vmknic);
            Command::VmknicSetMtu {
                mtu: mtu(&vmknic, m)?,
                vmknic,
            }
        }
        Action::VmknicSetAddress {
            vmknic,
            ip,
            gateway,
        } => {
            let vmknic = VmknicRef(vmknic);
            let address = interface_address(&vmknic, &ip)?;
            let gateway = gateway.as_deref().map(addr).transpose()?;
            if gateway.is_some() && !matches!(address, Ipv4Setting::Static(_)) {
                return Err(invalid(format!(
                    "{}: a gateway goes only with a static address",
                    vmknic.0
                )));
            }
            Command::VmknicSetAddress {
                address,
                gateway,
                vmknic,
            }
        }
        Action::RouteList => Command::RouteList,
        Action::RouteAdd {
            network: n,
            gateway,
        } => Command::RouteAdd {
            network: network(&n)?,
            gateway: addr(&gateway)?,
        },
        Action::RouteRemove {
            network: n,
            gateway,
        } => Command::RouteRemove {
            network: network(&n)?,
            gateway: gateway.as_deref().map(addr).transpose()?,
        },
        Action::RouteGet {
            destination,
            source,
        } if destination.contains(':') => {
            let a6 = |s: &str| vmkstack_routing::parse_addr6(s).map_err(|e| invalid(e.to_string()));
            Command::Route6Get(a6(&destination)?, source.as_deref().map(a6).transpose()?)
        }
        Action::RouteGet {
            destination,
            source,
        } => Command::RouteGet(
            addr(&destination)?,
            source.as_deref().map(addr).transpose()?,
        ),
        Action::Route6List => Command::Route6List,
        Action::Route6Add { network, gateway } => Command::Route6Add(
            network6(&network)?,
            crate::config::parse_gateway6(&gateway).map_err(invalid)?,
        ),
        Action::Route6Remove { network } => Command::Route6Remove(network6(&network)?),
        Action::NetstackList => Command::NetstackList,
        Action::NetstackGet { name } => Command::NetstackGet(netstack_name(name)?),
        Action::NetstackAdd { name } => Command::NetstackAdd(netstack_name(name)?),
        Action::NetstackRemove { name } => Command::NetstackRemove(netstack_name(name)?),
        Action::VmknicSetIpv6Autoconf { vmknic, enabled } => Command::VmknicSetIpv6Autoconf {
            vmknic: VmknicRef(vmknic),
            enabled,
        },
        Action::VmknicSetIpv6 {
            vmknic,
            enabled,
            autoconf,
            dhcp,
        } => Command::VmknicSetIpv6 {
            vmknic: VmknicRef(vmknic),
            enabled,
            autoconf,
            dhcp,
        },
        Action::VmknicIpv6Address {
            vmknic,
            address,
            remove,
        } => Command::VmknicIpv6Address {
            vmknic: VmknicRef(vmknic),
            address: address.trim().parse().map_err(|_| {
                invalid(format!(
                    "`{address}` is not an IPv6 address with its prefix length (as \
                     2001:db8:1::100/64)"
                ))
            })?,
            remove,
        },
        Action::VmknicSetGateway { vmknic, gateway } => Command::VmknicSetGateway {
            vmknic: VmknicRef(vmknic),
            gateway: gateway.as_deref().map(addr).transpose()?,
        },
        Action::GatewayShow => Command::GatewayShow,
        Action::GatewaySet { gateway } => Command::GatewaySet(addr(&gateway)?),
        Action::GatewayClear { gateway } => {
            Command::GatewayClear(gateway.as_deref().map(addr).transpose()?)
        }
        Action::NeighborList => Command::NeighborList,
        Action::NeighborRemove { ip, vmknic } => Command::NeighborRemove {
            ip: addr(&ip)?,
            vmknic: vmknic_ref(vmknic),
        },
        Action::Stats => Command::Stats,
        Action::Runtime => Command::Runtime,
        Action::Capture { spec } => {
            let (vmknic, filter) = capture_filter(spec)?;
            Command::Capture {
                vmknic,
                filter,
                slot: CaptureSlot::default(),
            }
        }
        // IPv6 never fragments on the way: don't-fragment is implied.
        Action::Ping {
            destination,
            vmknic,
            size,
            ttl,
            timeout_ms,
            seq,
            next_hop,
            ..
        } if destination.contains(':') => {
            let dst =
                vmkstack_routing::parse_addr6(&destination).map_err(|e| invalid(e.to_string()))?;
            let a6 = |s: &str| vmkstack_routing::parse_addr6(s).map_err(|e| invalid(e.to_string()));
            let next_hop = next_hop.as_deref().map(a6).transpose()?;
            if dst.is_multicast() || dst.is_unspecified() {
                return Err(invalid(format!(
                    "{dst}: only unicast IPv6 destinations are supported yet"
                )));
            }
            // A link-local address is on every link: the vmknic says which.
            let link_local = vmkstack_routing::is_link_local6;
            if vmknic.is_none() && (link_local(dst) || next_hop.is_some_and(link_local)) {
                return Err(invalid(
                    "a link-local destination or next hop needs the vmknic it is reached \
                     through (-I vmkN)",
                ));
            }
            if next_hop.is_some_and(|n| n.is_multicast() || n.is_unspecified()) {
                return Err(invalid("the next hop must be a unicast IPv6 address"));
            }
            Command::Ping6 {
                destination: dst,
                vmknic: vmknic_ref(vmknic),
                next_hop,
                size: size as usize,
                hop_limit: ttl.max(1),
                timeout: timeout(timeout_ms, PING_TIMEOUT_MS),
                seq,
            }
        }
        Action::Ping {
            destination,
            vmknic,
            size,
            df,
            ttl,
            timeout_ms,
            seq,
            next_hop,
        } => Command::Ping {
            destination: addr(&destination)?,
            next_hop: next_hop.as_deref().map(addr).transpose()?,
            vmknic: vmknic_ref(vmknic),
            size: size as usize,
            df,
            ttl: ttl.max(1),
            timeout: timeout(timeout_ms, PING_TIMEOUT_MS),
            seq,
        },
        Action::ForwardAdd {
            listen,
            remote,
            vmknic,
            max_connections,
        } => Command::ForwardAdd {
            listen: socket(&listen, "listen address ")?,
            remote: socket(&remote, "remote address ")?,
            vmknic: vmknic_ref(vmknic),
            max_connections: max_connections.map_or(DEFAULT_MAX_CONNECTIONS, |m| m as usize),
        },
        Action::ForwardList => Command::ForwardList,
        Action::Reload => Command::Reload,
        Action::ForwardRemove { listen } => Command::ForwardRemove(socket(&listen, "")?),
        Action::StorageProbe {
            kind,
            host,
            port,
            vmknic,
            timeout_ms,
            read_test_secs,
        } => {
            let host = ip_addr(&host)?;
            let read_test = match read_test_secs {
                Some(secs @ 1..=MAX_SECS) => Some(Duration::from_secs(u64::from(secs))),
                Some(secs) => {
                    return Err(invalid(format!(
                        "read test of {secs} s: give 1 to {MAX_SECS} seconds"
                    )))
                }
                None => None,
            };
            let kind = match kind.as_str() {
                "iscsi" => StorageProbeKind::Iscsi {
                    port: port.unwrap_or(DEFAULT_ISCSI_PORT),
                    read_test,
                },
                "nfs" if read_test.is_some() => {
                    return Err(invalid(
                        "the read test is for iSCSI (probe iscsi --read-test)",
                    ))
                }
                "nfs" => StorageProbeKind::Nfs,
                other => return Err(invalid(format!("unknown probe `{other}` (iscsi or nfs)"))),
            };
            Command::StorageProbe {
                kind,
                host,
                vmknic: vmknic_ref(vmknic),
                timeout: timeout(timeout_ms, STORAGE_PROBE_TIMEOUT_MS),
            }
        }
        Action::TcpProbe {
            destination,
            port,
            vmknic,
            source,
            timeout_ms,
        } => {
            if vmknic.is_some() && source.is_some() {
                return Err(invalid(
                    "give a source vmknic or a source address, not both (each chooses the other)",
                ));
            }
            Command::TcpProbe {
                destination: SocketAddr::new(ip_addr(&destination)?, port),
                vmknic: vmknic_ref(vmknic),
                source: source.as_deref().map(ip_addr).transpose()?,
                timeout: timeout(timeout_ms, TCP_PROBE_TIMEOUT_MS),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> String {
        t.to_string()
    }

    fn net(t: &str) -> Ipv4Net {
        t.parse().unwrap()
    }

    fn ip(t: &str) -> Ipv4Addr {
        t.parse().unwrap()
    }

    fn vref(t: &str) -> VmknicRef {
        VmknicRef(s(t))
    }

    /// The invalid-value message of a refused action.
    fn refused(a: Action) -> String {
        let e = parse(a).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
        e.message
    }

    /// The message for a bad address (the routing core's, as the ESX commands show it).
    fn bad_addr(t: &str) -> String {
        format!("`{t}` is not an IPv4 address")
    }

    /// The message for a network that is not `a.b.c.d/len`.
    fn bad_net(t: &str) -> String {
        format!("`{t}` is not an IPv4 prefix (expected a.b.c.d/len with len 0-32)")
    }

    #[test]
    fn test_parse_without_arguments() {
        for (a, c) in [
            (Action::VmknicList, Command::VmknicList),
            (Action::RouteList, Command::RouteList),
            (Action::GatewayShow, Command::GatewayShow),
            (Action::NeighborList, Command::NeighborList),
            (Action::Stats, Command::Stats),
            (Action::ForwardList, Command::ForwardList),
            (Action::Reload, Command::Reload),
        ] {
            assert_eq!(parse(a).unwrap(), c);
        }
    }

    #[test]
    fn test_parse_vmknic() {
        let raw = RawVmknic {
            name: s("vmk1"),
            portgroup: s("VMotion"),
            ip: s("not checked here"),
            ..RawVmknic::default()
        };
        assert_eq!(
            parse(Action::VmknicAdd {
                vmknic: raw.clone(),
                netstack: Some(s("defaultTcpipStack")),
            })
            .unwrap(),
            Command::VmknicAdd(Box::new(RawVmknic {
                netstack: Some(s("defaultTcpipStack")),
                ..raw
            }))
        );
        assert_eq!(
            parse(Action::VmknicRemove {
                vmknic: s("iSCSI_SAN")
            })
            .unwrap(),
            Command::VmknicRemove(vref("iSCSI_SAN"))
        );
        assert_eq!(
            parse(Action::VmknicEnable { vmknic: s("vmk0") }).unwrap(),
            Command::VmknicSetEnabled(vref("vmk0"), true)
        );
        assert_eq!(
            parse(Action::VmknicDisable { vmknic: s("vmk0") }).unwrap(),
            Command::VmknicSetEnabled(vref("vmk0"), false)
        );
    }

    #[test]
    fn test_parse_mtu() {
        let set = |mtu| Action::VmknicSetMtu {
            vmknic: s("vmk1"),
            mtu,
        };
        for mtu in [68, 1500, 9000] {
            assert_eq!(
                parse(set(u32::from(mtu))).unwrap(),
                Command::VmknicSetMtu {
                    vmknic: vref("vmk1"),
                    mtu
                }
            );
        }
        for mtu in [0, 67, 9001, 65_536, u32::MAX] {
            assert_eq!(
                refused(set(mtu)),
                format!("vmknic (vmk1).mtu = {mtu}: MTU must be between 68 and 9000")
            );
        }
    }

    #[test]
    fn test_parse_set_address() {
        let set = |ip: &str| Action::VmknicSetAddress {
            vmknic: s("VMotion"),
            ip: s(ip),
            gateway: None,
        };
        assert_eq!(
            parse(set("198.18.2.5/24")).unwrap(),
            Command::VmknicSetAddress {
                vmknic: vref("VMotion"),
                address: Ipv4Setting::Static(net("198.18.2.5/24")),
                gateway: None,
            }
        );
        // With its gateway, in one change; a gateway without a static address is refused.
        let with_gw = |ip: &str, gw: &str| Action::VmknicSetAddress {
            vmknic: s("VMotion"),
            ip: s(ip),
            gateway: Some(s(gw)),
        };
        assert_eq!(
            parse(with_gw("198.18.2.5/24", "198.18.2.1")).unwrap(),
            Command::VmknicSetAddress {
                vmknic: vref("VMotion"),
                address: Ipv4Setting::Static(net("198.18.2.5/24")),
                gateway: Some(Ipv4Addr::new(198, 18, 2, 1)),
            }
        );
        assert_eq!(
            refused(with_gw("dhcp", "198.18.2.1")),
            "VMotion: a gateway goes only with a static address"
        );
        assert!(refused(with_gw("198.18.2.5/24", "198.18.2")).contains("198.18.2"));
        for (ip, want) in [
            ("dhcp", Ipv4Setting::Dhcp),
            ("DHCP", Ipv4Setting::Dhcp),
            ("", Ipv4Setting::None),
        ] {
            assert_eq!(
                parse(set(ip)).unwrap(),
                Command::VmknicSetAddress {
                    vmknic: vref("VMotion"),
                    address: want,
                    gateway: None,
                }
            );
        }
        assert_eq!(
            refused(set("dhcpx")),
            "vmknic (VMotion).ip = \"dhcpx\": needs a netmask: `netmask`, `prefix_len` or ip/len"
        );
        assert_eq!(
            refused(set("198.18.2.5/33")),
            "vmknic (VMotion).ip = \"198.18.2.5/33\": expected a.b.c.d/len with len 1-32"
        );
        assert_eq!(
            refused(set("x/24")),
            "vmknic (VMotion).ip = \"x/24\": expected a.b.c.d/len with len 1-32"
        );
        assert_eq!(
            refused(set("198.18.2.5")),
            "vmknic (VMotion).ip = \"198.18.2.5\": needs a netmask: `netmask`, `prefix_len` or ip/len"
        );
    }

    #[test]
    fn test_parse_routes() {
        assert_eq!(
            parse(Action::RouteAdd {
                network: s("198.18.100.0/24"),
                gateway: s("198.18.1.1")
            })
            .unwrap(),
            Command::RouteAdd {
                network: net("198.18.100.0/24"),
                gateway: ip("198.18.1.1")
            }
        );
        for (network, gateway, want) in [
            ("198.18.100.0", "198.18.1.1", bad_net("198.18.100.0")),
            ("198.18.100.0/33", "198.18.1.1", bad_net("198.18.100.0/33")),
            (
                "198.18.100.1/24",
                "198.18.1.1",
                s("198.18.100.1/24 has host bits set; the network is 198.18.100.0/24"),
            ),
            ("198.18.100.0/24", "198.18.1", bad_addr("198.18.1")),
            ("198.18.100.0/24", "", bad_addr("")),
        ] {
            assert_eq!(
                refused(Action::RouteAdd {
                    network: s(network),
                    gateway: s(gateway)
                }),
                want,
                "{network} via {gateway}"
            );
        }
        assert_eq!(
            parse(Action::RouteRemove {
                network: s("198.18.100.0/24"),
                gateway: None
            })
            .unwrap(),
            Command::RouteRemove {
                network: net("198.18.100.0/24"),
                gateway: None
            }
        );
        assert_eq!(
            parse(Action::RouteRemove {
                network: s("198.18.100.0/24"),
                gateway: Some(s("198.18.1.1"))
            })
            .unwrap(),
            Command::RouteRemove {
                network: net("198.18.100.0/24"),
                gateway: Some(ip("198.18.1.1"))
            }
        );
        assert_eq!(
            refused(Action::RouteRemove {
                network: s("198.18.100.0/24"),
                gateway: Some(s("gw"))
            }),
            bad_addr("gw")
        );
        assert_eq!(
            refused(Action::RouteRemove {
                network: s("x"),
                gateway: None
            }),
            bad_net("x")
        );
        assert_eq!(
            parse(Action::RouteGet {
                source: None,
                destination: s("198.18.100.5")
            })
            .unwrap(),
            Command::RouteGet(ip("198.18.100.5"), None)
        );
        assert_eq!(
            refused(Action::RouteGet {
                source: None,
                destination: s("198.18.100.256")
            }),
            bad_addr("198.18.100.256")
        );
    }

    #[test]
    fn test_parse_gateway_and_neighbor() {
        assert_eq!(
            parse(Action::GatewaySet {
                gateway: s("198.18.1.1")
            })
            .unwrap(),
            Command::GatewaySet(ip("198.18.1.1"))
        );
        assert_eq!(
            refused(Action::GatewaySet { gateway: s("a.b") }),
            bad_addr("a.b")
        );
        assert_eq!(
            parse(Action::GatewayClear { gateway: None }).unwrap(),
            Command::GatewayClear(None)
        );
        assert_eq!(
            parse(Action::GatewayClear {
                gateway: Some(s("198.18.1.1"))
            })
            .unwrap(),
            Command::GatewayClear(Some(ip("198.18.1.1")))
        );
        assert_eq!(
            refused(Action::GatewayClear {
                gateway: Some(s("1.2.3"))
            }),
            bad_addr("1.2.3")
        );
        assert_eq!(
            parse(Action::NeighborRemove {
                ip: s("198.18.1.1"),
                vmknic: None
            })
            .unwrap(),
            Command::NeighborRemove {
                ip: ip("198.18.1.1"),
                vmknic: None
            }
        );
        assert_eq!(
            parse(Action::NeighborRemove {
                ip: s("198.18.1.1"),
                vmknic: Some(s("VMotion"))
            })
            .unwrap(),
            Command::NeighborRemove {
                ip: ip("198.18.1.1"),
                vmknic: Some(vref("VMotion"))
            }
        );
        assert_eq!(
            refused(Action::NeighborRemove {
                ip: s("::1"),
                vmknic: None
            }),
            bad_addr("::1")
        );
    }

    #[test]
    fn test_parse_ping() {
        let ping = |destination: &str, ttl, timeout_ms| Action::Ping {
            destination: s(destination),
            vmknic: Some(s("vmk1")),
            size: 1472,
            df: true,
            ttl,
            timeout_ms,
            seq: 7,
            next_hop: None,
        };
        assert_eq!(
            parse(ping("198.18.1.1", 64, 1000)).unwrap(),
            Command::Ping {
                destination: ip("198.18.1.1"),
                next_hop: None,
                vmknic: Some(vref("vmk1")),
                size: 1472,
                df: true,
                ttl: 64,
                timeout: Duration::from_secs(1),
                seq: 7
            }
        );
        // TTL 0 is sent as 1; the wait is clamped to 1 ms..60 s.
        let Command::Ping { ttl, timeout, .. } = parse(ping("198.18.1.1", 0, 0)).unwrap() else {
            panic!("not a ping");
        };
        assert_eq!((ttl, timeout), (1, Duration::from_millis(1)));
        let Command::Ping { timeout, .. } = parse(ping("198.18.1.1", 1, u32::MAX)).unwrap() else {
            panic!("not a ping");
        };
        assert_eq!(timeout, Duration::from_secs(60));
        assert_eq!(refused(ping("host", 64, 1000)), bad_addr("host"));
    }

    #[test]
    fn test_parse_forwards() {
        assert_eq!(
            parse(Action::ForwardAdd {
                listen: s("127.0.0.1:3260"),
                remote: s("198.18.100.20:3260"),
                vmknic: None,
                max_connections: None
            })
            .unwrap(),
            Command::ForwardAdd {
                listen: "127.0.0.1:3260".parse().unwrap(),
                remote: "198.18.100.20:3260".parse().unwrap(),
                vmknic: None,
                max_connections: DEFAULT_MAX_CONNECTIONS
            }
        );
        let Command::ForwardAdd {
            vmknic,
            max_connections,
            ..
        } = parse(Action::ForwardAdd {
            listen: s("127.0.0.1:3260"),
            remote: s("198.18.100.20:3260"),
            vmknic: Some(s("vmk0")),
            max_connections: Some(3),
        })
        .unwrap()
        else {
            panic!("not a forward");
        };
        assert_eq!((vmknic, max_connections), (Some(vref("vmk0")), 3));
        assert_eq!(
            refused(Action::ForwardAdd {
                listen: s("127.0.0.1"),
                remote: s("198.18.100.20:3260"),
                vmknic: None,
                max_connections: None
            }),
            "listen address `127.0.0.1` is not a.b.c.d:port or [ipv6]:port"
        );
        assert_eq!(
            refused(Action::ForwardAdd {
                listen: s("127.0.0.1:3260"),
                remote: s("198.18.100.20:99999"),
                vmknic: None,
                max_connections: None
            }),
            "remote address `198.18.100.20:99999` is not a.b.c.d:port or [ipv6]:port"
        );
        assert_eq!(
            parse(Action::ForwardRemove {
                listen: s("127.0.0.1:3260")
            })
            .unwrap(),
            Command::ForwardRemove("127.0.0.1:3260".parse().unwrap())
        );
        assert_eq!(
            parse(Action::ForwardRemove {
                listen: s("[::1]:3260")
            })
            .unwrap(),
            Command::ForwardRemove("[::1]:3260".parse().unwrap())
        );
        assert_eq!(
            refused(Action::ForwardRemove {
                listen: s("[::1]3260")
            }),
            "`[::1]3260` is not a.b.c.d:port or [ipv6]:port"
        );
    }

    #[test]
    fn test_parse_probes() {
        let storage = |kind: &str, host: &str, port, timeout_ms| Action::StorageProbe {
            kind: s(kind),
            host: s(host),
            port,
            vmknic: Some(s("NFS")),
            timeout_ms,
            read_test_secs: None,
        };
        assert_eq!(
            parse(storage("iscsi", "198.18.100.20", None, 5000)).unwrap(),
            Command::StorageProbe {
                kind: StorageProbeKind::Iscsi {
                    port: 3260,
                    read_test: None
                },
                host: ip("198.18.100.20").into(),
                vmknic: Some(vref("NFS")),
                timeout: Duration::from_secs(5)
            }
        );
        let Command::StorageProbe { kind, timeout, .. } =
            parse(storage("iscsi", "198.18.100.20", Some(3261), 1)).unwrap()
        else {
            panic!("not a storage probe");
        };
        assert_eq!(
            kind,
            StorageProbeKind::Iscsi {
                port: 3261,
                read_test: None
            }
        );
        assert_eq!(timeout, Duration::from_millis(100), "at least 100 ms");
        let Command::StorageProbe { kind, timeout, .. } =
            parse(storage("nfs", "198.18.100.20", Some(1), 600_000)).unwrap()
        else {
            panic!("not a storage probe");
        };
        assert_eq!(kind, StorageProbeKind::Nfs);
        assert_eq!(timeout, Duration::from_secs(60), "at most 60 s");
        assert_eq!(
            refused(storage("smb", "198.18.100.20", None, 5000)),
            "unknown probe `smb` (iscsi or nfs)"
        );
        assert_eq!(
            refused(storage("nfs", "filer", None, 5000)),
            bad_addr("filer")
        );
        let read = |kind: &str, secs| Action::StorageProbe {
            kind: s(kind),
            host: s("198.18.100.20"),
            port: None,
            vmknic: None,
            timeout_ms: 3000,
            read_test_secs: Some(secs),
        };
        let Command::StorageProbe { kind, .. } = parse(read("iscsi", 5)).unwrap() else {
            panic!("not a storage probe");
        };
        assert_eq!(
            kind,
            StorageProbeKind::Iscsi {
                port: 3260,
                read_test: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(
            refused(read("iscsi", 0)),
            "read test of 0 s: give 1 to 600 seconds"
        );
        assert_eq!(
            refused(read("iscsi", 601)),
            "read test of 601 s: give 1 to 600 seconds"
        );
        assert_eq!(
            refused(read("nfs", 5)),
            "the read test is for iSCSI (probe iscsi --read-test)"
        );

        let tcp = |destination: &str, timeout_ms| Action::TcpProbe {
            destination: s(destination),
            port: 22,
            vmknic: None,
            source: None,
            timeout_ms,
        };
        assert_eq!(
            parse(tcp("198.18.1.1", 0)).unwrap(),
            Command::TcpProbe {
                destination: "198.18.1.1:22".parse().unwrap(),
                vmknic: None,
                source: None,
                timeout: Duration::from_millis(1)
            }
        );
        let from = |vmknic: Option<&str>, source: Option<&str>| Action::TcpProbe {
            destination: s("198.18.1.1"),
            port: 22,
            vmknic: vmknic.map(s),
            source: source.map(s),
            timeout_ms: 1000,
        };
        let Command::TcpProbe { source, .. } = parse(from(None, Some("198.18.2.100"))).unwrap()
        else {
            panic!("not a tcp probe");
        };
        assert_eq!(source, Some(ip("198.18.2.100").into()));
        assert_eq!(
            refused(from(Some("vmk1"), Some("198.18.2.100"))),
            "give a source vmknic or a source address, not both (each chooses the other)"
        );
        assert_eq!(refused(from(None, Some("vmk1"))), bad_addr("vmk1"));
        let Command::TcpProbe { timeout, .. } = parse(tcp("198.18.1.1", u32::MAX)).unwrap() else {
            panic!("not a tcp probe");
        };
        assert_eq!(timeout, Duration::from_secs(120));
        assert_eq!(refused(tcp("198.18.1.", 1000)), bad_addr("198.18.1."));
    }
}
