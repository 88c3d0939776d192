//! Pure argument parsers for the ESX command forms `esxcfg-route` and `esxcfg-vmknic`.
//!
//! Each parser turns an argv into a typed command and nothing else: no I/O, no printing, no
//! process exit. clap (derive) handles the flag structure; the positionals are interpreted by
//! hand so that a wrong form gets a [`UsageError`] saying exactly what is wrong.
//!
//! `argv[0]` is the program name and is skipped; messages always name the ESX program
//! (`esxcfg-route`, `esxcfg-vmknic`) so they read the same however the binary was invoked.
//! `-h`/`--help` is returned as [`UsageError::Help`] carrying the usage text: the caller prints
//! it on stdout and exits successfully (see [`UsageError::is_help`]).

use std::ffi::OsString;
use std::fmt;
use std::net::Ipv4Addr;

use clap::error::ErrorKind;
use clap::{ArgGroup, ColorChoice, Parser};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use vmkstack_routing::{check_network, parse_addr, parse_netmask, parse_network, PrefixError};
use vmkstack_vmknic::{MacAddr, MacParseError, MAX_MTU, MIN_MTU};

const ROUTE: &str = "esxcfg-route";
const VMKNIC: &str = "esxcfg-vmknic";
const ROUTE_ADD_FORMS: &str =
    "`default <gateway>`, `<network>/<len> <gateway>` or `<network> <netmask> <gateway>`";
const ROUTE_DEL_FORMS: &str =
    "`default [<gateway>]`, `<network>/<len> [<gateway>]` or `<network> <netmask> [<gateway>]`";
const VMKNIC_ACTIONS: &str = "-l, -a, -d, -e, -D, -m <mtu> or -i <ip> -n <netmask>";

/// An `esxcfg-route` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteCommand {
    /// `esxcfg-route`: show the VMkernel default gateway.
    ShowDefault,
    /// `esxcfg-route <gw>`, `-a default <gw>`, `-a 0.0.0.0/0 <gw>`: set the default gateway.
    SetDefault(Ipv4Addr),
    /// `-d default [<gw>]`: remove the default gateway; a given gateway must match the current.
    ClearDefault {
        /// The gateway the user named, for the caller to check.
        gateway: Option<Ipv4Addr>,
    },
    /// `-a <net>/<len> <gw>` or `-a <net> <netmask> <gw>`: add a static route.
    Add {
        /// Destination network (no host bits).
        network: Ipv4Net,
        /// Next hop, which must sit on a vmknic subnet.
        gateway: Ipv4Addr,
    },
    /// `-d <net>/<len> [<gw>]` or `-d <net> <netmask> [<gw>]`: delete a static route.
    Delete {
        /// Destination network (no host bits).
        network: Ipv4Net,
        /// The gateway the user named, for the caller to check against the route's.
        gateway: Option<Ipv4Addr>,
    },
    /// `-l`/`--list`: list the routing table.
    List,
    /// `-n`/`--neighbor-list`: list the neighbour (ARP) table.
    Neighbors,
}

/// An `esxcfg-vmknic` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmknicCommand {
    /// `-l`/`--list`: list the vmknics.
    List,
    /// `-a -i <ip> -n <netmask> [-m <mtu>] [-M <mac>] <portgroup>`: add a vmknic.
    Add {
        /// Port group the vmknic joins.
        portgroup: String,
        /// The vmknic's address.
        ip: Ipv4Addr,
        /// Its subnet's prefix length (1-32).
        prefix_len: u8,
        /// MTU in `MIN_MTU..=MAX_MTU`, or the default.
        mtu: Option<u16>,
        /// A unicast MAC, or one derived from the name.
        mac: Option<MacAddr>,
    },
    /// `-d <portgroup>`: delete the vmknic on a port group.
    Delete {
        /// Port group of the vmknic.
        portgroup: String,
    },
    /// `-e <portgroup>`: enable the vmknic.
    Enable {
        /// Port group of the vmknic.
        portgroup: String,
    },
    /// `-D <portgroup>`: disable the vmknic.
    Disable {
        /// Port group of the vmknic.
        portgroup: String,
    },
    /// `-m <mtu> <portgroup>` without `-a`: change the MTU.
    SetMtu {
        /// Port group of the vmknic.
        portgroup: String,
        /// New MTU in `MIN_MTU..=MAX_MTU`.
        mtu: u16,
    },
    /// `-i <ip> -n <netmask> <portgroup>` without `-a`: change the address.
    SetAddress {
        /// Port group of the vmknic.
        portgroup: String,
        /// New address.
        ip: Ipv4Addr,
        /// New prefix length (1-32).
        prefix_len: u8,
    },
}

