//! Root only. `vmkstack demo` end to end (skipped with `SKIPPED (needs root)` outside CI, a
//! failure in CI when not root): the article's steps appear in order and nothing is left
//! behind.

mod common;

use std::process::Command;

#[test]
fn demo_replays_the_article_and_leaves_nothing_behind() {
    let Some(()) = common::require_root("demo_replays_the_article_and_leaves_nothing_behind")
    else {
        return;
    };
    let o = Command::new(env!("CARGO_BIN_EXE_vmkstack"))
        .arg("demo")
        .output()
        .expect("vmkstack demo");
    assert!(o.status.success(), "{}", common::describe(&o));
    // Rows compare independently of column widths.
    let out = common::squeeze(&String::from_utf8_lossy(&o.stdout));
    let steps = [
        "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network",
        "default 0.0.0.0 192.168.0.254 None",
        "sendto() failed (No route to host)",
        "VMkernel default gateway is 192.168.1.1",
        "Adding static route 192.168.100.0/24 to VMkernel",
        "64 bytes from 192.168.100.20: icmp_seq=0 ttl=63",
        "iqn.2026-11.lab.vmkstack:storage",
        "Read test: LUN 1 of iqn.2026-11.lab.vmkstack:storage:",
        "Export list for 192.168.100.20:",
        "Target:iqn.2026-11.lab.vmkstack:storage Portal:192.168.100.20:3260,1",
        "Total size:67108864",
        "hello.txt",
        "hello from the vmkstack lab",
        "Namespaces, TAP devices, daemons and files removed.",
    ];
    let mut at = 0;
    for s in steps {
        match out[at..].find(s) {
            Some(i) => at += i + s.len(),
            None => panic!("missing, or out of order: {s}\n{out}"),
        }
    }
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains("vmks-demo"),
        "namespaces left behind"
    );
    assert!(!std::path::Path::new("/tmp/vmks-demo").exists());
}
