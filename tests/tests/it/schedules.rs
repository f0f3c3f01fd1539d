//! The `schedules` function on moto's EventBridge Scheduler: create (one-time and recurring, in a time zone),
//! list, cancel, refuse bad input before anything exists, and the created schedule's target input handed to
//! its target function twice sending once.

use chrono::{DateTime, Datelike as _, Duration, SecondsFormat, Timelike as _, Utc, Weekday};
use im_functions::ops::broadcast::BroadcastOp;
use im_functions::ops::schedules::SchedulesOp;
use im_functions::ops::send_message::SendMessageOp;
use im_functions::scheduler::Scheduler;
use im_functions::{lambda, App};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

use crate::aws::{moto_or_skip, Moto};
use crate::helpers::{http_event, HttpAnswer, TestApp};

const SEND_MESSAGE_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:im-send-message";
const BROADCAST_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:im-broadcast";

/// The server and the other functions ([`TestApp`]), the schedules function's app on moto, and the group.
struct Schedules {
    test: TestApp,
    app: App,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
    _moto: Moto,
}

impl Schedules {
    async fn start(moto: Moto, group: &str) -> Schedules {
        let aws = moto.sdk_config().await;
        let scheduler = aws_sdk_scheduler::Client::new(&aws);
        scheduler
            .create_schedule_group()
            .name(group)
            .send()
            .await
            .expect("group created");
        let env = |name: &str| match name {
            "SCHEDULE_GROUP" => Some(group.to_owned()),
            "SCHEDULER_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/im-scheduler".to_owned()),
            "SEND_MESSAGE_FUNCTION_ARN" => Some(SEND_MESSAGE_ARN.to_owned()),
            "BROADCAST_FUNCTION_ARN" => Some(BROADCAST_ARN.to_owned()),
            "SCHEDULE_DLQ_ARN" => {
                Some("arn:aws:sqs:us-east-1:123456789012:im-schedule-dlq".to_owned())
            }
            _ => None,
        };
        let test = TestApp::spawn().await;
        let app = App::new(test.app.client.clone())
            .with_scheduler(Scheduler::from_lookup(&env, &aws).expect("scheduler settings"));
        Schedules {
            test,
            app,
            scheduler,
            group: group.to_owned(),
            _moto: moto,
        }
    }

    async fn call(&self, method: &str, path: &str, body: &Value) -> HttpAnswer {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let answer = lambda::handle::<SchedulesOp>(
            &self.app,
            LambdaEvent::new(http_event(method, path, &body), Context::default()),
        )
        .await
        .expect("HTTP events always answer Ok");
        HttpAnswer::from_value(answer)
    }

    async fn create(&self, body: Value) -> HttpAnswer {
        self.call("POST", "/schedules", &body).await
    }

    async fn list(&self) -> Vec<Value> {
        let answer = self.call("GET", "/schedules", &Value::Null).await;
        assert_eq!(200, answer.status, "{:?}", answer.body);
        answer.body["schedules"]
            .as_array()
            .expect("schedules")
            .clone()
    }

    /// What Scheduler itself holds (not what the function says about it).
    async fn stored(
        &self,
        name: &str,
    ) -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
        self.scheduler
            .get_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
            .expect("schedule exists")
    }

    async fn stored_count(&self) -> usize {
        self.scheduler
            .list_schedules()
            .group_name(&self.group)
            .send()
            .await
            .expect("listed")
            .schedules()
            .len()
    }
}