/// The command a usage error is about, written as the user would (`esxcfg-route -a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation {
    /// `esxcfg-route` or `esxcfg-vmknic`.
    pub program: &'static str,
    /// The action flag in its short form, if there was one.
    pub action: Option<&'static str>,
}

impl Invocation {
    fn error(self, problem: Problem) -> UsageError {
        UsageError::Invalid {
            invocation: self,
            problem,
        }
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            Some(action) => write!(f, "{} {action}", self.program),
            None => f.write_str(self.program),
        }
    }
}

/// Why an argv is not a valid command; the Display says exactly what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsageError {
    /// `-h`/`--help`: not a failure. Print the usage text on stdout and exit with status 0.
    #[error("{0}")]
    Help(String),
    /// clap refused the flags (unknown option, two actions, missing option value): clap's own
    /// message, with the usage line.
    #[error("{0}")]
    Flags(String),
    /// The flags parsed but the form or a value is wrong.
    #[error("{invocation}: {problem}")]
    Invalid {
        /// The command, as in `esxcfg-route -a`.
        invocation: Invocation,
        /// What is wrong.
        problem: Problem,
    },
}

/// What is wrong with a command whose flags parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// The wrong number of positional arguments for the action.
    #[error("expected {expected}, got {}", arguments(.got))]
    Arguments {
        /// The accepted forms.
        expected: &'static str,
        /// How many positionals there were.
        got: usize,
    },
    /// An option (named) that the action does not take.
    #[error("{0} cannot be used with this action")]
    Conflict(&'static str),
    /// A required option (named with its value) is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// No action flag and no option implying one.
    #[error("no action given; expected one of {VMKNIC_ACTIONS}")]
    NoAction,
    /// An address, network or netmask that does not parse or is refused.
    #[error("invalid {what}: {error}")]
    Address {
        /// Its role: `gateway`, `network`, `netmask` or `IP address`.
        what: &'static str,
        /// The refusal.
        error: PrefixError,
    },
    /// A netmask (as written) that is neither dotted nor a length.
    #[error("`{0}` is not a netmask (expected dotted, as in 255.255.255.0, or a length 0-32)")]
    Netmask(String),
    /// An address that cannot be a vmknic's own.
    #[error("{ip}/{prefix_len} cannot be a vmknic address: {reason}")]
    UnusableAddress {
        /// The address.
        ip: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// Why not.
        reason: &'static str,
    },
    /// An MTU (as written) that is not a number.
    #[error("`{0}` is not an MTU (expected a number from {MIN_MTU} to {MAX_MTU})")]
    MtuSyntax(String),
    /// An MTU outside `MIN_MTU..=MAX_MTU`.
    #[error("MTU {0} is out of range ({MIN_MTU}-{MAX_MTU})")]
    MtuRange(u64),
    /// Text that is not a MAC address.
    #[error("{0}")]
    Mac(MacParseError),
    /// A multicast or all-zero MAC.
    #[error("{0} cannot be a vmknic MAC address (it is multicast or all zero)")]
    MacNotUnicast(MacAddr),
    /// An empty port group name.
    #[error("the port group name is empty")]
    EmptyPortGroup,
}

impl UsageError {
    /// True for `-h`/`--help`, which is a request for the usage text, not a failure.
    pub fn is_help(&self) -> bool {
        matches!(self, UsageError::Help(_))
    }

    /// The problem, when the flags parsed but the form or a value is wrong.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            UsageError::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

fn arguments(got: &usize) -> String {
    match got {
        1 => "1 argument".to_string(),
        n => format!("{n} arguments"),
    }
}

fn from_clap(err: clap::Error) -> UsageError {
    let text = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            UsageError::Help(text)
        }
        _ => UsageError::Flags(text.trim_end().to_string()),
    }
}

/// Show or change the VMkernel default gateway and static routes.
#[derive(Debug, Parser)]
#[command(
    name = ROUTE,
    bin_name = ROUTE,
    color = ColorChoice::Never,
    group(ArgGroup::new("action").multiple(false)),
    override_usage = "esxcfg-route [<gateway>]\n       \
        esxcfg-route -a default <gateway> | <network>/<len> <gateway> | <network> <netmask> <gateway>\n       \
        esxcfg-route -d default [<gateway>] | <network>/<len> [<gateway>] | <network> <netmask> [<gateway>]\n       \
        esxcfg-route -l | -n",
    after_help = "Examples:\n  esxcfg-route 192.168.0.1\n  esxcfg-route -a default 192.168.0.1\n  \
        esxcfg-route -a 192.168.100.0/24 192.168.0.1\n  \
        esxcfg-route -a 192.168.100.0 255.255.255.0 192.168.0.1"
)]
struct RouteArgs {
    /// Add a route (or the default gateway)
    #[arg(short = 'a', long = "add", group = "action")]
    add: bool,
    /// Delete a route (or the default gateway)
    #[arg(short = 'd', long = "del", group = "action")]
    del: bool,
    /// List the routing table
    #[arg(short = 'l', long = "list", group = "action")]
    list: bool,
    /// List the neighbour (ARP) table
    #[arg(short = 'n', long = "neighbor-list", group = "action")]
    neighbors: bool,
    /// Gateway, or network [netmask] gateway with -a/-d
    #[arg(value_name = "ARG")]
    args: Vec<String>,
}

