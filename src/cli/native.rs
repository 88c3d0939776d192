//! The native client commands of `vmkstack`: `vmknic`, `route`, `neighbor`, `stats`, `probe`
//! and `forward`. Each is a clap derive enum; [`run_vmknic`] and friends turn one into control
//! actions, call the daemon and print what it answered.
//!
//! Listings print in the ESX layouts (see [`crate::listing`]) or, with `--json`, the daemon's
//! result as it came. Changes print nothing on success.

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use ipnet::Ipv4Net;
use serde_json::Value;
use vmkstack_routing::{host_address_problem, RouteEntry};
use vmkstack_vmknic::{MacAddr, MAX_MTU, MIN_MTU};

use crate::api::{
    Action, ForwardInfo, NeighborInfo, NetstackInfo, ProbeReport, RawVmknic, RouteExplanation,
    StatsInfo, VmknicInfo,
};
use crate::client::{CliError, Console, Control};
use crate::listing::{
    format_link_down, format_neighbors, format_routes, format_stats, format_vmknics,
    vmknic_rows_from_info,
};
use crate::route_target::{
    parse_ipv4, parse_route_target, route_add_action, route_remove_action, RouteTarget,
};

/// The program name in client error messages.
const PROGRAM: &str = "vmkstack";

/// clap value parser for a vmknic address `a.b.c.d/len` (host bits are the address).
pub fn parse_interface_address(s: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s.trim().parse().map_err(|_| {
        format!("`{s}` is not an address with a prefix length (expected a.b.c.d/len)")
    })?;
    match host_address_problem(net) {
        Some(reason) => Err(format!("{net} cannot be a vmknic address: {reason}")),
        None => Ok(net),
    }
}

/// clap value parser for a vmknic MAC address (unicast).
pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = s
        .parse()
        .map_err(|e: vmkstack_vmknic::MacParseError| e.to_string())?;
    match mac.is_unicast() {
        true => Ok(mac),
        false => Err(format!(
            "{mac} cannot be a vmknic MAC address (it is multicast or all zero)"
        )),
    }
}

fn mtu_parser() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(i64::from(MIN_MTU)..=i64::from(MAX_MTU))
}

/// `--json` of the listings.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print the daemon's answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `vmkstack vmknic`: list, add, remove and change VMkernel interfaces.
#[derive(Debug, Clone, Subcommand)]
pub enum VmknicCommand {
    /// List the vmknics as `esxcfg-vmknic -l` does (a row per address).
    List(JsonFlag),
    /// Add a vmknic; without --name the daemon picks the lowest free vmkN.
    Add(VmknicAdd),
    /// Remove a vmknic (by vmkN or port group).
    Remove {
        /// `vmkN` or port group.
        #[arg(value_name = "VMKNIC")]
        vmknic: String,
    },
    /// Change a vmknic's MTU, address or state.
    Set(VmknicSet),
}

/// `vmkstack vmknic add`.
#[derive(Debug, Clone, Args)]
pub struct VmknicAdd {
    /// Port group the vmknic joins.
    #[arg(long, value_name = "PG")]
    pub portgroup: String,
    /// Address with prefix length, e.g. 198.18.1.100/24.
    #[arg(long, value_name = "A.B.C.D/LEN", value_parser = parse_interface_address)]
    pub ip: Ipv4Net,
    /// Name (vmkN); default: the lowest free one.
    #[arg(long, value_name = "vmkN")]
    pub name: Option<vmkstack_routing::VmknicId>,
    /// MTU (68-9000; default 1500).
    #[arg(long, value_name = "N", value_parser = mtu_parser())]
    pub mtu: Option<u16>,
    /// MAC address (default: derived from the name).
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub mac: Option<MacAddr>,
    /// Network namespace to move the TAP's kernel side into.
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Linux bridge for the TAP's kernel side to join.
    #[arg(long, value_name = "BR")]
    pub bridge: Option<String>,
    /// TAP device name (default: the vmknic name).
    #[arg(long, value_name = "TAP")]
    pub tap: Option<String>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
}

