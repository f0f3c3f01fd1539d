//! `GeoPoint` queries as LeanCloud (and Parse) answer them: `$nearSphere` with its `$maxDistance` (radians),
//! `…InRadians`, `…InMiles`, `…InKilometers` bounds and `$minDistance…` alike, answered nearest first when the
//! query gives no `order`; and `$within: {"$box": [southwest, northeast]}`. Distances are great-circle distances on
//! a sphere of Earth's mean radius (6,371 km, 3,958.8 mi, the factors the SDKs divide by).

use serde_json::{Map, Value};

use crate::store::StoreError;

const EARTH_KM: f64 = 6371.0;
const EARTH_MILES: f64 = 3958.8;

/// The operators that bound a `$nearSphere` (read with it).
pub const DISTANCE_OPS: [&str; 8] = [
    "$maxDistance",
    "$maxDistanceInRadians",
    "$maxDistanceInMiles",
    "$maxDistanceInKilometers",
    "$minDistance",
    "$minDistanceInRadians",
    "$minDistanceInMiles",
    "$minDistanceInKilometers",
];

fn invalid(message: &str) -> StoreError {
    StoreError::InvalidQuery(message.to_string())
}

/// `(latitude, longitude)` in degrees of a `{"__type":"GeoPoint","latitude","longitude"}` (or of a
/// `[latitude, longitude]` pair, which the Python SDK's `within_geo_box` sends), when in range.
pub fn point(v: &Value) -> Option<(f64, f64)> {
    let (lat, lon) = match v {
        Value::Object(m) => (m.get("latitude")?.as_f64()?, m.get("longitude")?.as_f64()?),
        Value::Array(pair) if pair.len() == 2 => (pair[0].as_f64()?, pair[1].as_f64()?),
        _ => return None,
    };
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

/// Great-circle distance in radians (haversine).
pub fn radians_between(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin()
}

/// A distance bound in radians, from whichever unit its operator names.
fn bound(ops: &Map<String, Value>, prefix: &str) -> Result<Option<f64>, StoreError> {
    for (suffix, per_radian) in [
        ("", 1.0),
        ("InRadians", 1.0),
        ("InMiles", EARTH_MILES),
        ("InKilometers", EARTH_KM),
    ] {
        if let Some(v) = ops.get(&format!("{prefix}{suffix}")) {
            let n = v
                .as_f64()
                .filter(|n| *n >= 0.0)
                .ok_or_else(|| invalid("A distance must be a number of at least 0."))?;
            return Ok(Some(n / per_radian));
        }
    }
    Ok(None)
}

/// `$nearSphere` (with the distance bounds among `ops`) on `field`.
pub fn near(
    field: Option<&Value>,
    center: &Value,
    ops: &Map<String, Value>,
) -> Result<bool, StoreError> {
    let center = point(center).ok_or_else(|| invalid("$nearSphere expects a GeoPoint."))?;
    let (max, min) = (bound(ops, "$maxDistance")?, bound(ops, "$minDistance")?);
    let Some(here) = field.and_then(point) else {
        return Ok(false);
    };
    let d = radians_between(center, here);
    Ok(max.is_none_or(|m| d <= m) && min.is_none_or(|m| d >= m))
}

/// `$within: {"$box": [southwest, northeast]}` on `field` (a box across the antimeridian when the southwest
/// longitude is east of the northeast one).
pub fn within(field: Option<&Value>, arg: &Value) -> Result<bool, StoreError> {
    let corners = arg
        .get("$box")
        .and_then(Value::as_array)
        .filter(|c| c.len() == 2)
        .ok_or_else(|| invalid("$within expects {\"$box\": [southwest, northeast]}."))?;
    let (Some(sw), Some(ne)) = (point(&corners[0]), point(&corners[1])) else {
        return Err(invalid("$box expects two GeoPoints."));
    };
    if sw.0 > ne.0 {
        return Err(invalid(
            "$box: the southwest corner must be south of the northeast one.",
        ));
    }
    let Some((lat, lon)) = field.and_then(point) else {
        return Ok(false);
    };
    let lon_in = if sw.1 <= ne.1 {
        (sw.1..=ne.1).contains(&lon)
    } else {
        lon >= sw.1 || lon <= ne.1
    };
    Ok((sw.0..=ne.0).contains(&lat) && lon_in)
}

/// The field and center of a top-level `$nearSphere` in `where`, which orders the answer nearest first.
pub fn near_order(where_: Option<&Value>) -> Option<(String, (f64, f64))> {
    let clauses = where_?.as_object()?;
    clauses.iter().find_map(|(key, cond)| {
        let center = point(cond.as_object()?.get("$nearSphere")?)?;
        Some((key.clone(), center))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gp(lat: f64, lon: f64) -> Value {
        json!({"__type": "GeoPoint", "latitude": lat, "longitude": lon})
    }

    #[test]
    fn distances_follow_the_great_circle() {
        // Paris to London: about 344 km.
        let d = radians_between((48.8566, 2.3522), (51.5074, -0.1278)) * EARTH_KM;
        assert!((d - 343.5).abs() < 1.0, "{d}");
        assert_eq!(0.0, radians_between((10.0, 20.0), (10.0, 20.0)));
        // A quarter of the equator.
        let q = radians_between((0.0, 0.0), (0.0, 90.0));
        assert!((q - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
    }

    #[test]
    fn near_takes_its_bounds_in_every_unit() {
        let ops = |v: Value| v.as_object().cloned().unwrap();
        let here = gp(0.0, 1.0); // 111.19 km from the origin
        let origin = gp(0.0, 0.0);
        assert!(near(Some(&here), &origin, &ops(json!({}))).unwrap());
        assert!(near(
            Some(&here),
            &origin,
            &ops(json!({"$maxDistanceInKilometers": 112}))
        )
        .unwrap());
        assert!(!near(
            Some(&here),
            &origin,
            &ops(json!({"$maxDistanceInKilometers": 111}))
        )
        .unwrap());
        assert!(!near(
            Some(&here),
            &origin,
            &ops(json!({"$maxDistanceInMiles": 69}))
        )
        .unwrap());
        assert!(near(Some(&here), &origin, &ops(json!({"$maxDistance": 0.02}))).unwrap());
        assert!(!near(
            Some(&here),
            &origin,
            &ops(json!({"$minDistanceInKilometers": 200}))
        )
        .unwrap());
        assert!(!near(None, &origin, &ops(json!({}))).unwrap());
        assert!(near(Some(&here), &json!("x"), &ops(json!({}))).is_err());
        assert!(near(Some(&here), &origin, &ops(json!({"$maxDistance": -1}))).is_err());
    }

    #[test]
    fn boxes_hold_their_edges_and_may_cross_the_antimeridian() {
        let b = json!({"$box": [gp(0.0, 0.0), gp(11.0, 11.0)]});
        assert!(within(Some(&gp(0.0, 0.0)), &b).unwrap());
        assert!(within(Some(&gp(11.0, 11.0)), &b).unwrap());
        assert!(!within(Some(&gp(1.0, -1.0)), &b).unwrap());
        let pairs = json!({"$box": [[0, 0], [11, 11]]});
        assert!(within(Some(&gp(5.0, 5.0)), &pairs).unwrap());
        let across = json!({"$box": [gp(-10.0, 170.0), gp(10.0, -170.0)]});
        assert!(within(Some(&gp(0.0, 179.0)), &across).unwrap());
        assert!(within(Some(&gp(0.0, -175.0)), &across).unwrap());
        assert!(!within(Some(&gp(0.0, 0.0)), &across).unwrap());
        assert!(within(
            Some(&gp(0.0, 0.0)),
            &json!({"$box": [gp(10.0, 0.0), gp(0.0, 1.0)]})
        )
        .is_err());
    }
}
