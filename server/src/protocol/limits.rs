//! The limits a request must respect, as LeanCloud documents them (`leancloud-rest.md` §3,
//! `realtime-protocol.md` §8). Each is defined here once; REST, the console and the WebSocket gateway all
//! check against these.

/// Largest message, push data included (5 KB), measured by
/// `domain::messaging::message_size`.
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024;
/// Most clients one message may mention (`mentionPids`).
pub const MAX_MENTIONS: usize = 500;
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
/// The largest frame the realtime gateway writes (its write buffer holds one whole frame): every reply it builds
/// stays below it, by the budgets below.
pub const MAX_REPLY_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Bytes of conversations in one `unread` notification: more conversations go in further notifications (the
/// SDK applies each as it comes), so a client with many never gets a frame it cannot be sent.
pub const UNREAD_FRAME_BUDGET: usize = 32 * 1024;
/// Bytes of rows in one `conv/query` answer: rows past it are left out (a shorter page; the client pages on).
pub const QUERY_REPLY_BUDGET: usize = 4 * 1024 * 1024;
/// Most messages a protocol-1 client is pushed at login, over all its conversations (the rest stay in the
/// store, read through `logs`).
pub const OFFLINE_PUSH_TOTAL: usize = 1000;
/// Sessions (client ids) one WebSocket connection may hold: the SDK opens one per `IMClient`, so a few.
pub const MAX_SESSIONS_PER_CONNECTION: usize = 16;
/// Sessions one client id may hold on one instance (its devices and tabs, each on its own connection).
pub const MAX_SESSIONS_PER_CLIENT: usize = 64;
