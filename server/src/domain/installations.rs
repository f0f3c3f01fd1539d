//! Devices (`_Installation`) and which IM clients they carry (`leancloud-users-files-push.md` §3.1, §3.4):
//!
//! - [`upsert`]: `POST /1.1/installations` creates a device or, when one with the same APNs `deviceToken`
//!   (iOS) or `installationId` (Android) exists — or the body names its `objectId` — updates it: the iOS SDKs
//!   turn every save into a POST;
//! - [`bind`]: a realtime login from a device (the iOS SDKs' `deviceToken`, the Android SDK's `deviceId` with
//!   the bind flag) adds the client id to that device's `channels`, as LeanCloud shows it; a `report/upload`
//!   of a new token binds again; [`unbind`] at `session/close` (a logout) takes it out. A connection that
//!   merely drops keeps its binding: that is when the device needs its pushes.

use serde_json::{json, Map, Value};

use super::Services;
use crate::store::objects::{self, device_key, Created, INSTALLATION};
use crate::store::{Caller, StoreError};

/// The field the bound client ids are kept in.
pub const CHANNELS: &str = "channels";

/// The SDKs' `configBitmap` bit asking the server to bind the session to the installation `deviceId` names.
pub const BIND_INSTALLATION: i64 = 0x04;

/// The device a realtime login comes from: its APNs token, else (with the bind flag) its installation id.
pub fn login_device(
    token: Option<&str>,
    device_id: Option<&str>,
    config_bitmap: Option<i64>,
) -> Option<String> {
    let bound_id = device_id.filter(|_| config_bitmap.unwrap_or(0) & BIND_INSTALLATION != 0);
    device_key(token, bound_id)
}

/// Creates or updates a device (see the module's rules); `existed` when it was an update.
pub async fn upsert(svc: &Services, mut body: Map<String, Value>) -> Result<Created, StoreError> {
    let named = match body.remove("objectId") {
        Some(Value::String(id)) if !id.is_empty() => Some(id),
        _ => None,
    };
    if let Some(id) = named {
        let found = objects::get(
            &svc.db,
            Caller::Master,
            INSTALLATION.to_string(),
            id.clone(),
            false,
        )
        .await?;
        if found.is_some() {
            return update(svc, id, body).await;
        }
    }
    let created = objects::create(&svc.db, INSTALLATION.to_string(), body.clone(), true).await?;
    if created.existed {
        return update(svc, created.id, body).await;
    }
    Ok(created)
}

async fn update(
    svc: &Services,
    id: String,
    body: Map<String, Value>,
) -> Result<Created, StoreError> {
    let out = objects::update(
        &svc.db,
        Caller::Master,
        INSTALLATION.to_string(),
        id.clone(),
        body,
        None,
        true,
    )
    .await?;
    Ok(Created {
        existed: true,
        body: out,
        id,
    })
}

/// Applies `body` to device `id` as the backend; the device after it when `fetch`.
async fn change(
    svc: &Services,
    id: &str,
    body: Map<String, Value>,
    fetch: bool,
) -> Result<Map<String, Value>, StoreError> {
    objects::update(
        &svc.db,
        Caller::Master,
        INSTALLATION.to_string(),
        id.to_string(),
        body,
        None,
        fetch,
    )
    .await
}

async fn channels(svc: &Services, id: &str, client: &str, add: bool) -> Result<(), StoreError> {
    let op = if add { "AddUnique" } else { "Remove" };
    let mut body = Map::new();
    body.insert(CHANNELS.into(), json!({"__op": op, "objects": [client]}));
    change(svc, id, body, false).await?;
    Ok(())
}

/// Binds `client` to the device with unique key `device` (see [`login_device`]): the device's id, or `None`
/// when no such device was saved.
pub async fn bind(
    svc: &Services,
    client: &str,
    device: &str,
) -> Result<Option<String>, StoreError> {
    let Some(id) = objects::by_unique_key(&svc.db, INSTALLATION, device).await? else {
        return Ok(None);
    };
    channels(svc, &id, client, true).await?;
    Ok(Some(id))
}

/// Marks device `id` gone (`valid: false`, no bound clients): a provider said it no longer exists.
pub async fn invalidate(svc: &Services, id: &str) -> Result<(), StoreError> {
    let mut body = Map::new();
    body.insert("valid".into(), Value::Bool(false));
    body.insert(CHANNELS.into(), json!([]));
    change(svc, id, body, false).await?;
    Ok(())
}

/// Device `id`'s badge for a push with `"badge": "Increment"`: its stored `badge` plus one (stored), or, when
/// `again` (a retried delivery that already counted), the stored one.
pub async fn badge(svc: &Services, id: &str, again: bool) -> Result<i64, StoreError> {
    let row = if again {
        objects::get(
            &svc.db,
            Caller::Master,
            INSTALLATION.to_string(),
            id.to_string(),
            false,
        )
        .await?
        .unwrap_or_default()
    } else {
        let mut body = Map::new();
        body.insert("badge".into(), json!({"__op": "Increment", "amount": 1}));
        change(svc, id, body, true).await?
    };
    Ok(row.get("badge").and_then(Value::as_i64).unwrap_or(0))
}

/// Takes `client` out of device `id`'s channels.
pub async fn unbind(svc: &Services, client: &str, id: &str) -> Result<(), StoreError> {
    channels(svc, id, client, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_names_its_device_by_token_else_by_bound_installation_id() {
        assert_eq!(
            Some("token:abcd".to_string()),
            login_device(Some("ABCD"), Some("uuid"), Some(0x04))
        );
        assert_eq!(
            Some("installation:uuid".to_string()),
            login_device(None, Some("uuid"), Some(0xAF))
        );
        // The JS SDK sends a random deviceId without the bind flag: no device.
        assert_eq!(None, login_device(None, Some("uuid"), Some(0xAB)));
        assert_eq!(None, login_device(Some(""), None, None));
    }
}
