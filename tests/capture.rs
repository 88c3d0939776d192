//! Root only. Packet capture inside the stack (`pktcap-uw`), read back with the real
//! `tcpdump -r` and `tshark -r` (skipped with `SKIPPED (needs root)` outside CI, a failure in
//! CI when not root).
//!
//! Lab: the daemon runs in namespace `stack`; vmk0's TAP is in host namespace `h1`
//! (198.18.1.0/24), vmk1's in `h2` (198.18.2.0/24); the stack forwards between them.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::fixtures::routed_pair;
use common::lab::Lab;
use common::{require_root, wait_until, Netns, Proc};

const VMK0_MAC: &str = "02:00:00:00:01:01";

fn lab(tag: &str) -> Lab {
    let vmk0 = format!("mac = \"{VMK0_MAC}\"");
    routed_pair(tag, "offloads = true", &vmk0, "mac = \"02:00:00:00:02:01\"")
}

/// Starts `vmkstack pktcap-uw ARGS -o FILE` and waits until the capture runs (the file
/// holds its section and interface blocks, written once the daemon accepted it).
fn capture(lab: &Lab, file: &Path, args: &[&str]) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmkstack"));
    c.arg("--control")
        .arg(lab.socket())
        .arg("pktcap-uw")
        .args(args)
        .arg("-o")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let p = Proc::spawn(c);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::metadata(file)
            .is_ok_and(|m| m.len() >= 60)),
        "capture {args:?} did not start"
    );
    p
}

/// Stops a capture as Ctrl-C would and returns what it said on stderr.
fn finish(p: Proc) -> String {
    let mut p = p;
    let mut err = p.child.stderr.take().expect("stderr");
    let status = p.stop();
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut text);
    assert!(status.success(), "pktcap-uw: {status:?}: {text}");
    text
}