impl VmknicAdd {
    /// The vmknic as the daemon takes it (the fields of a `[[vmknic]]` table).
    pub fn raw(&self) -> RawVmknic {
        RawVmknic {
            name: self.name.map(|n| n.to_string()).unwrap_or_default(),
            portgroup: self.portgroup.clone(),
            ip: self.ip.to_string(),
            mac: self.mac.map(|m| m.to_string()),
            mtu: self.mtu.map(i64::from),
            enabled: self.disabled.then_some(false),
            tap: self.tap.clone(),
            bridge: self.bridge.clone(),
            netns: self.netns.clone(),
            ..RawVmknic::default()
        }
    }
}

/// `vmkstack vmknic set`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)
    .args(["mtu", "ip", "enable", "disable", "gateway", "no_gateway"])))]
pub struct VmknicSet {
    /// `vmkN` or port group.
    #[arg(value_name = "VMKNIC")]
    pub vmknic: String,
    /// New MTU (68-9000).
    #[arg(long, value_name = "N", value_parser = mtu_parser())]
    pub mtu: Option<u16>,
    /// New primary address with prefix length.
    #[arg(long, value_name = "A.B.C.D/LEN", value_parser = parse_interface_address)]
    pub ip: Option<Ipv4Net>,
    /// Enable it.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Disable it.
    #[arg(long)]
    pub disable: bool,
    /// Its own default gateway (ESXi 6.5+ override), on its subnet: traffic from its
    /// address with no more specific route leaves through it.
    #[arg(long, value_name = "A.B.C.D", value_parser = parse_ipv4, conflicts_with = "no_gateway")]
    pub gateway: Option<Ipv4Addr>,
    /// Clear its own default gateway (the netstack's applies again).
    #[arg(long)]
    pub no_gateway: bool,
}

impl VmknicSet {
    /// The actions, applied in this order: address (with its gateway, in one change, when
    /// both are given), MTU, state, then the gateway alone.
    pub fn actions(&self) -> Vec<Action> {
        let vmknic = || self.vmknic.clone();
        let mut actions = Vec::new();
        if let Some(ip) = self.ip {
            actions.push(Action::VmknicSetAddress {
                vmknic: vmknic(),
                ip: ip.to_string(),
                gateway: self.gateway.map(|g| g.to_string()),
            });
        }
        if let Some(mtu) = self.mtu {
            actions.push(Action::VmknicSetMtu {
                vmknic: vmknic(),
                mtu: u32::from(mtu),
            });
        }
        if self.enable {
            actions.push(Action::VmknicEnable { vmknic: vmknic() });
        }
        if self.disable {
            actions.push(Action::VmknicDisable { vmknic: vmknic() });
        }
        if (self.gateway.is_some() && self.ip.is_none()) || self.no_gateway {
            actions.push(Action::VmknicSetGateway {
                vmknic: vmknic(),
                gateway: self.gateway.map(|g| g.to_string()),
            });
        }
        actions
    }
}

