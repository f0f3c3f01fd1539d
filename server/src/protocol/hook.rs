//! The hooks LeanCloud calls on the app's Cloud Engine (`leancloud-hooks.md`), by name.

/// One hook. `name()` is the function name the Cloud Engine app defines and is called at
/// (`POST /1.1/functions/{name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Before a client's message is stored; may drop it, rewrite it or narrow its recipients.
    MessageReceived,
    /// After a message is stored, for the members who were offline; decides the offline push.
    ReceiversOffline,
    /// After a message is stored and delivered.
    MessageSent,
    /// Before a client's edit or recall is applied; may refuse it or rewrite the new content.
    MessageUpdate,
    /// Before a conversation is created; may reject it.
    ConversationStart,
    /// After a conversation was created.
    ConversationStarted,
    /// Before members are added (invite or join); may reject it.
    ConversationAdd,
    /// Before members are removed (kick); may reject it.
    ConversationRemove,
    /// After members were added.
    ConversationAdded,
    /// After members were removed.
    ConversationRemoved,
    /// Before attributes change; may reject or rewrite them.
    ConversationUpdate,
    /// After a client logged in.
    ClientOnline,
    /// After a client's session ended.
    ClientOffline,
}

impl Hook {
    pub const ALL: [Hook; 13] = [
        Hook::MessageReceived,
        Hook::ReceiversOffline,
        Hook::MessageSent,
        Hook::MessageUpdate,
        Hook::ConversationStart,
        Hook::ConversationStarted,
        Hook::ConversationAdd,
        Hook::ConversationRemove,
        Hook::ConversationAdded,
        Hook::ConversationRemoved,
        Hook::ConversationUpdate,
        Hook::ClientOnline,
        Hook::ClientOffline,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Hook::MessageReceived => "_messageReceived",
            Hook::ReceiversOffline => "_receiversOffline",
            Hook::MessageSent => "_messageSent",
            Hook::MessageUpdate => "_messageUpdate",
            Hook::ConversationStart => "_conversationStart",
            Hook::ConversationStarted => "_conversationStarted",
            Hook::ConversationAdd => "_conversationAdd",
            Hook::ConversationRemove => "_conversationRemove",
            Hook::ConversationAdded => "_conversationAdded",
            Hook::ConversationRemoved => "_conversationRemoved",
            Hook::ConversationUpdate => "_conversationUpdate",
            Hook::ClientOnline => "_clientOnline",
            Hook::ClientOffline => "_clientOffline",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_has_its_own_leancloud_name() {
        let names: std::collections::HashSet<&str> = Hook::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(Hook::ALL.len(), names.len());
        assert!(names.iter().all(|n| n.starts_with('_')));
    }
}