/// Waits (at most 20 s) for a process that ends by itself; its status and stderr.
fn wait_exit(p: &mut Proc) -> (std::process::ExitStatus, String) {
    let mut status = None;
    wait_until(Duration::from_secs(20), || {
        status = p.child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.expect("the capture did not end by itself");
    let mut err = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status, err)
}

/// `tshark -r FILE -T fields -e ...`: one line per packet, fields separated by `|`.
fn tshark(file: &Path, fields: &[&str]) -> Vec<String> {
    let mut args = vec!["-r", file.to_str().unwrap_or_default(), "-T", "fields"];
    for f in fields {
        args.extend(["-e", f]);
    }
    args.extend(["-E", "separator=|"]);
    let o = Command::new("tshark").args(&args).output().expect("tshark");
    assert!(o.status.success(), "{}", common::describe(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `tcpdump -nr FILE`: one line per packet.
fn tcpdump(file: &Path) -> Vec<String> {
    let o = Command::new("tcpdump")
        .args(["-nr", file.to_str().unwrap_or_default()])
        .output()
        .expect("tcpdump");
    assert!(o.status.success(), "{}", common::describe(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
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

/// Frames the stack must drop, with the reason each is counted under.
fn inject_malformed(h1: &Netns) {
    let h1_mac = h1
        .ip(&["-br", "link", "show", "vmk0"])
        .split_whitespace()
        .nth(2)
        .expect("h1 MAC")
        .to_string();
    let script = format!(
        r#"
import socket, struct
ours = bytes.fromhex("{VMK0_MAC}".replace(":", ""))
src = bytes.fromhex("{h1_mac}".replace(":", ""))
eth = lambda t: ours + src + struct.pack("!H", t)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 36, 1, 0, 64, 17, 0x1234,
                 socket.inet_aton("198.18.1.10"), socket.inet_aton("198.18.2.10")) + b"U" * 16
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("vmk0", 0))
s.send(eth(0x0800)[:14] + b"\x45\x00")      # truncated
s.send(eth(0x0800) + ip)                     # bad header checksum
s.send(eth(0x88b5) + b"\0" * 46)             # unknown ethertype
"#
    );
    h1.run("python3", &["-c", &script]);
}

#[test]
fn pktcap_uw_captures_each_point_with_filters_and_drop_reasons() {
    let Some(()) = require_root("pktcap_uw_captures_each_point_with_filters_and_drop_reasons")
    else {
        return;
    };
    let lab = lab("cap");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.2.10");
    let file = |n: &str| lab.dir.file(n);
    let (both, drops, fwd, endpoint, srcip) = (
        file("vmk0.pcapng"),
        file("drop.pcapng"),
        file("fwd.pcapng"),
        file("endpoint.pcapng"),
        file("srcip.pcapng"),
    );
    let c_both = capture(
        &lab,
        &both,
        &["--vmk", "vmk0", "--dir", "2", "--proto", "0x01"],
    );
    let c_drop = capture(&lab, &drops, &["--capture", "Drop"]);
    let c_fwd = capture(
        &lab,
        &fwd,
        &["--capture", "Forward", "--tcpport", "5201", "-c", "40"],
    );
    let c_end = capture(&lab, &endpoint, &["--capture", "Endpoint"]);
    let c_src = capture(
        &lab,
        &srcip,
        &["--vmk", "vmk0", "--dir", "1", "--srcip", "198.18.2.10"],
    );

    // Pings through the stack and to it, TCP through it, frames it drops.
    lab.ns("h1")
        .run("ping", &["-c", "3", "-i", "0.2", "198.18.2.10"]);
    lab.ns("h1")
        .run("ping", &["-c", "2", "-i", "0.2", "198.18.1.1"]);
    let _server = lab
        .ns("h2")
        .spawn("iperf3", &["-s", "-1", "-B", "198.18.2.10", "-p", "5201"]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .ns("h2")
        .run("ss", &["-ltn"])
        .contains("198.18.2.10:5201")));
    lab.ns("h1")
        .run("iperf3", &["-c", "198.18.2.10", "-p", "5201", "-t", "1"]);
    inject_malformed(lab.ns("h1"));
    std::thread::sleep(Duration::from_millis(300));

    // --vmk vmk0 --dir 2 --proto 0x01: the pings both ways on vmk0, nothing but ICMP.
    let said = finish(c_both);
    assert!(said.contains("Dumped"), "{said}");
    let lines = tcpdump(&both);
    let req = lines
        .iter()
        .filter(|l| l.contains("198.18.1.10 > 198.18.2.10: ICMP echo request"))
        .count();
    let rep = lines
        .iter()
        .filter(|l| l.contains("198.18.2.10 > 198.18.1.10: ICMP echo reply"))
        .count();
    assert!(req >= 3 && rep >= 3, "{lines:#?}");
    assert!(lines.iter().all(|l| l.contains("ICMP")), "{lines:#?}");
    let comments = tshark(&both, &["frame.comment", "icmp.type"]);
    assert!(comments.iter().any(|l| l == "rx vmk0|8"), "{comments:#?}");
    assert!(comments.iter().any(|l| l == "tx vmk0|0"), "{comments:#?}");

    // --capture Drop: exactly the malformed frames, each with its reason.
    finish(c_drop);
    let dropped = tshark(&drops, &["frame.comment"]);
    for reason in ["truncated", "bad_checksum", "unknown_ethertype"] {
        let want = format!("drop vmk0 reason={reason}");
        assert!(dropped.contains(&want), "{reason}: {dropped:#?}");
    }
    assert!(
        dropped.iter().all(|l| l.starts_with("drop ")),
        "{dropped:#?}"
    );
    assert!(
        tcpdump(&drops).iter().all(|l| !l.contains("ICMP echo")),
        "pings were not dropped"
    );

    // --capture Forward --tcpport 5201 -c 40: 40 forwarded TCP packets of the iperf3 stream.
    let mut c_fwd = c_fwd;
    let (status, said) = wait_exit(&mut c_fwd);
    assert!(status.success(), "{said}");
    let fwds = tshark(&fwd, &["frame.comment", "tcp.port"]);
    assert_eq!(fwds.len(), 40, "{fwds:#?}");
    for l in &fwds {
        assert!(
            l.starts_with("forward vmk0 -> vmk1") || l.starts_with("forward vmk1 -> vmk0"),
            "{l}"
        );
        assert!(l.contains("5201"), "{l}");
    }

    // --capture Endpoint: the pings to the stack's own address, raw IP, both ways.
    finish(c_end);
    let own = tcpdump(&endpoint);
    assert!(
        own.iter()
            .any(|l| l.contains("198.18.1.10 > 198.18.1.1: ICMP echo request")),
        "{own:#?}"
    );
    assert!(
        own.iter()
            .any(|l| l.contains("198.18.1.1 > 198.18.1.10: ICMP echo reply")),
        "{own:#?}"
    );

    // --srcip 198.18.2.10 --dir 1 on vmk0: only what h2 sent, leaving toward h1.
    finish(c_src);
    let src = tshark(&srcip, &["ip.src", "frame.comment"]);
    assert!(!src.is_empty());
    assert!(
        src.iter().all(|l| l.starts_with("198.18.2.10|tx vmk0")),
        "{src:#?}"
    );

    // The captures are gone from the data plane once their clients left (else the limit
    // would be reached sooner): eight run at once, a ninth is refused; forwarding goes on.
    let mut running = Vec::new();
    for k in 0..8 {
        running.push(capture(
            &lab,
            &file(&format!("many{k}.pcapng")),
            &["--dir", "2"],
        ));
    }
    let o = lab.cli(&["pktcap-uw", "-c", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("8 captures are running already"), "{err}");
    ping_ok(lab.ns("h1"), "198.18.2.10");
    for p in running {
        finish(p);
    }
    assert!(
        tcpdump(&file("many7.pcapng"))
            .iter()
            .any(|l| l.contains("ICMP echo request")),
        "the eighth capture saw the ping"
    );
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
}

#[test]
fn pktcap_uw_streams_pcapng_to_tcpdump_and_refuses_bad_filters() {
    let Some(()) = require_root("pktcap_uw_streams_pcapng_to_tcpdump_and_refuses_bad_filters")
    else {
        return;
    };
    let lab = lab("stream");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.2.10");

    // `pktcap-uw ... -o - | tcpdump -r -`: four packets, then both ends finish.
    let pipeline = format!(
        "'{bin}' --control '{sock}' pktcap-uw --vmk vmk1 --dir 2 -c 4 -o - | tcpdump -nr -",
        bin = env!("CARGO_BIN_EXE_vmkstack"),
        sock = lab.socket()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &pipeline])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let p = Proc::spawn(sh);
    std::thread::sleep(Duration::from_millis(500));
    lab.ns("h1")
        .run("ping", &["-c", "4", "-i", "0.2", "198.18.2.10"]);
    let mut p = p;
    let mut stdout = p.child.stdout.take().expect("stdout");
    let (status, said) = wait_exit(&mut p);
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
    assert!(status.success(), "{said}");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("ICMP echo request"), "{text}");

    // Bad filters are refused with a message naming them; nothing starts.
    for (args, want) in [
        (
            vec!["pktcap-uw", "--capture", "Nowhere"],
            "unknown capture point",
        ),
        (
            vec!["pktcap-uw", "--vmk", "vmk9"],
            "no vmknic or port group named `vmk9`",
        ),
        (vec!["capture", "--dir", "5"], "--dir"),
        (vec!["pktcap-uw", "--ip", "300.1.1.1"], "--ip"),
    ] {
        let o = lab.cli(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
}
