//! The configuration file: the netstacks, their vmknics, static routes and default gateways.
//!
//! Like esx.conf it is the single store of what the stack should be. It is read in two steps:
//! TOML into [`RawConfig`] (strings as written, unknown keys refused), then [`RawConfig::validate`]
//! into a typed [`Config`], collecting every bad value as an error that names the file, the key,
//! the value and the rule it breaks. A default gateway outside every vmknic subnet is *not* a
//! configuration error: as on ESX the stack starts and reports it (see [`Config::routing`]).
//!
//! ```toml
//! netstack = "defaultTcpipStack"
//! forwarding = false
//! offloads = true               # checksum/TSO offloads on the TAPs (IFF_VNET_HDR)
//! busy_poll_us = 100            # longest adaptive poll window after traffic (latency; 0 = off)
//! io = "syscalls"               # TAP I/O: "syscalls" (read/write per frame) or "uring" (batched)
//! workers = 1                   # data-plane threads, one TAP queue each (IFF_MULTI_QUEUE when > 1)
//! metrics_listen = "127.0.0.1:9469"  # Prometheus `GET /metrics` (default: off)
//! default_gateway = "192.168.1.1"
//!
//! [[vmknic]]
//! name = "vmk0"
//! portgroup = "iSCSI_SAN"
//! ip = "192.168.1.100"
//! netmask = "255.255.255.0"     # or prefix_len = 24, or ip = "192.168.1.100/24"
//!
//! [[route]]
//! network = "192.168.100.0/24"  # or network = "192.168.100.0" with netmask = "255.255.255.0"
//! gateway = "192.168.1.1"
//!
//! # More netstacks (ESXi 6.0+: `vmotion`, `provisioning`, custom ones), each with its own
//! # routing table, default gateway and ARP table. The top-level keys describe the default one.
//! [[netstack_instance]]
//! name = "vmotion"
//! default_gateway = "192.168.50.1"
//! forwarding = false
//! [[netstack_instance.route]]
//! network = "192.168.60.0/24"
//! gateway = "192.168.50.1"
//!
//! [[vmknic]]
//! name = "vmk2"
//! portgroup = "vMotion"
//! ip = "192.168.50.10/24"
//! netstack = "vmotion"          # default: the top-level netstack
//! gateway = "192.168.50.254"    # this vmknic's own default gateway (ESXi 6.5+ override)
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use vmkstack_routing::{
    host_address6_problem, host_address_problem, is_link_local6, netmask_len, parse_addr,
    parse_network, parse_network6, prefix::network_with_mask, Gateway6, Route6Error, RouteError,
    RoutingTable, RoutingTable6, VmknicId, GATEWAY_UNREACHABLE,
};
use vmkstack_vmknic::{validate_tap_name, MacAddr, DEFAULT_MTU, MAX_MTU, MIN_MTU};

/// ESXi's name for the default netstack.
pub const DEFAULT_NETSTACK: &str = "defaultTcpipStack";
/// Most netstacks in one daemon, the default one included (each is an engine with its own
/// buffers; the event loop's tokens leave room for 255).
pub const MAX_NETSTACKS: usize = 16;

/// Connections per forward when none is configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// One forward as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardSpec {
    /// Kernel address to listen on, in the daemon's namespace.
    pub listen: SocketAddr,
    /// Where the stack connects.
    pub remote: SocketAddr,
    /// Source vmknic (`-I`); by default the routing core picks it.
    pub vmknic: Option<VmknicId>,
    /// Most connections at once; more are refused (reset) and counted.
    pub max_connections: usize,
    /// The netstack whose endpoint connects (ESXi's `-N`; the top-level one by default).
    pub netstack: String,
}

/// How the data plane reads and writes its TAPs (the configuration's `io`). The default is
/// chosen by measurement (README, performance): io_uring forwards small packets faster for
/// less CPU, plain system calls forward TCP faster on this kernel, and TCP is what storage
/// users move. A writer thread per TAP queue for the super-frames (`threaded`) carried a TCP
/// stream routed through the stack faster in every round on a loaded 2-vCPU machine, but not
/// on a quiet one (0.87-1.01 of system calls): opt-in, for hosts whose cores are busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// io_uring: one multishot read per TAP into provided buffers, small writes submitted
    /// together once per turn. Falls back to [`IoMode::Syscalls`] where io_uring is
    /// unavailable or refused (the start-up log says so).
    Uring,
    /// One `read` or `write` system call per frame, on the event loop.
    #[default]
    Syscalls,
    /// System calls, with the TCP super-frames written by a writer thread per TAP queue
    /// (the kernel's work behind the TAP, a router's and a receiver's TCP, then runs beside
    /// the event loop instead of inside it). Falls back to [`IoMode::Syscalls`] when the
    /// thread cannot start.
    Threaded,
}

impl IoMode {
    /// The configuration's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            IoMode::Uring => "uring",
            IoMode::Syscalls => "syscalls",
            IoMode::Threaded => "threaded",
        }
    }
}

/// `busy_poll_us` when none is configured: long enough for a reply across a namespace
/// (about 20 µs here), short beside a wake-up's cost when the line goes quiet.
pub const DEFAULT_BUSY_POLL_US: u32 = 100;

/// Longest `busy_poll_us` (one second).
pub const MAX_BUSY_POLL_US: u32 = 1_000_000;

/// `workers` when none is configured (README, performance: chosen by measurement).
pub const DEFAULT_WORKERS: usize = 1;

/// Most data-plane workers: each is a thread and a queue of every TAP (Linux allows 256 queues
/// per TAP; more threads than cores only adds switches).
pub const MAX_WORKERS: usize = 16;

/// The file as written: strings and numbers, before any rule is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Netstack name (default `defaultTcpipStack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netstack: Option<String>,
    /// Forward between vmknics (default off, as the VMkernel does not forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<bool>,
    /// Checksum and TCP segmentation offloads on the TAPs (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloads: Option<bool>,
    /// Longest window, in microseconds, the data plane keeps polling after a frame before it
    /// sleeps (adaptive below it; default 100, 0 = always sleep at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_poll_us: Option<u32>,
    /// TAP I/O: `syscalls` (one `read` or `write` per frame, the default) or `uring`
    /// (batched on io_uring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<String>,
    /// Data-plane worker threads, each on its own queue of every TAP (default
    /// [`DEFAULT_WORKERS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// The one default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_gateway: Option<String>,
    /// A group whose members may change the stack through the control socket (default:
    /// root only; the socket is then mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_group: Option<String>,
    /// How vmknics without a `mac` get theirs: `local` (default) or `vmware`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_style: Option<String>,
    /// Where Prometheus scrapes the metrics (`address:port`; default: not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// VMkernel interfaces.
    #[serde(default, rename = "vmknic", skip_serializing_if = "Vec::is_empty")]
    pub vmknics: Vec<RawVmknic>,
    /// Static routes.
    #[serde(default, rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RawRoute>,
    /// Port forwards through the stack.
    #[serde(default, rename = "forward", skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<RawForward>,
    /// The one IPv6 default gateway (`addr`, or `fe80::1%vmk0` for a link-local one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_default_gateway: Option<String>,
    /// IPv6 static routes.
    #[serde(default, rename = "route6", skip_serializing_if = "Vec::is_empty")]
    pub routes6: Vec<RawRoute6>,
    /// Netstacks beside the top-level one.
    #[serde(
        default,
        rename = "netstack_instance",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub netstacks: Vec<RawNetstack>,
}

/// One `[[netstack_instance]]` table as written: a netstack beside the top-level one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetstack {
    /// Its name (`vmotion`, `provisioning`, or a custom one).
    pub name: String,
    /// Forward between its vmknics (default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<bool>,
    /// Its one default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_gateway: Option<String>,
    /// Its static routes.
    #[serde(default, rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RawRoute>,
    /// Its one IPv6 default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_default_gateway: Option<String>,
    /// Its IPv6 static routes.
    #[serde(default, rename = "route6", skip_serializing_if = "Vec::is_empty")]
    pub routes6: Vec<RawRoute6>,
}

/// One `[[forward]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// Kernel address to listen on, `a.b.c.d:port` or `[ipv6]:port`.
    pub listen: String,
    /// Where the stack connects, `a.b.c.d:port` or `[ipv6]:port`.
    pub remote: String,
    /// Source vmknic (`vmkN`); by default the routing core picks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmknic: Option<String>,
    /// Most connections at once (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// The netstack whose endpoint connects (default: the top-level one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netstack: Option<String>,
}

/// One `[[vmknic]]` table as written: the control protocol's type, so that `vmknic_add`
/// carries exactly what the file holds.
pub use vmkstack_api::RawVmknic;

/// One `[[route]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// `a.b.c.d/len`, or `a.b.c.d` with `netmask`.
    pub network: String,
    /// Dotted netmask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    /// The gateway, on a vmknic subnet.
    pub gateway: String,
}

/// One `[[route6]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute6 {
    /// `addr/len`.
    pub network: String,
    /// The gateway: on a vmknic IPv6 prefix, or link-local with its vmknic (`fe80::1%vmk0`).
    pub gateway: String,
}

