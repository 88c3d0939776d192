//! Storage probes from the stack itself, what an ESX admin checks when a datastore is
//! unreachable: `probe iscsi` (connect, discovery Login, SendTargets; with `--read-test`, then
//! a read test of the first target, [`super::iscsi_read`]) and `probe nfs` (ONC RPC NULL calls
//! to the portmapper, mountd and nfs, and MOUNT EXPORT). Each runs as a chain of TCP exchanges
//! over smoltcp sockets, driven by the event loop; every failure point has its own diagnosis.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use vmkstack_routing::VmknicId;

use super::iscsi_read::ReadTest;
use super::Endpoint;
use crate::engine::SocketError;
use vmkstack_api::{Check, ExportInfo, ProbeReport, TargetInfo};

use vmkstack_storage_wire::{self as storage, Export, Target};

/// Our initiator name in discovery logins.
pub const INITIATOR: &str = "iqn.2026-11.org.vmkstack:probe";

/// A discovered target as the report lists it.
fn target_info(t: Target) -> TargetInfo {
    TargetInfo {
        name: t.name,
        portals: t.portals,
    }
}

/// An export as the report lists it.
fn export_info(e: Export) -> ExportInfo {
    ExportInfo {
        path: e.path,
        groups: e.groups,
    }
}

/// The planned exchanges.
#[derive(Debug, Clone)]
enum Step {
    /// iSCSI: login then SendTargets on one connection.
    IscsiLogin,
    IscsiText {
        stat_sn: u32,
    },
    /// RPC NULL (or GETPORT / EXPORT) call to `prog`/`vers` on `port`.
    Rpc {
        prog: u32,
        vers: u32,
        proc_: u32,
        port: u16,
        label: &'static str,
    },
}

/// A probe in flight.
pub struct Probe {
    report: ProbeReport,
    via: Option<VmknicId>,
    timeout: Duration,
    steps: Vec<Step>,
    conn: Option<Conn>,
    xid: u32,
    /// Ports learned from the portmapper: (prog, vers) → port.
    ports: Vec<((u32, u32), u16)>,
    /// The read test asked for, once discovery is done.
    read: Read,
}

/// The read test of an iSCSI probe.
enum Read {
    /// None asked for.
    No,
    /// Asked for, for this long: starts when discovery succeeded.
    Asked(Duration),
    Running(Box<ReadTest>),
}

struct Conn {
    handle: SocketHandle,
    port: u16,
    started: Instant,
    deadline: Instant,
    connected: bool,
    sent: bool,
    buf: Vec<u8>,
    step: Step,
}

/// The outcome of driving a probe once.
pub enum Progress {
    /// Still running.
    Running,
    /// Finished (successfully or not).
    Done(ProbeReport),
}

impl Probe {
    /// An iSCSI probe of `host:port`; with `read_test`, then a read test of that long.
    pub fn iscsi(
        host: IpAddr,
        port: u16,
        via: Option<VmknicId>,
        timeout: Duration,
        read_test: Option<Duration>,
    ) -> Probe {
        let mut p = Probe::new("iscsi", host, via, timeout, vec![Step::IscsiLogin], port);
        if let Some(d) = read_test {
            p.read = Read::Asked(d);
        }
        p
    }

    /// An NFS probe of `host` (portmapper on 111, then mountd and nfs where it says).
    pub fn nfs(host: IpAddr, via: Option<VmknicId>, timeout: Duration) -> Probe {
        use storage::{MOUNT, NFS, PORTMAP};
        let steps = vec![
            Step::Rpc {
                prog: PORTMAP,
                vers: 2,
                proc_: 0,
                port: 111,
                label: "portmapper v2 NULL",
            },
            Step::Rpc {
                prog: PORTMAP,
                vers: 2,
                proc_: 3,
                port: 111,
                label: "portmapper GETPORT mountd v3",
            },
            Step::Rpc {
                prog: PORTMAP,
                vers: 2,
                proc_: 3,
                port: 111,
                label: "portmapper GETPORT nfs v3",
            },
            Step::Rpc {
                prog: MOUNT,
                vers: 3,
                proc_: 0,
                port: 0,
                label: "mountd v3 NULL",
            },
            Step::Rpc {
                prog: MOUNT,
                vers: 3,
                proc_: 5,
                port: 0,
                label: "mountd v3 EXPORT",
            },
            Step::Rpc {
                prog: NFS,
                vers: 3,
                proc_: 0,
                port: 0,
                label: "nfs v3 NULL",
            },
            Step::Rpc {
                prog: NFS,
                vers: 4,
                proc_: 0,
                port: 2049,
                label: "nfs v4 NULL",
            },
        ];
        Probe::new("nfs", host, via, timeout, steps, 0)
    }

