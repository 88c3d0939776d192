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
use vmkstack_routing::{
    check_network, host_address_problem, parse_addr, parse_netmask, parse_network, PrefixError,
};
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
        reason: String,
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
        esxcfg-route -a default <gateway> | <network>/<len> <gateway> | \
        <network> <netmask> <gateway>\n       \
        esxcfg-route -d default [<gateway>] | <network>/<len> [<gateway>] | \
        <network> <netmask> [<gateway>]\n       \
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
    use VmknicCommand::{Delete, Disable, Enable};
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
        let missing = |option| i.error(Problem::Missing(option));
        let ip = a.ip.as_deref().ok_or_else(|| missing("-i/--ip <ip>"))?;
        let mask = a
            .netmask
            .as_deref()
            .ok_or_else(|| missing("-n/--netmask <netmask>"))?;
        let portgroup = portgroup(i, &a.portgroup)?;
        let (ip, prefix_len) = interface_address(i, ip, mask)?;
        return Ok(VmknicCommand::Add {
            portgroup,
            ip,
            prefix_len,
            mtu: a.mtu.as_deref().map(|m| mtu(i, m)).transpose()?,
            mac: a.mac.as_deref().map(|m| mac(i, m)).transpose()?,
        });
    }
    let simple: [(bool, &'static str, PortGroupCommand); 3] = [
        (a.del, "-d", |portgroup| Delete { portgroup }),
        (a.enable, "-e", |portgroup| Enable { portgroup }),
        (a.disable, "-D", |portgroup| Disable { portgroup }),
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

/// Builds a command that names only a port group.
type PortGroupCommand = fn(String) -> VmknicCommand;

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
    let Some(reason) = Ipv4Net::new(ip, prefix_len)
        .ok()
        .and_then(host_address_problem)
    else {
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
        .ok_or_else(|| i.error(Problem::MtuRange(value)))
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

    fn vmknic(args: &str) -> Result<VmknicCommand, UsageError> {
        parse_esxcfg_vmknic(std::iter::once(VMKNIC).chain(args.split_whitespace()))
    }

    fn check_errors<T>(cases: &[(&str, &str)], parse: fn(&str) -> Result<T, UsageError>) {
        for (args, want) in cases {
            let message = parse(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(want), "{args}: `{message}` lacks `{want}`");
        }
    }

    #[test]
    fn test_parse_route() {
        use RouteCommand::*;
        let gw: Ipv4Addr = "192.168.0.1".parse().unwrap();
        let network: Ipv4Net = "192.168.100.0/24".parse().unwrap();
        let add = || Add {
            network,
            gateway: gw,
        };
        let del = |gateway| Delete { network, gateway };
        let clear = |gateway| ClearDefault { gateway };
        #[rustfmt::skip]
        let cases = [
            // The article's examples.
            ("-a 192.168.100.0/24 192.168.0.1", add()),
            ("-a 192.168.100.0 255.255.255.0 192.168.0.1", add()),
            ("192.168.0.1", SetDefault(gw)),
            ("-a default 192.168.0.1", SetDefault(gw)),
            ("", ShowDefault),
            ("--add 192.168.100.0 24 192.168.0.1", add()),
            ("-a 0.0.0.0/0 192.168.0.1", SetDefault(gw)),
            ("-a 0.0.0.0 0.0.0.0 192.168.0.1", SetDefault(gw)),
            ("-d 192.168.100.0/24", del(None)),
            ("-d 192.168.100.0/24 192.168.0.1", del(Some(gw))),
            ("--del 192.168.100.0 255.255.255.0", del(None)),
            ("-d 192.168.100.0 255.255.255.0 192.168.0.1", del(Some(gw))),
            ("-d default", clear(None)),
            ("-d default 192.168.0.1", clear(Some(gw))),
            ("-d 0.0.0.0/0", clear(None)),
            ("-d 0.0.0.0 0.0.0.0 192.168.0.1", clear(Some(gw))),
            ("-l", List),
            ("--list", List),
            ("-n", Neighbors),
            ("--neighbor-list", Neighbors),
        ];
        for (args, want) in cases {
            assert_eq!(route(args), Ok(want), "{args}");
        }
        let full_path = ["/usr/sbin/esxcfg-route", "-l"];
        assert_eq!(parse_esxcfg_route(full_path), Ok(List));
    }

    #[test]
    fn test_parse_route_errors() {
        let forms = "esxcfg-route -a: expected `default <gateway>`, `<network>/<len> <gateway>` \
                     or `<network> <netmask> <gateway>`, got 1 argument";
        let host_bits = "esxcfg-route -a: invalid network: 192.168.100.7/24 has host bits set; \
                         the network is 192.168.100.0/24";
        #[rustfmt::skip]
        let cases = [
            ("-a 192.168.100.0/24", forms),
            ("-a 192.168.100.7/24 192.168.0.1", host_bits),
            ("-a", "esxcfg-route -a: expected `default <gateway>`"),
            ("-a default", "got 1 argument"),
            // A bare network and a gateway: the prefix length or netmask is missing.
            ("-a 192.168.100.0 192.168.0.1", "got 2 arguments"),
            ("-a 198.18.0.0 255.0.0.0 198.18.0.1 198.18.0.2", "got 4 arguments"),
            ("-d", "esxcfg-route -d: expected `default [<gateway>]`"),
            ("-d 198.18.0.0 255.0.0.0 198.18.0.1 198.18.0.2", "got 4 arguments"),
            ("1.1.1.1 2.2.2.2", "esxcfg-route: expected no arguments or `<gateway>`, got 2"),
            ("-l 198.18.0.1", "esxcfg-route -l: expected no arguments, got 1 argument"),
            ("-n default", "esxcfg-route -n: expected no arguments"),
            ("-a 192.168.100.7 255.255.255.0 198.18.0.1", "the network is 192.168.100.0/24"),
            ("-a 198.18.0.0 255.0.255.0 198.18.0.1", "invalid netmask: netmask 255.0.255.0 is not"),
            ("-a 198.18.0.0 mask 198.18.0.1", "`mask` is not a netmask"),
            ("-a 10.1.0.0/16 198.18.0.300", "invalid gateway: `198.18.0.300` is not an IPv4"),
            ("-a 10.1.0.0/33 198.18.0.1", "invalid network: `10.1.0.0/33` is not an IPv4 prefix"),
            ("gateway", "esxcfg-route: invalid gateway: `gateway`"),
            ("-d 192.168.100.0", "`192.168.100.0` is not an IPv4 prefix"),
            ("-d default x", "invalid gateway: `x`"),
            ("-a -d 198.18.0.0/8 198.18.0.1", "the argument '--add' cannot be used with '--del'"),
            ("-l -n", "cannot be used with"),
            ("-x", "unexpected argument '-x'"),
        ];
        check_errors(&cases, route);
        assert!(matches!(route("-l -a"), Err(UsageError::Flags(_))));
        for flag in ["-h", "--help"] {
            let help = route(flag).unwrap_err();
            assert!(help.is_help() && help.to_string().contains("-a default <gateway>"));
            assert!(help.to_string().contains("--neighbor-list"));
        }
    }

    #[test]
    fn test_parse_vmknic() {
        use VmknicCommand::*;
        let ip = Ipv4Addr::new(192, 168, 1, 100);
        let pg = || "pg".to_string();
        let mac = "00:50:56:aa:bb:cc".parse().ok();
        #[rustfmt::skip]
        let cases = [
            ("-a -i 192.168.1.100 -n 255.255.255.0 pg",
             Add { portgroup: pg(), ip, prefix_len: 24, mtu: None, mac: None }),
            ("--add --ip 192.168.1.100 --netmask 31 pg",
             Add { portgroup: pg(), ip, prefix_len: 31, mtu: None, mac: None }),
            ("-a -i 192.168.1.100 -n 24 -m 9000 -M 00:50:56:aa:bb:cc pg",
             Add { portgroup: pg(), ip, prefix_len: 24, mtu: Some(9000), mac }),
            ("--add --ip 192.168.1.100 -n 24 --mtu 68 --mac 00-50-56-AA-BB-CC pg",
             Add { portgroup: pg(), ip, prefix_len: 24, mtu: Some(68), mac }),
            ("-l", List),
            ("--list", List),
            ("-d pg", Delete { portgroup: pg() }),
            ("--del pg", Delete { portgroup: pg() }),
            ("-e pg", Enable { portgroup: pg() }),
            ("--enable-vmknic pg", Enable { portgroup: pg() }),
            ("-D pg", Disable { portgroup: pg() }),
            ("--disable-vmknic pg", Disable { portgroup: pg() }),
            ("-m 68 pg", SetMtu { portgroup: pg(), mtu: 68 }),
            ("--mtu 9000 pg", SetMtu { portgroup: pg(), mtu: 9000 }),
            ("-i 192.168.1.100 -n 29 pg", SetAddress { portgroup: pg(), ip, prefix_len: 29 }),
            ("--ip 192.168.1.100 --netmask 255.255.255.254 pg",
             SetAddress { portgroup: pg(), ip, prefix_len: 31 }),
        ];
        for (args, want) in cases {
            assert_eq!(vmknic(args), Ok(want), "{args}");
        }
        // A port group name with a space arrives as one (quoted) argv element.
        let spaced = parse_esxcfg_vmknic([VMKNIC, "-e", "VM Kernel"]);
        assert_eq!(
            spaced,
            Ok(Enable {
                portgroup: "VM Kernel".into()
            })
        );
    }

    #[test]
    fn test_parse_vmknic_errors() {
        let no_pg = "esxcfg-vmknic -a: expected one port group name (quote a name with spaces), \
                     got 0 arguments";
        #[rustfmt::skip]
        let cases = [
            ("-a -i 198.18.0.5 -n 24 -m 9001 pg", "vmknic -a: MTU 9001 is out of range (68-9000)"),
            ("-a -i 198.18.0.5 -n 24 -m 67 pg", "MTU 67 is out of range (68-9000)"),
            ("-a -i 198.18.0.5 -n 24 -m big pg", "`big` is not an MTU (expected a number from 68"),
            ("-m 70000 pg", "esxcfg-vmknic -m: MTU 70000 is out of range"),
            ("-a -i 198.18.0.5 -n 24 -M 00:50:56:aa:bb pg", "`00:50:56:aa:bb` is not a MAC address"),
            ("-a -i 198.18.0.5 -n 24 -M 01:00:5e:00:00:01 pg", "cannot be a vmknic MAC address"),
            ("-a -i 198.18.0.256 -n 24 pg", "invalid IP address: `198.18.0.256` is not an IPv4"),
            ("-a -i 198.18.0.5 -n 255.0.255.0 pg", "netmask 255.0.255.0 is not contiguous"),
            ("-a -i 198.18.0.5 -n 33 pg", "`33` is not a netmask"),
            ("-a -i 198.18.0.0 -n 24 pg", "198.18.0.0/24 cannot be a vmknic address: 198.18.0.0 is the network address"),
            ("-i 198.18.0.255 -n 24 pg", "-i: 198.18.0.255/24 cannot be a vmknic address: 198.18.0.255 is the broadcast"),
            ("-a -i 224.0.0.1 -n 24 pg", "multicast"),
            ("-a -i 0.0.0.0 -n 8 pg", "0.0.0.0/8 is not a host address"),
            ("-a -i 198.18.0.5 -n 0 pg", "needs a prefix length of 1-32"),
            ("-a -i 198.18.0.5 -n 24", no_pg),
            ("-a -i 198.18.0.5 -n 24 VM Kernel", "got 2 arguments"),
            ("-d", "esxcfg-vmknic -d: expected one port group name"),
            ("-a -n 24 pg", "esxcfg-vmknic -a: missing -i/--ip <ip>"),
            ("-a -i 198.18.0.5 pg", "esxcfg-vmknic -a: missing -n/--netmask <netmask>"),
            ("-i 198.18.0.5 pg", "esxcfg-vmknic -i: missing -n/--netmask"),
            ("-n 24 pg", "esxcfg-vmknic -i: missing -i/--ip"),
            ("-a -d pg", "the argument '--add' cannot be used with '--del'"),
            ("-e -D pg", "cannot be used with"),
            ("-d -m 1500 pg", "esxcfg-vmknic -d: -m/--mtu cannot be used with this action"),
            ("-l -i 198.18.0.5", "esxcfg-vmknic -l: -i/--ip cannot be used"),
            ("-l pg", "esxcfg-vmknic -l: expected no arguments, got 1 argument"),
            ("-m 1500 -M 00:50:56:aa:bb:cc pg", "-m: -M/--mac cannot be used"),
            ("-i 198.18.0.5 -n 24 -m 1500 pg", "-i: -m/--mtu cannot be used"),
            ("-M 00:50:56:aa:bb:cc pg", "esxcfg-vmknic: no action given; expected one of -l, -a"),
            ("pg", "esxcfg-vmknic: no action given"),
            ("-m", "a value is required for '--mtu <MTU>'"),
        ];
        check_errors(&cases, vmknic);
        let empty = parse_esxcfg_vmknic([VMKNIC, "-e", " "]).unwrap_err();
        assert_eq!(empty.problem(), Some(&Problem::EmptyPortGroup));
        let help = vmknic("--help").unwrap_err();
        assert!(help.is_help() && help.to_string().contains("--enable-vmknic"));
    }

    #[test]
    fn test_serde_round_trip() {
        let route_cmd = route("-a 192.168.100.0/24 192.168.0.1").unwrap();
        let json = serde_json::to_string(&route_cmd).unwrap();
        assert_eq!(
            serde_json::from_str::<RouteCommand>(&json).unwrap(),
            route_cmd
        );
        let vmknic_cmd = vmknic("-a -i 198.18.0.5 -n 24 -M 02:00:00:00:00:01 pg").unwrap();
        let json = serde_json::to_string(&vmknic_cmd).unwrap();
        assert!(json.contains("\"02:00:00:00:00:01\""), "{json}");
        assert_eq!(
            serde_json::from_str::<VmknicCommand>(&json).unwrap(),
            vmknic_cmd
        );
    }
}
