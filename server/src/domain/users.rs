//! Users and sessions as the official SDKs drive them (`leancloud-users-files-push.md` §1): sign-up (username and
//! password, or `authData`: anonymous and other platforms), login by username, e-mail or phone, the session token
//! that names the user on later requests, token refresh, password change, the `_User` write rule (only the user
//! or the master key) and the IM login signature of a user (`POST /1.1/rtm/sign`).
//!
//! Passwords: new ones are stored as argon2id (PHC string); users imported from LeanCloud carry its hash
//! (base64 of SHA-512 applied 513 times to `salt + password`, §1.8), which is checked as it is and replaced by
//! argon2id at the user's first successful login. Failed logins are limited per account (LeanCloud's rule: more
//! than 6 in 15 minutes locks it for 15 minutes, code 219) and per address. `password`, `salt` and the session
//! token are never rendered, except a user's own token in the answers that hand it over.

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Map, Value};

use super::credentials::{
    check_password, hash_password, new_session_token, Checked, MAX_ACCOUNT_FAILURES,
    MAX_ADDRESS_FAILURES,
};
use super::Services;
use crate::protocol::codes;
use crate::realtime::signature::{sign, signed_string, Signed};
use crate::store::objects::{self, Row, ROLE};
use crate::store::relations;
use crate::store::users::{self, UserKey, USER_CLASS};
use crate::store::{Caller, SessionUser, StoreError};

pub use crate::store::users::PRIVATE_FIELDS;
/// Fields a client may not set: the server keeps them.
const SERVER_KEPT: [&str; 5] = [
    "sessionToken",
    "salt",
    "emailVerified",
    "mobilePhoneVerified",
    "objectId",
];
const VERIFIED_FLAGS: [&str; 2] = ["emailVerified", "mobilePhoneVerified"];
const LOCKED_MESSAGE: &str = "登录失败次数超过限制，请稍候再试，或者通过忘记密码重设密码。";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A refusal with LeanCloud's code and message (HTTP 400).
    #[error("{message}")]
    Refused { code: i64, message: String },
    /// Not the user's own session (206; HTTP 403).
    #[error("The user cannot be altered by a client without the session.")]
    SessionMissing,
    /// Asked again too soon (HTTP 429 with `Retry-After`).
    #[error("{message}")]
    TooSoon {
        code: i64,
        message: String,
        retry_after_secs: u64,
    },
    /// A service the operation needs (the mail server) failed; the message says what, without its details.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<argon2::password_hash::Error> for UserError {
    fn from(e: argon2::password_hash::Error) -> Self {
        UserError::Internal(e.to_string())
    }
}

impl UserError {
    fn refused(code: i64, message: &str) -> UserError {
        UserError::Refused {
            code,
            message: message.to_string(),
        }
    }

    fn mismatch() -> UserError {
        UserError::refused(
            codes::PASSWORD_MISMATCH,
            "The username and password mismatch.",
        )
    }

    fn not_found() -> UserError {
        UserError::refused(codes::USER_NOT_FOUND, "Could not find user.")
    }
}

/// The refusal of an SMS code (login, sign-up, password reset, phone verification or change): this server sends
/// none, so none is valid (603).
pub fn invalid_sms_code() -> UserError {
    UserError::refused(codes::INVALID_SMS_CODE, "Invalid SMS code.")
}

/// The slow work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, UserError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| UserError::Internal(e.to_string()))
}

/// A user as others see it: no password, salt or token.
pub fn public_view(row: &Row) -> Map<String, Value> {
    let mut out = row.render(false);
    for field in PRIVATE_FIELDS {
        out.remove(field);
    }
    out
}

/// A user as the user sees it after signing up or in: the public view (its files whole) and the session token.
async fn own_view(svc: &Services, row: &Row) -> Result<Map<String, Value>, UserError> {
    let mut out = public_view(row);
    if let Some(token) = row.data.get("sessionToken") {
        out.insert("sessionToken".into(), token.clone());
    }
    objects::expand_files(&svc.db, &mut [&mut out]).await?;
    Ok(out)
}