/// Parses an `esxcfg-route` argv (`argv[0]` is the program name) into a [`RouteCommand`].
pub fn parse_esxcfg_route<I, T>(argv: I) -> Result<RouteCommand, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = RouteArgs::try_parse_from(argv).map_err(from_clap)?;
    let pos: Vec<&str> = args.args.iter().map(String::as_str).collect();
    let flags = [
        (args.add, "-a"),
        (args.del, "-d"),
        (args.list, "-l"),
        (args.neighbors, "-n"),
    ];
    let action = flags
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag));
    let i = Invocation {
        program: ROUTE,
        action,
    };
    let arity = |expected| {
        let got = pos.len();
        Err(i.error(Problem::Arguments { expected, got }))
    };
    if args.list || args.neighbors {
        return match (pos.is_empty(), args.list) {
            (false, _) => arity("no arguments"),
            (true, true) => Ok(RouteCommand::List),
            (true, false) => Ok(RouteCommand::Neighbors),
        };
    }
    if args.add {
        let (network, gateway) = match pos.as_slice() {
            ["default", gw] => (Ipv4Net::default(), gateway(i, gw)?),
            // A bare address and a gateway: the prefix length or netmask is missing.
            [net, _] if !net.contains('/') && parse_addr(net).is_ok() => {
                return arity(ROUTE_ADD_FORMS)
            }
            [net, gw] => (prefix(i, net)?, gateway(i, gw)?),
            [net, mask, gw] => (network_mask(i, net, mask)?, gateway(i, gw)?),
            _ => return arity(ROUTE_ADD_FORMS),
        };
        return Ok(match network.prefix_len() {
            0 => RouteCommand::SetDefault(gateway),
            _ => RouteCommand::Add { network, gateway },
        });
    }
    if args.del {
        let (network, gateway) = match pos.as_slice() {
            ["default"] => (Ipv4Net::default(), None),
            ["default", gw] => (Ipv4Net::default(), Some(gateway(i, gw)?)),
            [net] => (prefix(i, net)?, None),
            [net, gw] if net.contains('/') => (prefix(i, net)?, Some(gateway(i, gw)?)),
            [net, mask] => (network_mask(i, net, mask)?, None),
            [net, mask, gw] => (network_mask(i, net, mask)?, Some(gateway(i, gw)?)),
            _ => return arity(ROUTE_DEL_FORMS),
        };
        return Ok(match network.prefix_len() {
            0 => RouteCommand::ClearDefault { gateway },
            _ => RouteCommand::Delete { network, gateway },
        });
    }
    match pos.as_slice() {
        [] => Ok(RouteCommand::ShowDefault),
        [gw] => Ok(RouteCommand::SetDefault(gateway(i, gw)?)),
        _ => arity("no arguments or `<gateway>`"),
    }
}

fn address(i: Invocation, what: &'static str, error: PrefixError) -> UsageError {
    i.error(Problem::Address { what, error })
}

fn gateway(i: Invocation, s: &str) -> Result<Ipv4Addr, UsageError> {
    parse_addr(s).map_err(|e| address(i, "gateway", e))
}

fn prefix(i: Invocation, s: &str) -> Result<Ipv4Net, UsageError> {
    parse_network(s).map_err(|e| address(i, "network", e))
}

fn netmask(i: Invocation, s: &str) -> Result<u8, UsageError> {
    parse_netmask(s).map_err(|e| match e {
        PrefixError::Netmask(_) => address(i, "netmask", e),
        _ => i.error(Problem::Netmask(s.to_string())),
    })
}

fn network_mask(i: Invocation, net: &str, mask: &str) -> Result<Ipv4Net, UsageError> {
    let addr = parse_addr(net).map_err(|e| address(i, "network", e))?;
    let len = netmask(i, mask)?;
    let net = Ipv4Net::new(addr, len).map_err(|_| i.error(Problem::Netmask(mask.to_string())))?;
    check_network(net).map_err(|e| address(i, "network", e))
}

