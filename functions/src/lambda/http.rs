//! HTTP API 2.0 / function URL requests: routing on the raw path, body decoding, and the response encoding.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::JwtPolicy;
use crate::error::{ErrorCode, FunctionError, HttpError};
use crate::ops::caller::Caller;
use crate::ops::input::parse_conversation_id;
use crate::ops::{Matched, Operation, Resource, Route};

/// The request's method and path, with an API Gateway stage prefix removed.
pub fn method_and_path(request: &ApiGatewayV2httpRequest) -> (Method, String) {
    let method = request.request_context.http.method.clone();
    let raw = request.raw_path.as_deref().unwrap_or("/");
    // HTTP APIs with a named (non-$default) stage put the stage in rawPath; function URLs never do.
    let path = match request.request_context.stage.as_deref() {
        Some(stage) if stage != "$default" && !stage.is_empty() => {
            let prefix = format!("/{stage}");
            match raw.strip_prefix(&prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
                _ => raw.to_owned(),
            }
        }
        _ => raw.to_owned(),
    };
    (method, path)
}

/// The caller a request names: a JWT user or admin when API Gateway's JWT authorizer passed claims, else
/// trusted (IAM-signed, or a local call with no authorizer).
pub fn caller(request: &ApiGatewayV2httpRequest, policy: &JwtPolicy) -> Caller {
    let authorizer = request.request_context.authorizer.as_ref();
    let Some(jwt) = authorizer.and_then(|authorizer| authorizer.jwt.as_ref()) else {
        return match authorizer.and_then(|authorizer| authorizer.iam.as_ref()) {
            Some(iam) => Caller::Iam {
                arn: iam.user_arn.clone().unwrap_or_default(),
            },
            None => Caller::Trusted,
        };
    };
    Caller::from_jwt(
        policy,
        |name| jwt.claims.get(name).map(String::as_str),
        jwt.scopes.as_deref(),
    )
}

/// API Gateway's integration timeout: an HTTP API answers `503` this long after it received the request,
/// whatever the function is still doing. The clock includes a cold start's init, which the Lambda deadline
/// does not (review finding U3).
pub const API_GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Kept back from [`API_GATEWAY_TIMEOUT`] so the answer gets back before the gateway gives up.
const API_GATEWAY_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// A `timeEpoch` further than this from now is not a live request's (a saved sample event replayed with
/// `cargo lambda invoke`, or a clock gone wrong): no gateway is waiting on it.
const PLAUSIBLE_REQUEST_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// When an API Gateway caller stops waiting: the request's `timeEpoch` plus the integration timeout (minus a
/// margin), as epoch ms. `None` for function URLs, which wait as long as the function runs, and for events
/// without a plausible time.
pub fn caller_gives_up_at_ms(request: &ApiGatewayV2httpRequest, now_ms: u64) -> Option<u64> {
    let context = &request.request_context;
    let function_url = context
        .domain_name
        .as_deref()
        .is_some_and(|domain| domain.contains(".lambda-url."));
    let received = u64::try_from(context.time_epoch)
        .ok()
        .filter(|ms| *ms > 0)?;
    let plausible = u64::try_from(PLAUSIBLE_REQUEST_AGE.as_millis()).unwrap_or(u64::MAX);
    if function_url || received.abs_diff(now_ms) > plausible {
        return None;
    }
    Some(
        received
            + u64::try_from((API_GATEWAY_TIMEOUT - API_GATEWAY_MARGIN).as_millis()).unwrap_or(0),
    )
}

