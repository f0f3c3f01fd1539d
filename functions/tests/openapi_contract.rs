//! The request bodies of `functions/openapi.yaml` against the Rust decoding: every request schema of the spec,
//! walked from its `requestBody`, names exactly the fields the operation's body takes, and a field is nullable in
//! the code exactly when the spec types it `[…, 'null']` or marks it `nullable: true`.
//!
//! Before, every optional field was an `Option` that serde also filled from `null`, so `{"attributes": null}` on
//! `POST /conversations` was accepted where the spec says object (review part 3, OpenAPI note).
//!
//! The spec is read with a few lines of indentation scanning, not a YAML library: it is block YAML with the
//! properties of a schema one level under `properties:`, which is all this needs.

// Helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::block_members::BlockMembersOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::mute_members::MuteMembersOp;
use im_functions::ops::recall_message::RecallMessageOp;
use im_functions::ops::remove_member::RemoveMemberOp;
use im_functions::ops::schedules::SchedulesOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::ops::{parse_payload, Matched, Resource};
use im_functions::{FunctionError, Operation, TriggerKind};
use leancloud_im::{ConversationId, MessageId};
use serde_json::{json, Value};

const SPEC: &str = include_str!("../openapi.yaml");

/// One request schema of the spec: its properties (with whether each is nullable) and its required fields.
#[derive(Debug, Default)]
struct Schema {
    properties: BTreeMap<String, bool>,
    required: BTreeSet<String>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `operationId` → the schema its `requestBody` refers to, for every operation that has a body.
fn request_bodies() -> BTreeMap<String, String> {
    let mut bodies = BTreeMap::new();
    let (mut operation, mut in_body) = (None::<String>, false);
    for line in SPEC.lines() {
        let text = line.trim();
        if let Some(id) = text.strip_prefix("operationId:") {
            operation = Some(id.trim().to_owned());
            in_body = false;
        } else if text == "requestBody:" {
            in_body = true;
        } else if in_body {
            if let Some(rest) = text.split("$ref: '#/components/schemas/").nth(1) {
                let schema = rest.split('\'').next().expect("quoted ref");
                let operation = operation.clone().expect("requestBody inside an operation");
                bodies.insert(operation, schema.to_owned());
                in_body = false;
            }
        }
    }
    bodies
}

/// The block of `components.schemas.<name>`, parsed for its top-level properties and `required`.
fn schema(name: &str) -> Schema {
    let lines: Vec<&str> = SPEC.lines().collect();
    let start = lines
        .iter()
        .position(|line| indent(line) == 4 && line.trim() == format!("{name}:"))
        .unwrap_or_else(|| panic!("schema {name} not in the spec"));
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|line| line.trim().is_empty() || indent(line) > 4)
        .copied()
        .collect();
    let mut schema = Schema::default();
    let mut in_properties = false;
    let mut current: Option<(String, String)> = None;
    let finish = |current: &mut Option<(String, String)>, schema: &mut Schema| {
        if let Some((field, text)) = current.take() {
            let nullable = text.contains("'null'") || text.contains("nullable: true");
            schema.properties.insert(field, nullable);
        }
    };
    for line in body {
        let text = line.trim();
        match indent(line) {
            6 => {
                finish(&mut current, &mut schema);
                in_properties = text == "properties:";
                if let Some(list) = text.strip_prefix("required:") {
                    schema.required = list
                        .trim()
                        .trim_matches(|c| c == '[' || c == ']')
                        .split(',')
                        .map(|field| field.trim().to_owned())
                        .filter(|field| !field.is_empty())
                        .collect();
                }
            }
            8 if in_properties => {
                finish(&mut current, &mut schema);
                let (field, rest) = text.split_once(':').expect("`field: …`");
                current = Some((field.to_owned(), rest.to_owned()));
            }
            _ if in_properties => {
                if let Some((_, text)) = &mut current {
                    text.push('\n');
                    text.push_str(line);
                }
            }
            _ => {}
        }
    }
    finish(&mut current, &mut schema);
    assert!(
        !schema.properties.is_empty(),
        "schema {name}: no properties found"
    );
    schema
}

