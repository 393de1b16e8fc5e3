//! HTTP calls to one service, as the web server makes them: its caller
//! token, the user's token from a real log-in, and an idempotency key on
//! every request that changes state.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

use crate::PASSWORD;

/// Users' tokens, each from a real log-in, kept while the test runs.
pub struct Sessions {
    users_base: Mutex<String>,
    http: reqwest::Client,
    caller_token: String,
    /// One log-in at a time, so that requests sent together share one.
    tokens: tokio::sync::Mutex<HashMap<String, String>>,
    staff: (String, String),
}

impl Sessions {
    pub fn new(users_base: String, caller_token: String, staff: (&str, &str)) -> Self {
        Self {
            users_base: Mutex::new(users_base),
            http: reqwest::Client::new(),
            caller_token,
            tokens: tokio::sync::Mutex::default(),
            staff: (staff.0.to_owned(), staff.1.to_owned()),
        }
    }

    /// The users service moved (a restart).
    pub fn users_moved(&self, users_base: String) {
        *self.users_base.lock().expect("not poisoned") = users_base;
    }

    /// A token for `username` (who signed up with [`PASSWORD`], or the staff login).
    pub async fn token(&self, username: &str) -> String {
        let mut tokens = self.tokens.lock().await;
        if let Some(token) = tokens.get(username) {
            return token.clone();
        }
        let password = if username == self.staff.0 {
            self.staff.1.clone()
        } else {
            PASSWORD.to_owned()
        };
        let base = self.users_base.lock().expect("not poisoned").clone();
        let response = self
            .http
            .post(format!("{base}/sessions"))
            .bearer_auth(&self.caller_token)
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("the users service answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "log in as {username}: {body}");
        let token = body["token"].as_str().expect("a token").to_owned();
        tokens.insert(username.to_owned(), token.clone());
        token
    }
}

#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    caller_token: String,
    sessions: Arc<Sessions>,
}

impl Api {
    pub fn new(base: String, caller_token: String, sessions: Arc<Sessions>) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
            caller_token,
            sessions,
        }
    }

    pub async fn get(&self, user: Option<&str>, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)), user)
            .await
    }

    /// A POST with a new idempotency key.
    pub async fn post(&self, user: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        self.post_with_key(user, path, body, &uuid::Uuid::now_v7().to_string())
            .await
    }

    /// A POST with the idempotency key `key` (the same key again is a retry).
    pub async fn post_with_key(
        &self,
        user: Option<&str>,
        path: &str,
        body: Value,
        key: &str,
    ) -> (u16, Value) {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", key)
            .json(&body);
        self.send(request, user).await
    }

    /// Sends with the caller token and, for `user`, their user token.
    pub async fn send(&self, request: reqwest::RequestBuilder, user: Option<&str>) -> (u16, Value) {
        let request = request.bearer_auth(&self.caller_token);
        let request = match user {
            Some(user) => request.header("x-user-token", self.sessions.token(user).await),
            None => request,
        };
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// The HTTP client and base address, for requests of a test's own.
    pub fn raw(&self) -> (&reqwest::Client, &str) {
        (&self.http, &self.base)
    }

    pub fn caller_token(&self) -> &str {
        &self.caller_token
    }

    pub async fn token(&self, user: &str) -> String {
        self.sessions.token(user).await
    }
}
