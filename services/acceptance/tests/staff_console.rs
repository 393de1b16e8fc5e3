//! The staff console over a bank of separate processes: the reporting
//! service follows the log, staff read it through the web server, and no
//! password hash reaches the reporting service, a page or an export.

use acceptance::{Bank, PASSWORD, Process, STAFF, eventually};
use reqwest::{
    StatusCode,
    header::{ACCEPT, COOKIE, LOCATION, ORIGIN, SET_COOKIE},
};

/// Staff in a browser without JavaScript: forms posted, the cookie kept.
struct StaffBrowser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl StaffBrowser {
    async fn log_in(web: &Process, username: &str, password: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let base = web.http_base();
        let response = http
            .post(format!("{base}/api/log_in"))
            .header(ORIGIN, &base)
            .header(ACCEPT, "text/html")
            .form(&[("username", username), ("password", password), ("next", "")])
            .send()
            .await
            .expect("the web server answers");
        assert_eq!(response.status(), StatusCode::FOUND);
        assert!(
            !response.headers()[LOCATION]
                .to_str()
                .unwrap_or_default()
                .contains("__err"),
            "the log-in failed"
        );
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("ledgerline_session="))
            .and_then(|value| value.split(';').next())
            .expect("a session cookie")
            .to_owned();
        Self { http, base, cookie }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        self.get_with(path, &[]).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header(ACCEPT, "text/html")
            .header(COOKIE, &self.cookie);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the web server answers");
        (response.status(), response.text().await.expect("a body"))
    }

    /// Posts a server function's form from this site's page.
    async fn post(&self, function: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}/api/{function}", self.base))
            .header(ORIGIN, &self.base)
            .header(COOKIE, &self.cookie)
            .form(form)
            .send()
            .await
            .expect("the web server answers");
        (response.status(), response.text().await.expect("a body"))
    }
}

/// Everything in the reporting service's schema, as text.
async fn reporting_tables(url: &str) -> String {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("the bank's database");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'reporting'",
    )
    .fetch_all(&pool)
    .await
    .expect("the reporting tables");
    assert!(!tables.is_empty(), "the reporting service made its tables");
    let mut dump = String::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, E'\\n') FROM reporting.\"{table}\" t"
        ))
        .fetch_one(&pool)
        .await
        .expect("a table's rows");
        dump.push_str(&rows.unwrap_or_default());
    }
    pool.close().await;
    dump
}