/// How a vmknic without a configured `mac` gets one (config key `mac_style`). Both derive it
/// from the vmknic's name, so it is the same after every restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MacStyle {
    /// Locally administered (`x2:…`, [`MacAddr::local_from_name`]): no vendor's, so a lab
    /// never collides with a real VMware MAC. The default.
    #[default]
    Local,
    /// VMware's OUI as ESXi gives vmknics (`00:50:56:…`, [`MacAddr::vmware_from_name`]), for
    /// labs where tools or people expect ESXi's form.
    Vmware,
}

impl MacStyle {
    /// The word the file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MacStyle::Local => "local",
            MacStyle::Vmware => "vmware",
        }
    }

    /// The MAC of vmknic `name` in this style.
    pub fn mac_for(self, name: &str) -> MacAddr {
        match self {
            MacStyle::Local => MacAddr::local_from_name(name),
            MacStyle::Vmware => MacAddr::vmware_from_name(name),
        }
    }
}

/// A validated netstack configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Netstack name.
    pub netstack: String,
    /// Forward between vmknics.
    pub forwarding: bool,
    /// Checksum and TCP segmentation offloads on the TAPs (`IFF_VNET_HDR`): TCP super-frames
    /// cross the stack whole instead of one MTU-sized frame per system call.
    pub offloads: bool,
    /// The longest window the data plane keeps polling after a frame before it sleeps: a
    /// frame that arrives meanwhile skips the wake-up of a sleeping thread. The window adapts
    /// below it to the gaps between frames (`governor`), so an idle stack sleeps at once
    /// (Linux's `net.core.busy_poll` in spirit, in microseconds; 0 = off).
    pub busy_poll_us: u32,
    /// How the TAPs' frames are read and written.
    pub io: IoMode,
    /// Data-plane threads: worker 0 is the event loop (everything), workers 1.. forward
    /// what they can on queue `i` of every TAP (`IFF_MULTI_QUEUE` when more than one).
    pub workers: usize,
    /// The configured default gateway, reachable or not.
    pub default_gateway: Option<Ipv4Addr>,
    /// The group allowed to change state through the control socket.
    pub control_group: Option<String>,
    /// How vmknics without a configured MAC get theirs.
    pub mac_style: MacStyle,
    /// Where the Prometheus text exposition is served (`GET /metrics`), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// VMkernel interfaces, in vmk order.
    pub vmknics: Vec<VmknicConfig>,
    /// Static routes in file order.
    pub routes: Vec<StaticRoute>,
    /// Port forwards.
    pub forwards: Vec<ForwardSpec>,
    /// The netstacks beside the top-level one (`netstack`, `forwarding`, `default_gateway`
    /// and `routes` above), in file order.
    pub netstacks: Vec<NetstackConfig>,
    /// The configured IPv6 default gateway, reachable or not.
    pub ipv6_default_gateway: Option<Gateway6>,
    /// IPv6 static routes in file order.
    pub routes6: Vec<StaticRoute6>,
}

/// A validated netstack beside the top-level one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetstackConfig {
    /// Its name.
    pub name: String,
    /// Forward between its vmknics.
    pub forwarding: bool,
    /// Its configured default gateway, reachable or not.
    pub default_gateway: Option<Ipv4Addr>,
    /// Its static routes in file order.
    pub routes: Vec<StaticRoute>,
    /// Its configured IPv6 default gateway, reachable or not.
    pub ipv6_default_gateway: Option<Gateway6>,
    /// Its IPv6 static routes in file order.
    pub routes6: Vec<StaticRoute6>,
}

/// A validated vmknic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmknicConfig {
    /// `vmkN`.
    pub id: VmknicId,
    /// Port group.
    pub portgroup: String,
    /// Primary address with prefix length (host bits are the address); `None` for a vmknic
    /// added without one (`esxcli network ip interface add`) or whose address comes from
    /// DHCP (the lease is run-time state, never written to the file).
    pub address: Option<Ipv4Net>,
    /// The address comes from DHCP (`ip = "dhcp"`, ESX's `esxcfg-vmknic -i DHCP`).
    pub dhcp: bool,
    /// Further addresses.
    pub extra_addresses: Vec<Ipv4Net>,
    /// MAC address.
    pub mac: MacAddr,
    /// True when the MAC came from the file rather than from the name.
    pub mac_configured: bool,
    /// MTU.
    pub mtu: u16,
    /// Enabled.
    pub enabled: bool,
    /// TAP device name.
    pub tap: String,
    /// Bridge to join.
    pub bridge: Option<String>,
    /// Namespace for the TAP's kernel side.
    pub netns: Option<String>,
    /// The netstack it belongs to.
    pub netstack: String,
    /// Its own default gateway (ESXi 6.5+), on one of its subnets.
    pub gateway: Option<Ipv4Addr>,
    /// Static IPv6 addresses with their prefix lengths; IPv6 is on when there is one.
    pub ipv6: Vec<Ipv6Net>,
    /// Router-advertisement autoconfiguration (ESXi's `esxcfg-vmknic -P`): Router
    /// Solicitations at start, SLAAC addresses and a default router from advertisements.
    /// IPv6 is on with it too.
    pub ipv6_autoconf: bool,
    /// DHCPv6 (ESXi's `esxcli network ip interface ipv6 set -d true`, `ipv6_dhcp`): a
    /// stateful DHCPv6 client asks for an address (the lease is run-time state, never written
    /// to the file). IPv6 is on with it too.
    pub ipv6_dhcp: bool,
    /// IPv6 on without any address source (`ipv6_enabled = true`, `esxcli network ip
    /// interface ipv6 set -e true`): the link-local address alone.
    pub ipv6_on: bool,
}

impl VmknicConfig {
    /// Every address, primary first.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        self.address
            .into_iter()
            .chain(self.extra_addresses.iter().copied())
    }

    /// True when IPv6 is on: switched on, or the vmknic has a static IPv6 address,
    /// autoconfiguration or DHCPv6.
    pub fn ipv6_enabled(&self) -> bool {
        self.ipv6_on || !self.ipv6.is_empty() || self.ipv6_autoconf || self.ipv6_dhcp
    }

    /// The link-local address derived from the MAC (EUI-64, RFC 4291 appendix A), `/64`.
    pub fn link_local6(&self) -> Ipv6Net {
        let m = self.mac.0;
        let addr = Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ]);
        Ipv6Net::new(addr, 64).unwrap_or_default()
    }

    /// Every IPv6 address: the link-local one first, then the static ones (none when IPv6
    /// is off).
    pub fn addresses6(&self) -> impl Iterator<Item = Ipv6Net> + '_ {
        let ll = self.ipv6_enabled().then(|| self.link_local6());
        ll.into_iter().chain(self.ipv6.iter().copied())
    }

    /// The file form of the primary address: `a.b.c.d/len`, `dhcp`, or empty for none.
    pub fn ip_text(&self) -> String {
        match (self.dhcp, self.address) {
            (true, _) => IP_DHCP.to_string(),
            (false, Some(a)) => a.to_string(),
            (false, None) => String::new(),
        }
    }
}

/// The value of a vmknic's `ip` whose address comes from DHCP (any case, as ESX's `-i DHCP`).
pub const IP_DHCP: &str = "dhcp";

/// A validated IPv6 static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute6 {
    /// Destination network.
    pub network: Ipv6Net,
    /// Gateway.
    pub gateway: Gateway6,
}

/// A validated static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination network.
    pub network: Ipv4Net,
    /// Gateway.
    pub gateway: Ipv4Addr,
}

/// One bad value: where it is, what it is, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, such as `vmknic[1] (vmk1).mtu`.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// The rule it breaks.
    pub rule: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.key, self.value, self.rule)
    }
}

