//! The per-vmknic counters the daemon logs when it stops (`vmknic down` lines with
//! `key=value` pairs and `drops=reason:n,...`), read back by the data-plane tests.

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
