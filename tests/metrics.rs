//! Root only. Prometheus metrics (`metrics_listen`), scraped over HTTP and read by the
//! Prometheus Python client's own parser (skipped with `SKIPPED (needs root)` outside CI, a
//! failure in CI when not root).
//!
//! Lab: the daemon runs in namespace `stack` and serves the metrics there on 127.0.0.1;
//! vmk0's TAP is in host namespace `h1` (198.18.1.0/24), vmk1's in `h2` (198.18.2.0/24).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::fixtures::routed_pair;
use common::lab::Lab;
use common::{require_root, wait_until};

const PORT: u16 = 19469;

/// Scrapes `path` in the daemon's namespace and parses it with `prometheus_client.parser`:
/// one `name|labels-as-json|value` line per sample.
const SCRAPE: &str = r#"
import json, sys, urllib.request, urllib.error
from prometheus_client.parser import text_string_to_metric_families
url = "http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2])
try:
    r = urllib.request.urlopen(url, timeout=5)
except urllib.error.HTTPError as e:
    print("status", e.code)
    sys.exit(0)
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
for fam in text_string_to_metric_families(r.read().decode()):
    for s in fam.samples:
        print("%s|%s|%s|%s" % (fam.type, s.name, json.dumps(s.labels, sort_keys=True), s.value))
"#;

/// The samples: (name, labels JSON) → value; also the family types by sample name.
fn scrape(lab: &Lab) -> (HashMap<(String, String), f64>, HashMap<String, String>) {
    let out = lab
        .stack
        .run("python3", &["-c", SCRAPE, &PORT.to_string(), "/metrics"]);
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    for l in out.lines() {
        let f: Vec<&str> = l.splitn(4, '|').collect();
        assert_eq!(f.len(), 4, "{l}");
        let v: f64 = f[3].parse().unwrap_or_else(|_| panic!("{l}"));
        types.insert(f[1].to_string(), f[0].to_string());
        samples.insert((f[1].to_string(), f[2].to_string()), v);
    }
    (samples, types)
}

#[test]
fn metrics_are_served_and_parse_with_the_prometheus_client() {
    let Some(()) = require_root("metrics_are_served_and_parse_with_the_prometheus_client") else {
        return;
    };
    let top = format!("metrics_listen = \"127.0.0.1:{PORT}\"");
    let lab = routed_pair("metrics", &top, "", "");
    let config = std::fs::read_to_string(lab.config()).expect("the configuration");
    let daemon = lab.start();
    assert!(wait_until(Duration::from_secs(10), || lab
        .ns("h1")
        .exec("ping", &["-c", "1", "-W", "1", "198.18.2.10"])
        .status
        .success()));
    lab.ns("h1")
        .run("ping", &["-c", "5", "-i", "0.1", "198.18.2.10"]);
    for _ in 0..3 {
        let o = lab.cli(&["stats"]);
        assert!(o.status.success(), "{}", common::describe(&o));
    }
    let (m, types) = scrape(&lab);
    let get = |name: &str, labels: &str| {
        m.get(&(name.to_string(), labels.to_string()))
            .copied()
            .unwrap_or_else(|| panic!("no {name}{labels} in {m:#?}"))
    };
    let vmk = |v: &str| format!("{{\"vmknic\": \"{v}\"}}");
    assert!(get("vmkstack_rx_packets_total", &vmk("vmk0")) >= 6.0);
    assert!(
        get("vmkstack_forwarded_total", &vmk("vmk1")) >= 6.0,
        "pings forwarded"
    );
    assert!(
        get("vmkstack_forwarded_total", &vmk("vmk0")) >= 6.0,
        "replies forwarded"
    );
    assert!(get("vmkstack_tx_bytes_total", &vmk("vmk1")) > 0.0);
    assert_eq!(types["vmkstack_rx_packets_total"], "counter");
    assert_eq!(
        get(
            "vmkstack_drops_total",
            "{\"reason\": \"bad_checksum\", \"vmknic\": \"vmk0\"}"
        ),
        0.0
    );
    assert!(get("vmkstack_neighbors", "{}") >= 2.0, "h1 and h2 learnt");
    assert_eq!(get("vmkstack_forwards", "{}"), 0.0);
    assert_eq!(get("vmkstack_captures", "{}"), 0.0);
    assert_eq!(types["vmkstack_neighbors"], "gauge");
    assert_eq!(
        get("vmkstack_control_operations_total", "{\"op\": \"stats\"}"),
        3.0
    );
    // The loop's turns: a histogram whose buckets only grow, ending at the count.
    assert_eq!(types["vmkstack_turn_duration_seconds_bucket"], "histogram");
    let count = get("vmkstack_turn_duration_seconds_count", "{}");
    assert!(count >= 12.0, "{count} turns");
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter(|((n, _), _)| n == "vmkstack_turn_duration_seconds_bucket")
        .map(|((_, l), v)| {
            let labels: serde_json::Value = serde_json::from_str(l).expect("labels");
            let le = labels["le"].as_str().expect("le");
            (le.parse::<f64>().unwrap_or(f64::INFINITY), *v)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().map(|b| b.1), Some(count));
    assert!(get("vmkstack_turn_duration_seconds_sum", "{}") > 0.0);

    // Counters only grow between scrapes.
    lab.ns("h1")
        .run("ping", &["-c", "2", "-i", "0.1", "198.18.2.10"]);
    let (m2, _) = scrape(&lab);
    let key = ("vmkstack_rx_packets_total".to_string(), vmk("vmk0"));
    assert!(m2[&key] >= m[&key] + 2.0);

    // Another path is not found.
    let out = lab
        .stack
        .run("python3", &["-c", SCRAPE, &PORT.to_string(), "/other"]);
    assert_eq!(out.trim(), "status 404");
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());

    // A bad address is refused with the key named, and the daemon does not start.
    let bad = config.replace(&format!("127.0.0.1:{PORT}"), "nowhere");
    std::fs::write(lab.config(), bad).expect("write the configuration");
    let o = lab.cli(&[
        "check",
        "--config",
        lab.config().to_str().unwrap_or_default(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("metrics_listen = \"nowhere\": expected address:port"),
        "{err}"
    );
}
