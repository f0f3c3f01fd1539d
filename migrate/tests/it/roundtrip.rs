//! Seed a server, export it with the tool, import into a fresh database, serve that, compare everything.

use std::collections::BTreeSet;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::helpers::{
    data_lines, fresh_postgres, md5_of, migrate, migrate_in_background, s, seed, Seeded, Server,
};

const CLASSES: [&str; 3] = ["_Conversation", "_SysMessage", "Post"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_gives_a_server_with_identical_objects_and_history() {
    // Arrange
    let first = Server::fresh().await;
    let seeded = seed(&first, 16, 5_200).await;
    let out = tempfile::tempdir().expect("temp dir");
    let export_dir = out.path().join("export");
    let new_db = out.path().join("new.sqlite3");

    // Act
    let exported = export(&first, &export_dir).await;
    let imported = migrate(
        "http://unused",
        &["import", "--db", s(&new_db), s(&export_dir), "--quiet"],
    );
    let again = migrate(
        "http://unused",
        &["import", "--db", s(&new_db), s(&export_dir), "--quiet"],
    );
    let second_dir = tempfile::tempdir().expect("temp dir");
    let second = Server::on(second_dir, new_db.clone()).await;
    let url2 = second.url();
    let verified =
        migrate_in_background(&url2, &["verify", "--from", s(&export_dir), "--to", &url2]).await;

    // Assert
    assert!(exported.status.success(), "export failed");
    assert!(imported.status.success(), "import failed");
    assert!(again.status.success(), "second import failed");
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again_out.contains("imported 0 new rows"),
        "a second import must change nothing: {again_out}"
    );
    let exported_messages = data_lines(&export_dir.join("messages.jsonl"));
    assert_eq!(
        seeded.messages,
        exported_messages.len(),
        "every message exported once"
    );
    let ids: BTreeSet<&str> = exported_messages
        .iter()
        .filter_map(|m| m["msg-id"].as_str())
        .collect();
    assert_eq!(seeded.messages, ids.len(), "no message exported twice");
    let per_subscriber = data_lines(&export_dir.join("subscriber-messages.jsonl"));
    assert!(
        per_subscriber
            .iter()
            .any(|m| m["recipients"] == serde_json::json!(["bob", "zoë"])),
        "subscribers' histories are exported with --subscriber-history"
    );

    assert_same_app(&first, &second, &seeded).await;
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "verify reports a match: {report}"
    );
    assert!(report.contains("everything matches"), "{report}");
    assert!(
        second
            .server
            .inspect()
            .requests()
            .iter()
            .all(|r| r.method == "GET"),
        "verify only reads"
    );
}

/// Exports `server` with the tool into `dir` (`Post` and the subscribers' histories too, no rate limit).
async fn export(server: &Server, dir: &std::path::Path) -> std::process::Output {
    migrate_in_background(
        &server.url(),
        &[
            "export",
            "--out",
            s(dir),
            "--class",
            "Post",
            "--subscriber-history",
            "--max-requests-per-second",
            "0",
            "--quiet",
        ],
    )
    .await
}