/// Configure VMkernel network interfaces (vmknics).
#[derive(Debug, Parser)]
#[command(
    name = VMKNIC,
    bin_name = VMKNIC,
    color = ColorChoice::Never,
    group(ArgGroup::new("action").multiple(false)),
    override_usage = "esxcfg-vmknic -l\n       \
        esxcfg-vmknic -a -i <ip> -n <netmask> [-m <mtu>] [-M <mac>] <portgroup>\n       \
        esxcfg-vmknic -d|-e|-D <portgroup>\n       \
        esxcfg-vmknic -m <mtu> <portgroup>\n       \
        esxcfg-vmknic -i <ip> -n <netmask> <portgroup>"
)]
struct VmknicArgs {
    /// List the vmknics
    #[arg(short = 'l', long = "list", group = "action")]
    list: bool,
    /// Add a vmknic on a port group
    #[arg(short = 'a', long = "add", group = "action")]
    add: bool,
    /// Delete the vmknic on a port group
    #[arg(short = 'd', long = "del", group = "action")]
    del: bool,
    /// Enable the vmknic on a port group
    #[arg(short = 'e', long = "enable-vmknic", group = "action")]
    enable: bool,
    /// Disable the vmknic on a port group
    #[arg(short = 'D', long = "disable-vmknic", group = "action")]
    disable: bool,
    /// IPv4 address
    #[arg(short = 'i', long = "ip", value_name = "IP")]
    ip: Option<String>,
    /// Netmask, dotted or as a length
    #[arg(short = 'n', long = "netmask", value_name = "NETMASK")]
    netmask: Option<String>,
    /// MTU (68-9000)
    #[arg(short = 'm', long = "mtu", value_name = "MTU")]
    mtu: Option<String>,
    /// MAC address (with -a)
    #[arg(short = 'M', long = "mac", value_name = "MAC")]
    mac: Option<String>,
    /// Port group name (quote names with spaces)
    #[arg(value_name = "PORTGROUP")]
    portgroup: Vec<String>,
}

/// Parses an `esxcfg-vmknic` argv (`argv[0]` is the program name) into a [`VmknicCommand`].
pub fn parse_esxcfg_vmknic<I, T>(argv: I) -> Result<VmknicCommand, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let a = VmknicArgs::try_parse_from(argv).map_err(from_clap)?;
    let inv = |action| Invocation {
        program: VMKNIC,
        action: Some(action),
    };
    let options = [
        ("-i/--ip", a.ip.is_some()),
        ("-n/--netmask", a.netmask.is_some()),
        ("-m/--mtu", a.mtu.is_some()),
        ("-M/--mac", a.mac.is_some()),
    ];
    // Refuses the first given option that is not in `allowed`.
    let only = |i: Invocation, allowed: &[&str]| {
        let extra = options
            .iter()
            .find(|(name, given)| *given && !allowed.contains(name));
        extra.map_or(Ok(()), |(name, _)| Err(i.error(Problem::Conflict(name))))
    };
    if a.list {
        only(inv("-l"), &[])?;
        let got = a.portgroup.len();
        return match got {
            0 => Ok(VmknicCommand::List),
            _ => Err(inv("-l").error(Problem::Arguments {
                expected: "no arguments",
                got,
            })),
        };
    }
    if a.add {
        let i = inv("-a");
        let ip =
            a.ip.as_deref()
                .ok_or(i.error(Problem::Missing("-i/--ip <ip>")));
        let mask = a.netmask.as_deref();
        let mask = mask.ok_or(i.error(Problem::Missing("-n/--netmask <netmask>")));
        let (ip, mask, portgroup) = (ip?, mask?, portgroup(i, &a.portgroup)?);
        let (ip, prefix_len) = interface_address(i, ip, mask)?;
        return Ok(VmknicCommand::Add {
            portgroup,
            ip,
            prefix_len,
            mtu: a.mtu.as_deref().map(|m| mtu(i, m)).transpose()?,
            mac: a.mac.as_deref().map(|m| mac(i, m)).transpose()?,
        });
    }
    let simple: [(bool, &'static str, fn(String) -> VmknicCommand); 3] = [
        (a.del, "-d", |portgroup| VmknicCommand::Delete { portgroup }),
        (a.enable, "-e", |portgroup| VmknicCommand::Enable {
            portgroup,
        }),
        (a.disable, "-D", |portgroup| VmknicCommand::Disable {
            portgroup,
        }),
    ];
    if let Some((_, flag, make)) = simple.into_iter().find(|(given, _, _)| *given) {
        only(inv(flag), &[])?;
        return Ok(make(portgroup(inv(flag), &a.portgroup)?));
    }
    if a.ip.is_some() || a.netmask.is_some() {
        let i = inv("-i");
        only(i, &["-i/--ip", "-n/--netmask"])?;
        let (Some(ip), Some(mask)) = (a.ip.as_deref(), a.netmask.as_deref()) else {
            let missing = if a.ip.is_none() {
                "-i/--ip <ip>"
            } else {
                "-n/--netmask <netmask>"
            };
            return Err(i.error(Problem::Missing(missing)));
        };
        let portgroup = portgroup(i, &a.portgroup)?;
        let (ip, prefix_len) = interface_address(i, ip, mask)?;
        return Ok(VmknicCommand::SetAddress {
            portgroup,
            ip,
            prefix_len,
        });
    }
    if let Some(m) = a.mtu.as_deref() {
        only(inv("-m"), &["-m/--mtu"])?;
        let portgroup = portgroup(inv("-m"), &a.portgroup)?;
        let mtu = mtu(inv("-m"), m)?;
        return Ok(VmknicCommand::SetMtu { portgroup, mtu });
    }
    let i = Invocation {
        program: VMKNIC,
        action: None,
    };
    Err(i.error(Problem::NoAction))
}

