//! IANA time zones for recurring schedules: jiff's bundled time zone database behind chrono's `TimeZone`, which
//! the `cron` crate computes next fire times in.
//!
//! jiff keeps the database as one compressed blob. chrono-tz, used before, compiles every zone's transitions
//! into static tables of `&'static str` names: about 1.7 MB of data and load-time relocations in the
//! `schedules` binary, for a feature whose only job here is "when does this cron fire next".

use std::fmt;

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};
use jiff::tz::{AmbiguousOffset, TimeZone as JiffZone};

/// An IANA zone (`Europe/Berlin`), or UTC.
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: JiffZone,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_owned(),
            tz: JiffZone::UTC,
        }
    }

    /// The zone named `name` in the bundled database (`None` for an unknown name).
    pub fn named(name: &str) -> Option<Zone> {
        let tz = jiff::tz::db().get(name).ok()?;
        Some(Zone {
            name: name.to_owned(),
            tz,
        })
    }

    /// The name it was looked up by, as Scheduler takes it (`ScheduleExpressionTimezone`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn offset_at(&self, seconds: i64) -> FixedOffset {
        let offset = jiff::Timestamp::from_second(seconds)
            .map(|at| self.tz.to_offset(at).seconds())
            .unwrap_or(0);
        fixed(offset)
    }
}

fn fixed(seconds: i32) -> FixedOffset {
    FixedOffset::east_opt(seconds).unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The offset in force at one instant in a [`Zone`] (chrono needs the zone back from an offset).
#[derive(Clone, Debug)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fixed)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    #[allow(deprecated)]
    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        match local.and_hms_opt(0, 0, 0) {
            Some(midnight) => self.offset_from_local_datetime(&midnight),
            None => LocalResult::None,
        }
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        let offset = |seconds: i32| ZoneOffset {
            zone: self.clone(),
            fixed: fixed(seconds),
        };
        let Some(civil) = civil(local) else {
            return LocalResult::None;
        };
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset: o } => LocalResult::Single(offset(o.seconds())),
            // A local time skipped by a clock change does not exist.
            AmbiguousOffset::Gap { .. } => LocalResult::None,
            AmbiguousOffset::Fold { before, after } => {
                LocalResult::Ambiguous(offset(before.seconds()), offset(after.seconds()))
            }
        }
    }

    #[allow(deprecated)]
    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        let midnight = utc.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.offset_from_utc_datetime(&midnight)
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            fixed: self.offset_at(utc.and_utc().timestamp()),
        }
    }
}

/// chrono's local date-time as jiff's (`None` outside jiff's years -9999..=9999).
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike as _, Timelike as _};
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        i8::try_from(local.month()).ok()?,
        i8::try_from(local.day()).ok()?,
        i8::try_from(local.hour()).ok()?,
        i8::try_from(local.minute()).ok()?,
        i8::try_from(local.second()).ok()?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").expect("local time")
    }

    #[test]
    fn names_are_the_iana_ones() {
        assert_eq!(
            "Europe/Berlin",
            Zone::named("Europe/Berlin").expect("zone").name()
        );
        assert_eq!("UTC", Zone::utc().name());
        assert!(Zone::named("Mars/Olympus").is_none());
        assert!(Zone::named("").is_none());
    }

    #[test]
    fn offsets_follow_daylight_saving_time() {
        let berlin = Zone::named("Europe/Berlin").expect("zone");
        let winter = Utc.with_ymd_and_hms(2027, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2027, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(
            3600,
            winter
                .with_timezone(&berlin)
                .offset()
                .fix()
                .local_minus_utc()
        );
        assert_eq!(
            7200,
            summer
                .with_timezone(&berlin)
                .offset()
                .fix()
                .local_minus_utc()
        );
    }

    #[test]
    fn skipped_local_times_do_not_exist_and_repeated_ones_are_ambiguous() {
        let new_york = Zone::named("America/New_York").expect("zone");
        // 14 March 2027, 02:30 is skipped; 7 November 2027, 01:30 happens twice.
        assert!(matches!(
            new_york.from_local_datetime(&local("2027-03-14T02:30:00")),
            LocalResult::None
        ));
        let LocalResult::Ambiguous(first, second) =
            new_york.from_local_datetime(&local("2027-11-07T01:30:00"))
        else {
            panic!("01:30 on 7 November 2027 is ambiguous in New York");
        };
        assert_eq!(
            "2027-11-07T05:30:00+00:00",
            first.with_timezone(&Utc).to_rfc3339()
        );
        assert_eq!(
            "2027-11-07T06:30:00+00:00",
            second.with_timezone(&Utc).to_rfc3339()
        );
        let LocalResult::Single(noon) = new_york.from_local_datetime(&local("2027-06-01T12:00:00"))
        else {
            panic!("noon exists");
        };
        assert_eq!(
            "2027-06-01T16:00:00+00:00",
            noon.with_timezone(&Utc).to_rfc3339()
        );
    }
}
