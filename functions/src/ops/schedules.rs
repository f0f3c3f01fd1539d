//! `POST /schedules`, `GET /schedules`, `DELETE /schedules/{name}`: scheduled sends and broadcasts as EventBridge
//! Scheduler schedules in this stack's group.
//!
//! A schedule names the operation (`send-message` or `broadcast`), the conversation and the payload that
//! operation takes. The payload is validated by the target operation's own parse before anything is created,
//! so a schedule never fires a payload its target refuses. The schedule's target input is the queue record
//! (the payload plus `conversation_id`) with `idempotency_key` = `<name>@<aws.scheduler.scheduled-time>`:
//! Scheduler fills in the fire's scheduled time, which is the same on every retry of that fire, so the target's
//! idempotency ledger sends a fire delivered twice once.
//!
//! Time: `send_at` (RFC 3339 with an offset, or epoch milliseconds; in the future and at most a year ahead) is a
//! one-time `at(…)` schedule in UTC that Scheduler deletes after it ran; `cron` (Scheduler's six fields, e.g.
//! `0 9 ? * MON-FRI *`) or `rate` (`5 minutes`) recur in `timezone` (IANA, default `UTC`).

use std::str::FromStr as _;
use std::time::Duration;

use aws_sdk_scheduler::error::DisplayErrorContext;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
};
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::broadcast::BroadcastOp;
use super::input::json_type;
use super::send_message::SendMessageOp;
use super::{parse_payload, Invocation, Matched, Operation, Resource, Route, Target, TriggerKind};
use crate::app::Needs;
use crate::error::{ErrorCode, FunctionError};
use crate::scheduler::Scheduler;

mod zone;
pub use zone::Zone;

/// Scheduler's limit on schedule names (`[0-9a-zA-Z-_.]+`, 1 to 64 characters).
pub const MAX_NAME_LEN: usize = 64;
/// How far ahead a one-time send may be scheduled.
pub const MAX_AHEAD: Duration = Duration::from_secs(366 * 24 * 3600);
/// What Scheduler replaces with the fire's scheduled time in the target input.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// What the request acts on: the collection (`POST`, `GET`) or one schedule (`DELETE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleAction {
    Create,
    List,
    Delete(String),
}

impl Target for ScheduleAction {
    fn from_path(matched: Matched, _: &Map<String, Value>) -> Result<Self, FunctionError> {
        match (matched.method.as_str(), matched.resource) {
            ("POST", Resource::Collection) => Ok(ScheduleAction::Create),
            ("GET", Resource::Collection) => Ok(ScheduleAction::List),
            ("DELETE", Resource::Named(name)) => Ok(ScheduleAction::Delete(name)),
            (method, _) => Err(FunctionError::invalid_request(format!(
                "{method} is not a schedule action"
            ))),
        }
    }

    fn from_record(_: &mut Map<String, Value>) -> Result<Self, FunctionError> {
        Err(FunctionError::invalid_request(
            "schedules are managed over HTTP only",
        ))
    }
}

/// The `POST` body (`GET` and `DELETE` take none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub operation: Option<String>,
    pub conversation_id: Option<String>,
    pub payload: Option<Value>,
    pub send_at: Option<Value>,
    pub cron: Option<String>,
    pub rate: Option<String>,
    pub timezone: Option<String>,
    pub name: Option<String>,
}

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Once, at this instant (an `at(…)` expression in UTC).
    At(DateTime<Utc>),
    /// Scheduler's six cron fields, in `zone`.
    Cron { fields: String, zone: Zone },
    /// Every `every`, counted from the schedule's creation.
    Rate {
        value: u64,
        unit: &'static str,
        zone: Zone,
    },
}

impl When {
    /// The Scheduler expression.
    pub fn expression(&self) -> String {
        match self {
            When::At(at) => format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")),
            When::Cron { fields, .. } => format!("cron({fields})"),
            When::Rate { value, unit, .. } => {
                let unit = if *value == 1 {
                    unit.trim_end_matches('s')
                } else {
                    unit
                };
                format!("rate({value} {unit})")
            }
        }
    }

