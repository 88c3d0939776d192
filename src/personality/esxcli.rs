//! The part of `esxcli` that concerns the VMkernel TCP/IP stack:
//!
//! ```text
//! esxcli network ip route ipv4 list   [-N|--netstack NAME]
//! esxcli network ip route ipv4 add    -n|--network <net/len|default> -g|--gateway <gw> [-N NAME]
//! esxcli network ip route ipv4 remove -n|--network <net/len|default> -g|--gateway <gw> [-N NAME]
//! esxcli network ip interface list
//! esxcli network ip interface ipv6 get [-i vmkN] [-N NAME]
//! esxcli network ip interface ipv6 set -i vmkN [-e true|false] [-r true|false] [-d true|false]
//! esxcli network ip interface ipv6 address list [-i vmkN] [-N NAME]
//! esxcli network ip interface ipv6 address add|remove -i vmkN -I ADDR/LEN
//! esxcli network ip netstack list | get -N NAME | add -N NAME | remove -N NAME
//! esxcli network ip neighbor list   [-i|--interface-name vmkN] [-v|--version 4|6|all] [-N NAME]
//! esxcli network ip neighbor remove -a|--neighbor-addr <ip> [-v|--version 4]
//!                                   [-i|--interface-name vmkN]
//! ```
//!
//! Listings print in ESXi's layouts (see [`crate::listing`]); changes print nothing, as on
//! ESXi. A namespace that does not exist is a usage error naming the ones that do.

use std::ffi::OsString;
use std::net::Ipv4Addr;

use clap::{ColorChoice, CommandFactory, Parser, Subcommand};
use vmkstack_routing::RouteEntry;

use ipnet::Ipv4Net;
use vmkstack_routing::{host_address_problem, netmask_len, parse_addr, VmknicId};
use vmkstack_stack::IP_DHCP;
use vmkstack_vmknic::{MacAddr, MAX_MTU, MIN_MTU};

use crate::api::{
    Action, ClientError, ErrorKind, NeighborInfo, NetstackInfo, PingReply, RawVmknic, Route6Info,
    VmknicInfo,
};
use crate::client::{call_as, CliError, Console, Control};
use crate::listing::{
    esxcli_interfaces, esxcli_ipv4, esxcli_ipv6_addresses, esxcli_ipv6_get, esxcli_neighbors,
    esxcli_routes, esxcli_routes6, format_esxcli_interfaces, format_esxcli_neighbors, EsxcliList,
    Field, Formatter, Layout,
};
use crate::personality::clap_util::{clap_outcome, Parsed};
use crate::personality::vmkping::send_error_line;
use crate::route_target::{
    parse_ipv4, parse_route_target, route_add_action, route_remove_action, RouteTarget,
};

const PROGRAM: &str = "esxcli";

/// ESXi's command line, for the VMkernel network stack.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "esxcli",
    bin_name = "esxcli",
    color = ColorChoice::Never,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct EsxcliArgs {
    /// Print listings as csv, keyvalue or json (ESXi's field names)
    #[arg(long = "formatter", value_name = "str", value_enum)]
    pub formatter: Option<Formatter>,
    /// The namespace.
    #[command(subcommand)]
    pub namespace: Root,
}

/// `esxcli <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Root {
    /// Operations on the host's networking
    #[command(disable_help_subcommand = true)]
    Network {
        /// The namespace.
        #[command(subcommand)]
        namespace: Network,
    },
}

/// `esxcli network <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Network {
    /// The VMkernel TCP/IP stack
    #[command(disable_help_subcommand = true)]
    Ip {
        /// The namespace.
        #[command(subcommand)]
        namespace: Ip,
    },
    /// Network diagnostics
    #[command(disable_help_subcommand = true)]
    Diag {
        /// The command.
        #[command(subcommand)]
        command: Diag,
    },
}

/// `esxcli network diag <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Diag {
    /// Send ICMP echo requests from the VMkernel stack
    Ping(DiagPingArgs),
}

/// `esxcli network diag ping` options.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DiagPingArgs {
    /// The host to ping (an IPv4 address)
    #[arg(short = 'H', long = "host", value_name = "str", value_parser = parse_ipv4)]
    pub host: Ipv4Addr,
    /// The VMkernel interface to send from
    #[arg(short = 'I', long = "interface", value_name = "str")]
    pub interface: Option<String>,
    /// The netstack to use (the daemon's one; default defaultTcpipStack)
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: Option<String>,
    /// Number of echo requests
    #[arg(short = 'c', long = "count", value_name = "long", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// ICMP payload bytes
    #[arg(short = 's', long = "size", value_name = "long", default_value_t = 56,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::personality::vmkping::MAX_SIZE)))]
    pub size: u32,
    /// Set don't-fragment
    #[arg(short = 'd', long = "df")]
    pub df: bool,
    /// Send through this gateway, bypassing the routing table
    #[arg(long = "nexthop", value_name = "str", value_parser = parse_ipv4)]
    pub nexthop: Option<Ipv4Addr>,
    /// Seconds between requests
    #[arg(short = 'i', long = "interval", value_name = "str", default_value = "1",
          value_parser = crate::personality::vmkping::parse_seconds)]
    pub interval: std::time::Duration,
    /// Seconds to wait for each reply
    #[arg(short = 'W', long = "wait", value_name = "str", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub wait: u32,
    /// IP time to live
    #[arg(short = 't', long = "ttl", value_name = "long", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(1..))]
    pub ttl: u8,
}

/// `esxcli network ip <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Ip {
    /// VMkernel routing tables
    #[command(disable_help_subcommand = true)]
    Route {
        /// The namespace.
        #[command(subcommand)]
        namespace: Route,
    },
    /// VMkernel network interfaces
    #[command(disable_help_subcommand = true)]
    Interface {
        /// The command.
        #[command(subcommand)]
        command: InterfaceCmd,
    },
    /// The VMkernel neighbour (ARP) table
    #[command(disable_help_subcommand = true)]
    Neighbor {
        /// The command.
        #[command(subcommand)]
        command: NeighborCmd,
    },
    /// The VMkernel TCP/IP stacks (netstacks)
    #[command(disable_help_subcommand = true)]
    Netstack {
        /// The command.
        #[command(subcommand)]
        command: NetstackCmd,
    },
}

/// `esxcli network ip netstack <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum NetstackCmd {
    /// List the netstacks
    List,
    /// Show one netstack's settings
    Get(NetstackName),
    /// Add a netstack
    Add(NetstackName),
    /// Remove a netstack that no VMkernel interface uses
    Remove(NetstackName),
}

/// `-N|--netstack` naming a netstack (required).
#[derive(Debug, Clone, clap::Args)]
pub struct NetstackName {
    /// The netstack's name
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: String,
}

/// `-N|--netstack` choosing a netstack (default: defaultTcpipStack).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetstackOpt {
    /// The netstack (default: defaultTcpipStack)
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: Option<String>,
}

/// `esxcli network ip neighbor <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum NeighborCmd {
    /// List the neighbours
    List(NeighborListArgs),
    /// Remove a neighbour entry
    Remove(NeighborRemoveArgs),
}

/// The IP version `-v` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IpVersion {
    /// IPv4
    #[value(name = "4")]
    V4,
    /// IPv6
    #[value(name = "6")]
    V6,
    /// Both
    All,
}

/// `neighbor list` options.
#[derive(Debug, Clone, clap::Args)]
pub struct NeighborListArgs {
    /// Only the neighbours on this VMkernel interface
    #[arg(short = 'i', long = "interface-name", value_name = "str")]
    pub interface: Option<String>,
    /// IP version: 4, 6 or all (vmkstack's stack is IPv4: 6 lists nothing)
    #[arg(
        short = 'v',
        long = "version",
        value_name = "str",
        default_value = "all"
    )]
    pub version: IpVersion,
    /// The netstack.
    #[command(flatten)]
    pub netstack: NetstackOpt,
}

/// `neighbor remove` options.
#[derive(Debug, Clone, clap::Args)]
pub struct NeighborRemoveArgs {
    /// The neighbour's IPv4 address
    #[arg(short = 'a', long = "neighbor-addr", value_name = "str", value_parser = parse_ipv4)]
    pub address: Ipv4Addr,
    /// IP version (4)
    #[arg(short = 'v', long = "version", value_name = "str", default_value = "4")]
    pub version: IpVersion,
    /// Only the entry on this VMkernel interface; every interface if unspecified
    #[arg(short = 'i', long = "interface-name", value_name = "str")]
    pub interface: Option<String>,
}

/// `esxcli network ip route <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Route {
    /// IPv4 routes
    #[command(disable_help_subcommand = true)]
    Ipv4 {
        /// The command.
        #[command(subcommand)]
        command: Ipv4Route,
    },
    /// IPv6 routes
    #[command(disable_help_subcommand = true)]
    Ipv6 {
        /// The command.
        #[command(subcommand)]
        command: Ipv6Route,
    },
}

/// `esxcli network ip route ipv6 <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Ipv6Route {
    /// List the IPv6 routes
    List(NetstackOpt),
    /// Add an IPv6 route (or the IPv6 default gateway with `-n default`)
    Add(Route6Args),
    /// Remove an IPv6 route (or the IPv6 default gateway with `-n default`)
    Remove(Route6Args),
}

