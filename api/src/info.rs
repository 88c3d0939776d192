//! The typed results of the informational operations, as they travel. Plain types (strings,
//! integers, addresses): a vmknic is its name `vmkN`, so that clients need none of the daemon's
//! crates to read them. The JSON is the daemon's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A vmknic as `vmknic_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmknicInfo {
    /// `vmkN`.
    pub name: String,
    /// Port group.
    pub portgroup: String,
    /// Addresses, primary first, as `a.b.c.d/len`.
    pub addresses: Vec<Ipv4Net>,
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
    /// The netstack it belongs to (`defaultTcpipStack` when a daemon does not say).
    #[serde(default = "default_netstack")]
    pub netstack: String,
    /// How its IPv4 address is set: `static`, `dhcp` or `none`.
    #[serde(default = "default_addressing")]
    pub addressing: String,
    /// With DHCP: the router of the lease, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_router: Option<Ipv4Addr>,
    /// Its own default gateway (ESXi 6.5+ override), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// Why its wire is down although it is enabled (its TAP deleted from outside, its
    /// namespace or bridge gone, its netdev set down); `None` while it is up. The daemon
    /// re-creates and rejoins what it can on its own.
    #[serde(default)]
    pub link_down: Option<String>,
    /// IPv6 addresses with their prefix lengths, the link-local one first (empty: IPv6 off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<ipnet::Ipv6Net>,
    /// Its IPv6 addresses as the data plane holds them (autoconfigured ones included), each
    /// with its DAD status; empty while the vmknic is down or IPv6 is off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_addresses: Vec<Ipv6AddressInfo>,
    /// Router-advertisement autoconfiguration is on (`esxcfg-vmknic -P`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6_autoconf: bool,
    /// DHCPv6 is on (`esxcli network ip interface ipv6 set -d true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6_dhcp: bool,
}

/// One IPv6 address of a vmknic with its state (RFC 4862).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6AddressInfo {
    /// Address and prefix length.
    pub address: ipnet::Ipv6Net,
    /// How it was configured: `link-local`, `static`, `autoconf` (from a Router
    /// Advertisement) or `dhcp` (from a DHCPv6 server).
    pub origin: String,
    /// ESXi's status: `TENTATIVE` (duplicate address detection running), `PREFERRED`,
    /// `DEPRECATED` (autoconf, past its preferred lifetime) or `DUPLICATE` (another node holds
    /// it: not used).
    pub status: String,
    /// (Autoconf, DHCP) seconds until it is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_s: Option<u64>,
    /// (Autoconf, DHCP) seconds until it is deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_s: Option<u64>,
}

fn default_netstack() -> String {
    "defaultTcpipStack".to_string()
}

fn default_addressing() -> String {
    "static".to_string()
}

/// One netstack as `netstack_list` and `netstack_get` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetstackInfo {
    /// Its name (ESXi shows it as Key and Name).
    pub name: String,
    /// Its configured default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Whether it forwards between its vmknics.
    pub forwarding: bool,
    /// Its vmknics.
    pub vmknics: Vec<String>,
    /// Its static routes.
    pub routes: usize,
    /// The most TCP connections its endpoint holds at once (ESXi's Max Connections): its
    /// forwards' limits and the probes'. 0 from a daemon that does not say.
    #[serde(default)]
    pub max_connections: u64,
    /// Its TCP congestion control (ESXi's Congestion Control Algorithm: `newreno` or
    /// `cubic`). Empty from a daemon that does not say.
    #[serde(default)]
    pub congestion_control: String,
}

/// The default gateway as `gateway_show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// The configured gateway.
    pub gateway: Option<Ipv4Addr>,
    /// False when it is on no vmknic subnet.
    pub active: bool,
    /// Its egress vmknic (`vmkN`) when active.
    pub vmknic: Option<String>,
}

/// A neighbour as `neighbor_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborInfo {
    /// Address (IPv4 from ARP, IPv6 from Neighbour Discovery).
    pub ip: std::net::IpAddr,
    /// MAC, once resolved.
    pub mac: Option<String>,
    /// vmknic (`vmkN`) it was learned on.
    pub vmknic: String,
    /// `reachable`, `incomplete` or `failed`.
    pub state: String,
    /// Seconds until it expires.
    pub expiry_s: Option<u64>,
}

