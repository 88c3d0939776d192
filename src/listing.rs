//! Listings in the layouts ESX admins read every day: `esxcfg-vmknic -l` and `esxcfg-route -l`.

use std::fmt::Write as _;

use serde::Serialize;
use vmkstack_routing::{Origin, RouteEntry};
use vmkstack_stack::Config;

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
}
