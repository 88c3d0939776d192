//! Live rates: `vmkstack top` (esxtop's network view: one row per vmknic, refreshed every
//! `-d` seconds, keys to sort and quit; `-b` prints CSV for plotting) and `vmkstack stats
//! --interval SECS` (the totals and the rates of each interval).
//!
//! Rates are differences of the daemon's cumulative counters between two samples, divided by
//! the time between them as the client measured it. Mb is 10^6 bits, as esxtop and iperf3
//! count. `%DRPTX` counts the drops of packets on their way out (a full queue, a neighbour
//! that never answered) against those sent; `%DRPRX` every other drop against the frames
//! received.

use std::io::{IsTerminal, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::Value;

use crate::api::{Action, StageInfo, StatsInfo};
use crate::client::{call_as, CliError, Console, Control};
use crate::listing::format_stats;

/// Drop reasons that happen to packets on their way out.
const TX_DROPS: [&str; 2] = ["queue_full", "neighbor_unreachable"];

/// `vmkstack top`'s arguments (esxtop's names).
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Batch mode: CSV on standard output, one row per vmknic per sample
    #[arg(short = 'b')]
    pub batch: bool,
    /// Seconds between samples (decimals allowed)
    #[arg(short = 'd', value_name = "SECS", default_value = "1",
          value_parser = crate::personality::vmkping::parse_seconds)]
    pub delay: Duration,
    /// Samples to show, then exit (default: until `q` or Ctrl-C)
    #[arg(short = 'n', value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// `vmkstack stats`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print the totals and the rates over each interval of SECS seconds, until Ctrl-C or
    /// --count.
    #[arg(long, value_name = "SECS", value_parser = crate::personality::vmkping::parse_seconds)]
    pub interval: Option<Duration>,
    /// What each stage of the data plane cost so far: calls, packets, nanoseconds per packet
    /// (VPP's `show runtime`).
    #[arg(long, conflicts_with = "interval")]
    pub runtime: bool,
    /// With --interval: intervals to print, then exit.
    #[arg(long, value_name = "N", requires = "interval",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// One reading of the daemon's counters.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken (the client's clock).
    pub at: Instant,
    /// The per-vmknic counters.
    pub stats: Vec<StatsInfo>,
    /// Neighbour table entries.
    pub neighbors: usize,
    /// Port forwards configured.
    pub forwards: usize,
}

/// One vmknic's rates between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    /// `vmkN`.
    pub vmknic: String,
    /// Frames sent per second.
    pub pkt_tx: f64,
    /// Megabits sent per second.
    pub mb_tx: f64,
    /// Frames received per second.
    pub pkt_rx: f64,
    /// Megabits received per second.
    pub mb_rx: f64,
    /// Outgoing packets dropped, percent of those sent and dropped.
    pub drp_tx: f64,
    /// Received frames dropped, percent of those received.
    pub drp_rx: f64,
    /// Packets forwarded out of it per second.
    pub fwd: f64,
}

fn tx_rx_drops(s: &StatsInfo) -> (u64, u64) {
    s.counters.drops.iter().fold((0, 0), |(tx, rx), (r, n)| {
        if TX_DROPS.contains(&r.as_str()) {
            (tx + n, rx)
        } else {
            (tx, rx + n)
        }
    })
}

fn pct(part: u64, whole: u64) -> f64 {
    match whole {
        0 => 0.0,
        w => part as f64 * 100.0 / w as f64,
    }
}