    pub fn zone(&self) -> Zone {
        match self {
            When::At(_) => Zone::utc(),
            When::Cron { zone, .. } | When::Rate { zone, .. } => zone.clone(),
        }
    }

    /// The next fire strictly after `now` (`None`: a one-time send in the past, or a cron that never fires
    /// again). A rate counts from `created`.
    pub fn next_after(&self, now: DateTime<Utc>, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            When::At(at) => (*at > now).then_some(*at),
            When::Cron { fields, zone } => cron_schedule(fields)
                .ok()?
                .after(&now.with_timezone(zone))
                .next()
                .map(|at| at.with_timezone(&Utc)),
            When::Rate { value, unit, .. } => {
                let every = chrono::Duration::seconds(
                    i64::try_from(*value)
                        .ok()?
                        .checked_mul(unit_seconds(unit))?,
                );
                let mut next = created + every;
                if next <= now {
                    let behind = (now - created).num_seconds() / every.num_seconds().max(1);
                    next = created + every * i32::try_from(behind + 1).ok()?;
                }
                Some(next)
            }
        }
    }

    /// Read back an expression this module wrote (for `GET`).
    pub fn from_expression(expression: &str, zone: Zone) -> Option<When> {
        let inner = |prefix: &str| {
            expression
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        if let Some(at) = inner("at(") {
            let at = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S").ok()?;
            return zone
                .from_local_datetime(&at)
                .earliest()
                .map(|at| When::At(at.with_timezone(&Utc)));
        }
        if let Some(fields) = inner("cron(") {
            return parse_cron(fields, zone).ok();
        }
        inner("rate(").and_then(|rate| parse_rate(rate, zone).ok())
    }
}

fn unit_seconds(unit: &str) -> i64 {
    match unit {
        "minutes" => 60,
        "hours" => 3600,
        _ => 86_400,
    }
}

/// Scheduler's `minutes hours day-of-month month day-of-week year` as the `cron` crate's seven fields.
fn cron_schedule(fields: &str) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(&format!("0 {fields}")).map_err(|err| err.to_string())
}

fn parse_cron(text: &str, zone: Zone) -> Result<When, FunctionError> {
    let invalid = |why: String| {
        FunctionError::invalid_request(format!(
            "`cron` must be Scheduler's six fields (minutes hours day-of-month month day-of-week year), e.g. \
             \"0 9 ? * MON-FRI *\": {why}"
        ))
    };
    let text = text.trim();
    let text = text
        .strip_prefix("cron(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(text);
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(invalid(format!("{} fields given", fields.len())));
    }
    if fields[2] != "?" && fields[4] != "?" {
        return Err(invalid(
            "one of day-of-month and day-of-week must be `?`".to_owned(),
        ));
    }
    let special = |field: &str, suffixes: &[char]| {
        field.contains('#')
            || field.split(',').any(|part| {
                part.strip_suffix(suffixes)
                    .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
            })
    };
    if special(fields[2], &['L', 'W']) || special(fields[4], &['L']) {
        return Err(invalid("`L`, `W` and `#` are not supported".to_owned()));
    }
    let fields = fields.join(" ");
    let schedule = cron_schedule(&fields).map_err(invalid)?;
    if schedule
        .after(&Utc::now().with_timezone(&zone))
        .next()
        .is_none()
    {
        return Err(invalid("it never fires again".to_owned()));
    }
    Ok(When::Cron { fields, zone })
}