/// Why a configuration file was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, a wrong type, or an unknown key (toml's message points at the line).
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// toml's message, with line and column.
        message: String,
    },
    /// One or more values break a rule.
    #[error("{file}: {} problem{}:\n{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" },
        .problems.iter().map(|p| format!("  {file}: {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        file: String,
        /// Every bad value found.
        problems: Vec<Problem>,
    },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        raw.validate().map_err(|problems| ConfigError::Invalid {
            file: file.to_string(),
            problems,
        })
    }

    /// The routing table this configuration gives, built as ESX starts up: unreachable
    /// gateways and routes are kept inactive and reported (the default gateway with ESX's
    /// exact message).
    ///
    /// This is the table of the top-level netstack: only its vmknics count (see
    /// [`Config::view`] for the others).
    pub fn routing(&self) -> (RoutingTable, Vec<RouteError>) {
        RoutingTable::from_config(
            self.vmknics
                .iter()
                .filter(|v| v.netstack == self.netstack)
                .map(|v| (v.id, v.addresses().collect(), v.enabled)),
            self.default_gateway,
            self.routes.iter().map(|r| (r.network, r.gateway)),
        )
    }

    /// The IPv6 routing table of the top-level netstack, built as [`Config::routing`] builds
    /// the IPv4 one.
    pub fn routing6(&self) -> (RoutingTable6, Vec<Route6Error>) {
        RoutingTable6::from_config(
            self.vmknics
                .iter()
                .filter(|v| v.netstack == self.netstack)
                .map(|v| (v.id, v.addresses6().collect(), v.enabled)),
            self.ipv6_default_gateway,
            self.routes6.iter().map(|r| (r.network, r.gateway)),
        )
    }

    /// The names of the netstacks: the top-level one first, then the others in file order.
    pub fn netstack_names(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.netstack.as_str())
            .chain(self.netstacks.iter().map(|n| n.name.as_str()))
    }

    /// True when netstack `name` is configured.
    pub fn has_netstack(&self, name: &str) -> bool {
        self.netstack_names().any(|n| n == name)
    }

    /// Netstack `name` as a configuration of its own: its gateway, routes, forwarding switch
    /// and vmknics at the top level, no other netstack (what one engine runs). The top-level
    /// netstack's forwards. `None` if there is no such netstack.
    pub fn view(&self, name: &str) -> Option<Config> {
        let mut v = self.clone();
        v.netstacks.clear();
        if name != self.netstack {
            let n = self.netstacks.iter().find(|n| n.name == name)?;
            v.netstack = n.name.clone();
            v.forwarding = n.forwarding;
            v.default_gateway = n.default_gateway;
            v.routes = n.routes.clone();
            v.ipv6_default_gateway = n.ipv6_default_gateway;
            v.routes6 = n.routes6.clone();
        }
        v.forwards.retain(|f| f.netstack == name);
        v.vmknics.retain(|x| x.netstack == name);
        Some(v)
    }

    /// The configured default gateway of netstack `name` (`None` if no such netstack).
    pub fn gateway_of(&self, name: &str) -> Option<Option<Ipv4Addr>> {
        if name == self.netstack {
            return Some(self.default_gateway);
        }
        self.netstacks
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.default_gateway)
    }

    /// The default gateway of netstack `name`, to change (`None` if no such netstack).
    pub fn gateway_of_mut(&mut self, name: &str) -> Option<&mut Option<Ipv4Addr>> {
        if name == self.netstack {
            return Some(&mut self.default_gateway);
        }
        self.netstacks
            .iter_mut()
            .find(|n| n.name == name)
            .map(|n| &mut n.default_gateway)
    }

    /// The static routes of netstack `name` (`None` if no such netstack).
    pub fn routes_of(&self, name: &str) -> Option<&Vec<StaticRoute>> {
        if name == self.netstack {
            return Some(&self.routes);
        }
        self.netstacks
            .iter()
            .find(|n| n.name == name)
            .map(|n| &n.routes)
    }

    /// The static routes of netstack `name`, to change (`None` if no such netstack).
    pub fn routes_of_mut(&mut self, name: &str) -> Option<&mut Vec<StaticRoute>> {
        if name == self.netstack {
            return Some(&mut self.routes);
        }
        self.netstacks
            .iter_mut()
            .find(|n| n.name == name)
            .map(|n| &mut n.routes)
    }

    /// The IPv6 default gateway and static routes of netstack `name`, to change (`None` if
    /// no such netstack).
    pub fn v6_of_mut(
        &mut self,
        name: &str,
    ) -> Option<(&mut Option<Gateway6>, &mut Vec<StaticRoute6>)> {
        if name == self.netstack {
            return Some((&mut self.ipv6_default_gateway, &mut self.routes6));
        }
        self.netstacks
            .iter_mut()
            .find(|n| n.name == name)
            .map(|n| (&mut n.ipv6_default_gateway, &mut n.routes6))
    }

    /// The file form, for writing back (defaults are written out explicitly).
    pub fn to_raw(&self) -> RawConfig {
        RawConfig {
            netstack: Some(self.netstack.clone()),
            forwarding: Some(self.forwarding),
            offloads: Some(self.offloads),
            busy_poll_us: (self.busy_poll_us != DEFAULT_BUSY_POLL_US).then_some(self.busy_poll_us),
            io: (self.io != IoMode::default()).then(|| self.io.as_str().to_string()),
            workers: (self.workers != DEFAULT_WORKERS).then_some(self.workers as u32),
            default_gateway: self.default_gateway.map(|g| g.to_string()),
            control_group: self.control_group.clone(),
            mac_style: (self.mac_style != MacStyle::default())
                .then(|| self.mac_style.as_str().to_string()),
            metrics_listen: self.metrics_listen.map(|a| a.to_string()),
            vmknics: self
                .vmknics
                .iter()
                .map(|v| RawVmknic {
                    name: v.id.to_string(),
                    portgroup: v.portgroup.clone(),
                    ip: v.ip_text(),
                    netmask: None,
                    prefix_len: None,
                    extra_addresses: v.extra_addresses.iter().map(|a| a.to_string()).collect(),
                    mac: v.mac_configured.then(|| v.mac.to_string()),
                    mtu: Some(i64::from(v.mtu)),
                    enabled: Some(v.enabled),
                    tap: Some(v.tap.clone()),
                    bridge: v.bridge.clone(),
                    netns: v.netns.clone(),
                    netstack: (v.netstack != self.netstack).then(|| v.netstack.clone()),
                    gateway: v.gateway.map(|g| g.to_string()),
                    ipv6: v.ipv6.iter().map(|a| a.to_string()).collect(),
                    ipv6_autoconf: v.ipv6_autoconf.then_some(true),
                    ipv6_enabled: v.ipv6_on.then_some(true),
                    ipv6_dhcp: v.ipv6_dhcp.then_some(true),
                })
                .collect(),
            routes: raw_routes(&self.routes),
            ipv6_default_gateway: self.ipv6_default_gateway.map(|g| g.to_string()),
            routes6: raw_routes6(&self.routes6),
            netstacks: self
                .netstacks
                .iter()
                .map(|n| RawNetstack {
                    name: n.name.clone(),
                    forwarding: Some(n.forwarding),
                    default_gateway: n.default_gateway.map(|g| g.to_string()),
                    routes: raw_routes(&n.routes),
                    ipv6_default_gateway: n.ipv6_default_gateway.map(|g| g.to_string()),
                    routes6: raw_routes6(&n.routes6),
                })
                .collect(),
            forwards: self
                .forwards
                .iter()
                .map(|f| RawForward {
                    listen: f.listen.to_string(),
                    remote: f.remote.to_string(),
                    vmknic: f.vmknic.map(|v| v.to_string()),
                    max_connections: Some(f.max_connections as i64),
                    netstack: (f.netstack != self.netstack).then(|| f.netstack.clone()),
                })
                .collect(),
        }
    }

    /// TOML text of this configuration.
    pub fn to_toml(&self) -> String {
        // Serializing plain strings, numbers and arrays of tables cannot fail.
        toml::to_string(&self.to_raw()).unwrap_or_default()
    }
}

/// Static routes in their file form.
fn raw_routes(routes: &[StaticRoute]) -> Vec<RawRoute> {
    routes
        .iter()
        .map(|r| RawRoute {
            network: r.network.to_string(),
            netmask: None,
            gateway: r.gateway.to_string(),
        })
        .collect()
}

/// IPv6 static routes in their file form.
fn raw_routes6(routes: &[StaticRoute6]) -> Vec<RawRoute6> {
    routes
        .iter()
        .map(|r| RawRoute6 {
            network: r.network.to_string(),
            gateway: r.gateway.to_string(),
        })
        .collect()
}

/// Parses an IPv6 gateway (`addr`, or `fe80::1%vmk0`): unicast, and link-local ones name their
/// vmknic. The same rules and words as `esxcfg-route -f V6`.
pub fn parse_gateway6(text: &str) -> Result<Gateway6, String> {
    let g: Gateway6 = text
        .parse()
        .map_err(|e: vmkstack_routing::Prefix6Error| e.to_string())?;
    if g.addr.is_unspecified() || g.addr.is_loopback() || g.addr.is_multicast() {
        return Err(Route6Error::GatewayNotUnicast { gateway: g.addr }.to_string());
    }
    if is_link_local6(g.addr) && g.vmknic.is_none() {
        return Err(Route6Error::LinkLocalNeedsVmknic { gateway: g.addr }.to_string());
    }
    Ok(g)
}

/// Validates the `[[route6]]` tables under `prefix`.
fn validate_routes6(c: &mut Checker, prefix: &str, raw: &[RawRoute6]) -> Vec<StaticRoute6> {
    let mut routes = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        let network = match parse_network6(&r.network) {
            Ok(n) => n,
            Err(e) => {
                c.bad(format!("{key}.network"), &r.network, e.to_string());
                continue;
            }
        };
        if network.prefix_len() == 0 {
            c.bad(
                format!("{key}.network"),
                &r.network,
                "::/0 is the default route; set `ipv6_default_gateway` instead",
            );
            continue;
        }
        let gateway = match parse_gateway6(&r.gateway) {
            Ok(g) => g,
            Err(e) => {
                c.bad(format!("{key}.gateway"), &r.gateway, e);
                continue;
            }
        };
        if !seen.insert(network) {
            c.bad(
                format!("{key}.network"),
                &r.network,
                format!("a route to {network} is already configured"),
            );
            continue;
        }
        routes.push(StaticRoute6 { network, gateway });
    }
    routes
}