/// The rates of each vmknic present in both samples (a counter that went backwards, after a
/// daemon restart, counts from zero).
pub fn rates(prev: &Sample, cur: &Sample) -> Vec<Rates> {
    let secs = cur.at.saturating_duration_since(prev.at).as_secs_f64();
    let per_s = |d: u64| if secs > 0.0 { d as f64 / secs } else { 0.0 };
    cur.stats
        .iter()
        .filter_map(|c| {
            let p = prev.stats.iter().find(|p| p.vmknic == c.vmknic)?;
            let d = |a: u64, b: u64| if a >= b { a - b } else { a };
            let (cc, pc) = (&c.counters, &p.counters);
            let ((ctx, crx), (ptx, prx)) = (tx_rx_drops(c), tx_rx_drops(p));
            let (tx, rx) = (
                d(cc.tx_packets, pc.tx_packets),
                d(cc.rx_packets, pc.rx_packets),
            );
            let (dtx, drx) = (d(ctx, ptx), d(crx, prx));
            Some(Rates {
                vmknic: c.vmknic.clone(),
                pkt_tx: per_s(tx),
                mb_tx: per_s(d(cc.tx_bytes, pc.tx_bytes)) * 8.0 / 1e6,
                pkt_rx: per_s(rx),
                mb_rx: per_s(d(cc.rx_bytes, pc.rx_bytes)) * 8.0 / 1e6,
                drp_tx: pct(dtx, tx + dtx),
                drp_rx: pct(drx, rx),
                fwd: per_s(d(cc.forwarded, pc.forwarded)),
            })
        })
        .collect()
}

/// How `top` orders its rows (esxtop's keys: `t`, `T`, `r`, `R`, `N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By vmknic number.
    Name,
    /// By PKTTX/s, highest first.
    PktTx,
    /// By MbTX/s.
    MbTx,
    /// By PKTRX/s.
    PktRx,
    /// By MbRX/s.
    MbRx,
}

impl Sort {
    /// The order a key selects.
    pub fn from_key(k: u8) -> Option<Sort> {
        Some(match k {
            b'N' | b'n' => Sort::Name,
            b't' => Sort::PktTx,
            b'T' => Sort::MbTx,
            b'r' => Sort::PktRx,
            b'R' => Sort::MbRx,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Sort::Name => "DEVICE",
            Sort::PktTx => "PKTTX/s",
            Sort::MbTx => "MbTX/s",
            Sort::PktRx => "PKTRX/s",
            Sort::MbRx => "MbRX/s",
        }
    }

    /// Orders `rows`.
    pub fn apply(self, rows: &mut [Rates]) {
        let num = |v: &str| {
            v.strip_prefix("vmk")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        let key = |r: &Rates| match self {
            Sort::Name => 0.0,
            Sort::PktTx => r.pkt_tx,
            Sort::MbTx => r.mb_tx,
            Sort::PktRx => r.pkt_rx,
            Sort::MbRx => r.mb_rx,
        };
        rows.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| num(&a.vmknic).cmp(&num(&b.vmknic)))
        });
    }
}

/// The live view's screen: a summary line, then one row per vmknic.
pub fn format_top(rows: &[Rates], sample: &Sample, sort: Sort) -> String {
    let mut s = format!(
        "vmkstack top  {} vmknics  {} neighbours  {} forwards  sorted by {}  \
         (keys: t T r R N sort, q quit)\n\n",
        rows.len(),
        sample.neighbors,
        sample.forwards,
        sort.column()
    );
    s.push_str(&format!(
        "{:<8} {:>10} {:>9} {:>10} {:>9} {:>7} {:>7} {:>10}\n",
        "DEVICE", "PKTTX/s", "MbTX/s", "PKTRX/s", "MbRX/s", "%DRPTX", "%DRPRX", "FWD/s"
    ));
    for r in rows {
        s.push_str(&format!(
            "{:<8} {:>10.2} {:>9.2} {:>10.2} {:>9.2} {:>7.2} {:>7.2} {:>10.2}\n",
            r.vmknic, r.pkt_tx, r.mb_tx, r.pkt_rx, r.mb_rx, r.drp_tx, r.drp_rx, r.fwd
        ));
    }
    s
}

/// The batch mode's header row.
pub const CSV_HEADER: &str =
    "time,vmknic,pkttx_s,mbtx_s,pktrx_s,mbrx_s,drptx_pct,drprx_pct,forwarded_s,neighbors,forwards";

