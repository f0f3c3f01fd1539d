//! The realtime gateway's frames: bytes as a binary frame (`lc.protobuf2.*`) and as a base64 text frame
//! (`lc.proto2base64.*`) → `GenericCommand`, and every decoded command re-encoded in both framings must
//! decode to the same command. The input as a `Sec-WebSocket-Protocol` header goes through negotiation.
#![no_main]

use leancloud_server::ws::frame::{decode, encode, Encoded, Subprotocol};
use leancloud_server::realtime::proto::GenericCommand;
use libfuzzer_sys::fuzz_target;

fn round_trip(command: &GenericCommand) {
    let _ = (command.command(), command.operation());
    for base64 in [false, true] {
        let again = match encode(command, base64) {
            Encoded::Binary(bytes) => decode(&bytes, false),
            Encoded::Text(text) => decode(text.as_bytes(), true),
        };
        assert_eq!(Ok(command), again.as_ref(), "base64: {base64}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = decode(data, false) {
        round_trip(&command);
    }
    if let Ok(command) = decode(data, true) {
        round_trip(&command);
    }
    if let Ok(header) = std::str::from_utf8(data) {
        if let Some((name, protocol)) = Subprotocol::negotiate(header) {
            assert_eq!(
                Some(protocol),
                Subprotocol::parse(protocol.name()),
                "{name}"
            );
        }
    }
});
