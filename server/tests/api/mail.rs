//! Password reset and e-mail verification by mail: the server configured with a stand-in SMTP server on loopback
//! (it speaks the protocol lettre speaks: EHLO, MAIL, RCPT, DATA, QUIT) that keeps every mail; the link is read
//! from the mail as a user would, and its page and endpoint driven over HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use leancloud_server::MailConfig;
use pretty_assertions::assert_eq;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{spawn_with, Key, TestApp};

/// One mail as the stand-in received it.
#[derive(Debug, Clone)]
struct Mail {
    to: Vec<String>,
    /// The message (headers and body), quoted-printable undone.
    text: String,
}

/// A stand-in SMTP server: keeps every mail, or refuses every sender while `refuse` is set.
struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    refuse: Arc<AtomicBool>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (mails, refuse) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let (m, r) = (Arc::clone(&mails), Arc::clone(&refuse));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, Arc::clone(&m), Arc::clone(&r)));
            }
        });
        SmtpSink {
            addr,
            mails,
            refuse,
        }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("mails").clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    refuse: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            to.clear();
            if refuse.load(Ordering::SeqCst) {
                b"550 5.7.1 sender refused\r\n"
            } else {
                b"250 OK\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            let addr = line["RCPT TO:".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            to.push(addr.trim_matches(['<', '>']).to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push('\n');
            }
            mails.lock().expect("mails").push(Mail {
                to: std::mem::take(&mut to),
                text: unquote(&data),
            });
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// Undoes quoted-printable (soft line breaks and `=XX`), which leaves plain text as it is.
fn unquote(data: &str) -> String {
    let joined = data.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const LINK_BASE: &str = "https://im.example.com";

async fn app_with_mail(sink: &SmtpSink) -> TestApp {
    let smtp_url = format!("smtp://{}", sink.addr);
    spawn_with(move |config| {
        config.mail = Some(MailConfig {
            smtp_url,
            from: "Example App <noreply@example.com>".into(),
            link_base: LINK_BASE.into(),
        });
    })
    .await
}

/// The token of the link to `page` in `mail`.
fn token_in(mail: &Mail, page: &str) -> String {
    let prefix = format!("{LINK_BASE}/auth/{page}#token=");
    let start = mail
        .text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link in {}", mail.text))
        + prefix.len();
    let token: String = mail.text[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(64, token.len(), "{}", mail.text);
    token
}

async fn sign_up(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let (status, user) = app
        .call(
            Key::App,
            Method::POST,
            "/1.1/users",
            Some(json!({"username": name, "password": "old-password", "email": email})),
        )
        .await;
    assert_eq!(StatusCode::CREATED, status, "{user}");
    (
        user["objectId"].as_str().expect("id").to_string(),
        user["sessionToken"].as_str().expect("token").to_string(),
    )
}

/// A POST of a JSON body without any key, as the page sends it.
async fn page_post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(path))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

async fn login(app: &TestApp, name: &str, password: &str) -> (StatusCode, Value) {
    app.call_as(
        None,
        Method::POST,
        "/1.1/login",
        Some(json!({"username": name, "password": password})),
    )
    .await
}

#[tokio::test]
async fn a_reset_link_sets_the_new_password_once_and_ends_the_old_sessions() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_with_mail(&sink).await;
    let (_, old_token) = sign_up(&app, "ana", "ana@example.com").await;

    // Act: the SDK's call, then a second one at once
    let reset = json!({"email": "ana@example.com"});
    let first = app
        .call_as(
            None,
            Method::POST,
            "/1.1/requestPasswordReset",
            Some(reset.clone()),
        )
        .await;
    let res = app
        .request(Key::App, Method::POST, "/1.1/requestPasswordReset")
        .body(reset.to_string())
        .send()
        .await
        .expect("sent");
    let retry_after = res.headers().get("retry-after").cloned();
    let second = (res.status(), res.json::<Value>().await.expect("JSON"));

    // Assert: one mail, to ana, from the configured sender, with the link under the configured base
    assert_eq!((StatusCode::OK, json!({})), first);
    assert_eq!(StatusCode::TOO_MANY_REQUESTS, second.0, "{}", second.1);
    assert_eq!(601, second.1["code"]);
    assert!(second.1["error"]
        .as_str()
        .expect("message")
        .contains("Too many emails"));
    assert_eq!(
        Some("60"),
        retry_after.as_ref().and_then(|v| v.to_str().ok())
    );
    let mails = sink.mails();
    assert_eq!(1, mails.len(), "{mails:?}");
    assert_eq!(vec!["ana@example.com".to_string()], mails[0].to);
    assert!(
        mails[0].text.starts_with(
            "From: \"Example App\" <noreply@example.com>\nTo: ana@example.com\nSubject: Reset your password\n"
        ),
        "{}",
        mails[0].text
    );
    assert!(
        mails[0].text.contains("\nMessage-ID: <"),
        "{}",
        mails[0].text
    );
    let token = token_in(&mails[0], "reset-password");

    // The page: served without the token (it stays in the fragment), unframable, uncached
    let page = app
        .client
        .get(app.url("/auth/reset-password"))
        .send()
        .await
        .expect("page");
    assert_eq!(StatusCode::OK, page.status());
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("CSP")
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!("no-store", page.headers()["cache-control"]);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("src=\"/auth/page.js\""));

    // A wrong token, and a blank password (which does not use the token up)
    let wrong = page_post(
        &app,
        "/auth/reset-password",
        json!({"token": "0".repeat(64), "password": "x"}),
    )
    .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(603)),
        (wrong.0, wrong.1["code"].clone())
    );
    let blank = page_post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "password": ""}),
    )
    .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(218)),
        (blank.0, blank.1["code"].clone())
    );

    // The reset itself, then the link again
    let done = page_post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "password": "new-password"}),
    )
    .await;
    assert_eq!((StatusCode::OK, json!({})), done);
    let again = page_post(
        &app,
        "/auth/reset-password",
        json!({"token": token, "password": "third"}),
    )
    .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(603)),
        (again.0, again.1["code"].clone())
    );

    // The old password and the old session no longer work; the new password does, and the address is verified
    assert_eq!(
        StatusCode::BAD_REQUEST,
        login(&app, "ana", "old-password").await.0
    );
    let (status, me) = login(&app, "ana", "new-password").await;
    assert_eq!(StatusCode::OK, status, "{me}");
    assert_eq!(json!(true), me["emailVerified"]);
    assert!(me.get("password").is_none(), "{me}");
    let (status, old) = app
        .call_as(Some(&old_token), Method::GET, "/1.1/users/me", None)
        .await;
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(211)),
        (status, old["code"].clone())
    );
}

