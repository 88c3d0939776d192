//! Root only. Storage over IPv6: the storage lab's servers listen on IPv6 only
//! (`scripts/storage-lab.sh up --ipv6`), and vmkstack reaches them through the Linux router
//! with its probes and with real libiscsi and libnfs clients on 127.0.0.1 forwards (skipped
//! with `SKIPPED (needs root)` outside CI, a failure in CI when not root).
//!
//! ```text
//! esx (daemon; clients on 127.0.0.1 forwards) --vmk0 2001:db8:1::100/64-- router 2001:db8:1::1
//!     | 2001:db8:100::1 -- storage 2001:db8:100::20 (tgtd, nfs-ganesha; rpcbind)
//! ```
//! vmk0 also holds the lab's IPv4 address (198.18.1.100/24) but the servers do not listen on
//! IPv4, and the daemon has no IPv4 gateway: the storage subnet is reachable only over IPv6,
//! through the IPv6 default gateway.

mod common;

use std::process::Output;
use std::time::Duration;

use common::lab::Lab;
use common::storage_lab::{
    forward_ports, iscsi_clients_through_forward, StorageLab, IQN, ROUTER6, SERVER6,
};
use common::{require_root, wait_until, Proc};

/// The ESX side: a lab of only the daemon's namespace; vmk0 (dual stack) in the storage lab's
/// router namespace, the IPv6 default gateway the router.
fn esx_lab(storage: &StorageLab, tag: &str) -> Lab {
    let lab = Lab::builder(tag).build();
    lab.write_config(&format!(
        "ipv6_default_gateway = \"{ROUTER6}\"\n\n[[vmknic]]\nname = \"vmk0\"\n\
         portgroup = \"iSCSI_SAN\"\nip = \"198.18.1.100/24\"\nipv6 = [\"2001:db8:1::100/64\"]\n\
         netns = \"{}\"\n",
        storage.router()
    ));
    lab
}