/// The rule a netstack's name follows (also the control request's).
pub fn netstack_name_problem(name: &str) -> Option<&'static str> {
    (name.is_empty()
        || name.len() > 64
        || name
            .chars()
            .any(|ch| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')))
    .then_some("a netstack name is 1-64 letters, digits, `_`, `-` or `.`")
}

/// Validates the `[[route]]` tables under `prefix` (`route` or `netstack_instance[i].route`).
fn validate_routes(c: &mut Checker, prefix: &str, raw: &[RawRoute]) -> Vec<StaticRoute> {
    let mut routes = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        let network = match &r.netmask {
            None => parse_network(&r.network),
            Some(m) => parse_addr(&r.network).and_then(|a| {
                let mask = parse_addr(m)?;
                network_with_mask(a, mask)
            }),
        };
        let network = match network {
            Ok(n) => n,
            Err(e) => {
                let shown = match &r.netmask {
                    Some(m) => format!("{} {}", r.network, m),
                    None => r.network.clone(),
                };
                c.bad(format!("{key}.network"), shown, e.to_string());
                continue;
            }
        };
        if network.prefix_len() == 0 {
            c.bad(
                format!("{key}.network"),
                &r.network,
                "0.0.0.0/0 is the default route; set `default_gateway` instead",
            );
            continue;
        }
        let gateway = match parse_addr(&r.gateway) {
            Ok(g) => g,
            Err(e) => {
                c.bad(format!("{key}.gateway"), &r.gateway, e.to_string());
                continue;
            }
        };
        if !seen.insert(network) {
            c.bad(
                format!("{key}.network"),
                &r.network,
                format!("a route to {network} is already configured"),
            );
            continue;
        }
        routes.push(StaticRoute { network, gateway });
    }
    routes
}

/// Collects problems while validating.
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn bad(&mut self, key: impl Into<String>, value: impl fmt::Display, rule: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            value: format!("\"{value}\""),
            rule: rule.into(),
        });
    }
    fn bad_num(&mut self, key: impl Into<String>, value: i64, rule: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            value: value.to_string(),
            rule: rule.into(),
        });
    }
}

/// An interface address `ip/len`: a host on its subnet, not its network or broadcast address.
fn check_host(c: &mut Checker, key: &str, text: &str, net: Ipv4Net) -> Option<Ipv4Net> {
    match host_address_problem(net) {
        Some(rule) => {
            c.bad(key, text, rule);
            None
        }
        None => Some(net),
    }
}

fn parse_ifname(c: &mut Checker, key: &str, name: &str) {
    if let Err(e) = validate_tap_name(name) {
        c.bad(
            key,
            name,
            e.to_string().replacen("TAP name", "interface name", 1),
        );
    }
}

impl RawConfig {
    /// Checks every rule and returns the typed configuration, or every problem found.
    pub fn validate(&self) -> Result<Config, Vec<Problem>> {
        let mut c = Checker {
            problems: Vec::new(),
        };
        let netstack = self
            .netstack
            .clone()
            .unwrap_or_else(|| DEFAULT_NETSTACK.to_string());
        if netstack.is_empty() || netstack.chars().any(|ch| ch.is_whitespace() || ch == '/') {
            c.bad(
                "netstack",
                &netstack,
                "a netstack name is one word without `/`",
            );
        }
        let default_gateway = self.default_gateway.as_deref().and_then(|g| {
            parse_addr(g)
                .map_err(|e| c.bad("default_gateway", g, e.to_string()))
                .ok()
        });

        if let Some(us) = self.busy_poll_us.filter(|us| *us > MAX_BUSY_POLL_US) {
            let rule = format!("at most {MAX_BUSY_POLL_US} microseconds");
            c.bad_num("busy_poll_us", i64::from(us), rule);
        }
        let io = match self.io.as_deref() {
            Some("uring") => IoMode::Uring,
            None | Some("syscalls") => IoMode::Syscalls,
            Some("threaded") => IoMode::Threaded,
            Some(other) => {
                c.bad("io", other, "`uring`, `syscalls` or `threaded`");
                IoMode::default()
            }
        };
        let workers = match self.workers {
            None => DEFAULT_WORKERS,
            Some(n) if (1..=MAX_WORKERS as u32).contains(&n) => n as usize,
            Some(n) => {
                let rule = format!("from 1 to {MAX_WORKERS} data-plane threads");
                c.bad_num("workers", i64::from(n), rule);
                DEFAULT_WORKERS
            }
        };
        if let Some(g) = &self.control_group {
            if g.is_empty() || g.contains(':') || g.contains(char::is_whitespace) {
                c.bad("control_group", g, "a group name is one word without `:`");
            }
        }
        let mac_style = match self.mac_style.as_deref() {
            None | Some("local") => MacStyle::Local,
            Some("vmware") => MacStyle::Vmware,
            Some(other) => {
                c.bad(
                    "mac_style",
                    other,
                    "expected \"local\" (the default: locally administered MACs) or \"vmware\" \
                     (00:50:56:xx:xx:xx, as ESXi gives vmknics)",
                );
                MacStyle::Local
            }
        };
        let metrics_listen = self.metrics_listen.as_deref().and_then(|a| {
            a.parse()
                .map_err(|_| c.bad("metrics_listen", a, "expected address:port"))
                .ok()
        });
        let mut vmknics = Vec::new();
        for (i, v) in self.vmknics.iter().enumerate() {
            if let Some(vc) = validate_vmknic(&mut c, i, v, mac_style) {
                vmknics.push(vc);
            }
        }
        let routes = validate_routes(&mut c, "route", &self.routes);
        let ipv6_default_gateway = self.ipv6_default_gateway.as_deref().and_then(|g| {
            parse_gateway6(g)
                .map_err(|e| c.bad("ipv6_default_gateway", g, e))
                .ok()
        });
        let routes6 = validate_routes6(&mut c, "route6", &self.routes6);
        let mut netstacks: Vec<NetstackConfig> = Vec::new();
        for (i, n) in self.netstacks.iter().enumerate() {
            let key = |k: &str| format!("netstack_instance[{i}].{k}");
            if let Some(rule) = netstack_name_problem(&n.name) {
                c.bad(key("name"), &n.name, rule);
            } else if n.name == netstack || netstacks.iter().any(|x| x.name == n.name) {
                c.bad(
                    key("name"),
                    &n.name,
                    "a netstack of this name is already configured",
                );
            }
            let default_gateway = n.default_gateway.as_deref().and_then(|g| {
                parse_addr(g)
                    .map_err(|e| c.bad(key("default_gateway"), g, e.to_string()))
                    .ok()
            });
            let routes = validate_routes(&mut c, &key("route"), &n.routes);
            let ipv6_default_gateway = n.ipv6_default_gateway.as_deref().and_then(|g| {
                parse_gateway6(g)
                    .map_err(|e| c.bad(key("ipv6_default_gateway"), g, e))
                    .ok()
            });
            let routes6 = validate_routes6(&mut c, &key("route6"), &n.routes6);
            netstacks.push(NetstackConfig {
                name: n.name.clone(),
                forwarding: n.forwarding.unwrap_or(false),
                default_gateway,
                routes,
                ipv6_default_gateway,
                routes6,
            });
        }
        if netstacks.len() + 1 > MAX_NETSTACKS {
            c.bad_num(
                "netstack_instance",
                netstacks.len() as i64,
                format!(
                    "at most {} netstacks besides the default one",
                    MAX_NETSTACKS - 1
                ),
            );
        }
        for (i, v) in self.vmknics.iter().enumerate() {
            if let Some(ns) = &v.netstack {
                if *ns != netstack && !netstacks.iter().any(|n| n.name == *ns) {
                    c.bad(
                        format!("vmknic[{i}] ({}).netstack", v.name),
                        ns,
                        "no such netstack (add it: `esxcli network ip netstack add -N NAME`, \
                         or a [[netstack_instance]] table)",
                    );
                }
            }
        }
        for v in &mut vmknics {
            if v.netstack.is_empty() {
                v.netstack = netstack.clone();
            }
        }
        check_vmknic_set(&mut c, &vmknics);
        vmknics.sort_by_key(|v| v.id);

        let mut forwards: Vec<ForwardSpec> = Vec::new();
        for (i, f) in self.forwards.iter().enumerate() {
            let key = |k: &str| format!("forward[{i}].{k}");
            let listen = f.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                c.bad(
                    key("listen"),
                    &f.listen,
                    "expected a.b.c.d:port or [ipv6]:port",
                )
            });
            let remote = f.remote.parse::<std::net::SocketAddr>().map_err(|_| {
                c.bad(
                    key("remote"),
                    &f.remote,
                    "expected a.b.c.d:port or [ipv6]:port",
                )
            });
            let vmknic = match &f.vmknic {
                None => Ok(None),
                Some(n) => match n.parse::<VmknicId>() {
                    Ok(id) if vmknics.iter().any(|v| v.id == id) => Ok(Some(id)),
                    Ok(_) => {
                        c.bad(key("vmknic"), n, "no such vmknic in this file");
                        Err(())
                    }
                    Err(e) => {
                        c.bad(key("vmknic"), n, e.to_string());
                        Err(())
                    }
                },
            };
            let max = match f.max_connections {
                None => Ok(DEFAULT_MAX_CONNECTIONS),
                Some(m) if (1..=4096).contains(&m) => Ok(m as usize),
                Some(m) => {
                    c.bad_num(key("max_connections"), m, "must be 1-4096");
                    Err(())
                }
            };
            let fwd_netstack = match &f.netstack {
                None => Ok(netstack.clone()),
                Some(ns) if *ns == netstack || netstacks.iter().any(|n| n.name == *ns) => {
                    Ok(ns.clone())
                }
                Some(ns) => {
                    c.bad(
                        key("netstack"),
                        ns,
                        "no such netstack (add it: `esxcli network ip netstack add -N NAME`, \
                         or a [[netstack_instance]] table)",
                    );
                    Err(())
                }
            };
            if let (Ok(Some(id)), Ok(ns)) = (vmknic, &fwd_netstack) {
                if let Some(v) = vmknics.iter().find(|v| v.id == id && v.netstack != *ns) {
                    c.bad(
                        key("vmknic"),
                        id,
                        format!(
                            "this vmknic is in netstack `{}`, the forward in `{ns}` (a forward \
                             connects from its own netstack's vmknics)",
                            v.netstack
                        ),
                    );
                }
            }
            if let (Ok(listen), Ok(remote), Ok(vmknic), Ok(max_connections), Ok(netstack)) =
                (listen, remote, vmknic, max, fwd_netstack)
            {
                if forwards.iter().any(|x| x.listen == listen) {
                    c.bad(
                        key("listen"),
                        &f.listen,
                        "this address is already forwarded",
                    );
                } else if remote.port() == 0 || listen.port() == 0 {
                    c.bad(key("remote"), &f.remote, "ports must not be 0");
                } else {
                    forwards.push(ForwardSpec {
                        listen,
                        remote,
                        vmknic,
                        max_connections,
                        netstack,
                    });
                }
            }
        }

        if c.problems.is_empty() {
            Ok(Config {
                forwards,
                netstack,
                forwarding: self.forwarding.unwrap_or(false),
                offloads: self.offloads.unwrap_or(true),
                busy_poll_us: self.busy_poll_us.unwrap_or(DEFAULT_BUSY_POLL_US),
                io,
                workers,
                default_gateway,
                control_group: self.control_group.clone(),
                mac_style,
                metrics_listen,
                vmknics,
                routes,
                netstacks,
                ipv6_default_gateway,
                routes6,
            })
        } else {
            Err(c.problems)
        }
    }
}

