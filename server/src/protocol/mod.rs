//! LeanCloud's protocol facts, in one place and with no I/O: error codes and the reasons the realtime
//! protocol names them by, limits, the hook names, `_Conversation`'s field names. A leaf: it imports nothing
//! from the crate, so every layer above (store, presence, domain, the REST, console and WebSocket adapters)
//! reads the same definitions instead of keeping copies that drift.

pub mod codes;
pub mod conversation;
pub mod hook;
pub mod limits;
pub mod records;

pub use codes::Reason;
pub use hook::Hook;
