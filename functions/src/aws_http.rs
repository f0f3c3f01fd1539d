//! The AWS SDK clients (DynamoDB, SQS, Scheduler) send through reqwest, the HTTP/TLS stack the LeanCloud
//! client links anyway, instead of the SDK's own hyper + rustls client (`default-https-client`). That client
//! was a second monomorphised copy of hyper's connection pool, hyper-rustls and a rustls configuration with
//! the system roots in every function that talks to DynamoDB or SQS; one stack is enough.
//!
//! The SDK keeps everything else (signing, retries, timeouts per attempt, endpoint resolution); this adapter
//! only moves bytes: the request's method, URI, headers and in-memory body out, the status, headers and body
//! back. The SDK's connect and read timeouts are applied as reqwest's connect and whole-call timeouts.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use crate::aws_env::CONNECT_TIMEOUT;

/// The whole-call limit when the SDK names no read timeout (`config::aws_config` sets the connect and attempt
/// timeouts, not a read timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The SDK's HTTP client over reqwest. Builds one reqwest client per distinct timeout setting (the SDK
/// asks once per service client and caches the connector).
#[derive(Debug, Clone, Default)]
pub struct ReqwestHttpClient {
    roots: leancloud_im::TlsRoots,
}

impl ReqwestHttpClient {
    /// The SDK's client, trusting `roots` (`LEANCLOUD_TLS_ROOTS`, as the LeanCloud client does).
    pub fn shared(roots: leancloud_im::TlsRoots) -> SharedHttpClient {
        SharedHttpClient::new(ReqwestHttpClient { roots })
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let connect = settings.connect_timeout().unwrap_or(CONNECT_TIMEOUT);
        let call = settings
            .read_timeout()
            .map_or(CALL_TIMEOUT, |read| connect + read);
        let client = self
            .roots
            .apply(reqwest::Client::builder())
            .connect_timeout(connect)
            .timeout(call)
            .tcp_keepalive(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build();
        SharedHttpConnector::new(ReqwestConnector { client })
    }
}

#[derive(Debug)]
struct ReqwestConnector {
    /// The build error is reported on the first call (the SDK's trait cannot fail here).
    client: Result<reqwest::Client, reqwest::Error>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(err) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    format!("HTTP client: {err}").into(),
                    None,
                )))
            }
        };
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(&client, request)?;
            let response = client.execute(request).await.map_err(connector_error)?;
            from_reqwest(response).await
        })
    }
}

fn to_reqwest(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<reqwest::Request, ConnectorError> {
    let method = reqwest::Method::from_bytes(request.method().as_bytes())
        .map_err(|err| ConnectorError::user(err.into()))?;
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| {
            ConnectorError::user("streaming request bodies are not supported by this client".into())
        })?
        .to_vec();
    let mut builder = client.request(method, request.uri());
    for (name, value) in request.headers().iter() {
        builder = builder.header(name, value);
    }
    builder
        .body(body)
        .build()
        .map_err(|err| ConnectorError::user(err.into()))
}

async fn from_reqwest(response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let status = StatusCode::try_from(response.status().as_u16())
        .map_err(|err| ConnectorError::other(err.into(), None))?;
    // Header values the SDK cannot represent (not UTF-8) are dropped; AWS services send ASCII.
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let value = std::str::from_utf8(value.as_bytes()).ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let body = response.bytes().await.map_err(connector_error)?;
    let mut out = HttpResponse::new(status, SdkBody::from(body));
    for (name, value) in headers {
        out.headers_mut().append(name, value);
    }
    Ok(out)
}

/// reqwest's error as the SDK's connector error, so its retry strategy sees timeouts and I/O errors as such.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_connect() || err.is_request() || err.is_body() {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}
