//! The forwarding benchmark's reference of our own kind (`scripts/bench-forward.sh`): two TAPs
//! joined by two threads doing blocking `read` then `write`, one per direction, with no
//! parsing and no routing: a userspace "cable". With `--offload` the TAPs carry virtio-net
//! headers and TCP super-frames pass through whole (the limit of plain TAP I/O that vmkstack,
//! which also routes, is measured against); without it every frame is MTU-sized.
//!
//! ```sh
//! cargo run --release --example naive_copy -- [--offload] TAP0 NETNS0 TAP1 NETNS1
//! ```
//! Run as root in a namespace of your own: it creates the two TAPs, moves their kernel sides
//! into NETNS0 and NETNS1, prints `ready`, and copies until killed.

use std::process::{Command, ExitCode};
use std::sync::Arc;

use tun_rs::{DeviceBuilder, Layer, SyncDevice};

fn tap(name: &str, netns: &str, offload: bool) -> Result<SyncDevice, String> {
    let dev = DeviceBuilder::new()
        .name(name)
        .layer(Layer::L2)
        .packet_information(false)
        .offload(offload)
        .mtu(1500)
        .build_sync()
        .map_err(|e| format!("cannot create TAP {name}: {e}"))?;
    for args in [
        vec!["link", "set", "dev", name, "netns", netns],
        vec!["-n", netns, "link", "set", "dev", name, "up"],
    ] {
        let ok = Command::new("ip")
            .args(&args)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("ip {} failed", args.join(" ")));
        }
    }
    Ok(dev)
}

/// Copies frames from `from` to `to` until an I/O error. With offloads each read is a
/// virtio-net header and its frame (up to a 64 KiB super-frame), written as it came.
fn copy(from: &SyncDevice, to: &SyncDevice) -> std::io::Error {
    let mut buf = vec![0u8; 65536 + 1024];
    loop {
        let n = match from.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => return e,
        };
        // A full queue on the other side drops the frame, as a cable would.
        if let Err(e) = to.send(&buf[..n]) {
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return e;
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let offload = args.first().is_some_and(|a| a == "--offload");
    if offload {
        args.remove(0);
    }
    let [tap0, ns0, tap1, ns1] = args.as_slice() else {
        eprintln!("usage: naive_copy [--offload] TAP0 NETNS0 TAP1 NETNS1");
        return ExitCode::from(2);
    };
    let devs = tap(tap0, ns0, offload).and_then(|a| Ok((a, tap(tap1, ns1, offload)?)));
    let (a, b) = match devs {
        Ok((a, b)) => (Arc::new(a), Arc::new(b)),
        Err(e) => {
            eprintln!("naive_copy: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ready");
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    let back = std::thread::spawn(move || copy(&b2, &a2));
    let e = copy(&a, &b);
    eprintln!("naive_copy: {e}");
    let _ = back.join();
    ExitCode::FAILURE
}