/// `vmkstack route`: the routing table and the default gateway.
#[derive(Debug, Clone, Subcommand)]
pub enum RouteCommand {
    /// List routes as `esxcfg-route -l` does: static, Local Subnet, default.
    List(JsonFlag),
    /// Add a static route, or set the default gateway with `default`.
    Add {
        /// `a.b.c.d/len` or `default`.
        #[arg(value_name = "NETWORK", value_parser = parse_route_target)]
        network: RouteTarget,
        /// Gateway on a vmknic subnet.
        #[arg(value_name = "GATEWAY", value_parser = parse_ipv4)]
        gateway: Ipv4Addr,
    },
    /// Remove a static route, or the default gateway with `default`.
    Remove {
        /// `a.b.c.d/len` or `default`.
        #[arg(value_name = "NETWORK", value_parser = parse_route_target)]
        network: RouteTarget,
        /// When given, must be the route's gateway.
        #[arg(value_name = "GATEWAY", value_parser = parse_ipv4)]
        gateway: Option<Ipv4Addr>,
    },
    /// Explain which route, vmknic, gateway and source traffic to ADDR uses, and which
    /// gateway wins (a vmknic's own default gateway, ESXi 6.5+, or the netstack's).
    Get {
        /// The destination (IPv4, or IPv6: its IPv6 table)
        #[arg(value_name = "ADDR")]
        destination: std::net::IpAddr,
        /// For traffic sent from this address (a vmknic's, of the destination's family).
        #[arg(long, value_name = "ADDR")]
        source: Option<std::net::IpAddr>,
        /// `--json`.
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `vmkstack netstack`: the netstacks (ESXi's `esxcli network ip netstack`).
#[derive(Debug, Clone, Subcommand)]
pub enum NetstackCommand {
    /// List the netstacks with their gateway, vmknics and route count.
    List(JsonFlag),
    /// Add an empty netstack (its own routing table, gateway and ARP table).
    Add {
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Remove a netstack no vmknic uses.
    Remove {
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// `vmkstack neighbor`: the neighbour (ARP) table.
#[derive(Debug, Clone, Subcommand)]
pub enum NeighborCommand {
    /// List neighbours.
    List(JsonFlag),
    /// Forget a neighbour.
    Remove {
        /// Its address.
        #[arg(value_name = "IP", value_parser = parse_ipv4)]
        ip: Ipv4Addr,
    },
}

/// `vmkstack probe`: check a storage server from the stack itself.
#[derive(Debug, Clone, Subcommand)]
pub enum ProbeCommand {
    /// iSCSI: TCP connect, discovery Login, SendTargets=All; lists targets and portals. With
    /// `--read-test SECS`, then reads from the first disk LUN of the first target and reports
    /// MB/s.
    Iscsi(IscsiProbeArgs),
    /// NFS: RPC NULL to the portmapper, mountd and nfs (v3, v4), and the export list.
    Nfs(ProbeArgs),
}

/// Arguments of an iSCSI probe.
#[derive(Debug, Clone, Args)]
pub struct IscsiProbeArgs {
    /// What every probe takes.
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// After discovery, log in to the first target and read its first disk LUN for SECS
    /// seconds (1-600): sequential 256 KiB READ(16), 8 in flight, through the stack; reports
    /// MB/s.
    #[arg(long, value_name = "SECS")]
    pub read_test: Option<u32>,
}

/// Arguments of a storage probe.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Server address (`HOST` or, for iSCSI, `HOST:PORT`).
    #[arg(value_name = "HOST[:PORT]")]
    pub host: String,
    /// Send from this vmknic.
    #[arg(short = 'I', value_name = "vmkN")]
    pub vmknic: Option<String>,
    /// Seconds to wait for each step.
    #[arg(short = 'w', value_name = "SECS", default_value_t = 3)]
    pub wait: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The server of a probe: `A.B.C.D`, `A.B.C.D:PORT`, an IPv6 address, or `[IPV6]:PORT`
/// (a port only where `port_ok`, iSCSI's).
fn split_host_port(text: &str, port_ok: bool) -> Result<(String, Option<u16>), CliError> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| CliError::Usage(format!("probe: `{p}` is not a port")))
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| CliError::Usage(format!("probe: `{text}`: expected [IPV6]:PORT")))?;
        (h.to_string(), Some(port(p)?))
    } else if text.matches(':').count() == 1 {
        let (h, p) = text.split_once(':').unwrap_or((text, ""));
        (h.to_string(), Some(port(p)?))
    } else {
        (text.to_string(), None)
    };
    if port.is_some() && !port_ok {
        return Err(CliError::Usage(format!(
            "probe: `{text}`: only iSCSI takes a port"
        )));
    }
    if host.contains(':') {
        vmkstack_routing::parse_addr6(&host).map_err(|e| CliError::Usage(e.to_string()))?;
    } else {
        parse_ipv4(&host).map_err(CliError::Usage)?;
    }
    Ok((host, port))
}

/// Runs a `vmkstack probe` command. Exit 1 when any check failed.
pub fn run_probe(
    cmd: &ProbeCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let (kind, a, read_test) = match cmd {
        ProbeCommand::Iscsi(a) => ("iscsi", &a.probe, a.read_test),
        ProbeCommand::Nfs(a) => ("nfs", a, None),
    };
    if let Some(secs) = read_test {
        // The answer comes after discovery, the test and the logout, each step within the
        // wait.
        let wait = u64::from(a.wait.max(1));
        let limit = Duration::from_secs(u64::from(secs) + 10 * wait + 10);
        ctl.set_timeout(limit)
            .map_err(|e| CliError::from_client(PROGRAM, &e))?;
    }
    let (host, port) = split_host_port(&a.host, kind == "iscsi")?;
    let v = call(
        ctl,
        Action::StorageProbe {
            kind: kind.into(),
            host,
            port,
            vmknic: a.vmknic.clone(),
            timeout_ms: a.wait.saturating_mul(1000),
            read_test_secs: read_test,
        },
    )?;
    let report: ProbeReport = serde_json::from_value(v.clone())
        .map_err(|e| CliError::Failed(format!("probe: bad answer: {e}")))?;
    if a.json {
        console.json(&v)?;
    } else {
        console.print(&format_probe(&report));
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::Reported)
    }
}

/// The text form of a probe report.
pub fn format_probe(r: &ProbeReport) -> String {
    let mut out = format!(
        "{} probe of {} from the VMkernel stack\n",
        if r.kind == "iscsi" { "iSCSI" } else { "NFS" },
        r.host
    );
    let rows: Vec<Vec<String>> = r
        .checks
        .iter()
        .map(|c| {
            vec![
                if c.ok { "ok" } else { "FAIL" }.to_string(),
                c.what.clone(),
                c.detail.clone(),
                format!("{:.1} ms", c.us as f64 / 1000.0),
            ]
        })
        .collect();
    for line in crate::listing::table(&["", "Check", "Result", "Time"], &rows).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    if !r.targets.is_empty() {
        out.push_str("Targets:\n");
        for t in &r.targets {
            out.push_str(&format!("  {}\n", t.name));
            for p in &t.portals {
                out.push_str(&format!("      {p}\n"));
            }
        }
    }
    if r.kind == "nfs" && r.checks.iter().any(|c| c.what.contains("EXPORT") && c.ok) {
        out.push_str(&format!("Export list for {}:\n", r.host));
        for e in &r.exports {
            let groups = if e.groups.is_empty() {
                "(everyone)".to_string()
            } else {
                e.groups.join(",")
            };
            out.push_str(&format!("  {:<24} {groups}\n", e.path));
        }
    }
    if let Some(t) = &r.read_test {
        out.push_str(&format!(
            "Read test: LUN {} of {}: {:.1} MB/s\n",
            t.lun, t.target, t.mb_per_s
        ));
    }
    out.push_str(if r.ok {
        "result: reachable\n"
    } else {
        "result: NOT reachable (see FAIL above)\n"
    });
    out
}

/// `vmkstack forward`: port forwarding through the stack.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ForwardCommand {
    /// List or remove forwards.
    #[command(subcommand)]
    pub action: Option<ForwardAction>,
    /// Add a forward: kernel address to listen on (in the daemon's namespace).
    #[arg(value_name = "LISTEN_ADDR:PORT", required = true)]
    pub listen: Option<std::net::SocketAddr>,
    /// Where the stack connects (through the routing core and the gateway).
    #[arg(value_name = "REMOTE_ADDR:PORT", required = true)]
    pub remote: Option<std::net::SocketAddr>,
    /// Connect from this vmknic's address.
    #[arg(short = 'I', value_name = "vmkN")]
    pub vmknic: Option<String>,
    /// Most connections at once (default 64); more are reset.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<u32>,
    /// The netstack whose vmknics connect (ESXi's `-N`; default `defaultTcpipStack`). With
    /// `list`, only that netstack's forwards (all without `-N`).
    #[arg(short = 'N', long = "netstack", global = true, value_name = "NETSTACK")]
    pub netstack: Option<String>,
}

