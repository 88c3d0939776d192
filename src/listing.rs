//! Listings in the layouts ESX admins read every day: `esxcfg-vmknic -l`, `esxcfg-route -l` and
//! the `esxcli network ip` tables, each pinned by a test to the text ESXi prints (the
//! ESXi 6.x-8.x captures are quoted in the formatters' docs).

use std::fmt::Write as _;

use serde::Serialize;
use vmkstack_routing::{Origin, RouteEntry, VmknicId};
use vmkstack_stack::Config;

use crate::api::{NeighborInfo, Route6Info, StatsInfo, VmknicInfo};

/// One row of `esxcfg-vmknic -l`: a vmknic address (a vmknic with two addresses has two rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmknicRow {
    /// `vmkN`.
    pub interface: String,
    /// Port group.
    pub portgroup: String,
    /// Address.
    pub ip: String,
    /// Dotted netmask.
    pub netmask: String,
    /// Broadcast address.
    pub broadcast: String,
    /// MAC address.
    pub mac: String,
    /// MTU.
    pub mtu: u16,
    /// Enabled.
    pub enabled: bool,
    /// How the address is set: `STATIC`, `DHCP` or `NONE` (ESXi's Type column).
    pub kind: String,
    /// The netstack.
    pub netstack: String,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
}

/// The IPv6 rows of a vmknic (after its IPv4 ones), as ESXi lists them: the prefix length in
/// the Netmask column, no broadcast, Type `STATIC, PREFERRED` (origin, then DAD status:
/// `AUTOCONF` for router-advertised addresses, `DHCP` for DHCPv6 ones; `TENTATIVE`,
/// `DEPRECATED`, `DUPLICATE`).
fn ipv6_rows<'a>(
    first: &VmknicRow,
    addrs: impl IntoIterator<Item = (ipnet::Ipv6Net, &'a str, &'a str)>,
) -> Vec<VmknicRow> {
    addrs
        .into_iter()
        .map(|(a, origin, status)| VmknicRow {
            ip: a.addr().to_string(),
            netmask: a.prefix_len().to_string(),
            broadcast: String::new(),
            kind: format!(
                "{}, {status}",
                match origin {
                    "autoconf" => "AUTOCONF",
                    "dhcp" => "DHCP",
                    _ => "STATIC",
                }
            ),
            family: "IPv6",
            ..first.clone()
        })
        .collect()
}

/// The vmknic rows of a configuration, in vmk order (a vmknic without an address, or on
/// DHCP, gets one row whose address cells read `N/A`).
pub fn vmknic_rows(cfg: &Config) -> Vec<VmknicRow> {
    cfg.vmknics
        .iter()
        .flat_map(|v| {
            let row = |ip: String, netmask: String, broadcast: String| VmknicRow {
                interface: v.id.to_string(),
                portgroup: v.portgroup.clone(),
                ip,
                netmask,
                broadcast,
                mac: v.mac.to_string(),
                mtu: v.mtu,
                enabled: v.enabled,
                kind: address_type(match (v.dhcp, v.address) {
                    (true, _) => "dhcp",
                    (false, Some(_)) => "static",
                    (false, None) => "none",
                })
                .to_string(),
                netstack: v.netstack.clone(),
                family: "IPv4",
            };
            let mut rows: Vec<VmknicRow> = v
                .addresses()
                .map(|a| {
                    row(
                        a.addr().to_string(),
                        a.netmask().to_string(),
                        a.broadcast().to_string(),
                    )
                })
                .collect();
            if rows.is_empty() {
                rows.push(row("N/A".into(), "N/A".into(), "N/A".into()));
            }
            let extra = ipv6_rows(&rows[0], v.addresses6().map(|a| (a, "static", "PREFERRED")));
            rows.extend(extra);
            rows
        })
        .collect()
}

/// ESXi's name for how an address is set (`esxcfg-vmknic -l` Type, `ipv4 get` Address
/// Type), from the daemon's `static`, `dhcp` or `none`.
pub fn address_type(addressing: &str) -> &'static str {
    match addressing {
        "dhcp" => "DHCP",
        "none" => "NONE",
        _ => "STATIC",
    }
}

/// The rows of `esxcfg-vmknic -l` for the vmknics a daemon reports, in the daemon's order. A
/// vmknic without an address still gets a row (its address cells read `N/A`).
pub fn vmknic_rows_from_info(vmknics: &[VmknicInfo]) -> Vec<VmknicRow> {
    vmknics
        .iter()
        .flat_map(|v| {
            let row = |ip: String, netmask: String, broadcast: String| VmknicRow {
                interface: v.name.to_string(),
                portgroup: v.portgroup.clone(),
                ip,
                netmask,
                broadcast,
                mac: v.mac.clone(),
                mtu: v.mtu,
                enabled: v.enabled,
                kind: address_type(&v.addressing).to_string(),
                netstack: v.netstack.clone(),
                family: "IPv4",
            };
            let mut rows: Vec<VmknicRow> = match v.addresses.as_slice() {
                [] => vec![row("N/A".into(), "N/A".into(), "N/A".into())],
                addresses => addresses
                    .iter()
                    .map(|a| {
                        row(
                            a.addr().to_string(),
                            a.netmask().to_string(),
                            a.broadcast().to_string(),
                        )
                    })
                    .collect(),
            };
            // The data plane's view with each address's status; configured addresses as
            // preferred when it has none (vmknic down).
            let extra = if v.ipv6_addresses.is_empty() {
                ipv6_rows(&rows[0], v.ipv6.iter().map(|a| (*a, "static", "PREFERRED")))
            } else {
                ipv6_rows(
                    &rows[0],
                    v.ipv6_addresses
                        .iter()
                        .map(|a| (a.address, a.origin.as_str(), a.status.as_str())),
                )
            };
            rows.extend(extra);
            rows
        })
        .collect()
}

/// One line per vmknic whose wire is down, after `esxcfg-vmknic -l`'s table (which keeps
/// ESX's columns): `vmk1 is down: TAP vmk1 was deleted from outside; re-creating it`.
pub fn format_link_down(vmknics: &[VmknicInfo]) -> String {
    vmknics
        .iter()
        .filter_map(|v| Some(format!("{} is down: {}\n", v.name, v.link_down.as_ref()?)))
        .collect()
}