    fn new(
        kind: &str,
        host: IpAddr,
        via: Option<VmknicId>,
        timeout: Duration,
        mut steps: Vec<Step>,
        port: u16,
    ) -> Probe {
        steps.reverse();
        let mut p = Probe {
            report: ProbeReport {
                kind: kind.to_string(),
                host,
                checks: Vec::new(),
                targets: Vec::new(),
                exports: Vec::new(),
                ok: false,
                read_test: None,
            },
            via,
            timeout,
            steps,
            conn: None,
            xid: 0x564b_0001,
            ports: Vec::new(),
            read: Read::No,
        };
        if kind == "iscsi" {
            p.ports.push(((0, 0), port));
        }
        p
    }

    fn check(&mut self, what: String, ok: bool, detail: String, since: Instant) {
        self.report.checks.push(Check {
            what,
            ok,
            detail,
            us: since.elapsed().as_micros() as u64,
        });
    }

    /// The port a step talks to.
    fn port_for(&self, step: &Step) -> u16 {
        match *step {
            Step::IscsiLogin | Step::IscsiText { .. } => {
                self.ports.first().map_or(3260, |(_, p)| *p)
            }
            Step::Rpc {
                prog, vers, port, ..
            } => {
                if port != 0 {
                    return port;
                }
                self.ports
                    .iter()
                    .find(|(k, _)| *k == (prog, vers))
                    .map_or(0, |(_, p)| *p)
            }
        }
    }