/// Match the operation's route: the method and the path's resource (a percent-decoded conversation id or
/// schedule name). A known path with another method is `405` (with the methods it takes).
pub fn route<Op: Operation>(request: &ApiGatewayV2httpRequest) -> Result<Matched, FunctionError> {
    let (method, path) = method_and_path(request);
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    // API Gateway has already percent-decoded path parameters; prefer them.
    let parameter = |name: &str, raw: &str| {
        request
            .path_parameters
            .get(name)
            .cloned()
            .unwrap_or_else(|| raw.to_owned())
    };
    // A message id from API Gateway's path parameters (decoded), else the raw segment with its escapes decoded.
    let message_id = |raw: &str| match request.path_parameters.get("msg_id") {
        Some(decoded) => Ok(decoded.clone()),
        None => percent_decoded(raw),
    };
    // The path's resource: a conversation id or schedule name, and a message id.
    let (resource, message, allowed): (Option<String>, Option<String>, &'static str) =
        match (Op::ROUTE, segments.as_slice()) {
            (Route::Conversations, ["conversations"]) => (None, None, "POST"),
            (Route::Conversation { method, segment }, ["conversations", id, last])
                if *last == segment && !id.is_empty() =>
            {
                (Some(parameter("conversation_id", id)), None, method)
            }
            (Route::Message, ["conversations", id, "messages", msg_id])
                if !id.is_empty() && !msg_id.is_empty() =>
            {
                (
                    Some(parameter("conversation_id", id)),
                    Some(message_id(msg_id)?),
                    "PUT",
                )
            }
            (Route::Message, ["conversations", id, "messages", msg_id, "recall"])
                if !id.is_empty() && !msg_id.is_empty() =>
            {
                (
                    Some(parameter("conversation_id", id)),
                    Some(message_id(msg_id)?),
                    "POST",
                )
            }
            (Route::Schedules, ["schedules"]) => (None, None, "GET, POST"),
            (Route::Schedules, ["schedules", name]) if !name.is_empty() => {
                (Some(parameter("name", name)), None, "DELETE")
            }
            _ => {
                return Err(FunctionError::RouteNotFound {
                    method: method.to_string(),
                    path,
                })
            }
        };
    if !allowed
        .split(", ")
        .any(|allowed| allowed == method.as_str())
    {
        return Err(FunctionError::MethodNotAllowed {
            method: method.to_string(),
            path,
            allowed,
        });
    }
    let resource = match (Op::ROUTE, resource, message) {
        (_, None, _) => Resource::Collection,
        (Route::Schedules, Some(name), _) => Resource::Named(name),
        (_, Some(id), Some(msg_id)) => Resource::Message(
            parse_conversation_id(id)?,
            crate::ops::input::message_id(msg_id)?,
        ),
        (_, Some(id), None) => Resource::Conversation(parse_conversation_id(id)?),
    };
    Ok(Matched {
        method: method.to_string(),
        resource,
    })
}

/// A path segment with its `%XX` escapes decoded (a raw path keeps them; API Gateway's path parameters do not).
/// Message ids are base64-like and may hold `/` or `+`, which a caller escapes.
fn percent_decoded(segment: &str) -> Result<String, FunctionError> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    FunctionError::invalid_request(format!(
                        "invalid escape in path segment {segment:?}"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        FunctionError::invalid_request(format!("path segment {segment:?} is not UTF-8"))
    })
}

/// Whether a request with this method carries a body (`GET /schedules` and `DELETE /schedules/{name}` do
/// not; `DELETE …/members` names the members in its body).
pub fn takes_body<Op: Operation>(method: &str) -> bool {
    !(Op::ROUTE == Route::Schedules && method != Method::POST.as_str())
}

/// The request body as JSON; `isBase64Encoded` bodies are decoded first.
pub fn json_body(request: &ApiGatewayV2httpRequest) -> Result<Value, FunctionError> {
    let Some(body) = request.body.as_deref().filter(|body| !body.is_empty()) else {
        return Err(FunctionError::invalid(
            ErrorCode::InvalidJson,
            "the request needs a JSON body",
        ));
    };
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|err| {
                FunctionError::invalid(
                    ErrorCode::InvalidJson,
                    format!("body is not valid base64: {err}"),
                )
            })?
    } else {
        body.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes).map_err(|err| {
        FunctionError::invalid(
            ErrorCode::InvalidJson,
            format!("body is not valid JSON: {err}"),
        )
    })
}

/// A JSON response.
pub fn response(status: u16, body: &impl Serialize) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    response.body = Some(Body::Text(text));
    response
}

