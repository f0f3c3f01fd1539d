//! H1: in JWT mode (`ApiAuth=JWT`) any holder of a valid token could broadcast to every user, send as any
//! `from_client` and add anyone to any conversation: the functions never read `requestContext.authorizer`.
//! Now a JWT caller acts only as its identity claim (`sub`) unless the token carries the admin scope, and is
//! answered 403 before anything reaches LeanCloud. Before the fix every refused case below answered 200.

use im_functions::ops::add_member::AddMemberOp;
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::create_conversation::CreateConversationOp;
use im_functions::ops::remove_member::RemoveMemberOp;
use im_functions::ops::schedules::SchedulesOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::Operation;
use leancloud_im::{ClientId, CreateConversation};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::helpers::{http_event, TestApp};

const ADMIN_SCOPE: &str = "leancloud-im/admin";

/// `event` as API Gateway's JWT authorizer passes it: the token's claims and scopes.
fn with_jwt(mut event: Value, sub: Option<&str>, scopes: &[&str]) -> Value {
    let mut claims = json!({"iss": "https://issuer.example", "aud": "app"});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": scopes}});
    event
}

async fn status<Op: Operation>(app: &TestApp, event: Value) -> (i64, Value) {
    let answer = app.http::<Op>(event).await;
    (answer.status, answer.body)
}

/// The LeanCloud calls the server received.
fn calls(app: &TestApp) -> usize {
    app.request_count()
}

#[tokio::test]
async fn h1_a_jwt_caller_acts_only_as_itself_unless_it_has_the_admin_scope() {
    let app = TestApp::spawn().await;
    let normal = app.normal.to_string();
    let system = app.system.to_string();
    let messages = format!("/conversations/{normal}/messages");
    let members = format!("/conversations/{normal}/members");
    let broadcasts = format!("/conversations/{system}/broadcasts");
    let user = |method: &str, path: &str, body: Value| {
        with_jwt(
            http_event(method, path, &body.to_string()),
            Some("alice"),
            &[],
        )
    };

    let before = calls(&app);
    let refused = [
        (
            status::<SendMessageOp>(
                &app,
                user(
                    "POST",
                    &messages,
                    json!({"from_client": "bob", "message": "I am bob"}),
                ),
            )
            .await,
            "`from_client` is \"bob\"",
        ),
        (
            status::<BroadcastOp>(
                &app,
                user(
                    "POST",
                    &broadcasts,
                    json!({"from_client": "system", "message": "to all"}),
                ),
            )
            .await,
            "needs the admin scope",
        ),
        (
            status::<AddMemberOp>(
                &app,
                user("POST", &members, json!({"client_ids": ["mallory"]})),
            )
            .await,
            "`client_ids` is \"mallory\"",
        ),
        (
            status::<AddMemberOp>(
                &app,
                user(
                    "POST",
                    &members,
                    json!({"client_ids": ["alice", "mallory"]}),
                ),
            )
            .await,
            "names 2 clients",
        ),
        (
            status::<RemoveMemberOp>(
                &app,
                user("DELETE", &members, json!({"client_ids": ["bob"]})),
            )
            .await,
            "`client_ids` is \"bob\"",
        ),
        (
            status::<CreateConversationOp>(
                &app,
                user(
                    "POST",
                    "/conversations",
                    json!({"name": "x", "members": ["bob"]}),
                ),
            )
            .await,
            "must include the caller",
        ),
        (
            status::<CreateConversationOp>(
                &app,
                user(
                    "POST",
                    "/conversations",
                    json!({"members": ["alice"], "system": true}),
                ),
            )
            .await,
            "system conversation needs the admin scope",
        ),
        (
            status::<SchedulesOp>(&app, user("GET", "/schedules", json!({}))).await,
            "needs the admin scope",
        ),
        (
            // A token without the identity claim can do nothing.
            status::<SendMessageOp>(
                &app,
                with_jwt(
                    http_event(
                        "POST",
                        &messages,
                        r#"{"from_client":"alice","message":"hi"}"#,
                    ),
                    None,
                    &[],
                ),
            )
            .await,
            "no `sub` claim",
        ),
    ];
    for ((status, body), expected) in &refused {
        assert_eq!(403, *status, "{body}");
        assert_eq!("forbidden", body["error"]["code"], "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{message:?} should say {expected:?}"
        );
    }
    assert_eq!(before, calls(&app), "nothing refused reached LeanCloud");

    // What a user may do: act as itself.
    let (code, body) = status::<SendMessageOp>(
        &app,
        user(
            "POST",
            &messages,
            json!({"from_client": "alice", "message": "hi"}),
        ),
    )
    .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = status::<AddMemberOp>(
        &app,
        user("POST", &members, json!({"client_ids": ["alice"]})),
    )
    .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = status::<RemoveMemberOp>(
        &app,
        user("DELETE", &members, json!({"client_ids": ["alice"]})),
    )
    .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = status::<CreateConversationOp>(
        &app,
        user(
            "POST",
            "/conversations",
            json!({"members": ["alice", "bob"]}),
        ),
    )
    .await;
    assert_eq!(201, code, "{body}");

    // The admin scope lifts the binding; IAM (no JWT) is trusted as before.
    let admin = with_jwt(
        http_event(
            "POST",
            &broadcasts,
            r#"{"from_client":"system","message":"to all"}"#,
        ),
        Some("ops"),
        &[ADMIN_SCOPE],
    );
    let (code, body) = status::<BroadcastOp>(&app, admin).await;
    assert_eq!(200, code, "{body}");
    let iam = http_event(
        "POST",
        &messages,
        r#"{"from_client":"bob","message":"from the backend"}"#,
    );
    let (code, body) = status::<SendMessageOp>(&app, iam).await;
    assert_eq!(200, code, "{body}");
    app.shutdown().await;
}