fn validate_vmknic(
    c: &mut Checker,
    i: usize,
    v: &RawVmknic,
    mac_style: MacStyle,
) -> Option<VmknicConfig> {
    let before = c.problems.len();
    let key = |field: &str| format!("vmknic[{i}] ({}).{field}", v.name);
    let id = v
        .name
        .parse::<VmknicId>()
        .map_err(|e| c.bad(format!("vmknic[{i}].name"), &v.name, e.to_string()))
        .ok();
    if v.portgroup.trim().is_empty() {
        c.bad(
            key("portgroup"),
            &v.portgroup,
            "a port group name must not be empty",
        );
    }

    // The primary address: `ip/len`, or `ip` with exactly one of netmask / prefix_len; `dhcp`;
    // or none (empty).
    let dhcp = v.ip.trim().eq_ignore_ascii_case(IP_DHCP);
    let no_address = v.ip.trim().is_empty() || dhcp;
    if no_address && (v.netmask.is_some() || v.prefix_len.is_some()) {
        c.bad(
            key("ip"),
            &v.ip,
            "a netmask or prefix length needs an address (`dhcp` and no address take none)",
        );
    }
    let address = match (v.ip.split_once('/'), &v.netmask, v.prefix_len) {
        _ if no_address => None,
        (Some(_), None, None) => {
            v.ip.parse::<Ipv4Net>()
                .map_err(|_| c.bad(key("ip"), &v.ip, "expected a.b.c.d/len with len 1-32"))
                .ok()
        }
        (Some(_), _, _) => {
            c.bad(
                key("ip"),
                &v.ip,
                "give the prefix length once: in `ip` or in `netmask`/`prefix_len`",
            );
            None
        }
        (None, Some(_), Some(_)) => {
            c.bad(
                key("netmask"),
                v.netmask.as_deref().unwrap_or(""),
                "give `netmask` or `prefix_len`, not both",
            );
            None
        }
        (None, None, None) => {
            c.bad(
                key("ip"),
                &v.ip,
                "needs a netmask: `netmask`, `prefix_len` or ip/len",
            );
            None
        }
        (None, mask, len) => {
            let ip = parse_addr(&v.ip)
                .map_err(|e| c.bad(key("ip"), &v.ip, e.to_string()))
                .ok();
            let len = match (mask, len) {
                (Some(m), _) => parse_addr(m)
                    .map_err(|e| e.to_string())
                    .and_then(|m| netmask_len(m).map_err(|e| e.to_string()))
                    .map_err(|e| c.bad(key("netmask"), m, e))
                    .ok(),
                (None, Some(l)) if (0..=32).contains(&l) => Some(l as u8),
                (None, Some(l)) => {
                    c.bad_num(key("prefix_len"), l, "a prefix length is 1-32");
                    None
                }
                (None, None) => None,
            };
            ip.zip(len).and_then(|(ip, len)| Ipv4Net::new(ip, len).ok())
        }
    };
    let address = address.and_then(|a| check_host(c, &key("ip"), &v.ip, a));
    let address_ok = no_address || address.is_some();

    let mut extra = Vec::new();
    for (j, text) in v.extra_addresses.iter().enumerate() {
        let k = key(&format!("extra_addresses[{j}]"));
        match text.parse::<Ipv4Net>() {
            Ok(n) => extra.extend(check_host(c, &k, text, n)),
            Err(_) => c.bad(k, text, "expected a.b.c.d/len with len 1-32"),
        }
    }

    let (mac, mac_configured) = match &v.mac {
        Some(m) => match m.parse::<MacAddr>() {
            Ok(mac) if mac.is_unicast() => (mac, true),
            Ok(_) => {
                c.bad(
                    key("mac"),
                    m,
                    "a vmknic MAC must be unicast and not all zeros",
                );
                (MacAddr([0; 6]), true)
            }
            Err(e) => {
                c.bad(key("mac"), m, e.to_string());
                (MacAddr([0; 6]), true)
            }
        },
        None => (mac_style.mac_for(&v.name), false),
    };

    let mtu = match v.mtu {
        None => DEFAULT_MTU,
        Some(m) if (i64::from(MIN_MTU)..=i64::from(MAX_MTU)).contains(&m) => m as u16,
        Some(m) => {
            c.bad_num(
                key("mtu"),
                m,
                format!("MTU must be between {MIN_MTU} and {MAX_MTU}"),
            );
            DEFAULT_MTU
        }
    };

    let tap = v.tap.clone().unwrap_or_else(|| v.name.clone());
    if let Err(e) = validate_tap_name(&tap) {
        c.bad(key("tap"), &tap, e.to_string());
    }
    if let Some(b) = &v.bridge {
        parse_ifname(c, &key("bridge"), b);
    }
    if let Some(ns) = &v.netns {
        if ns.is_empty() || ns.contains('/') || ns == "." || ns == ".." {
            c.bad(
                key("netns"),
                ns,
                "a namespace name is a non-empty file name without `/`",
            );
        }
    }

    let gateway = v.gateway.as_deref().and_then(|g| {
        parse_addr(g)
            .map_err(|e| c.bad(key("gateway"), g, e.to_string()))
            .ok()
    });
    if let (Some(g), Some(a)) = (gateway, address) {
        if !a.contains(&g) && !extra.iter().any(|n| n.contains(&g)) {
            c.bad(key("gateway"), g, GATEWAY_UNREACHABLE);
        }
    }

    let mut ipv6 = Vec::new();
    for (j, text) in v.ipv6.iter().enumerate() {
        let k = key(&format!("ipv6[{j}]"));
        match text.trim().parse::<Ipv6Net>() {
            Ok(n) if is_link_local6(n.addr()) => c.bad(
                k,
                text,
                "the link-local address is derived from the MAC; give global addresses",
            ),
            Ok(n) => match host_address6_problem(n) {
                Some(rule) => c.bad(k, text, rule),
                None if ipv6.iter().any(|a: &Ipv6Net| a.addr() == n.addr()) => {
                    c.bad(k, text, "this address is given twice")
                }
                None => ipv6.push(n),
            },
            Err(_) => c.bad(
                k,
                text,
                "expected an IPv6 address with its prefix length, as 2001:db8:1::100/64",
            ),
        }
    }

    let ipv6_autoconf = v.ipv6_autoconf.unwrap_or(false);
    let ipv6_dhcp = v.ipv6_dhcp.unwrap_or(false);
    if v.ipv6_enabled == Some(false) && (!ipv6.is_empty() || ipv6_autoconf || ipv6_dhcp) {
        c.bad(
            key("ipv6_enabled"),
            "false",
            "IPv6 cannot be off on a vmknic with IPv6 addresses, `ipv6_autoconf` or `ipv6_dhcp`",
        );
    }

    if c.problems.len() > before || !address_ok {
        return None;
    }
    Some(VmknicConfig {
        id: id?,
        portgroup: v.portgroup.clone(),
        address,
        dhcp,
        extra_addresses: extra,
        mac,
        mac_configured,
        mtu,
        enabled: v.enabled.unwrap_or(true),
        tap,
        bridge: v.bridge.clone(),
        netns: v.netns.clone(),
        // Filled in by the caller when empty: the top-level netstack.
        netstack: v.netstack.clone().unwrap_or_default(),
        gateway,
        ipv6,
        ipv6_autoconf,
        ipv6_dhcp,
        ipv6_on: v.ipv6_enabled.unwrap_or(false),
    })
}