fn parse_rate(text: &str, zone: Zone) -> Result<When, FunctionError> {
    let invalid = || {
        FunctionError::invalid_request(format!(
            "`rate` must be a positive whole number and minutes, hours or days, e.g. \"5 minutes\"; got {text:?}"
        ))
    };
    let text = text.trim();
    let text = text
        .strip_prefix("rate(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(text);
    let (value, unit) = text.split_once(' ').ok_or_else(invalid)?;
    let value: u64 = value.parse().map_err(|_| invalid())?;
    let unit = match unit.trim() {
        "minute" | "minutes" => "minutes",
        "hour" | "hours" => "hours",
        "day" | "days" => "days",
        _ => return Err(invalid()),
    };
    if value == 0 || value > 100_000 {
        return Err(invalid());
    }
    Ok(When::Rate { value, unit, zone })
}

fn parse_zone(zone: Option<&str>) -> Result<Zone, FunctionError> {
    match zone {
        None => Ok(Zone::utc()),
        Some(name) => Zone::named(name).ok_or_else(|| {
            FunctionError::invalid_request(format!(
                "`timezone` must be an IANA time zone such as \"Europe/Berlin\"; {name:?} is not one"
            ))
        }),
    }
}

/// `send_at`: RFC 3339 with an offset, or epoch milliseconds; strictly after `now`, at most [`MAX_AHEAD`].
pub fn parse_send_at(value: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, FunctionError> {
    let invalid = |why: String| {
        FunctionError::invalid_request(format!(
            "`send_at` must be an RFC 3339 date-time with an offset or epoch milliseconds: {why}"
        ))
    };
    let at = match value {
        Value::Number(number) => {
            let millis = number
                .as_i64()
                .ok_or_else(|| invalid(format!("{number} is not an integer")))?;
            Utc.timestamp_millis_opt(millis)
                .single()
                .ok_or_else(|| invalid(format!("{millis} is out of range")))?
        }
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| invalid(format!("{text:?}: {err}")))?,
        other => return Err(invalid(format!("got {}", json_type(other)))),
    };
    // Scheduler's `at()` has whole seconds; a fraction is rounded up so the send is never early.
    let at = if at.timestamp_subsec_nanos() > 0 {
        Utc.timestamp_opt(at.timestamp() + 1, 0)
            .single()
            .ok_or_else(|| invalid("out of range".to_owned()))?
    } else {
        at
    };
    if at <= now {
        return Err(FunctionError::invalid_request(format!(
            "`send_at` {} is not in the future",
            at.to_rfc3339()
        )));
    }
    if (at - now).to_std().unwrap_or(Duration::MAX) > MAX_AHEAD {
        return Err(FunctionError::invalid_request(
            "`send_at` may be at most one year ahead",
        ));
    }
    Ok(at)
}

/// Which function a schedule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetOp {
    #[serde(rename = "send-message")]
    SendMessage,
    #[serde(rename = "broadcast")]
    Broadcast,
}

impl TargetOp {
    pub fn name(self) -> &'static str {
        match self {
            TargetOp::SendMessage => SendMessageOp::NAME,
            TargetOp::Broadcast => BroadcastOp::NAME,
        }
    }

    fn arn(self, scheduler: &Scheduler) -> &str {
        match self {
            TargetOp::SendMessage => &scheduler.send_message_arn,
            TargetOp::Broadcast => &scheduler.broadcast_arn,
        }
    }
}

/// A validated schedule, ready to create.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub name: String,
    pub operation: TargetOp,
    pub conversation_id: String,
    pub when: When,
    /// The target input: the queue record with the derived idempotency key.
    pub input: Map<String, Value>,
}

/// What `POST` answers and `GET` lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    pub name: String,
    pub operation: Option<TargetOp>,
    pub conversation_id: Option<String>,
    pub schedule_expression: String,
    pub timezone: String,
    /// RFC 3339 in UTC; `null` when it will not fire again.
    pub next_fire_time: Option<String>,
}

/// `GET /schedules`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// `DELETE /schedules/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleDeleted {
    pub name: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScheduleOutcome {
    Created(ScheduleView),
    Listed(ScheduleList),
    Deleted(ScheduleDeleted),
}

pub enum ScheduleInput {
    Create(Box<NewSchedule>),
    List,
    Delete(String),
}

impl std::fmt::Debug for ScheduleInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleInput::Create(schedule) => f.debug_tuple("Create").field(schedule).finish(),
            ScheduleInput::List => f.write_str("List"),
            ScheduleInput::Delete(name) => f.debug_tuple("Delete").field(name).finish(),
        }
    }
}