/// Left-aligned columns, each as wide as its widest cell plus two spaces (ESX pads the same
/// way); the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<width$}", width = w + 2);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `esxcfg-vmknic -l` as ESXi 6.x-8.x prints it: fixed columns (`%-10s %-39s %-9s %-39s
/// %-15s %-15s %-17s %-7s %-9s %-7s %-19s %-19s `), one row per address with its IP family,
/// the TSO MSS (65535: TSO is on, as ESXi creates vmknics), the address Type and the NetStack.
/// The last column is padded too, as in captured ESXi 6.7/7.0 output (`NetStack` and
/// `defaultTcpipStack` followed by spaces up to 20 characters).
///
/// ```text
/// Interface  Port Group/DVPort/Opaque Network        IP Family IP Address                              Netmask         Broadcast       MAC Address       MTU     TSO MSS   Enabled Type                NetStack            
/// vmk0       Management Network                      IPv4      172.26.64.10                            255.255.255.192 172.26.64.63    00:50:56:6c:fe:c5 1500    65535     true    STATIC              defaultTcpipStack   
/// ```
pub fn format_esxcfg_vmknics(rows: &[VmknicRow]) -> String {
    const WIDTHS: [usize; 12] = [10, 39, 9, 39, 15, 15, 17, 7, 9, 7, 19, 19];
    let line = |cells: [&str; 12]| {
        let mut l = String::new();
        for (cell, w) in cells.iter().zip(WIDTHS) {
            let _ = write!(l, "{cell:<w$} ");
        }
        l.push('\n');
        l
    };
    let mut out = line([
        "Interface",
        "Port Group/DVPort/Opaque Network",
        "IP Family",
        "IP Address",
        "Netmask",
        "Broadcast",
        "MAC Address",
        "MTU",
        "TSO MSS",
        "Enabled",
        "Type",
        "NetStack",
    ]);
    for r in rows {
        out.push_str(&line([
            &r.interface,
            &r.portgroup,
            r.family,
            &r.ip,
            &r.netmask,
            &r.broadcast,
            &r.mac,
            &r.mtu.to_string(),
            TSO_MSS,
            &r.enabled.to_string(),
            &r.kind,
            &r.netstack,
        ]));
    }
    out
}

/// The TSO MSS ESXi shows for a vmknic with TSO on (how it creates them).
const TSO_MSS: &str = "65535";

/// `vmkstack vmknic list` and `vmkstack check`: the compact table of ESX 3's `esxcfg-vmknic -l`
/// (the article's), with the vmknic's name first; a NetStack column last when the vmknics
/// belong to more than one netstack.
pub fn format_vmknics(rows: &[VmknicRow]) -> String {
    let several = rows.iter().any(|r| r.netstack != rows[0].netstack);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.interface.clone(),
                r.portgroup.clone(),
                r.ip.clone(),
                r.netmask.clone(),
                r.broadcast.clone(),
                r.mac.clone(),
                r.mtu.to_string(),
                r.enabled.to_string(),
            ];
            if several {
                row.push(r.netstack.clone());
            }
            row
        })
        .collect();
    let mut headers = vec![
        "Interface",
        "Port Group",
        "IP Address",
        "Netmask",
        "Broadcast",
        "MAC Address",
        "MTU",
        "Enabled",
    ];
    if several {
        headers.push("NetStack");
    }
    table(&headers, &cells)
}

/// Width of every column but the last in `esxcfg-route -l` (ESXi 6.x-8.x pads each to 16
/// characters and a space, `%-16s `: an IPv4 address or `Local Subnet` always fits).
const ESXCFG_ROUTE_COLUMN: usize = 16;

/// `esxcfg-route -l`: static routes, then `Local Subnet` rows, then `default`, in ESXi's
/// fixed columns. A route whose gateway is on no vmknic subnet shows `None` as its interface.
///
/// ```text
/// VMkernel Routes:
/// Network          Netmask          Gateway          Interface
/// 172.26.64.0      255.255.255.192  Local Subnet     vmk0
/// default          0.0.0.0          172.26.64.1      vmk0
/// ```
pub fn format_routes(entries: &[RouteEntry]) -> String {
    let row = |cells: [&str; 4]| {
        let mut line = String::new();
        for cell in &cells[..3] {
            let _ = write!(line, "{cell:<w$} ", w = ESXCFG_ROUTE_COLUMN);
        }
        line.push_str(cells[3]);
        line.push('\n');
        line
    };
    let mut out = String::from("VMkernel Routes:\n");
    out.push_str(&row(["Network", "Netmask", "Gateway", "Interface"]));
    for e in entries {
        let network = if e.origin == Origin::Default {
            "default".to_string()
        } else {
            e.network.network().to_string()
        };
        let gateway = e
            .gateway
            .map_or_else(|| "Local Subnet".to_string(), |g| g.to_string());
        let interface = e
            .vmknic
            .map_or_else(|| "None".to_string(), |v| v.to_string());
        let netmask = e.network.netmask().to_string();
        out.push_str(&row([&network, &netmask, &gateway, &interface]));
    }
    out
}

/// How a column of an `esxcli` table aligns its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers (esxcli right-aligns them, header included).
    Right,
}

/// An `esxcli` table: the headers, a rule of `-` as wide as each column, the rows; columns two
/// spaces apart and every cell padded to its column's width, the last column's too (esxcli
/// leaves those trailing spaces).
pub fn esxcli_table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, ((cell, w), (_, align))) in cells.zip(&widths).zip(headers).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = match align {
                Align::Left => write!(l, "{cell:<w$}"),
                Align::Right => write!(l, "{cell:>w$}"),
            };
        }
        out.push_str(&l);
        out.push('\n');
    };
    line(&mut headers.iter().map(|(h, _)| *h));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// A neighbour's MAC, or `(incomplete)` while ARP has no answer.
fn neighbor_mac(n: &NeighborInfo) -> String {
    n.mac.clone().unwrap_or_else(|| "(incomplete)".to_string())
}

/// `esxcfg-route -n` (also `vmkstack neighbor list`): the neighbour (ARP) table.
pub fn format_neighbors(neighbors: &[NeighborInfo]) -> String {
    let cells: Vec<Vec<String>> = neighbors
        .iter()
        .map(|n| {
            vec![
                n.ip.to_string(),
                neighbor_mac(n),
                n.vmknic.to_string(),
                n.expiry_s
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                n.state.clone(),
            ]
        })
        .collect();
    table(
        &["Neighbor", "MAC Address", "vmknic", "Expiry(sec)", "State"],
        &cells,
    )
}

/// One field of an esxcli result, typed as esxcli's formatters print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Text.
    Str(String),
    /// A number (right-aligned in tables).
    Int(i64),
    /// true/false (right-aligned in tables).
    Bool(bool),
}

