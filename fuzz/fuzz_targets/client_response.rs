//! leancloud-im's response handling: an HTTP status, a `Retry-After` header and a body → each request
//! type's typed response, or a typed error (API error, status error, rate limit, decode failure), exactly as
//! `Client::execute` decides after an attempt. Errors are fine; a panic, a hang, or a `Retry-After` that a
//! caller cannot add to `Instant::now()` is a finding.
//!
//! Input: the status on the first line, the `Retry-After` value on the second (absent when the line is
//! empty), the body after it.
#![no_main]

use std::time::Instant;

use http::{HeaderMap, HeaderValue, StatusCode};
use leancloud_im::{
    decode_response, AddMembers, Broadcast, ClientId, ConversationId, CreateConversation,
    DeleteConversation, Error, GetConversation, MessageHistory, QueryConversations, RemoveMembers,
    Request, RetryClass, SendMessage,
};
use libfuzzer_sys::fuzz_target;

fn check(error: &Error) {
    let _ = error.to_string();
    let _ = (
        error.is_retryable(),
        error.status(),
        error.api_code(),
        error.api(),
    );
    let _ = RetryClass::of(error);
    if let Some(wait) = error.retry_after() {
        // What callers do with it (the functions' budget pauses until `now + retry_after`).
        assert!(
            Instant::now().checked_add(wait).is_some(),
            "Retry-After {wait:?} cannot be waited for"
        );
    }
}

fn decode<R: Request>(request: &R, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    let url = "https://api.example.com/1.1/classes/_Conversation";
    if let Err(error) = decode_response(request, url, status, headers.clone(), body.to_vec()) {
        check(&error);
    }
}

fuzz_target!(|input: &[u8]| {
    let mut parts = input.splitn(3, |b| *b == b'\n');
    let status = parts.next().unwrap_or_default();
    let retry_after = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let Some(status) = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return;
    };
    let mut headers = HeaderMap::new();
    if !retry_after.is_empty() {
        if let Ok(value) = HeaderValue::from_bytes(retry_after) {
            headers.insert(http::header::RETRY_AFTER, value);
        }
    }
    let (Ok(conv), Ok(from)) = (ConversationId::parse("c1"), ClientId::parse("alice")) else {
        return;
    };
    decode(&CreateConversation::new(), status, &headers, body);
    decode(&GetConversation::new(conv.clone()), status, &headers, body);
    decode(&QueryConversations::new(), status, &headers, body);
    decode(
        &DeleteConversation::new(conv.clone()),
        status,
        &headers,
        body,
    );
    decode(
        &AddMembers::new(conv.clone(), [from.clone()]),
        status,
        &headers,
        body,
    );
    decode(
        &RemoveMembers::new(conv.clone(), [from.clone()]),
        status,
        &headers,
        body,
    );
    decode(
        &SendMessage::new(conv.clone(), from.clone(), "hi"),
        status,
        &headers,
        body,
    );
    decode(
        &Broadcast::new(conv.clone(), from, "hi"),
        status,
        &headers,
        body,
    );
    decode(&MessageHistory::conversation(conv), status, &headers, body);
});