/// Rules across vmknics: unique names, port groups, TAPs and MACs; within one netstack, unique
/// addresses, and subnets that overlap must be equal (a shared subnet belongs to the lowest
/// vmknic, as on ESX). Vmknics of different netstacks may hold the same subnets and addresses.
fn check_vmknic_set(c: &mut Checker, vmknics: &[VmknicConfig]) {
    let mut names = HashMap::new();
    let mut portgroups = HashMap::new();
    let mut taps = HashMap::new();
    let mut macs = HashMap::new();
    let mut addrs: Vec<(Ipv4Net, VmknicId, &str)> = Vec::new();
    let mut addrs6: Vec<(Ipv6Net, VmknicId, &str)> = Vec::new();
    for v in vmknics {
        let key = |field: &str| format!("vmknic ({}).{field}", v.id);
        if let Some(other) = names.insert(v.id, v.id) {
            c.bad(key("name"), v.id, format!("{other} is defined twice"));
        }
        if let Some(other) = portgroups.insert(v.portgroup.clone(), v.id) {
            c.bad(
                key("portgroup"),
                &v.portgroup,
                format!("port group already used by {other}"),
            );
        }
        if let Some(other) = taps.insert(v.tap.clone(), v.id) {
            c.bad(
                key("tap"),
                &v.tap,
                format!("TAP name already used by {other}"),
            );
        }
        if let Some(other) = macs.insert(v.mac, v.id) {
            c.bad(key("mac"), v.mac, format!("MAC already used by {other}"));
        }
        for a in v.addresses() {
            for &(b, owner, ns) in &addrs {
                if ns != v.netstack {
                    continue;
                }
                if a.addr() == b.addr() {
                    c.bad(
                        key("ip"),
                        a,
                        format!("address {} is already used by {owner}", a.addr()),
                    );
                } else if a.trunc() != b.trunc()
                    && (a.trunc().contains(&b.network()) || b.trunc().contains(&a.network()))
                {
                    c.bad(
                        key("ip"),
                        a,
                        format!("subnet {} overlaps {} of {owner}", a.trunc(), b.trunc()),
                    );
                }
            }
            addrs.push((a, v.id, v.netstack.as_str()));
        }
        for a in &v.ipv6 {
            for &(b, owner, ns) in &addrs6 {
                if ns == v.netstack && a.addr() == b.addr() {
                    c.bad(
                        key("ipv6"),
                        a,
                        format!("address {} is already used by {owner}", a.addr()),
                    );
                }
            }
            addrs6.push((*a, v.id, v.netstack.as_str()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = r#"
default_gateway = "192.168.0.254"

[[vmknic]]
name = "vmk0"
portgroup = "iSCSI_SAN"
ip = "192.168.1.100"
netmask = "255.255.255.0"

[[vmknic]]
name = "vmk1"
portgroup = "VMotion"
ip = "192.168.2.100/24"
"#;

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, "t.toml") {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn vmknic(extra: &str) -> String {
        format!(
            "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"pg\"\nip = \"198.18.1.1/24\"\n{extra}\n"
        )
    }

    const TWO_STACKS: &str = r#"
default_gateway = "198.18.10.1"
[[netstack_instance]]
name = "vmotion"
default_gateway = "198.18.10.1"
[[netstack_instance.route]]
network = "198.18.60.0/24"
gateway = "198.18.10.1"
[[vmknic]]
name = "vmk0"
portgroup = "a"
ip = "198.18.10.100/24"
[[vmknic]]
name = "vmk1"
portgroup = "b"
ip = "198.18.10.100/24"
netstack = "vmotion"
gateway = "198.18.10.254"
"#;

    #[test]
    fn test_netstacks() {
        let cfg = Config::parse(TWO_STACKS, "t").unwrap();
        assert_eq!(
            cfg.netstack_names().collect::<Vec<_>>(),
            [DEFAULT_NETSTACK, "vmotion"]
        );
        assert_eq!(cfg.vmknics[0].netstack, DEFAULT_NETSTACK);
        assert_eq!(cfg.vmknics[1].netstack, "vmotion");
        assert_eq!(
            cfg.vmknics[1].gateway,
            Some(Ipv4Addr::new(198, 18, 10, 254))
        );
        // Each netstack's table holds only its own vmknics and routes.
        let (t, problems) = cfg.routing();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(t.entries().len(), 2, "{:?}", t.entries());
        let v = cfg.view("vmotion").unwrap();
        assert_eq!(v.vmknics.len(), 1);
        assert!(v.forwards.is_empty());
        let (t, problems) = v.routing();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            t.explain("198.18.60.5".parse().unwrap()).unwrap().vmknic,
            VmknicId(1)
        );
        assert!(cfg.view("nosuch").is_none());
        // Written back and read again: the same.
        let again = Config::parse(&cfg.to_toml(), "t").unwrap();
        assert_eq!(again, cfg);
        // An old file, without netstacks, reads as before.
        let old = Config::parse(ARTICLE, "t").unwrap();
        assert!(old.netstacks.is_empty());
        assert!(!old.to_toml().contains("netstack_instance"));
    }

    #[test]
    fn test_netstack_problems() {
        // The same address twice in one netstack is refused; in two, allowed (above).
        let same = TWO_STACKS.replace("netstack = \"vmotion\"\n", "");
        let p = problems(&same);
        assert!(
            p.iter().any(|p| p.contains("already used by vmk0")),
            "{p:?}"
        );
        let p = problems(&TWO_STACKS.replace("netstack = \"vmotion\"", "netstack = \"nope\""));
        assert!(
            p.iter()
                .any(|p| p.contains("(vmk1).netstack") && p.contains("no such netstack")),
            "{p:?}"
        );
        let p = problems(&TWO_STACKS.replace("198.18.10.254", "198.18.11.254"));
        assert!(
            p.iter()
                .any(|p| p.contains("(vmk1).gateway") && p.contains(GATEWAY_UNREACHABLE)),
            "{p:?}"
        );
        let p = problems(&TWO_STACKS.replace("name = \"vmotion\"", "name = \"defaultTcpipStack\""));
        assert!(p.iter().any(|p| p.contains("already configured")), "{p:?}");
        let p = problems(&TWO_STACKS.replace("name = \"vmotion\"", "name = \"v m\""));
        assert!(p.iter().any(|p| p.contains("a netstack name is")), "{p:?}");
    }

    #[test]
    fn test_parse_article() {
        let cfg = Config::parse(ARTICLE, "seed.toml").unwrap();
        assert_eq!(cfg.netstack, DEFAULT_NETSTACK);
        assert!(!cfg.forwarding);
        assert_eq!(cfg.vmknics.len(), 2);
        assert_eq!(cfg.vmknics[0].ip_text(), "192.168.1.100/24");
        assert_eq!(cfg.vmknics[1].ip_text(), "192.168.2.100/24");
        assert_eq!(cfg.vmknics[0].mtu, 1500);
        assert_eq!(cfg.vmknics[0].tap, "vmk0");
        assert_eq!(cfg.vmknics[0].mac, MacAddr::local_from_name("vmk0"));
        let (_, problems) = cfg.routing();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            vmkstack_routing::GATEWAY_UNREACHABLE
        );
    }

    #[test]
    fn test_round_trip() {
        let cfg = Config::parse(ARTICLE, "seed.toml").unwrap();
        let again = Config::parse(&cfg.to_toml(), "again.toml").unwrap();
        assert_eq!(cfg, again);
    }

    #[test]
    fn test_mac_style() {
        let cfg = Config::parse(&vmknic(""), "t").unwrap();
        assert_eq!(cfg.mac_style, MacStyle::Local);
        assert!(cfg.vmknics[0].mac.is_local());
        assert!(
            !cfg.to_toml().contains("mac_style"),
            "the default is not written"
        );

        let text = format!("mac_style = \"vmware\"\n{}", vmknic(""));
        let cfg = Config::parse(&text, "t").unwrap();
        assert_eq!(cfg.mac_style, MacStyle::Vmware);
        let mac = cfg.vmknics[0].mac;
        assert_eq!(mac, MacAddr::vmware_from_name("vmk0"));
        assert!(mac.to_string().starts_with("00:50:56:"), "{mac}");
        assert!(!cfg.vmknics[0].mac_configured);
        // Written back, read again: the same MAC (it is derived, not stored).
        let again = Config::parse(&cfg.to_toml(), "again").unwrap();
        assert_eq!(again, cfg);
        assert!(cfg.to_toml().contains("mac_style = \"vmware\""));
        // A configured MAC wins over either style.
        let text = format!(
            "mac_style = \"vmware\"\n{}",
            vmknic("mac = \"02:00:00:00:00:09\"")
        );
        let cfg = Config::parse(&text, "t").unwrap();
        assert_eq!(cfg.vmknics[0].mac.to_string(), "02:00:00:00:00:09");
        assert!(Config::parse(&format!("mac_style = \"local\"\n{}", vmknic("")), "t").is_ok());

        assert_eq!(
            problems(&format!("mac_style = \"esxi\"\n{}", vmknic(""))),
            vec![
                "mac_style = \"esxi\": expected \"local\" (the default: locally administered \
                  MACs) or \"vmware\" (00:50:56:xx:xx:xx, as ESXi gives vmknics)"
            ]
        );
    }

    #[test]
    fn test_mtu_range() {
        let p = problems(&vmknic("mtu = 9001"));
        assert_eq!(
            p,
            vec!["vmknic[0] (vmk0).mtu = 9001: MTU must be between 68 and 9000"]
        );
        assert_eq!(problems(&vmknic("mtu = 67")).len(), 1);
        assert!(Config::parse(&vmknic("mtu = 9000"), "t").is_ok());
        assert!(Config::parse(&vmknic("mtu = 68"), "t").is_ok());
    }

    #[test]
    fn test_data_plane_tuning() {
        let cfg = Config::parse(&vmknic(""), "t").unwrap();
        assert!(cfg.offloads, "offloads on by default");
        assert_eq!(cfg.busy_poll_us, 100, "a 100 µs adaptive window by default");
        let text = format!("offloads = false\nbusy_poll_us = 5000\n{}", vmknic(""));
        let cfg = Config::parse(&text, "t").unwrap();
        assert_eq!((cfg.offloads, cfg.busy_poll_us), (false, 5000));
        assert_eq!(Config::parse(&cfg.to_toml(), "again").unwrap(), cfg);
        let p = problems(&format!("busy_poll_us = 1000001\n{}", vmknic("")));
        assert_eq!(
            p,
            vec!["busy_poll_us = 1000001: at most 1000000 microseconds"]
        );
        let err = Config::parse(&format!("offloads = \"yes\"\n{}", vmknic("")), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("offloads") || err.contains("bool"), "{err}");
    }

    #[test]
    fn test_workers() {
        let cfg = Config::parse(&vmknic(""), "t").unwrap();
        assert_eq!(cfg.workers, DEFAULT_WORKERS);
        assert!(
            cfg.to_raw().workers.is_none(),
            "the default is not written out"
        );
        let cfg = Config::parse(&format!("workers = 2\n{}", vmknic("")), "t").unwrap();
        assert_eq!(cfg.workers, 2);
        assert_eq!(Config::parse(&cfg.to_toml(), "again").unwrap(), cfg);
        let p = problems(&format!("workers = 0\n{}", vmknic("")));
        assert_eq!(p, vec!["workers = 0: from 1 to 16 data-plane threads"]);
        let p = problems(&format!("workers = 17\n{}", vmknic("")));
        assert_eq!(p, vec!["workers = 17: from 1 to 16 data-plane threads"]);
    }

    #[test]
    fn test_io_mode() {
        let cfg = Config::parse(&vmknic(""), "t").unwrap();
        assert_eq!(cfg.io, IoMode::Syscalls, "system calls by default");
        assert!(cfg.to_raw().io.is_none(), "the default is not written out");
        let cfg = Config::parse(&format!("io = \"uring\"\n{}", vmknic("")), "t").unwrap();
        assert_eq!(cfg.io, IoMode::Uring);
        assert_eq!(Config::parse(&cfg.to_toml(), "again").unwrap(), cfg);
        let cfg = Config::parse(&format!("io = \"threaded\"\n{}", vmknic("")), "t").unwrap();
        assert_eq!(cfg.io, IoMode::Threaded);
        assert_eq!(Config::parse(&cfg.to_toml(), "again").unwrap(), cfg);
        let p = problems(&format!("io = \"epoll\"\n{}", vmknic("")));
        assert_eq!(p, vec!["io = \"epoll\": `uring`, `syscalls` or `threaded`"]);
    }

    #[test]
    fn test_non_contiguous_netmask() {
        let text = "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"pg\"\nip = \"198.18.1.1\"\nnetmask = \"255.0.255.0\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with(
                "vmknic[0] (vmk0).netmask = \"255.0.255.0\": netmask 255.0.255.0 is not contiguous"
            ),
            "{}",
            p[0]
        );
    }

    #[test]
    fn test_tap_name_too_long() {
        let p = problems(&vmknic("tap = \"abcdefghijklmnop\""));
        assert_eq!(
            p,
            vec!["vmknic[0] (vmk0).tap = \"abcdefghijklmnop\": TAP name `abcdefghijklmnop` is 16 bytes; Linux allows at most 15"]
        );
    }

    #[test]
    fn test_unknown_key_names_it() {
        let err = Config::parse(&vmknic("speed = 10"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: "), "{err}");
        assert!(err.contains("unknown field `speed`"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        let err = Config::parse("gateway = \"1.2.3.4\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `gateway`"), "{err}");
    }

    #[test]
    fn test_duplicates_and_overlaps() {
        let text = r#"
[[vmknic]]
name = "vmk0"
portgroup = "a"
ip = "198.18.1.1/24"
[[vmknic]]
name = "vmk0"
portgroup = "b"
ip = "198.18.2.1/24"
tap = "t1"
mac = "02:00:00:00:00:01"
[[vmknic]]
name = "vmk2"
portgroup = "a"
ip = "198.18.1.1/24"
[[vmknic]]
name = "vmk3"
portgroup = "d"
ip = "198.18.0.5/16"
"#;
        let p = problems(text).join("\n");
        assert!(
            p.contains("vmknic (vmk0).name = \"vmk0\": vmk0 is defined twice"),
            "{p}"
        );
        assert!(p.contains("port group already used by vmk0"), "{p}");
        assert!(
            p.contains("address 198.18.1.1 is already used by vmk0"),
            "{p}"
        );
        assert!(
            p.contains("subnet 198.18.0.0/16 overlaps 198.18.1.0/24 of vmk0"),
            "{p}"
        );
    }

    #[test]
    fn test_shared_subnet_is_allowed() {
        let text = r#"
[[vmknic]]
name = "vmk1"
portgroup = "a"
ip = "198.18.1.11/24"
[[vmknic]]
name = "vmk0"
portgroup = "b"
ip = "198.18.1.10/24"
"#;
        let cfg = Config::parse(text, "t").unwrap();
        assert_eq!(cfg.vmknics[0].id, VmknicId(0), "sorted in vmk order");
        let (t, problems) = cfg.routing();
        assert!(problems.is_empty());
        assert_eq!(
            t.explain("198.18.1.50".parse().unwrap()).unwrap().vmknic,
            VmknicId(0)
        );
    }

    #[test]
    fn test_bad_values_each_named() {
        let cases = [
            (
                "ip = \"198.18.1.0/24\"",
                "198.18.1.0 is the network address of 198.18.1.0/24",
            ),
            ("ip = \"127.0.0.1/8\"", "127.0.0.0/8 is loopback"),
            ("ip = \"198.18.1.300/24\"", "expected a.b.c.d/len"),
            ("mac = \"01:00:5e:00:00:01\"", "must be unicast"),
            ("mac = \"zz\"", "is not a MAC address"),
            ("name = \"eth0\"", "is not a vmknic name"),
            ("netns = \"a/b\"", "without `/`"),
            ("bridge = \"a bridge\"", "interface name"),
        ];
        for (line, want) in cases {
            // Later keys in a TOML table cannot repeat, so build the vmknic from scratch.
            let mut fields = vec![
                ("name", "name = \"vmk0\""),
                ("portgroup", "portgroup = \"pg\""),
                ("ip", "ip = \"198.18.1.1/24\""),
            ];
            let k = line.split(' ').next().unwrap();
            fields.retain(|(f, _)| *f != k);
            let text = format!(
                "[[vmknic]]\n{}\n{line}\n",
                fields
                    .iter()
                    .map(|(_, l)| *l)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let p = problems(&text).join("\n");
            assert!(p.contains(want), "{line}: {p}");
        }
    }

    #[test]
    fn test_ipv6() {
        let base = vmknic("mac = \"00:50:56:6a:01:02\"\nipv6 = [\"2001:db8:1::100/64\"]");
        let text = format!(
            "ipv6_default_gateway = \"fe80::1%vmk0\"\n{base}[[route6]]\nnetwork = \"2001:db8:100::/48\"\ngateway = \"2001:db8:1::1\"\n"
        );
        let cfg = Config::parse(&text, "t").unwrap();
        let v = &cfg.vmknics[0];
        assert_eq!(v.link_local6().to_string(), "fe80::250:56ff:fe6a:102/64");
        let all: Vec<String> = v.addresses6().map(|a| a.to_string()).collect();
        assert_eq!(all, ["fe80::250:56ff:fe6a:102/64", "2001:db8:1::100/64"]);
        assert_eq!(Config::parse(&cfg.to_toml(), "t").unwrap(), cfg);
        let (table, found) = cfg.routing6();
        assert!(found.is_empty(), "{found:?}");
        let r = table.lookup("2001:db8:100::5".parse().unwrap()).unwrap();
        assert_eq!(r.next_hop.gateway(), Some("2001:db8:1::1".parse().unwrap()));
        // Without an IPv6 address a vmknic has no IPv6 at all (old files unchanged).
        let old = Config::parse(&vmknic(""), "t").unwrap();
        assert_eq!(old.vmknics[0].addresses6().count(), 0);

        let bad = vmknic("ipv6 = [\"2001:db8::/64\", \"fe80::5/64\", \"2001:db8:1::1\"]");
        assert_eq!(
            problems(&bad),
            vec![
                "vmknic[0] (vmk0).ipv6[0] = \"2001:db8::/64\": 2001:db8:: is the subnet-router anycast address of 2001:db8::/64",
                "vmknic[0] (vmk0).ipv6[1] = \"fe80::5/64\": the link-local address is derived from the MAC; give global addresses",
                "vmknic[0] (vmk0).ipv6[2] = \"2001:db8:1::1\": expected an IPv6 address with its prefix length, as 2001:db8:1::100/64",
            ]
        );
        let ll = format!("ipv6_default_gateway = \"fe80::1\"\n{}", vmknic(""));
        assert!(problems(&ll)[0].contains("name the vmknic it is reached through"));
        let r0 = format!(
            "{}[[route6]]\nnetwork = \"::/0\"\ngateway = \"2001:db8::1\"\n",
            vmknic("")
        );
        assert!(problems(&r0)[0].contains("set `ipv6_default_gateway` instead"));
    }

    #[test]
    fn test_ipv6_enabled_and_dhcp() {
        // IPv6 on alone, or with DHCPv6: the link-local address; both saved as they were.
        for extra in ["ipv6_enabled = true", "ipv6_dhcp = true"] {
            let cfg = Config::parse(&vmknic(extra), "t").unwrap();
            let v = &cfg.vmknics[0];
            assert!(v.ipv6_enabled(), "{extra}");
            assert_eq!(v.addresses6().collect::<Vec<_>>(), [v.link_local6()]);
            assert!(cfg.to_toml().contains(extra), "{}", cfg.to_toml());
            assert_eq!(Config::parse(&cfg.to_toml(), "t").unwrap(), cfg);
        }
        let off = Config::parse(&vmknic("ipv6_enabled = false"), "t").unwrap();
        assert!(!off.vmknics[0].ipv6_enabled());
        assert!(!off.to_toml().contains("ipv6_enabled"));
        assert_eq!(
            problems(&vmknic("ipv6_enabled = false
ipv6_dhcp = true")),
            ["vmknic[0] (vmk0).ipv6_enabled = \"false\": IPv6 cannot be off on a vmknic with IPv6 \
              addresses, `ipv6_autoconf` or `ipv6_dhcp`"]
        );
    }

    #[test]
    fn test_routes() {
        let base = vmknic("");
        let ok = format!("{base}[[route]]\nnetwork = \"198.18.100.0\"\nnetmask = \"255.255.255.0\"\ngateway = \"198.18.1.254\"\n");
        let cfg = Config::parse(&ok, "t").unwrap();
        assert_eq!(cfg.routes[0].network.to_string(), "198.18.100.0/24");
        let host_bits =
            format!("{base}[[route]]\nnetwork = \"198.18.100.7/24\"\ngateway = \"198.18.1.254\"\n");
        assert_eq!(
            problems(&host_bits),
            vec!["route[0].network = \"198.18.100.7/24\": 198.18.100.7/24 has host bits set; the network is 198.18.100.0/24"]
        );
        let dup =
            format!("{ok}[[route]]\nnetwork = \"198.18.100.0/24\"\ngateway = \"198.18.1.253\"\n");
        assert!(problems(&dup)[0].contains("already configured"));
        let default =
            format!("{base}[[route]]\nnetwork = \"0.0.0.0/0\"\ngateway = \"198.18.1.254\"\n");
        assert!(problems(&default)[0].contains("set `default_gateway` instead"));
    }

    #[test]
    fn test_forwards() {
        let base = vmknic("");
        let ok = format!("{base}[[forward]]\nlisten = \"127.0.0.1:13260\"\nremote = \"198.18.100.20:3260\"\nvmknic = \"vmk0\"\n");
        let cfg = Config::parse(&ok, "t").unwrap();
        assert_eq!(cfg.forwards[0].remote.to_string(), "198.18.100.20:3260");
        assert_eq!(cfg.forwards[0].max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(Config::parse(&cfg.to_toml(), "again").unwrap(), cfg);
        let bad = format!("{base}[[forward]]\nlisten = \"127.0.0.1\"\nremote = \"198.18.100.20:3260\"\nvmknic = \"vmk9\"\nmax_connections = 0\n");
        let p = problems(&bad).join("\n");
        assert!(
            p.contains("forward[0].listen = \"127.0.0.1\": expected a.b.c.d:port"),
            "{p}"
        );
        assert!(
            p.contains("forward[0].vmknic = \"vmk9\": no such vmknic"),
            "{p}"
        );
        assert!(
            p.contains("forward[0].max_connections = 0: must be 1-4096"),
            "{p}"
        );
        let dup = format!(
            "{ok}[[forward]]\nlisten = \"127.0.0.1:13260\"\nremote = \"198.18.100.21:3260\"\n"
        );
        assert!(problems(&dup)[0].contains("already forwarded"));
    }

    #[test]
    fn test_forwards_on_netstacks() {
        let fwd = |ns: &str, via: &str| {
            format!(
                "{TWO_STACKS}[[forward]]\nlisten = \"127.0.0.1:13260\"\nremote = \"198.18.60.5:3260\"\n{ns}{via}"
            )
        };
        // Without `netstack`: the top-level one.
        let cfg = Config::parse(&fwd("", ""), "t").unwrap();
        assert_eq!(cfg.forwards[0].netstack, DEFAULT_NETSTACK);
        assert!(!cfg.to_toml().contains("[forward]]\nnetstack"));
        // On `vmotion`, from its vmknic: kept in that netstack's view, written back.
        let cfg =
            Config::parse(&fwd("netstack = \"vmotion\"\n", "vmknic = \"vmk1\"\n"), "t").unwrap();
        assert_eq!(cfg.forwards[0].netstack, "vmotion");
        assert_eq!(cfg.view("vmotion").unwrap().forwards.len(), 1);
        assert!(cfg.view(DEFAULT_NETSTACK).unwrap().forwards.is_empty());
        assert!(cfg.to_toml().contains("netstack = \"vmotion\""));
        assert_eq!(Config::parse(&cfg.to_toml(), "again").unwrap(), cfg);
        // An unknown netstack, and a vmknic of another netstack, are named.
        assert_eq!(
            problems(&fwd("netstack = \"nosuch\"\n", "")),
            vec![
                "forward[0].netstack = \"nosuch\": no such netstack (add it: `esxcli network \
                  ip netstack add -N NAME`, or a [[netstack_instance]] table)"
            ]
        );
        let p = problems(&fwd("netstack = \"vmotion\"\n", "vmknic = \"vmk0\"\n"));
        assert_eq!(
            p,
            vec![
                "forward[0].vmknic = \"vmk0\": this vmknic is in netstack `defaultTcpipStack`, \
                  the forward in `vmotion` (a forward connects from its own netstack's vmknics)"
            ]
        );
        // One listen address, whatever the netstacks (the kernel listens in one namespace).
        let dup = format!(
            "{}[[forward]]\nlisten = \"127.0.0.1:13260\"\nremote = \"198.18.60.6:1\"\nnetstack = \"vmotion\"\n",
            fwd("", "")
        );
        assert!(problems(&dup)[0].contains("already forwarded"), "{dup}");
    }

    #[test]
    fn test_errors_name_the_file() {
        let err = Config::parse(&vmknic("mtu = 9001"), "lab/site.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "lab/site.toml: 1 problem:\n  lab/site.toml: vmknic[0] (vmk0).mtu = 9001: MTU must be between 68 and 9000"
        );
        let err = Config::load(Path::new("/nonexistent/vmkstack.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/vmkstack.toml: cannot read"),
            "{err}"
        );
    }
}