fn payload() -> Value {
    json!({"from_client": "ops", "message": "The maintenance window starts in an hour."})
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_one_time_send_is_created_listed_and_cancelled() {
    let moto = moto_or_skip!();
    let s = Schedules::start(moto, "im-one-time").await;
    let conversation = s.test.normal.to_string();
    // Tomorrow, written with a +08:00 offset: the schedule fires at that instant, stored in UTC.
    let at = (Utc::now() + Duration::days(1))
        .with_nanosecond(0)
        .expect("time");
    let local = at
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .to_rfc3339();
    let created = s
        .create(json!({"operation": "send-message", "conversation_id": conversation, "name": "reminder-1",
            "payload": payload(), "send_at": local}))
        .await;
    assert_eq!(201, created.status, "{:?}", created.body);
    assert_eq!("reminder-1", created.body["name"]);
    assert_eq!("send-message", created.body["operation"]);
    let next = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    assert_eq!(next, created.body["next_fire_time"]);

    let stored = s.stored("reminder-1").await;
    assert_eq!(
        Some(format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")).as_str()),
        stored.schedule_expression()
    );
    assert_eq!(Some("UTC"), stored.schedule_expression_timezone());
    assert_eq!(
        Some("DELETE"),
        stored.action_after_completion().map(|a| a.as_str()),
        "a one-time schedule deletes itself after it ran"
    );
    let target = stored.target().expect("target");
    assert_eq!(SEND_MESSAGE_ARN, target.arn());
    assert_eq!(
        Some("arn:aws:sqs:us-east-1:123456789012:im-schedule-dlq"),
        target.dead_letter_config().and_then(|dlq| dlq.arn())
    );
    let input: Value = serde_json::from_str(target.input().expect("input")).expect("JSON input");
    assert_eq!(conversation, input["conversation_id"]);
    assert_eq!(
        "reminder-1@<aws.scheduler.scheduled-time>",
        input["idempotency_key"]
    );

    let listed = s.list().await;
    assert_eq!(1, listed.len(), "{listed:?}");
    assert_eq!("reminder-1", listed[0]["name"]);
    assert_eq!(conversation, listed[0]["conversation_id"]);
    assert_eq!(next, listed[0]["next_fire_time"]);

    let deleted = s
        .call("DELETE", "/schedules/reminder-1", &Value::Null)
        .await;
    assert_eq!(200, deleted.status, "{:?}", deleted.body);
    assert!(s.list().await.is_empty());
    s.call("DELETE", "/schedules/reminder-1", &Value::Null)
        .await
        .assert_error(404, "schedule_not_found");
    // A name that was never created answers the same.
    s.call("DELETE", "/schedules/never-was", &Value::Null)
        .await
        .assert_error(404, "schedule_not_found");
    s.test.shutdown().await;
}

#[tokio::test]
async fn a_recurring_broadcast_fires_at_its_local_time_in_its_zone() {
    let moto = moto_or_skip!();
    let s = Schedules::start(moto, "im-recurring").await;
    let system = s.test.system.to_string();
    let created = s
        .create(
            json!({"operation": "broadcast", "conversation_id": system, "name": "weekday-digest",
            "payload": payload(), "cron": "0 9 ? * MON-FRI *", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(201, created.status, "{:?}", created.body);
    assert_eq!("Europe/Berlin", created.body["timezone"]);
    assert_eq!(
        "cron(0 9 ? * MON-FRI *)",
        created.body["schedule_expression"]
    );
    // 09:00 in Berlin whatever the season (07:00 or 08:00 UTC across daylight saving time), on a weekday.
    let next = instant(created.body["next_fire_time"].as_str().expect("next fire"))
        .with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(
        (9, 0, 0),
        (next.hour(), next.minute(), next.second()),
        "{next}"
    );
    assert!(
        !matches!(next.weekday(), Weekday::Sat | Weekday::Sun),
        "{next}"
    );
    assert!(
        next > Utc::now() && next < Utc::now() + Duration::days(4),
        "{next}"
    );

    let stored = s.stored("weekday-digest").await;
    assert_eq!(Some("Europe/Berlin"), stored.schedule_expression_timezone());
    assert_eq!(
        None,
        stored.action_after_completion(),
        "a recurring schedule stays"
    );
    assert_eq!(BROADCAST_ARN, stored.target().expect("target").arn());

    let rate = s
        .create(json!({"operation": "send-message", "conversation_id": s.test.normal.to_string(),
            "name": "every-two-hours", "payload": payload(), "rate": "2 hours", "timezone": "Asia/Shanghai"}))
        .await;
    assert_eq!(201, rate.status, "{:?}", rate.body);
    assert_eq!("rate(2 hours)", rate.body["schedule_expression"]);
    let next = instant(rate.body["next_fire_time"].as_str().expect("next fire"));
    assert!(
        next > Utc::now() + Duration::minutes(119) && next <= Utc::now() + Duration::hours(2),
        "{next}"
    );

    let listed = s.list().await;
    let names: Vec<&str> = listed.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(vec!["every-two-hours", "weekday-digest"], names);
    assert!(
        listed.iter().all(|s| s["next_fire_time"].is_string()),
        "{listed:?}"
    );
    assert_eq!(
        json!("broadcast"),
        listed[1]["operation"],
        "the target function is read back from the schedule"
    );
    // The same name again is refused, not overwritten.
    let again = s
        .create(
            json!({"operation": "broadcast", "conversation_id": system, "name": "weekday-digest",
            "payload": payload(), "rate": "1 day"}),
        )
        .await;
    again.assert_error(400, "invalid_request");
    s.test.shutdown().await;
}

#[tokio::test]
async fn bad_schedules_are_refused_with_400_before_any_schedule_exists() {
    let moto = moto_or_skip!();
    let s = Schedules::start(moto, "im-refused").await;
    let conversation = s.test.normal.to_string();
    let tomorrow = (Utc::now() + Duration::days(1)).to_rfc3339();
    let cases = [
        (
            json!({"operation": "send-message", "payload": payload(),
                "send_at": (Utc::now() - Duration::minutes(5)).to_rfc3339()}),
            "not in the future",
        ),
        (
            json!({"operation": "send-message", "payload": payload(),
                "send_at": (Utc::now() + Duration::days(400)).to_rfc3339()}),
            "one year",
        ),
        (
            json!({"operation": "broadcast", "payload": payload(), "cron": "0 9 * * ? *",
                "timezone": "Europe/Atlantis"}),
            "IANA",
        ),
        (
            json!({"operation": "send-message", "payload": payload(), "send_at": tomorrow,
                "cron": "0 9 * * ? *"}),
            "only one",
        ),
        (
            json!({"operation": "send-message", "payload": {"from_client": "ops"}, "send_at": tomorrow}),
            "missing field `message`",
        ),
        (
            json!({"operation": "broadcast", "payload": {"from_client": "ops", "message": "hi",
                "to_clients": ["a"]}, "rate": "1 day"}),
            "unknown field `to_clients`",
        ),
        (
            json!({"operation": "send-message", "payload": {"from_client": "ops", "message": "hi",
                "to_clients": ["a", "a", ""]}, "rate": "1 day"}),
            "to_clients",
        ),
        (
            json!({"operation": "delete-everything", "payload": payload(), "rate": "1 day"}),
            "`operation`",
        ),
    ];
    for (mut body, expected) in cases {
        body["conversation_id"] = json!(conversation);
        let answer = s.create(body.clone()).await;
        answer.assert_error(400, "invalid_request");
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?} for {body}"
        );
    }
    assert_eq!(0, s.stored_count().await, "nothing was created");
    assert!(s.list().await.is_empty());
    s.test.shutdown().await;
}

#[tokio::test]
async fn a_schedule_fire_delivered_twice_sends_once() {
    let moto = moto_or_skip!();
    let s = Schedules::start(moto, "im-fires").await;
    let at = (Utc::now() + Duration::hours(3)).to_rfc3339();
    for (operation, conversation) in [
        ("broadcast", s.test.system.to_string()),
        ("send-message", s.test.normal.to_string()),
    ] {
        let name = format!("{operation}-once");
        let created = s
            .create(
                json!({"operation": operation, "conversation_id": conversation, "name": name,
                "payload": payload(), "send_at": at}),
            )
            .await;
        assert_eq!(201, created.status, "{:?}", created.body);
        // What Scheduler hands the target at the fire, its placeholder filled in.
        let stored = s.stored(&name).await;
        let input = stored
            .target()
            .and_then(|t| t.input())
            .expect("input")
            .replace("<aws.scheduler.scheduled-time>", "2026-12-24T17:00:00Z");
        let input: Value = serde_json::from_str(&input).expect("JSON");
        let mut answers = Vec::new();
        for _ in 0..2 {
            let answer = match operation {
                "broadcast" => s.test.invoke::<BroadcastOp>(input.clone()).await,
                _ => s.test.invoke::<SendMessageOp>(input.clone()).await,
            };
            answers.push(answer.expect("the fire is handled"));
        }
        assert_eq!(
            answers[0], answers[1],
            "the second delivery answers the first's result"
        );
        let path = match operation {
            "broadcast" => "/1.1/rtm/broadcast",
            _ => "/1.1/rtm/messages",
        };
        let calls = s
            .test
            .inspect()
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .count();
        assert_eq!(
            1, calls,
            "{operation}: one LeanCloud call for two deliveries"
        );
    }
    s.test.shutdown().await;
}
