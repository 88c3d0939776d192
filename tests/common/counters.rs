//! The per-vmknic counters the daemon logs when it stops (`vmknic down` lines with
//! `key=value` pairs and `drops=reason:n,...`), read back by the data-plane tests, and the
//! kernel routers' own forwarding counter.

use super::lab::Lab;

/// The counters the daemon logs for `vmknic` when it stops (`key=value` pairs).
pub fn counters<'a>(log: &'a str, vmknic: &str) -> &'a str {
    log.lines()
        .rev()
        .find(|l| l.contains("vmknic down") && l.contains(&format!("vmknic={vmknic}")))
        .unwrap_or_else(|| panic!("no counters for {vmknic} in the log:\n{log}"))
}

/// One counter from a `vmknic down` line; a missing key fails the test (drops are listed
/// only when non-zero, so ask [`drops`] for those).
pub fn counter(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in: {line}"))
}

/// A drop counter from a `vmknic down` line (0 when that reason never happened).
pub fn drops(line: &str, reason: &str) -> u64 {
    let list = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("drops="))
        .unwrap_or_else(|| panic!("no drops= in: {line}"));
    list.split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{reason}:")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// IPv4 datagrams the Linux router in namespace `role` has forwarded so far (`Ip:
/// ForwDatagrams` in its /proc/net/snmp). Tests prove which router carried a netstack's
/// traffic with it: a link's tx_packets also counts the kernel's own IPv6 chatter after
/// link-up (router solicitations, MLD reports), which once showed up as a "leaked" packet.
pub fn forwarded_ipv4(lab: &Lab, role: &str) -> u64 {
    let snmp = lab.ns(role).run("cat", &["/proc/net/snmp"]);
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next(), ip.next());
    names
        .zip(values)
        .and_then(|(n, v)| {
            n.split_whitespace()
                .zip(v.split_whitespace())
                .find(|(k, _)| *k == "ForwDatagrams")
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("{role}: no Ip ForwDatagrams in:\n{snmp}"))
}
