//! Cold start: spawn a function process against a fresh runtime-API emulator holding one invocation, and time
//! from spawn to the invocation's response.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::emulator::{Emulator, Outcome};

/// How to start one function process.
#[derive(Debug, Clone)]
pub struct FunctionProcess {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// The Rust runtime needs `http://host:port`; awslambdaric wants `host:port`.
    pub runtime_api_with_scheme: bool,
    /// Where the process's stdout/stderr go (appended), if anywhere.
    pub log: Option<PathBuf>,
}

/// One cold run.
#[derive(Debug, Clone)]
pub struct ColdRun {
    /// spawn → response received
    pub total: Duration,
    /// spawn → event handed out (init phase incl. the first `next` call)
    pub init: Option<Duration>,
    /// handed out → response received
    pub invoke: Option<Duration>,
    /// peak RSS of the process after answering
    pub vmhwm_kb: Option<u64>,
    /// the function's response payload
    pub response: Vec<u8>,
}

/// Spawn the process, hand it `event` and wait for its answer (at most `timeout`). The process is killed
/// afterwards either way. An error answer, an init error or a non-2xx HTTP response is an error.
pub async fn cold_run(
    f: &FunctionProcess,
    event: &[u8],
    timeout: Duration,
) -> Result<ColdRun, String> {
    let request_id = format!(
        "bench-{:x}",
        Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id())
    );
    let mut emu = Emulator::start(&request_id, event.to_vec())
        .await
        .map_err(|e| format!("emulator: {e}"))?;
    let api = if f.runtime_api_with_scheme {
        format!("http://{}", emu.host_port())
    } else {
        emu.host_port()
    };
    let mut cmd = tokio::process::Command::new(&f.program);
    cmd.args(&f.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(f.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(cwd) = &f.cwd {
        cmd.current_dir(cwd);
    }
    match &f.log {
        Some(path) => {
            let out = open_log(path)?;
            let err = out.try_clone().map_err(|e| e.to_string())?;
            cmd.stdout(out).stderr(err);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let spawned_at = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", f.program.display()))?;
    let answer = emu.wait(timeout).await;
    let vmhwm_kb = child.id().and_then(crate::sys::vmhwm_kb);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let answer = answer?;
    let response = match answer.outcome {
        Outcome::Response(body) => body.to_vec(),
        Outcome::Error(body) => {
            return Err(format!(
                "invocation error: {}",
                String::from_utf8_lossy(&body)
            ))
        }
        Outcome::InitError(body) => {
            return Err(format!("init error: {}", String::from_utf8_lossy(&body)))
        }
    };
    check_http_status(&response)?;
    Ok(ColdRun {
        total: answer.at.duration_since(spawned_at),
        init: answer.handed_out.map(|h| h.duration_since(spawned_at)),
        invoke: answer.handed_out.map(|h| answer.at.duration_since(h)),
        vmhwm_kb,
        response,
    })
}

fn open_log(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("log {}: {e}", path.display()))
}

/// An API Gateway response must carry a 2xx `statusCode`; any other payload is taken as it is.
pub fn check_http_status(response: &[u8]) -> Result<(), String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(response) else {
        return Ok(());
    };
    match v.get("statusCode").and_then(serde_json::Value::as_u64) {
        Some(code) if !(200..300).contains(&code) => Err(format!(
            "HTTP {code}: {}",
            String::from_utf8_lossy(response)
                .chars()
                .take(300)
                .collect::<String>()
        )),
        _ => Ok(()),
    }
}

/// An API Gateway HTTP API (payload 2.0) event for `POST {path}` with a JSON body.
pub fn http_event(
    path: &str,
    route_key: &str,
    path_parameters: serde_json::Value,
    body: &serde_json::Value,
) -> Vec<u8> {
    let now = chrono::Utc::now();
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "bench.execute-api.us-east-1.amazonaws.com",
            "user-agent": "bench"
        },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench"
            },
            "requestId": "bench-request",
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "pathParameters": path_parameters,
        "body": body.to_string(),
        "isBase64Encoded": false
    });
    event.to_string().into_bytes()
}

/// An SQS event with one record per `(message id, body)`.
pub fn sqs_event(records: &[(String, String)]) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("bench-{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "bench",
                    "ApproximateFirstReceiveTimestamp": now
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench-bulk",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
        .to_string()
        .into_bytes()
}

/// The record ids an SQS batch response reports failed.
pub fn batch_failures(response: &[u8]) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(response).map_err(|e| format!("batch response is not JSON: {e}"))?;
    let failures = v
        .get("batchItemFailures")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| format!("not a batch response: {v}"))?;
    Ok(failures
        .iter()
        .map(|f| {
            f.get("itemIdentifier")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_owned()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_check() {
        assert!(check_http_status(br#"{"statusCode":200,"body":"{}"}"#).is_ok());
        assert!(check_http_status(br#"{"batchItemFailures":[]}"#).is_ok());
        let err = check_http_status(br#"{"statusCode":404,"body":"nope"}"#).expect_err("404");
        assert!(err.starts_with("HTTP 404"), "{err}");
    }

    #[test]
    fn sqs_event_and_batch_failures() {
        let e = sqs_event(&[("m-1".into(), r#"{"a":1}"#.into())]);
        let v: serde_json::Value = serde_json::from_slice(&e).expect("json");
        assert_eq!(v["Records"][0]["messageId"], "m-1");
        assert_eq!(v["Records"][0]["eventSource"], "aws:sqs");
        assert_eq!(batch_failures(br#"{"batchItemFailures":[]}"#), Ok(vec![]));
        assert_eq!(
            batch_failures(br#"{"batchItemFailures":[{"itemIdentifier":"m-1"}]}"#),
            Ok(vec!["m-1".to_string()])
        );
        assert!(batch_failures(b"{}").is_err());
    }

    #[test]
    fn http_event_shape() {
        let e = http_event(
            "/conversations/c1/messages",
            "POST /conversations/{conversation_id}/messages",
            serde_json::json!({"conversation_id": "c1"}),
            &serde_json::json!({"from_client": "a", "message": "hi"}),
        );
        let v: serde_json::Value = serde_json::from_slice(&e).expect("json");
        assert_eq!(v["requestContext"]["http"]["method"], "POST");
        assert_eq!(v["rawPath"], "/conversations/c1/messages");
        let body: serde_json::Value =
            serde_json::from_str(v["body"].as_str().expect("body")).expect("body json");
        assert_eq!(body["message"], "hi");
    }

    #[tokio::test]
    async fn times_a_python_runtime_loop() {
        // A stand-in function: the fallback runtime loop with a trivial handler, if python3 is here.
        let dir = std::env::temp_dir().join(format!("bench-cold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("echo.py"),
            "def handler(event, context):\n    return {'statusCode': 200, 'body': event['x']}\n",
        )
        .expect("write handler");
        let loop_py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/runtime_loop.py");
        let f = FunctionProcess {
            program: "python3".into(),
            args: vec![loop_py.display().to_string(), "echo.handler".into()],
            cwd: Some(dir.clone()),
            env: vec![],
            runtime_api_with_scheme: false,
            log: None,
        };
        match cold_run(&f, br#"{"x":"pong"}"#, Duration::from_secs(20)).await {
            Ok(run) => {
                assert!(String::from_utf8_lossy(&run.response).contains("pong"));
                assert!(run.init.is_some_and(|i| i <= run.total));
                assert!(run.vmhwm_kb.is_some());
            }
            Err(e) if e.starts_with("spawn") => eprintln!("python3 not available: {e}"),
            Err(e) => panic!("{e}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
