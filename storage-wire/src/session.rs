//! An iSCSI normal session (RFC 7143) as far as a read test needs it: the Login Request to a
//! target, SCSI Command PDUs with the CDBs of REPORT LUNS, INQUIRY, READ CAPACITY(16) and
//! READ(16) (SPC-4, SBC-3), a view of the Basic Header Segment of what the target sends (SCSI
//! Data-In, SCSI Response, NOP-In, Logout Response, Reject), the NOP-Out that answers a
//! target's ping, and decoders of the SCSI data that comes back.
//!
//! Commands are built into fixed 48-byte arrays (no data segment: the read test writes
//! nothing), so that issuing one allocates nothing; decoders never panic on what a target
//! sends.

use super::{bhs, iscsi_pdu, put_u32, room, IscsiError, BHS_LEN, FLAG_FINAL, IMMEDIATE};

/// The MaxRecvDataSegmentLength and MaxBurstLength [`session_login_request`] declares (the
/// RFC's default MaxBurstLength): a read of this many bytes comes back in one sequence.
pub const SESSION_MAX_BURST: usize = 262_144;

/// SCSI Command (initiator → target).
const OP_SCSI_CMD: u8 = 0x01;
/// NOP-Out (initiator → target).
const OP_NOP_OUT: u8 = 0x00;
const OP_LOGIN: u8 = 0x03;
/// Opcodes of what a target sends.
pub mod opcode {
    /// NOP-In.
    pub const NOP_IN: u8 = 0x20;
    /// SCSI Response.
    pub const SCSI_RESPONSE: u8 = 0x21;
    /// Login Response.
    pub const LOGIN_RESPONSE: u8 = 0x23;
    /// SCSI Data-In.
    pub const DATA_IN: u8 = 0x25;
    /// Logout Response.
    pub const LOGOUT_RESPONSE: u8 = 0x26;
    /// Ready To Transfer (only for writes).
    pub const R2T: u8 = 0x31;
    /// Asynchronous Message.
    pub const ASYNC: u8 = 0x32;
    /// Reject.
    pub const REJECT: u8 = 0x3f;
}
/// SCSI Command flags: F, R (read), task attribute SIMPLE.
const CMD_FINAL_READ_SIMPLE: u8 = 0x80 | 0x40 | 0x01;
/// Login CSG 1 (operational) → NSG 3 (full feature), as for discovery.
const LOGIN_CSG_OP_NSG_FFP: u8 = (1 << 2) | 3;
/// ISID of the read test's session: type 2 (random), qualifier 2 (discovery uses 1).
const SESSION_ISID: [u8; 6] = [0x80, 0x00, 0x00, 0x00, 0x00, 0x02];
/// Data-In flag S: the PDU carries the command's status.
const DATA_IN_STATUS: u8 = 0x01;
/// "No task" tag.
pub const NO_TAG: u32 = 0xffff_ffff;

/// SCSI status GOOD.
pub const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION (sense data follows).
pub const STATUS_CHECK_CONDITION: u8 = 0x02;

/// Builds the Login Request of a normal session to `target`: immediate, T=1, CSG=1 → NSG=3,
/// skipping security negotiation (a target without CHAP allows it), TSIH 0, ITT 0, CmdSN 1,
/// with the operational keys of a reader: no digests, 256 KiB data segments and bursts, data
/// in order, error recovery level 0, one connection. The caller passes valid iSCSI names.
pub fn session_login_request(initiator: &str, target: &str) -> Vec<u8> {
    let data = format!(
        "InitiatorName={initiator}\0TargetName={target}\0SessionType=Normal\0\
         HeaderDigest=None\0DataDigest=None\0MaxRecvDataSegmentLength={SESSION_MAX_BURST}\0\
         MaxBurstLength={SESSION_MAX_BURST}\0FirstBurstLength=65536\0InitialR2T=Yes\0\
         ImmediateData=Yes\0MaxOutstandingR2T=1\0DataPDUInOrder=Yes\0\
         DataSequenceInOrder=Yes\0ErrorRecoveryLevel=0\0MaxConnections=1\0\
         DefaultTime2Wait=0\0DefaultTime2Retain=0\0"
    );
    let mut pdu = iscsi_pdu(
        OP_LOGIN | IMMEDIATE,
        FLAG_FINAL | LOGIN_CSG_OP_NSG_FFP,
        data.as_bytes(),
    );
    pdu[bhs::ISID..bhs::ISID + 6].copy_from_slice(&SESSION_ISID);
    put_u32(&mut pdu, bhs::CMD_SN, 1);
    pdu
}