fn check_name(name: &str) -> Result<(), FunctionError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(FunctionError::invalid_request(format!(
            "`name` must be 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.`"
        )))
    }
}

impl NewSchedule {
    /// Validate everything Scheduler and the target would refuse, before any schedule exists.
    pub fn parse(body: ScheduleBody, now: DateTime<Utc>) -> Result<Self, FunctionError> {
        let operation = match body.operation.as_deref() {
            Some("send-message") => TargetOp::SendMessage,
            Some("broadcast") => TargetOp::Broadcast,
            Some(other) => {
                return Err(FunctionError::invalid_request(format!(
                    "`operation` must be \"send-message\" or \"broadcast\", got {other:?}"
                )))
            }
            None => return Err(FunctionError::invalid_request("missing field `operation`")),
        };
        let conversation_id = body
            .conversation_id
            .ok_or_else(|| FunctionError::invalid_request("missing field `conversation_id`"))?;
        let name = match body.name {
            Some(name) => name,
            None => format!(
                "{}-{}",
                operation.name(),
                hex::encode(rand::random::<[u8; 8]>())
            ),
        };
        check_name(&name)?;
        let zone = parse_zone(body.timezone.as_deref())?;
        let when = match (body.send_at, body.cron, body.rate) {
            (Some(send_at), None, None) => When::At(parse_send_at(&send_at, now)?),
            (None, Some(cron), None) => parse_cron(&cron, zone)?,
            (None, None, Some(rate)) => parse_rate(&rate, zone)?,
            (None, None, None) => {
                return Err(FunctionError::invalid_request(
                    "a schedule needs one of `send_at`, `cron` or `rate`",
                ))
            }
            _ => {
                return Err(FunctionError::invalid_request(
                    "give only one of `send_at`, `cron` and `rate`",
                ))
            }
        };
        let mut input = match body.payload {
            Some(Value::Object(payload)) => payload,
            Some(other) => {
                return Err(FunctionError::invalid_request(format!(
                    "`payload` must be a JSON object, got {}",
                    json_type(&other)
                )))
            }
            None => return Err(FunctionError::invalid_request("missing field `payload`")),
        };
        for field in ["conversation_id", "idempotency_key", "dry_run"] {
            if input.contains_key(field) {
                return Err(FunctionError::invalid_request(format!(
                    "`payload` must not set `{field}`: the schedule sets it"
                )));
            }
        }
        input.insert("conversation_id".into(), conversation_id.clone().into());
        input.insert(
            "idempotency_key".into(),
            format!("{name}@{SCHEDULED_TIME}").into(),
        );
        // Exactly what the target will do with this input when it fires.
        let record = Value::Object(input.clone());
        let refused = |err: FunctionError| match err {
            FunctionError::InvalidInput { code, message } => FunctionError::InvalidInput {
                code,
                message: format!(
                    "`payload` is not a valid {} input: {message}",
                    operation.name()
                ),
            },
            other => other,
        };
        match operation {
            TargetOp::SendMessage => {
                parse_payload::<SendMessageOp>(record, None, TriggerKind::Schedule)
                    .map(drop)
                    .map_err(refused)?
            }
            TargetOp::Broadcast => {
                parse_payload::<BroadcastOp>(record, None, TriggerKind::Schedule)
                    .map(drop)
                    .map_err(refused)?
            }
        }
        Ok(NewSchedule {
            name,
            operation,
            conversation_id,
            when,
            input,
        })
    }