impl Field {
    fn text(&self) -> String {
        match self {
            Field::Str(s) => s.clone(),
            Field::Int(n) => n.to_string(),
            Field::Bool(b) => b.to_string(),
        }
    }

    /// The type word of `--formatter=keyvalue`.
    fn type_name(&self) -> &'static str {
        match self {
            Field::Str(_) => "string",
            Field::Int(_) => "integer",
            Field::Bool(_) => "boolean",
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Field::Str(s) => serde_json::Value::from(s.as_str()),
            Field::Int(n) => serde_json::Value::from(*n),
            Field::Bool(b) => serde_json::Value::from(*b),
        }
    }

    fn align(&self) -> Align {
        match self {
            Field::Str(_) => Align::Left,
            Field::Int(_) | Field::Bool(_) => Align::Right,
        }
    }
}

impl From<String> for Field {
    fn from(s: String) -> Field {
        Field::Str(s)
    }
}

impl From<&str> for Field {
    fn from(s: &str) -> Field {
        Field::Str(s.to_string())
    }
}

/// How esxcli prints its default output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A table with a rule under the headers.
    Table,
    /// A block per structure: its first field alone, then `   Key: value` lines (`interface
    /// list`).
    Blocks,
}

/// An esxcli result: a list of structures with the same named fields (ESXi's field names,
/// the table headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsxcliList {
    /// The structure's name (`--formatter=keyvalue` prefixes every key with it).
    pub structure: &'static str,
    /// Field names, in the default output's order.
    pub fields: Vec<&'static str>,
    /// One row of fields per structure.
    pub rows: Vec<Vec<Field>>,
    /// The default output.
    pub layout: Layout,
}

/// esxcli's `--formatter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Formatter {
    /// Comma-separated: a header row of field names, columns in alphabetical order, every
    /// line ending with a comma (as esxcli writes them).
    Csv,
    /// `Structure.FieldName.type=value`, a line per field.
    Keyvalue,
    /// A JSON array of objects keyed by field name.
    Json,
}

/// A field name as the formatters write it: the header without spaces (`IPv4 Address` →
/// `IPv4Address`).
fn field_key(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A CSV cell, quoted when it holds a comma, a quote or a line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl EsxcliList {
    /// The default output (table or blocks).
    pub fn render(&self) -> String {
        match self.layout {
            Layout::Table => {
                let headers: Vec<(&str, Align)> = self
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let align = self
                            .rows
                            .first()
                            .and_then(|r| r.get(i))
                            .map_or(Align::Left, Field::align);
                        (*name, align)
                    })
                    .collect();
                let cells: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|r| r.iter().map(Field::text).collect())
                    .collect();
                esxcli_table(&headers, &cells)
            }
            Layout::Blocks => {
                let blocks: Vec<String> = self
                    .rows
                    .iter()
                    .map(|r| {
                        let title = r.first().map(Field::text).unwrap_or_default();
                        let mut block = format!("{title}\n");
                        for (name, value) in self.fields.iter().zip(r) {
                            let _ = writeln!(block, "   {name}: {}", value.text());
                        }
                        block
                    })
                    .collect();
                blocks.join("\n")
            }
        }
    }

    /// The fields' positions in alphabetical order of their keys (csv, keyvalue).
    fn sorted(&self) -> Vec<(usize, String)> {
        let mut keys: Vec<(usize, String)> = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (i, field_key(f)))
            .collect();
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        keys
    }

    /// The output of `--formatter=F`.
    pub fn format(&self, formatter: Formatter) -> String {
        match formatter {
            Formatter::Csv => {
                let keys = self.sorted();
                let mut out = String::new();
                for (_, k) in &keys {
                    let _ = write!(out, "{},", csv_cell(k));
                }
                out.push('\n');
                for row in &self.rows {
                    for (i, _) in &keys {
                        let cell = row.get(*i).map(Field::text).unwrap_or_default();
                        let _ = write!(out, "{},", csv_cell(&cell));
                    }
                    out.push('\n');
                }
                out
            }
            Formatter::Keyvalue => {
                let keys = self.sorted();
                let mut out = String::new();
                for row in &self.rows {
                    for (i, k) in &keys {
                        if let Some(f) = row.get(*i) {
                            let _ = writeln!(
                                out,
                                "{}.{k}.{}={}",
                                self.structure,
                                f.type_name(),
                                f.text()
                            );
                        }
                    }
                }
                out
            }
            Formatter::Json => {
                let rows: Vec<serde_json::Value> = self
                    .rows
                    .iter()
                    .map(|row| {
                        let map: serde_json::Map<String, serde_json::Value> = self
                            .fields
                            .iter()
                            .zip(row)
                            .map(|(name, f)| (field_key(name), f.json()))
                            .collect();
                        serde_json::Value::Object(map)
                    })
                    .collect();
                let mut out = serde_json::Value::Array(rows).to_string();
                out.push('\n');
                out
            }
        }
    }

    /// The default output, or the formatter's.
    pub fn output(&self, formatter: Option<Formatter>) -> String {
        formatter.map_or_else(|| self.render(), |f| self.format(f))
    }
}

/// `esxcli network ip route ipv4 list`: the default route first (as ESXi 6.x-8.x lists it),
/// then the others in `esxcfg-route -l` order; a `Local Subnet` row shows gateway `0.0.0.0`,
/// the default row network `default`, and every row Source `MANUAL` (ESXi's word for
/// configured routes).
///
/// ```text
/// Network      Netmask          Gateway      Interface  Source
/// -----------  ---------------  -----------  ---------  ------
/// default      0.0.0.0          172.26.64.1  vmk0       MANUAL
/// 172.26.64.0  255.255.255.192  0.0.0.0      vmk0       MANUAL
/// ```
pub fn esxcli_routes(entries: &[RouteEntry]) -> EsxcliList {
    let defaults = entries.iter().filter(|e| e.origin == Origin::Default);
    let others = entries.iter().filter(|e| e.origin != Origin::Default);
    let rows: Vec<Vec<Field>> = defaults
        .chain(others)
        .map(|e| {
            let network = if e.origin == Origin::Default {
                "default".to_string()
            } else {
                e.network.network().to_string()
            };
            vec![
                network.into(),
                e.network.netmask().to_string().into(),
                e.gateway
                    .map_or_else(|| "0.0.0.0".to_string(), |g| g.to_string())
                    .into(),
                e.vmknic
                    .map_or_else(|| "None".to_string(), |v| v.to_string())
                    .into(),
                "MANUAL".into(),
            ]
        })
        .collect();
    EsxcliList {
        structure: "RouteIPv4",
        fields: vec!["Network", "Netmask", "Gateway", "Interface", "Source"],
        rows,
        layout: Layout::Table,
    }
}