/// How the contract test drives one operation: a valid body, and the route the body goes to.
struct Case {
    valid: Value,
    matched: Matched,
    check: fn(Value, Matched) -> Result<(), FunctionError>,
    nullable_in_code: &'static [&'static str],
    name: &'static str,
    /// Fields the operation's body type has but this route refuses (`400`): one body type serves two routes,
    /// e.g. `ttl` is taken by `POST …/silenced` and refused by `DELETE …/silenced`.
    refused: &'static [&'static str],
}

fn run<Op: Operation>(payload: Value, matched: Matched) -> Result<(), FunctionError> {
    parse_payload::<Op>(payload, Some(matched), TriggerKind::Http).map(drop)
}

fn conversation(method: &str) -> Matched {
    Matched {
        method: method.to_owned(),
        resource: Resource::Conversation(
            ConversationId::parse("6b0738e4a1b2c3d4e5f60718").unwrap(),
        ),
    }
}

fn message(method: &str) -> Matched {
    Matched {
        method: method.to_owned(),
        resource: Resource::Message(
            ConversationId::parse("6b0738e4a1b2c3d4e5f60718").unwrap(),
            MessageId::parse("qNkRkFWOeSqP65S9fDyHJw").unwrap(),
        ),
    }
}

fn case<Op: Operation>(valid: Value, matched: Matched) -> Case {
    Case {
        valid,
        matched,
        check: run::<Op>,
        nullable_in_code: Op::NULLABLE_FIELDS,
        name: Op::NAME,
        refused: &[],
    }
}

fn refusing(case: Case, refused: &'static [&'static str]) -> Case {
    Case { refused, ..case }
}

/// Every operation of the spec that takes a body, by `operationId`.
fn cases() -> BTreeMap<&'static str, Case> {
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    BTreeMap::from([
        (
            "createConversation",
            case::<CreateConversationOp>(
                json!({"name": "n", "members": ["alice"]}),
                Matched {
                    method: "POST".into(),
                    resource: Resource::Collection,
                },
            ),
        ),
        (
            "addMembers",
            case::<AddMemberOp>(json!({"client_ids": ["alice"]}), conversation("POST")),
        ),
        (
            "removeMembers",
            case::<RemoveMemberOp>(json!({"client_ids": ["alice"]}), conversation("DELETE")),
        ),
        (
            "editMessage",
            case::<RecallMessageOp>(
                json!({"from_client": "alice", "message": "v2", "timestamp": 1795626000123_i64}),
                message("PUT"),
            ),
        ),
        (
            "recallMessage",
            refusing(
                case::<RecallMessageOp>(
                    json!({"from_client": "alice", "timestamp": 1795626000123_i64}),
                    message("POST"),
                ),
                &["message"],
            ),
        ),
        (
            "muteMembers",
            case::<MuteMembersOp>(
                json!({"client_ids": ["bob"], "ttl": 60}),
                conversation("POST"),
            ),
        ),
        (
            "unmuteMembers",
            refusing(
                case::<MuteMembersOp>(json!({"client_ids": ["bob"]}), conversation("DELETE")),
                &["ttl"],
            ),
        ),
        (
            "blockMembers",
            case::<BlockMembersOp>(json!({"client_ids": ["bob"]}), conversation("POST")),
        ),
        (
            "unblockMembers",
            case::<BlockMembersOp>(json!({"client_ids": ["bob"]}), conversation("DELETE")),
        ),
        (
            "sendMessage",
            case::<SendMessageOp>(
                json!({"from_client": "alice", "message": "hi"}),
                conversation("POST"),
            ),
        ),
        (
            "broadcast",
            case::<BroadcastOp>(
                json!({"from_client": "system", "message": "hi"}),
                conversation("POST"),
            ),
        ),
        (
            "createSchedule",
            case::<SchedulesOp>(
                json!({"operation": "broadcast", "conversation_id": "c1",
                       "payload": {"from_client": "system", "message": "hi"}, "send_at": in_an_hour}),
                Matched {
                    method: "POST".into(),
                    resource: Resource::Collection,
                },
            ),
        ),
    ])
}

