//! Newtype identifiers, validated when parsed from untrusted input.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Longest client id LeanCloud accepts (in characters).
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// Longest conversation id this crate accepts (LeanCloud's object ids are 24 characters).
pub const MAX_CONVERSATION_ID_CHARS: usize = 128;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl std::str::FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ValidationError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }
    };
}

id_type! {
    /// A LeanCloud IM client id (a conversation member, a sender or a recipient).
    ///
    /// ```
    /// # use leancloud_im::ClientId;
    /// assert_eq!("alice", ClientId::parse("alice").unwrap().as_str());
    /// assert!(ClientId::parse("").is_err());
    /// ```
    ClientId
}

id_type! {
    /// The `objectId` of a `_Conversation`.
    ///
    /// ```
    /// # use leancloud_im::ConversationId;
    /// assert!(ConversationId::parse("558e20cbe4b060308e3eb36c").is_ok());
    /// assert!(ConversationId::parse("a/b").is_err());
    /// ```
    ConversationId
}

id_type! {
    /// A message id (`msg-id`) assigned by the server.
    MessageId
}

fn check_common(kind: &'static str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::EmptyId { kind });
    }
    let len = s.chars().count();
    if len > max {
        return Err(ValidationError::IdTooLong { kind, len, max });
    }
    if s.chars().any(char::is_control) {
        return Err(ValidationError::InvalidId {
            kind,
            reason: "contains a control character",
        });
    }
    Ok(())
}

impl ClientId {
    /// Parse a client id: non-empty, at most [`MAX_CLIENT_ID_CHARS`] characters, no control
    /// characters.
    pub fn parse(s: impl Into<String>) -> Result<ClientId, ValidationError> {
        let s = s.into();
        check_common("client id", &s, MAX_CLIENT_ID_CHARS)?;
        Ok(ClientId(s))
    }
}

impl ConversationId {
    /// Parse a conversation id: non-empty, at most [`MAX_CONVERSATION_ID_CHARS`] characters, and
    /// nothing that would change the meaning of the URL path it is placed in (`/ ? # % \`, spaces).
    pub fn parse(s: impl Into<String>) -> Result<ConversationId, ValidationError> {
        let s = s.into();
        check_common("conversation id", &s, MAX_CONVERSATION_ID_CHARS)?;
        if s.chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%' | '\\'))
        {
            return Err(ValidationError::InvalidId {
                kind: "conversation id",
                reason: "contains a character that is not allowed in a URL path segment",
            });
        }
        // `.` and `..` are dot segments: URL parsing collapses them, so `…/_Conversation/..` would go out
        // as `…/classes/`, another resource.
        if s == "." || s == ".." {
            return Err(ValidationError::InvalidId {
                kind: "conversation id",
                reason: "is a dot segment (. or ..), which URL parsing would remove from the path",
            });
        }
        Ok(ConversationId(s))
    }
}

impl MessageId {
    /// Parse a message id: non-empty, no control characters.
    pub fn parse(s: impl Into<String>) -> Result<MessageId, ValidationError> {
        let s = s.into();
        check_common("message id", &s, 256)?;
        Ok(MessageId(s))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn l10_dot_segments_are_not_conversation_ids() {
        for id in [".", ".."] {
            assert!(ConversationId::parse(id).is_err(), "{id} must be refused");
        }
        assert!(
            ConversationId::parse("...").is_ok(),
            "only the two dot segments are special"
        );
        assert!(ConversationId::parse("a.b").is_ok());
    }

    use super::*;

    #[test]
    fn client_ids_are_validated() {
        assert_eq!(
            Err(ValidationError::EmptyId { kind: "client id" }),
            ClientId::parse("")
        );
        let long = "x".repeat(65);
        assert_eq!(
            Err(ValidationError::IdTooLong {
                kind: "client id",
                len: 65,
                max: 64
            }),
            ClientId::parse(long)
        );
        assert!(ClientId::parse("x".repeat(64)).is_ok());
        assert!(
            ClientId::parse("用户".repeat(32)).is_ok(),
            "the limit counts characters"
        );
        assert!(ClientId::parse("a\nb").is_err());
    }

    #[test]
    fn conversation_ids_reject_path_characters() {
        for bad in ["a/b", "a?b", "a#b", "a b", "a%2F", ""] {
            assert!(
                ConversationId::parse(bad).is_err(),
                "when the id was {bad:?}"
            );
        }
        assert!(ConversationId::parse("5f8e-conv_1").is_ok());
    }

    #[test]
    fn ids_serialize_transparently_and_debug_names_the_type() {
        let id = ClientId::parse("alice").unwrap();
        assert_eq!("\"alice\"", serde_json::to_string(&id).unwrap());
        assert_eq!("ClientId(\"alice\")", format!("{id:?}"));
        assert_eq!("alice", id.to_string());
    }
}
