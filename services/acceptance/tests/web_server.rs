//! The web server serving a bank that runs as separate processes: the real
//! `ledgerline` binary, pointed at the real bus and services (Nectar's
//! script among them) with its own caller and bus tokens, used as a
//! browser without JavaScript uses it.

use acceptance::{Bank, PASSWORD, Process, Service, balances_from_log, eventually};
use events::{DomainEvent, NectarDebit};
use reqwest::{
    StatusCode,
    header::{ACCEPT, COOKIE, LOCATION, ORIGIN, REFERER, SET_COOKIE},
};
use rust_decimal::Decimal;

/// A browser without JavaScript: forms posted, redirects not followed, the
/// session cookie kept.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(web: &Process) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            base: web.http_base(),
            cookie: None,
        }
    }

    /// Posts a form to a server function that succeeds; answers the
    /// redirect's target.
    async fn post(&mut self, function: &str, form: &[(&str, &str)]) -> String {
        let target = self.post_answer("/", function, form).await;
        assert!(!target.contains("__err"), "{function} failed: {target}");
        target
    }

    /// Posts a form on the page `from` to a server function; answers the
    /// redirect's target: that page, with the error when the function failed.
    async fn post_answer(&mut self, from: &str, function: &str, form: &[(&str, &str)]) -> String {
        let mut request = self
            .http
            .post(format!("{}/api/{function}", self.base))
            .header(ORIGIN, &self.base)
            .header(REFERER, format!("{}{from}", self.base))
            .header(ACCEPT, "text/html")
            .form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("the web server answers");
        assert_eq!(response.status(), StatusCode::FOUND, "{function}");
        if let Some(cookie) = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("ledgerline_session="))
        {
            self.cookie = cookie.split(';').next().map(str::to_owned);
        }
        response.headers()[LOCATION]
            .to_str()
            .expect("a location")
            .to_owned()
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header(ACCEPT, "text/html");
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("the web server answers");
        (response.status(), response.text().await.expect("a page"))
    }
}

/// The first account number linked from the overview, once it is open.
fn first_account(page: &str) -> Option<i64> {
    let start = page.find("href=\"/accounts/")? + "href=\"/accounts/".len();
    let digits: String = page[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[tokio::test]
async fn the_web_server_serves_a_bank_that_runs_as_separate_processes() {
    let bank = Bank::start().await;
    let mut nectar = bank.another(Service::Nectar);
    let web = Process::web(&bank.db.url, &bank, Some(&nectar));
    let mut browser = Browser::new(&web);

    let username = "separate_web";
    let form_key = uuid::Uuid::now_v7().to_string();
    let landed = browser
        .post(
            "sign_up",
            &[
                ("username", username),
                ("display_name", "Separate Web"),
                ("password", PASSWORD),
                ("form_key", &form_key),
            ],
        )
        .await;
    assert_eq!(landed, "/accounts");

    let account = eventually("the first account shows on the overview", || async {
        first_account(&browser.page("/accounts").await.1)
    })
    .await;

    let deposit_key = uuid::Uuid::now_v7().to_string();
    let account_text = account.to_string();
    browser
        .post(
            "deposit",
            &[
                ("account_id", &account_text),
                ("amount", "25.00"),
                ("note", "Through the web server"),
                ("form_key", &deposit_key),
            ],
        )
        .await;

    let (status, page) = browser.page(&format!("/accounts/{account}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("£25.00"), "the balance shows");
    assert!(
        page.contains("Through the web server"),
        "the statement shows"
    );
    // The money is in the bank itself, not only on the page.
    assert_eq!(bank.balance(username, account).await, Decimal::new(2500, 2));

    // £20 sent earns two points, which show on the overview.
    let payee = bank.sign_up("separate_payee").await;
    let (payee_text, transfer_key) = (payee.to_string(), uuid::Uuid::now_v7().to_string());
    let status_page = browser
        .post(
            "send_transfer",
            &[
                ("from", &account_text),
                ("to", &payee_text),
                ("amount", "20.00"),
                ("reference", "Points"),
                ("form_key", &transfer_key),
            ],
        )
        .await;
    let transfer: i64 = status_page
        .strip_prefix("/transfers/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a transfer's page: {status_page}"));
    assert_eq!(bank.decided(username, transfer).await["status"], "accepted");
    eventually("the overview shows the points earned", || async {
        let page = browser.page("/accounts").await.1;
        page.contains("data-testid=\"points-total\">2 points<")
            .then_some(())
    })
    .await;

    // Redeeming more than there is comes back as the form's error.
    let refused_key = uuid::Uuid::now_v7().to_string();
    let refused = browser
        .post_answer(
            "/accounts",
            "redeem_points",
            &[
                ("account_id", &account_text),
                ("points", "3"),
                ("form_key", &refused_key),
            ],
        )
        .await;
    let back = refused
        .strip_prefix(&browser.base)
        .filter(|page| page.starts_with("/accounts?") && page.contains("__err="))
        .unwrap_or_else(|| panic!("back to the overview with the error: {refused}"));
    let (_, page) = browser.page(back).await;
    assert!(page.contains("insufficient points: the account has 2"));
    // The same form sent twice at once (a double click, a resent post):
    // both are answered as done, and the points are redeemed once.
    let redeem_key = uuid::Uuid::now_v7().to_string();
    let form = [
        ("account_id", account_text.as_str()),
        ("points", "2"),
        ("form_key", redeem_key.as_str()),
    ];
    let (mut first, mut second) = (browser.clone(), browser.clone());
    tokio::join!(
        first.post("redeem_points", &form),
        second.post("redeem_points", &form)
    );
    // £25.00 − £20.00 + £0.02 of cashback, in the bank itself.
    bank.balance_becomes(username, account, Decimal::new(502, 2))
        .await;
    let log = bank.log(&["*"]).await;
    let debits: Vec<NectarDebit> = log
        .iter()
        .filter(|event| event.event_type == NectarDebit::TYPE)
        .map(|event| NectarDebit::decode(event.data.get()).expect("a debit"))
        .collect();
    assert_eq!(debits.len(), 1, "{debits:?}");
    assert_eq!((debits[0].account_id, debits[0].points), (account, 2));
    let cashbacks = log
        .iter()
        .filter(|event| event.data.get().contains("Nectar cashback"))
        .count();
    assert_eq!(cashbacks, 1);
    assert_eq!(
        balances_from_log(&log)[&account],
        bank.balance(username, account).await
    );
    eventually("the overview shows the points spent", || async {
        let page = browser.page("/accounts").await.1;
        page.contains("data-testid=\"points-total\">0 points<")
            .then_some(())
    })
    .await;

    // With Nectar gone, the accounts still show, and the points say so.
    nectar.kill9();
    let (status, page) = browser.page("/accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("£5.02"), "the balance shows");
    assert!(page.contains("Your points cannot be shown right now"));

    // Without a session the same page sends to the log-in.
    let anonymous = Browser::new(&web);
    let (status, _) = anonymous.page(&format!("/accounts/{account}")).await;
    assert_eq!(status, StatusCode::FOUND);
}
