//! The WebSocket framing of the protocol: which subprotocol a client offered, and one `GenericCommand` per
//! frame, as binary (`lc.protobuf2.*`) or as base64 text (`lc.proto2base64.*`).

use base64::Engine as _;
use prost::Message as _;

use crate::realtime::proto::GenericCommand;

/// One of the four subprotocols of `leancloud-realtime` 4.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subprotocol {
    /// Base64 text frames instead of binary ones (`noBinary: true`).
    pub base64: bool,
    /// Protocol version: 3 (unread notifications, the client pulls history) or 1 (the server pushes the
    /// messages a client missed, marked `offline`).
    pub version: u8,
}

impl Subprotocol {
    pub const ALL: [&'static str; 4] = [
        "lc.protobuf2.3",
        "lc.proto2base64.3",
        "lc.protobuf2.1",
        "lc.proto2base64.1",
    ];

    pub fn parse(name: &str) -> Option<Subprotocol> {
        let (format, version) = name.trim().strip_prefix("lc.")?.rsplit_once('.')?;
        let base64 = match format {
            "protobuf2" => false,
            "proto2base64" => true,
            _ => return None,
        };
        let version = match version {
            "3" => 3,
            "1" => 1,
            _ => return None,
        };
        Some(Subprotocol { base64, version })
    }

    /// The first supported protocol of a `Sec-WebSocket-Protocol` header (the SDK offers exactly one).
    pub fn negotiate(header: &str) -> Option<(&str, Subprotocol)> {
        header
            .split(',')
            .map(str::trim)
            .find_map(|p| Subprotocol::parse(p).map(|s| (p, s)))
    }

    /// The protocol's name, as echoed in the handshake.
    pub fn name(self) -> &'static str {
        match (self.base64, self.version) {
            (false, 3) => Self::ALL[0],
            (true, 3) => Self::ALL[1],
            (false, _) => Self::ALL[2],
            (true, _) => Self::ALL[3],
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("the frame is not valid base64")]
    Base64,
    #[error("the frame is not a GenericCommand: {0}")]
    Protobuf(String),
}

/// Decodes one frame's payload (the bytes of a binary frame, or the text of a base64 one).
pub fn decode(payload: &[u8], base64: bool) -> Result<GenericCommand, FrameError> {
    let bytes;
    let raw = if base64 {
        let text = std::str::from_utf8(payload).map_err(|_| FrameError::Base64)?;
        bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| FrameError::Base64)?;
        &bytes[..]
    } else {
        payload
    };
    GenericCommand::decode(raw).map_err(|e| FrameError::Protobuf(e.to_string()))
}

/// What to put on the wire for `command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    Binary(Vec<u8>),
    Text(String),
}

pub fn encode(command: &GenericCommand, base64: bool) -> Encoded {
    let bytes = command.encode_to_vec();
    if base64 {
        Encoded::Text(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        Encoded::Binary(bytes)
    }
}
