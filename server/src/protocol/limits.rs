//! The limits a request must respect, as LeanCloud documents them (`leancloud-rest.md` §3,
//! `realtime-protocol.md` §8). Each is defined here once; REST, the console and the WebSocket gateway all
//! check against these.

/// Largest message, push data included (5 KB), measured by
/// `domain::messaging::message_size`.
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024;
/// Most recipients of one message to chosen clients (`to_peers`, `toClients`).
pub const MAX_RECIPIENTS: usize = 20;
/// History records of one REST request: the default and the most.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;
pub const MAX_HISTORY_LIMIT: usize = 1000;
/// History records of one realtime `logs` command: the SDK's documented default and the most.
pub const DEFAULT_LOGS: usize = 20;
pub const MAX_LOGS: usize = MAX_HISTORY_LIMIT;
/// Most rows one query may read by default: the bound on the work of one request.
pub const MAX_SCANNED_ROWS: usize = 100_000;
/// How far ahead a broadcast may stay valid (`valid_till`): one calendar month.
pub const BROADCAST_VALID_MONTHS: u32 = 1;