/// The second server answers as the first: every object of `CLASSES` as stored, each conversation's history,
/// the messages to chosen clients with their recipients, a recipient's own history, `lm`, the subscribers, the
/// class permissions.
async fn assert_same_app(first: &Server, second: &Server, seeded: &Seeded) {
    let permissions = first.get("/__admin/class-permissions").await;
    assert_eq!(
        serde_json::json!({"users": [], "roles": ["mods"]}),
        permissions["results"][0]["permissions"]["delete"],
        "{permissions}"
    );
    assert_eq!(
        permissions,
        second.get("/__admin/class-permissions").await,
        "class permissions move with the app"
    );
    for class in CLASSES {
        let before = first.scan(class).await;
        let after = second.scan(class).await;
        assert_eq!(
            before, after,
            "class {class}: objects, ids, dates and ACLs are kept"
        );
        for obj in &before {
            let id = obj["objectId"].as_str().expect("id");
            assert_eq!(
                first.server.inspect().object(class, id),
                second.server.inspect().object(class, id),
                "{class} {id} as stored"
            );
        }
    }
    let mut total = 0;
    for conv in &seeded.conversations {
        let before = first.history(conv).await;
        let after = second.history(conv).await;
        assert!(!before.is_empty(), "conversation {conv} has messages");
        total += after.len();
        let strip = |records: &[Value]| -> Vec<Value> {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.as_object_mut().map(|m| m.remove("from-ip"));
                    r
                })
                .collect()
        };
        assert_eq!(
            strip(&before),
            strip(&after),
            "history of {conv}: ids, timestamps, senders, data"
        );
    }
    assert_eq!(seeded.messages, total);
    let addressed = |server: &Server| -> Vec<(String, Vec<String>)> {
        server
            .server
            .inspect()
            .messages(&seeded.system)
            .into_iter()
            .map(|m| (format!("{}:{:?}", m.msg_id, m.kind), m.recipients))
            .collect()
    };
    let before = addressed(first);
    assert!(
        before.iter().any(|(_, r)| !r.is_empty()),
        "some system messages went to chosen clients"
    );
    assert_eq!(
        before,
        addressed(second),
        "messages to chosen clients keep their kind and recipients"
    );
    let zoe_key = format!("{:x}", md5_of(&format!("{}:zoë", seeded.system)));
    assert_eq!(
        first
            .get(&format!(
                "/1.1/rtm/messages/history?convid={zoe_key}&limit=1000"
            ))
            .await,
        second
            .get(&format!(
                "/1.1/rtm/messages/history?convid={zoe_key}&limit=1000"
            ))
            .await,
        "a recipient's own history (1.1, md5 key) is the same"
    );
    let lm_before = first
        .server
        .inspect()
        .conversation(&seeded.conversations[0])
        .expect("conv")["lm"]
        .clone();
    let lm_after = second
        .server
        .inspect()
        .conversation(&seeded.conversations[0])
        .expect("conv")["lm"]
        .clone();
    assert!(lm_before.is_object(), "lm is set by the sends");
    assert_eq!(lm_before, lm_after, "lm follows the imported history");
    assert_eq!(
        first
            .get(&format!(
                "/1.2/rtm/service-conversations/{}/subscribers",
                seeded.system
            ))
            .await,
        second
            .get(&format!(
                "/1.2/rtm/service-conversations/{}/subscribers",
                seeded.system
            ))
            .await,
        "service-conversation subscribers are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_with_a_table_when_the_target_differs() {
    // Arrange: export a seeded server, import nothing into the target.
    let first = Server::fresh().await;
    seed(&first, 1, 30).await;
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let url = first.url();
    let empty = Server::fresh().await;
    let url2 = empty.url();

    // Act
    let (exported, verified) = tokio::task::spawn_blocking(move || {
        let e = migrate(
            &url,
            &[
                "export",
                "--out",
                s(&dir),
                "--quiet",
                "--max-requests-per-second",
                "0",
            ],
        );
        let v = migrate(&url2, &["verify", "--from", s(&dir), "--to", &url2]);
        (e, v)
    })
    .await
    .expect("task");

    // Assert
    assert!(exported.status.success());
    assert_eq!(Some(1), verified.status.code(), "a mismatch exits 1");
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        report.contains("class _Conversation") && report.contains("MISMATCH"),
        "{report}"
    );
}

