//! The bus's staff endpoints (subscriptions, parked events, replays and
//! skips), called with the staff bus token. Only staff pages reach them,
//! and each decision is recorded with the staff member's name (`audit`).

use reqwest::StatusCode;
use serde::{Serialize, de::DeserializeOwned};

/// The bus's HTTP side, with the staff credential.
#[derive(Clone)]
pub struct BusStaff {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// What went wrong asking the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusStaffError {
    #[error("the bus could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("no such parked event")]
    NotFound,
    #[error("the bus refused: {0}")]
    Refused(String),
    #[error("the bus answered {0}")]
    Failed(StatusCode),
}

impl BusStaff {
    /// `bus_url` is the bus's WebSocket address (`ws://host:port/bus`); its
    /// staff endpoints are on the same host and port, over plain HTTP(S).
    pub fn new(bus_url: &str, token: String) -> Self {
        let base = bus_url
            .trim_end_matches("/bus")
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("a plain HTTP client builds");
        Self { http, base, token }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, BusStaffError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Self::read(response).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, BusStaffError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        Self::read(response).await
    }

    async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, BusStaffError> {
        match response.status() {
            status if status.is_success() => Ok(response.json().await?),
            StatusCode::NOT_FOUND => Err(BusStaffError::NotFound),
            StatusCode::BAD_REQUEST => {
                #[derive(serde::Deserialize)]
                struct Refusal {
                    error: String,
                }
                let refusal: Refusal = response.json().await?;
                Err(BusStaffError::Refused(refusal.error))
            }
            status => Err(BusStaffError::Failed(status)),
        }
    }
}
