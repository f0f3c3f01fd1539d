//! Raw Lambda payload bytes → the functions' trigger detection (HTTP API 2.0 / function URL, SQS, classic
//! EventBridge, Scheduler) → each operation's routing, body decoding and validation, as the handler does
//! before any call. Errors are fine; a panic or a hang is a finding.
#![no_main]

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use im_functions::lambda::{http, http_payload, idempotency, sqs, trigger::Trigger};
use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::block_members::BlockMembersOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::mute_members::MuteMembersOp;
use im_functions::ops::recall_message::RecallMessageOp;
use im_functions::ops::remove_member::RemoveMemberOp;
use im_functions::ops::schedules::SchedulesOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::ops::{parse_payload, Operation, TriggerKind};
use im_functions::FunctionError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// What the HTTP adapter answers on a rejection; it must encode without panicking.
fn reject(err: &FunctionError) {
    let _ = err.to_http();
    let _ = err.is_retryable();
    let _ = http::error_response(err);
}

fn one<Op: Operation>(payload: &Value, via: TriggerKind) {
    if !Op::TRIGGERS.contains(&via) {
        return;
    }
    if let Err(err) = parse_payload::<Op>(payload.clone(), None, via) {
        reject(&err);
    }
}

fn every_op(payload: &Value, via: TriggerKind) {
    one::<CreateConversationOp>(payload, via);
    one::<AddMemberOp>(payload, via);
    one::<RemoveMemberOp>(payload, via);
    one::<RecallMessageOp>(payload, via);
    one::<MuteMembersOp>(payload, via);
    one::<BlockMembersOp>(payload, via);
    one::<SendMessageOp>(payload, via);
    one::<BroadcastOp>(payload, via);
    one::<SchedulesOp>(payload, via);
}

fn http_one<Op: Operation>(request: &ApiGatewayV2httpRequest) {
    let _ = http::method_and_path(request);
    let parsed = http_payload::<Op>(request)
        .and_then(|(body, matched)| parse_payload::<Op>(body, matched, TriggerKind::Http));
    if let Err(err) = parsed {
        reject(&err);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = idempotency::eventbridge_key(&payload);
    let trigger = match Trigger::detect(payload) {
        Ok(trigger) => trigger,
        Err(err) => return reject(&err),
    };
    let kind = trigger.kind();
    match trigger {
        Trigger::Http(request) => {
            http_one::<CreateConversationOp>(&request);
            http_one::<AddMemberOp>(&request);
            http_one::<RemoveMemberOp>(&request);
            http_one::<RecallMessageOp>(&request);
            http_one::<MuteMembersOp>(&request);
            http_one::<BlockMembersOp>(&request);
            http_one::<SendMessageOp>(&request);
            http_one::<BroadcastOp>(&request);
            http_one::<SchedulesOp>(&request);
        }
        Trigger::Sqs { records, .. } => {
            for record in &records {
                match sqs::record_payload(record) {
                    Ok(payload) => every_op(&payload, kind),
                    Err(err) => reject(&err),
                }
            }
        }
        Trigger::EventBridge { detail, .. } => every_op(&detail, kind),
        Trigger::Scheduler(input) => every_op(&Value::Object(input), kind),
    }
});
