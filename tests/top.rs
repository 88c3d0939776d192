//! Root only. Live rates: `vmkstack top` in a real terminal (tmux), its batch CSV against
//! iperf3's own figure, and `vmkstack stats --interval` (skipped with `SKIPPED (needs root)`
//! outside CI, a failure in CI when not root).
//!
//! Lab: the daemon runs in namespace `stack`; vmk0's TAP is in host namespace `h1`
//! (198.18.1.0/24), vmk1's in `h2` (198.18.2.0/24); the stack forwards between them.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::fixtures::routed_pair;
use common::lab::Lab;
use common::{require_root, wait_until, Netns};

fn lab(tag: &str) -> Lab {
    routed_pair(tag, "offloads = true", "", "")
}

fn ping_ok(ns: &Netns, dst: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || ns
            .exec("ping", &["-c", "1", "-W", "1", dst])
            .status
            .success()),
        "no answer from {dst}"
    );
}

fn iperf3_server(lab: &Lab) -> common::Proc {
    let p = lab
        .ns("h2")
        .spawn("iperf3", &["-s", "-1", "-B", "198.18.2.10", "-p", "5201"]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .ns("h2")
        .run("ss", &["-ltn"])
        .contains("198.18.2.10:5201")));
    p
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
fn top_batch_rates_agree_with_iperf3_and_stats_interval_prints_rates() {
    let Some(()) =
        require_root("top_batch_rates_agree_with_iperf3_and_stats_interval_prints_rates")
    else {
        return;
    };
    let lab = lab("rates");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.2.10");
    let _server = iperf3_server(&lab);

    // A paced TCP stream for 6 s; `top -b` samples every second meanwhile.
    let socket = lab.socket();
    let top = std::thread::spawn(move || -> Output {
        common::cli(&socket, &["top", "-b", "-d", "1", "-n", "7"])
    });
    let out = lab.ns("h1").run(
        "iperf3",
        &[
            "-c",
            "198.18.2.10",
            "-p",
            "5201",
            "-t",
            "6",
            "-b",
            "400M",
            "--json",
        ],
    );
    let top = top.join().expect("top thread");
    assert!(top.status.success(), "{}", common::describe(&top));
    let report: serde_json::Value = serde_json::from_str(&out).expect("iperf3 JSON");
    let iperf_mbit = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("receiver bits_per_second")
        / 1e6;

    let csv = String::from_utf8_lossy(&top.stdout);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(
        header[..6],
        ["time", "vmknic", "pkttx_s", "mbtx_s", "pktrx_s", "mbrx_s"]
    );
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (vmk, mbrx, fwd) = (col("vmknic"), col("mbrx_s"), col("forwarded_s"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 14, "7 samples of 2 vmknics: {csv}");
    let vmk0: Vec<f64> = rows
        .iter()
        .filter(|r| r[vmk] == "vmk0")
        .map(|r| r[mbrx].parse().expect("MbRX/s"))
        .collect();
    // The seconds in full flow (the first and last sample straddle the start and the end).
    let peak = vmk0.iter().copied().fold(0.0, f64::max);
    let steady: Vec<f64> = vmk0.iter().copied().filter(|v| *v > peak * 0.8).collect();
    assert!(steady.len() >= 3, "{csv}");
    let ours = median(steady);
    let diff = (ours - iperf_mbit).abs() / iperf_mbit;
    eprintln!(
        "vmk0 MbRX/s {ours:.1}, iperf3 {iperf_mbit:.1} Mbit/s ({:.1}%)",
        diff * 100.0
    );
    assert!(diff < 0.05, "MbRX/s {ours} vs iperf3 {iperf_mbit}: {csv}");
    // What vmk0 received left by vmk1: forwarded/s on vmk1 is non-zero while it flows.
    assert!(
        rows.iter()
            .any(|r| r[vmk] == "vmk1" && r[fwd].parse::<f64>().unwrap_or(0.0) > 100.0),
        "{csv}"
    );

    // stats --interval: the totals and the rates, each interval.
    let o = lab.cli(&["stats", "--interval", "0.3", "--count", "2"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("Rates over").count(), 2, "{text}");
    assert_eq!(text.matches("RX packets").count(), 2, "{text}");
    assert!(text.contains("PKTTX/s"), "{text}");
    // stats --runtime: every stage, and the handle stage saw every frame received.
    let o = lab.cli(&["stats", "--runtime", "--json"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let stages: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runtime JSON");
    let o = lab.cli(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
    let received: u64 = stats
        .as_array()
        .expect("stats")
        .iter()
        .map(|s| s["counters"]["rx_packets"].as_u64().unwrap_or(0))
        .sum();
    let stage = |name: &str| {
        stages
            .as_array()
            .and_then(|a| a.iter().find(|s| s["stage"] == name))
            .unwrap_or_else(|| panic!("no stage {name}: {stages}"))
            .clone()
    };
    let handled = stage("handle")["packets"].as_u64().unwrap_or(0);
    assert!(
        handled <= received && received - handled <= 10,
        "handled {handled}, received {received}"
    );
    assert!(stage("handle")["nanos"].as_u64().unwrap_or(0) > 0);
    for name in [
        "port-recv",
        "port-release",
        "endpoint",
        "neighbors",
        "port-flush",
    ] {
        assert!(
            stage(name)["calls"].as_u64().unwrap_or(0) > 0,
            "{name}: {stages}"
        );
    }
    let o = lab.cli(&["stats", "--runtime"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("Stage"), "{text}");
    assert!(text.contains("ns/packet"), "{text}");
    eprintln!("{text}");
    let o = lab.cli(&["stats", "--count", "2"]);
    assert!(!o.status.success(), "--count needs --interval");
    let o = lab.cli(&["top", "-d", "abc"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a number of seconds"));
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
}

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn top_live_view_in_a_terminal_sorts_and_quits_on_keys() {
    let Some(()) = require_root("top_live_view_in_a_terminal_sorts_and_quits_on_keys") else {
        return;
    };
    let lab = lab("live");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.2.10");
    let tmux = Tmux(format!("vmks-top-{}", std::process::id()));
    let cmd = format!(
        "'{}' --control '{}' top -d 0.5",
        env!("CARGO_BIN_EXE_vmkstack"),
        lab.socket()
    );
    let o = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "120",
        "-y",
        "20",
        &cmd,
    ]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let mut screen = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            screen = tmux.screen();
            screen.contains("PKTTX/s") && screen.contains("vmk1")
        }),
        "{screen}"
    );
    assert!(screen.contains("sorted by DEVICE"), "{screen}");
    // Pings through the stack show as packets per second on both vmknics.
    let pinger = lab
        .ns("h1")
        .spawn("ping", &["-i", "0.05", "-c", "60", "198.18.2.10"]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            screen = tmux.screen();
            screen.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&"vmk1")
                    && f.get(7).and_then(|v| v.parse::<f64>().ok()) > Some(5.0)
            })
        }),
        "forwarded/s on vmk1: {screen}"
    );
    drop(pinger);
    // esxtop's keys: r sorts by PKTRX/s, q quits (and the session with it).
    tmux.cmd(&["send-keys", "-t", "top", "r"]);
    assert!(
        wait_until(Duration::from_secs(5), || tmux
            .screen()
            .contains("sorted by PKTRX/s")),
        "{}",
        tmux.screen()
    );
    tmux.cmd(&["send-keys", "-t", "top", "q"]);
    assert!(
        wait_until(Duration::from_secs(5), || !tmux
            .cmd(&["has-session", "-t", "top"])
            .status
            .success()),
        "top did not quit on q: {}",
        tmux.screen()
    );
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
}