/// Issue 16: `import --db postgres://…` imports into a SQLite file of its own, then copies it into PostgreSQL;
/// the server on PostgreSQL answers as the original, and importing again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_postgres_gives_a_server_with_identical_objects_and_history() {
    // Arrange
    let first = Server::fresh().await;
    let seeded = seed(&first, 4, 1_200).await;
    let out = tempfile::tempdir().expect("temp dir");
    let export_dir = out.path().join("export");
    let exported = export(&first, &export_dir).await;
    assert!(exported.status.success(), "export failed");
    let database = fresh_postgres();

    // Act
    let import = ["import", "--db", &database, s(&export_dir), "--quiet"];
    let imported = migrate_in_background("http://unused", &import).await;
    let again = migrate_in_background("http://unused", &import).await;
    let second = Server::on_postgres(&database).await;

    // Assert
    assert!(imported.status.success(), "import into PostgreSQL failed");
    assert!(again.status.success(), "second import failed");
    let report = String::from_utf8_lossy(&imported.stdout);
    assert!(report.contains("into PostgreSQL"), "{report}");
    assert_same_app(&first, &second, &seeded).await;
    assert_eq!(
        seeded.messages,
        second.server.inspect().all_messages().len(),
        "the second import added nothing"
    );
}

/// `where=<the JSON, URL-encoded>`.
fn where_query(w: &Value) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("where", &w.to_string())
        .finish()
}

/// Users, roles and devices are exported without asking (`_User`, `_Role`, `_Installation`), imported with their
/// ids, and covered by `verify`; a role's ACL and a user's fields come through, never a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_roles_and_devices_are_exported_by_default_and_verified() {
    // Arrange
    let first = Server::fresh().await;
    let user = first
        .post(
            "/1.1/users",
            serde_json::json!({"username": "mei", "password": "pw", "email": "mei@example.com"}),
        )
        .await;
    let user_id = user["objectId"].as_str().expect("id").to_string();
    let role = first
        .post(
            "/1.1/roles",
            serde_json::json!({"name": "staff", "ACL": {"*": {"read": true}},
                "users": {"__op": "AddRelation", "objects": [
                    {"__type": "Pointer", "className": "_User", "objectId": user_id}]}}),
        )
        .await;
    let role_id = role["objectId"].as_str().expect("id").to_string();
    first
        .create(
            "_Installation",
            serde_json::json!({"deviceType": "ios", "deviceToken": "abc123", "channels": ["mei"]}),
        )
        .await;
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("export");
    let db = out.path().join("new.sqlite3");

    // Act
    let exported =
        migrate_in_background(&first.url(), &["export", "--out", s(&dir), "--quiet"]).await;
    let imported = migrate(
        "http://unused",
        &["import", "--db", s(&db), s(&dir), "--quiet"],
    );
    let second = Server::on(tempfile::tempdir().expect("temp dir"), db).await;
    let url = second.url();
    let verified = migrate_in_background(&url, &["verify", "--from", s(&dir), "--to", &url]).await;

    // Assert
    assert!(exported.status.success() && imported.status.success());
    for class in ["_User", "_Role", "_Installation"] {
        let rows = data_lines(&dir.join("classes").join(format!("{class}.0.jsonl")));
        assert_eq!(1, rows.len(), "{class} exported");
        assert!(rows[0].get("password").is_none());
    }
    let relations = data_lines(&dir.join("relations.jsonl"));
    assert_eq!(
        vec![
            serde_json::json!({"owner_class": "_Role", "owner_id": role_id, "key": "users",
            "target_class": "_User", "target_id": user_id})
        ],
        relations
    );
    let members = second
        .get(&format!(
            "/1.1/classes/_User?{}",
            where_query(&serde_json::json!({"$relatedTo": {"key": "users",
                "object": {"__type": "Pointer", "className": "_Role", "objectId": role_id}}}))
        ))
        .await;
    assert_eq!(
        serde_json::json!([user_id]),
        serde_json::json!(members["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|u| u["objectId"].clone())
            .collect::<Vec<_>>()),
        "the role keeps its users"
    );
    let moved = second.get(&format!("/1.1/users/{user_id}")).await;
    assert_eq!(serde_json::json!("mei@example.com"), moved["email"]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}");
    assert!(
        report.contains("_User") && report.contains("_Role"),
        "{report}"
    );
}