fn portgroup(i: Invocation, given: &[String]) -> Result<String, UsageError> {
    match given {
        [name] if name.trim().is_empty() => Err(i.error(Problem::EmptyPortGroup)),
        [name] => Ok(name.clone()),
        _ => Err(i.error(Problem::Arguments {
            expected: "one port group name (quote a name with spaces)",
            got: given.len(),
        })),
    }
}

fn interface_address(i: Invocation, ip: &str, mask: &str) -> Result<(Ipv4Addr, u8), UsageError> {
    let ip = parse_addr(ip).map_err(|e| address(i, "IP address", e))?;
    let prefix_len = netmask(i, mask)?;
    let subnet = Ipv4Net::new(ip, prefix_len)
        .ok()
        .filter(|_| prefix_len <= 30);
    let reason = if ip.is_unspecified() {
        "it is the unspecified address"
    } else if ip.is_loopback() {
        "it is a loopback address"
    } else if ip.is_multicast() {
        "it is a multicast address"
    } else if ip.is_broadcast() {
        "it is the limited broadcast address"
    } else if prefix_len == 0 {
        "a netmask of length 0 leaves no subnet"
    } else if subnet.is_some_and(|s| s.network() == ip) {
        "it is the network address of its subnet"
    } else if subnet.is_some_and(|s| s.broadcast() == ip) {
        "it is the broadcast address of its subnet"
    } else {
        return Ok((ip, prefix_len));
    };
    Err(i.error(Problem::UnusableAddress {
        ip,
        prefix_len,
        reason,
    }))
}

fn mtu(i: Invocation, s: &str) -> Result<u16, UsageError> {
    let value: u64 = s
        .trim()
        .parse()
        .map_err(|_| i.error(Problem::MtuSyntax(s.to_string())))?;
    u16::try_from(value)
        .ok()
        .filter(|m| (MIN_MTU..=MAX_MTU).contains(m))
        .ok_or(i.error(Problem::MtuRange(value)))
}