/// `vmkstack forward list|remove`.
#[derive(Debug, Clone, Subcommand)]
pub enum ForwardAction {
    /// List forwards with their connection and byte counters.
    List(JsonFlag),
    /// Stop a forward (its connections are reset).
    Remove {
        /// Its listening address.
        #[arg(value_name = "LISTEN_ADDR:PORT")]
        listen: std::net::SocketAddr,
    },
}

/// Runs a `vmkstack forward` command.
pub fn run_forward(
    cmd: &ForwardCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match (&cmd.action, cmd.listen, cmd.remote) {
        (Some(ForwardAction::List(JsonFlag { json })), _, _) => listing(
            ctl,
            console,
            Action::ForwardList,
            *json,
            |f: &Vec<ForwardInfo>| format_forwards(f),
        ),
        (Some(ForwardAction::Remove { listen }), _, _) => call(
            ctl,
            Action::ForwardRemove {
                listen: listen.to_string(),
            },
        )
        .map(drop),
        (None, Some(listen), Some(remote)) => call(
            ctl,
            Action::ForwardAdd {
                listen: listen.to_string(),
                remote: remote.to_string(),
                vmknic: cmd.vmknic.clone(),
                max_connections: cmd.max_connections,
            },
        )
        .map(drop),
        (None, _, _) => Err(CliError::Usage(
            "forward: give LISTEN_ADDR:PORT REMOTE_ADDR:PORT, or `list` / `remove`".into(),
        )),
    }
}