    /// Drives the probe: connects, sends, reads, moves to the next step.
    pub fn poll(&mut self, stack: &mut impl Endpoint) -> Progress {
        loop {
            if self.conn.is_none() {
                let Some(step) = self.steps.pop() else {
                    return self.after_discovery(stack);
                };
                let port = self.port_for(&step);
                if port == 0 {
                    let what = step_label(&step);
                    self.check(
                        what,
                        false,
                        "not registered with the portmapper (program not running?)".into(),
                        Instant::now(),
                    );
                    continue;
                }
                let started = Instant::now();
                let dst = SocketAddr::new(self.report.host, port);
                match stack.tcp_connect(dst, self.via, 65536, 16384) {
                    Ok(handle) => {
                        self.conn = Some(Conn {
                            handle,
                            port,
                            started,
                            deadline: started + self.timeout,
                            connected: false,
                            sent: false,
                            buf: Vec::new(),
                            step,
                        });
                        stack.poll_local();
                    }
                    Err(e) => {
                        let detail = match e {
                            SocketError::NoRoute(r) => format!("no route: {r}"),
                            e => e.to_string(),
                        };
                        self.check(format!("tcp connect {dst}"), false, detail, started);
                        return self.finish(stack);
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let sock = stack.sockets().get_mut::<tcp::Socket>(conn.handle);
            let dst = SocketAddr::new(self.report.host, conn.port);
            let state = sock.state();
            if !conn.connected {
                match state {
                    tcp::State::Established => {
                        conn.connected = true;
                        let (since, what) = (conn.started, format!("tcp connect {dst}"));
                        let src = sock
                            .local_endpoint()
                            .map(|e| format!("from {e}"))
                            .unwrap_or_default();
                        self.check(what, true, src, since);
                        continue;
                    }
                    tcp::State::Closed => {
                        let (since, what) = (conn.started, format!("tcp connect {dst}"));
                        self.close(stack);
                        self.check(what, false, "connection refused".into(), since);
                        return self.finish(stack);
                    }
                    _ if Instant::now() >= conn.deadline => {
                        let (since, what) = (conn.started, format!("tcp connect {dst}"));
                        // Is the next hop (the host itself, or the gateway) known to ARP?
                        let resolved = match self.report.host {
                            IpAddr::V4(host) => {
                                let next_hop = stack
                                    .egress_for(host, self.via)
                                    .map_or(host, |e| e.next_hop);
                                stack.neighbor_resolved(next_hop, Instant::now()) == Some(true)
                            }
                            // The IPv6 neighbour cache is not asked: say what is known.
                            IpAddr::V6(_) => true,
                        };
                        let detail = if resolved {
                            "timed out (no answer to SYN)"
                        } else {
                            "timed out; the next hop does not answer ARP (host or gateway down)"
                        };
                        self.close(stack);
                        self.check(what, false, detail.into(), since);
                        return self.finish(stack);
                    }
                    _ => return Progress::Running,
                }
            }
            // Connected: send this step's request once.
            if !conn.sent {
                let req = request(&conn.step, &mut self.xid, &self.ports);
                if sock.send_slice(&req).is_err() {
                    return Progress::Running;
                }
                conn.sent = true;
                conn.started = Instant::now();
                conn.deadline = conn.started + self.timeout;
            }
            while sock.can_recv() {
                let _ = sock.recv(|d| {
                    conn.buf.extend_from_slice(d);
                    (d.len(), ())
                });
            }
            let complete = match conn.step {
                Step::IscsiLogin | Step::IscsiText { .. } => storage::pdu_len(&conn.buf),
                Step::Rpc { .. } => storage::record_len(&conn.buf),
            }
            .filter(|&n| conn.buf.len() >= n);
            let Some(n) = complete else {
                let what = step_label(&conn.step);
                if !sock.may_recv() || state == tcp::State::Closed {
                    let since = conn.started;
                    self.close(stack);
                    self.check(
                        what,
                        false,
                        "the server closed the connection".into(),
                        since,
                    );
                    return self.finish(stack);
                }
                if Instant::now() >= conn.deadline {
                    let since = conn.started;
                    self.close(stack);
                    self.check(
                        what,
                        false,
                        "timed out waiting for the answer".into(),
                        since,
                    );
                    return self.finish(stack);
                }
                return Progress::Running;
            };
            let answer: Vec<u8> = conn.buf.drain(..n).collect();
            let step = conn.step.clone();
            let since = conn.started;
            if !self.answer(step, &answer, since, stack) {
                return self.finish(stack);
            }
        }
    }

    /// Handles one complete answer. False ends the probe.
    fn answer(
        &mut self,
        step: Step,
        answer: &[u8],
        since: Instant,
        stack: &mut impl Endpoint,
    ) -> bool {
        match step {
            Step::IscsiLogin => match storage::parse_login_response(answer) {
                Ok(r) => {
                    self.check(
                        "iscsi discovery login".into(),
                        true,
                        format!("accepted (TSIH {})", r.tsih),
                        since,
                    );
                    // The same connection carries SendTargets.
                    if let Some(c) = self.conn.as_mut() {
                        c.step = Step::IscsiText { stat_sn: r.stat_sn };
                        c.sent = false;
                    }
                    true
                }
                Err(e) => {
                    self.close(stack);
                    self.check(
                        "iscsi discovery login".into(),
                        false,
                        format!("login rejected: {e}"),
                        since,
                    );
                    false
                }
            },
            Step::IscsiText { .. } => {
                let r = storage::parse_text_response(answer);
                self.close(stack);
                match r {
                    Ok(targets) => {
                        let n = targets.len();
                        self.report.targets = targets.into_iter().map(target_info).collect();
                        self.check(
                            "iscsi SendTargets=All".into(),
                            true,
                            format!("{n} target(s)"),
                            since,
                        );
                        true
                    }
                    Err(e) => {
                        self.check("iscsi SendTargets=All".into(), false, e.to_string(), since);
                        false
                    }
                }
            }
            Step::Rpc {
                prog,
                vers,
                proc_,
                label,
                ..
            } => {
                let xid = self.xid;
                self.close(stack);
                let body = match storage::parse_reply(answer, xid) {
                    Ok(b) => b,
                    Err(e) => {
                        self.check(format!("rpc {label}"), false, rpc_diagnosis(&e), since);
                        // A missing program is a finding, not the end: go on with the rest.
                        return true;
                    }
                };
                let detail = match (prog, proc_) {
                    (storage::PORTMAP, 3) => {
                        let (want, name) = if label.contains("mountd") {
                            ((storage::MOUNT, 3), "mountd")
                        } else {
                            ((storage::NFS, 3), "nfs")
                        };
                        match storage::parse_getport(&body) {
                            Ok(0) => format!("{name} v3 is not registered"),
                            Ok(p) => {
                                self.ports.push((want, p));
                                format!("{name} v3 on tcp port {p}")
                            }
                            Err(e) => e.to_string(),
                        }
                    }
                    (storage::MOUNT, 5) => match storage::parse_exports(&body) {
                        Ok(ex) => {
                            let n = ex.len();
                            self.report.exports = ex.into_iter().map(export_info).collect();
                            format!("{n} export(s)")
                        }
                        Err(e) => e.to_string(),
                    },
                    _ => format!("program {prog} version {vers} answers"),
                };
                self.check(format!("rpc {label}"), true, detail, since);
                true
            }
        }
    }

    /// Discovery is over: the read test, if one was asked for and discovery found a target,
    /// else the report.
    fn after_discovery(&mut self, stack: &mut impl Endpoint) -> Progress {
        match std::mem::replace(&mut self.read, Read::No) {
            Read::No => self.finish(stack),
            Read::Asked(duration) => {
                let discovered = self.report.checks.iter().all(|c| c.ok);
                let Some(target) = self.report.targets.first().map(|t| t.name.clone()) else {
                    if discovered {
                        let now = Instant::now();
                        self.check("iscsi read test".into(), false, "no target".into(), now);
                    }
                    return self.finish(stack);
                };
                if !discovered {
                    return self.finish(stack);
                }
                let port = self.port_for(&Step::IscsiLogin);
                let dst = SocketAddr::new(self.report.host, port);
                let test = ReadTest::new(dst, target, self.via, duration, self.timeout);
                self.read = Read::Running(Box::new(test));
                self.after_discovery(stack)
            }
            Read::Running(mut test) => {
                if !test.poll(stack) {
                    self.read = Read::Running(test);
                    return Progress::Running;
                }
                self.report.checks.append(&mut test.checks);
                self.report.read_test = test.result.take();
                self.finish(stack)
            }
        }
    }

    fn close(&mut self, stack: &mut impl Endpoint) {
        if let Some(c) = self.conn.take() {
            stack.sockets().get_mut::<tcp::Socket>(c.handle).abort();
            stack.poll_local();
            stack.sockets().remove(c.handle);
        }
    }

    fn finish(&mut self, stack: &mut impl Endpoint) -> Progress {
        self.close(stack);
        self.report.ok = !self.report.checks.is_empty() && self.report.checks.iter().all(|c| c.ok);
        let empty = ProbeReport {
            kind: self.report.kind.clone(),
            host: self.report.host,
            checks: Vec::new(),
            targets: Vec::new(),
            exports: Vec::new(),
            ok: false,
            read_test: None,
        };
        Progress::Done(std::mem::replace(&mut self.report, empty))
    }
}

fn step_label(step: &Step) -> String {
    match step {
        Step::IscsiLogin => "iscsi discovery login".into(),
        Step::IscsiText { .. } => "iscsi SendTargets=All".into(),
        Step::Rpc { label, .. } => format!("rpc {label}"),
    }
}

/// The request bytes of a step.
fn request(step: &Step, xid: &mut u32, _ports: &[((u32, u32), u16)]) -> Vec<u8> {
    match *step {
        Step::IscsiLogin => storage::login_request(INITIATOR),
        Step::IscsiText { stat_sn } => storage::sendtargets_request(1, stat_sn.wrapping_add(1)),
        Step::Rpc {
            prog,
            vers,
            proc_,
            label,
            ..
        } => {
            *xid = xid.wrapping_add(1);
            let args = if prog == storage::PORTMAP && proc_ == 3 {
                if label.contains("mountd") {
                    storage::getport_args(storage::MOUNT, 3)
                } else {
                    storage::getport_args(storage::NFS, 3)
                }
            } else {
                Vec::new()
            };
            storage::rpc_call(*xid, prog, vers, proc_, &args)
        }
    }
}

fn rpc_diagnosis(e: &storage::RpcError) -> String {
    use storage::RpcError::*;
    match e {
        ProgUnavail => "program not available on this port".into(),
        ProgMismatch { low, high } => format!("version mismatch: the server speaks {low}-{high}"),
        ProcUnavail => "procedure not available".into(),
        e => e.to_string(),
    }
}
