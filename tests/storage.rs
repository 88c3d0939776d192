//! Root only. Real iSCSI and NFS clients reach real servers through vmkstack (skipped with
//! `SKIPPED (needs root)` outside CI, a failure in CI when not root).
//!
//! ```text
//! esx (daemon; clients on 127.0.0.1 forwards) --vmk0 198.18.1.100-- router 198.18.1.1
//!     | 198.18.100.1 -- storage 198.18.100.20 (tgtd, nfs-ganesha, rpcbind)
//! ```
//! The storage lab is `scripts/storage-lab.sh` ([`common::storage_lab`]); the daemon reaches
//! the storage subnet only through the router (the default gateway): the article's storage
//! side after the fix ([`common::fixtures`]).

mod common;

use std::process::Output;
use std::time::Duration;

use common::fixtures::article_fixed_storage_side;
use common::lab::Lab;
use common::storage_lab::{forward_ports, iscsi_clients_through_forward, StorageLab, IQN};
use common::{require_root, Proc};

/// The ESX side: a lab of only the daemon's namespace, its vmk0 in the storage lab's router
/// namespace.
fn esx_lab(storage: &StorageLab, tag: &str) -> Lab {
    let lab = Lab::builder(tag).build();
    lab.write_config(&article_fixed_storage_side(&storage.router(), ""));
    lab
}

/// Starts the daemon, gives the storage lab's router its side of vmk0 (`attach`), and waits
/// for the control socket.
fn start(esx: &Lab, storage: &StorageLab) -> Proc {
    let daemon = esx.spawn_daemon();
    storage.ok(&["attach", "vmk0"], Duration::from_secs(60));
    esx.wait_control();
    daemon
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn real_iscsi_and_nfs_clients_through_a_forward() {
    let Some(()) = require_root("real_iscsi_and_nfs_clients_through_a_forward") else {
        return;
    };
    let lab = StorageLab::up("st");
    let esx = esx_lab(&lab, "st");
    let _daemon = start(&esx, &lab);
    forward_ports(&esx, "198.18.100.20", &["3260", "111", "20048", "2049"]);

    // iSCSI: discovery, inquiry, capacity, then a block write read back.
    iscsi_clients_through_forward(&esx, "2048");

    // NFS: list, read, and a 1 MiB file up and back down, byte-identical.
    let ls = esx.stack.run("nfs-ls", &["nfs://127.0.0.1/export"]);
    assert!(ls.contains("hello.txt"), "{ls}");
    let cat = esx
        .stack
        .run("nfs-cat", &["nfs://127.0.0.1/export/hello.txt"]);
    assert_eq!(cat, "hello from the vmkstack lab\n");
    let up = esx.dir.file("up.bin");
    let down = esx.dir.file("down.bin");
    let data: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&up, &data).expect("file");
    esx.stack.run(
        "nfs-cp",
        &[up.to_str().expect("utf-8"), "nfs://127.0.0.1/export/up.bin"],
    );
    esx.stack.run(
        "nfs-cp",
        &[
            "nfs://127.0.0.1/export/up.bin",
            down.to_str().expect("utf-8"),
        ],
    );
    assert!(
        std::fs::read(&down).expect("read back") == data,
        "NFS round trip differs"
    );

    // The forwards carried it.
    let o = esx.cli(&["forward", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let total: u64 = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| Some(f["bytes_out"].as_u64()? + f["bytes_in"].as_u64()?))
                .sum()
        })
        .unwrap_or(0);
    assert!(total > 2 << 20, "{v}");
}

#[test]
fn storage_probes_diagnose_each_failure_point() {
    let Some(()) = require_root("storage_probes_diagnose_each_failure_point") else {
        return;
    };
    let lab = StorageLab::up("pr");
    let esx = esx_lab(&lab, "pr");
    let _daemon = start(&esx, &lab);

    let o = esx.cli(&["probe", "iscsi", "198.18.100.20"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let text = out(&o);
    assert!(
        text.contains("iscsi discovery login") && text.contains(IQN),
        "{text}"
    );
    assert!(text.contains("198.18.100.20:3260,1"), "{text}");
    let o = esx.cli(&["probe", "nfs", "198.18.100.20"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let text = out(&o);
    assert!(text.contains("mountd v3 on tcp port 20048"), "{text}");
    assert!(
        text.contains("rpc nfs v4 NULL") && text.contains("/export"),
        "{text}"
    );

    // The read test: a session to the target, its disk LUN found and read through the stack.
    let o = esx.cli(&["probe", "iscsi", "198.18.100.20", "--read-test", "1"]);
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
    let o = esx.cli(&[
        "probe",
        "iscsi",
        "198.18.100.20",
        "--read-test",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let t = &v["read_test"];
    eprintln!("read test through the stack: {t}");
    assert_eq!(t["lun"], 1, "{v}");
    assert_eq!(t["capacity_bytes"], 64u64 << 20, "{v}");
    let bytes = t["bytes"].as_u64().unwrap_or(0);
    assert!(
        bytes >= 8 * 256 * 1024 && bytes.is_multiple_of(256 * 1024),
        "{v}"
    );
    assert!(t["mb_per_s"].as_f64() > Some(1.0), "{v}");
    // Bad durations are refused by the daemon, an NFS read test by the command line.
    let o = esx.cli(&["probe", "iscsi", "198.18.100.20", "--read-test", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("give 1 to 600 seconds"),
        "{}",
        common::describe(&o)
    );
    let o = esx.cli(&["probe", "nfs", "198.18.100.20", "--read-test", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", common::describe(&o));

    // Wrong port: refused.
    let o = esx.cli(&["probe", "iscsi", "198.18.100.20:3261"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("connection refused"), "{}", out(&o));
    // NFS on a host that has only iSCSI: the portmapper port is refused.
    // Wrong host on the storage subnet: nobody answers.
    let o = esx.cli(&["probe", "iscsi", "198.18.100.99", "-w", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("timed out"), "{}", out(&o));
    // No route once the gateway is gone.
    let o = esx.cli(&["route", "remove", "default"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    let o = esx.cli(&["probe", "nfs", "198.18.100.20"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("no route"), "{}", out(&o));
    // A host on the vmknic's own subnet that does not exist: ARP fails.
    let o = esx.cli(&["probe", "iscsi", "198.18.1.77", "-w", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("does not answer ARP"), "{}", out(&o));
}