/// `--network` and `--gateway` of `route ipv6 add|remove`.
#[derive(Debug, Clone, clap::Args)]
pub struct Route6Args {
    /// The network, as addr/len, or `default`
    #[arg(short = 'n', long, value_name = "str")]
    pub network: String,
    /// The gateway: on a vmknic IPv6 prefix, or link-local with its vmknic (fe80::1%vmk0)
    #[arg(short = 'g', long, value_name = "str")]
    pub gateway: String,
    /// The netstack.
    #[command(flatten)]
    pub netstack: NetstackOpt,
}

/// `esxcli network ip interface <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum InterfaceCmd {
    /// List the VMkernel interfaces
    List,
    /// Add a VMkernel interface (no IPv4 address until `ipv4 set`)
    Add(InterfaceAddArgs),
    /// Remove a VMkernel interface
    Remove(InterfaceRemoveArgs),
    /// Enable or disable a VMkernel interface, or change its MTU
    Set(InterfaceSetArgs),
    /// IPv4 settings of VMkernel interfaces
    #[command(disable_help_subcommand = true)]
    Ipv4 {
        /// The command.
        #[command(subcommand)]
        command: InterfaceIpv4,
    },
    /// IPv6 settings and addresses of VMkernel interfaces
    #[command(disable_help_subcommand = true)]
    Ipv6 {
        /// The command.
        #[command(subcommand)]
        command: InterfaceIpv6,
    },
}

/// `esxcli network ip interface ipv6 <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum InterfaceIpv6 {
    /// Show the IPv6 settings of the VMkernel interfaces
    Get(Ipv4GetArgs),
    /// Set the IPv6 settings of a VMkernel interface (IPv6 on/off, router advertisements)
    Set(Ipv6SetArgs),
    /// The static and link-local IPv6 addresses of the VMkernel interfaces
    #[command(disable_help_subcommand = true)]
    Address {
        /// The command.
        #[command(subcommand)]
        command: Ipv6AddressCmd,
    },
}

/// `esxcli network ip interface ipv6 address <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Ipv6AddressCmd {
    /// List the IPv6 addresses of the VMkernel interfaces
    List(Ipv4GetArgs),
    /// Add a static IPv6 address to a VMkernel interface
    Add(Ipv6AddressArgs),
    /// Remove a static IPv6 address from a VMkernel interface
    Remove(Ipv6AddressArgs),
}

/// `interface ipv6 address add|remove` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Ipv6AddressArgs {
    /// The interface, vmkN
    #[arg(short = 'i', long = "interface-name", value_name = "str", value_parser = parse_vmknic_name)]
    pub interface: String,
    /// The IPv6 address with its prefix length, as 2001:db8:1::100/64
    #[arg(short = 'I', long = "ipv6", value_name = "str")]
    pub ipv6: String,
}

/// `interface ipv6 set` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Ipv6SetArgs {
    /// The interface, vmkN
    #[arg(short = 'i', long = "interface-name", value_name = "str", value_parser = parse_vmknic_name)]
    pub interface: String,
    /// true to enable IPv6 on it, false to disable it
    #[arg(short = 'e', long = "enable-ipv6", value_name = "bool", value_parser = parse_bool)]
    pub enable: Option<bool>,
    /// true to take addresses and a default router from Router Advertisements, false to stop
    #[arg(short = 'r', long = "enable-router-adv", value_name = "bool", value_parser = parse_bool)]
    pub router_adv: Option<bool>,
    /// true to obtain an IPv6 address from a DHCPv6 server, false to release it
    #[arg(short = 'd', long = "enable-dhcpv6", value_name = "bool", value_parser = parse_bool)]
    pub dhcpv6: Option<bool>,
}

/// `esxcli network ip interface ipv4 <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum InterfaceIpv4 {
    /// Show the IPv4 settings of the VMkernel interfaces
    Get(Ipv4GetArgs),
    /// Set the IPv4 address of a VMkernel interface (static, DHCP or none)
    Set(Ipv4SetArgs),
}

/// `interface add` options.
#[derive(Debug, Clone, clap::Args)]
pub struct InterfaceAddArgs {
    /// The new interface's name, vmkN
    #[arg(short = 'i', long = "interface-name", value_name = "str", value_parser = parse_vmknic_name)]
    pub interface: String,
    /// The port group it connects to
    #[arg(short = 'p', long = "portgroup-name", value_name = "str")]
    pub portgroup: String,
    /// MTU (68-9000)
    #[arg(short = 'm', long = "mtu", value_name = "long", value_parser = parse_mtu)]
    pub mtu: Option<u16>,
    /// MAC address
    #[arg(short = 'M', long = "mac-address", value_name = "str", value_parser = parse_mac)]
    pub mac: Option<MacAddr>,
    /// The netstack it joins (default defaultTcpipStack)
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: Option<String>,
}

/// `interface remove` options.
#[derive(Debug, Clone, clap::Args)]
pub struct InterfaceRemoveArgs {
    /// The interface to remove, vmkN
    #[arg(short = 'i', long = "interface-name", value_name = "str", value_parser = parse_vmknic_name)]
    pub interface: String,
}

/// `interface set` options.
#[derive(Debug, Clone, clap::Args)]
pub struct InterfaceSetArgs {
    /// The interface, vmkN
    #[arg(short = 'i', long = "interface-name", value_name = "str", value_parser = parse_vmknic_name)]
    pub interface: String,
    /// true to enable it, false to disable it
    #[arg(short = 'e', long = "enabled", value_name = "bool", value_parser = parse_bool)]
    pub enabled: Option<bool>,
    /// MTU (68-9000)
    #[arg(short = 'm', long = "mtu", value_name = "long", value_parser = parse_mtu)]
    pub mtu: Option<u16>,
}

/// `interface ipv4 get` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Ipv4GetArgs {
    /// Only this interface
    #[arg(short = 'i', long = "interface-name", value_name = "str")]
    pub interface: Option<String>,
    /// Only the interfaces of this netstack
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: Option<String>,
}

/// How `ipv4 set -t` sets the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ipv4Type {
    /// The address given with -I/-N
    Static,
    /// From a DHCP server
    Dhcp,
    /// No IPv4 address
    None,
}

/// `interface ipv4 set` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Ipv4SetArgs {
    /// The interface, vmkN
    #[arg(short = 'i', long = "interface-name", value_name = "str", value_parser = parse_vmknic_name)]
    pub interface: String,
    /// static, dhcp or none
    #[arg(short = 't', long = "type", value_name = "str", value_enum)]
    pub kind: Ipv4Type,
    /// The IPv4 address (with -t static)
    #[arg(short = 'I', long = "ipv4", value_name = "str", value_parser = parse_ipv4)]
    pub ipv4: Option<Ipv4Addr>,
    /// The netmask, dotted or as a prefix length (with -t static)
    #[arg(short = 'N', long = "netmask", value_name = "str")]
    pub netmask: Option<String>,
    /// This interface's own default gateway (ESXi 6.5+ override), on its subnet (with -t
    /// static)
    #[arg(short = 'g', long = "gateway", value_name = "str", value_parser = parse_ipv4)]
    pub gateway: Option<Ipv4Addr>,
}

/// `vmkN`.
fn parse_vmknic_name(s: &str) -> Result<String, String> {
    s.parse::<VmknicId>()
        .map(|id| id.to_string())
        .map_err(|_| format!("`{s}` is not a VMkernel interface name (expected vmkN)"))
}

/// An MTU within 68-9000.
fn parse_mtu(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
        .ok_or_else(|| format!("`{s}` is not an MTU (expected {MIN_MTU}-{MAX_MTU})"))
}

/// A unicast MAC address.
fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = s.parse().map_err(|e| format!("{e}"))?;
    if mac.is_unicast() {
        Ok(mac)
    } else {
        Err(format!(
            "{mac} cannot be a vmknic MAC address (not unicast)"
        ))
    }
}

/// esxcli's booleans: true/false, 1/0, yes/no.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (expected true or false)")),
    }
}

/// `esxcli network ip route ipv4 <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Ipv4Route {
    /// List the IPv4 routes
    List(NetstackOpt),
    /// Add an IPv4 route (or the default gateway with `-n default`)
    Add(RouteArgs),
    /// Remove an IPv4 route (or the default gateway with `-n default`)
    Remove(RouteArgs),
}

/// `--network` and `--gateway` of `route ipv4 add|remove`.
#[derive(Debug, Clone, clap::Args)]
pub struct RouteArgs {
    /// The network, as a.b.c.d/len, or `default`
    #[arg(short = 'n', long, value_name = "str", value_parser = parse_route_target)]
    pub network: RouteTarget,
    /// The gateway, on a vmknic subnet
    #[arg(short = 'g', long, value_name = "str", value_parser = parse_ipv4)]
    pub gateway: Ipv4Addr,
    /// The netstack.
    #[command(flatten)]
    pub netstack: NetstackOpt,
}

