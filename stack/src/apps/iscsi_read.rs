//! The read test of `vmkstack probe iscsi --read-test SECS`: a normal iSCSI session from the
//! stack itself to a target, its first disk LUN found (REPORT LUNS, then INQUIRY of each until
//! a direct-access device answers), its size read (READ CAPACITY(16)), then sequential READ(16)
//! commands of [`READ_SIZE`] bytes, [`QUEUE_DEPTH`] in flight, for SECS seconds, and a logout.
//! It reports MB/s as the stack moved them, so that an admin can tell a slow path from a slow
//! server without other tools (a `forward` and `iscsi-perf` measure the same LUN from outside).
//!
//! The data read is counted, not kept: PDUs are parsed as they stream out of the socket's
//! buffer (headers gathered, data segments skipped), so a test costs no copy of what it reads.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use vmkstack_api::{Check, ReadTestInfo};
use vmkstack_routing::VmknicId;
use vmkstack_storage_wire::session::{self as s, opcode, Bhs};
use vmkstack_storage_wire::{parse_login_response, BHS_LEN};

use super::port_forward::STACK_BUFFER;
use super::storage_probe::INITIATOR;
use super::Endpoint;

/// Bytes per READ(16).
pub const READ_SIZE: u32 = 256 * 1024;
/// READ(16) commands in flight.
pub const QUEUE_DEPTH: usize = 8;
/// Longest read test.
pub const MAX_SECS: u32 = 600;
/// Largest data segment kept (login answer, REPORT LUNS, INQUIRY, capacity).
const MAX_KEPT: usize = 64 * 1024;
/// Bytes of the REPORT LUNS answer asked for (510 LUNs).
const REPORT_LUNS_ALLOC: u32 = 4096;
/// Tags of the commands before the reads (the reads use 16 and up).
const ITT_SETUP: u32 = 8;
/// Times a setup command is sent again after a UNIT ATTENTION (the first command after a
/// login usually gets one: "power on or reset occurred", SPC-4 5.14).
const UNIT_ATTENTION_RETRIES: u32 = 3;
/// Sense key UNIT ATTENTION.
const UNIT_ATTENTION: u8 = 0x6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Login,
    ReportLuns,
    Inquiry,
    Capacity,
    Read,
    Logout,
    Done,
}

/// A read test in flight; see the module docs.
pub struct ReadTest {
    dst: SocketAddr,
    via: Option<VmknicId>,
    target: String,
    duration: Duration,
    timeout: Duration,
    handle: Option<SocketHandle>,
    phase: Phase,
    /// When the current step began.
    since: Instant,
    /// The PDU being received: its BHS so far, then how many bytes of it are still to come.
    hdr: [u8; BHS_LEN],
    hdr_have: usize,
    follow: usize,
    /// Keep the data segment of the PDU being received (else it is only counted).
    keep: bool,
    /// The AHS and data segment kept of the PDU being received.
    segment: Vec<u8>,
    /// The data of the setup command in flight, over its Data-In PDUs.
    data: Vec<u8>,
    /// The setup command in flight (LUN, CDB, its length, allocation length), sent again
    /// after a UNIT ATTENTION, and how often that happened.
    setup: ([u8; 8], [u8; 16], usize, u32),
    retries: u32,
    /// Requests waiting for room in the socket's send buffer.
    out: Vec<u8>,
    cmd_sn: u32,
    exp_stat_sn: u32,
    max_cmd_sn: u32,
    next_itt: u32,
    luns: Vec<[u8; 8]>,
    lun_index: usize,
    lun: [u8; 8],
    block: u32,
    blocks: u64,
    /// Reads: when the first was sent, when no more are sent, the next LBA, how many are in
    /// flight, the bytes read.
    started: Instant,
    stop_at: Instant,
    next_lba: u64,
    in_flight: usize,
    bytes: u64,
    /// What the test found, check by check.
    pub checks: Vec<Check>,
    /// The figures, once the reads are done.
    pub result: Option<ReadTestInfo>,
}