/// F1 (review part 3): the H1 binding checked who sends, not where. A JWT user could post into any conversation
/// whose id it learnt, send system-conversation messages with its own push text to chosen clients, and add itself
/// to private conversations: the calls go out with the master key, which bypasses LeanCloud's membership rules.
/// Now the functions fetch the conversation (one GET) and let a user act only inside conversations it belongs
/// to. Before the fix every refused case below answered 200.
struct F1 {
    app: TestApp,
    /// `f1-alice` and `f1-bob`; `f1-mallory` is not in it.
    private: String,
    /// A chat room (`tr: true`) nobody is in.
    room: String,
}

impl F1 {
    async fn spawn() -> F1 {
        let app = TestApp::spawn().await;
        let create = |request: CreateConversation| {
            let client = app.app.client.clone();
            async move {
                client
                    .execute(&request)
                    .await
                    .expect("created")
                    .id
                    .to_string()
            }
        };
        let private = create(
            CreateConversation::new()
                .name("private")
                .members(["f1-alice", "f1-bob"].map(|id| ClientId::parse(id).expect("id"))),
        )
        .await;
        let room = create(CreateConversation::new().name("lobby").transient(true)).await;
        F1 { app, private, room }
    }

    /// An HTTP call by the JWT user `sub` (no admin scope) to `Op`.
    async fn user<Op: Operation>(
        &self,
        sub: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (i64, Value) {
        let event = with_jwt(http_event(method, path, &body.to_string()), Some(sub), &[]);
        status::<Op>(&self.app, event).await
    }

    async fn admin<Op: Operation>(&self, method: &str, path: &str, body: Value) -> (i64, Value) {
        let event = with_jwt(
            http_event(method, path, &body.to_string()),
            Some("ops"),
            &[ADMIN_SCOPE],
        );
        status::<Op>(&self.app, event).await
    }

    fn members(&self, conversation: &str) -> Value {
        self.app
            .inspect()
            .conversation(conversation)
            .expect("conversation")["m"]
            .clone()
    }

    fn stored(&self, conversation: &str) -> usize {
        self.app.inspect().messages(conversation).len()
    }

    /// The requests LeanCloud received since `since` that were not reads.
    fn writes_since(&self, since: usize) -> Vec<String> {
        self.app.inspect().requests()[since..]
            .iter()
            .filter(|request| request.method != "GET")
            .map(|request| format!("{} {}", request.method, request.path))
            .collect()
    }
}

/// A `403 forbidden` whose message says `expected`.
#[track_caller]
fn assert_forbidden((status, body): &(i64, Value), expected: &str) {
    assert_eq!(403, *status, "{body}");
    assert_eq!("forbidden", body["error"]["code"], "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(expected),
        "{message:?} should say {expected:?}"
    );
}

#[tokio::test]
async fn f1_jwt_user_cannot_send_into_foreign_conversation() {
    let f1 = F1::spawn().await;
    let messages = format!("/conversations/{}/messages", f1.private);
    let since = f1.app.request_count();

    let refused = f1
        .user::<SendMessageOp>(
            "f1-mallory",
            "POST",
            &messages,
            json!({"from_client": "f1-mallory", "message": "let me in"}),
        )
        .await;
    assert_forbidden(&refused, "is not a member of conversation");
    assert_eq!(0, f1.stored(&f1.private), "nothing was stored");
    assert_eq!(
        Vec::<String>::new(),
        f1.writes_since(since),
        "only the conversation was read"
    );

    // A conversation that does not exist is a 404, not a 403.
    let (code, body) = f1
        .user::<SendMessageOp>(
            "f1-mallory",
            "POST",
            "/conversations/000000000000000000000000/messages",
            json!({"from_client": "f1-mallory", "message": "anyone?"}),
        )
        .await;
    assert_eq!(
        (404, "conversation_not_found"),
        (code, body["error"]["code"].as_str().unwrap_or_default()),
        "{body}"
    );

    // A member sends; an admin and a trusted (IAM) caller send as anyone, as before.
    let (code, body) = f1
        .user::<SendMessageOp>(
            "f1-alice",
            "POST",
            &messages,
            json!({"from_client": "f1-alice", "message": "hi bob"}),
        )
        .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = f1
        .admin::<SendMessageOp>(
            "POST",
            &messages,
            json!({"from_client": "f1-mallory", "message": "from an admin"}),
        )
        .await;
    assert_eq!(200, code, "{body}");
    let iam = http_event(
        "POST",
        &messages,
        r#"{"from_client":"f1-mallory","message":"from the backend"}"#,
    );
    let (code, body) = status::<SendMessageOp>(&f1.app, iam).await;
    assert_eq!(200, code, "{body}");
    assert_eq!(3, f1.stored(&f1.private));
    f1.app.shutdown().await;
}

#[tokio::test]
async fn f1_jwt_user_cannot_join_private_conversation() {
    let f1 = F1::spawn().await;
    let private = format!("/conversations/{}/members", f1.private);
    let room = format!("/conversations/{}/members", f1.room);
    let before = f1.members(&f1.private);
    let since = f1.app.request_count();

    let refused = f1
        .user::<AddMemberOp>(
            "f1-mallory",
            "POST",
            &private,
            json!({"client_ids": ["f1-mallory"]}),
        )
        .await;
    assert_forbidden(&refused, "is not a chat room");
    assert_eq!(before, f1.members(&f1.private), "m is unchanged");
    assert_eq!(
        Vec::<String>::new(),
        f1.writes_since(since),
        "only the conversation was read"
    );

    // Leaving works only from inside: remove-member acts on a conversation the user is in.
    let refused = f1
        .user::<RemoveMemberOp>(
            "f1-mallory",
            "DELETE",
            &private,
            json!({"client_ids": ["f1-mallory"]}),
        )
        .await;
    assert_forbidden(&refused, "is not a member of conversation");
    assert_eq!(Vec::<String>::new(), f1.writes_since(since));

    // A chat room is meant to be joined: the user joins, then may send there.
    let (code, body) = f1
        .user::<AddMemberOp>(
            "f1-mallory",
            "POST",
            &room,
            json!({"client_ids": ["f1-mallory"]}),
        )
        .await;
    assert_eq!(200, code, "{body}");
    assert_eq!(json!(["f1-mallory"]), f1.members(&f1.room));
    let (code, body) = f1
        .user::<SendMessageOp>(
            "f1-mallory",
            "POST",
            &format!("/conversations/{}/messages", f1.room),
            json!({"from_client": "f1-mallory", "message": "hello room"}),
        )
        .await;
    assert_eq!(200, code, "{body}");

    // A member re-joining changes nothing and is allowed; a member leaves.
    let (code, body) = f1
        .user::<AddMemberOp>(
            "f1-bob",
            "POST",
            &private,
            json!({"client_ids": ["f1-bob"]}),
        )
        .await;
    assert_eq!(200, code, "{body}");
    let (code, body) = f1
        .user::<RemoveMemberOp>(
            "f1-bob",
            "DELETE",
            &private,
            json!({"client_ids": ["f1-bob"]}),
        )
        .await;
    assert_eq!(200, code, "{body}");
    assert_eq!(json!(["f1-alice"]), f1.members(&f1.private));

    // An admin still adds anyone anywhere.
    let (code, body) = f1
        .admin::<AddMemberOp>("POST", &private, json!({"client_ids": ["f1-mallory"]}))
        .await;
    assert_eq!(200, code, "{body}");
    assert_eq!(json!(["f1-alice", "f1-mallory"]), f1.members(&f1.private));
    f1.app.shutdown().await;
}

#[tokio::test]
async fn f1_jwt_user_system_conversation_refused() {
    let f1 = F1::spawn().await;
    let system = f1.app.system.to_string();
    let system_messages = format!("/conversations/{system}/messages");
    let private_messages = format!("/conversations/{}/messages", f1.private);
    let since = f1.app.request_count();

    // Messages to chosen clients with the user's own push text: the phishing of the review.
    let recipients: Vec<String> = (0..20).map(|i| format!("victim-{i}")).collect();
    let refused = f1
        .user::<SendMessageOp>(
            "f1-mallory",
            "POST",
            &system_messages,
            json!({"from_client": "f1-mallory", "message": "verify your account",
                   "to_clients": recipients, "push_data": {"alert": "Official: verify your account"}}),
        )
        .await;
    assert_forbidden(&refused, "`to_clients`");
    // To the whole system conversation, even with nothing else set.
    let refused = f1
        .user::<SendMessageOp>(
            "f1-mallory",
            "POST",
            &system_messages,
            json!({"from_client": "f1-mallory", "message": "hello everyone"}),
        )
        .await;
    assert_forbidden(&refused, "is a system conversation");
    // Nor may a user join one.
    let refused = f1
        .user::<AddMemberOp>(
            "f1-mallory",
            "POST",
            &format!("/conversations/{system}/members"),
            json!({"client_ids": ["f1-mallory"]}),
        )
        .await;
    assert_forbidden(&refused, "is a system conversation");
    // `push_data` is the app's, even for a member in its own conversation.
    let refused = f1
        .user::<SendMessageOp>(
            "f1-alice",
            "POST",
            &private_messages,
            json!({"from_client": "f1-alice", "message": "hi", "push_data": {"alert": "URGENT"}}),
        )
        .await;
    assert_forbidden(&refused, "`push_data` needs the admin scope");
    assert_eq!(0, f1.stored(&system), "nothing was sent");
    assert_eq!(0, f1.stored(&f1.private), "nothing was sent");
    assert_eq!(Vec::<String>::new(), f1.writes_since(since));

    // An admin keeps today's behaviour.
    let (code, body) = f1
        .admin::<SendMessageOp>(
            "POST",
            &system_messages,
            json!({"from_client": "system", "message": "maintenance tonight",
                   "to_clients": ["f1-alice"], "push_data": {"alert": "Maintenance tonight"}}),
        )
        .await;
    assert_eq!(200, code, "{body}");
    assert_eq!(1, f1.stored(&system));
    f1.app.shutdown().await;
}
