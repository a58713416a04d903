//! Just enough HTTP/2 + gRPC to serve unary calls with small answers over a byte stream: the
//! fake CRI runtime of the test fixtures ([`crate::fixture`]). kubeadm's own client is
//! `kubeadm-cri` on hyper's HTTP/2; this server is written against the frames so that the
//! fixture needs no async runtime.
//!
//! Answers' headers are sent as HPACK literals (no Huffman, no table), which every HPACK decoder
//! accepts; request headers are not decoded (the fixture tells calls apart by their request
//! message).

use std::io::{Read, Write};

/// HTTP/2 client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

/// One HTTP/2 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream id.
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Writes one frame.
pub fn write_frame(
    w: &mut dyn Write,
    kind: u8,
    flags: u8,
    stream: u32,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = payload.len() as u32;
    let mut head = [0u8; 9];
    head[..3].copy_from_slice(&len.to_be_bytes()[1..]);
    head[3] = kind;
    head[4] = flags;
    head[5..].copy_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    w.write_all(&head)?;
    w.write_all(payload)
}

/// Reads one frame (payloads above 1 MiB are refused).
pub fn read_frame(r: &mut dyn Read) -> std::io::Result<Frame> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head)?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    if len > 1 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "HTTP/2 frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Ok(Frame {
        kind: head[3],
        flags: head[4],
        stream,
        payload,
    })
}

/// An HPACK "literal header field without indexing — new name" with plain strings.
pub fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    for s in [name, value] {
        hpack_int(out, s.len(), 7, 0x00);
        out.extend_from_slice(s.as_bytes());
    }
}

fn hpack_int(out: &mut Vec<u8>, mut n: usize, prefix_bits: u32, first: u8) {
    let max = (1usize << prefix_bits) - 1;
    if n < max {
        out.push(first | n as u8);
        return;
    }
    out.push(first | max as u8);
    n -= max;
    while n >= 128 {
        out.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.push(n as u8);
}

/// A gRPC length-prefixed message (uncompressed).
pub fn grpc_message(msg: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// A protobuf length-delimited field (string/bytes/message).
pub fn proto_bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    proto_varint(out, u64::from(field << 3 | 2));
    proto_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn proto_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The length-delimited fields of a protobuf message as `(field number, bytes)`; other wire
/// types are skipped. `None` when the message is malformed.
pub fn proto_fields(buf: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let field = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => {
                read_varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                out.push((field, buf.get(pos..end)?.to_vec()));
                pos = end;
            }
            5 => pos += 4,
            _ => return None,
        }
    }
    (pos == buf.len()).then_some(out)
}

fn strip_padding(flags: u8, payload: &[u8]) -> &[u8] {
    if flags & PADDED != 0 && !payload.is_empty() {
        let pad = payload[0] as usize;
        let end = payload.len().saturating_sub(pad);
        payload.get(1..end).unwrap_or(&[])
    } else {
        payload
    }
}

/// Serves unary calls on `stream` until the client closes it: each request stream's message
/// goes to `answer`, whose bytes are sent back as the gRPC answer with `grpc-status: 0`.
pub fn serve<S: Read + Write>(
    stream: &mut S,
    answer: &dyn Fn(&[u8]) -> Vec<u8>,
) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    stream.read_exact(&mut preface)?;
    if preface != PREFACE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an HTTP/2 client",
        ));
    }
    write_frame(stream, SETTINGS, 0, 0, &[])?;
    stream.flush()?;
    let mut bodies: std::collections::HashMap<u32, Vec<u8>> = Default::default();
    loop {
        let f = match read_frame(stream) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => write_frame(stream, SETTINGS, ACK, 0, &[])?,
            PING if f.flags & ACK == 0 => write_frame(stream, PING, ACK, 0, &f.payload)?,
            GOAWAY => return Ok(()),
            DATA => bodies
                .entry(f.stream)
                .or_default()
                .extend_from_slice(strip_padding(f.flags, &f.payload)),
            RST_STREAM => {
                bodies.remove(&f.stream);
            }
            _ => {}
        }
        if f.stream != 0 && f.flags & END_STREAM != 0 && matches!(f.kind, DATA | HEADERS) {
            let body = bodies.remove(&f.stream).unwrap_or_default();
            let request = body.get(5..).unwrap_or(&[]);
            let mut headers = Vec::new();
            hpack_literal(&mut headers, ":status", "200");
            hpack_literal(&mut headers, "content-type", "application/grpc");
            write_frame(stream, HEADERS, END_HEADERS, f.stream, &headers)?;
            write_frame(stream, DATA, 0, f.stream, &grpc_message(&answer(request)))?;
            let mut trailers = Vec::new();
            hpack_literal(&mut trailers, "grpc-status", "0");
            write_frame(
                stream,
                HEADERS,
                END_HEADERS | END_STREAM,
                f.stream,
                &trailers,
            )?;
        }
        stream.flush()?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_round_trip() {
        let mut m = Vec::new();
        proto_bytes(&mut m, 1, b"0.1.0");
        proto_bytes(&mut m, 2, b"containerd");
        proto_varint(&mut m, 3 << 3);
        proto_varint(&mut m, 300);
        let f = proto_fields(&m).unwrap();
        assert_eq!(f, vec![(1, b"0.1.0".to_vec()), (2, b"containerd".to_vec())]);
        assert!(proto_fields(&[0x0a, 0x05, b'x']).is_none(), "truncated");
    }

    #[test]
    fn hpack_integers_use_continuation_bytes() {
        let mut out = Vec::new();
        hpack_int(&mut out, 1337, 5, 0);
        assert_eq!(out, vec![31, 154, 10]); // RFC 7541 C.1.2
    }
}