/// Byte offsets of SCSI Command and response fields (RFC 7143 11.3, 11.4, 11.7, 11.18, 11.19).
mod field {
    pub const LUN: usize = 8;
    /// Expected Data Transfer Length (SCSI Command).
    pub const EXPECTED_LEN: usize = 20;
    pub const CDB: usize = 32;
    /// SCSI Response: response code; Data-In and SCSI Response: status.
    pub const RESPONSE: usize = 2;
    pub const STATUS: usize = 3;
    pub const MAX_CMD_SN: usize = 32;
    /// Residual Count (SCSI Response, Data-In).
    pub const RESIDUAL: usize = 44;
}

/// A SCSI Command PDU that reads up to `expected_len` bytes with `cdb` (at most 16 bytes) from
/// the LUN `lun` (its 8 bytes as REPORT LUNS gives them): F=1, R=1, SIMPLE, no data segment.
pub fn scsi_read_command(
    itt: u32,
    lun: [u8; 8],
    cdb: &[u8],
    expected_len: u32,
    cmd_sn: u32,
    exp_stat_sn: u32,
) -> [u8; BHS_LEN] {
    let mut pdu = [0u8; BHS_LEN];
    pdu[bhs::OPCODE] = OP_SCSI_CMD;
    pdu[bhs::FLAGS] = CMD_FINAL_READ_SIMPLE;
    pdu[field::LUN..field::LUN + 8].copy_from_slice(&lun);
    put_u32(&mut pdu, bhs::ITT, itt);
    put_u32(&mut pdu, field::EXPECTED_LEN, expected_len);
    put_u32(&mut pdu, bhs::CMD_SN, cmd_sn);
    put_u32(&mut pdu, bhs::EXP_SN, exp_stat_sn);
    let n = cdb.len().min(16);
    pdu[field::CDB..field::CDB + n].copy_from_slice(&cdb[..n]);
    pdu
}

/// The NOP-Out that answers a target's NOP-In ping (its Target Transfer Tag `ttt` and LUN
/// echoed, ITT 0xffffffff, immediate so that CmdSN does not advance).
pub fn nop_out_reply(ttt: u32, lun: [u8; 8], cmd_sn: u32, exp_stat_sn: u32) -> [u8; BHS_LEN] {
    let mut pdu = [0u8; BHS_LEN];
    pdu[bhs::OPCODE] = OP_NOP_OUT | IMMEDIATE;
    pdu[bhs::FLAGS] = FLAG_FINAL;
    pdu[field::LUN..field::LUN + 8].copy_from_slice(&lun);
    put_u32(&mut pdu, bhs::ITT, NO_TAG);
    put_u32(&mut pdu, bhs::TTT, ttt);
    put_u32(&mut pdu, bhs::CMD_SN, cmd_sn);
    put_u32(&mut pdu, bhs::EXP_SN, exp_stat_sn);
    pdu
}

/// The Basic Header Segment of a PDU a target sent, read field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bhs<'a>(&'a [u8; BHS_LEN]);

impl<'a> From<&'a [u8; BHS_LEN]> for Bhs<'a> {
    fn from(bytes: &'a [u8; BHS_LEN]) -> Bhs<'a> {
        Bhs(bytes)
    }
}