/// The `vmkstack forward list` table.
pub fn format_forwards(f: &[ForwardInfo]) -> String {
    let rows: Vec<Vec<String>> = f
        .iter()
        .map(|f| {
            vec![
                f.listen.to_string(),
                f.remote.to_string(),
                f.vmknic.clone().unwrap_or_else(|| "auto".into()),
                // A daemon from before netstacks does not say.
                if f.netstack.is_empty() {
                    "-".into()
                } else {
                    f.netstack.clone()
                },
                format!("{}/{}", f.active, f.max_connections),
                f.accepted.to_string(),
                f.refused.to_string(),
                f.bytes_out.to_string(),
                f.bytes_in.to_string(),
                format_rate(f.rate_out),
                format_rate(f.rate_in),
            ]
        })
        .collect();
    crate::listing::table(
        &[
            "Listen",
            "Remote",
            "Vmknic",
            "Netstack",
            "Active",
            "Accepted",
            "Refused",
            "Bytes out",
            "Bytes in",
            "Rate out",
            "Rate in",
        ],
        &rows,
    )
}

/// Bytes per second in decimal units with three significant digits (`0 B/s`, `950 B/s`,
/// `12.3 kB/s`, `1.18 GB/s`), as storage admins read throughput.
pub fn format_rate(bps: u64) -> String {
    const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let mut v = bps as f64;
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bps} B/s")
    } else if v >= 99.95 {
        format!("{v:.0} {}", UNITS[unit])
    } else if v >= 9.995 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// `vmkstack reload`: the changes the daemon made, one a line, or why it refused the file.
pub fn run_reload(ctl: &mut dyn Control, console: &mut Console<'_>) -> Result<(), CliError> {
    let v = call(ctl, Action::Reload)?;
    let changes: Vec<String> = decode(v["changes"].clone())?;
    if changes.is_empty() {
        console.println("reloaded: nothing changed");
    }
    for c in changes {
        console.println(&c);
    }
    Ok(())
}

/// Calls `action` and reports a failure as `vmkstack` does.
fn call(ctl: &mut dyn Control, action: Action) -> Result<Value, CliError> {
    ctl.call(action)
        .map_err(|e| CliError::from_client(PROGRAM, &e))
}

/// Decodes a result the daemon sent.
fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, CliError> {
    serde_json::from_value(v)
        .map_err(|e| CliError::Failed(format!("{PROGRAM}: bad response from the daemon: {e}")))
}

/// A listing: the daemon's JSON with `--json`, else its result decoded and formatted.
fn listing<T: serde::de::DeserializeOwned>(
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
    action: Action,
    json: bool,
    format: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    let v = call(ctl, action)?;
    if json {
        return console.json(&v);
    }
    let t: T = decode(v)?;
    console.print(&format(&t));
    Ok(())
}

/// Runs a `vmkstack vmknic` command.
pub fn run_vmknic(
    cmd: &VmknicCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match cmd {
        VmknicCommand::List(JsonFlag { json }) => listing(
            ctl,
            console,
            Action::VmknicList,
            *json,
            |v: &Vec<VmknicInfo>| format_vmknics(&vmknic_rows_from_info(v)) + &format_link_down(v),
        ),
        VmknicCommand::Add(add) => call(
            ctl,
            Action::VmknicAdd {
                vmknic: add.raw(),
                netstack: None,
            },
        )
        .map(drop),
        VmknicCommand::Remove { vmknic } => call(
            ctl,
            Action::VmknicRemove {
                vmknic: vmknic.clone(),
            },
        )
        .map(drop),
        VmknicCommand::Set(set) => set
            .actions()
            .into_iter()
            .try_for_each(|a| call(ctl, a).map(drop)),
    }
}