/// Counters of one vmknic, with drops by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersInfo {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets forwarded out of this vmknic.
    pub forwarded: u64,
    /// Packets delivered locally.
    pub delivered: u64,
    /// ICMP errors sent.
    pub icmp_errors: u64,
    /// TCP super-frames forwarded whole.
    #[serde(default)]
    pub gso_forwarded: u64,
    /// TCP super-frames cut into segments by the daemon.
    #[serde(default)]
    pub gso_segmented: u64,
    /// Non-zero drop counters, by reason.
    pub drops: Vec<(String, u64)>,
}

/// Counters of one vmknic, as `stats` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsInfo {
    /// `vmkN`.
    pub vmknic: String,
    /// Its counters.
    pub counters: CountersInfo,
}

/// One data-plane stage's cost, as `runtime` shows it (VPP's `show runtime`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    /// The stage's name (`port-recv`, `handle`, ...).
    pub stage: String,
    /// Times it ran.
    pub calls: u64,
    /// Packets it handled (0 for stages that run once per turn).
    pub packets: u64,
    /// Nanoseconds it took in all.
    pub nanos: u64,
    /// The netstack whose engine ran it; absent when the daemon runs one netstack only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netstack: Option<String>,
}

/// One echo answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    /// ICMP bytes received (payload + 8).
    pub bytes: usize,
    /// Who answered.
    pub from: std::net::IpAddr,
    /// Sequence number.
    pub seq: u16,
    /// TTL of the reply.
    pub ttl: u8,
    /// Round trip in microseconds.
    pub rtt_us: u64,
    /// The resolved destination (`PING host (ip)`).
    pub destination: std::net::IpAddr,
}

/// A TCP probe that connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Local endpoint used.
    pub source: String,
    /// Time to connect, in microseconds.
    pub connect_us: u64,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteOrigin {
    /// A vmknic's own subnet (`Local Subnet`).
    Connected,
    /// A static route.
    Static,
    /// The default gateway.
    Default,
}

impl fmt::Display for RouteOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteOrigin::Connected => "connected",
            RouteOrigin::Static => "static",
            RouteOrigin::Default => "default",
        })
    }
}

/// One row of `route6_list` (in ESX order), active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route6Info {
    /// Destination network (`::/0` for the default gateway).
    pub network: ipnet::Ipv6Net,
    /// The gateway as configured (`fe80::1%vmk0` for a link-local one); `None` for a
    /// `Local Subnet` row.
    pub gateway: Option<String>,
    /// Egress vmknic (`vmkN`); `None` when the route is inactive.
    pub vmknic: Option<String>,
    /// Where the route came from.
    pub origin: RouteOrigin,
    /// False for a configured route whose gateway is on no vmknic prefix.
    pub active: bool,
    /// The default route to a router learned from its advertisements (not configured).
    #[serde(default)]
    pub learned: bool,
}

/// One row of `route_list` (in ESX order), active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// Destination network (`0.0.0.0/0` for the default gateway).
    pub network: Ipv4Net,
    /// The gateway; `None` for a `Local Subnet` row.
    pub gateway: Option<Ipv4Addr>,
    /// Egress vmknic (`vmkN`); `None` when the route is inactive.
    pub vmknic: Option<String>,
    /// Where the route came from.
    pub origin: RouteOrigin,
    /// False for a configured route whose gateway is on no vmknic subnet.
    pub active: bool,
}

/// `route_get`'s answer: which route, vmknic, gateway and source traffic to a destination uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteExplanation {
    /// The address asked about.
    pub destination: Ipv4Addr,
    /// The route that wins the longest-prefix match.
    pub route: Ipv4Net,
    /// Where that route came from.
    pub origin: RouteOrigin,
    /// Egress vmknic (`vmkN`).
    pub vmknic: String,
    /// Gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The address ARP resolves: the gateway, or the destination itself.
    pub next_hop: Ipv4Addr,
    /// Source address of locally sent packets.
    pub source: Ipv4Addr,
    /// Why this gateway wins when it is not simply the route's (a vmknic's own default
    /// gateway, ESXi 6.5+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl fmt::Display for RouteExplanation {
    /// `ip route get` style: `198.18.100.5 via 198.18.1.1 dev vmk0 src 198.18.1.100 ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        write!(
            f,
            " dev {} src {} route {} ({})",
            self.vmknic, self.source, self.route, self.origin
        )?;
        if let Some(why) = &self.why {
            write!(f, "\n  {why}")?;
        }
        Ok(())
    }
}

/// `route_list`'s rows, wrapped (a convenience for clients; the wire result is the bare list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteListResult {
    /// Rows in ESX order.
    pub routes: Vec<RouteInfo>,
}