/// The batch mode's rows for one sample taken at `unix_s` (seconds since the epoch).
pub fn csv_rows(unix_s: f64, rows: &[Rates], sample: &Sample) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{unix_s:.3},{},{:.3},{:.6},{:.3},{:.6},{:.3},{:.3},{:.3},{},{}\n",
                r.vmknic,
                r.pkt_tx,
                r.mb_tx,
                r.pkt_rx,
                r.mb_rx,
                r.drp_tx,
                r.drp_rx,
                r.fwd,
                sample.neighbors,
                sample.forwards
            )
        })
        .collect()
}

fn fail(e: crate::api::ClientError) -> CliError {
    CliError::from_client("vmkstack", &e)
}

/// Reads the counters, the neighbour table's size and the forwards' count.
pub fn sample(ctl: &mut dyn Control) -> Result<Sample, CliError> {
    let stats: Vec<StatsInfo> = call_as(ctl, Action::Stats).map_err(fail)?;
    let at = Instant::now();
    let count = |v: Value| v.as_array().map_or(0, Vec::len);
    let neighbors = count(ctl.call(Action::NeighborList).map_err(fail)?);
    let forwards = count(ctl.call(Action::ForwardList).map_err(fail)?);
    Ok(Sample {
        at,
        stats,
        neighbors,
        forwards,
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The terminal in esxtop's mode (keys without Enter, no echo) until dropped. Uses `stty`
/// on the controlling terminal, so the CLI keeps no unsafe code.
struct RawTerminal {
    saved: Option<String>,
}

impl RawTerminal {
    fn enter() -> RawTerminal {
        let stty = |args: &[&str]| {
            Command::new("stty")
                .args(args)
                .stdin(Stdio::inherit())
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
        };
        let saved = stty(&["-g"]).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if saved.is_some() {
            stty(&["-icanon", "-echo", "min", "0", "time", "0"]);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = Command::new("stty").arg(s).stdin(Stdio::inherit()).status();
        }
    }
}

/// Runs `vmkstack top`.
pub fn run_top(
    args: &TopArgs,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let stop = vmkstack_stack::daemon::shutdown_on_signals()
        .map(|s| s.shutdown)
        .map_err(|e| CliError::Failed(format!("vmkstack: signals: {e}")))?;
    let interactive = !args.batch && std::io::stdin().is_terminal();
    let _raw = interactive.then(RawTerminal::enter);
    let mut sort = Sort::Name;
    let mut prev = sample(ctl)?;
    if args.batch {
        console.println(CSV_HEADER);
    }
    let mut shown = 0;
    let mut stdin = std::io::stdin();
    'outer: while args.count.is_none_or(|n| shown < n) {
        // Wait out the delay in small steps, answering keys as they come.
        let until = Instant::now() + args.delay;
        let mut redraw = false;
        while Instant::now() < until && !redraw {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            if interactive {
                let mut key = [0u8; 1];
                if let Ok(1) = stdin.read(&mut key) {
                    match key[0] {
                        b'q' | b'Q' => break 'outer,
                        k => {
                            if let Some(s) = Sort::from_key(k) {
                                sort = s;
                                redraw = shown > 0;
                            }
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50).min(args.delay));
        }
        if redraw {
            // A new order: the same rates again, at once.
            let cur = sample(ctl)?;
            let mut rows = rates(&prev, &cur);
            sort.apply(&mut rows);
            console.print(&format!("\x1b[H\x1b[2J{}", format_top(&rows, &cur, sort)));
            continue;
        }
        let cur = sample(ctl)?;
        let mut rows = rates(&prev, &cur);
        sort.apply(&mut rows);
        if args.batch {
            console.print(&csv_rows(unix_now(), &rows, &cur));
        } else {
            console.print(&format!("\x1b[H\x1b[2J{}", format_top(&rows, &cur, sort)));
        }
        prev = cur;
        shown += 1;
    }
    Ok(())
}

/// The `stats --runtime` tables: per stage, calls, packets, ns per call and per packet; one
/// table per netstack, each under its name, when the rows name netstacks.
pub fn format_runtime(stages: &[StageInfo]) -> String {
    if stages.iter().all(|st| st.netstack.is_none()) {
        return runtime_table(stages);
    }
    let mut s = String::new();
    let mut names: Vec<&str> = Vec::new();
    for st in stages {
        let n = st.netstack.as_deref().unwrap_or_default();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    for (i, n) in names.iter().enumerate() {
        let rows: Vec<StageInfo> = stages
            .iter()
            .filter(|st| st.netstack.as_deref().unwrap_or_default() == *n)
            .cloned()
            .collect();
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&format!("Netstack {n}:\n"));
        s.push_str(&runtime_table(&rows));
    }
    s
}

/// One netstack's `stats --runtime` table.
fn runtime_table(stages: &[StageInfo]) -> String {
    let mut s = format!(
        "{:<13} {:>12} {:>14} {:>10} {:>10} {:>12}\n",
        "Stage", "Calls", "Packets", "ns/call", "ns/packet", "packets/call"
    );
    for st in stages {
        let per = |d: u64| match d {
            0 => "-".to_string(),
            d => format!("{:.1}", st.nanos as f64 / d as f64),
        };
        s.push_str(&format!(
            "{:<13} {:>12} {:>14} {:>10} {:>10} {:>12}\n",
            st.stage,
            st.calls,
            st.packets,
            per(st.calls),
            per(st.packets),
            match st.calls {
                0 => "-".to_string(),
                c => format!("{:.1}", st.packets as f64 / c as f64),
            }
        ));
    }
    s
}

/// Runs `vmkstack stats --runtime`.
pub fn run_runtime(
    json: bool,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let v = ctl.call(Action::Runtime).map_err(fail)?;
    if json {
        return console.json(&v);
    }
    let stages: Vec<StageInfo> = serde_json::from_value(v)
        .map_err(|e| CliError::Failed(format!("vmkstack: bad answer: {e}")))?;
    console.print(&format_runtime(&stages));
    Ok(())
}

/// Runs `vmkstack stats --interval SECS`: every interval, the totals and the rates.
pub fn run_stats_interval(
    every: Duration,
    count: Option<u64>,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let stop = vmkstack_stack::daemon::shutdown_on_signals()
        .map(|s| s.shutdown)
        .map_err(|e| CliError::Failed(format!("vmkstack: signals: {e}")))?;
    let mut prev = sample(ctl)?;
    let mut shown = 0;
    while count.is_none_or(|n| shown < n) {
        let until = Instant::now() + every;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50).min(every));
        }
        let cur = sample(ctl)?;
        let mut rows = rates(&prev, &cur);
        Sort::Name.apply(&mut rows);
        console.print(&format!(
            "{}\nRates over {:.1} s:\n{}\n",
            format_stats(&cur.stats),
            cur.at.saturating_duration_since(prev.at).as_secs_f64(),
            format_top(&rows, &cur, Sort::Name)
                .lines()
                .skip(2)
                .collect::<Vec<_>>()
                .join("\n")
        ));
        prev = cur;
        shown += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StatsInfo;

    fn stats(
        vmk: &str,
        rx: u64,
        rx_bytes: u64,
        tx: u64,
        fwd: u64,
        drops: &[(&str, u64)],
    ) -> StatsInfo {
        serde_json::from_value(serde_json::json!({
            "vmknic": vmk,
            "counters": {
                "rx_packets": rx, "rx_bytes": rx_bytes, "tx_packets": tx, "tx_bytes": tx * 100,
                "forwarded": fwd, "delivered": 0, "icmp_errors": 0,
                "drops": drops.iter().map(|(r, n)| (r.to_string(), *n)).collect::<Vec<_>>(),
            }
        }))
        .unwrap()
    }

    #[test]
    fn test_rates() {
        let t0 = Instant::now();
        let a = Sample {
            at: t0,
            stats: vec![
                stats("vmk0", 100, 10_000, 50, 0, &[]),
                stats("vmk10", 0, 0, 0, 0, &[]),
            ],
            neighbors: 1,
            forwards: 0,
        };
        let b = Sample {
            at: t0 + Duration::from_secs(2),
            stats: vec![
                stats(
                    "vmk0",
                    300,
                    2_010_000,
                    250,
                    150,
                    &[("bad_checksum", 20), ("queue_full", 50)],
                ),
                stats("vmk10", 10, 1000, 4, 0, &[]),
                stats("vmk2", 5, 5, 5, 5, &[]),
            ],
            neighbors: 2,
            forwards: 1,
        };
        let r = rates(&a, &b);
        assert_eq!(r.len(), 2, "vmk2 is new: no rate yet");
        let v = &r[0];
        assert_eq!(v.pkt_rx, 100.0);
        assert_eq!(v.mb_rx, 8.0);
        assert_eq!(v.pkt_tx, 100.0);
        assert_eq!(v.mb_tx, 0.08);
        assert_eq!(v.fwd, 75.0);
        assert_eq!(v.drp_rx, 10.0, "20 of 200 received");
        assert_eq!(v.drp_tx, 20.0, "50 of 250 on the way out");
        let mut rows = r.clone();
        Sort::PktRx.apply(&mut rows);
        assert_eq!(rows[0].vmknic, "vmk0");
        Sort::Name.apply(&mut rows);
        assert_eq!(rows[1].vmknic, "vmk10");
        let screen = format_top(&rows, &b, Sort::PktRx);
        assert!(screen.contains("2 neighbours  1 forwards  sorted by PKTRX/s"));
        assert!(screen.contains("PKTTX/s"), "{screen}");
        let csv = csv_rows(1.5, &rows, &b);
        assert_eq!(csv.lines().count(), 2);
        assert!(
            csv.starts_with(
                "1.500,vmk0,100.000,0.080000,100.000,8.000000,20.000,10.000,75.000,2,1\n"
            ),
            "{csv}"
        );
        assert_eq!(
            CSV_HEADER.split(',').count(),
            csv.lines().next().unwrap().split(',').count()
        );
        assert_eq!(Sort::from_key(b'x'), None);
    }

    #[test]
    fn test_format_runtime() {
        let t = format_runtime(&[
            StageInfo {
                stage: "handle".into(),
                calls: 10,
                packets: 320,
                nanos: 32_000,
                netstack: None,
            },
            StageInfo {
                stage: "neighbors".into(),
                calls: 4,
                packets: 0,
                nanos: 400,
                netstack: None,
            },
        ]);
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0][3], "ns/call");
        assert_eq!(rows[1], ["handle", "10", "320", "3200.0", "100.0", "32.0"]);
        assert_eq!(rows[2], ["neighbors", "4", "0", "100.0", "-", "0.0"]);
        assert_eq!(rows.len(), 3);
    }

    /// Several netstacks: a table each, under its name, in the daemon's order.
    #[test]
    fn test_format_runtime_netstacks() {
        let row = |stage: &str, calls: u64, netstack: &str| StageInfo {
            stage: stage.into(),
            calls,
            packets: calls * 2,
            nanos: calls * 100,
            netstack: Some(netstack.into()),
        };
        let t = format_runtime(&[
            row("handle", 10, "defaultTcpipStack"),
            row("neighbors", 4, "defaultTcpipStack"),
            row("handle", 3, "vmotion"),
            row("neighbors", 1, "vmotion"),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Netstack defaultTcpipStack:");
        assert!(lines[1].starts_with("Stage "), "{t}");
        assert!(
            lines[2].starts_with("handle ") && lines[2].contains(" 10 "),
            "{t}"
        );
        assert_eq!(lines[4], "");
        assert_eq!(lines[5], "Netstack vmotion:");
        assert!(
            lines[7].starts_with("handle ") && lines[7].contains(" 3 "),
            "{t}"
        );
        assert_eq!(lines.len(), 9, "{t}");
    }
}