/// Serial number arithmetic (RFC 1982) for CmdSN: `a` is at or before `b`.
fn sn_le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

impl ReadTest {
    /// A test of `duration` reading from `target` at `dst` through the stack (from `via`'s
    /// address when given), each step given `timeout`.
    pub fn new(
        dst: SocketAddr,
        target: String,
        via: Option<VmknicId>,
        duration: Duration,
        timeout: Duration,
    ) -> ReadTest {
        let now = Instant::now();
        ReadTest {
            dst,
            via,
            target,
            duration,
            timeout,
            handle: None,
            phase: Phase::Connect,
            since: now,
            hdr: [0; BHS_LEN],
            hdr_have: 0,
            follow: 0,
            keep: false,
            segment: Vec::new(),
            data: Vec::new(),
            setup: ([0; 8], [0; 16], 0, 0),
            retries: 0,
            out: Vec::new(),
            cmd_sn: 1,
            exp_stat_sn: 0,
            max_cmd_sn: 1,
            next_itt: ITT_SETUP,
            luns: Vec::new(),
            lun_index: 0,
            lun: [0; 8],
            block: 0,
            blocks: 0,
            started: now,
            stop_at: now,
            next_lba: 0,
            in_flight: 0,
            bytes: 0,
            checks: Vec::new(),
            result: None,
        }
    }