    fn view(&self, now: DateTime<Utc>) -> ScheduleView {
        ScheduleView {
            name: self.name.clone(),
            operation: Some(self.operation),
            conversation_id: Some(self.conversation_id.clone()),
            schedule_expression: self.when.expression(),
            timezone: self.when.zone().name().to_owned(),
            next_fire_time: self.when.next_after(now, now).map(rfc3339),
        }
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn scheduler_error(action: &'static str, detail: String) -> FunctionError {
    FunctionError::Unavailable {
        service: "EventBridge Scheduler",
        detail: format!("{action}: {}", detail.chars().take(300).collect::<String>()),
    }
}

fn smithy_to_chrono(at: &aws_sdk_scheduler::primitives::DateTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(at.secs(), at.subsec_nanos()).single()
}

/// The `schedules` function.
#[derive(Debug)]
pub struct SchedulesOp;

impl Needs for SchedulesOp {
    const SCHEDULER: bool = true;
}

impl Operation for SchedulesOp {
    const NAME: &'static str = "schedules";
    const ROUTE: Route = Route::Schedules;
    const TRIGGERS: &'static [TriggerKind] = &[TriggerKind::Http];
    type Target = ScheduleAction;
    type Body = ScheduleBody;
    type Input = ScheduleInput;
    type Output = ScheduleOutcome;

    fn parse(
        action: ScheduleAction,
        body: Self::Body,
        _: TriggerKind,
    ) -> Result<Self::Input, FunctionError> {
        match action {
            ScheduleAction::Create => Ok(ScheduleInput::Create(Box::new(NewSchedule::parse(
                body,
                Utc::now(),
            )?))),
            ScheduleAction::List => Ok(ScheduleInput::List),
            ScheduleAction::Delete(name) => {
                check_name(&name)?;
                Ok(ScheduleInput::Delete(name))
            }
        }
    }

    async fn run(inv: &Invocation<'_>, input: Self::Input) -> Result<Self::Output, FunctionError> {
        let scheduler = inv.app.scheduler.as_ref().ok_or_else(|| {
            scheduler_error(
                "configuration",
                "no schedule group is configured".to_owned(),
            )
        })?;
        match input {
            ScheduleInput::Create(schedule) => create(scheduler, &schedule).await,
            ScheduleInput::List => list(scheduler).await.map(ScheduleOutcome::Listed),
            ScheduleInput::Delete(name) => delete(scheduler, name).await,
        }
    }

    fn status(output: &Self::Output) -> u16 {
        match output {
            ScheduleOutcome::Created(_) => 201,
            _ => 200,
        }
    }
}

async fn create(
    scheduler: &Scheduler,
    schedule: &NewSchedule,
) -> Result<ScheduleOutcome, FunctionError> {
    let built =
        |err: aws_sdk_scheduler::error::BuildError| scheduler_error("create", err.to_string());
    let input = serde_json::to_string(&schedule.input)
        .map_err(|err| scheduler_error("create", err.to_string()))?;
    let mut target = aws_sdk_scheduler::types::Target::builder()
        .arn(schedule.operation.arn(scheduler))
        .role_arn(&scheduler.role_arn)
        .input(input);
    if let Some(dlq) = &scheduler.dlq_arn {
        target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
    }
    let mut request = scheduler
        .client
        .create_schedule()
        .name(&schedule.name)
        .group_name(&scheduler.group)
        .schedule_expression(schedule.when.expression())
        .schedule_expression_timezone(schedule.when.zone().name())
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Off)
                .build()
                .map_err(built)?,
        )
        .target(target.build().map_err(built)?);
    if matches!(schedule.when, When::At(_)) {
        request = request.action_after_completion(ActionAfterCompletion::Delete);
    }
    match request.send().await {
        Ok(_) => {
            tracing::info!(schedule = %schedule.name, expression = %schedule.when.expression(), "schedule created");
            Ok(ScheduleOutcome::Created(schedule.view(Utc::now())))
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conflict_exception()) =>
        {
            Err(FunctionError::invalid(
                ErrorCode::InvalidRequest,
                format!("a schedule named {:?} already exists", schedule.name),
            ))
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_validation_exception()) =>
        {
            Err(FunctionError::invalid_request(format!(
                "EventBridge Scheduler refused the schedule: {}",
                DisplayErrorContext(err)
            )))
        }
        Err(err) => Err(scheduler_error(
            "create",
            DisplayErrorContext(err).to_string(),
        )),
    }
}

