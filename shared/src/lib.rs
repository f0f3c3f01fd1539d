//! A client for LeanCloud's instant-messaging server API (REST API 1.1), sending the same requests
//! as the official Python SDK (`leancloud` 3.0.2): conversations, members, messages, system
//! messages to chosen clients, broadcasts, offline push payloads and message history. The 1.2
//! REST server API (`/1.2/rtm/…`: edit and recall, silence, blacklists, member roles, chat rooms,
//! service conversations, online checks) is in [`rtm2`].
//!
//! Requests are plain data implementing [`Request`]; a [`Client`] signs, sends and retries them.
//! Every request type has `.send(&client)`.
//!
//! ```
//! use leancloud_im::{
//!     AddMembers, Badge, ClientId, Client, Config, CreateConversation, PushData, SendMessage,
//! };
//! use wiremock::matchers::{body_string, method, path};
//! use wiremock::{Mock, MockServer, ResponseTemplate};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A stand-in for LeanCloud (or for this project's local server).
//! let server = MockServer::start().await;
//! Mock::given(method("POST"))
//!     .and(path("/1.1/classes/_Conversation"))
//!     .respond_with(ResponseTemplate::new(201).set_body_string(
//!         r#"{"objectId":"558e20cbe4b060308e3eb36c","createdAt":"2015-06-29T01:39:35.931Z"}"#,
//!     ))
//!     .mount(&server)
//!     .await;
//! Mock::given(method("PUT"))
//!     .and(body_string(r#"{"m":{"__op":"AddUnique","objects":["carol"]}}"#))
//!     .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"updatedAt":"2015-06-30T18:02:52.248Z"}"#))
//!     .mount(&server)
//!     .await;
//! Mock::given(method("POST"))
//!     .and(path("/1.1/rtm/messages"))
//!     .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"msg-id":"qNkRkFWOeSqP65S9fDyHJw","timestamp":1495431811151}"#))
//!     .mount(&server)
//!     .await;
//!
//! // Usually `Config::from_env()`: LEANCLOUD_APP_ID, LEANCLOUD_APP_MASTER_KEY, LEANCLOUD_API_SERVER…
//! let config = Config::builder("dev-app-id-gzGzoHsz")
//!     .master_key("dev-master-key")
//!     .api_server(server.uri())
//!     .build()?;
//! let client = Client::new(config)?;
//!
//! let alice = ClientId::parse("alice")?;
//! let bob = ClientId::parse("bob")?;
//! let created = CreateConversation::new()
//!     .name("team")
//!     .members([&alice, &bob])
//!     .attribute("topic", "launch")
//!     .send(&client)
//!     .await?;
//!
//! AddMembers::new(&created.id, [ClientId::parse("carol")?]).send(&client).await?;
//!
//! let sent = SendMessage::new(&created.id, &alice, "hello")
//!     .push(PushData::new().alert("New message").badge(Badge::Increment))
//!     .send(&client)
//!     .await?;
//! assert_eq!(Some(1495431811151), sent.timestamp);
//! # Ok(())
//! # }
//! ```
//!
//! # Configuration
//!
//! [`Config::from_env`] reads `LEANCLOUD_APP_ID`, `LEANCLOUD_APP_MASTER_KEY` (required),
//! `LEANCLOUD_APP_KEY`, `LEANCLOUD_APP_HOOK_KEY`, `LEANCLOUD_API_SERVER` (or `LC_API_SERVER`) and
//! `LEANCLOUD_APP_ENV` (`stage` → `X-LC-Prod: 0`). Without an API server, the host is derived from
//! the app id as the SDK's `AppRouter` does before its first refresh (see [`default_api_server`]).
//! Keys are [`secrecy::SecretString`]s and never appear in `Debug` output or errors.
//!
//! # Errors and retries
//!
//! Every failure is an [`Error`]. LeanCloud's `{"code","error"}` body becomes [`Error::Api`] with
//! the HTTP status — also on a `200`, since the SDK treats any JSON body with an `error` key as an
//! error. HTTP 429 becomes [`Error::RateLimited`] with [`Error::retry_after`] (the `Retry-After`
//! header, else LeanCloud's one-minute penalty) and is never retried automatically. Gateway HTML,
//! plain text and empty bodies become [`Error::Status`]. [`Client::execute_until`] retries
//! connection failures, timeouts and 5xx answers with jittered exponential backoff inside the
//! caller's deadline, but a request that may already have been applied (a send, a broadcast, a
//! create) is retried only when the connection could not be established.
//!
//! # Differences from the Python SDK
//!
//! Method, path, query string and body bytes equal the SDK's (the tests compare them with
//! requests captured from SDK 3.0.2), except for the following deliberate differences:
//!
//! * **Broadcast push payload in `push`.** The SDK sends a broadcast's push payload as
//!   `push_data`; LeanCloud's API documents `push` (and the JS SDK sends `push`), so [`Broadcast`]
//!   sends `push`. Sends ([`SendMessage`]) use `push_data`, as documented and as the SDK does.
//! * **`valid_till` as a timestamp works.** The SDK crashes (`TypeError`) on a `datetime`
//!   `valid_till` and sends nothing; [`ValidTill`] takes a `DateTime<Utc>` or epoch milliseconds
//!   and sends epoch milliseconds. It must be in the future and at most one month ahead.
//! * **Adding members uses `AddUnique`.** The SDK's `add_member` sends `{"__op":"Add"}`, which
//!   duplicates members when a request is repeated; [`AddMembers`] sends `AddUnique` (idempotent,
//!   so it can be retried). Creating a conversation with members still sends `Add`, like the SDK.
//!   Repeated ids are sent once, in the caller's order (the SDK's `AddUnique` uses a `set`, whose
//!   order is arbitrary).
//! * **An empty recipient list is an error.** The SDK drops an empty `to_clients` and sends to the
//!   whole conversation; here it is [`ValidationError::NoRecipients`]. More than
//!   [`MAX_RECIPIENTS`] or repeated recipients, a message over [`MAX_MESSAGE_BYTES`] (push payload
//!   included) and other invalid input ([`ValidationError`]) are rejected before any request is
//!   sent; the SDK sends them and leaves the server to answer. (An empty push payload is omitted,
//!   as the SDK does.)
//! * **Non-string JSON messages.** A JSON object message is serialised and embedded as a string
//!   exactly as the SDK does; other JSON values (arrays, numbers), which the SDK passes through
//!   unconverted and LeanCloud rejects, are serialised to a string the same way.
//! * **HTTP status is checked.** The SDK ignores the status, so `500 {"foo":1}` is a success for it
//!   and a `text/plain` 429 or an empty body raise a JSON decoding exception; here they are
//!   [`Error::Status`] / [`Error::RateLimited`]. An exact `text/html` answer, which the SDK reports
//!   as `[-1] Bad Request`, is [`Error::Status`] with the status and the start of the body.
//! * **`User-Agent`** is `leancloud-im-rust/<version>` ([`USER_AGENT`]) instead of
//!   `AVOS Cloud python-2.1.9 SDK (3.11)`; no `Accept-Encoding: gzip, deflate` is sent.
//! * **Trailing slash in the API server.** `http://host/` gives `http://host/1.1/…` rather than the
//!   SDK's `http://host//1.1/…`.
//! * **Master key always.** Every request is signed with the master key (`…,master`); the SDK's
//!   app-key-only signing is not offered since the IM operations require the master key.
//! * **Retries.** The SDK never retries; see above for what this client retries.
//! * **No app router call.** The default host is derived from the app id; the SDK would refresh it
//!   from `app-router.com` in the background. Set `LEANCLOUD_API_SERVER` for any other host.
//! * **Query for a missing conversation.** [`GetConversation`] turns LeanCloud's `200 {}` into
//!   [`Error::Api`] with code 101 instead of an empty object.
//! * **History `before`.** The SDK multiplies `before_time` seconds by 1000 and may send a float;
//!   [`MessageHistory::before`] takes integer milliseconds, as in the captures.
#![warn(missing_docs)]