/// Runs a `vmkstack route` command.
pub fn run_route(
    cmd: &RouteCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match *cmd {
        RouteCommand::List(JsonFlag { json }) => listing(
            ctl,
            console,
            Action::RouteList,
            json,
            |r: &Vec<RouteEntry>| format_routes(r),
        ),
        RouteCommand::Add { network, gateway } => {
            call(ctl, route_add_action(network, gateway)).map(drop)
        }
        RouteCommand::Remove { network, gateway } => {
            call(ctl, route_remove_action(network, gateway)).map(drop)
        }
        RouteCommand::Get {
            destination,
            source,
            json: JsonFlag { json },
        } => {
            if source.is_some_and(|s| s.is_ipv6() != destination.is_ipv6()) {
                return Err(CliError::Usage(format!(
                    "route get: the source and the destination {destination} must be of the \
                     same address family"
                )));
            }
            let action = Action::RouteGet {
                destination: destination.to_string(),
                source: source.map(|s| s.to_string()),
            };
            if destination.is_ipv6() {
                return listing(
                    ctl,
                    console,
                    action,
                    json,
                    |e: &vmkstack_routing::Explanation6| format!("{e}\n"),
                );
            }
            listing(ctl, console, action, json, |e: &RouteExplanation| {
                format!("{e}\n")
            })
        }
    }
}

/// Runs a `vmkstack netstack` command.
pub fn run_netstack(
    cmd: &NetstackCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match cmd {
        NetstackCommand::List(JsonFlag { json }) => listing(
            ctl,
            console,
            Action::NetstackList,
            *json,
            |n: &Vec<NetstackInfo>| format_netstacks(n),
        ),
        NetstackCommand::Add { name } => {
            call(ctl, Action::NetstackAdd { name: name.clone() }).map(drop)
        }
        NetstackCommand::Remove { name } => {
            call(ctl, Action::NetstackRemove { name: name.clone() }).map(drop)
        }
    }
}

/// The native netstack listing: name, default gateway, forwarding, vmknics, routes.
fn format_netstacks(n: &[NetstackInfo]) -> String {
    let rows: Vec<Vec<String>> = n
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.gateway.map_or("None".to_string(), |g| g.to_string()),
                n.forwarding.to_string(),
                if n.vmknics.is_empty() {
                    "-".to_string()
                } else {
                    n.vmknics.join(",")
                },
                n.routes.to_string(),
            ]
        })
        .collect();
    crate::listing::table(
        &[
            "Netstack",
            "Default Gateway",
            "Forwarding",
            "Vmknics",
            "Static Routes",
        ],
        &rows,
    )
}

/// Runs a `vmkstack neighbor` command.
pub fn run_neighbor(
    cmd: &NeighborCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    match *cmd {
        NeighborCommand::List(JsonFlag { json }) => listing(
            ctl,
            console,
            Action::NeighborList,
            json,
            |n: &Vec<NeighborInfo>| format_neighbors(n),
        ),
        NeighborCommand::Remove { ip } => {
            let action = Action::NeighborRemove {
                ip: ip.to_string(),
                vmknic: None,
            };
            call(ctl, action).map(drop)
        }
    }
}