#[tokio::test]
async fn a_verification_link_verifies_only_the_address_it_was_sent_to() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = app_with_mail(&sink).await;
    let (id, session) = sign_up(&app, "bo", "bo@example.com").await;
    let ask = |email: &'static str| {
        let app = &app;
        async move {
            app.call_as(
                None,
                Method::POST,
                "/1.1/requestEmailVerify",
                Some(json!({"email": email})),
            )
            .await
        }
    };
    assert_eq!((StatusCode::OK, json!({})), ask("bo@example.com").await);
    let first = token_in(&sink.mails()[0], "verify-email");

    // Act: bo changes address before opening the first link, asks again for the new one, opens both
    let (status, _) = app
        .call_as(
            Some(&session),
            Method::PUT,
            &format!("/1.1/users/{id}"),
            Some(json!({"email": "bo@example.org"})),
        )
        .await;
    assert_eq!(StatusCode::OK, status);
    let stale = page_post(&app, "/auth/verify-email", json!({"token": first})).await;
    assert_eq!((StatusCode::OK, json!({})), ask("bo@example.org").await);
    let mails = sink.mails();
    assert_eq!(2, mails.len());
    assert_eq!(vec!["bo@example.org".to_string()], mails[1].to);
    assert!(
        mails[1]
            .text
            .contains("Subject: Verify your e-mail address"),
        "{}",
        mails[1].text
    );
    let second = token_in(&mails[1], "verify-email");
    let (before, _) = app.get(&format!("/1.1/users/{id}")).await;
    let fresh = page_post(&app, "/auth/verify-email", json!({"token": second})).await;

    // Assert
    assert_eq!(StatusCode::OK, before);
    assert_eq!(
        (StatusCode::BAD_REQUEST, json!(603)),
        (stale.0, stale.1["code"].clone())
    );
    assert_eq!((StatusCode::OK, json!({})), fresh);
    let (_, user) = app.get(&format!("/1.1/users/{id}")).await;
    assert_eq!(
        (json!("bo@example.org"), json!(true)),
        (user["email"].clone(), user["emailVerified"].clone())
    );
}

#[tokio::test]
async fn a_mail_the_smtp_server_refuses_is_a_502_and_asking_again_is_not_too_soon() {
    // Arrange
    let sink = SmtpSink::start().await;
    sink.refuse.store(true, Ordering::SeqCst);
    let app = app_with_mail(&sink).await;
    sign_up(&app, "cy", "cy@example.com").await;
    let ask = || {
        app.call_as(
            None,
            Method::POST,
            "/1.1/requestPasswordReset",
            Some(json!({"email": "cy@example.com"})),
        )
    };

    // Act
    let refused = ask().await;
    sink.refuse.store(false, Ordering::SeqCst);
    let accepted = ask().await;

    // Assert: the server's words stay in its log; the second request sends the one mail
    assert_eq!(StatusCode::BAD_GATEWAY, refused.0, "{}", refused.1);
    let message = refused.1["error"].as_str().expect("message");
    assert!(
        message.contains("could not be sent") && !message.contains("5.7.1"),
        "{message}"
    );
    assert_eq!((StatusCode::OK, json!({})), accepted);
    assert_eq!(1, sink.mails().len());
}