fn string_field<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

/// What a sign-up answered: the user (with its token) and whether it was created (201) or found (200, an
/// `authData` login of a known account).
#[derive(Debug)]
pub struct SignedUp {
    pub user: Map<String, Value>,
    pub id: String,
    pub created: bool,
}

/// `POST /1.1/users` and `POST /1.1/classes/_User`: a new user from `username` and `password`, or a login or
/// sign-up with `authData`. `fail_on_not_exist` (`?failOnNotExist=true`) refuses an unknown `authData` account.
pub async fn sign_up(
    svc: &Services,
    mut body: Map<String, Value>,
    fail_on_not_exist: bool,
) -> Result<SignedUp, UserError> {
    for field in SERVER_KEPT {
        body.remove(field);
    }
    if let Some(Value::Object(auth)) = body.get("authData") {
        if !auth.is_empty() && !body.contains_key("password") {
            let auth = auth.clone();
            return auth_data_login(svc, body, auth, fail_on_not_exist).await;
        }
    }
    match body.get("username") {
        None | Some(Value::Null) => {
            return Err(UserError::refused(
                codes::USERNAME_MISSING,
                "Username is missing or empty",
            ))
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(UserError::refused(
                codes::USERNAME_BLANK,
                "Username is blank.",
            ))
        }
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(UserError::refused(
                codes::INTERNAL,
                "Username must be a string.",
            ))
        }
    }
    let password = match body.remove("password") {
        None | Some(Value::Null) => {
            return Err(UserError::refused(
                codes::PASSWORD_MISSING,
                "Password is missing or empty.",
            ))
        }
        Some(Value::String(s)) if s.is_empty() => {
            return Err(UserError::refused(
                codes::PASSWORD_BLANK,
                "Password is blank.",
            ))
        }
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(UserError::refused(
                codes::INTERNAL,
                "Password must be a string.",
            ))
        }
    };
    let hash = blocking(move || hash_password(&password)).await??;
    body.insert("password".into(), json!(hash));
    create(svc, body).await
}

/// Stores a new user from `body` (its password already hashed), with a session token.
async fn create(svc: &Services, mut body: Map<String, Value>) -> Result<SignedUp, UserError> {
    let acl = body.remove("ACL");
    // The checks every object gets (field names, sizes, operations).
    let probe = objects::prepare_create(USER_CLASS, body)?;
    let (mut data, _, _) = probe;
    data.insert("sessionToken".into(), json!(new_session_token()));
    data.insert("emailVerified".into(), json!(false));
    data.insert("mobilePhoneVerified".into(), json!(false));
    let row = users::create(&svc.db, data, acl).await?;
    Ok(SignedUp {
        user: own_view(svc, &row).await?,
        id: row.id.clone(),
        created: true,
    })
}

/// Whether `s` may name an `authData` platform or id field (it becomes part of a JSON path).
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `authData` sign-up or login: the account of the (first) platform is looked up by its `uid`, else `openid`,
/// else `id`; a known one logs in (200), an unknown one becomes a new user with a random username (201).
async fn auth_data_login(
    svc: &Services,
    mut body: Map<String, Value>,
    auth: Map<String, Value>,
    fail_on_not_exist: bool,
) -> Result<SignedUp, UserError> {
    let Some((platform, account)) = auth.iter().find(|(_, v)| v.is_object()) else {
        return Err(UserError::refused(codes::INTERNAL, "Invalid authData."));
    };
    let id_field = ["uid", "openid", "id"]
        .into_iter()
        .find(|f| account.get(*f).and_then(Value::as_str).is_some());
    let (Some(id_field), true) = (id_field, plain_name(platform)) else {
        return Err(UserError::refused(250, "Linked id missing from request"));
    };
    let account_id = account[id_field].as_str().unwrap_or_default().to_string();
    if let Some(row) =
        users::find_by_auth(&svc.db, platform.clone(), id_field.to_string(), account_id).await?
    {
        let row = ensure_token(svc, row).await?;
        return Ok(SignedUp {
            user: own_view(svc, &row).await?,
            id: row.id.clone(),
            created: false,
        });
    }
    if fail_on_not_exist {
        return Err(UserError::not_found());
    }
    body.insert("authData".into(), Value::Object(auth));
    if !body.contains_key("username") {
        body.insert("username".into(), json!(new_session_token()));
    }
    create(svc, body).await
}