/// A runnable esxcli command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsxcliCommand {
    /// `network ip route ipv6 list`.
    Route6List {
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv6 add`.
    Route6Add {
        /// Network (`addr/len`) or `default`.
        network: String,
        /// Gateway.
        gateway: String,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv6 remove`.
    Route6Remove {
        /// Network (`addr/len`) or `default`.
        network: String,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv4 list`.
    RouteList {
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv4 add`.
    RouteAdd {
        /// Network or default.
        network: RouteTarget,
        /// Gateway.
        gateway: Ipv4Addr,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv4 remove`.
    RouteRemove {
        /// Network or default.
        network: RouteTarget,
        /// Gateway.
        gateway: Ipv4Addr,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip netstack list`.
    NetstackList,
    /// `network ip netstack get -N`.
    NetstackGet(String),
    /// `network ip netstack add -N`.
    NetstackAdd(String),
    /// `network ip netstack remove -N`.
    NetstackRemove(String),
    /// `network ip interface list`.
    InterfaceList,
    /// `network ip interface add`.
    InterfaceAdd {
        /// vmkN.
        interface: String,
        /// Port group.
        portgroup: String,
        /// MTU.
        mtu: Option<u16>,
        /// MAC.
        mac: Option<MacAddr>,
        /// Netstack.
        netstack: Option<String>,
    },
    /// `network ip interface remove`.
    InterfaceRemove {
        /// vmkN.
        interface: String,
    },
    /// `network ip interface set`.
    InterfaceSet {
        /// vmkN.
        interface: String,
        /// Enable or disable.
        enabled: Option<bool>,
        /// New MTU.
        mtu: Option<u16>,
    },
    /// `network ip interface ipv4 get`.
    Ipv4Get {
        /// Only this vmknic.
        interface: Option<String>,
        /// Only this netstack's vmknics.
        netstack: Option<String>,
    },
    /// `network ip interface ipv6 get`.
    Ipv6Get {
        /// Only this vmknic.
        interface: Option<String>,
        /// Only this netstack's vmknics.
        netstack: Option<String>,
    },
    /// `network ip interface ipv6 address list`.
    Ipv6AddressList {
        /// Only this vmknic.
        interface: Option<String>,
        /// Only this netstack's vmknics.
        netstack: Option<String>,
    },
    /// `network ip interface ipv6 address add|remove`.
    Ipv6Address {
        /// vmkN.
        interface: String,
        /// `ADDR/LEN` as given (the daemon checks it).
        address: String,
        /// Remove it instead.
        remove: bool,
    },
    /// `network ip interface ipv4 set`.
    Ipv4Set {
        /// vmkN.
        interface: String,
        /// The address: `a.b.c.d/len`, `dhcp`, or empty for none (the control request's form).
        ip: String,
        /// `-g`: the interface's own default gateway, set with the address in one change.
        gateway: Option<Ipv4Addr>,
    },
    /// `network ip interface ipv6 set`.
    Ipv6Set {
        /// vmkN.
        interface: String,
        /// `-e`: IPv6 on or off.
        enable: Option<bool>,
        /// `-r`: router-advertisement autoconfiguration on or off.
        router_adv: Option<bool>,
        /// `-d`: DHCPv6 on or off.
        dhcpv6: Option<bool>,
    },
    /// `network diag ping`.
    DiagPing(DiagPingArgs),
    /// `network ip neighbor list`.
    NeighborList {
        /// Only this vmknic's.
        interface: Option<String>,
        /// False for `-v 6`: vmkstack has no IPv6 neighbours.
        ipv4: bool,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip neighbor remove`.
    NeighborRemove {
        /// The neighbour.
        address: Ipv4Addr,
        /// Only on this vmknic.
        interface: Option<String>,
    },
}

/// A parsed esxcli: the command and the output formatter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esxcli {
    /// `--formatter`, for listings.
    pub formatter: Option<Formatter>,
    /// The command.
    pub command: EsxcliCommand,
}

/// The address of `ipv4 set`, as the control request carries it.
fn ipv4_setting(a: &Ipv4SetArgs) -> Result<String, CliError> {
    let usage = |m: &str| Err(CliError::Usage(format!("Error: {m}")));
    if a.gateway.is_some() && a.kind != Ipv4Type::Static {
        return usage("-g/--gateway goes only with -t static");
    }
    match (a.kind, a.ipv4, a.netmask.as_deref()) {
        (Ipv4Type::Static, Some(ip), Some(mask)) => {
            // Dotted, or a prefix length.
            let len = match mask.trim().parse::<u8>() {
                Ok(len) if (1..=32).contains(&len) => Ok(len),
                Ok(_) => Err(format!(
                    "`{mask}` is not a netmask (a prefix length is 1-32)"
                )),
                Err(_) => parse_addr(mask)
                    .map_err(|e| e.to_string())
                    .and_then(|m| netmask_len(m).map_err(|e| e.to_string())),
            }
            .map_err(|e| CliError::Usage(format!("Error: -N/--netmask {mask}: {e}")))?;
            let net = Ipv4Net::new(ip, len)
                .map_err(|e| CliError::Usage(format!("Error: -N/--netmask {mask}: {e}")))?;
            if let Some(reason) = host_address_problem(net) {
                return usage(&format!("{net} cannot be a vmknic address: {reason}"));
            }
            // Checked here too, so that a refused gateway does not leave the address changed.
            if let Some(gw) = a.gateway.filter(|g| !net.contains(g)) {
                return Err(CliError::Failed(format!(
                    "Error: Unable to set VMkernel gateway {gw} for {}: it is not on the \
                     interface's network {}",
                    a.interface,
                    net.trunc()
                )));
            }
            Ok(net.to_string())
        }
        (Ipv4Type::Static, None, _) => usage("-t static needs -I/--ipv4 <address>"),
        (Ipv4Type::Static, _, None) => usage("-t static needs -N/--netmask <netmask>"),
        (_, Some(_), _) | (_, _, Some(_)) => {
            usage("-I/--ipv4 and -N/--netmask go only with -t static")
        }
        (Ipv4Type::Dhcp, None, None) => Ok(IP_DHCP.to_string()),
        (Ipv4Type::None, None, None) => Ok(String::new()),
    }
}

impl TryFrom<EsxcliArgs> for EsxcliCommand {
    type Error = CliError;

    fn try_from(a: EsxcliArgs) -> Result<EsxcliCommand, CliError> {
        let namespace = match a.namespace {
            Root::Network {
                namespace: Network::Ip { namespace },
            } => namespace,
            Root::Network {
                namespace:
                    Network::Diag {
                        command: Diag::Ping(p),
                    },
            } => return Ok(EsxcliCommand::DiagPing(p)),
        };
        Ok(match namespace {
            Ip::Route {
                namespace: Route::Ipv4 { command },
            } => match command {
                Ipv4Route::List(n) => EsxcliCommand::RouteList {
                    netstack: n.netstack,
                },
                Ipv4Route::Add(r) => EsxcliCommand::RouteAdd {
                    network: r.network,
                    gateway: r.gateway,
                    netstack: r.netstack.netstack,
                },
                Ipv4Route::Remove(r) => EsxcliCommand::RouteRemove {
                    network: r.network,
                    gateway: r.gateway,
                    netstack: r.netstack.netstack,
                },
            },
            Ip::Route {
                namespace: Route::Ipv6 { command },
            } => match command {
                Ipv6Route::List(n) => EsxcliCommand::Route6List {
                    netstack: n.netstack,
                },
                Ipv6Route::Add(r) => EsxcliCommand::Route6Add {
                    network: r.network,
                    gateway: r.gateway,
                    netstack: r.netstack.netstack,
                },
                Ipv6Route::Remove(r) => EsxcliCommand::Route6Remove {
                    network: r.network,
                    netstack: r.netstack.netstack,
                },
            },
            Ip::Netstack { command } => match command {
                NetstackCmd::List => EsxcliCommand::NetstackList,
                NetstackCmd::Get(n) => EsxcliCommand::NetstackGet(n.netstack),
                NetstackCmd::Add(n) => EsxcliCommand::NetstackAdd(n.netstack),
                NetstackCmd::Remove(n) => EsxcliCommand::NetstackRemove(n.netstack),
            },
            Ip::Interface {
                command: InterfaceCmd::List,
            } => EsxcliCommand::InterfaceList,
            Ip::Interface {
                command: InterfaceCmd::Add(a),
            } => EsxcliCommand::InterfaceAdd {
                interface: a.interface,
                portgroup: a.portgroup,
                mtu: a.mtu,
                mac: a.mac,
                netstack: a.netstack,
            },
            Ip::Interface {
                command: InterfaceCmd::Remove(a),
            } => EsxcliCommand::InterfaceRemove {
                interface: a.interface,
            },
            Ip::Interface {
                command: InterfaceCmd::Set(a),
            } => {
                if a.enabled.is_none() && a.mtu.is_none() {
                    return Err(CliError::Usage(
                        "Error: nothing to set: give -e/--enabled true|false and/or -m/--mtu"
                            .to_string(),
                    ));
                }
                EsxcliCommand::InterfaceSet {
                    interface: a.interface,
                    enabled: a.enabled,
                    mtu: a.mtu,
                }
            }
            Ip::Interface {
                command:
                    InterfaceCmd::Ipv4 {
                        command: InterfaceIpv4::Get(a),
                    },
            } => EsxcliCommand::Ipv4Get {
                interface: a.interface,
                netstack: a.netstack,
            },
            Ip::Interface {
                command:
                    InterfaceCmd::Ipv4 {
                        command: InterfaceIpv4::Set(a),
                    },
            } => EsxcliCommand::Ipv4Set {
                ip: ipv4_setting(&a)?,
                gateway: a.gateway,
                interface: a.interface,
            },
            Ip::Interface {
                command: InterfaceCmd::Ipv6 { command },
            } => match command {
                InterfaceIpv6::Get(a) => EsxcliCommand::Ipv6Get {
                    interface: a.interface,
                    netstack: a.netstack,
                },
                InterfaceIpv6::Address {
                    command: Ipv6AddressCmd::List(a),
                } => EsxcliCommand::Ipv6AddressList {
                    interface: a.interface,
                    netstack: a.netstack,
                },
                InterfaceIpv6::Address {
                    command: Ipv6AddressCmd::Add(a),
                } => EsxcliCommand::Ipv6Address {
                    interface: a.interface,
                    address: a.ipv6,
                    remove: false,
                },
                InterfaceIpv6::Address {
                    command: Ipv6AddressCmd::Remove(a),
                } => EsxcliCommand::Ipv6Address {
                    interface: a.interface,
                    address: a.ipv6,
                    remove: true,
                },
                InterfaceIpv6::Set(a) => {
                    if a.enable.is_none() && a.router_adv.is_none() && a.dhcpv6.is_none() {
                        return Err(CliError::Usage(
                            "Error: nothing to set: give -e/--enable-ipv6 true|false, \
                             -r/--enable-router-adv true|false or -d/--enable-dhcpv6 true|false"
                                .to_string(),
                        ));
                    }
                    EsxcliCommand::Ipv6Set {
                        interface: a.interface,
                        enable: a.enable,
                        router_adv: a.router_adv,
                        dhcpv6: a.dhcpv6,
                    }
                }
            },
            Ip::Neighbor {
                command: NeighborCmd::List(a),
            } => EsxcliCommand::NeighborList {
                interface: a.interface,
                ipv4: a.version != IpVersion::V6,
                netstack: a.netstack.netstack,
            },
            Ip::Neighbor {
                command: NeighborCmd::Remove(a),
            } => EsxcliCommand::NeighborRemove {
                address: a.address,
                interface: a.interface,
            },
        })
    }
}

impl EsxcliCommand {
    /// The netstack it acts on (`-N`), if named.
    pub fn netstack(&self) -> Option<String> {
        match self {
            EsxcliCommand::RouteList { netstack }
            | EsxcliCommand::Route6List { netstack }
            | EsxcliCommand::Route6Add { netstack, .. }
            | EsxcliCommand::Route6Remove { netstack, .. }
            | EsxcliCommand::RouteAdd { netstack, .. }
            | EsxcliCommand::RouteRemove { netstack, .. }
            | EsxcliCommand::NeighborList { netstack, .. }
            | EsxcliCommand::InterfaceAdd { netstack, .. }
            | EsxcliCommand::Ipv4Get { netstack, .. }
            | EsxcliCommand::Ipv6Get { netstack, .. }
            | EsxcliCommand::Ipv6AddressList { netstack, .. } => netstack.clone(),
            EsxcliCommand::DiagPing(p) => p.netstack.clone(),
            _ => None,
        }
    }
}

/// ESXi's `netstack list` record of one netstack (`get` adds its settings, in ESXi's order:
/// Enabled, Max Connections, Current Max Connections, Congestion Control Algorithm, IPv6
/// Enabled, Current IPv6 Enabled; `ipv6`: true when one of its vmknics has IPv6).
fn format_netstack(n: &NetstackInfo, full: bool, ipv6: bool) -> String {
    let mut s = format!("{0}\n   Key: {0}\n   Name: {0}\n", n.name);
    if full {
        s.push_str(&format!(
            "   Enabled: true\n   Max Connections: {0}\n   Current Max Connections: {0}\n   \
             Congestion Control Algorithm: {1}\n",
            n.max_connections, n.congestion_control
        ));
        s.push_str(&format!(
            "   IPv6 Enabled: {ipv6}\n   Current IPv6 Enabled: {ipv6}\n"
        ));
    }
    s.push_str("   State: 4660\n");
    s
}

/// `netstack list` (and `get`, `full`, with `ipv6` as in [`format_netstack`]) for
/// `--formatter`: ESXi's fields of each netstack.
fn esxcli_netstacks(list: &[NetstackInfo], full: bool, ipv6: bool) -> EsxcliList {
    let mut fields = vec!["Key", "Name"];
    if full {
        fields.extend([
            "Enabled",
            "Max Connections",
            "Current Max Connections",
            "Congestion Control Algorithm",
            "IPv6 Enabled",
            "Current IPv6 Enabled",
        ]);
    }
    fields.push("State");
    let rows = list
        .iter()
        .map(|n| {
            let mut row: Vec<Field> = vec![n.name.clone().into(), n.name.clone().into()];
            if full {
                let max = Field::Int(i64::try_from(n.max_connections).unwrap_or(i64::MAX));
                row.extend([
                    Field::Bool(true),
                    max.clone(),
                    max,
                    n.congestion_control.clone().into(),
                    Field::Bool(ipv6),
                    Field::Bool(ipv6),
                ]);
            }
            row.push(Field::Int(4660));
            row
        })
        .collect();
    EsxcliList {
        structure: "Netstack",
        fields,
        rows,
        layout: Layout::Blocks,
    }
}

/// Checks the namespaces of an esxcli argv (`argv[0]` is the program name) before clap sees
/// it, so that a wrong or missing one gets a message naming the valid ones.
pub fn namespace_error(argv: &[OsString]) -> Option<String> {
    let root = EsxcliArgs::command();
    let mut node = &root;
    let mut path: Vec<String> = Vec::new();
    let valid = |c: &clap::Command| {
        let mut names: Vec<&str> = c
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(clap::Command::get_name)
            .collect();
        names.sort_unstable();
        names.join(", ")
    };
    let mut args = argv.iter().skip(1).peekable();
    // `--formatter F` / `--formatter=F` comes before the namespaces.
    while let Some(a) = args.peek() {
        let a = a.to_string_lossy();
        if a == "--formatter" {
            args.next();
            args.next();
        } else if a.starts_with("--formatter=") {
            args.next();
        } else {
            break;
        }
    }
    for arg in args {
        if !node.has_subcommands() {
            return None;
        }
        let word = arg.to_string_lossy().into_owned();
        if word == "-h" || word == "--help" {
            return None;
        }
        match node.find_subcommand(&word) {
            Some(sub) => {
                path.push(word);
                node = sub;
            }
            None => {
                path.push(word);
                return Some(format!(
                    "Error: Unknown command or namespace {} (expected one of: {})",
                    path.join(" "),
                    valid(node)
                ));
            }
        }
    }
    if !node.has_subcommands() {
        return None;
    }
    let at = std::iter::once("esxcli".to_string())
        .chain(path)
        .collect::<Vec<_>>()
        .join(" ");
    Some(format!(
        "Error: Missing command or namespace after `{at}` (expected one of: {})",
        valid(node)
    ))
}

/// Parses an esxcli argv (`argv[0]` is the program name).
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<Esxcli>, CliError> {
    if let Some(m) = namespace_error(&argv) {
        return Err(CliError::Usage(m));
    }
    let args = match EsxcliArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => return clap_outcome(e),
    };
    if let Root::Network {
        namespace:
            Network::Ip {
                namespace:
                    Ip::Neighbor {
                        command: NeighborCmd::Remove(r),
                    },
            },
    } = &args.namespace
    {
        if r.version != IpVersion::V4 {
            return Err(CliError::Usage(
                "Error: -v/--version must be 4: the VMkernel stack of vmkstack is IPv4 only"
                    .to_string(),
            ));
        }
    }
    let formatter = args.formatter;
    Ok(Parsed::Run(Esxcli {
        formatter,
        command: args.try_into()?,
    }))
}

fn failed(e: &ClientError) -> CliError {
    CliError::from_client(PROGRAM, e)
}

/// Runs an esxcli command against the daemon, listings in their default layout.
pub fn run(
    cmd: EsxcliCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    run_formatted(cmd, None, ctl, console)
}

/// The daemon's vmknics.
fn vmknics(ctl: &mut dyn Control) -> Result<Vec<VmknicInfo>, CliError> {
    call_as(ctl, Action::VmknicList).map_err(|e| failed(&e))
}

/// Runs an esxcli command; `formatter` is `--formatter` for listings.
pub fn run_formatted(
    cmd: EsxcliCommand,
    formatter: Option<Formatter>,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    ctl.set_netstack(cmd.netstack());
    match cmd {
        EsxcliCommand::NetstackList => {
            let list: Vec<NetstackInfo> =
                call_as(ctl, Action::NetstackList).map_err(|e| failed(&e))?;
            match formatter {
                Some(f) => console.print(&esxcli_netstacks(&list, false, false).format(f)),
                None => {
                    let text: Vec<String> = list
                        .iter()
                        .map(|n| format_netstack(n, false, false))
                        .collect();
                    console.print(&text.join("\n"));
                }
            }
        }
        EsxcliCommand::NetstackGet(name) => {
            let n: NetstackInfo =
                call_as(ctl, Action::NetstackGet { name }).map_err(|e| failed(&e))?;
            let ipv6 = vmknics(ctl)?
                .iter()
                .any(|v| v.netstack == n.name && (!v.ipv6.is_empty() || v.ipv6_autoconf));
            match formatter {
                Some(f) => console.print(&esxcli_netstacks(&[n], true, ipv6).format(f)),
                None => console.print(&format_netstack(&n, true, ipv6)),
            }
        }
        EsxcliCommand::NetstackAdd(name) => {
            ctl.call(Action::NetstackAdd { name })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::NetstackRemove(name) => {
            ctl.call(Action::NetstackRemove { name })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::Route6List { .. } => {
            let routes: Vec<Route6Info> =
                call_as(ctl, Action::Route6List).map_err(|e| failed(&e))?;
            console.print(&esxcli_routes6(&routes).output(formatter));
        }
        EsxcliCommand::Route6Add {
            network, gateway, ..
        } => {
            ctl.call(Action::Route6Add { network, gateway })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::Route6Remove { network, .. } => {
            ctl.call(Action::Route6Remove { network })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::RouteList { .. } => {
            let routes: Vec<RouteEntry> =
                call_as(ctl, Action::RouteList).map_err(|e| failed(&e))?;
            console.print(&esxcli_routes(&routes).output(formatter));
        }
        EsxcliCommand::RouteAdd {
            network, gateway, ..
        } => {
            ctl.call(route_add_action(network, gateway))
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::RouteRemove {
            network, gateway, ..
        } => {
            ctl.call(route_remove_action(network, Some(gateway)))
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::InterfaceList => {
            let list = vmknics(ctl)?;
            match formatter {
                Some(f) => console.print(&esxcli_interfaces(&list).format(f)),
                None => console.print(&format_esxcli_interfaces(&list)),
            }
        }
        EsxcliCommand::InterfaceAdd {
            interface,
            portgroup,
            mtu,
            mac,
            netstack,
        } => {
            let action = Action::VmknicAdd {
                vmknic: RawVmknic {
                    name: interface,
                    portgroup,
                    mtu: mtu.map(i64::from),
                    mac: mac.map(|m| m.to_string()),
                    ..RawVmknic::default()
                },
                netstack,
            };
            ctl.call(action).map_err(|e| failed(&e))?;
        }
        EsxcliCommand::InterfaceRemove { interface } => {
            ctl.call(Action::VmknicRemove { vmknic: interface })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::InterfaceSet {
            interface,
            enabled,
            mtu,
        } => {
            // Both checked before either applies: a vmknic that does not exist changes nothing.
            if !vmknics(ctl)?.iter().any(|v| v.name == interface) {
                return Err(no_interface(&interface));
            }
            if let Some(mtu) = mtu {
                let action = Action::VmknicSetMtu {
                    vmknic: interface.clone(),
                    mtu: u32::from(mtu),
                };
                ctl.call(action).map_err(|e| failed(&e))?;
            }
            if let Some(on) = enabled {
                let vmknic = interface;
                let action = match on {
                    true => Action::VmknicEnable { vmknic },
                    false => Action::VmknicDisable { vmknic },
                };
                ctl.call(action).map_err(|e| failed(&e))?;
            }
        }
        EsxcliCommand::Ipv4Get {
            interface,
            netstack,
        } => {
            // With -N the daemon lists that netstack's vmknics (and refuses one it lacks).
            let mut list = vmknics(ctl)?;
            if let Some(n) = &netstack {
                list.retain(|v| v.netstack == *n);
            }
            if let Some(name) = &interface {
                if !list.iter().any(|v| v.name == *name) {
                    return Err(no_interface(name));
                }
                list.retain(|v| v.name == *name);
            }
            console.print(&esxcli_ipv4(&list).output(formatter));
        }
        EsxcliCommand::Ipv6Get {
            interface,
            netstack,
        } => {
            let list = selected_vmknics(ctl, interface.as_deref(), netstack.as_deref())?;
            // The netstack's IPv6 default gateway, on the vmknic it leaves by.
            let routes: Vec<Route6Info> =
                call_as(ctl, Action::Route6List).map_err(|e| failed(&e))?;
            let gateways: Vec<(String, String)> = routes
                .iter()
                .filter(|r| r.active && r.network.prefix_len() == 0)
                .filter_map(|r| {
                    let g = r.gateway.as_deref()?;
                    // `fe80::1%vmk0`: the address alone, as ESXi shows it.
                    let g = g.split('%').next().unwrap_or(g).to_string();
                    Some((r.vmknic.clone()?, g))
                })
                .collect();
            console.print(&esxcli_ipv6_get(&list, &gateways).output(formatter));
        }
        EsxcliCommand::Ipv6AddressList {
            interface,
            netstack,
        } => {
            let list = selected_vmknics(ctl, interface.as_deref(), netstack.as_deref())?;
            console.print(&esxcli_ipv6_addresses(&list).output(formatter));
        }
        EsxcliCommand::Ipv6Address {
            interface,
            address,
            remove,
        } => {
            let action = Action::VmknicIpv6Address {
                vmknic: interface,
                address,
                remove,
            };
            ctl.call(action).map_err(|e| failed(&e))?;
        }
        EsxcliCommand::Ipv6Set {
            interface,
            enable,
            router_adv,
            dhcpv6,
        } => {
            // One change: the daemon refuses IPv6 off while an address source remains, and
            // says which.
            let action = Action::VmknicSetIpv6 {
                vmknic: interface,
                enabled: enable,
                autoconf: router_adv,
                dhcp: dhcpv6,
            };
            ctl.call(action).map_err(|e| failed(&e))?;
        }
        EsxcliCommand::Ipv4Set {
            interface,
            ip,
            gateway,
        } => {
            // The address and its gateway in one change: both apply or neither does.
            let action = Action::VmknicSetAddress {
                vmknic: interface,
                ip,
                gateway: gateway.map(|g| g.to_string()),
            };
            ctl.call(action).map_err(|e| failed(&e))?;
        }
        EsxcliCommand::DiagPing(p) => return diag_ping(&p, formatter, ctl, console),
        EsxcliCommand::NeighborList {
            interface, ipv4, ..
        } => {
            let mut neighbors: Vec<NeighborInfo> =
                call_as(ctl, Action::NeighborList).map_err(|e| failed(&e))?;
            if let Some(name) = &interface {
                if !vmknics(ctl)?.iter().any(|v| v.name == *name) {
                    return Err(no_interface(name));
                }
                neighbors.retain(|n| n.vmknic == *name);
            }
            if !ipv4 {
                neighbors.clear();
            }
            match formatter {
                None => console.print(&format_esxcli_neighbors(&neighbors)),
                Some(f) => console.print(&esxcli_neighbors(&neighbors).format(f)),
            }
        }
        EsxcliCommand::NeighborRemove { address, interface } => {
            let action = Action::NeighborRemove {
                ip: address.to_string(),
                vmknic: interface,
            };
            ctl.call(action).map_err(|e| failed(&e))?;
        }
    }
    Ok(())
}

/// The vmknics a listing is about: `-N`'s (the daemon lists that netstack's), and only
/// `interface` when named (an unknown one is refused).
fn selected_vmknics(
    ctl: &mut dyn Control,
    interface: Option<&str>,
    netstack: Option<&str>,
) -> Result<Vec<VmknicInfo>, CliError> {
    let mut list = vmknics(ctl)?;
    if let Some(n) = netstack {
        list.retain(|v| v.netstack == n);
    }
    if let Some(name) = interface {
        if !list.iter().any(|v| v.name == name) {
            return Err(no_interface(name));
        }
        list.retain(|v| v.name == name);
    }
    Ok(list)
}

fn no_interface(name: &str) -> CliError {
    CliError::Failed(format!(
        "Error: Invalid interface name {name}: no such VMkernel interface"
    ))
}

/// How much longer than the probe's own wait the client waits for the daemon's answer.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// `esxcli network diag ping`: the probes as vmkping sends them, then ESXi's Trace (one
/// block per reply) and Summary. Fails when no reply came back.
///
/// ```text
///    Trace:
///          Received Bytes: 64
///          Host: 198.18.1.1
///          ICMP Seq: 0
///          TTL: 64
///          Round-trip Time: 130 us
///          Dup: false
///          Detail:
///
///    Summary:
///          Host Addr: 198.18.1.1
///          Transmitted: 3
///          Recieved: 3
///          Duplicated: 0
///          Packet Lost: 0
///          Round-trip Min: 120 us
///          Round-trip Avg: 125 us
///          Round-trip Max: 130 us
/// ```
///
/// (`Recieved` is ESXi's spelling, kept for the scripts that read it.)
fn diag_ping(
    p: &DiagPingArgs,
    formatter: Option<Formatter>,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let wait = std::time::Duration::from_secs(u64::from(p.wait)) + ANSWER_MARGIN;
    ctl.set_timeout(wait).map_err(|e| failed(&e))?;
    let mut replies: Vec<PingReply> = Vec::new();
    let mut details: Vec<String> = Vec::new();
    for i in 0..p.count {
        if i > 0 {
            std::thread::sleep(p.interval);
        }
        let action = Action::Ping {
            destination: p.host.to_string(),
            vmknic: p.interface.clone(),
            size: p.size,
            df: p.df,
            ttl: p.ttl,
            timeout_ms: p.wait.saturating_mul(1000),
            seq: u16::try_from(i % 65536).unwrap_or(0),
            next_hop: p.nexthop.map(|n| n.to_string()),
        };
        match call_as::<PingReply>(ctl, action) {
            Ok(r) => replies.push(r),
            Err(e) => match e.remote() {
                Some(r) if r.kind == ErrorKind::Timeout => {}
                Some(r) if send_error_line(r.kind).is_some() || r.kind == ErrorKind::Invalid => {
                    details.push(
                        send_error_line(r.kind)
                            .map_or_else(|| r.message.clone(), |l| l.to_string()),
                    );
                }
                _ => return Err(failed(&e)),
            },
        }
    }
    let received = replies.len() as i64;
    let sent = i64::from(p.count);
    let lost = (sent - received) * 100 / sent.max(1);
    let rtts: Vec<u64> = replies.iter().map(|r| r.rtt_us).collect();
    let (min, max) = (
        rtts.iter().copied().min().unwrap_or(0),
        rtts.iter().copied().max().unwrap_or(0),
    );
    let avg = rtts.iter().sum::<u64>() / rtts.len().max(1) as u64;
    let trace: Vec<Vec<(&'static str, Field)>> = replies
        .iter()
        .map(|r| {
            vec![
                ("Received Bytes", Field::Int(r.bytes as i64)),
                ("Host", r.from.to_string().into()),
                ("ICMP Seq", Field::Int(i64::from(r.seq))),
                ("TTL", Field::Int(i64::from(r.ttl))),
                ("Round-trip Time", format!("{} us", r.rtt_us).into()),
                ("Dup", Field::Bool(false)),
                ("Detail", "".into()),
            ]
        })
        .chain(details.iter().map(|d| {
            vec![
                ("Received Bytes", Field::Int(0)),
                ("Host", p.host.to_string().into()),
                ("ICMP Seq", Field::Int(0)),
                ("TTL", Field::Int(0)),
                ("Round-trip Time", "0 us".into()),
                ("Dup", Field::Bool(false)),
                ("Detail", d.clone().into()),
            ]
        }))
        .collect();
    let summary: Vec<(&'static str, Field)> = vec![
        ("Host Addr", p.host.to_string().into()),
        ("Transmitted", Field::Int(sent)),
        ("Recieved", Field::Int(received)),
        ("Duplicated", Field::Int(0)),
        ("Packet Lost", Field::Int(lost)),
        ("Round-trip Min", format!("{min} us").into()),
        ("Round-trip Avg", format!("{avg} us").into()),
        ("Round-trip Max", format!("{max} us").into()),
    ];
    console.print(&format_diag_ping(&trace, &summary, formatter));
    if replies.is_empty() {
        return Err(CliError::Reported);
    }
    Ok(())
}

/// The Trace/Summary structure of `diag ping`, in esxcli's nested layout or a formatter's.
fn format_diag_ping(
    trace: &[Vec<(&'static str, Field)>],
    summary: &[(&'static str, Field)],
    formatter: Option<Formatter>,
) -> String {
    let list = |structure, rows: Vec<&[(&'static str, Field)]>| EsxcliList {
        structure,
        fields: rows
            .first()
            .map(|r| r.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default(),
        rows: rows
            .iter()
            .map(|r| r.iter().map(|(_, v)| v.clone()).collect())
            .collect(),
        layout: crate::listing::Layout::Table,
    };
    match formatter {
        None => {
            let mut out = String::from("   Trace: \n");
            let blocks: Vec<String> = trace
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|(k, v)| format!("         {k}: {}\n", field_text(v)))
                        .collect()
                })
                .collect();
            out.push_str(&blocks.join("      \n"));
            out.push_str("   Summary: \n");
            for (k, v) in summary {
                out.push_str(&format!("         {k}: {}\n", field_text(v)));
            }
            out
        }
        Some(Formatter::Json) => {
            let trace = list("Trace", trace.iter().map(Vec::as_slice).collect());
            let summary = list("Summary", vec![summary]);
            let t: serde_json::Value =
                serde_json::from_str(&trace.format(Formatter::Json)).unwrap_or_default();
            let s: serde_json::Value =
                serde_json::from_str(&summary.format(Formatter::Json)).unwrap_or_default();
            let s = s.get(0).cloned().unwrap_or_default();
            format!("{}\n", serde_json::json!({ "Summary": s, "Trace": t }))
        }
        Some(f) => {
            let trace = list("Trace", trace.iter().map(Vec::as_slice).collect());
            let summary = list("Summary", vec![summary]);
            let mut out = summary.format(f);
            if !trace.rows.is_empty() {
                out.push_str(&trace.format(f));
            }
            out
        }
    }
}

fn field_text(f: &Field) -> String {
    match f {
        Field::Str(s) => s.clone(),
        Field::Int(n) => n.to_string(),
        Field::Bool(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::ErrorKind;
    use crate::client::fake::{capture, refused, FakeDaemon};

    fn argv(s: &str) -> Vec<OsString> {
        std::iter::once("esxcli")
            .chain(s.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn command(s: &str) -> EsxcliCommand {
        match parse(argv(s)) {
            Ok(Parsed::Run(c)) => c.command,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn usage(s: &str) -> String {
        match parse(argv(s)) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn test_parse_commands() {
        let gw: Ipv4Addr = "198.18.1.1".parse().unwrap();
        let net = RouteTarget::Network("198.18.100.0/24".parse().unwrap());
        assert_eq!(
            command("network ip route ipv4 list"),
            EsxcliCommand::RouteList { netstack: None }
        );
        assert_eq!(
            command("network ip route ipv4 list -N vmotion"),
            EsxcliCommand::RouteList {
                netstack: Some("vmotion".into())
            }
        );
        assert_eq!(
            command("network ip netstack add -N vmotion"),
            EsxcliCommand::NetstackAdd("vmotion".into())
        );
        assert_eq!(
            command("network ip netstack list"),
            EsxcliCommand::NetstackList
        );
        assert_eq!(
            command("network ip route ipv4 add -n 198.18.100.0/24 -g 198.18.1.1"),
            EsxcliCommand::RouteAdd {
                network: net,
                gateway: gw,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip route ipv4 remove --network default --gateway 198.18.1.1"),
            EsxcliCommand::RouteRemove {
                network: RouteTarget::Default,
                gateway: gw,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip interface list"),
            EsxcliCommand::InterfaceList
        );
        assert_eq!(
            command("network ip neighbor list"),
            EsxcliCommand::NeighborList {
                interface: None,
                ipv4: true,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip neighbor list -i vmk1 -v 4"),
            EsxcliCommand::NeighborList {
                interface: Some("vmk1".into()),
                ipv4: true,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip neighbor list --version 6"),
            EsxcliCommand::NeighborList {
                interface: None,
                ipv4: false,
                netstack: None,
            }
        );
        let remove = EsxcliCommand::NeighborRemove {
            address: "198.18.2.10".parse().unwrap(),
            interface: None,
        };
        assert_eq!(command("network ip neighbor remove -a 198.18.2.10"), remove);
        assert_eq!(
            command("network ip neighbor remove -a 198.18.2.10 -v 4"),
            remove
        );
        assert_eq!(
            command("network ip neighbor remove --neighbor-addr 198.18.2.10 --version 4 -i vmk1"),
            EsxcliCommand::NeighborRemove {
                address: "198.18.2.10".parse().unwrap(),
                interface: Some("vmk1".into()),
            }
        );
    }

    #[test]
    fn test_neighbor_remove_usage_errors() {
        assert!(usage("network ip neighbor remove").contains("--neighbor-addr"));
        let bad = usage("network ip neighbor remove -a 198.18.2.300");
        assert!(bad.contains("198.18.2.300"), "{bad}");
        assert_eq!(
            usage("network ip neighbor remove -a 198.18.2.10 -v 6"),
            "Error: -v/--version must be 4: the VMkernel stack of vmkstack is IPv4 only"
        );
        assert!(usage("network ip neighbor remove -a 198.18.2.10 -v 5").contains("-v"));
        assert!(usage("network ip neighbor flush").contains("list, remove"));
    }

    #[test]
    fn test_run_neighbors() {
        let neighbors = json!([
            {"ip": "198.18.1.1", "mac": "02:00:00:00:01:01", "vmknic": "vmk0",
             "state": "reachable", "expiry_s": 1199},
            {"ip": "198.18.2.10", "mac": "02:00:00:00:02:0a", "vmknic": "vmk1",
             "state": "reachable", "expiry_s": 88}
        ]);
        let vmknics = json!([
            {"name": "vmk0", "portgroup": "A", "addresses": [], "mac": "02:00:00:00:00:01",
             "mtu": 1500, "enabled": true, "tap": "vmk0", "bridge": null, "netns": null},
            {"name": "vmk1", "portgroup": "B", "addresses": [], "mac": "02:00:00:00:00:02",
             "mtu": 1500, "enabled": true, "tap": "vmk1", "bridge": null, "netns": null}
        ]);
        let mut d = FakeDaemon::new(vec![Ok(neighbors.clone()), Ok(vmknics.clone())]);
        let list = |interface: Option<&str>, ipv4| EsxcliCommand::NeighborList {
            interface: interface.map(String::from),
            ipv4,
            netstack: None,
        };
        let (r, out, _) = capture(|c| run(list(Some("vmk1"), true), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "Neighbor     Mac Address        Vmknic  Expiry  State  Type   \n\
             -----------  -----------------  ------  ------  -----  -------\n\
             198.18.2.10  02:00:00:00:02:0a  vmk1    88 sec         Unknown\n"
        );
        let mut d = FakeDaemon::new(vec![Ok(neighbors.clone()), Ok(vmknics)]);
        let (r, _, _) = capture(|c| run(list(Some("vmk7"), true), &mut d, c));
        assert_eq!(
            r,
            Err(CliError::Failed(
                "Error: Invalid interface name vmk7: no such VMkernel interface".into()
            ))
        );
        let mut d = FakeDaemon::new(vec![Ok(neighbors)]);
        let (r, out, _) = capture(|c| run(list(None, false), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(out.lines().count(), 2, "headers only for IPv6: {out}");

        let mut d = FakeDaemon::new(vec![
            Ok(serde_json::Value::Null),
            refused(ErrorKind::NotFound, "no neighbour 198.18.2.10 on vmk0"),
        ]);
        let remove = |interface: Option<&str>| EsxcliCommand::NeighborRemove {
            address: "198.18.2.10".parse().unwrap(),
            interface: interface.map(String::from),
        };
        let (r, out, _) = capture(|c| run(remove(None), &mut d, c));
        assert_eq!(
            (r, out.as_str()),
            (Ok(()), ""),
            "silent, as esxcli changes are"
        );
        let (r, _, _) = capture(|c| run(remove(Some("vmk0")), &mut d, c));
        assert_eq!(
            r,
            Err(CliError::Failed("no neighbour 198.18.2.10 on vmk0".into()))
        );
        assert_eq!(
            d.actions,
            vec![
                Action::NeighborRemove {
                    ip: "198.18.2.10".into(),
                    vmknic: None
                },
                Action::NeighborRemove {
                    ip: "198.18.2.10".into(),
                    vmknic: Some("vmk0".into())
                }
            ]
        );
    }

    #[test]
    fn test_namespace_errors_name_the_valid_ones() {
        assert_eq!(
            usage("network ip foo list"),
            "Error: Unknown command or namespace network ip foo (expected one of: interface, \
             neighbor, netstack, route)"
        );
        assert_eq!(
            usage("storage"),
            "Error: Unknown command or namespace storage (expected one of: network)"
        );
        assert_eq!(
            usage("network ip route"),
            "Error: Missing command or namespace after `esxcli network ip route` (expected one \
             of: ipv4, ipv6)"
        );
        assert!(usage("").contains("after `esxcli` (expected one of: network)"));
        assert!(usage("network ip route ipv4 show").contains("add, list, remove"));
        assert!(usage("network ip route ipv4 add -n 198.18.100.0/24").contains("--gateway"));
        let host_bits = usage("network ip route ipv4 add -n 198.18.100.7/24 -g 198.18.1.1");
        assert!(host_bits.contains("host bits"), "{host_bits}");
        assert!(matches!(
            parse(argv("network ip --help")),
            Ok(Parsed::Help(_))
        ));
    }

    #[test]
    fn test_run_route_list() {
        let routes = json!([
            {"network": "198.18.100.0/24", "gateway": "198.18.1.1", "vmknic": "vmk0",
             "origin": "static", "active": true},
            {"network": "198.18.1.0/24", "gateway": null, "vmknic": "vmk0",
             "origin": "connected", "active": true},
            {"network": "0.0.0.0/0", "gateway": "198.18.1.1", "vmknic": "vmk0",
             "origin": "default", "active": true},
        ]);
        let mut d = FakeDaemon::new(vec![Ok(routes)]);
        let (r, out, _) = capture(|c| run(EsxcliCommand::RouteList { netstack: None }, &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "Network       Netmask        Gateway     Interface  Source\n\
             ------------  -------------  ----------  ---------  ------\n\
             default       0.0.0.0        198.18.1.1  vmk0       MANUAL\n\
             198.18.100.0  255.255.255.0  198.18.1.1  vmk0       MANUAL\n\
             198.18.1.0    255.255.255.0  0.0.0.0     vmk0       MANUAL\n"
        );
    }

    #[test]
    fn test_run_changes() {
        let mut d = FakeDaemon::new(vec![
            Ok(serde_json::Value::Null),
            refused(ErrorKind::NotFound, "no route to 198.18.100.0/24"),
        ]);
        let net = RouteTarget::Network("198.18.100.0/24".parse().unwrap());
        let gateway = "198.18.1.1".parse().unwrap();
        let (r, out, _) = capture(|c| {
            run(
                EsxcliCommand::RouteAdd {
                    network: net,
                    gateway,
                    netstack: None,
                },
                &mut d,
                c,
            )
        });
        assert_eq!((r, out.as_str()), (Ok(()), ""));
        let (r, _, _) = capture(|c| {
            run(
                EsxcliCommand::RouteRemove {
                    network: net,
                    gateway,
                    netstack: None,
                },
                &mut d,
                c,
            )
        });
        assert_eq!(
            r,
            Err(CliError::Failed("no route to 198.18.100.0/24".into()))
        );
        assert_eq!(
            d.actions[1],
            Action::RouteRemove {
                network: "198.18.100.0/24".into(),
                gateway: Some("198.18.1.1".into())
            }
        );
    }

    #[test]
    fn test_parse_ipv6_set_router_adv() {
        assert_eq!(
            command("network ip interface ipv6 set -i vmk1 -r true"),
            EsxcliCommand::Ipv6Set {
                interface: "vmk1".into(),
                enable: None,
                router_adv: Some(true),
                dhcpv6: None,
            }
        );
        assert_eq!(
            command(
                "network ip interface ipv6 set --interface-name vmk2 --enable-router-adv false"
            ),
            EsxcliCommand::Ipv6Set {
                interface: "vmk2".into(),
                enable: None,
                router_adv: Some(false),
                dhcpv6: None,
            }
        );
        assert_eq!(
            command("network ip interface ipv6 set -i vmk1 -e true -d true"),
            EsxcliCommand::Ipv6Set {
                interface: "vmk1".into(),
                enable: Some(true),
                router_adv: None,
                dhcpv6: Some(true),
            }
        );
        assert!(usage("network ip interface ipv6 set -i vmk1").contains("-d/--enable-dhcpv6"));
        assert!(usage("network ip interface ipv6 set -i vmk1 -r maybe").contains("maybe"));
        assert!(usage("network ip interface ipv6 set -i vmk1 -d maybe")
            .contains("`maybe` is not a boolean"));
    }

    #[test]
    fn test_parse_interface_commands() {
        assert_eq!(
            command("network ip interface add -i vmk2 -p NFS -m 9000 -M 02:50:56:00:00:42 -N defaultTcpipStack"),
            EsxcliCommand::InterfaceAdd {
                interface: "vmk2".into(),
                portgroup: "NFS".into(),
                mtu: Some(9000),
                mac: "02:50:56:00:00:42".parse().ok(),
                netstack: Some("defaultTcpipStack".into()),
            }
        );
        assert_eq!(
            command("network ip interface remove --interface-name vmk2"),
            EsxcliCommand::InterfaceRemove {
                interface: "vmk2".into()
            }
        );
        assert_eq!(
            command("network ip interface set -i vmk1 -e false -m 1400"),
            EsxcliCommand::InterfaceSet {
                interface: "vmk1".into(),
                enabled: Some(false),
                mtu: Some(1400),
            }
        );
        assert_eq!(
            command("network ip interface ipv4 get -N defaultTcpipStack"),
            EsxcliCommand::Ipv4Get {
                interface: None,
                netstack: Some("defaultTcpipStack".into()),
            }
        );
        let set = |args: &str| command(&format!("network ip interface ipv4 set -i vmk1 {args}"));
        let ip = |ip: &str| EsxcliCommand::Ipv4Set {
            interface: "vmk1".into(),
            ip: ip.into(),
            gateway: None,
        };
        assert_eq!(
            set("-t static -I 198.18.2.5 -N 255.255.255.0"),
            ip("198.18.2.5/24")
        );
        assert_eq!(
            set("--type static --ipv4 198.18.2.5 --netmask 22"),
            ip("198.18.2.5/22")
        );
        assert_eq!(set("-t dhcp"), ip("dhcp"));
        assert_eq!(
            set("-t static -I 198.18.2.5 -N 24 -g 198.18.2.1"),
            EsxcliCommand::Ipv4Set {
                interface: "vmk1".into(),
                ip: "198.18.2.5/24".into(),
                gateway: Some(Ipv4Addr::new(198, 18, 2, 1)),
            }
        );
        assert_eq!(set("-t none"), ip(""));
        match parse(argv("--formatter=csv network ip interface list")) {
            Ok(Parsed::Run(e)) => assert_eq!(
                e,
                Esxcli {
                    formatter: Some(Formatter::Csv),
                    command: EsxcliCommand::InterfaceList
                }
            ),
            other => panic!("{other:?}"),
        }
        match parse(argv(
            "--formatter json network diag ping -H 198.18.1.1 --nexthop 198.18.1.254 -c 2 -d",
        )) {
            Ok(Parsed::Run(Esxcli {
                formatter: Some(Formatter::Json),
                command: EsxcliCommand::DiagPing(p),
            })) => {
                assert_eq!(p.host, Ipv4Addr::new(198, 18, 1, 1));
                assert_eq!(p.nexthop, Some(Ipv4Addr::new(198, 18, 1, 254)));
                assert_eq!((p.count, p.size, p.df), (2, 56, true));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_interface_usage_errors() {
        assert!(usage("network ip interface add -i vmk2").contains("--portgroup-name"));
        assert!(usage("network ip interface add -i e0 -p X").contains("`e0` is not a VMkernel"));
        assert!(usage("network ip interface add -i vmk2 -p X -m 67").contains("`67` is not an MTU"));
        assert!(
            usage("network ip interface add -i vmk2 -p X -M ff:ff:ff:ff:ff:ff")
                .contains("not unicast")
        );
        assert_eq!(
            usage("network ip interface set -i vmk2"),
            "Error: nothing to set: give -e/--enabled true|false and/or -m/--mtu"
        );
        let set = |args: &str| usage(&format!("network ip interface ipv4 set -i vmk1 {args}"));
        assert_eq!(
            set("-t static -N 24"),
            "Error: -t static needs -I/--ipv4 <address>"
        );
        assert_eq!(
            set("-t static -I 198.18.2.5"),
            "Error: -t static needs -N/--netmask <netmask>"
        );
        assert_eq!(
            set("-t none -N 24"),
            "Error: -I/--ipv4 and -N/--netmask go only with -t static"
        );
        assert!(set("-t static -I 198.18.2.5 -N 255.0.255.0").contains("not contiguous"));
        assert!(set("-t static -I 198.18.2.0 -N 24").contains("network address"));
        assert!(set("-t dhcp -g 198.18.2.1").contains("-g/--gateway goes only with -t static"));
        assert!(usage("--formatter=xml network ip interface list").contains("xml"));
        assert!(usage("network diag ping").contains("--host"));
        assert!(usage("network diag").contains("expected one of: ping"));
    }

    /// `netstack get` holds ESXi's record: its fields in ESXi's order; the CSV formatter
    /// names them as esxcli's does (sorted, without spaces).
    #[test]
    fn test_run_netstack_get_layout() {
        let info = json!({"name": "vmotion", "gateway": "198.18.10.1", "forwarding": false,
            "vmknics": ["vmk1"], "routes": 1, "max_connections": 144,
            "congestion_control": "cubic"});
        // The netstack, then the vmknics (none with IPv6).
        let mut d = FakeDaemon::new(vec![Ok(info.clone()), Ok(json!([]))]);
        let get = || EsxcliCommand::NetstackGet("vmotion".into());
        let (r, out, _) = capture(|c| run(get(), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "vmotion\n   Key: vmotion\n   Name: vmotion\n   Enabled: true\n   \
             Max Connections: 144\n   Current Max Connections: 144\n   \
             Congestion Control Algorithm: cubic\n   IPv6 Enabled: false\n   \
             Current IPv6 Enabled: false\n   State: 4660\n"
        );
        let mut d = FakeDaemon::new(vec![Ok(info), Ok(json!([]))]);
        let (r, out, _) = capture(|c| run_formatted(get(), Some(Formatter::Csv), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "CongestionControlAlgorithm,CurrentIPv6Enabled,CurrentMaxConnections,Enabled,\
             IPv6Enabled,Key,MaxConnections,Name,State,\n\
             cubic,false,144,true,false,vmotion,144,vmotion,4660,\n"
        );
    }

    /// `diag ping` prints, byte for byte, what ESXi printed in a public sample (index id
    /// 15124196877: `esxcli network diag ping -I vmk1 -H 172.40.0.10`, three replies of
    /// 1864, 1834 and 1824 us; the address is the lab's here). The details that scripts
    /// trip on: a space after `Trace:`, `Summary:` and an empty `Detail:`, six spaces
    /// between two replies and none after the last, `Recieved`, the average truncated.
    #[test]
    fn test_run_diag_ping_matches_esxi() {
        let reply = |seq: u16, rtt: u64| {
            Ok(
                json!({"bytes": 64, "from": "198.18.40.10", "seq": seq, "ttl": 64,
                      "rtt_us": rtt, "destination": "198.18.40.10"}),
            )
        };
        let mut d = FakeDaemon::new(vec![reply(0, 1864), reply(1, 1834), reply(2, 1824)]);
        let p = match command("network diag ping -I vmk1 -H 198.18.40.10 -i 0") {
            EsxcliCommand::DiagPing(p) => p,
            other => panic!("{other:?}"),
        };
        let (r, out, _) = capture(|c| diag_ping(&p, None, &mut d, c));
        assert_eq!(r, Ok(()));
        let esxi = "   Trace: \n\
\x20        Received Bytes: 64\n\
\x20        Host: 198.18.40.10\n\
\x20        ICMP Seq: 0\n\
\x20        TTL: 64\n\
\x20        Round-trip Time: 1864 us\n\
\x20        Dup: false\n\
\x20        Detail: \n\
\x20     \n\
\x20        Received Bytes: 64\n\
\x20        Host: 198.18.40.10\n\
\x20        ICMP Seq: 1\n\
\x20        TTL: 64\n\
\x20        Round-trip Time: 1834 us\n\
\x20        Dup: false\n\
\x20        Detail: \n\
\x20     \n\
\x20        Received Bytes: 64\n\
\x20        Host: 198.18.40.10\n\
\x20        ICMP Seq: 2\n\
\x20        TTL: 64\n\
\x20        Round-trip Time: 1824 us\n\
\x20        Dup: false\n\
\x20        Detail: \n\
\x20  Summary: \n\
\x20        Host Addr: 198.18.40.10\n\
\x20        Transmitted: 3\n\
\x20        Recieved: 3\n\
\x20        Duplicated: 0\n\
\x20        Packet Lost: 0\n\
\x20        Round-trip Min: 1824 us\n\
\x20        Round-trip Avg: 1840 us\n\
\x20        Round-trip Max: 1864 us\n";
        assert_eq!(out, esxi);
    }

    #[test]
    fn test_run_diag_ping_trace_and_summary() {
        let reply = |seq: u16, rtt: u64| {
            Ok(
                json!({"bytes": 64, "from": "198.18.1.1", "seq": seq, "ttl": 63, "rtt_us": rtt,
                      "destination": "198.18.1.1"}),
            )
        };
        let ping = |args: &str| match command(&format!("network diag ping {args}")) {
            EsxcliCommand::DiagPing(p) => p,
            other => panic!("{other:?}"),
        };
        let mut d = FakeDaemon::new(vec![
            reply(0, 100),
            refused(ErrorKind::Timeout, "Request timeout"),
            reply(2, 300),
        ]);
        let p = ping("-H 198.18.1.1 -c 3 -i 0 --nexthop 198.18.0.254");
        let (r, out, _) = capture(|c| diag_ping(&p, None, &mut d, c));
        assert_eq!(r, Ok(()));
        let block = |seq: u16, rtt: u64| {
            format!(
                "         Received Bytes: 64\n         Host: 198.18.1.1\n         ICMP Seq: {seq}\n\
                 \x20        TTL: 63\n         Round-trip Time: {rtt} us\n         Dup: false\n\
                 \x20        Detail: \n"
            )
        };
        assert_eq!(
            out,
            format!(
                "   Trace: \n{}      \n{}   Summary: \n         Host Addr: 198.18.1.1\n\
                 \x20        Transmitted: 3\n         Recieved: 2\n         Duplicated: 0\n\
                 \x20        Packet Lost: 33\n         Round-trip Min: 100 us\n\
                 \x20        Round-trip Avg: 200 us\n         Round-trip Max: 300 us\n",
                block(0, 100),
                block(2, 300)
            )
        );
        assert!(matches!(
            &d.actions[0],
            Action::Ping { next_hop: Some(n), seq: 0, .. } if n == "198.18.0.254"
        ));
        // No reply at all: the summary, then a failure already reported.
        let mut d = FakeDaemon::new(vec![refused(ErrorKind::NoRoute, "no route")]);
        let p = ping("-H 198.18.1.1 -c 1");
        let (r, out, _) = capture(|c| diag_ping(&p, Some(Formatter::Json), &mut d, c));
        assert_eq!(r, Err(CliError::Reported));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Summary"]["PacketLost"], 100);
        assert_eq!(
            v["Trace"][0]["Detail"],
            "sendto() failed (No route to host)"
        );
    }
}