mod client;
mod config;
mod conversations;
mod error;
mod ids;
pub mod json;
mod messages;
pub mod protocol;
mod push;
mod request;
pub mod retry;
pub mod rtm2;
pub mod tls;

#[doc(hidden)]
pub use client::decode_response;
pub use client::{sign, Client, ClientOptions, CONTENT_TYPE, USER_AGENT};
pub use config::{
    default_api_server, Config, ConfigBuilder, ConfigError, ENV_API_SERVER,
    ENV_API_SERVER_FALLBACK, ENV_APP_ENV, ENV_APP_ID, ENV_APP_KEY, ENV_HAVE_STAGING, ENV_HOOK_KEY,
    ENV_MASTER_KEY,
};
pub use conversations::{
    date_value, AddMembers, Conversation, CreateConversation, CreatedObject, DeleteConversation,
    GetConversation, QueryConversations, QueryResult, RemoveMembers, UpdatedObject,
};
pub use error::{ApiError, Error, Result, ValidationError, MAX_RETRY_AFTER, RATE_LIMIT_PENALTY};
pub use ids::{
    ClientId, ConversationId, MessageId, MAX_CLIENT_ID_CHARS, MAX_CONVERSATION_ID_CHARS,
};
pub use messages::{
    Broadcast, HistoryRecord, MessageBody, MessageHistory, SendMessage, SentMessage, ValidTill,
};
pub use protocol::{MAX_HISTORY_LIMIT, MAX_MEMBERS, MAX_MESSAGE_BYTES, MAX_RECIPIENTS};
pub use push::{Badge, PlatformPush, PushData};
pub use request::{encode_query, quote_plus, Request, API_VERSION, API_VERSION_2};
pub use retry::{Outcome as RetryOutcome, RetryClass, RetryPolicy};
pub use secrecy;
pub use tls::{TlsRoots, ENV_TLS_ROOTS};