/// Gives a user without a session token (imported without one) a new one.
async fn ensure_token(svc: &Services, row: Row) -> Result<Row, UserError> {
    if row
        .data
        .get("sessionToken")
        .and_then(Value::as_str)
        .is_some()
    {
        return Ok(row);
    }
    users::set_fields(
        &svc.db,
        row.id.clone(),
        vec![("sessionToken".into(), Some(json!(new_session_token())))],
    )
    .await?
    .ok_or_else(UserError::not_found)
}

/// `POST /1.1/login`: `username`, `email` or `mobilePhoneNumber`, and `password`, from address `ip`.
pub async fn login(
    svc: &Services,
    body: &Map<String, Value>,
    ip: Option<String>,
) -> Result<Map<String, Value>, UserError> {
    let by = [UserKey::Username, UserKey::Email, UserKey::Phone]
        .into_iter()
        .find_map(|k| string_field(body, k.field()).map(|v| (k, v.to_string())));
    let Some((key, value)) = by else {
        return Err(UserError::refused(
            codes::USERNAME_MISSING,
            "Username is missing or empty",
        ));
    };
    let Some(password) = string_field(body, "password").map(str::to_owned) else {
        if body.contains_key("smsCode") {
            // A login by SMS code: this server sends none, so none is valid.
            return Err(invalid_sms_code());
        }
        return Err(UserError::refused(
            codes::PASSWORD_MISSING,
            "Password is missing or empty.",
        ));
    };
    let account = account_key(key, &value);
    let address = ip.map(|ip| format!("address:{ip}"));
    let failures = &svc.logins;
    if failures.recent(&account) >= MAX_ACCOUNT_FAILURES
        || address
            .as_deref()
            .is_some_and(|a| failures.recent(a) >= MAX_ADDRESS_FAILURES)
    {
        return Err(UserError::refused(codes::LOGIN_LOCKED, LOCKED_MESSAGE));
    }
    let fail = |e: UserError| {
        failures.record(account.clone());
        if let Some(a) = &address {
            failures.record(a.clone());
        }
        e
    };
    let Some(row) = users::find_by(&svc.db, key, value).await? else {
        return Err(fail(UserError::not_found()));
    };
    let stored = string_field(&row.data, "password")
        .unwrap_or_default()
        .to_string();
    let salt = string_field(&row.data, "salt").map(str::to_owned);
    let checked = blocking(move || check_password(&stored, salt.as_deref(), &password)).await?;
    let upgrade = match checked {
        Checked::Wrong => return Err(fail(UserError::mismatch())),
        Checked::Ok => None,
        Checked::OkUpgrade => {
            let plain = string_field(body, "password")
                .unwrap_or_default()
                .to_string();
            Some(blocking(move || hash_password(&plain)).await??)
        }
    };
    failures.clear(&account);
    let mut changes = Vec::new();
    if let Some(hash) = upgrade {
        changes.push(("password".to_string(), Some(json!(hash))));
        changes.push(("salt".to_string(), None));
    }
    if row
        .data
        .get("sessionToken")
        .and_then(Value::as_str)
        .is_none()
    {
        changes.push(("sessionToken".to_string(), Some(json!(new_session_token()))));
    }
    let row = if changes.is_empty() {
        row
    } else {
        users::set_fields(&svc.db, row.id.clone(), changes)
            .await?
            .ok_or_else(UserError::not_found)?
    };
    own_view(svc, &row).await
}

/// The user of a session token, as ACLs see it; `None` for an unknown token.
pub async fn session_user(svc: &Services, token: &str) -> Result<Option<SessionUser>, UserError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let Some(row) = users::find_by(&svc.db, UserKey::SessionToken, token.to_string()).await? else {
        return Ok(None);
    };
    let roles = roles_of(svc, &row.id).await?;
    Ok(Some(SessionUser { id: row.id, roles }))
}