impl<'a> Bhs<'a> {
    /// A view of `bytes`, if it holds at least the 48 bytes of a BHS.
    pub fn new(bytes: &'a [u8]) -> Option<Bhs<'a>> {
        bytes.get(..BHS_LEN)?.try_into().ok().map(Bhs)
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.0;
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The opcode (without the immediate bit).
    pub fn opcode(&self) -> u8 {
        self.0[bhs::OPCODE] & 0x3f
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.0[bhs::FLAGS]
    }

    /// Bytes that follow the BHS: AHS, data segment and its padding to 4 bytes (no digests).
    pub fn following(&self) -> usize {
        let at = bhs::DATA_LEN;
        let len = u32::from_be_bytes([0, self.0[at], self.0[at + 1], self.0[at + 2]]);
        usize::from(self.0[bhs::AHS_LEN]) * 4 + (len as usize).next_multiple_of(4)
    }

    /// The data segment's length (without padding).
    pub fn data_len(&self) -> usize {
        let at = bhs::DATA_LEN;
        u32::from_be_bytes([0, self.0[at], self.0[at + 1], self.0[at + 2]]) as usize
    }

    /// Bytes of AHS before the data segment.
    pub fn ahs_len(&self) -> usize {
        usize::from(self.0[bhs::AHS_LEN]) * 4
    }

    /// Initiator Task Tag.
    pub fn itt(&self) -> u32 {
        self.u32_at(bhs::ITT)
    }

    /// Target Transfer Tag (NOP-In, Data-In).
    pub fn ttt(&self) -> u32 {
        self.u32_at(bhs::TTT)
    }

    /// The LUN field.
    pub fn lun(&self) -> [u8; 8] {
        let mut l = [0; 8];
        l.copy_from_slice(&self.0[field::LUN..field::LUN + 8]);
        l
    }

    /// StatSN (meaningful on a SCSI Response, a Data-In with status, and login and logout
    /// responses).
    pub fn stat_sn(&self) -> u32 {
        self.u32_at(bhs::CMD_SN)
    }

    /// ExpCmdSN.
    pub fn exp_cmd_sn(&self) -> u32 {
        self.u32_at(bhs::EXP_SN)
    }

    /// MaxCmdSN.
    pub fn max_cmd_sn(&self) -> u32 {
        self.u32_at(field::MAX_CMD_SN)
    }

    /// True on a Data-In that carries the command's status (S bit), and on a SCSI Response.
    pub fn has_status(&self) -> bool {
        match self.opcode() {
            opcode::DATA_IN => self.flags() & DATA_IN_STATUS != 0,
            opcode::SCSI_RESPONSE => true,
            _ => false,
        }
    }

    /// The SCSI status (with [`Bhs::has_status`]).
    pub fn status(&self) -> u8 {
        self.0[field::STATUS]
    }

    /// The iSCSI response code of a SCSI Response (0: command completed at the target).
    pub fn response(&self) -> u8 {
        self.0[field::RESPONSE]
    }

    /// Residual Count.
    pub fn residual(&self) -> u32 {
        self.u32_at(field::RESIDUAL)
    }
}

/// A REPORT LUNS CDB (SPC-4 6.33) for all LUNs, `alloc` bytes at most.
pub fn report_luns_cdb(alloc: u32) -> [u8; 12] {
    let mut cdb = [0u8; 12];
    cdb[0] = 0xa0;
    cdb[6..10].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

/// A standard INQUIRY CDB (SPC-4 6.6), `alloc` bytes at most.
pub fn inquiry_cdb(alloc: u16) -> [u8; 6] {
    let [hi, lo] = alloc.to_be_bytes();
    [0x12, 0, 0, hi, lo, 0]
}

/// A READ CAPACITY(16) CDB (SBC-3 5.16), `alloc` bytes at most.
pub fn read_capacity16_cdb(alloc: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9e;
    cdb[1] = 0x10;
    cdb[10..14].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

/// A READ(16) CDB (SBC-3 5.13) of `blocks` blocks from `lba`.
pub fn read16_cdb(lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x88;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// The LUNs of a REPORT LUNS answer, as their 8-byte fields (at most
/// [`super::MAX_ENTRIES`]; a list cut short by the allocation length gives what is there).
pub fn parse_report_luns(data: &[u8]) -> Result<Vec<[u8; 8]>, IscsiError> {
    let head = data
        .get(..8)
        .ok_or_else(|| IscsiError::Malformed("REPORT LUNS data shorter than its header".into()))?;
    let listed = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let list = &data[8..];
    let list = list.get(..listed).unwrap_or(list);
    let mut luns = Vec::new();
    for lun in list.chunks_exact(8) {
        room(luns.len(), "LUNs").map_err(IscsiError::Malformed)?;
        let mut l = [0; 8];
        l.copy_from_slice(lun);
        luns.push(l);
    }
    Ok(luns)
}

/// The number of a single-level LUN (peripheral or flat addressing, SAM-5 4.7), or `None`
/// for other kinds.
pub fn lun_number(lun: &[u8; 8]) -> Option<u16> {
    if lun[2..].iter().any(|&b| b != 0) {
        return None;
    }
    match lun[0] >> 6 {
        0 if lun[0] == 0 => Some(u16::from(lun[1])),
        1 => Some((u16::from(lun[0] & 0x3f) << 8) | u16::from(lun[1])),
        _ => None,
    }
}

/// What a standard INQUIRY answer says of a LUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    /// Peripheral qualifier (0: a device is connected to this LUN).
    pub qualifier: u8,
    /// Peripheral device type (0: direct access block device, a disk).
    pub device_type: u8,
    /// T10 vendor identification, trimmed.
    pub vendor: String,
    /// Product identification, trimmed.
    pub product: String,
}

/// Decodes a standard INQUIRY answer (at least its first byte; vendor and product when
/// present).
pub fn parse_inquiry(data: &[u8]) -> Result<Inquiry, IscsiError> {
    let first = *data
        .first()
        .ok_or_else(|| IscsiError::Malformed("empty INQUIRY data".into()))?;
    let text = |range: std::ops::Range<usize>| {
        data.get(range)
            .map(|b| String::from_utf8_lossy(b).trim().to_owned())
            .unwrap_or_default()
    };
    Ok(Inquiry {
        qualifier: first >> 5,
        device_type: first & 0x1f,
        vendor: text(8..16),
        product: text(16..32),
    })
}

/// The last LBA and the block length of a READ CAPACITY(16) answer.
pub fn parse_read_capacity16(data: &[u8]) -> Result<(u64, u32), IscsiError> {
    let d = data.get(..12).ok_or_else(|| {
        IscsiError::Malformed("READ CAPACITY(16) data shorter than 12 bytes".into())
    })?;
    let last = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let block = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
    if block == 0 {
        return Err(IscsiError::Malformed("block length 0".into()));
    }
    Ok((last, block))
}

/// Sense key, ASC and ASCQ of the sense data in a SCSI Response's data segment (2-byte
/// length, then fixed or descriptor format sense, SPC-4 4.5).
pub fn parse_sense(data: &[u8]) -> Option<(u8, u8, u8)> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let sense = data.get(2..2 + len)?;
    match sense.first()? & 0x7f {
        0x70 | 0x71 => Some((sense.get(2)? & 0x0f, *sense.get(12)?, *sense.get(13)?)),
        0x72 | 0x73 => Some((sense.get(1)? & 0x0f, *sense.get(2)?, *sense.get(3)?)),
        _ => None,
    }
}

/// The name of a SCSI sense key (SPC-4 4.5.6).
pub fn sense_key_name(key: u8) -> &'static str {
    match key {
        0x0 => "NO SENSE",
        0x1 => "RECOVERED ERROR",
        0x2 => "NOT READY",
        0x3 => "MEDIUM ERROR",
        0x4 => "HARDWARE ERROR",
        0x5 => "ILLEGAL REQUEST",
        0x6 => "UNIT ATTENTION",
        0x7 => "DATA PROTECT",
        0xb => "ABORTED COMMAND",
        _ => "sense key",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_login_response, pdu_len};

    #[test]
    fn test_emit_session_login_request() {
        let pdu = session_login_request("iqn.2026-11.org.vmkstack:probe", "iqn.x:disk");
        assert_eq!(pdu[0], 0x43, "immediate Login");
        assert_eq!(pdu[1], 0x87, "T=1, CSG=1, NSG=3");
        assert_eq!(&pdu[8..14], &SESSION_ISID);
        assert_eq!(pdu_len(&pdu), Some(pdu.len()));
        let text = String::from_utf8_lossy(&pdu[48..]);
        for key in [
            "TargetName=iqn.x:disk\0",
            "SessionType=Normal\0",
            "MaxRecvDataSegmentLength=262144\0",
            "ErrorRecoveryLevel=0\0",
        ] {
            assert!(text.contains(key), "{key} in {text:?}");
        }
        // What the target answers parses with the discovery session's decoder.
        let mut rsp = pdu.clone();
        rsp[0] = 0x23;
        assert!(parse_login_response(&rsp).is_ok());
    }

    #[test]
    fn test_emit_scsi_read_command() {
        let lun = [0, 1, 0, 0, 0, 0, 0, 0];
        let pdu = scsi_read_command(7, lun, &read16_cdb(0x0102_0304, 512), 262_144, 5, 9);
        assert_eq!(pdu[0], 0x01);
        assert_eq!(pdu[1], 0xc1, "F, R, SIMPLE");
        assert_eq!(&pdu[4..8], &[0, 0, 0, 0], "no AHS, no data segment");
        assert_eq!(&pdu[8..16], &lun);
        assert_eq!(&pdu[16..20], &7u32.to_be_bytes());
        assert_eq!(&pdu[20..24], &262_144u32.to_be_bytes());
        assert_eq!(&pdu[24..28], &5u32.to_be_bytes());
        assert_eq!(&pdu[28..32], &9u32.to_be_bytes());
        assert_eq!(
            &pdu[32..48],
            &[0x88, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 2, 0, 0, 0]
        );
        let nop = nop_out_reply(0x55, lun, 5, 9);
        assert_eq!((nop[0], nop[1]), (0x40, 0x80));
        assert_eq!(&nop[16..24], &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x55]);
    }

    #[test]
    fn test_cdbs() {
        assert_eq!(
            report_luns_cdb(4096),
            [0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]
        );
        assert_eq!(inquiry_cdb(96), [0x12, 0, 0, 0, 96, 0]);
        let rc = read_capacity16_cdb(32);
        assert_eq!((rc[0], rc[1], rc[13]), (0x9e, 0x10, 32));
    }

    /// A target's PDU: opcode, flags, status, ITT, StatSN, data.
    fn target_pdu(op: u8, flags: u8, status: u8, itt: u32, stat_sn: u32, data: &[u8]) -> Vec<u8> {
        let mut pdu = iscsi_pdu(op, flags, data);
        pdu[3] = status;
        put_u32(&mut pdu, bhs::ITT, itt);
        put_u32(&mut pdu, bhs::CMD_SN, stat_sn);
        put_u32(&mut pdu, bhs::EXP_SN, 10);
        put_u32(&mut pdu, 32, 40);
        put_u32(&mut pdu, 44, 3);
        pdu
    }

    #[test]
    fn test_parse_bhs() {
        let pdu = target_pdu(opcode::DATA_IN, 0x81, 0, 4, 77, &[1, 2, 3, 4, 5]);
        let b = Bhs::new(&pdu).expect("48 bytes");
        assert_eq!(b.opcode(), opcode::DATA_IN);
        assert!(b.has_status());
        assert_eq!((b.status(), b.itt(), b.stat_sn()), (0, 4, 77));
        assert_eq!((b.exp_cmd_sn(), b.max_cmd_sn(), b.residual()), (10, 40, 3));
        assert_eq!((b.data_len(), b.following(), b.ahs_len()), (5, 8, 0));
        let no_status = target_pdu(opcode::DATA_IN, 0x80, 0, 4, 0, &[]);
        assert!(!Bhs::new(&no_status).expect("48 bytes").has_status());
        let rsp = target_pdu(opcode::SCSI_RESPONSE, 0x80, 2, 4, 78, &[]);
        let b = Bhs::new(&rsp).expect("48 bytes");
        assert!(b.has_status() && b.status() == STATUS_CHECK_CONDITION);
        assert!(Bhs::new(&rsp[..47]).is_none());
    }

    #[test]
    fn test_parse_scsi_data() {
        let mut rl = vec![0, 0, 0, 16, 0, 0, 0, 0];
        rl.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        rl.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        let luns = parse_report_luns(&rl).expect("two LUNs");
        assert_eq!(luns.len(), 2);
        assert_eq!(lun_number(&luns[1]), Some(1));
        assert_eq!(lun_number(&[0x41, 0x02, 0, 0, 0, 0, 0, 0]), Some(0x102));
        assert_eq!(lun_number(&[0x80, 0x02, 0, 0, 0, 0, 0, 0]), None);
        // Cut short by the allocation length: what is there.
        assert_eq!(parse_report_luns(&rl[..16]).map(|l| l.len()), Ok(1));
        assert!(parse_report_luns(&rl[..7]).is_err());

        let mut inq = vec![0u8; 36];
        inq[0] = 0x00;
        inq[8..16].copy_from_slice(b"IET     ");
        inq[16..32].copy_from_slice(b"VIRTUAL-DISK    ");
        let i = parse_inquiry(&inq).expect("inquiry");
        assert_eq!((i.qualifier, i.device_type), (0, 0));
        assert_eq!(
            (i.vendor.as_str(), i.product.as_str()),
            ("IET", "VIRTUAL-DISK")
        );
        let ctl = parse_inquiry(&[0x0c]).expect("a controller");
        assert_eq!((ctl.device_type, ctl.product.as_str()), (0x0c, ""));
        assert!(parse_inquiry(&[]).is_err());

        let mut rc = vec![0u8; 32];
        rc[4..8].copy_from_slice(&131_071u32.to_be_bytes());
        rc[8..12].copy_from_slice(&512u32.to_be_bytes());
        assert_eq!(parse_read_capacity16(&rc), Ok((131_071, 512)));
        assert!(parse_read_capacity16(&rc[..11]).is_err());
        assert!(parse_read_capacity16(&[0; 12]).is_err(), "block length 0");

        // Fixed-format sense: ILLEGAL REQUEST, LBA out of range (21h/00h).
        let mut sense = vec![0, 18, 0x70, 0, 0x05];
        sense.resize(20, 0);
        sense[14] = 0x21;
        assert_eq!(parse_sense(&sense), Some((5, 0x21, 0)));
        assert_eq!(sense_key_name(5), "ILLEGAL REQUEST");
        assert_eq!(parse_sense(&[0, 40, 0x70]), None, "shorter than it says");
    }
}