fn mac(i: Invocation, s: &str) -> Result<MacAddr, UsageError> {
    let mac: MacAddr = s.parse().map_err(|e| i.error(Problem::Mac(e)))?;
    match mac.is_unicast() {
        true => Ok(mac),
        false => Err(i.error(Problem::MacNotUnicast(mac))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(args: &str) -> Result<RouteCommand, UsageError> {
        parse_esxcfg_route(std::iter::once(ROUTE).chain(args.split_whitespace()))
    }

    fn route_err(args: &str) -> String {
        route(args).expect_err(args).to_string()
    }

    fn vmknic(args: &[&str]) -> Result<VmknicCommand, UsageError> {
        parse_esxcfg_vmknic(std::iter::once(VMKNIC).chain(args.iter().copied()))
    }

    fn vmknic_err(args: &[&str]) -> String {
        vmknic(args).expect_err(&args.join(" ")).to_string()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn assert_contains(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(message.contains(part), "`{message}` lacks `{part}`");
        }
    }

    #[test]
    fn test_route_article_examples() {
        let add = RouteCommand::Add {
            network: net("192.168.100.0/24"),
            gateway: ip("192.168.0.1"),
        };
        assert_eq!(route("-a 192.168.100.0/24 192.168.0.1"), Ok(add.clone()));
        assert_eq!(
            route("-a 192.168.100.0 255.255.255.0 192.168.0.1"),
            Ok(add.clone())
        );
        assert_eq!(route("--add 192.168.100.0 24 192.168.0.1"), Ok(add));
        let set = Ok(RouteCommand::SetDefault(ip("192.168.0.1")));
        assert_eq!(route("192.168.0.1"), set);
        assert_eq!(route("-a default 192.168.0.1"), set);
        assert_eq!(route("-a 0.0.0.0/0 192.168.0.1"), set);
        assert_eq!(route("-a 0.0.0.0 0.0.0.0 192.168.0.1"), set);
        assert_eq!(route(""), Ok(RouteCommand::ShowDefault));
        let full_path = ["/usr/sbin/esxcfg-route", "-l"];
        assert_eq!(parse_esxcfg_route(full_path), Ok(RouteCommand::List));
    }

    #[test]
    fn test_route_delete_list_neighbors() {
        let gw = Some(ip("192.168.0.1"));
        let del = |gateway| RouteCommand::Delete {
            network: net("192.168.100.0/24"),
            gateway,
        };
        assert_eq!(route("-d 192.168.100.0/24"), Ok(del(None)));
        assert_eq!(route("-d 192.168.100.0/24 192.168.0.1"), Ok(del(gw)));
        assert_eq!(route("--del 192.168.100.0 255.255.255.0"), Ok(del(None)));
        assert_eq!(
            route("-d 192.168.100.0 255.255.255.0 192.168.0.1"),
            Ok(del(gw))
        );
        let clear = |gateway| Ok(RouteCommand::ClearDefault { gateway });
        assert_eq!(route("-d default"), clear(None));
        assert_eq!(route("-d default 192.168.0.1"), clear(gw));
        assert_eq!(route("-d 0.0.0.0/0"), clear(None));
        assert_eq!(route("-d 0.0.0.0 0.0.0.0 192.168.0.1"), clear(gw));
        assert_eq!(route("-l"), Ok(RouteCommand::List));
        assert_eq!(route("--list"), Ok(RouteCommand::List));
        assert_eq!(route("-n"), Ok(RouteCommand::Neighbors));
        assert_eq!(route("--neighbor-list"), Ok(RouteCommand::Neighbors));
    }

    #[test]
    fn test_route_wrong_arity() {
        assert_eq!(
            route_err("-a 192.168.100.0/24"),
            "esxcfg-route -a: expected `default <gateway>`, `<network>/<len> <gateway>` or \
             `<network> <netmask> <gateway>`, got 1 argument"
        );
        assert_contains(
            &route_err("-a"),
            &["esxcfg-route -a: expected", "got 0 arguments"],
        );
        // A bare network and a gateway: the prefix length or netmask is missing.
        assert_contains(
            &route_err("-a 192.168.100.0 192.168.0.1"),
            &["got 2 arguments"],
        );
        assert_contains(&route_err("-a default"), &["got 1 argument"]);
        assert_contains(
            &route_err("-a 10.0.0.0 255.0.0.0 10.0.0.1 x"),
            &["got 4 arguments"],
        );
        assert_contains(
            &route_err("-d"),
            &["-d: expected `default [<gateway>]`", "got 0"],
        );
        assert_contains(
            &route_err("-d 10.0.0.0 255.0.0.0 1.1.1.1 2.2.2.2"),
            &["got 4 arguments"],
        );
        assert_eq!(
            route_err("192.168.0.1 192.168.0.2"),
            "esxcfg-route: expected no arguments or `<gateway>`, got 2 arguments"
        );
        assert_eq!(
            route_err("-l 10.0.0.1"),
            "esxcfg-route -l: expected no arguments, got 1 argument"
        );
        assert_contains(
            &route_err("-n default"),
            &["esxcfg-route -n: expected no arguments"],
        );
    }

    #[test]
    fn test_route_bad_values() {
        assert_eq!(
            route_err("-a 192.168.100.7/24 192.168.0.1"),
            "esxcfg-route -a: invalid network: 192.168.100.7/24 has host bits set; the network \
             is 192.168.100.0/24"
        );
        assert_contains(
            &route_err("-a 192.168.100.7 255.255.255.0 192.168.0.1"),
            &["invalid network", "the network is 192.168.100.0/24"],
        );
        assert_contains(
            &route_err("-a 192.168.100.0 255.0.255.0 192.168.0.1"),
            &["invalid netmask", "netmask 255.0.255.0 is not contiguous"],
        );
        assert_contains(
            &route_err("-a 192.168.100.0 mask 192.168.0.1"),
            &["`mask` is not a netmask"],
        );
        assert_contains(
            &route_err("-a 192.168.100.0/24 192.168.0.300"),
            &["invalid gateway", "`192.168.0.300` is not an IPv4 address"],
        );
        assert_contains(
            &route_err("-a 192.168.100.0/33 192.168.0.1"),
            &["invalid network"],
        );
        assert_contains(
            &route_err("gateway"),
            &["esxcfg-route: invalid gateway", "`gateway`"],
        );
        assert_contains(
            &route_err("-d 192.168.100.0"),
            &["`192.168.100.0` is not an IPv4 prefix"],
        );
        assert_contains(&route_err("-d default x"), &["invalid gateway: `x`"]);
    }

    #[test]
    fn test_route_flag_errors_and_help() {
        let conflict = route("-a -d 10.0.0.0/8 10.0.0.1").unwrap_err();
        assert!(matches!(conflict, UsageError::Flags { .. }));
        assert_contains(
            &conflict.to_string(),
            &["'--add' cannot be used with '--del'"],
        );
        assert_contains(&route_err("-l -n"), &["cannot be used with"]);
        assert_contains(
            &route_err("-x"),
            &["unexpected argument '-x'", "Usage: esxcfg-route"],
        );
        for flag in ["-h", "--help"] {
            let help = route(flag).unwrap_err();
            assert!(help.is_help());
            assert_contains(
                &help.to_string(),
                &["esxcfg-route -a default", "--neighbor-list"],
            );
        }
    }

    #[test]
    fn test_vmknic_forms() {
        let add = |mtu, mac| VmknicCommand::Add {
            portgroup: "iSCSI_SAN".into(),
            ip: ip("192.168.1.100"),
            prefix_len: 24,
            mtu,
            mac,
        };
        let base = [
            "-a",
            "-i",
            "192.168.1.100",
            "-n",
            "255.255.255.0",
            "iSCSI_SAN",
        ];
        assert_eq!(vmknic(&base), Ok(add(None, None)));
        let long = [
            "--add",
            "--ip",
            "192.168.1.100",
            "--netmask",
            "24",
            "iSCSI_SAN",
        ];
        assert_eq!(vmknic(&long), Ok(add(None, None)));
        let full = [&base[..], &["-m", "9000", "--mac", "00:50:56:aa:bb:cc"]].concat();
        let mac = "00:50:56:aa:bb:cc".parse().ok();
        assert_eq!(vmknic(&full), Ok(add(Some(9000), mac)));
        assert_eq!(vmknic(&["-l"]), Ok(VmknicCommand::List));
        assert_eq!(vmknic(&["--list"]), Ok(VmknicCommand::List));
        let pg = || "VM Kernel".to_string();
        assert_eq!(
            vmknic(&["-d", "VM Kernel"]),
            Ok(VmknicCommand::Delete { portgroup: pg() })
        );
        assert_eq!(
            vmknic(&["--del", "VM Kernel"]),
            Ok(VmknicCommand::Delete { portgroup: pg() })
        );
        assert_eq!(
            vmknic(&["-e", "VM Kernel"]),
            Ok(VmknicCommand::Enable { portgroup: pg() })
        );
        let enable = vmknic(&["--enable-vmknic", "VM Kernel"]);
        assert_eq!(enable, Ok(VmknicCommand::Enable { portgroup: pg() }));
        assert_eq!(
            vmknic(&["-D", "VM Kernel"]),
            Ok(VmknicCommand::Disable { portgroup: pg() })
        );
        let disable = vmknic(&["--disable-vmknic", "VM Kernel"]);
        assert_eq!(disable, Ok(VmknicCommand::Disable { portgroup: pg() }));
        let set_mtu = VmknicCommand::SetMtu {
            portgroup: pg(),
            mtu: 68,
        };
        assert_eq!(vmknic(&["-m", "68", "VM Kernel"]), Ok(set_mtu.clone()));
        assert_eq!(vmknic(&["--mtu", "68", "VM Kernel"]), Ok(set_mtu));
        let set_addr = VmknicCommand::SetAddress {
            portgroup: pg(),
            ip: ip("10.0.0.5"),
            prefix_len: 31,
        };
        assert_eq!(
            vmknic(&["-i", "10.0.0.5", "-n", "31", "VM Kernel"]),
            Ok(set_addr)
        );
    }

    #[test]
    fn test_vmknic_bad_values() {
        let add = |ip: &'static str, mask: &'static str, extra: &[&'static str]| {
            let args = [&["-a", "-i", ip, "-n", mask, "pg"][..], extra].concat();
            vmknic_err(&args)
        };
        assert_eq!(
            add("10.0.0.5", "24", &["-m", "9001"]),
            "esxcfg-vmknic -a: MTU 9001 is out of range (68-9000)"
        );
        assert_contains(
            &add("10.0.0.5", "24", &["-m", "67"]),
            &["MTU 67 is out of range (68-9000)"],
        );
        assert_contains(
            &add("10.0.0.5", "24", &["-m", "big"]),
            &["`big` is not an MTU"],
        );
        assert_contains(
            &vmknic_err(&["-m", "70000", "pg"]),
            &["-m: MTU 70000 is out of range"],
        );
        assert_contains(
            &add("10.0.0.5", "24", &["-M", "00:50:56:aa:bb"]),
            &["`00:50:56:aa:bb` is not a MAC address"],
        );
        assert_contains(
            &add("10.0.0.5", "24", &["-M", "01:00:5e:00:00:01"]),
            &["01:00:5e:00:00:01 cannot be a vmknic MAC address"],
        );
        assert_contains(
            &add("10.0.0.256", "24", &[]),
            &["invalid IP address: `10.0.0.256` is not an IPv4 address"],
        );
        assert_contains(
            &add("10.0.0.5", "255.0.255.0", &[]),
            &["255.0.255.0 is not contiguous"],
        );
        assert_contains(&add("10.0.0.5", "33", &[]), &["`33` is not a netmask"]);
        assert_contains(
            &add("10.0.0.0", "24", &[]),
            &["10.0.0.0/24", "network address"],
        );
        assert_contains(
            &add("10.0.0.255", "24", &[]),
            &["broadcast address of its subnet"],
        );
        assert_contains(&add("224.0.0.1", "24", &[]), &["multicast"]);
        assert_contains(&add("0.0.0.0", "8", &[]), &["unspecified"]);
        assert_contains(&add("10.0.0.5", "0", &[]), &["length 0"]);
    }

    #[test]
    fn test_vmknic_wrong_forms() {
        assert_eq!(
            vmknic_err(&["-a", "-i", "10.0.0.5", "-n", "24"]),
            "esxcfg-vmknic -a: expected one port group name (quote a name with spaces), got 0 \
             arguments"
        );
        let two = vmknic_err(&["-a", "-i", "10.0.0.5", "-n", "24", "VM", "Kernel"]);
        assert_contains(&two, &["got 2 arguments"]);
        assert_eq!(
            vmknic_err(&["-a", "-n", "24", "pg"]),
            "esxcfg-vmknic -a: missing -i/--ip <ip>"
        );
        assert_contains(
            &vmknic_err(&["-a", "-i", "10.0.0.5", "pg"]),
            &["missing -n/--netmask"],
        );
        assert_contains(
            &vmknic_err(&["-i", "10.0.0.5", "pg"]),
            &["-i: missing -n/--netmask"],
        );
        assert_contains(&vmknic_err(&["-n", "24", "pg"]), &["-i: missing -i/--ip"]);
        assert_contains(
            &vmknic_err(&["-a", "-d", "pg"]),
            &["'--add' cannot be used with '--del'"],
        );
        assert_contains(&vmknic_err(&["-e", "-D", "pg"]), &["cannot be used with"]);
        assert_eq!(
            vmknic_err(&["-d", "-m", "1500", "pg"]),
            "esxcfg-vmknic -d: -m/--mtu cannot be used with this action"
        );
        assert_contains(
            &vmknic_err(&["-l", "-i", "10.0.0.5"]),
            &["-l: -i/--ip cannot be used"],
        );
        assert_contains(
            &vmknic_err(&["-l", "pg"]),
            &["-l: expected no arguments, got 1"],
        );
        assert_contains(
            &vmknic_err(&["-M", "00:50:56:aa:bb:cc", "pg"]),
            &["no action given"],
        );
        assert_contains(
            &vmknic_err(&["-m", "1500", "-M", "00:50:56:aa:bb:cc", "pg"]),
            &["-M/--mac"],
        );
        assert_contains(
            &vmknic_err(&["-i", "10.0.0.5", "-n", "24", "-m", "1500", "pg"]),
            &["-i: -m/--mtu cannot be used"],
        );
        assert_contains(
            &vmknic_err(&["pg"]),
            &["esxcfg-vmknic: no action given; expected one of"],
        );
        assert_contains(
            &vmknic_err(&["-d"]),
            &["-d: expected one port group name", "got 0"],
        );
        assert_contains(
            &vmknic_err(&["-e", " "]),
            &["-e: the port group name is empty"],
        );
        assert_contains(
            &vmknic_err(&["-m"]),
            &["a value is required for '--mtu <MTU>'"],
        );
        assert!(vmknic(&["--help"]).is_err_and(|e| e.is_help() && e.to_string().contains("-M")));
    }

    #[test]
    fn test_serde_round_trip() {
        let commands = [
            serde_json::to_string(&route("-a 192.168.100.0/24 192.168.0.1").unwrap()),
            serde_json::to_string(
                &vmknic(&[
                    "-a",
                    "-i",
                    "10.0.0.5",
                    "-n",
                    "24",
                    "-M",
                    "02:00:00:00:00:01",
                    "pg",
                ])
                .unwrap(),
            ),
        ];
        let route_json = commands[0].as_ref().unwrap();
        let back: RouteCommand = serde_json::from_str(route_json).unwrap();
        assert_eq!(Ok(back), route("-a 192.168.100.0/24 192.168.0.1"));
        let vmknic_json = commands[1].as_ref().unwrap();
        assert!(vmknic_json.contains("02:00:00:00:00:01"));
        let back: VmknicCommand = serde_json::from_str(vmknic_json).unwrap();
        assert!(matches!(back, VmknicCommand::Add { prefix_len: 24, .. }));
    }
}