/// `route_get`'s answer.
pub type RouteGetResult = RouteExplanation;

/// One step of a probe and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked (`tcp connect 198.18.100.20:3260`, `rpc null mountd v3`, ...).
    pub what: String,
    /// True when it worked.
    pub ok: bool,
    /// The diagnosis or the answer.
    pub detail: String,
    /// How long it took, in microseconds.
    pub us: u64,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// `iscsi` or `nfs`.
    pub kind: String,
    /// The server.
    pub host: IpAddr,
    /// Each step in order.
    pub checks: Vec<Check>,
    /// iSCSI targets and their portals.
    pub targets: Vec<TargetInfo>,
    /// NFS exports.
    pub exports: Vec<ExportInfo>,
    /// True when every check passed.
    pub ok: bool,
    /// The figures of an iSCSI read test (`--read-test`), when one ran to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_test: Option<ReadTestInfo>,
}

/// What an iSCSI read test measured: sequential reads from the first disk LUN of a target
/// through the stack's own TCP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadTestInfo {
    /// The target read from.
    pub target: String,
    /// The LUN read from.
    pub lun: u32,
    /// Its block size in bytes.
    pub block_size: u32,
    /// Its size in bytes.
    pub capacity_bytes: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Seconds from the first read to the last answer.
    pub secs: f64,
    /// Throughput, 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Bytes per READ(16).
    pub request_bytes: u32,
    /// READ(16) commands in flight.
    pub queue_depth: u32,
}

/// A target as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// IQN.
    pub name: String,
    /// `addr:port,tpgt`.
    pub portals: Vec<String>,
}

/// An export as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// Path.
    pub path: String,
    /// Who may mount it.
    pub groups: Vec<String>,
}

/// One port forward as `forward_list` shows it: its configuration and its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardInfo {
    /// Kernel address it listens on, in the daemon's namespace.
    pub listen: SocketAddr,
    /// Where the stack connects.
    pub remote: SocketAddr,
    /// Source vmknic (`vmkN`); by default the routing core picks it.
    pub vmknic: Option<String>,
    /// Most connections at once.
    pub max_connections: usize,
    /// Connections open now.
    pub active: usize,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections refused (over the limit, or no route from the stack).
    pub refused: u64,
    /// Bytes relayed client → remote.
    pub bytes_out: u64,
    /// Bytes relayed remote → client.
    pub bytes_in: u64,
    /// Bytes per second client → remote over the last interval (about a second).
    #[serde(default)]
    pub rate_out: u64,
    /// Bytes per second remote → client over the last interval.
    #[serde(default)]
    pub rate_in: u64,
    /// The netstack whose endpoint connects (ESXi's `-N`).
    #[serde(default)]
    pub netstack: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_explanation_display() {
        let e = RouteExplanation {
            destination: Ipv4Addr::new(198, 18, 100, 5),
            route: "198.18.100.0/24".parse().unwrap(),
            origin: RouteOrigin::Static,
            vmknic: "vmk0".into(),
            gateway: Some(Ipv4Addr::new(198, 18, 1, 1)),
            next_hop: Ipv4Addr::new(198, 18, 1, 1),
            source: Ipv4Addr::new(198, 18, 1, 100),
            why: None,
        };
        assert_eq!(
            e.to_string(),
            "198.18.100.5 via 198.18.1.1 dev vmk0 src 198.18.1.100 route 198.18.100.0/24 (static)"
        );
    }

    #[test]
    fn test_parse_daemon_json() {
        let s: StatsInfo = serde_json::from_str(
            r#"{"vmknic":"vmk0","counters":{"rx_packets":1,"rx_bytes":2,"tx_packets":3,
            "tx_bytes":4,"forwarded":5,"delivered":6,"icmp_errors":7,"drops":[["no_route",2]]}}"#,
        )
        .unwrap();
        assert_eq!(s.vmknic, "vmk0");
        assert_eq!(s.counters.gso_forwarded, 0, "absent in older daemons");
        assert_eq!(s.counters.drops, vec![("no_route".to_string(), 2)]);
        let r: RouteInfo = serde_json::from_str(
            r#"{"network":"0.0.0.0/0","gateway":"198.18.0.254","vmknic":null,
            "origin":"default","active":false}"#,
        )
        .unwrap();
        assert_eq!(r.origin, RouteOrigin::Default);
        assert_eq!(r.vmknic, None);
    }
}
