//! The gRPC framing kubeadm's clients share: the etcd snapshot stream (`kubeadm-etcd`) and the
//! container runtime's CRI (`kubeadm-cri`).
//!
//! gRPC over HTTP/2 is a POST per call whose body is a sequence of length-prefixed messages
//! (1 byte "compressed" flag, 4 bytes big-endian length) and whose outcome is the
//! `grpc-status` trailer (or header, for a trailers-only answer). Messages are declared by hand
//! for `prost` by each client, so no `protoc` and no generated code are needed at build time;
//! the HTTP/2 connection is hyper's.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};

/// One length-prefixed, uncompressed gRPC message around `msg`.
pub fn encode<M: prost::Message>(msg: &M) -> Bytes {
    let body = msg.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.freeze()
}

/// Splits the next complete message (without its 5-byte prefix) off `buf`; `Ok(None)` until
/// one is complete. Compressed messages are refused: we never ask for compression.
pub fn next_message(buf: &mut BytesMut) -> Result<Option<Bytes>, String> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err("the server sent a compressed gRPC message, which was not asked for".into());
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return Ok(None);
    }
    let mut msg = buf.split_to(5 + len);
    msg.advance(5);
    Ok(Some(msg.freeze()))
}

/// A gRPC status other than OK, as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The numeric code (`5` NOT_FOUND, `12` UNIMPLEMENTED, `14` UNAVAILABLE, …).
    pub code: u32,
    /// `grpc-message`, percent-decoded.
    pub message: String,
}

/// gRPC's code for a method or service the server does not implement.
pub const UNIMPLEMENTED: u32 = 12;
/// gRPC's code for "not found".
pub const NOT_FOUND: u32 = 5;

impl Status {
    /// The status in `headers` (a trailers block or a trailers-only answer): `None` when it
    /// carries no `grpc-status`, `Some(Ok(()))` for OK.
    pub fn from_headers(headers: &hyper::HeaderMap) -> Option<Result<(), Status>> {
        let raw = headers.get("grpc-status")?;
        let text = String::from_utf8_lossy(raw.as_bytes()).into_owned();
        let code: u32 = text.trim().parse().unwrap_or(2);
        if code == 0 {
            return Some(Ok(()));
        }
        let message = headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default();
        Some(Err(Status { code, message }))
    }

    /// The code's name as gRPC spells it.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            1 => "Canceled",
            2 => "Unknown",
            3 => "InvalidArgument",
            4 => "DeadlineExceeded",
            5 => "NotFound",
            6 => "AlreadyExists",
            7 => "PermissionDenied",
            8 => "ResourceExhausted",
            9 => "FailedPrecondition",
            10 => "Aborted",
            11 => "OutOfRange",
            12 => "Unimplemented",
            13 => "Internal",
            14 => "Unavailable",
            15 => "DataLoss",
            16 => "Unauthenticated",
            _ => "Unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gRPC status {} ({}): {}",
            self.code,
            self.code_name(),
            self.message
        )
    }
}

/// `grpc-message` is percent-encoded (RFC 3986 style, as gRPC's HTTP/2 protocol says).
pub fn percent_decode(m: &str) -> String {
    let b = m.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = m.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The connection failed or broke (nothing or not HTTP/2 listens there).
    #[error("{0}")]
    Transport(String),
    /// The peer answered, but not as a gRPC server does (HTTP status, content type, framing).
    #[error("{0}")]
    Protocol(String),
    /// The server answered the call with an error status.
    #[error("{0}")]
    Status(Status),
}

/// One HTTP/2 connection to a gRPC server; clones share it (calls are multiplexed).
#[derive(Clone)]
pub struct Channel {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Channel {
    /// HTTP/2 handshake over `io` (a unix or TCP stream, possibly TLS), the connection driven
    /// by a task on the current tokio runtime. `authority` is the `:authority` of each call.
    pub async fn handshake<T>(io: T, authority: &str) -> Result<Channel, CallError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                // Image pulls can take minutes; the default keeps connections open anyway,
                // large windows keep big answers (image lists) from stalling.
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(8 << 20)
                .handshake(hyper_util::rt::TokioIo::new(io))
                .await
                .map_err(|e| CallError::Transport(format!("HTTP/2 handshake failed: {e}")))?;
        tokio::spawn(conn);
        Ok(Channel {
            sender,
            authority: authority.to_string(),
        })
    }

    /// A unary call: `path` is `/package.Service/Method`; `metadata` are extra request
    /// headers (lower-case names). Returns the decoded answer.
    pub async fn unary<Req, Resp>(
        &self,
        path: &str,
        request: &Req,
        metadata: &[(&str, &str)],
    ) -> Result<Resp, CallError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let mut sender = self.sender.clone();
        sender
            .ready()
            .await
            .map_err(|e| CallError::Transport(format!("connection closed: {e}")))?;
        let mut req = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", self.authority))
            .header(hyper::header::CONTENT_TYPE, "application/grpc")
            .header("te", "trailers");
        for (k, v) in metadata {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(encode(request)))
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CallError::Transport(format!("the call {path} broke: {e}")))?;
        if !resp.status().is_success() {
            return Err(CallError::Protocol(format!(
                "HTTP status {} (not a gRPC server?)",
                resp.status()
            )));
        }
        let grpc = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .is_some_and(|c| c.as_bytes().starts_with(b"application/grpc"));
        if !grpc {
            return Err(CallError::Protocol(
                "the answer is not gRPC (content-type is not application/grpc)".into(),
            ));
        }
        // A trailers-only answer (an immediate refusal) carries the status in the headers.
        if let Some(Err(s)) = Status::from_headers(resp.headers()) {
            return Err(CallError::Status(s));
        }
        let collected = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::Transport(format!("the answer to {path} broke: {e}")))?;
        let trailers = collected.trailers().cloned();
        let mut buf = BytesMut::from(collected.to_bytes().as_ref());
        match trailers.as_ref().and_then(Status::from_headers) {
            Some(Err(s)) => return Err(CallError::Status(s)),
            Some(Ok(())) => {}
            None => {
                return Err(CallError::Protocol(format!(
                    "the answer to {path} ended without a grpc-status"
                )));
            }
        }
        let msg = next_message(&mut buf)
            .map_err(CallError::Protocol)?
            .ok_or_else(|| CallError::Protocol(format!("the answer to {path} has no message")))?;
        Resp::decode(msg)
            .map_err(|e| CallError::Protocol(format!("undecodable answer to {path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_at_their_length_prefix() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0, 2, 7, 8, 0, 0][..]);
        assert_eq!(next_message(&mut buf).unwrap().unwrap().as_ref(), &[7, 8]);
        assert_eq!(next_message(&mut buf).unwrap(), None);
        let mut compressed = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
        assert!(next_message(&mut compressed).is_err());
    }

    #[test]
    fn status_messages_are_percent_decoded() {
        let mut h = hyper::HeaderMap::new();
        h.insert("grpc-status", "14".parse().unwrap());
        h.insert("grpc-message", "etcdserver%3A not leader".parse().unwrap());
        let s = Status::from_headers(&h).unwrap().unwrap_err();
        assert_eq!(
            s.to_string(),
            "gRPC status 14 (Unavailable): etcdserver: not leader"
        );
        h.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(Status::from_headers(&h), Some(Ok(())));
        assert_eq!(Status::from_headers(&hyper::HeaderMap::new()), None);
    }

    #[test]
    fn encoded_messages_carry_their_length() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct M {
            #[prost(string, tag = "1")]
            s: String,
        }
        let b = encode(&M { s: "ab".into() });
        assert_eq!(b.as_ref(), &[0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']);
    }
}