async fn list(scheduler: &Scheduler) -> Result<ScheduleList, FunctionError> {
    let mut names = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = scheduler
            .client
            .list_schedules()
            .group_name(&scheduler.group)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|err| scheduler_error("list", DisplayErrorContext(err).to_string()))?;
        names.extend(
            page.schedules()
                .iter()
                .filter_map(|summary| summary.name().map(str::to_owned)),
        );
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    names.sort();
    let now = Utc::now();
    let mut schedules = Vec::with_capacity(names.len());
    for name in names {
        let got = match scheduler
            .client
            .get_schedule()
            .name(&name)
            .group_name(&scheduler.group)
            .send()
            .await
        {
            Ok(got) => got,
            // Deleted between the list and the get (a one-time schedule that just ran).
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                continue
            }
            Err(err) => return Err(scheduler_error("get", DisplayErrorContext(err).to_string())),
        };
        let expression = got.schedule_expression().unwrap_or_default().to_owned();
        let zone_name = got.schedule_expression_timezone().unwrap_or("UTC");
        let zone = Zone::named(zone_name).unwrap_or_else(Zone::utc);
        let created = got
            .creation_date()
            .and_then(smithy_to_chrono)
            .unwrap_or(now);
        let next =
            When::from_expression(&expression, zone).and_then(|when| when.next_after(now, created));
        let target = got.target();
        let operation = target.map(|t| t.arn()).and_then(|arn| {
            [TargetOp::SendMessage, TargetOp::Broadcast]
                .into_iter()
                .find(|op| op.arn(scheduler) == arn)
        });
        let conversation_id = target
            .and_then(|t| t.input())
            .and_then(|input| serde_json::from_str::<Value>(input).ok())
            .and_then(|input| input["conversation_id"].as_str().map(str::to_owned));
        schedules.push(ScheduleView {
            name,
            operation,
            conversation_id,
            schedule_expression: expression,
            timezone: zone_name.to_owned(),
            next_fire_time: next.map(rfc3339),
        });
    }
    Ok(ScheduleList { schedules })
}

