//! Listings in the layouts ESX admins read every day: `esxcfg-vmknic -l` and `esxcfg-route -l`.

use std::fmt::Write as _;

use serde::Serialize;
use vmkstack_routing::{Origin, RouteEntry};
use vmkstack_stack::{Config, DEFAULT_NETSTACK};

use crate::api::{NeighborInfo, StatsInfo, VmknicInfo};

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
}

/// The vmknic rows of a configuration, in vmk order.
pub fn vmknic_rows(cfg: &Config) -> Vec<VmknicRow> {
    cfg.vmknics
        .iter()
        .flat_map(|v| {
            v.addresses().map(move |a| VmknicRow {
                interface: v.id.to_string(),
                portgroup: v.portgroup.clone(),
                ip: a.addr().to_string(),
                netmask: a.netmask().to_string(),
                broadcast: a.broadcast().to_string(),
                mac: v.mac.to_string(),
                mtu: v.mtu,
                enabled: v.enabled,
            })
        })
        .collect()
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
            };
            let rows: Vec<VmknicRow> = match v.addresses.as_slice() {
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
            rows
        })
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

/// `esxcfg-vmknic -l`.
pub fn format_vmknics(rows: &[VmknicRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.interface.clone(),
                r.portgroup.clone(),
                r.ip.clone(),
                r.netmask.clone(),
                r.broadcast.clone(),
                r.mac.clone(),
                r.mtu.to_string(),
                r.enabled.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "Interface",
            "Port Group",
            "IP Address",
            "Netmask",
            "Broadcast",
            "MAC Address",
            "MTU",
            "Enabled",
        ],
        &cells,
    )
}

/// `esxcfg-route -l`: static routes, then `Local Subnet` rows, then `default`. A route whose
/// gateway is on no vmknic subnet shows `None` as its interface.
pub fn format_routes(entries: &[RouteEntry]) -> String {
    let cells: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
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
            vec![network, e.network.netmask().to_string(), gateway, interface]
        })
        .collect();
    format!(
        "VMkernel Routes:\n{}",
        table(&["Network", "Netmask", "Gateway", "Interface"], &cells)
    )
}

/// [`table`] with a rule under the headers, as `esxcli` prints: a run of `-` as wide as each
/// column, the columns two spaces apart.
pub fn ruled_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let rule = widths.iter().map(|w| "-".repeat(*w)).collect();
    let all: Vec<Vec<String>> = std::iter::once(rule).chain(rows.iter().cloned()).collect();
    table(headers, &all)
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

/// `esxcli network ip route ipv4 list`: the rows in the daemon's (ESX) order; a `Local Subnet`
/// row shows gateway `0.0.0.0`, the default row network `default`, and every row Source
/// `MANUAL` (ESXi's word for configured routes).
pub fn format_esxcli_routes(entries: &[RouteEntry]) -> String {
    let cells: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let network = if e.origin == Origin::Default {
                "default".to_string()
            } else {
                e.network.network().to_string()
            };
            vec![
                network,
                e.network.netmask().to_string(),
                e.gateway
                    .map_or_else(|| "0.0.0.0".to_string(), |g| g.to_string()),
                e.vmknic
                    .map_or_else(|| "None".to_string(), |v| v.to_string()),
                "MANUAL".to_string(),
            ]
        })
        .collect();
    ruled_table(
        &["Network", "Netmask", "Gateway", "Interface", "Source"],
        &cells,
    )
}

/// `esxcli network ip interface list`: a block per vmknic, blocks separated by a blank line.
pub fn format_esxcli_interfaces(vmknics: &[VmknicInfo]) -> String {
    let blocks: Vec<String> = vmknics
        .iter()
        .map(|v| {
            let fields = [
                ("Name", v.name.to_string()),
                ("MAC Address", v.mac.clone()),
                ("Enabled", v.enabled.to_string()),
                ("Portset", "vmkstack".to_string()),
                ("Portgroup", v.portgroup.clone()),
                ("Netstack Instance", DEFAULT_NETSTACK.to_string()),
                ("MTU", v.mtu.to_string()),
            ];
            let mut block = format!("{}\n", v.name);
            for (key, value) in fields {
                let _ = writeln!(block, "   {key}: {value}");
            }
            block
        })
        .collect();
    blocks.join("\n")
}

/// `esxcli network ip neighbor list`: Expiry as `1199 sec`, Type `Dynamic`.
pub fn format_esxcli_neighbors(neighbors: &[NeighborInfo]) -> String {
    let cells: Vec<Vec<String>> = neighbors
        .iter()
        .map(|n| {
            vec![
                n.ip.to_string(),
                neighbor_mac(n),
                n.vmknic.to_string(),
                n.expiry_s
                    .map_or_else(|| "-".to_string(), |s| format!("{s} sec")),
                n.state.clone(),
                "Dynamic".to_string(),
            ]
        })
        .collect();
    ruled_table(
        &[
            "Neighbor",
            "Mac Address",
            "Vmknic",
            "Expiry",
            "State",
            "Type",
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
    fn test_ruled_table() {
        let t = ruled_table(&["A", "Longer"], &[vec!["xxxx".into(), "1".into()]]);
        assert_eq!(t, "A     Longer\n----  ------\nxxxx  1\n");
        assert_eq!(ruled_table(&["A", "B"], &[]), "A  B\n-  -\n");
    }

    #[test]
    fn test_esxcli_interfaces() {
        let out = format_esxcli_interfaces(&vmknics()[..2]);
        assert_eq!(
            out,
            "vmk0\n   Name: vmk0\n   MAC Address: 02:00:00:00:00:01\n   Enabled: true\n   \
             Portset: vmkstack\n   Portgroup: iSCSI_SAN\n   \
             Netstack Instance: defaultTcpipStack\n   MTU: 1500\n\n\
             vmk1\n   Name: vmk1\n   MAC Address: 02:00:00:00:00:02\n   Enabled: false\n   \
             Portset: vmkstack\n   Portgroup: VMotion\n   \
             Netstack Instance: defaultTcpipStack\n   MTU: 9000\n"
        );
        assert_eq!(format_esxcli_interfaces(&[]), "");
    }

    #[test]
    fn test_esxcli_neighbors() {
        assert_eq!(
            format_esxcli_neighbors(&neighbors()),
            "Neighbor     Mac Address        Vmknic  Expiry    State       Type\n\
             -----------  -----------------  ------  --------  ----------  -------\n\
             198.18.1.1   02:00:00:00:01:01  vmk0    1199 sec  reachable   Dynamic\n\
             198.18.2.20  (incomplete)       vmk1    -         incomplete  Dynamic\n"
        );
    }

    #[test]
    fn test_esxcli_routes_inactive_default() {
        let routes: Vec<RouteEntry> = serde_json::from_value(serde_json::json!([
            {"network": "198.18.1.0/24", "gateway": null, "vmknic": "vmk0",
             "origin": "connected", "active": true},
            {"network": "0.0.0.0/0", "gateway": "192.168.0.254", "vmknic": null,
             "origin": "default", "active": false}
        ]))
        .unwrap();
        assert_eq!(
            format_esxcli_routes(&routes),
            "Network     Netmask        Gateway        Interface  Source\n\
             ----------  -------------  -------------  ---------  ------\n\
             198.18.1.0  255.255.255.0  0.0.0.0        vmk0       MANUAL\n\
             default     0.0.0.0        192.168.0.254  None       MANUAL\n"
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