/// The fields the Rust body takes, read from serde's own "unknown field …, expected one of …" message.
fn fields_in_code(case: &Case) -> BTreeSet<String> {
    let mut probe = case.valid.clone();
    probe["zz_not_a_field"] = json!(1);
    let err = (case.check)(probe, case.matched.clone()).expect_err("an unknown field is refused");
    let message = err.to_string();
    // serde: "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, `c`".
    let expected = message
        .split("expected ")
        .nth(1)
        .unwrap_or_else(|| panic!("{}: no field list in {message:?}", case.name));
    expected
        .trim_start_matches("one of ")
        .split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|field| field.trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn openapi_every_request_schema_matches_the_decoding() {
    let bodies = request_bodies();
    let cases = cases();
    assert_eq!(
        cases
            .keys()
            .copied()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
        bodies.keys().cloned().collect::<BTreeSet<_>>(),
        "every operation with a request body in the spec has a case here, and no other"
    );
    for (operation, schema_name) in &bodies {
        let case = &cases[operation.as_str()];
        let schema = schema(schema_name);
        (case.check)(case.valid.clone(), case.matched.clone())
            .unwrap_or_else(|err| panic!("{operation}: the valid body is refused: {err}"));

        let in_spec: BTreeSet<String> = schema.properties.keys().cloned().collect();
        let mut in_code = fields_in_code(case);
        for field in case.refused {
            assert!(
                in_code.remove(*field),
                "{operation}: refused field `{field}` is not a field of the body"
            );
            let mut body = case.valid.clone();
            body[*field] = json!(1);
            let err = (case.check)(body, case.matched.clone()).expect_err(&format!(
                "{operation}: `{field}` must be refused on this route"
            ));
            assert_eq!(400, err.to_http().status, "{operation}.{field}: {err}");
        }
        assert_eq!(
            in_spec, in_code,
            "{operation} ({schema_name}): the fields differ"
        );
        assert!(
            schema.required.is_subset(&in_spec),
            "{operation}: required fields are properties"
        );

        let nullable_in_spec: BTreeSet<&str> = schema
            .properties
            .iter()
            .filter(|(_, nullable)| **nullable)
            .map(|(field, _)| field.as_str())
            .collect();
        assert_eq!(
            nullable_in_spec,
            case.nullable_in_code
                .iter()
                .copied()
                .collect::<BTreeSet<_>>(),
            "{operation} ({schema_name}): Operation::NULLABLE_FIELDS differs from the spec"
        );

        for (field, nullable) in &schema.properties {
            let mut body = case.valid.clone();
            body[field.as_str()] = Value::Null;
            let result = (case.check)(body, case.matched.clone());
            if *nullable {
                // Accepted, or refused for another reason than the null (e.g. a required value left out).
                if let Err(err) = result {
                    assert!(
                        !err.to_string().contains("is null"),
                        "{operation}: `{field}` is nullable in the spec but null is refused: {err}"
                    );
                }
            } else {
                let err = result.expect_err(&format!(
                    "{operation}: `{field}` is not nullable in the spec, but null is accepted"
                ));
                assert_eq!(400, err.to_http().status, "{operation}.{field}: {err}");
                let message = err.to_string();
                assert!(
                    message.contains(&format!("`{field}` is null")),
                    "{operation}.{field}: {message:?} should name the null field"
                );
            }
        }
    }
}

#[test]
fn openapi_null_attributes_rejected() {
    let create = |body: Value| {
        run::<CreateConversationOp>(
            body,
            Matched {
                method: "POST".into(),
                resource: Resource::Collection,
            },
        )
    };
    let err = create(json!({"members": ["alice"], "attributes": null}))
        .expect_err("`attributes: null` is not an object");
    assert_eq!(400, err.to_http().status);
    assert_eq!("invalid_request", err.to_http().code.as_str());
    assert_eq!(
        "invalid create-conversation payload: `attributes` is null; give a value or omit the field",
        err.to_string()
    );
    create(json!({"members": ["alice"], "attributes": {}})).expect("an object");
    create(json!({"members": ["alice"]})).expect("left out");
}
