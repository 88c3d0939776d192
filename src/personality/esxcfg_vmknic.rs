//! `esxcfg-vmknic`: list (`-l`), add (`-a`), delete (`-d`), enable (`-e`) and disable (`-D`)
//! VMkernel interfaces, and change their MTU (`-m`) or address (`-i`/`-n`).
//!
//! [`parse_esxcfg_vmknic`] is pure: it turns an argv into a [`VmknicCommand`] and nothing else
//! (no I/O, no printing, no process exit). clap (derive) handles the flag structure; the values
//! are checked by hand so that a wrong form gets a [`UsageError`] saying exactly what is wrong.
//! `argv[0]` is the program name and is skipped. [`run`] then sends the command to the daemon.

use std::ffi::OsString;
use std::net::Ipv4Addr;

use clap::{ArgGroup, ColorChoice, CommandFactory, Parser};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use vmkstack_routing::{host_address_problem, parse_addr};
use vmkstack_vmknic::{MacAddr, MAX_MTU, MIN_MTU};

use crate::api::{Action, ClientError, RawVmknic, VmknicInfo};
use crate::client::{call_as, CliError, Console, Control};
use crate::listing::{format_esxcfg_vmknics, format_link_down, vmknic_rows_from_info};
use crate::personality::clap_util::Parsed;
use crate::personality::esxcfg_usage::{
    address, esxcfg_outcome, from_clap, netmask, Invocation, Problem, UsageError,
};

const VMKNIC: &str = "esxcfg-vmknic";

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
    /// `-a -i <addr>/<len> [-6 true] [-m <mtu>] [-M <mac>] <portgroup>`: add a vmknic with a
    /// static IPv6 address (and its link-local one), no IPv4 address.
    AddIpv6 {
        /// Port group the vmknic joins.
        portgroup: String,
        /// The vmknic's IPv6 address with its prefix length.
        ipv6: ipnet::Ipv6Net,
        /// MTU in `MIN_MTU..=MAX_MTU`, or the default.
        mtu: Option<u16>,
        /// A unicast MAC, or one derived from the name.
        mac: Option<MacAddr>,
    },
    /// `-a -i DHCP [-m <mtu>] [-M <mac>] <portgroup>`: add a vmknic whose address comes from
    /// DHCP.
    AddDhcp {
        /// Port group the vmknic joins.
        portgroup: String,
        /// MTU in `MIN_MTU..=MAX_MTU`, or the default.
        mtu: Option<u16>,
        /// A unicast MAC, or one derived from the name.
        mac: Option<MacAddr>,
    },
    /// `-i DHCP <portgroup>` without `-a`: take the address from DHCP.
    SetDhcp {
        /// Port group of the vmknic.
        portgroup: String,
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
    /// `-P true|false <portgroup>`: IPv6 router-advertisement autoconfiguration on or off.
    SetIpv6Autoconf {
        /// Port group of the vmknic.
        portgroup: String,
        /// On or off.
        enabled: bool,
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

/// Configure VMkernel network interfaces (vmknics).
#[derive(Debug, Parser)]
#[command(
    name = VMKNIC,
    bin_name = VMKNIC,
    color = ColorChoice::Never,
    group(ArgGroup::new("action").multiple(false)),
    override_usage = "esxcfg-vmknic -l\n       \
        esxcfg-vmknic -a -i <ip> -n <netmask> [-m <mtu>] [-M <mac>] <portgroup>\n       \
        esxcfg-vmknic -a -i DHCP [-m <mtu>] [-M <mac>] <portgroup>\n       \
        esxcfg-vmknic -a -i <ipv6>/<len> [-6 true] [-m <mtu>] [-M <mac>] <portgroup>\n       \
        esxcfg-vmknic -d|-e|-D <portgroup>\n       \
        esxcfg-vmknic -m <mtu> <portgroup>\n       \
        esxcfg-vmknic -P true|false <portgroup>\n       \
        esxcfg-vmknic -i <ip> -n <netmask> <portgroup>\n       \
        esxcfg-vmknic -i DHCP <portgroup>\n       \
        (-p/--portgroup <portgroup> may name the port group)"
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
    /// IPv4 address, IPv6 address/prefix length, or DHCP
    #[arg(short = 'i', long = "ip", value_name = "IP")]
    ip: Option<String>,
    /// Enable IPv6 (true or false; with -a and an IPv6 address)
    #[arg(short = '6', long = "enable-ipv6", value_name = "true|false")]
    ipv6: Option<String>,
    /// IPv6 router advertisement autoconfiguration (true or false): addresses and a default
    /// router from Router Advertisements
    #[arg(short = 'P', long = "enable-ipv6-autoconf", value_name = "true|false")]
    autoconf: Option<String>,
    /// Netmask, dotted or as a length
    #[arg(short = 'n', long = "netmask", value_name = "NETMASK")]
    netmask: Option<String>,
    /// MTU (68-9000)
    #[arg(short = 'm', long = "mtu", value_name = "MTU")]
    mtu: Option<String>,
    /// MAC address (with -a)
    #[arg(short = 'M', long = "mac", value_name = "MAC")]
    mac: Option<String>,
    /// Port group name, instead of the argument
    #[arg(short = 'p', long = "portgroup", value_name = "PORTGROUP")]
    portgroup_opt: Option<String>,
    /// The netstack (with -a: the one the vmknic joins; with -l: only its vmknics)
    #[arg(short = 'N', long = "netstack", value_name = "NETSTACK")]
    netstack: Option<String>,
    /// Port group name (quote names with spaces)
    #[arg(value_name = "PORTGROUP")]
    portgroup: Vec<String>,
}

/// The clap definition of `esxcfg-vmknic`'s flags as its parser uses them (for the generated
/// completions and man page).
pub fn command() -> clap::Command {
    VmknicArgs::command()
}

/// Parses an `esxcfg-vmknic` argv (`argv[0]` is the program name) into a [`VmknicCommand`].
pub fn parse_esxcfg_vmknic<I, T>(argv: I) -> Result<VmknicCommand, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse_esxcfg_vmknic_on(argv).map(|(c, _)| c)
}

