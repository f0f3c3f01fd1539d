//! Single operations through the functions' own HTTP handler (`im_functions::lambda::handle_http`: route, decode,
//! validate, run, answer), in process: send (`send-message`), recall (`recall-message`) and silence
//! (`mute-members`). What a warm invocation costs beyond the Lambda runtime's own hand-over.

use std::collections::BTreeMap;
use std::time::Instant;

use im_functions::app::App;
use im_functions::lambda::handle_http;
use im_functions::ops::mute_members::MuteMembersOp;
use im_functions::ops::recall_message::RecallMessageOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::ops::Invocation;
use im_functions::Operation;
use leancloud_im::{Client, ClientId, CreateConversation};
use serde_json::{json, Value};

/// An API Gateway HTTP API request as the function receives it (JSON; its type is the handler's).
fn request(method: &str, path: &str, body: &Value) -> Value {
    json!({
        "version": "2.0", "rawPath": path, "rawQueryString": "",
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": body.to_string(), "isBase64Encoded": false
    })
}

/// One call through `Op`'s handler; the answer's JSON body, or why it was not a `200`.
async fn call<Op: Operation>(
    inv: &Invocation<'_>,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value, String> {
    // The bench does not depend on aws_lambda_events: the request and response types are the handler's own,
    // read from and written to JSON.
    let event = serde_json::from_value(request(method, path, &body))
        .map_err(|e| format!("request: {e}"))?;
    let response = handle_http::<Op>(inv, &event).await;
    let response = serde_json::to_value(&response).map_err(|e| format!("response: {e}"))?;
    let text = response["body"].as_str().unwrap_or_default();
    if response["statusCode"] != 200 {
        return Err(format!(
            "{} answered {}: {text}",
            Op::NAME,
            response["statusCode"]
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("{}: {e}", Op::NAME))
}

/// Latency samples (ms) of `fn_send`, `fn_recall` and `fn_silence`: `warmup` untimed, then `iterations` timed
/// sequential calls each. Every recall takes back one of the messages the sends sent; every silence is of a
/// client not silenced yet (lifted again, untimed, after each call).
pub async fn handler_ops(
    client: &Client,
    iterations: u32,
    warmup: u32,
) -> Result<BTreeMap<String, Vec<f64>>, String> {
    let app = App::new(client.clone());
    let inv = Invocation::new(&app);
    let members = ["alice", "bob"]
        .iter()
        .map(|m| ClientId::parse(*m).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let conv = CreateConversation::new()
        .name(format!(
            "bench-handlers-{}",
            chrono::Utc::now().timestamp_millis()
        ))
        .members(members)
        .send(client)
        .await
        .map_err(|e| format!("create conversation: {e}"))?
        .id;
    let total = (iterations + warmup) as usize;
    let mut out = BTreeMap::new();

    let mut sent = Vec::with_capacity(total);
    let mut samples = Vec::with_capacity(iterations as usize);
    for i in 0..total {
        let path = format!("/conversations/{conv}/messages");
        let t0 = Instant::now();
        let answer = call::<SendMessageOp>(
            &inv,
            "POST",
            &path,
            json!({"from_client": "alice", "message": format!("hello {i}")}),
        )
        .await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if i >= warmup as usize {
            samples.push(ms);
        }
        let message = &answer["messages"][0];
        match (message["msg_id"].as_str(), message["timestamp"].as_i64()) {
            (Some(id), Some(ts)) => sent.push((id.to_owned(), ts)),
            _ => return Err(format!("send-message answered no message: {answer}")),
        }
    }
    out.insert("fn_send".into(), samples);

    let mut samples = Vec::with_capacity(iterations as usize);
    for (i, (msg_id, timestamp)) in sent.iter().enumerate() {
        let path = format!("/conversations/{conv}/messages/{msg_id}/recall");
        let body = json!({"from_client": "alice", "timestamp": timestamp});
        let t0 = Instant::now();
        call::<RecallMessageOp>(&inv, "POST", &path, body).await?;
        if i >= warmup as usize {
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out.insert("fn_recall".into(), samples);

    let path = format!("/conversations/{conv}/silenced");
    let mut samples = Vec::with_capacity(iterations as usize);
    for i in 0..total {
        let t0 = Instant::now();
        call::<MuteMembersOp>(&inv, "POST", &path, json!({"client_ids": ["bob"]})).await?;
        if i >= warmup as usize {
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        call::<MuteMembersOp>(&inv, "DELETE", &path, json!({"client_ids": ["bob"]})).await?;
    }
    out.insert("fn_silence".into(), samples);
    Ok(out)
}