/// The staff audit: who did what, with what outcome.
async fn audit_rows(url: &str) -> Vec<(String, String, String)> {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("the bank's database");
    let rows = sqlx::query_as("SELECT staff, action, outcome FROM web.staff_audit ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("the audit");
    pool.close().await;
    rows
}

fn assert_no_secret(text: &str, what: &str) {
    assert!(!text.contains("$argon2"), "{what} holds a password hash");
    assert!(!text.contains(PASSWORD), "{what} holds a password");
    assert!(!text.contains(STAFF.1), "{what} holds the staff password");
}

#[tokio::test]
async fn staff_read_the_log_through_the_web_server_and_no_secret_reaches_them() {
    let mut bank = Bank::start().await;
    // Every part logs all it would for debugging: no secret may be in it.
    let verbose = [("RUST_LOG", "debug")];
    bank.bus.restart_with(&verbose);
    bank.users.restart_with(&verbose);
    bank.accounts[0].restart_with(&verbose);
    bank.transactions.restart_with(&verbose);
    bank.reporting.restart_with(&verbose);
    bank.restarted();
    let alice = bank.sign_up("console_alice").await;
    let bob = bank.sign_up("console_bob").await;
    bank.deposit("console_alice", alice, "80.00").await;
    let transfer = bank.transfer("console_alice", alice, bob, "30.00").await;

    let mut web = Process::web(&bank.db.url, &bank, None);
    web.restart_with(&verbose);
    let staff = StaffBrowser::log_in(&web, STAFF.0, STAFF.1).await;

    // The reporting service follows the log: the transfer's credit shows.
    let key = format!("acc-{bob}");
    let history = eventually("Bob's credit reaches the reporting tables", || async {
        let (status, page) = staff.get(&format!("/staff/keys/{key}")).await;
        (status == StatusCode::OK && page.contains("ConfirmedCredit")).then_some(page)
    })
    .await;
    assert!(
        history.contains("balance-after\" class=\"num\">£30.00<"),
        "the running balance shows: {history}"
    );

    let (status, trace_page) = staff
        .get(&format!("/staff/events?key=trans-{transfer}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(trace_page.contains("AcceptedTransaction"));

    // Exports: the filtered set, streamed, and each recorded.
    let (status, csv) = staff.get(&format!("/staff/events.csv?key={key}")).await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows.len(),
        3,
        "a header, AccountCreated, ConfirmedCredit: {csv}"
    );
    assert!(rows[1].contains("ConfirmedCredit"), "newest first: {csv}");
    let (status, json) = staff.get("/staff/events.json").await;
    assert_eq!(status, StatusCode::OK);
    let all: Vec<serde_json::Value> = serde_json::from_str(&json).expect("a JSON array");
    assert!(all.len() >= 9, "every event but UserCreated: {}", all.len());
    assert!(all.iter().all(|event| event["event_type"] != "UserCreated"));
    let (_, system) = staff.get("/staff/system").await;
    assert!(system.contains("events.csv"), "the export is in the audit");
    let audit = audit_rows(&bank.db.url).await;
    assert!(
        audit.contains(&(STAFF.0.to_owned(), "export".to_owned(), "2 rows".to_owned())),
        "the CSV export is recorded with who and how many rows: {audit:?}"
    );

    // A download another site starts is refused, even with the cookie.
    let (status, _) = staff
        .get_with("/staff/events.csv", &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // No password hash anywhere staff can look, nor in the service's tables.
    for (text, what) in [
        (&history, "a key history page"),
        (&trace_page, "the event browser"),
        (&csv, "the CSV export"),
        (&json, "the JSON export"),
        (&system, "the system page"),
    ] {
        assert_no_secret(text, what);
    }
    assert_no_secret(
        &reporting_tables(&bank.db.url).await,
        "the reporting tables",
    );

    // Nor could it: its bus scope cannot read UserCreated (trust::scopes'
    // tests hold every scope but the users service's to that).

    // Nor is one in any log, at the most detailed level.
    for (process, name) in [
        (&bank.bus, "the bus's log"),
        (&bank.users, "the users service's log"),
        (&bank.accounts[0], "the accounts service's log"),
        (&bank.transactions, "the transactions service's log"),
        (&bank.reporting, "the reporting service's log"),
        (&web, "the web server's log"),
    ] {
        let log = process.log();
        assert!(!log.is_empty(), "{name} is empty: is the filter applied?");
        assert_no_secret(&log, name);
    }

    // A customer is told the console does not exist, and may not decide.
    let customer = StaffBrowser::log_in(&web, "console_alice", PASSWORD).await;
    let (status, _) = customer.get("/staff/events").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = customer.get("/staff/events.csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let decision = [
        ("client_type", "reporting"),
        ("position", "1"),
        ("decision", "skip"),
        ("note", "a customer tries"),
    ];
    let (status, body) = customer.post("staff_decide", &decision).await;
    assert!(!status.is_success(), "{status}: {body}");
    assert!(body.contains("NotFound"), "{body}");
    // Staff deciding on an event that is not parked changes nothing, and
    // that is recorded too.
    let (status, body) = staff.post("staff_decide", &decision).await;
    assert!(!status.is_success(), "{status}: {body}");
    assert!(body.contains("not parked any more"), "{body}");
    assert!(
        audit_rows(&bank.db.url).await.contains(&(
            STAFF.0.to_owned(),
            "skip".to_owned(),
            "not parked any more".to_owned()
        )),
        "the refused skip is recorded"
    );
    let before = audit_rows(&bank.db.url).await.len();
    let (status, _) = customer.post("staff_decide", &decision).await;
    assert!(!status.is_success());
    assert_eq!(
        audit_rows(&bank.db.url).await.len(),
        before,
        "a customer's try records nothing"
    );

    // No one logged in is sent to log in, for pages and downloads alike.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    for path in [
        "/staff/events",
        "/staff/events.csv",
        "/staff/reports/totals.csv",
    ] {
        let response = anonymous
            .get(format!("{}{path}", web.http_base()))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .expect("the web server answers");
        let to = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            response.status().is_redirection(),
            "{path}: {}",
            response.status()
        );
        assert!(to.starts_with("/login?next="), "{path}: {to}");
    }
}
