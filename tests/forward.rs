//! Root only. Port forwarding through the stack (skipped with `SKIPPED (needs root)` outside
//! CI, a failure in CI when not root).
//!
//! ```text
//! client (in the daemon's namespace) -> 127.0.0.1:PORT -> vmkstack forward
//!   -> vmk0 198.18.1.100 -> router 198.18.1.1 | 198.18.100.1 -> storage 198.18.100.20
//! ```
//! The configuration is the article's storage side after the fix ([`common::fixtures`]).

mod common;

use std::time::Duration;

use common::fixtures::{article_fixed_storage_side, storage_side};
use common::lab::Lab;
use common::{require_root, wait_until, Netns};

/// The article's storage side with `forwards` (`[[forward]]` tables) in the configuration.
fn forward_lab(tag: &str, forwards: &str) -> Lab {
    let lab = storage_side(Lab::builder(tag)).build();
    lab.write_config(&article_fixed_storage_side(
        &lab.ns("router").name,
        forwards,
    ));
    lab
}

/// Runs a Python client in the daemon's namespace; returns its stdout.
fn client(lab: &Lab, script: &str) -> String {
    let o = lab.stack.exec("python3", &["-c", script]);
    assert!(o.status.success(), "{}", common::describe(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Waits until something listens on `addr` in `ns`.
fn wait_listen(ns: &Netns, addr: &str) {
    assert!(wait_until(Duration::from_secs(5), || {
        ns.run("ss", &["-ltn"]).contains(addr)
    }));
}

/// An echo server that sends back everything and closes after the client's FIN.
const ECHO: &str = r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.100.20", 3260))
s.listen(64)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

#[test]
fn forward_relays_both_ways_with_half_close_resets_and_limits() {
    let Some(()) = require_root("forward_relays_both_ways_with_half_close_resets_and_limits")
    else {
        return;
    };
    let lab = forward_lab("fwd", "");
    let daemon = lab.start();
    let _echo = lab.ns("storage").spawn("python3", &["-c", ECHO]);
    wait_listen(lab.ns("storage"), "198.18.100.20:3260");

    let o = lab.cli(&[
        "forward",
        "127.0.0.1:13260",
        "198.18.100.20:3260",
        "--max-connections",
        "4",
    ]);
    assert!(o.status.success(), "{}", common::describe(&o));
    wait_listen(&lab.stack, "127.0.0.1:13260");

    // 1 MiB through and back, then a half-close: the echo of everything arrives, then EOF.
    let out = client(
        &lab,
        r#"
import socket, hashlib, os
data = os.urandom(1 << 20)
c = socket.create_connection(("127.0.0.1", 13260))
c.sendall(data)
c.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    got += d
print(len(got), hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest())
"#,
    );
    assert_eq!(out, "1048576 True");

    // Many connections at once, each echoed correctly.
    let out = client(
        &lab,
        r#"
import socket, threading
ok = []
def one(i):
    c = socket.create_connection(("127.0.0.1", 13260))
    msg = (b"conn-%d-" % i) * 1000
    c.sendall(msg)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    ok.append(got == msg)
for batch in range(3):
    ts = [threading.Thread(target=one, args=(batch * 4 + i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
print(sum(ok), len(ok))
"#,
    );
    assert_eq!(out, "12 12");

    // Over the limit: four held connections are served, the fifth is reset.
    let out = client(
        &lab,
        r#"
import socket, time
held = [socket.create_connection(("127.0.0.1", 13260)) for _ in range(4)]
for h in held:
    h.sendall(b"x"); h.recv(1)
extra = socket.create_connection(("127.0.0.1", 13260))
time.sleep(0.3)
try:
    extra.sendall(b"y")
    r = extra.recv(1)
    print("reset" if r == b"" else "served")
except (ConnectionResetError, BrokenPipeError):
    print("reset")
"#,
    );
    assert_eq!(out, "reset");
    let o = lab.cli(&["forward", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(v[0]["refused"].as_u64() >= Some(1), "{v}");
    assert!(v[0]["accepted"].as_u64() >= Some(17), "{v}");

    // A connection refused by the far side reaches the client as a reset.
    let o = lab.cli(&["forward", "127.0.0.1:13261", "198.18.100.20:3261"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    wait_listen(&lab.stack, "127.0.0.1:13261");
    let out = client(
        &lab,
        r#"
import socket
c = socket.create_connection(("127.0.0.1", 13261))
try:
    r = c.recv(1)
    print("eof" if r == b"" else "data")
except ConnectionResetError:
    print("reset")
"#,
    );
    assert_eq!(out, "reset");

    // Forwards are configuration: they survive a restart; removing one is saved too.
    let o = lab.cli(&["forward", "remove", "127.0.0.1:13261"]);
    assert!(o.status.success());
    assert!(daemon.stop().success());
    let _daemon = lab.start();
    wait_listen(&lab.stack, "127.0.0.1:13260");
    let o = lab.cli(&["forward", "list"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("127.0.0.1:13260") && !text.contains("13261"),
        "{text}"
    );
    // Bad forwards are refused with a clear message and change nothing.
    let o = lab.cli(&["forward", "127.0.0.1:13260", "198.18.100.20:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already forwarded"));
}

#[test]
fn forward_throughput_against_the_kernel_path() {
    let Some(()) = require_root("forward_throughput_against_the_kernel_path") else {
        return;
    };
    let lab = forward_lab(
        "fwdbw",
        "\n[[forward]]\nlisten = \"127.0.0.1:15201\"\nremote = \"198.18.100.20:5201\"\n",
    );
    let _daemon = lab.start();
    let _iperf = lab
        .ns("storage")
        .spawn("iperf3", &["-s", "-B", "198.18.100.20", "-p", "5201"]);
    wait_listen(lab.ns("storage"), "198.18.100.20:5201");
    wait_listen(&lab.stack, "127.0.0.1:15201");
    let mut client = lab.stack.command(
        "iperf3",
        &["-c", "127.0.0.1", "-p", "15201", "-t", "3", "-f", "m"],
    );
    client
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let client = client.spawn().expect("iperf3 client");
    // `forward list` shows the current rate beside the totals while the stream runs...
    std::thread::sleep(Duration::from_millis(2000));
    let listed = |lab: &Lab| -> serde_json::Value {
        let o = lab.cli(&["forward", "list", "--json"]);
        assert!(o.status.success(), "{}", common::describe(&o));
        serde_json::from_slice(&o.stdout).expect("JSON")
    };
    let during = listed(&lab);
    let through = client.wait_with_output().expect("iperf3 client");
    let through = String::from_utf8_lossy(&through.stdout).into_owned();
    let rate_out = during[0]["rate_out"].as_u64().unwrap_or(0);
    let bytes_out = during[0]["bytes_out"].as_u64().unwrap_or(0);
    eprintln!("forward list during the stream: rate_out {rate_out} B/s, bytes_out {bytes_out}");
    assert!(
        rate_out > 1_000_000 && rate_out < bytes_out,
        "a rate over the last second, not the total: {during}"
    );
    let text = String::from_utf8_lossy(&lab.cli(&["forward", "list"]).stdout).into_owned();
    assert!(text.contains("Rate out") && text.contains("B/s"), "{text}");
    // The kernel's own path from the router to the server, same run, same machine.
    let direct = lab.ns("router").run(
        "iperf3",
        &["-c", "198.18.100.20", "-p", "5201", "-t", "2", "-f", "m"],
    );
    let rate = |out: &str| -> f64 {
        out.lines()
            .find(|l| l.contains("receiver"))
            .and_then(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.iter()
                    .position(|x| *x == "Mbits/sec")
                    .and_then(|i| w.get(i - 1)?.parse().ok())
            })
            .unwrap_or(0.0)
    };
    // ... and nothing once it stopped: the interval that held the stream's last bytes closes
    // up to a second after it ended, the next one (empty) a second later, so allow some time.
    let mut after = listed(&lab);
    let stopped = wait_until(Duration::from_secs(4), || {
        after = listed(&lab);
        after[0]["rate_out"].as_u64() == Some(0)
    });
    assert!(
        stopped,
        "the rate falls to 0 once the stream stopped: {after}"
    );
    assert!(after[0]["bytes_out"].as_u64() >= Some(bytes_out), "{after}");
    let (a, b) = (rate(&through), rate(&direct));
    eprintln!(
        "forward through vmkstack: {a:.0} Mbit/s; kernel path: {b:.0} Mbit/s; ratio {:.2}",
        a / b
    );
    assert!(a > 10.0, "{through}");
    // The upload's super-frames left from smoltcp's socket buffer with a gathering write,
    // not copied into the device's ring first: `stats --runtime`'s endpoint-gather row
    // (calls: super-frames, packets: the segments they carry, at least 8 KiB each).
    let o = lab.cli(&["stats", "--runtime", "--json"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let stages: serde_json::Value = serde_json::from_slice(&o.stdout).expect("runtime JSON");
    let gather = stages
        .as_array()
        .and_then(|a| a.iter().find(|s| s["stage"] == "endpoint-gather"))
        .unwrap_or_else(|| panic!("no endpoint-gather row: {stages}"))
        .clone();
    let frames = gather["calls"].as_u64().unwrap_or(0);
    let segments = gather["packets"].as_u64().unwrap_or(0);
    eprintln!("gathered: {frames} super-frames, {segments} segments");
    // 3 s at more than 10 Mbit/s is more than 3.75 MB: over 60 super-frames of 8 KiB.
    assert!(frames > 60 && segments >= frames * 6, "{gather}");
}