/// Most roles one user's ACL checks consider (its own and those they are children of).
const MAX_ROLES: usize = 100;

/// The names of the roles user `id` belongs to: the roles whose `users` hold it, and — recursively — the roles
/// whose `roles` hold one of those (a child role's members have its parent's rights).
pub async fn roles_of(svc: &Services, id: &str) -> Result<Vec<String>, UserError> {
    let mut seen: Vec<String> =
        relations::owners(&svc.db, ROLE.into(), "users".into(), id.to_string()).await?;
    let mut next = 0;
    while next < seen.len() && seen.len() < MAX_ROLES {
        let parents =
            relations::owners(&svc.db, ROLE.into(), "roles".into(), seen[next].clone()).await?;
        for parent in parents {
            if !seen.contains(&parent) {
                seen.push(parent);
            }
        }
        next += 1;
    }
    let mut names = Vec::new();
    for role in seen.into_iter().take(MAX_ROLES) {
        let found = objects::get(&svc.db, Caller::Master, ROLE.into(), role, false)
            .await
            .or_else(|e| match e {
                StoreError::ClassNotFound(_) => Ok(None),
                e => Err(e),
            })?;
        if let Some(name) = found
            .as_ref()
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// `GET /1.1/users/me`: the user of `token`, with it (211 for an unknown token).
pub async fn me(svc: &Services, token: &str) -> Result<Map<String, Value>, UserError> {
    if token.is_empty() {
        return Err(UserError::not_found());
    }
    let row = users::find_by(&svc.db, UserKey::SessionToken, token.to_string())
        .await?
        .ok_or_else(UserError::not_found)?;
    own_view(svc, &row).await
}

/// Only the user itself (its session) or the master key may change user `id` (206 otherwise).
fn require_self(caller: &Caller, id: &str) -> Result<(), UserError> {
    if caller.is_master() || caller.user_id() == Some(id) {
        Ok(())
    } else {
        Err(UserError::SessionMissing)
    }
}

/// `{"updatedAt","objectId","sessionToken"}`: what a token change answers.
fn token_answer(row: &Row) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("objectId".into(), json!(row.id));
    out.insert(
        "updatedAt".into(),
        json!(crate::store::time::iso_millis(row.updated_at)),
    );
    if let Some(token) = row.data.get("sessionToken") {
        out.insert("sessionToken".into(), token.clone());
    }
    out
}

/// `PUT /1.1/users/{id}/refreshSessionToken`: a new token; the old one stops working.
pub async fn refresh_token(
    svc: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Map<String, Value>, UserError> {
    require_self(caller, id)?;
    let row = users::set_fields(
        &svc.db,
        id.to_string(),
        vec![("sessionToken".into(), Some(json!(new_session_token())))],
    )
    .await?
    .ok_or_else(UserError::not_found)?;
    Ok(token_answer(&row))
}

/// `PUT /1.1/users/{id}/updatePassword`: the old password checked (210), the new one stored, a new token.
pub async fn update_password(
    svc: &Services,
    caller: &Caller,
    id: &str,
    old: String,
    new: String,
) -> Result<Map<String, Value>, UserError> {
    // The user's own session, or the master key (the Python SDK sends both); the old password is checked either way.
    require_self(caller, id)?;
    if new.is_empty() {
        return Err(UserError::refused(
            codes::PASSWORD_BLANK,
            "Password is blank.",
        ));
    }
    let row = users::get(&svc.db, id.to_string())
        .await?
        .ok_or_else(UserError::not_found)?;
    let stored = string_field(&row.data, "password")
        .unwrap_or_default()
        .to_string();
    let salt = string_field(&row.data, "salt").map(str::to_owned);
    if blocking(move || check_password(&stored, salt.as_deref(), &old)).await? == Checked::Wrong {
        return Err(UserError::mismatch());
    }
    let row = set_password(svc, id, new, Vec::new()).await?;
    Ok(token_answer(&row))
}

/// Stores `password` (argon2id) as user `id`'s, with `more` changes, and a new session token: every session
/// of the old password ends. The user after the change.
pub(crate) async fn set_password(
    svc: &Services,
    id: &str,
    password: String,
    more: Vec<(String, Option<Value>)>,
) -> Result<Row, UserError> {
    let hash = blocking(move || hash_password(&password)).await??;
    let mut changes = vec![
        ("password".into(), Some(json!(hash))),
        ("salt".into(), None),
        ("sessionToken".into(), Some(json!(new_session_token()))),
    ];
    changes.extend(more);
    users::set_fields(&svc.db, id.to_string(), changes)
        .await?
        .ok_or_else(UserError::not_found)
}

/// The key of an account's failed logins by `key` (each way of naming the account counts on its own).
pub(crate) fn account_key(key: UserKey, value: &str) -> String {
    format!("account:{}:{value}", key.field())
}

/// `PUT /1.1/users/{id}` and `/1.1/classes/_User/{id}`: the user itself or the master key; a new `password` is
/// hashed; the server's own fields are not the client's to set.
pub async fn update(
    svc: &Services,
    caller: Caller,
    id: &str,
    mut body: Map<String, Value>,
    where_: Option<Value>,
    fetch: bool,
) -> Result<Map<String, Value>, UserError> {
    require_self(&caller, id)?;
    for field in SERVER_KEPT {
        // The master key may mark an address verified (an admin's decision); nobody sets the rest.
        if !(caller.is_master() && VERIFIED_FLAGS.contains(&field)) {
            body.remove(field);
        }
    }
    for key in UserKey::UNIQUE {
        if let Some(value) = string_field(&body, key.field()).filter(|v| !v.is_empty()) {
            let other = users::find_by(&svc.db, key, value.to_string()).await?;
            if other.is_some_and(|r| r.id != id) {
                return Err(StoreError::Taken(key.field()).into());
            }
        }
    }
    let new_password = match body.remove("password") {
        Some(Value::String(p)) if !p.is_empty() => Some(p),
        Some(Value::String(_)) => {
            return Err(UserError::refused(
                codes::PASSWORD_BLANK,
                "Password is blank.",
            ))
        }
        None => None,
        Some(_) => {
            return Err(UserError::refused(
                codes::INTERNAL,
                "Password must be a string.",
            ))
        }
    };
    let mut out = objects::update(
        &svc.db,
        Caller::Master,
        USER_CLASS.to_string(),
        id.to_string(),
        body,
        where_,
        fetch,
    )
    .await?;
    if let Some(password) = new_password {
        let hash = blocking(move || hash_password(&password)).await??;
        users::set_fields(
            &svc.db,
            id.to_string(),
            vec![
                ("password".into(), Some(json!(hash))),
                ("salt".into(), None),
            ],
        )
        .await?;
    }
    for field in PRIVATE_FIELDS {
        out.remove(field);
    }
    Ok(out)
}

/// `DELETE /1.1/users/{id}`: the user itself or the master key.
pub async fn delete(svc: &Services, caller: &Caller, id: &str) -> Result<(), UserError> {
    require_self(caller, id)?;
    objects::delete(
        &svc.db,
        Caller::Master,
        USER_CLASS.to_string(),
        id.to_string(),
        None,
    )
    .await?;
    Ok(())
}

/// `POST /1.1/rtm/sign`: the IM login signature of the user of `token` — its `client_id` is the user's id.
pub async fn rtm_sign(
    svc: &Services,
    app_id: &str,
    master_key: &str,
    token: &str,
) -> Result<Value, UserError> {
    let Some(user) = session_user(svc, token).await? else {
        return Err(UserError::not_found());
    };
    let timestamp = chrono::Utc::now().timestamp_millis();
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 16);
    let signature = sign(
        master_key,
        &signed_string(
            app_id,
            Signed::Login { client: &user.id },
            timestamp,
            &nonce,
        ),
    );
    Ok(json!({
        "signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
        "client_id": user.id,
    }))
}
