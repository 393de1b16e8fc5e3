//! The banking services, as the web server calls them: HTTP on loopback
//! (or wherever they run), with the web server's caller token and, for a
//! person, their signed user token. The services check everything again;
//! this is only the way there.

use std::net::IpAddr;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// How long a change waits for an earlier try with its key to finish.
const IN_PROGRESS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where each service listens, e.g. `http://127.0.0.1:8083`.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    pub users: String,
    pub accounts: String,
    pub transactions: String,
    pub reporting: String,
    /// The Nectar loyalty service, when the bank runs it.
    pub nectar: Option<String>,
}

/// What went wrong calling a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service answered with an error of its API.
    #[error("{service} answered {status}: {code}: {message}")]
    Api {
        service: &'static str,
        status: StatusCode,
        code: String,
        message: String,
        /// Seconds to wait, when the service said (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// The bank does not run this service.
    #[error("this bank does not run the {service} service")]
    NotRun { service: &'static str },
    /// The service could not be reached or its answer could not be read.
    #[error("{service} could not be reached: {source}")]
    Unreachable {
        service: &'static str,
        source: reqwest::Error,
    },
}

impl ServiceError {
    /// The API error code, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::NotRun { .. } | Self::Unreachable { .. } => None,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Who a call is made for: the person's user token, the browser's address
/// (for the log-in throttle) and, for a change, its idempotency key.
#[derive(Debug, Clone, Default)]
pub struct CallFor<'a> {
    pub user_token: Option<&'a str>,
    pub client_address: Option<IpAddr>,
    pub idempotency_key: Option<&'a str>,
}

/// The services behind one HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    http: reqwest::Client,
    urls: ServiceUrls,
    caller_token: String,
}

impl Services {
    pub fn new(urls: ServiceUrls, caller_token: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            http,
            urls,
            caller_token,
        }
    }

    pub fn urls(&self) -> &ServiceUrls {
        &self.urls
    }

    /// The web server's caller token, for the demo seeding's own client.
    pub fn caller_token(&self) -> &str {
        &self.caller_token
    }

    pub async fn users<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        call: &CallFor<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ServiceError> {
        self.call("users", &self.urls.users, method, path, call, body)
            .await
    }

    pub async fn accounts<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        call: &CallFor<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ServiceError> {
        self.call("accounts", &self.urls.accounts, method, path, call, body)
            .await
    }

    pub async fn transactions<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        call: &CallFor<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ServiceError> {
        self.call(
            "transactions",
            &self.urls.transactions,
            method,
            path,
            call,
            body,
        )
        .await
    }

    /// The reporting service: staff only, read only.
    pub async fn reporting<T: DeserializeOwned>(
        &self,
        path: &str,
        call: &CallFor<'_>,
    ) -> Result<T, ServiceError> {
        self.call(
            "reporting",
            &self.urls.reporting,
            Method::GET,
            path,
            call,
            None::<&()>,
        )
        .await
    }

    /// The Nectar loyalty service: points, and redeeming them.
    pub async fn nectar<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        call: &CallFor<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ServiceError> {
        let service = "nectar";
        let base = self
            .urls
            .nectar
            .as_deref()
            .ok_or(ServiceError::NotRun { service })?;
        self.call(service, base, method, path, call, body).await
    }

    /// Whether the bank offers loyalty points (runs Nectar).
    pub fn offers_points(&self) -> bool {
        self.urls.nectar.is_some()
    }

    /// Calls, and while a change with the same idempotency key is still
    /// being made (a double click, a resent form), waits for its answer:
    /// both then show the one outcome.
    async fn call<T: DeserializeOwned>(
        &self,
        service: &'static str,
        base: &str,
        method: Method,
        path: &str,
        call: &CallFor<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ServiceError> {
        let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
        loop {
            let answer = self
                .call_once(service, base, method.clone(), path, call, body)
                .await;
            match answer {
                Err(error)
                    if error.code() == Some("request_in_progress")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once<T: DeserializeOwned>(
        &self,
        service: &'static str,
        base: &str,
        method: Method,
        path: &str,
        call: &CallFor<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ServiceError> {
        let unreachable = |source| ServiceError::Unreachable { service, source };
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.caller_token);
        request = with_call(request, call);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(unreachable)?;
        if response.status().is_success() {
            return response.json().await.map_err(unreachable);
        }
        Err(api_error(service, response).await)
    }
}

/// The error a service answered with.
async fn api_error(service: &'static str, response: reqwest::Response) -> ServiceError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok());
    let (code, message) = match response.json::<ErrorBody>().await {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => ("unexpected".to_owned(), format!("HTTP {status}")),
    };
    ServiceError::Api {
        service,
        status,
        code,
        message,
        retry_after,
    }
}

fn with_call(mut request: RequestBuilder, call: &CallFor<'_>) -> RequestBuilder {
    if let Some(token) = call.user_token {
        request = request.header("X-User-Token", token);
    }
    if let Some(address) = call.client_address {
        request = request.header("X-Client-Address", address.to_string());
    }
    if let Some(key) = call.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    request
}