/// The error response: `{"error":{"code","message"[,"leancloud_code"]}}` plus `Retry-After` / `Allow`.
pub fn error_response(err: &FunctionError) -> ApiGatewayV2httpResponse {
    let HttpError {
        status,
        code,
        message,
        leancloud_code,
        retry_after,
    } = err.to_http();
    let mut error = json!({ "code": code, "message": message });
    if let Some(leancloud_code) = leancloud_code {
        error["leancloud_code"] = json!(leancloud_code);
    }
    let mut response = response(status, &json!({ "error": error }));
    if let Some(retry_after) = retry_after {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        response
            .headers
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let FunctionError::MethodNotAllowed { allowed, .. } = err {
        response
            .headers
            .insert(ALLOW, HeaderValue::from_static(allowed));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::add_member::AddMemberOp;
    use crate::ops::create_conversation::CreateConversationOp;
    use crate::ops::mute_members::MuteMembersOp;
    use crate::ops::recall_message::RecallMessageOp;
    use crate::ops::remove_member::RemoveMemberOp;
    use leancloud_im::{ConversationId, MessageId};
    use serde_json::json;

    fn request(
        method: &str,
        path: &str,
        stage: &str,
        body: Option<&str>,
        base64: bool,
    ) -> ApiGatewayV2httpRequest {
        serde_json::from_value(json!({
            "version": "2.0", "rawPath": path, "rawQueryString": "",
            "requestContext": {"http": {"method": method, "path": path}, "stage": stage},
            "body": body, "isBase64Encoded": base64
        }))
        .expect("valid request")
    }

    #[test]
    fn routes_on_the_raw_path_with_or_without_a_stage() {
        let cases = [
            ("/conversations/c1/members", "$default", Some("c1")),
            ("/conversations/c1/members/", "$default", Some("c1")),
            ("/prod/conversations/c1/members", "prod", Some("c1")),
        ];
        for (path, stage, expected) in cases {
            let actual =
                route::<AddMemberOp>(&request("POST", path, stage, None, false)).expect("routed");
            let Resource::Conversation(id) = actual.resource else {
                panic!("no conversation for {path}")
            };
            assert_eq!(expected, Some(id.as_ref()), "for {path} on stage {stage}");
        }
        assert_eq!(
            Resource::Collection,
            route::<CreateConversationOp>(&request(
                "POST",
                "/conversations",
                "$default",
                None,
                false
            ))
            .expect("routed")
            .resource
        );
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405() {
        let not_found = route::<AddMemberOp>(&request(
            "POST",
            "/conversations/c1/messages",
            "$default",
            None,
            false,
        ));
        assert_eq!(404, not_found.expect_err("no route").to_http().status);
        let not_found =
            route::<CreateConversationOp>(&request("POST", "/", "$default", None, false));
        assert_eq!(404, not_found.expect_err("no route").to_http().status);
        let wrong_method = route::<AddMemberOp>(&request(
            "GET",
            "/conversations/c1/members",
            "$default",
            None,
            false,
        ));
        let err = wrong_method.expect_err("wrong method");
        assert_eq!(405, err.to_http().status);
        let response = error_response(&err);
        assert_eq!(
            Some("POST"),
            response.headers.get(ALLOW).and_then(|v| v.to_str().ok())
        );
        let err = route::<RemoveMemberOp>(&request(
            "POST",
            "/conversations/c1/members",
            "$default",
            None,
            false,
        ))
        .expect_err("remove-member takes DELETE");
        assert_eq!(
            Some("DELETE"),
            error_response(&err)
                .headers
                .get(ALLOW)
                .and_then(|v| v.to_str().ok())
        );
    }

    #[test]
    fn message_routes_name_the_conversation_and_the_message() {
        let matched = |method: &str, path: &str| {
            route::<RecallMessageOp>(&request(method, path, "$default", None, false))
        };
        let recall = matched("POST", "/conversations/c1/messages/m1/recall").expect("routed");
        assert_eq!("POST", recall.method);
        assert_eq!(
            Resource::Message(
                ConversationId::parse("c1").expect("id"),
                MessageId::parse("m1").expect("id")
            ),
            recall.resource
        );
        let edit = matched(
            "PUT",
            "/prod/conversations/c1/messages/a%2Fb%2Bc"
                .replace("/prod", "")
                .as_str(),
        )
        .expect("routed");
        assert_eq!(
            Resource::Message(
                ConversationId::parse("c1").expect("id"),
                MessageId::parse("a/b+c").expect("id")
            ),
            edit.resource,
            "escapes in the raw path are decoded"
        );
        for (method, path, status, allow) in [
            (
                "PUT",
                "/conversations/c1/messages/m1/recall",
                405,
                Some("POST"),
            ),
            ("POST", "/conversations/c1/messages/m1", 405, Some("PUT")),
            ("DELETE", "/conversations/c1/messages/m1", 405, Some("PUT")),
            ("POST", "/conversations/c1/messages", 404, None),
            ("POST", "/conversations/c1/messages/m1/edit", 404, None),
        ] {
            let err = matched(method, path).expect_err("refused");
            assert_eq!(status, err.to_http().status, "{method} {path}");
            assert_eq!(
                allow,
                error_response(&err)
                    .headers
                    .get(ALLOW)
                    .and_then(|v| v.to_str().ok()),
                "{method} {path}"
            );
        }
        for bad in ["%zz", "%+1", "m%2", "%C3%28"] {
            let path = format!("/conversations/c1/messages/{bad}/recall");
            assert_eq!(
                400,
                matched("POST", &path)
                    .expect_err("bad escape")
                    .to_http()
                    .status,
                "{path}"
            );
        }
    }

    #[test]
    fn a_route_with_two_methods_takes_both_and_names_them_in_allow() {
        for method in ["POST", "DELETE"] {
            let matched = route::<MuteMembersOp>(&request(
                method,
                "/conversations/c1/silenced",
                "$default",
                None,
                false,
            ))
            .expect("routed");
            assert_eq!(method, matched.method);
        }
        let err = route::<MuteMembersOp>(&request(
            "GET",
            "/conversations/c1/silenced",
            "$default",
            None,
            false,
        ))
        .expect_err("GET is not served");
        assert_eq!(
            Some("POST, DELETE"),
            error_response(&err)
                .headers
                .get(ALLOW)
                .and_then(|v| v.to_str().ok())
        );
    }

    /// U3: API Gateway answers 503 thirty seconds after it received the request, cold start included, while
    /// the function's own deadline was the Lambda timeout (30 s from the handler's start): a send could
    /// still go out after the caller had been told it failed, and its retry sent it again. Before the fix no
    /// HTTP deadline came from the request at all.
    #[test]
    fn u3_the_work_stops_before_api_gateway_gives_up() {
        let now = 1_800_000_000_000u64;
        let mut gateway = request("POST", "/conversations", "$default", None, false);
        gateway.request_context.time_epoch = i64::try_from(now - 8_000).expect("ms");
        assert_eq!(
            Some(now + 21_000),
            caller_gives_up_at_ms(&gateway, now),
            "8 s of cold start leave 21 s"
        );
        let mut function_url = gateway.clone();
        function_url.request_context.domain_name = Some("abc.lambda-url.us-east-1.on.aws".into());
        assert_eq!(
            None,
            caller_gives_up_at_ms(&function_url, now),
            "function URLs wait for the function"
        );
        let mut sample = gateway.clone();
        sample.request_context.time_epoch = 1_767_571_200_000;
        assert_eq!(
            None,
            caller_gives_up_at_ms(&sample, now),
            "a replayed sample event"
        );
    }

    #[test]
    fn decodes_plain_and_base64_bodies_and_rejects_bad_json() {
        let plain =
            json_body(&request("POST", "/", "$default", Some(r#"{"a":1}"#), false)).expect("json");
        assert_eq!(json!({"a": 1}), plain);
        let encoded = json_body(&request(
            "POST",
            "/",
            "$default",
            Some("eyJhIjoxfQ=="),
            true,
        ))
        .expect("json");
        assert_eq!(json!({"a": 1}), encoded);
        for (body, base64) in [
            (Some("{not json"), false),
            (None, false),
            (Some("!!"), true),
        ] {
            let err =
                json_body(&request("POST", "/", "$default", body, base64)).expect_err("rejected");
            assert_eq!(
                (400, ErrorCode::InvalidJson),
                (err.to_http().status, err.to_http().code),
                "for body {body:?}"
            );
        }
    }

    #[test]
    fn error_responses_carry_code_message_and_retry_after() {
        let err = FunctionError::invalid(ErrorCode::TooManyRecipients, "too many");
        let response = error_response(&err);
        assert_eq!(400, response.status_code);
        let Some(Body::Text(text)) = &response.body else {
            panic!("text body")
        };
        assert_eq!(
            json!({"error": {"code": "too_many_recipients", "message": "too many"}}),
            serde_json::from_str::<Value>(text).expect("json")
        );
    }
}