/// `esxcli network ip route ipv6 list`: the default gateway first, then the others, with
/// the prefix length in ESXi's `Netmask` column. Source is `MANUAL` for configured routes and
/// `DYNAMIC` (ESXi's word for routes it learned itself) for a default router learned from
/// router advertisements.
pub fn esxcli_routes6(entries: &[Route6Info]) -> EsxcliList {
    let defaults = entries.iter().filter(|e| e.network.prefix_len() == 0);
    let others = entries.iter().filter(|e| e.network.prefix_len() != 0);
    let rows: Vec<Vec<Field>> = defaults
        .chain(others)
        .map(|e| {
            let network = if e.network.prefix_len() == 0 {
                "default".to_string()
            } else {
                e.network.network().to_string()
            };
            vec![
                network.into(),
                e.network.prefix_len().to_string().into(),
                e.gateway.clone().unwrap_or_else(|| "::".to_string()).into(),
                e.vmknic
                    .clone()
                    .unwrap_or_else(|| "None".to_string())
                    .into(),
                if e.learned { "DYNAMIC" } else { "MANUAL" }.into(),
            ]
        })
        .collect();
    EsxcliList {
        structure: "RouteIPv6",
        fields: vec!["Network", "Netmask", "Gateway", "Interface", "Source"],
        rows,
        layout: Layout::Table,
    }
}

/// The table of [`esxcli_routes`].
pub fn format_esxcli_routes(entries: &[RouteEntry]) -> String {
    esxcli_routes(entries).render()
}

/// `esxcli network ip interface list`: a block per vmknic with ESXi 6.x-8.x's fields
/// (distributed switch and opaque network fields as ESXi shows them for a standard switch).
///
/// ```text
/// vmk0
///    Name: vmk0
///    MAC Address: 00:50:56:6c:fe:c5
///    Enabled: true
///    Portset: vSwitch0
///    Portgroup: Management Network
///    Netstack Instance: defaultTcpipStack
///    VDS Name: N/A
///    VDS UUID: N/A
///    VDS Port: N/A
///    VDS Connection: -1
///    Opaque Network ID: N/A
///    Opaque Network Type: N/A
///    External ID: N/A
///    MTU: 1500
///    TSO MSS: 65535
///    RXDispQueue Size: 1
///    Port ID: 33554432
/// ```
///
/// The fields and their order are ESXi 7.0's (`RXDispQueue Size` came with 7.0; 6.x stops at
/// `Port ID` without it). `RXDispQueue Size` is 1: one receive queue per TAP. `Port ID` is
/// the number of a port on ESXi's first portset (0x2000000) plus the vmknic's number, a stable
/// stand-in, since a TAP has no vSwitch port.
pub fn esxcli_interfaces(vmknics: &[VmknicInfo]) -> EsxcliList {
    let rows = vmknics
        .iter()
        .map(|v| {
            vec![
                v.name.clone().into(),
                v.mac.clone().into(),
                Field::Bool(v.enabled),
                "vmkstack".into(),
                v.portgroup.clone().into(),
                v.netstack.clone().into(),
                "N/A".into(),
                "N/A".into(),
                "N/A".into(),
                Field::Int(-1),
                "N/A".into(),
                "N/A".into(),
                "N/A".into(),
                Field::Int(i64::from(v.mtu)),
                Field::Int(65535),
                Field::Int(1),
                Field::Int(
                    PORT_ID_BASE + v.name.parse::<VmknicId>().map_or(0, |id| i64::from(id.0)),
                ),
            ]
        })
        .collect();
    EsxcliList {
        structure: "NetworkInterface",
        fields: vec![
            "Name",
            "MAC Address",
            "Enabled",
            "Portset",
            "Portgroup",
            "Netstack Instance",
            "VDS Name",
            "VDS UUID",
            "VDS Port",
            "VDS Connection",
            "Opaque Network ID",
            "Opaque Network Type",
            "External ID",
            "MTU",
            "TSO MSS",
            "RXDispQueue Size",
            "Port ID",
        ],
        rows,
        layout: Layout::Blocks,
    }
}

/// The first port number of ESXi's first portset (`Port ID: 33554436` is its port 4).
const PORT_ID_BASE: i64 = 0x200_0000;

/// The blocks of [`esxcli_interfaces`], each with a `Link Down` line under it while the
/// vmknic's wire is down (vmkstack's own: ESXi has no such field).
pub fn format_esxcli_interfaces(vmknics: &[VmknicInfo]) -> String {
    let blocks: Vec<String> = vmknics
        .iter()
        .map(|v| {
            let mut block = esxcli_interfaces(std::slice::from_ref(v)).render();
            if let Some(why) = &v.link_down {
                let _ = writeln!(block, "   Link Down: {why}");
            }
            block
        })
        .collect();
    blocks.join("\n")
}

/// `esxcli network ip interface ipv4 get`: a row per vmknic address (the primary one; a
/// vmknic without an address shows `0.0.0.0`), its Address Type (`STATIC`, `DHCP`, `NONE`),
/// Gateway (the DHCP lease's router, else `0.0.0.0`: no per-vmknic gateway) and DHCP DNS.
///
/// ```text
/// Name  IPv4 Address  IPv4 Netmask   IPv4 Broadcast  Address Type  Gateway  DHCP DNS
/// ----  ------------  -------------  --------------  ------------  -------  --------
/// vmk0  172.26.64.10  255.255.255.0  172.26.64.255   STATIC        0.0.0.0     false
/// ```
pub fn esxcli_ipv4(vmknics: &[VmknicInfo]) -> EsxcliList {
    let none = || "0.0.0.0".to_string();
    let rows = vmknics
        .iter()
        .map(|v| {
            let a = v.addresses.first();
            vec![
                v.name.clone().into(),
                a.map_or_else(none, |a| a.addr().to_string()).into(),
                a.map_or_else(none, |a| a.netmask().to_string()).into(),
                a.map_or_else(none, |a| a.broadcast().to_string()).into(),
                address_type(&v.addressing).into(),
                // Its own gateway (ESXi 6.5+ override), or the DHCP lease's router.
                v.gateway
                    .or(v.dhcp_router)
                    .map_or_else(none, |g| g.to_string())
                    .into(),
                Field::Bool(false),
            ]
        })
        .collect();
    EsxcliList {
        structure: "IPv4Interface",
        fields: vec![
            "Name",
            "IPv4 Address",
            "IPv4 Netmask",
            "IPv4 Broadcast",
            "Address Type",
            "Gateway",
            "DHCP DNS",
        ],
        rows,
        layout: Layout::Table,
    }
}