async fn delete(scheduler: &Scheduler, name: String) -> Result<ScheduleOutcome, FunctionError> {
    match scheduler
        .client
        .delete_schedule()
        .name(&name)
        .group_name(&scheduler.group)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(schedule = %name, "schedule deleted");
            Ok(ScheduleOutcome::Deleted(ScheduleDeleted {
                name,
                deleted: true,
            }))
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Err(FunctionError::ScheduleNotFound { name })
        }
        Err(err) => Err(scheduler_error(
            "delete",
            DisplayErrorContext(err).to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("date")
            .with_timezone(&Utc)
    }

    fn body(value: Value) -> ScheduleBody {
        serde_json::from_value(value).expect("body")
    }

    #[test]
    fn a_one_time_send_becomes_an_at_expression_in_utc_whatever_its_offset() {
        let now = at("2026-12-01T09:00:00Z");
        let schedule = NewSchedule::parse(
            body(
                json!({"operation": "broadcast", "conversation_id": "sys", "name": "launch",
                "payload": {"from_client": "ops", "message": "hi"},
                "send_at": "2026-12-24T18:00:00+01:00"}),
            ),
            now,
        )
        .expect("valid");
        assert_eq!("at(2026-12-24T17:00:00)", schedule.when.expression());
        assert_eq!(
            Some(at("2026-12-24T17:00:00Z")),
            schedule.when.next_after(now, now)
        );
        assert_eq!(
            json!({"from_client": "ops", "message": "hi", "conversation_id": "sys",
                "idempotency_key": "launch@<aws.scheduler.scheduled-time>"}),
            Value::Object(schedule.input)
        );
        let millis = NewSchedule::parse(
            body(json!({"operation": "send-message", "conversation_id": "c", "name": "n",
                "payload": {"from_client": "ops", "message": "hi"}, "send_at": 1_798_000_000_000_i64})),
            now,
        )
        .expect("epoch ms");
        assert_eq!(
            When::At(Utc.timestamp_millis_opt(1_798_000_000_000).unwrap()),
            millis.when
        );
    }

    #[test]
    fn a_daily_cron_keeps_its_local_time_across_daylight_saving_time() {
        let when = parse_cron(
            "30 9 * * ? *",
            Zone::named("America/New_York").expect("zone"),
        )
        .expect("cron");
        let created = at("2027-03-01T00:00:00Z");
        // 14 March 2027: New York moves from UTC-5 to UTC-4.
        assert_eq!(
            Some(at("2027-03-13T14:30:00Z")),
            when.next_after(at("2027-03-13T12:00:00Z"), created)
        );
        assert_eq!(
            Some(at("2027-03-14T13:30:00Z")),
            when.next_after(at("2027-03-13T15:00:00Z"), created)
        );
        assert_eq!("cron(30 9 * * ? *)", when.expression());
        assert_eq!(
            Some(when.clone()),
            When::from_expression(&when.expression(), when.zone())
        );
    }

    #[test]
    fn a_rate_counts_from_its_creation() {
        let when = parse_rate("15 minutes", Zone::utc()).expect("rate");
        assert_eq!("rate(15 minutes)", when.expression());
        let created = at("2026-12-01T09:00:00Z");
        assert_eq!(
            Some(at("2026-12-01T09:15:00Z")),
            when.next_after(created, created)
        );
        assert_eq!(
            Some(at("2026-12-01T10:00:00Z")),
            when.next_after(at("2026-12-01T09:50:00Z"), created)
        );
        assert_eq!(
            "rate(1 hour)",
            parse_rate("1 hours", Zone::utc())
                .expect("rate")
                .expression()
        );
    }

    #[test]
    fn bad_schedules_are_refused_before_anything_is_created() {
        let now = at("2026-12-01T09:00:00Z");
        let payload = json!({"from_client": "ops", "message": "hi"});
        let cases = [
            (
                json!({"send_at": "2026-11-30T09:00:00Z"}),
                "not in the future",
            ),
            (json!({"send_at": "2028-01-01T00:00:00Z"}), "one year"),
            (json!({"send_at": "2026-12-24T18:00:00"}), "RFC 3339"),
            (
                json!({"cron": "0 9 * * ? *", "timezone": "Mars/Olympus"}),
                "IANA",
            ),
            (
                json!({"send_at": "2026-12-24T18:00:00Z", "cron": "0 9 * * ? *"}),
                "only one",
            ),
            (json!({}), "one of"),
            (json!({"cron": "0 9 * * *"}), "six fields"),
            (json!({"cron": "0 9 1 * MON *"}), "must be `?`"),
            (json!({"rate": "0 minutes"}), "positive"),
            (json!({"rate": "5 fortnights"}), "minutes, hours or days"),
            (json!({"rate": "5 minutes", "name": "a/b"}), "`name`"),
        ];
        for (extra, expected) in cases {
            let mut value =
                json!({"operation": "send-message", "conversation_id": "c", "payload": payload});
            for (key, field) in extra.as_object().expect("object") {
                value[key] = field.clone();
            }
            let err = NewSchedule::parse(body(value.clone()), now).expect_err("refused");
            assert_eq!(400, err.to_http().status, "{err}");
            assert!(
                err.to_string().contains(expected),
                "{err} should contain {expected:?} for {value}"
            );
        }
        let refused = [
            (json!({"from_client": "ops"}), "missing field `message`"),
            (json!({"from_client": "", "message": "hi"}), "from_client"),
            (
                json!({"from_client": "ops", "message": "hi", "idempotency_key": "k"}),
                "the schedule sets it",
            ),
            (
                json!({"from_client": "ops", "message": "x".repeat(6 * 1024)}),
                "message",
            ),
        ];
        for (payload, expected) in refused {
            for operation in ["send-message", "broadcast"] {
                let value = json!({"operation": operation, "conversation_id": "c", "payload": payload,
                    "rate": "1 day"});
                let err = NewSchedule::parse(body(value.clone()), now).expect_err("refused");
                assert_eq!(400, err.to_http().status, "{err}");
                assert!(
                    err.to_string().contains(expected),
                    "{err} should contain {expected:?} for {value}"
                );
            }
        }
    }
}
