//! `_Conversation`: its class name and the fields the server owns (`leancloud-rest.md` §4).

pub const CLASS: &str = "_Conversation";
/// Members (an array of client ids).
pub const MEMBERS: &str = "m";
/// The client that created it.
pub const CREATOR: &str = "c";
/// Members who muted it (no offline push).
pub const MUTED: &str = "mu";
/// A chat room (transient conversation).
pub const TRANSIENT: &str = "tr";
/// A service (system) conversation.
pub const SYSTEM: &str = "sys";
/// The time of the last message.
pub const LAST_MESSAGE_AT: &str = "lm";
/// One conversation per member set.
pub const UNIQUE: &str = "unique";
pub const UNIQUE_ID: &str = "uniqueId";

/// Fields the server owns: a client's custom attributes (`attr` of `conv/start` and `conv/update`, the
/// console's `attributes`) may not set them.
pub const SERVER_FIELDS: [&str; 12] = [
    "objectId",
    "createdAt",
    "updatedAt",
    "ACL",
    CREATOR,
    MEMBERS,
    MUTED,
    TRANSIENT,
    SYSTEM,
    LAST_MESSAGE_AT,
    UNIQUE,
    UNIQUE_ID,
];

/// Whether `key` (or the top-level field of a dotted `attr.x` key) is one the server owns.
pub fn is_server_field(key: &str) -> bool {
    SERVER_FIELDS.contains(&key.split('.').next().unwrap_or(""))
}