/// `esxcli network ip interface ipv6 get`: a vmknic's IPv6 switches (router advertisements
/// as `esxcfg-vmknic -P` set them; DHCPv6 is never on here) and its IPv6 gateway (`gateways`: the netstack's IPv6
/// default gateway by the vmknic it leaves through; `::` for none).
///
/// ```text
/// Name  IPv6 Enabled  DHCPv6 Enabled  Router Adv Enabled  DHCP DNS  Gateway
/// ----  ------------  --------------  ------------------  --------  -------
/// vmk0          true           false               false     false  ::
/// ```
pub fn esxcli_ipv6_get(vmknics: &[VmknicInfo], gateways: &[(String, String)]) -> EsxcliList {
    let rows = vmknics
        .iter()
        .map(|v| {
            let gateway = gateways
                .iter()
                .find(|(vmk, _)| *vmk == v.name)
                .map_or_else(|| "::".to_string(), |(_, g)| g.clone());
            vec![
                v.name.clone().into(),
                Field::Bool(!v.ipv6.is_empty() || v.ipv6_autoconf || v.ipv6_dhcp),
                Field::Bool(v.ipv6_dhcp),
                Field::Bool(v.ipv6_autoconf),
                Field::Bool(false),
                gateway.into(),
            ]
        })
        .collect();
    EsxcliList {
        structure: "IPv6Interface",
        fields: vec![
            "Name",
            "IPv6 Enabled",
            "DHCPv6 Enabled",
            "Router Adv Enabled",
            "DHCP DNS",
            "Gateway",
        ],
        rows,
        layout: Layout::Table,
    }
}

/// `esxcli network ip interface ipv6 address list`: every IPv6 address of every vmknic, its
/// prefix length, `LINK_LOCAL`, `STATIC`, `AUTOCONF` (router advertisements) or `DHCP`
/// (DHCPv6; the vSphere API's origin `DHCP`), and its
/// duplicate-address-detection status (`TENTATIVE`, `PREFERRED`, `DEPRECATED`, `DUPLICATE`).
/// A daemon that reports no states (older) gives each configured address as `PREFERRED`.
///
/// ```text
/// Interface  Address                   Netmask  Type        Status
/// ---------  ------------------------  -------  ----------  ---------
/// vmk0       fe80::250:56ff:fe01:1          64  LINK_LOCAL  PREFERRED
/// vmk0       2001:db8:1::1                  64  STATIC      PREFERRED
/// ```
pub fn esxcli_ipv6_addresses(vmknics: &[VmknicInfo]) -> EsxcliList {
    let row = |v: &VmknicInfo, a: ipnet::Ipv6Net, kind: &str, status: &str| -> Vec<Field> {
        vec![
            v.name.clone().into(),
            a.addr().to_string().into(),
            Field::Int(i64::from(a.prefix_len())),
            kind.into(),
            status.into(),
        ]
    };
    let rows = vmknics
        .iter()
        .flat_map(|v| {
            let rows: Vec<Vec<Field>> = if v.ipv6_addresses.is_empty() {
                v.ipv6
                    .iter()
                    .map(|a| {
                        let kind = if vmkstack_routing::is_link_local6(a.addr()) {
                            "LINK_LOCAL"
                        } else {
                            "STATIC"
                        };
                        row(v, *a, kind, "PREFERRED")
                    })
                    .collect()
            } else {
                v.ipv6_addresses
                    .iter()
                    .map(|a| {
                        let kind = match a.origin.as_str() {
                            "link-local" => "LINK_LOCAL",
                            "autoconf" => "AUTOCONF",
                            "dhcp" => "DHCP",
                            _ => "STATIC",
                        };
                        row(v, a.address, kind, &a.status)
                    })
                    .collect()
            };
            rows
        })
        .collect();
    EsxcliList {
        structure: "IPv6Address",
        fields: vec!["Interface", "Address", "Netmask", "Type", "Status"],
        rows,
        layout: Layout::Table,
    }
}

/// `esxcli network ip neighbor list` as ESXi 6.x-8.x prints IPv4 entries: Expiry right-aligned
/// as `1199 sec`, State empty, Type `Unknown`. An entry ARP has not resolved shows its MAC as
/// `(incomplete)` and Expiry `-`.
///
/// ```text
/// Neighbor     Mac Address        Vmknic   Expiry  State  Type
/// -----------  -----------------  ------  -------  -----  -------
/// 172.40.0.12  00:50:56:61:ce:22  vmk1    164 sec         Unknown
/// ```
pub fn esxcli_neighbors(neighbors: &[NeighborInfo]) -> EsxcliList {
    let rows: Vec<Vec<Field>> = neighbors
        .iter()
        .map(|n| {
            vec![
                n.ip.to_string().into(),
                neighbor_mac(n).into(),
                n.vmknic.clone().into(),
                n.expiry_s
                    .map_or_else(|| "-".to_string(), |s| format!("{s} sec"))
                    .into(),
                // ESXi leaves State empty for ARP entries; IPv6 entries show their Neighbour
                // Unreachability Detection state (REACHABLE, STALE, DELAY, PROBE, ...).
                if n.ip.is_ipv6() {
                    n.state.to_ascii_uppercase()
                } else {
                    String::new()
                }
                .into(),
                "Unknown".into(),
            ]
        })
        .collect();
    EsxcliList {
        structure: "Neighbor",
        fields: vec![
            "Neighbor",
            "Mac Address",
            "Vmknic",
            "Expiry",
            "State",
            "Type",
        ],
        rows,
        layout: Layout::Table,
    }
}

/// The table of [`esxcli_neighbors`] (Expiry right-aligned although it is text, as ESXi).
pub fn format_esxcli_neighbors(neighbors: &[NeighborInfo]) -> String {
    let list = esxcli_neighbors(neighbors);
    let cells: Vec<Vec<String>> = list
        .rows
        .iter()
        .map(|r| r.iter().map(Field::text).collect())
        .collect();
    esxcli_table(
        &[
            ("Neighbor", Align::Left),
            ("Mac Address", Align::Left),
            ("Vmknic", Align::Left),
            ("Expiry", Align::Right),
            ("State", Align::Left),
            ("Type", Align::Left),
        ],
        &cells,
    )
}