/// Starts the daemon, attaches vmk0 to the router, and waits until the storage server answers
/// an iSCSI probe over IPv6 (vmk0's address is tentative for a second: DAD).
fn start(esx: &Lab, storage: &StorageLab) -> Proc {
    let daemon = esx.spawn_daemon();
    storage.ok(&["attach", "vmk0"], Duration::from_secs(60));
    esx.wait_control();
    let target = format!("[{SERVER6}]:3260");
    assert!(
        wait_until(Duration::from_secs(15), || esx
            .cli(&["probe", "iscsi", &target, "-w", "2"])
            .status
            .success()),
        "the IPv6 iSCSI target never answered a probe: {}",
        common::describe(&esx.cli(&["probe", "iscsi", &target, "-w", "2"]))
    );
    daemon
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn storage_probes_over_ipv6() {
    let Some(()) = require_root("storage_probes_over_ipv6") else {
        return;
    };
    let lab = StorageLab::up_ipv6("p6");
    let esx = esx_lab(&lab, "p6");
    let _daemon = start(&esx, &lab);
    let bracketed = format!("[{SERVER6}]");

    // Step by step, as the IPv4 probes (tests/storage.rs); the target's portal is IPv6.
    for target in [SERVER6, &format!("{bracketed}:3260")] {
        let o = esx.cli(&["probe", "iscsi", target]);
        assert!(o.status.success(), "{target}: {}", common::describe(&o));
        let text = out(&o);
        assert!(
            text.contains("iscsi discovery login") && text.contains(IQN),
            "{text}"
        );
        assert!(text.contains(&format!("{bracketed}:3260,1")), "{text}");
    }
    let o = esx.cli(&["probe", "nfs", SERVER6]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let text = out(&o);
    assert!(text.contains("mountd v3 on tcp port 20048"), "{text}");
    assert!(
        text.contains("rpc nfs v4 NULL") && text.contains("/export"),
        "{text}"
    );

    // The read test over IPv6.
    let o = esx.cli(&["probe", "iscsi", SERVER6, "--read-test", "1"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let text = out(&o);
    for want in [
        "iscsi login (normal session)",
        "2 LUN(s): 0, 1",
        "LUN 1: disk",
        "131072 blocks of 512 bytes (64 MiB)",
        "scsi READ(16) for 1 s",
        "iscsi logout",
        &format!("Read test: LUN 1 of {IQN}: "),
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let o = esx.cli(&["probe", "iscsi", SERVER6, "--read-test", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let t = &v["read_test"];
    eprintln!("IPv6 read test through the stack: {t}");
    assert_eq!(t["capacity_bytes"], 64u64 << 20, "{v}");
    assert!(t["bytes"].as_u64().unwrap_or(0) >= 256 * 1024, "{v}");
    assert!(t["mb_per_s"].as_f64() > Some(0.0), "{v}");

    // Failures name the point, as over IPv4: a closed port, a silent host on the storage
    // subnet, no IPv6 route once the gateway is gone.
    let o = esx.cli(&["probe", "iscsi", &format!("{bracketed}:3261")]);
    assert_eq!(o.status.code(), Some(1), "{}", common::describe(&o));
    assert!(out(&o).contains("connection refused"), "{}", out(&o));
    let o = esx.cli(&["probe", "iscsi", "2001:db8:100::99", "-w", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", common::describe(&o));
    assert!(out(&o).contains("timed out"), "{}", out(&o));
    let o = esx.cli(&["esxcfg-route", "-f", "V6", "-d", "default"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let o = esx.cli(&["probe", "nfs", SERVER6]);
    assert_eq!(o.status.code(), Some(1), "{}", common::describe(&o));
    assert!(out(&o).contains("no route"), "{}", out(&o));
}

#[test]
fn real_iscsi_and_nfs_clients_over_ipv6_through_a_forward() {
    let Some(()) = require_root("real_iscsi_and_nfs_clients_over_ipv6_through_a_forward") else {
        return;
    };
    let lab = StorageLab::up_ipv6("f6");
    let esx = esx_lab(&lab, "f6");
    let _daemon = start(&esx, &lab);
    // iSCSI and NFSv4 need one port each; NFSv3 also the portmapper and mountd.
    forward_ports(
        &esx,
        &format!("[{SERVER6}]"),
        &["3260", "2049", "111", "20048"],
    );

    // iSCSI: discovery (the target reports its IPv6 portal), inquiry, capacity, a block
    // write read back.
    let ls = iscsi_clients_through_forward(&esx, "4096");
    assert!(ls.contains(&format!("Portal:[{SERVER6}]:3260,1")), "{ls}");

    // NFS: v3 (portmapper, mountd, nfs) lists, reads, and sends a 1 MiB file up and back
    // down; v4 (port 2049 only) lists and reads it back. Byte-identical everywhere. (libnfs
    // 4.0's nfs-cp cannot write over NFSv4 to ganesha, over IPv4 either: v3 writes.)
    let data: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let up = esx.dir.file("up.bin");
    std::fs::write(&up, &data).expect("file");
    esx.stack.run(
        "nfs-cp",
        &[up.to_str().expect("utf-8"), "nfs://127.0.0.1/export/up.bin"],
    );
    let served = lab.state_dir().join("export/up.bin");
    assert!(
        std::fs::read(&served).expect("served file") == data,
        "NFSv3 upload: the server's copy differs"
    );
    for (version, query) in [("v3", ""), ("v4", "?version=4")] {
        let url = |path: &str| format!("nfs://127.0.0.1/export{path}{query}");
        let ls = esx.stack.run("nfs-ls", &[&url("")]);
        assert!(
            ls.contains("hello.txt") && ls.contains("up.bin"),
            "NFS {version}: {ls}"
        );
        let cat = esx.stack.run("nfs-cat", &[&url("/hello.txt")]);
        assert_eq!(cat, "hello from the vmkstack lab\n", "NFS {version}");
        let down = esx.dir.file(&format!("down-{version}.bin"));
        esx.stack
            .run("nfs-cp", &[&url("/up.bin"), down.to_str().expect("utf-8")]);
        assert!(
            std::fs::read(&down).expect("read back") == data,
            "NFS {version} round trip differs"
        );
    }

    // The forwards carried it, each to the IPv6 server.
    let o = esx.cli(&["forward", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = v.as_array().expect("forward list is an array");
    assert_eq!(rows.len(), 4, "{v}");
    // NFS: 1 MiB up, 2 MiB down (v3 and v4) on port 2049.
    let nfs = rows
        .iter()
        .find(|f| f["listen"] == "127.0.0.1:2049")
        .expect("the 2049 forward");
    assert!(nfs["bytes_out"].as_u64() > Some(1 << 20), "{nfs}");
    assert!(nfs["bytes_in"].as_u64() > Some(2 << 20), "{nfs}");
    assert!(
        rows.iter()
            .all(|f| f["remote"].as_str().is_some_and(|r| r.contains(SERVER6))),
        "{v}"
    );
}