/// Runs `vmkstack stats`.
pub fn run_stats(
    json: bool,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    listing(ctl, console, Action::Stats, json, |s: &Vec<StatsInfo>| {
        format_stats(s)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::ErrorKind;
    use crate::client::fake::{capture, refused, FakeDaemon};

    #[test]
    fn test_probe_read_test() {
        let report = json!({
            "kind": "iscsi", "host": "198.18.100.20", "targets": [], "exports": [], "ok": true,
            "checks": [{"what": "scsi READ(16) for 2 s", "ok": true, "us": 2000000,
                        "detail": "967.4 MB/s (1934 MB in 2.00 s, 256 KiB reads, 8 in flight)"}],
            "read_test": {"target": "iqn.2026-11.lab.vmkstack:storage", "lun": 1,
                          "block_size": 512, "capacity_bytes": 67108864, "bytes": 1934000000,
                          "secs": 2.0, "mb_per_s": 967.4, "request_bytes": 262144,
                          "queue_depth": 8}
        });
        let mut d = FakeDaemon::new(vec![Ok(report)]);
        let cmd = ProbeCommand::Iscsi(IscsiProbeArgs {
            probe: ProbeArgs {
                host: "198.18.100.20".into(),
                vmknic: None,
                wait: 3,
                json: false,
            },
            read_test: Some(2),
        });
        let (r, out, _) = capture(|c| run_probe(&cmd, &mut d, c));
        assert_eq!(r, Ok(()));
        assert!(
            out.contains("Read test: LUN 1 of iqn.2026-11.lab.vmkstack:storage: 967.4 MB/s\n"),
            "{out}"
        );
        let Some(Action::StorageProbe { read_test_secs, .. }) = d.actions.first() else {
            panic!("{:?}", d.actions)
        };
        assert_eq!(*read_test_secs, Some(2));
        // The answer may take the test and every step's wait.
        assert_eq!(d.timeouts, vec![Duration::from_secs(2 + 30 + 10)]);
    }

    #[test]
    fn test_format_rate() {
        let cases = [
            (0, "0 B/s"),
            (950, "950 B/s"),
            (999, "999 B/s"),
            (1000, "1.00 kB/s"),
            (12_345, "12.3 kB/s"),
            (999_499, "999 kB/s"),
            (999_500, "1.00 MB/s"),
            (118_200_000, "118 MB/s"),
            (1_180_000_000, "1.18 GB/s"),
            (u64::MAX, "18446744 TB/s"),
        ];
        for (bps, want) in cases {
            assert_eq!(format_rate(bps), want, "{bps}");
        }
    }

    #[test]
    fn test_format_forwards_shows_rates_beside_totals() {
        let f: Vec<ForwardInfo> = serde_json::from_value(json!([{
            "listen": "127.0.0.1:3260", "remote": "198.18.100.20:3260", "vmknic": null,
            "max_connections": 64, "active": 2, "accepted": 3, "refused": 0,
            "bytes_out": 1984, "bytes_in": 734003200, "rate_out": 1200, "rate_in": 245000000,
            "netstack": "vmotion"
        }, {
            // A daemon from before the rates and netstacks: zero, and `-`.
            "listen": "127.0.0.1:2049", "remote": "198.18.100.20:2049", "vmknic": "vmk0",
            "max_connections": 4, "active": 0, "accepted": 0, "refused": 1,
            "bytes_out": 0, "bytes_in": 0
        }]))
        .unwrap();
        assert_eq!(
            format_forwards(&f),
            "Listen          Remote              Vmknic  Netstack  Active  Accepted  Refused  \
             Bytes out  Bytes in   Rate out   Rate in\n\
             127.0.0.1:3260  198.18.100.20:3260  auto    vmotion   2/64    3         0        \
             1984       734003200  1.20 kB/s  245 MB/s\n\
             127.0.0.1:2049  198.18.100.20:2049  vmk0    -         0/4     0         1        \
             0          0          0 B/s      0 B/s\n"
        );
    }

    #[test]
    fn test_parse_interface_address() {
        assert!(parse_interface_address("198.18.1.100/24").is_ok());
        let e = parse_interface_address("198.18.1.0/24").unwrap_err();
        assert!(e.contains("network address"), "{e}");
        let e = parse_interface_address("198.18.1.1").unwrap_err();
        assert!(e.contains("a.b.c.d/len"), "{e}");
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("00:50:56:aa:bb:cc").is_ok());
    }

    #[test]
    fn test_vmknic_add_raw() {
        let add = VmknicAdd {
            portgroup: "iSCSI_SAN".into(),
            ip: "198.18.1.100/24".parse().unwrap(),
            name: None,
            mtu: Some(9000),
            mac: None,
            netns: Some("ns".into()),
            bridge: None,
            tap: None,
            disabled: true,
        };
        let raw = add.raw();
        assert_eq!(raw.name, "", "the daemon picks the name");
        assert_eq!(raw.ip, "198.18.1.100/24");
        assert_eq!(raw.mtu, Some(9000));
        assert_eq!(raw.enabled, Some(false));
        assert_eq!(raw.netns.as_deref(), Some("ns"));
    }

    #[test]
    fn test_vmknic_set_actions() {
        let set = VmknicSet {
            vmknic: "vmk1".into(),
            mtu: Some(9000),
            ip: Some("198.18.2.1/24".parse().unwrap()),
            enable: false,
            disable: true,
            gateway: Some("198.18.2.254".parse().unwrap()),
            no_gateway: false,
        };
        assert_eq!(
            set.actions(),
            vec![
                Action::VmknicSetAddress {
                    vmknic: "vmk1".into(),
                    ip: "198.18.2.1/24".into(),
                    gateway: Some("198.18.2.254".into()),
                },
                Action::VmknicSetMtu {
                    vmknic: "vmk1".into(),
                    mtu: 9000
                },
                Action::VmknicDisable {
                    vmknic: "vmk1".into()
                },
            ]
        );
        // The gateway alone is its own change.
        let gw_only = VmknicSet {
            mtu: None,
            ip: None,
            disable: false,
            ..set
        };
        assert_eq!(
            gw_only.actions(),
            vec![Action::VmknicSetGateway {
                vmknic: "vmk1".into(),
                gateway: Some("198.18.2.254".into())
            }]
        );
    }

    #[test]
    fn test_probe_hosts() {
        let ok = |t: &str, iscsi| split_host_port(t, iscsi).ok();
        assert_eq!(
            ok("198.18.100.20", true),
            Some(("198.18.100.20".into(), None))
        );
        assert_eq!(
            ok("198.18.100.20:3261", true),
            Some(("198.18.100.20".into(), Some(3261)))
        );
        assert_eq!(
            ok("2001:db8::20", false),
            Some(("2001:db8::20".into(), None))
        );
        assert_eq!(
            ok("[2001:db8::20]:3261", true),
            Some(("2001:db8::20".into(), Some(3261)))
        );
        for (bad, iscsi) in [
            ("[2001:db8::20]", true),
            ("[2001:db8::20]:x", true),
            ("198.18.100.20:2049", false),
            ("2001:db8::zz", false),
            ("nas", false),
        ] {
            assert!(
                matches!(split_host_port(bad, iscsi), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn test_route_get_and_json() {
        let explanation = json!({
            "destination": "198.18.100.5", "route": "198.18.100.0/24", "origin": "static",
            "vmknic": "vmk0", "gateway": "198.18.1.1", "next_hop": "198.18.1.1",
            "source": "198.18.1.100"
        });
        let mut d = FakeDaemon::new(vec![Ok(explanation.clone()), Ok(explanation)]);
        let get = |json| RouteCommand::Get {
            destination: "198.18.100.5".parse().unwrap(),
            source: None,
            json: JsonFlag { json },
        };
        let (r, out, _) = capture(|c| run_route(&get(false), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "198.18.100.5 via 198.18.1.1 dev vmk0 src 198.18.1.100 route 198.18.100.0/24 \
             (static)\n"
        );
        let (r, out, _) = capture(|c| run_route(&get(true), &mut d, c));
        assert_eq!(r, Ok(()));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["vmknic"], "vmk0");
        assert!(out.contains("\n  \"origin\""), "pretty: {out}");
    }

    #[test]
    fn test_refusal_is_verbatim() {
        let msg = "Unable to set VMkernel gateway as there are not VMkernel interfaces on the \
                   same network";
        let mut d = FakeDaemon::new(vec![refused(ErrorKind::GatewayUnreachable, msg)]);
        let cmd = RouteCommand::Add {
            network: RouteTarget::Default,
            gateway: "198.18.9.1".parse().unwrap(),
        };
        let (r, out, _) = capture(|c| run_route(&cmd, &mut d, c));
        assert_eq!(r, Err(CliError::Failed(msg.into())));
        assert!(out.is_empty());
    }

    #[test]
    fn test_vmknic_list_table() {
        let vmknics = json!([{
            "name": "vmk0", "portgroup": "iSCSI_SAN",
            "addresses": ["198.18.1.100/24", "198.18.3.1/30"],
            "mac": "02:00:00:00:00:01", "mtu": 1500, "enabled": true, "tap": "vmk0",
            "bridge": null, "netns": null
        }]);
        let mut d = FakeDaemon::new(vec![Ok(vmknics)]);
        let (r, out, _) =
            capture(|c| run_vmknic(&VmknicCommand::List(JsonFlag { json: false }), &mut d, c));
        assert_eq!(r, Ok(()));
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 3, "{out}");
        assert!(rows[1].starts_with("vmk0       iSCSI_SAN   198.18.1.100  255.255.255.0"));
        assert!(
            rows[2].contains("198.18.3.1    255.255.255.252  198.18.3.3"),
            "{out}"
        );
    }
}