/// Parses an `esxcfg-vmknic` argv into a [`VmknicCommand`] and the netstack it names (`-N`,
/// with `-a` and `-l` only).
pub fn parse_esxcfg_vmknic_on<I, T>(argv: I) -> Result<(VmknicCommand, Option<String>), UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let a = VmknicArgs::try_parse_from(argv).map_err(from_clap)?;
    let netstack = a.netstack.clone();
    vmknic_command(a).map(|c| (c, netstack))
}

fn vmknic_command(mut a: VmknicArgs) -> Result<VmknicCommand, UsageError> {
    use VmknicCommand::{Delete, Disable, Enable};
    // `-p NAME` is the port group argument given as an option (with it, no argument).
    if let Some(pg) = a.portgroup_opt.take() {
        if !a.portgroup.is_empty() {
            let i = Invocation {
                program: VMKNIC,
                action: None,
            };
            return Err(i.error(Problem::Arguments {
                expected: "no port group argument beside -p/--portgroup",
                got: a.portgroup.len(),
            }));
        }
        a.portgroup = vec![pg];
    }
    let dhcp =
        a.ip.as_deref()
            .is_some_and(|ip| ip.trim().eq_ignore_ascii_case("dhcp"));
    let inv = |action| Invocation {
        program: VMKNIC,
        action: Some(action),
    };
    let options = [
        ("-i/--ip", a.ip.is_some()),
        ("-n/--netmask", a.netmask.is_some()),
        ("-m/--mtu", a.mtu.is_some()),
        ("-M/--mac", a.mac.is_some()),
        ("-N/--netstack", a.netstack.is_some()),
        ("-6/--enable-ipv6", a.ipv6.is_some()),
        ("-P/--enable-ipv6-autoconf", a.autoconf.is_some()),
    ];
    // Refuses the first given option that is not in `allowed`.
    let only = |i: Invocation, allowed: &[&str]| {
        let extra = options
            .iter()
            .find(|(name, given)| *given && !allowed.contains(name));
        extra.map_or(Ok(()), |(name, _)| Err(i.error(Problem::Conflict(name))))
    };
    if a.list {
        only(inv("-l"), &["-N/--netstack"])?;
        let got = a.portgroup.len();
        return match got {
            0 => Ok(VmknicCommand::List),
            _ => Err(inv("-l").error(Problem::Arguments {
                expected: "no arguments",
                got,
            })),
        };
    }
    if a.add && dhcp {
        let i = inv("-a");
        only(i, &["-i/--ip", "-m/--mtu", "-M/--mac", "-N/--netstack"])?;
        return Ok(VmknicCommand::AddDhcp {
            portgroup: portgroup(i, &a.portgroup)?,
            mtu: a.mtu.as_deref().map(|m| mtu(i, m)).transpose()?,
            mac: a.mac.as_deref().map(|m| mac(i, m)).transpose()?,
        });
    }
    if a.add && a.ip.as_deref().is_some_and(|ip| ip.contains(':')) {
        let i = inv("-a");
        only(
            i,
            &[
                "-i/--ip",
                "-m/--mtu",
                "-M/--mac",
                "-N/--netstack",
                "-6/--enable-ipv6",
            ],
        )?;
        match a.ipv6.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => {}
            Some("false") => {
                return Err(i.error(Problem::Other(
                    "an IPv6 address needs IPv6 on (-6 true)".to_string(),
                )))
            }
            Some(other) => {
                return Err(i.error(Problem::Other(format!(
                    "-6/--enable-ipv6 takes true or false, not `{other}`"
                ))))
            }
        }
        let text = a.ip.as_deref().unwrap_or_default().trim();
        let ipv6: ipnet::Ipv6Net = text.parse().map_err(|_| {
            i.error(Problem::Other(format!(
                "`{text}` is not an IPv6 address with its prefix length (as 2001:db8:1::100/64)"
            )))
        })?;
        if let Some(reason) = vmkstack_routing::host_address6_problem(ipv6) {
            return Err(i.error(Problem::Other(format!(
                "{ipv6} cannot be a vmknic address: {reason}"
            ))));
        }
        return Ok(VmknicCommand::AddIpv6 {
            portgroup: portgroup(i, &a.portgroup)?,
            ipv6,
            mtu: a.mtu.as_deref().map(|m| mtu(i, m)).transpose()?,
            mac: a.mac.as_deref().map(|m| mac(i, m)).transpose()?,
        });
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
    if dhcp {
        let i = inv("-i");
        only(i, &["-i/--ip"])?;
        return Ok(VmknicCommand::SetDhcp {
            portgroup: portgroup(i, &a.portgroup)?,
        });
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
    if let Some(on) = a.autoconf.as_deref() {
        let i = inv("-P");
        only(i, &["-P/--enable-ipv6-autoconf"])?;
        let enabled = match on.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(i.error(Problem::Other(format!(
                    "-P/--enable-ipv6-autoconf takes true or false, not `{other}`"
                ))))
            }
        };
        return Ok(VmknicCommand::SetIpv6Autoconf {
            portgroup: portgroup(i, &a.portgroup)?,
            enabled,
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

/// Parses an `esxcfg-vmknic` argv as the personality does: `-h`/`--help` is the help text to
/// print, any other refusal a usage error.
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<(VmknicCommand, Option<String>)>, CliError> {
    parse_esxcfg_vmknic_on(argv)
        .map(Parsed::Run)
        .or_else(esxcfg_outcome)
}

/// The control action of an `esxcfg-vmknic` change (`None` for `-l`). The port group names
/// the vmknic; an added one gets the lowest free vmkN from the daemon (an empty name).
pub fn action(cmd: &VmknicCommand) -> Option<Action> {
    let vmknic = |pg: &String| pg.clone();
    Some(match cmd {
        VmknicCommand::List => return None,
        VmknicCommand::Add {
            portgroup,
            ip,
            prefix_len,
            mtu,
            mac,
        } => Action::VmknicAdd {
            vmknic: RawVmknic {
                name: String::new(),
                portgroup: portgroup.clone(),
                ip: format!("{ip}/{prefix_len}"),
                mtu: mtu.map(i64::from),
                mac: mac.map(|m| m.to_string()),
                ..RawVmknic::default()
            },
            netstack: None,
        },
        VmknicCommand::AddIpv6 {
            portgroup,
            ipv6,
            mtu,
            mac,
        } => Action::VmknicAdd {
            vmknic: RawVmknic {
                name: String::new(),
                portgroup: portgroup.clone(),
                ipv6: vec![ipv6.to_string()],
                mtu: mtu.map(i64::from),
                mac: mac.map(|m| m.to_string()),
                ..RawVmknic::default()
            },
            netstack: None,
        },
        VmknicCommand::AddDhcp {
            portgroup,
            mtu,
            mac,
        } => Action::VmknicAdd {
            vmknic: RawVmknic {
                name: String::new(),
                portgroup: portgroup.clone(),
                ip: "dhcp".to_string(),
                mtu: mtu.map(i64::from),
                mac: mac.map(|m| m.to_string()),
                ..RawVmknic::default()
            },
            netstack: None,
        },
        VmknicCommand::SetDhcp { portgroup } => Action::VmknicSetAddress {
            vmknic: vmknic(portgroup),
            ip: "dhcp".to_string(),
            gateway: None,
        },
        VmknicCommand::Delete { portgroup } => Action::VmknicRemove {
            vmknic: vmknic(portgroup),
        },
        VmknicCommand::Enable { portgroup } => Action::VmknicEnable {
            vmknic: vmknic(portgroup),
        },
        VmknicCommand::Disable { portgroup } => Action::VmknicDisable {
            vmknic: vmknic(portgroup),
        },
        VmknicCommand::SetIpv6Autoconf { portgroup, enabled } => Action::VmknicSetIpv6Autoconf {
            vmknic: vmknic(portgroup),
            enabled: *enabled,
        },
        VmknicCommand::SetMtu { portgroup, mtu } => Action::VmknicSetMtu {
            vmknic: vmknic(portgroup),
            mtu: u32::from(*mtu),
        },
        VmknicCommand::SetAddress {
            portgroup,
            ip,
            prefix_len,
        } => Action::VmknicSetAddress {
            vmknic: vmknic(portgroup),
            ip: format!("{ip}/{prefix_len}"),
            gateway: None,
        },
    })
}

/// Runs an `esxcfg-vmknic` command.
pub fn run(
    cmd: &VmknicCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let failed = |e: ClientError| CliError::from_client(VMKNIC, &e);
    match action(cmd) {
        None => {
            let v: Vec<VmknicInfo> = call_as(ctl, Action::VmknicList).map_err(&failed)?;
            console.print(&format_esxcfg_vmknics(&vmknic_rows_from_info(&v)));
            console.print(&format_link_down(&v));
        }
        Some(action) => {
            ctl.call(action).map_err(&failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vmknic(args: &str) -> Result<VmknicCommand, UsageError> {
        parse_esxcfg_vmknic(std::iter::once(VMKNIC).chain(args.split_whitespace()))
    }

    fn argv(args: &str) -> Vec<OsString> {
        std::iter::once(VMKNIC)
            .chain(args.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn check_errors<T>(cases: &[(&str, &str)], parse: fn(&str) -> Result<T, UsageError>) {
        for (args, want) in cases {
            let message = parse(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(want), "{args}: `{message}` lacks `{want}`");
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
            ("-P true pg", VmknicCommand::SetIpv6Autoconf { portgroup: pg(), enabled: true }),
            ("--enable-ipv6-autoconf false -p pg",
             VmknicCommand::SetIpv6Autoconf { portgroup: pg(), enabled: false }),
            ("--mtu 9000 pg", SetMtu { portgroup: pg(), mtu: 9000 }),
            ("-i 192.168.1.100 -n 29 pg", SetAddress { portgroup: pg(), ip, prefix_len: 29 }),
            ("--ip 192.168.1.100 --netmask 255.255.255.254 pg",
             SetAddress { portgroup: pg(), ip, prefix_len: 31 }),
            ("-a -i DHCP -p pg", AddDhcp { portgroup: pg(), mtu: None, mac: None }),
            ("-a -i dhcp -m 9000 pg", AddDhcp { portgroup: pg(), mtu: Some(9000), mac: None }),
            ("-i DHCP pg", SetDhcp { portgroup: pg() }),
            ("-e -p pg", Enable { portgroup: pg() }),
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
            ("-a -i DHCP -n 24 pg", "esxcfg-vmknic -a: -n/--netmask cannot be used with this action"),
            ("-i DHCP -m 1500 pg", "esxcfg-vmknic -i: -m/--mtu cannot be used"),
            ("-a -i DHCP", "esxcfg-vmknic -a: expected one port group name"),
            ("-e -p pg other", "expected no port group argument beside -p/--portgroup, got 1 argument"),
        ];
        check_errors(&cases, vmknic);
        let empty = parse_esxcfg_vmknic([VMKNIC, "-e", " "]).unwrap_err();
        assert_eq!(empty.problem(), Some(&Problem::EmptyPortGroup));
        let help = vmknic("--help").unwrap_err();
        assert!(help.is_help() && help.to_string().contains("--enable-vmknic"));
    }

    #[test]
    fn test_serde_round_trip() {
        let vmknic_cmd = vmknic("-a -i 198.18.0.5 -n 24 -M 02:00:00:00:00:01 pg").unwrap();
        let json = serde_json::to_string(&vmknic_cmd).unwrap();
        assert!(json.contains("\"02:00:00:00:00:01\""), "{json}");
        assert_eq!(
            serde_json::from_str::<VmknicCommand>(&json).unwrap(),
            vmknic_cmd
        );
    }

    #[test]
    fn test_esxcfg_vmknic_actions() {
        let action = |s: &str| match parse(argv(s)) {
            Ok(Parsed::Run((cmd, _))) => action(&cmd),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            action("-a -i 198.18.1.100 -n 255.255.255.0 -m 9000 iSCSI_SAN"),
            Some(Action::VmknicAdd {
                vmknic: RawVmknic {
                    name: String::new(),
                    portgroup: "iSCSI_SAN".into(),
                    ip: "198.18.1.100/24".into(),
                    mtu: Some(9000),
                    ..RawVmknic::default()
                },
                netstack: None,
            })
        );
        assert_eq!(
            action("-d VMotion"),
            Some(Action::VmknicRemove {
                vmknic: "VMotion".into()
            })
        );
        assert_eq!(
            action("-m 9000 VMotion"),
            Some(Action::VmknicSetMtu {
                vmknic: "VMotion".into(),
                mtu: 9000
            })
        );
        assert_eq!(
            action("-i 198.18.2.5 -n 24 VMotion"),
            Some(Action::VmknicSetAddress {
                vmknic: "VMotion".into(),
                ip: "198.18.2.5/24".into(),
                gateway: None,
            })
        );
        assert_eq!(
            action("-D VMotion"),
            Some(Action::VmknicDisable {
                vmknic: "VMotion".into()
            })
        );
        assert_eq!(
            action("-e VMotion"),
            Some(Action::VmknicEnable {
                vmknic: "VMotion".into()
            })
        );
        assert_eq!(action("-l"), None);
    }
}