/// `vmkstack stats`: packets and bytes each way, forwarded, delivered, ICMP errors and the
/// total of drops per vmknic; then, when any packet was dropped, the drops by reason, and when
/// offloads carried TCP super-frames, how many crossed whole and how many the daemon cut.
pub fn format_stats(stats: &[StatsInfo]) -> String {
    let cells: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            let c = &s.counters;
            let drops: u64 = c.drops.iter().map(|(_, n)| n).sum();
            vec![
                s.vmknic.to_string(),
                c.rx_packets.to_string(),
                c.rx_bytes.to_string(),
                c.tx_packets.to_string(),
                c.tx_bytes.to_string(),
                c.forwarded.to_string(),
                c.delivered.to_string(),
                c.icmp_errors.to_string(),
                drops.to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "Interface",
            "RX packets",
            "RX bytes",
            "TX packets",
            "TX bytes",
            "Forwarded",
            "Delivered",
            "ICMP errors",
            "Dropped",
        ],
        &cells,
    );
    let drops: Vec<Vec<String>> = stats
        .iter()
        .flat_map(|s| {
            s.counters
                .drops
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| vec![s.vmknic.to_string(), reason.clone(), n.to_string()])
        })
        .collect();
    if !drops.is_empty() {
        out.push_str("\nDrops by reason:\n");
        out.push_str(&table(&["Interface", "Reason", "Packets"], &drops));
    }
    let gso: Vec<Vec<String>> = stats
        .iter()
        .filter(|s| s.counters.gso_forwarded + s.counters.gso_segmented > 0)
        .map(|s| {
            let c = &s.counters;
            vec![
                s.vmknic.to_string(),
                c.gso_forwarded.to_string(),
                c.gso_segmented.to_string(),
            ]
        })
        .collect();
    if !gso.is_empty() {
        out.push_str("\nTCP super-frames (offloads):\n");
        out.push_str(&table(&["Interface", "Forwarded whole", "Segmented"], &gso));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_table_alignment() {
        let t = table(
            &["A", "Longer"],
            &[
                vec!["xxxx".into(), "1".into()],
                vec!["y".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A     Longer\nxxxx  1\ny     22\n");
    }

    #[test]
    fn test_link_down_lines() {
        let mut v = vmknics();
        assert_eq!(format_link_down(&v), "");
        v[2].link_down = Some("TAP `vmk2` was deleted from outside; re-creating it".into());
        assert_eq!(
            format_link_down(&v),
            "vmk2 is down: TAP `vmk2` was deleted from outside; re-creating it\n"
        );
        let esxcli = format_esxcli_interfaces(&v);
        assert!(
            esxcli.ends_with(
                "   Port ID: 33554434\n   Link Down: TAP `vmk2` was deleted from outside; \
                 re-creating it\n"
            ),
            "{esxcli}"
        );
    }

    fn vmknics() -> Vec<VmknicInfo> {
        serde_json::from_value(serde_json::json!([
            {"name": "vmk0", "portgroup": "iSCSI_SAN", "addresses": ["198.18.1.100/24"],
             "mac": "02:00:00:00:00:01", "mtu": 1500, "enabled": true, "tap": "vmk0",
             "bridge": null, "netns": null},
            {"name": "vmk1", "portgroup": "VMotion",
             "addresses": ["198.18.2.100/24", "198.18.3.1/30"],
             "mac": "02:00:00:00:00:02", "mtu": 9000, "enabled": false, "tap": "vmk1",
             "bridge": "br0", "netns": null},
            {"name": "vmk2", "portgroup": "NFS", "addresses": [],
             "mac": "02:00:00:00:00:03", "mtu": 1500, "enabled": true, "tap": "vmk2",
             "bridge": null, "netns": null}
        ]))
        .unwrap()
    }

    fn neighbors() -> Vec<NeighborInfo> {
        serde_json::from_value(serde_json::json!([
            {"ip": "198.18.1.1", "mac": "02:00:00:00:01:01", "vmknic": "vmk0",
             "state": "reachable", "expiry_s": 1199},
            {"ip": "198.18.2.20", "mac": null, "vmknic": "vmk1", "state": "incomplete",
             "expiry_s": null}
        ]))
        .unwrap()
    }

    #[test]
    fn test_vmknic_rows_from_info() {
        let out = format_vmknics(&vmknic_rows_from_info(&vmknics()));
        assert_eq!(
            out,
            "Interface  Port Group  IP Address    Netmask          Broadcast     MAC Address        MTU   Enabled\n\
             vmk0       iSCSI_SAN   198.18.1.100  255.255.255.0    198.18.1.255  02:00:00:00:00:01  1500  true\n\
             vmk1       VMotion     198.18.2.100  255.255.255.0    198.18.2.255  02:00:00:00:00:02  9000  false\n\
             vmk1       VMotion     198.18.3.1    255.255.255.252  198.18.3.3    02:00:00:00:00:02  9000  false\n\
             vmk2       NFS         N/A           N/A              N/A           02:00:00:00:00:03  1500  true\n"
        );
    }

    #[test]
    fn test_esxcli_table() {
        let t = esxcli_table(
            &[
                ("A", Align::Left),
                ("N", Align::Right),
                ("Last", Align::Left),
            ],
            &[vec!["xxxx".into(), "10".into(), "1".into()]],
        );
        // Numbers right-aligned, header too; the last column padded like the others.
        assert_eq!(t, "A      N  Last\n----  --  ----\nxxxx  10  1   \n");
        assert_eq!(esxcli_table(&[("A", Align::Left)], &[]), "A\n-\n");
    }

    /// A routing table in the daemon's (esxcfg-route) order, from its JSON.
    fn routes(json: serde_json::Value) -> Vec<RouteEntry> {
        serde_json::from_value(json).unwrap()
    }

    /// ESXi 7.0.3 (build 22348816), `esxcfg-route -l` and `esxcli network ip route ipv4 list`
    /// on a host with vmk0 172.26.64.10/26 and the default gateway 172.26.64.1: the same
    /// text with the addresses mapped into the lab range at the same widths.
    #[test]
    fn test_route_listings_as_esxi_7() {
        let table = routes(serde_json::json!([
            {"network": "198.18.64.0/26", "gateway": null, "vmknic": "vmk0",
             "origin": "connected", "active": true},
            {"network": "0.0.0.0/0", "gateway": "198.18.64.1", "vmknic": "vmk0",
             "origin": "default", "active": true}
        ]));
        assert_eq!(
            format_routes(&table),
            "VMkernel Routes:\n\
             Network          Netmask          Gateway          Interface\n\
             198.18.64.0      255.255.255.192  Local Subnet     vmk0\n\
             default          0.0.0.0          198.18.64.1      vmk0\n"
        );
        assert_eq!(
            format_esxcli_routes(&table),
            "Network      Netmask          Gateway      Interface  Source\n\
             -----------  ---------------  -----------  ---------  ------\n\
             default      0.0.0.0          198.18.64.1  vmk0       MANUAL\n\
             198.18.64.0  255.255.255.192  0.0.0.0      vmk0       MANUAL\n"
        );
    }

    /// A default router learned from advertisements is `DYNAMIC`; configured routes and the
    /// vmknic's prefix stay `MANUAL`.
    #[test]
    fn test_esxcli_ipv6_routes_show_a_learned_default_router_as_dynamic() {
        let table: Vec<Route6Info> = serde_json::from_value(serde_json::json!([
            {"network": "2001:db8:3::/64", "gateway": null, "vmknic": "vmk0",
             "origin": "connected", "active": true},
            {"network": "::/0", "gateway": "fe80::1%vmk0", "vmknic": "vmk0",
             "origin": "default", "active": true, "learned": true},
            {"network": "2001:db8:100::/48", "gateway": "2001:db8:3::10", "vmknic": "vmk0",
             "origin": "static", "active": true}
        ]))
        .unwrap();
        assert_eq!(
            esxcli_routes6(&table).render(),
            "Network         Netmask  Gateway         Interface  Source \n\
             --------------  -------  --------------  ---------  -------\n\
             default         0        fe80::1%vmk0    vmk0       DYNAMIC\n\
             2001:db8:3::    64       ::              vmk0       MANUAL \n\
             2001:db8:100::  48       2001:db8:3::10  vmk0       MANUAL \n"
        );
    }

    #[test]
    fn test_route_listings_with_static_and_inactive_routes() {
        let table = routes(serde_json::json!([
            {"network": "198.18.100.0/24", "gateway": "198.18.1.1", "vmknic": "vmk0",
             "origin": "static", "active": true},
            {"network": "198.18.101.0/24", "gateway": "198.18.9.1", "vmknic": null,
             "origin": "static", "active": false},
            {"network": "198.18.1.0/24", "gateway": null, "vmknic": "vmk0",
             "origin": "connected", "active": true},
            {"network": "198.18.2.0/24", "gateway": null, "vmknic": "vmk1",
             "origin": "connected", "active": true},
            {"network": "0.0.0.0/0", "gateway": "198.18.0.254", "vmknic": null,
             "origin": "default", "active": false}
        ]));
        assert_eq!(
            format_routes(&table),
            "VMkernel Routes:\n\
             Network          Netmask          Gateway          Interface\n\
             198.18.100.0     255.255.255.0    198.18.1.1       vmk0\n\
             198.18.101.0     255.255.255.0    198.18.9.1       None\n\
             198.18.1.0       255.255.255.0    Local Subnet     vmk0\n\
             198.18.2.0       255.255.255.0    Local Subnet     vmk1\n\
             default          0.0.0.0          198.18.0.254     None\n"
        );
        assert_eq!(
            format_esxcli_routes(&table),
            "Network       Netmask        Gateway       Interface  Source\n\
             ------------  -------------  ------------  ---------  ------\n\
             default       0.0.0.0        198.18.0.254  None       MANUAL\n\
             198.18.100.0  255.255.255.0  198.18.1.1    vmk0       MANUAL\n\
             198.18.101.0  255.255.255.0  198.18.9.1    None       MANUAL\n\
             198.18.1.0    255.255.255.0  0.0.0.0       vmk0       MANUAL\n\
             198.18.2.0    255.255.255.0  0.0.0.0       vmk1       MANUAL\n"
        );
    }

    #[test]
    fn test_esxcli_interfaces() {
        let out = format_esxcli_interfaces(&vmknics()[..2]);
        let block = |name: &str, mac: &str, enabled: bool, pg: &str, mtu: u16, port: u32| {
            format!(
                "{name}\n   Name: {name}\n   MAC Address: {mac}\n   Enabled: {enabled}\n   \
                 Portset: vmkstack\n   Portgroup: {pg}\n   Netstack Instance: defaultTcpipStack\n   \
                 VDS Name: N/A\n   VDS UUID: N/A\n   VDS Port: N/A\n   VDS Connection: -1\n   \
                 Opaque Network ID: N/A\n   Opaque Network Type: N/A\n   External ID: N/A\n   \
                 MTU: {mtu}\n   TSO MSS: 65535\n   RXDispQueue Size: 1\n   Port ID: {port}\n"
            )
        };
        assert_eq!(
            out,
            format!(
                "{}\n{}",
                block(
                    "vmk0",
                    "02:00:00:00:00:01",
                    true,
                    "iSCSI_SAN",
                    1500,
                    33554432
                ),
                block(
                    "vmk1",
                    "02:00:00:00:00:02",
                    false,
                    "VMotion",
                    9000,
                    33554433
                )
            )
        );
        assert_eq!(format_esxcli_interfaces(&[]), "");
    }

    #[test]
    fn test_esxcfg_vmknic_layout_of_esxi_6_to_8() {
        let mut v = vmknics();
        v[2].addressing = "dhcp".into();
        let out = format_esxcfg_vmknics(&vmknic_rows_from_info(&v));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Interface  Port Group/DVPort/Opaque Network        IP Family IP Address                              \
             Netmask         Broadcast       MAC Address       MTU     TSO MSS   Enabled Type                NetStack            "
        );
        assert_eq!(
            lines[1],
            "vmk0       iSCSI_SAN                               IPv4      198.18.1.100                            \
             255.255.255.0   198.18.1.255    02:00:00:00:00:01 1500    65535     true    STATIC              defaultTcpipStack   "
        );
        // The columns admins' scripts split on, in order.
        let cols: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "vmk1",
                "VMotion",
                "IPv4",
                "198.18.3.1",
                "255.255.255.252",
                "198.18.3.3",
                "02:00:00:00:00:02",
                "9000",
                "65535",
                "false",
                "STATIC",
                "defaultTcpipStack"
            ]
        );
        let cols: Vec<&str> = lines[4].split_whitespace().collect();
        assert_eq!(cols[2..4], ["IPv4", "N/A"]);
        assert_eq!(cols[10], "DHCP");
        assert_eq!(out.lines().filter(|l| l.contains(" IPv4 ")).count(), 4);
    }

    #[test]
    fn test_esxcli_ipv4_get_and_formatters() {
        let mut v = vmknics();
        v[2].addressing = "dhcp".into();
        v[2].addresses = vec!["198.18.7.50/24".parse().unwrap()];
        v[2].dhcp_router = Some("198.18.7.1".parse().unwrap());
        let list = esxcli_ipv4(&v);
        assert_eq!(
            list.render(),
            "Name  IPv4 Address  IPv4 Netmask   IPv4 Broadcast  Address Type  Gateway     DHCP DNS\n\
             ----  ------------  -------------  --------------  ------------  ----------  --------\n\
             vmk0  198.18.1.100  255.255.255.0  198.18.1.255    STATIC        0.0.0.0        false\n\
             vmk1  198.18.2.100  255.255.255.0  198.18.2.255    STATIC        0.0.0.0        false\n\
             vmk2  198.18.7.50   255.255.255.0  198.18.7.255    DHCP          198.18.7.1     false\n"
        );
        let one = esxcli_ipv4(&v[..1]);
        assert_eq!(
            one.format(Formatter::Csv),
            "AddressType,DHCPDNS,Gateway,IPv4Address,IPv4Broadcast,IPv4Netmask,Name,\n\
             STATIC,false,0.0.0.0,198.18.1.100,198.18.1.255,255.255.255.0,vmk0,\n"
        );
        assert_eq!(
            one.format(Formatter::Keyvalue),
            "IPv4Interface.AddressType.string=STATIC\n\
             IPv4Interface.DHCPDNS.boolean=false\n\
             IPv4Interface.Gateway.string=0.0.0.0\n\
             IPv4Interface.IPv4Address.string=198.18.1.100\n\
             IPv4Interface.IPv4Broadcast.string=198.18.1.255\n\
             IPv4Interface.IPv4Netmask.string=255.255.255.0\n\
             IPv4Interface.Name.string=vmk0\n"
        );
        let json: serde_json::Value = serde_json::from_str(&list.format(Formatter::Json)).unwrap();
        assert_eq!(json[2]["AddressType"], "DHCP");
        assert_eq!(json[2]["Gateway"], "198.18.7.1");
        assert_eq!(json[0]["DHCPDNS"], false);
        let iface = esxcli_interfaces(&v[..1]).format(Formatter::Json);
        let json: serde_json::Value = serde_json::from_str(&iface).unwrap();
        assert_eq!(json[0]["NetstackInstance"], "defaultTcpipStack");
        assert_eq!(json[0]["MTU"], 1500);
        assert_eq!(json[0]["MACAddress"], "02:00:00:00:00:01");
        // A cell with a comma is quoted.
        let mut pg = v[..1].to_vec();
        pg[0].portgroup = "a,b".into();
        assert!(esxcli_interfaces(&pg)
            .format(Formatter::Csv)
            .contains(",\"a,b\","));
    }

    /// ESXi's `esxcli network ip neighbor list -i vmk1` on a vSAN cluster (VMware's vSAN
    /// troubleshooting guide, ESXi 6.x), addresses mapped into the lab range at the same
    /// widths: Expiry right-aligned, State empty, Type `Unknown`, the last column padded.
    #[test]
    fn test_esxcli_neighbors_as_esxi() {
        let seen: Vec<NeighborInfo> = serde_json::from_value(serde_json::json!([
            {"ip": "198.18.0.12", "mac": "00:50:56:61:ce:22", "vmknic": "vmk1",
             "state": "reachable", "expiry_s": 164},
            {"ip": "198.18.0.10", "mac": "00:50:56:67:1d:b2", "vmknic": "vmk1",
             "state": "reachable", "expiry_s": 338},
            {"ip": "198.18.0.11", "mac": "00:50:56:6c:fe:c5", "vmknic": "vmk1",
             "state": "reachable", "expiry_s": 162}
        ]))
        .unwrap();
        assert_eq!(
            format_esxcli_neighbors(&seen),
            "Neighbor     Mac Address        Vmknic   Expiry  State  Type   \n\
             -----------  -----------------  ------  -------  -----  -------\n\
             198.18.0.12  00:50:56:61:ce:22  vmk1    164 sec         Unknown\n\
             198.18.0.10  00:50:56:67:1d:b2  vmk1    338 sec         Unknown\n\
             198.18.0.11  00:50:56:6c:fe:c5  vmk1    162 sec         Unknown\n"
        );
        // Unresolved entries say so in the MAC column.
        assert_eq!(
            format_esxcli_neighbors(&neighbors()),
            "Neighbor     Mac Address        Vmknic    Expiry  State  Type   \n\
             -----------  -----------------  ------  --------  -----  -------\n\
             198.18.1.1   02:00:00:00:01:01  vmk0    1199 sec         Unknown\n\
             198.18.2.20  (incomplete)       vmk1           -         Unknown\n"
        );
    }

    #[test]
    fn test_stats() {
        let stats: Vec<StatsInfo> = serde_json::from_value(serde_json::json!([
            {"vmknic": "vmk0", "counters": {"rx_packets": 10, "rx_bytes": 1000,
             "tx_packets": 9, "tx_bytes": 900, "forwarded": 4, "delivered": 5,
             "icmp_errors": 1, "drops": [["no_route", 2], ["ttl_exceeded", 1]]}},
            {"vmknic": "vmk1", "counters": {"rx_packets": 0, "rx_bytes": 0,
             "tx_packets": 0, "tx_bytes": 0, "forwarded": 0, "delivered": 0,
             "icmp_errors": 0, "drops": []}}
        ]))
        .unwrap();
        assert_eq!(
            format_stats(&stats),
            "Interface  RX packets  RX bytes  TX packets  TX bytes  Forwarded  Delivered  ICMP errors  Dropped\n\
             vmk0       10          1000      9           900       4          5          1            3\n\
             vmk1       0           0         0           0         0          0          0            0\n\
             \n\
             Drops by reason:\n\
             Interface  Reason        Packets\n\
             vmk0       no_route      2\n\
             vmk0       ttl_exceeded  1\n"
        );
        let quiet = format_stats(&stats[1..]);
        assert!(!quiet.contains("Drops by reason"), "{quiet}");
        assert!(!quiet.contains("super-frames"), "{quiet}");
        let mut offloaded = stats[1].clone();
        offloaded.counters.gso_forwarded = 120;
        offloaded.counters.gso_segmented = 3;
        let text = format_stats(&[offloaded]);
        assert!(
            text.ends_with(
                "TCP super-frames (offloads):\n\
                 Interface  Forwarded whole  Segmented\n\
                 vmk1       120              3\n"
            ),
            "{text}"
        );
    }
}