    /// True once it finished (its checks say how).
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn check(&mut self, what: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            what: what.into(),
            ok,
            detail: detail.into(),
            us: self.since.elapsed().as_micros() as u64,
        });
        self.since = Instant::now();
    }

    /// A failed step ends the test.
    fn fail(&mut self, what: impl Into<String>, detail: impl Into<String>) {
        self.check(what, false, detail);
        self.phase = Phase::Done;
    }

    /// The check's name for the current step.
    fn step_name(&self) -> String {
        match self.phase {
            Phase::Connect => format!("tcp connect {}", self.dst),
            Phase::Login => "iscsi login (normal session)".into(),
            Phase::ReportLuns => "scsi REPORT LUNS".into(),
            Phase::Inquiry => "scsi INQUIRY".into(),
            Phase::Capacity => "scsi READ CAPACITY(16)".into(),
            Phase::Read => format!("scsi READ(16) for {} s", self.duration.as_secs()),
            Phase::Logout => "iscsi logout".into(),
            Phase::Done => String::new(),
        }
    }

    /// Drives the test; true once it is done. The socket is closed when it ends.
    pub fn poll(&mut self, stack: &mut impl Endpoint) -> bool {
        if self.phase == Phase::Done {
            return true;
        }
        let now = Instant::now();
        let Some(handle) = self.handle else {
            match stack.tcp_connect(self.dst, self.via, STACK_BUFFER, 64 * 1024) {
                Ok(h) => {
                    self.handle = Some(h);
                    stack.poll_local();
                }
                Err(e) => self.fail(self.step_name(), e.to_string()),
            }
            return self.finish_if_done(stack);
        };
        let sock = stack.sockets().get_mut::<tcp::Socket>(handle);
        if self.phase == Phase::Connect {
            match sock.state() {
                tcp::State::Established => {
                    let from = sock.local_endpoint().map(|e| format!("from {e}"));
                    self.check(self.step_name(), true, from.unwrap_or_default());
                    self.phase = Phase::Login;
                    self.out
                        .extend_from_slice(&s::session_login_request(INITIATOR, &self.target));
                }
                tcp::State::Closed => self.fail(self.step_name(), "connection refused"),
                _ if now.saturating_duration_since(self.since) > self.timeout => {
                    self.fail(self.step_name(), "timed out")
                }
                _ => return false,
            }
        }
        // What the target sent, PDU by PDU, straight out of the socket's buffer.
        while self.phase != Phase::Done && sock.can_recv() {
            match sock.recv(|buf| {
                let n = self.feed(buf);
                (n, n)
            }) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if self.phase == Phase::Read {
            self.issue_reads(Instant::now());
        }
        if !self.out.is_empty() && sock.can_send() {
            if let Ok(n) = sock.send_slice(&self.out) {
                self.out.drain(..n);
            }
        }
        if self.phase != Phase::Done {
            let deadline = match self.phase {
                Phase::Read => self.stop_at.max(self.since) + self.timeout,
                _ => self.since + self.timeout,
            };
            if !sock.may_recv() || sock.state() == tcp::State::Closed {
                self.fail(self.step_name(), "the target closed the connection");
            } else if Instant::now() > deadline {
                let what = if self.phase == Phase::Read {
                    format!("timed out with {} reads unanswered", self.in_flight)
                } else {
                    "timed out waiting for the answer".into()
                };
                self.fail(self.step_name(), what);
            }
        }
        self.finish_if_done(stack)
    }

    /// Closes the socket once the test is over.
    fn finish_if_done(&mut self, stack: &mut impl Endpoint) -> bool {
        if self.phase != Phase::Done {
            return false;
        }
        if let Some(h) = self.handle.take() {
            stack.sockets().get_mut::<tcp::Socket>(h).abort();
            stack.poll_local();
            stack.sockets().remove(h);
        }
        true
    }

    /// Takes bytes of the stream; returns how many it used (all of them unless the test
    /// ended).
    fn feed(&mut self, mut buf: &[u8]) -> usize {
        let total = buf.len();
        while !buf.is_empty() && self.phase != Phase::Done {
            if self.hdr_have < BHS_LEN {
                let n = (BHS_LEN - self.hdr_have).min(buf.len());
                self.hdr[self.hdr_have..self.hdr_have + n].copy_from_slice(&buf[..n]);
                self.hdr_have += n;
                buf = &buf[n..];
                if self.hdr_have == BHS_LEN {
                    self.header();
                    if self.follow == 0 {
                        self.pdu();
                    }
                }
                continue;
            }
            let n = self.follow.min(buf.len());
            if self.keep {
                self.segment.extend_from_slice(&buf[..n]);
            }
            self.follow -= n;
            buf = &buf[n..];
            if self.follow == 0 {
                self.pdu();
            }
        }
        total - buf.len()
    }

    /// A BHS is complete: decide whether its data segment is kept.
    fn header(&mut self) {
        let b = Bhs::from(&self.hdr);
        self.follow = b.following();
        self.segment.clear();
        let reading = self.phase == Phase::Read && b.opcode() == opcode::DATA_IN;
        self.keep = !reading && self.follow <= MAX_KEPT;
        if reading {
            self.bytes += b.data_len() as u64;
        } else if self.follow > MAX_KEPT {
            self.fail(
                self.step_name(),
                format!(
                    "a {} byte data segment; at most {MAX_KEPT} expected",
                    b.data_len()
                ),
            );
        }
    }

    /// A whole PDU arrived (its data segment kept or counted).
    fn pdu(&mut self) {
        self.hdr_have = 0;
        let hdr = self.hdr;
        let b = Bhs::from(&hdr);
        let op = b.opcode();
        if matches!(
            op,
            opcode::DATA_IN | opcode::SCSI_RESPONSE | opcode::NOP_IN | opcode::LOGOUT_RESPONSE
        ) && sn_le(self.max_cmd_sn, b.max_cmd_sn())
        {
            self.max_cmd_sn = b.max_cmd_sn();
        }
        if b.has_status() || op == opcode::LOGOUT_RESPONSE {
            self.exp_stat_sn = b.stat_sn().wrapping_add(1);
        }
        let data_at = b.ahs_len().min(self.segment.len());
        let data_end = (data_at + b.data_len()).min(self.segment.len());
        match op {
            opcode::LOGIN_RESPONSE if self.phase == Phase::Login => {
                let mut pdu = hdr.to_vec();
                pdu.extend_from_slice(&self.segment);
                self.login_answer(&pdu);
            }
            // A read answered (a Data-In without status only brought bytes, counted already).
            opcode::DATA_IN | opcode::SCSI_RESPONSE
                if self.phase == Phase::Read && b.has_status() =>
            {
                self.in_flight = self.in_flight.saturating_sub(1);
                if b.status() != s::STATUS_GOOD || b.response() != 0 {
                    let why = self.status_text(&b, data_at, data_end);
                    return self.fail(self.step_name(), why);
                }
                if self.in_flight == 0 && Instant::now() >= self.stop_at {
                    self.reads_done();
                }
            }
            opcode::DATA_IN if self.phase == Phase::Read => {}
            opcode::DATA_IN | opcode::SCSI_RESPONSE => {
                if op == opcode::DATA_IN {
                    let d = self.segment.get(data_at..data_end).unwrap_or_default();
                    if self.data.len() + d.len() <= MAX_KEPT {
                        self.data.extend_from_slice(d);
                    }
                }
                if b.has_status() {
                    if b.status() != s::STATUS_GOOD || b.response() != 0 {
                        let sense = self.segment.get(data_at..data_end);
                        let key = sense.and_then(s::parse_sense).map(|(k, _, _)| k);
                        if key == Some(UNIT_ATTENTION) && self.retries < UNIT_ATTENTION_RETRIES {
                            self.retries += 1;
                            let (lun, cdb, n, alloc) = self.setup;
                            return self.command(lun, &cdb[..n], alloc);
                        }
                        let why = self.status_text(&b, data_at, data_end);
                        return self.fail(self.step_name(), why);
                    }
                    let data = std::mem::take(&mut self.data);
                    self.setup_answer(&data);
                }
            }
            opcode::NOP_IN if b.ttt() != s::NO_TAG => {
                let nop = s::nop_out_reply(b.ttt(), b.lun(), self.cmd_sn, self.exp_stat_sn);
                self.out.extend_from_slice(&nop);
            }
            opcode::LOGOUT_RESPONSE if self.phase == Phase::Logout => {
                self.check(self.step_name(), true, "");
                self.phase = Phase::Done;
            }
            opcode::REJECT => self.fail(self.step_name(), "the target rejected a PDU"),
            // NOP-In without a ping, asynchronous messages: nothing to do.
            _ => {}
        }
    }

    /// Why a command failed: its status, with the sense key when the target sent one.
    fn status_text(&self, b: &Bhs<'_>, data_at: usize, data_end: usize) -> String {
        if b.response() != 0 {
            return format!("iSCSI response {:#04x} (target failure)", b.response());
        }
        let sense = self.segment.get(data_at..data_end).and_then(s::parse_sense);
        match (b.status(), sense) {
            (s::STATUS_CHECK_CONDITION, Some((key, asc, ascq))) => format!(
                "CHECK CONDITION: {} (ASC/ASCQ {asc:02x}h/{ascq:02x}h)",
                s::sense_key_name(key)
            ),
            (status, _) => format!("SCSI status {status:#04x}"),
        }
    }

    fn login_answer(&mut self, pdu: &[u8]) {
        match parse_login_response(pdu) {
            Ok(r) if r.full_feature => {
                self.cmd_sn = r.exp_cmd_sn;
                if let Some(b) = Bhs::new(pdu) {
                    self.max_cmd_sn = b.max_cmd_sn();
                }
                self.exp_stat_sn = r.stat_sn.wrapping_add(1);
                let target = self.target.clone();
                self.check(self.step_name(), true, target);
                self.phase = Phase::ReportLuns;
                self.command(
                    [0; 8],
                    &s::report_luns_cdb(REPORT_LUNS_ALLOC),
                    REPORT_LUNS_ALLOC,
                );
            }
            Ok(_) => self.fail(
                self.step_name(),
                "the target wants another negotiation round (not supported)",
            ),
            Err(e) => self.fail(self.step_name(), e.to_string()),
        }
    }

    /// Sends one setup command (a new tag each time).
    fn command(&mut self, lun: [u8; 8], cdb: &[u8], alloc: u32) {
        let n = cdb.len().min(16);
        let mut saved = [0u8; 16];
        saved[..n].copy_from_slice(&cdb[..n]);
        self.setup = (lun, saved, n, alloc);
        self.next_itt = self.next_itt.wrapping_add(1) % 16;
        let pdu = s::scsi_read_command(
            self.next_itt,
            lun,
            cdb,
            alloc,
            self.cmd_sn,
            self.exp_stat_sn,
        );
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        self.data.clear();
        self.out.extend_from_slice(&pdu);
    }

    /// The answer of the setup command in flight.
    fn setup_answer(&mut self, data: &[u8]) {
        match self.phase {
            Phase::ReportLuns => match s::parse_report_luns(data) {
                Ok(luns) if luns.is_empty() => self.fail(self.step_name(), "no LUN"),
                Ok(luns) => {
                    let list: Vec<String> = luns
                        .iter()
                        .map(|l| s::lun_number(l).map_or("?".into(), |n| n.to_string()))
                        .collect();
                    let detail = format!("{} LUN(s): {}", luns.len(), list.join(", "));
                    self.check(self.step_name(), true, detail);
                    self.luns = luns;
                    self.inquire_next();
                }
                Err(e) => self.fail(self.step_name(), e.to_string()),
            },
            Phase::Inquiry => match s::parse_inquiry(data) {
                Ok(i) if i.qualifier == 0 && i.device_type == 0 => {
                    let n = s::lun_number(&self.lun).map_or("?".into(), |n| n.to_string());
                    let detail = format!("LUN {n}: disk ({} {})", i.vendor, i.product);
                    self.check(self.step_name(), true, detail.trim_end());
                    self.phase = Phase::Capacity;
                    self.command(self.lun, &s::read_capacity16_cdb(32), 32);
                }
                Ok(_) => self.inquire_next(),
                Err(e) => self.fail(self.step_name(), e.to_string()),
            },
            Phase::Capacity => match s::parse_read_capacity16(data) {
                Ok((last, block)) if u64::from(READ_SIZE) % u64::from(block) == 0 => {
                    self.block = block;
                    self.blocks = last.saturating_add(1);
                    let bytes = self.blocks.saturating_mul(u64::from(block));
                    let detail = format!(
                        "{} blocks of {block} bytes ({} MiB)",
                        self.blocks,
                        bytes >> 20
                    );
                    self.check(self.step_name(), true, detail);
                    self.phase = Phase::Read;
                    self.started = Instant::now();
                    self.stop_at = self.started + self.duration;
                    self.since = self.started;
                }
                Ok((_, block)) => self.fail(
                    self.step_name(),
                    format!("block length {block} does not divide {READ_SIZE}"),
                ),
                Err(e) => self.fail(self.step_name(), e.to_string()),
            },
            _ => {}
        }
    }

    /// INQUIRY to the next LUN, or the end: no disk among them.
    fn inquire_next(&mut self) {
        match self.luns.get(self.lun_index).copied() {
            Some(lun) => {
                self.lun_index += 1;
                self.lun = lun;
                self.phase = Phase::Inquiry;
                self.command(lun, &s::inquiry_cdb(96), 96);
            }
            None => {
                self.phase = Phase::Inquiry;
                self.fail(self.step_name(), "no LUN is a disk (direct-access device)");
            }
        }
    }

    /// Keeps [`QUEUE_DEPTH`] reads in flight until the test's time is up, within the target's
    /// command window.
    fn issue_reads(&mut self, now: Instant) {
        let per = READ_SIZE / self.block.max(1);
        while self.in_flight < QUEUE_DEPTH
            && now < self.stop_at
            && sn_le(self.cmd_sn, self.max_cmd_sn)
            && self.out.len() < QUEUE_DEPTH * BHS_LEN
        {
            if self.next_lba >= self.blocks {
                self.next_lba = 0;
            }
            let blocks = u64::from(per).min(self.blocks - self.next_lba) as u32;
            // Unique among the commands in flight, never the reserved 0xffffffff.
            let itt = self.cmd_sn & 0x7fff_ffff;
            let pdu = s::scsi_read_command(
                itt,
                self.lun,
                &s::read16_cdb(self.next_lba, blocks),
                blocks * self.block,
                self.cmd_sn,
                self.exp_stat_sn,
            );
            self.out.extend_from_slice(&pdu);
            self.cmd_sn = self.cmd_sn.wrapping_add(1);
            self.next_lba += u64::from(blocks);
            self.in_flight += 1;
        }
        if self.in_flight == 0 && now >= self.stop_at {
            self.reads_done();
        }
    }

    /// Every read is answered and the time is up: the figures, then the logout.
    fn reads_done(&mut self) {
        if self.phase != Phase::Read {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let mb_per_s = self.bytes as f64 / secs / 1e6;
        let detail = format!(
            "{:.1} MB/s ({} MB in {secs:.2} s, {} KiB reads, {QUEUE_DEPTH} in flight)",
            mb_per_s,
            self.bytes / 1_000_000,
            READ_SIZE / 1024
        );
        self.result = Some(ReadTestInfo {
            target: self.target.clone(),
            lun: s::lun_number(&self.lun).map_or(u32::MAX, u32::from),
            block_size: self.block,
            capacity_bytes: self.blocks.saturating_mul(u64::from(self.block)),
            bytes: self.bytes,
            secs,
            mb_per_s,
            request_bytes: READ_SIZE,
            queue_depth: QUEUE_DEPTH as u32,
        });
        self.check(self.step_name(), true, detail);
        self.phase = Phase::Logout;
        self.out
            .extend_from_slice(&vmkstack_storage_wire::logout_request(
                self.cmd_sn,
                self.exp_stat_sn,
            ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PDU from the target: opcode, flags, status, ITT, StatSN, MaxCmdSN, data.
    fn pdu(op: u8, flags: u8, status: u8, itt: u32, stat_sn: u32, data: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; BHS_LEN];
        p[0] = op;
        p[1] = flags;
        p[3] = status;
        p[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        p[16..20].copy_from_slice(&itt.to_be_bytes());
        p[24..28].copy_from_slice(&stat_sn.to_be_bytes());
        p[28..32].copy_from_slice(&1u32.to_be_bytes());
        p[32..36].copy_from_slice(&200u32.to_be_bytes());
        p.extend_from_slice(data);
        p.resize(p.len().next_multiple_of(4), 0);
        p
    }

    /// Feeds `bytes` in pieces of `step` bytes.
    fn feed(t: &mut ReadTest, bytes: &[u8], step: usize) {
        for piece in bytes.chunks(step) {
            assert_eq!(t.feed(piece), piece.len());
        }
    }

    /// The SCSI commands sent since the last call: (CmdSN, CDB opcode).
    fn sent(t: &mut ReadTest) -> Vec<(u32, u8)> {
        let out = std::mem::take(&mut t.out);
        out.chunks(BHS_LEN)
            .filter(|p| p[0] & 0x3f == 0x01)
            .map(|p| (u32::from_be_bytes([p[24], p[25], p[26], p[27]]), p[32]))
            .collect()
    }

    #[test]
    fn test_session_from_login_to_reads() {
        let dst = SocketAddr::from(([198, 18, 100, 20], 3260));
        let mut t = ReadTest::new(
            dst,
            "iqn.x:disk".into(),
            None,
            Duration::from_secs(60),
            Duration::from_secs(3),
        );
        t.phase = Phase::Login;
        // Login accepted: T=1, NSG=3; ExpCmdSN 1.
        let login = pdu(
            opcode::LOGIN_RESPONSE,
            0x87,
            0,
            0,
            5,
            b"TargetPortalGroupTag=1\0",
        );
        feed(&mut t, &login, 7);
        assert_eq!(t.phase, Phase::ReportLuns);
        assert_eq!(sent(&mut t), vec![(1, 0xa0)], "REPORT LUNS with CmdSN 1");
        // Two LUNs, the answer in two Data-In PDUs, the status in the second.
        let mut luns = vec![0, 0, 0, 16, 0, 0, 0, 0];
        luns.extend_from_slice(&[0; 8]);
        luns.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        let mut stream = pdu(opcode::DATA_IN, 0x00, 0, 9, 0, &luns[..10]);
        stream.extend(pdu(opcode::DATA_IN, 0x81, 0, 9, 6, &luns[10..]));
        feed(&mut t, &stream, 5);
        assert_eq!((t.phase, t.exp_stat_sn), (Phase::Inquiry, 7));
        assert_eq!(sent(&mut t), vec![(2, 0x12)], "INQUIRY of LUN 0");
        // LUN 0 is a controller, LUN 1 a disk.
        feed(
            &mut t,
            &pdu(opcode::DATA_IN, 0x81, 0, 10, 7, &[0x0c; 36]),
            48,
        );
        assert_eq!(sent(&mut t), vec![(3, 0x12)], "INQUIRY of LUN 1");
        feed(&mut t, &pdu(opcode::DATA_IN, 0x81, 0, 11, 8, &[0; 36]), 1);
        assert_eq!(t.phase, Phase::Capacity);
        assert_eq!(sent(&mut t), vec![(4, 0x9e)]);
        // A UNIT ATTENTION first: the command goes again.
        let mut sense = vec![0, 18, 0x70, 0, 0x06];
        sense.resize(20, 0);
        sense[14] = 0x29;
        feed(
            &mut t,
            &pdu(opcode::SCSI_RESPONSE, 0x80, 2, 12, 9, &sense),
            13,
        );
        assert_eq!(sent(&mut t), vec![(5, 0x9e)], "READ CAPACITY(16) again");
        let mut cap = vec![0u8; 32];
        cap[4..8].copy_from_slice(&2047u32.to_be_bytes());
        cap[8..12].copy_from_slice(&512u32.to_be_bytes());
        feed(&mut t, &pdu(opcode::DATA_IN, 0x81, 0, 13, 10, &cap), 64);
        assert_eq!((t.phase, t.blocks, t.block), (Phase::Read, 2048, 512));
        // Eight reads in flight, wrapping at the end of the 1 MiB LUN.
        t.issue_reads(Instant::now());
        let reads = sent(&mut t);
        assert_eq!(reads.len(), QUEUE_DEPTH);
        assert!(reads.iter().all(|&(_, op)| op == 0x88));
        assert_eq!(
            t.next_lba,
            4 * 512,
            "wrapped once: four reads of 512 blocks"
        );
        // Data-In without status, then with: one read answered, its bytes counted unkept.
        let data = vec![0x5a; 1000];
        let mut stream = pdu(opcode::DATA_IN, 0x00, 0, 6, 0, &data);
        stream.extend(pdu(opcode::DATA_IN, 0x81, 0, 6, 11, &data));
        feed(&mut t, &stream, 333);
        assert_eq!((t.bytes, t.in_flight), (2000, QUEUE_DEPTH - 1));
        assert!(t.segment.is_empty(), "read data is counted, not kept");
        // A failed read ends the test with the sense data's words.
        let mut sense = vec![0, 18, 0x70, 0, 0x03];
        sense.resize(20, 0);
        feed(
            &mut t,
            &pdu(opcode::SCSI_RESPONSE, 0x80, 2, 7, 12, &sense),
            48,
        );
        assert!(t.done());
        let last = t.checks.last().map(|c| (c.ok, c.detail.clone()));
        assert_eq!(
            last,
            Some((
                false,
                "CHECK CONDITION: MEDIUM ERROR (ASC/ASCQ 00h/00h)".into()
            ))
        );
    }

    #[test]
    fn test_serial_numbers() {
        assert!(sn_le(1, 1) && sn_le(1, 2) && !sn_le(2, 1));
        assert!(sn_le(u32::MAX, 0), "across the wrap");
        assert!(!sn_le(0, u32::MAX));
    }
}
