//! The load tool as its users run it: the `populate` binary against a bank
//! of separate processes, with its report, its receipts and `--verify`.

use std::process::{Command, Output};

use acceptance::{Bank, binary};

fn populate(bank: &Bank, arguments: &[&str]) -> Output {
    populate_with(bank, &bank.transactions.http_base(), arguments)
}

/// With the transactions service at `transactions`.
fn populate_with(bank: &Bank, transactions: &str, arguments: &[&str]) -> Output {
    let files = &bank.trust.files;
    Command::new(binary("populate"))
        .args(["--users-url", &bank.users.http_base()])
        .args(["--accounts-url", &bank.accounts[0].http_base()])
        .args(["--transactions-url", transactions])
        .arg("--caller-token-file")
        .arg(files.caller_token("populate"))
        .args(["--bus-url", &bank.bus.bus_url()])
        .arg("--bus-token-file")
        .arg(files.bus_token("staff"))
        .args(arguments)
        .output()
        .expect("run populate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One run: the same options, seed and name each time.
const RUN: &[&str] = &[
    "--users",
    "6",
    "--accounts-per-user",
    "2",
    "--operations-per-account",
    "8",
    "--concurrency",
    "6",
    "--seed",
    "42",
    "--run",
    "clirun",
];

#[tokio::test]
async fn a_run_reports_every_kind_keeps_its_receipts_and_verifies_the_log() {
    let bank = Bank::start().await;
    let receipts = std::env::temp_dir().join(format!("populate-receipts-{}", uuid::Uuid::now_v7()));
    let mut arguments = RUN.to_vec();
    arguments.extend(["--verify", "--receipts", receipts.to_str().expect("a path")]);
    let output = populate(&bank, &arguments);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "populate failed:\n{stdout}\n{stderr}"
    );
    for kind in [
        "sign-up",
        "account opening",
        "opening deposit",
        "deposit",
        "withdrawal",
        "transfer",
    ] {
        assert!(
            stdout.lines().any(|line| line.starts_with(kind)),
            "no line for {kind}:\n{stdout}"
        );
    }
    assert!(stdout.contains("p99 ms"), "{stdout}");
    let verified = stdout
        .lines()
        .find(|line| line.starts_with("verified:"))
        .unwrap_or_else(|| panic!("no verify summary:\n{stdout}"));
    assert!(
        verified.contains("12 balances equal the accounts service's"),
        "{verified}"
    );

    // One receipt per account opened, deposit booked, withdrawal booked and
    // transfer asked for, each in the log.
    let kept = std::fs::read_to_string(&receipts).expect("the receipts file");
    let _ = std::fs::remove_file(&receipts);
    let receipts = kept.lines().count();
    assert!(
        verified.contains(&format!("{receipts} receipts found in the log")),
        "{verified}\n{receipts}"
    );
    let pending = bank.log(&["PendingTransaction"]).await.len();
    let transfer_receipts = kept
        .lines()
        .filter(|line| line.contains("\"PendingTransaction\""))
        .count();
    assert_eq!(
        transfer_receipts, pending,
        "a receipt for every transfer asked for"
    );
    assert!(pending > 0);

    // The same run again: the same keys, so nothing happens twice.
    let before = bank.log(&["*"]).await.len();
    let again = populate(&bank, RUN);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        bank.log(&["*"]).await.len(),
        before,
        "a repeated run stored nothing new"
    );
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_is_sent() {
    let bank = Bank::start().await;
    for (arguments, expected) in [
        (&["--amount", "5..1"][..], "LOW..HIGH"),
        (&["--mix", "0,0,0"][..], "three whole weights"),
        (&["--rate", "0"][..], "operations per second"),
        (&["--accounts-per-user", "11"][..], "accounts-per-user"),
        (&["--run", "No Spaces"][..], "1 to 16 of a-z and 0-9"),
        (&["--duration=-3"][..], "--duration"),
    ] {
        let output = populate(&bank, arguments);
        assert!(!output.status.success(), "{arguments:?} was taken");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{arguments:?}: {stderr}");
    }
    assert!(bank.log(&["*"]).await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_demo_preset_makes_the_demo_bank_once() {
    let bank = Bank::start().await;
    let output = populate(&bank, &["--preset", "demo"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("alice / demo-") && stdout.contains("bob / demo-"),
        "{stdout}"
    );
    let transfers = bank.log(&["PendingTransaction"]).await.len();
    assert_eq!(transfers, 4, "the demo's four transfers");
    let balances =
        acceptance::balances_from_log(&bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await);
    assert_eq!(balances.len(), 4, "two accounts each");
    let held: rust_decimal::Decimal = balances.values().copied().sum();
    // Deposits 2450 + 5000 + 1875.40 + 1200 + 60, withdrawals 62.18 + 750 + 120 + 34.99.
    assert_eq!(held, "9618.23".parse().expect("money"));
}

#[tokio::test]
async fn operations_without_a_final_answer_fail_the_run() {
    let bank = Bank::start().await;
    // Transfers go to an address where nothing listens; the rest works.
    let output = populate_with(
        &bank,
        "http://127.0.0.1:9",
        &[
            "--users",
            "2",
            "--operations-per-account",
            "2",
            "--mix",
            "0,0,1",
            "--patience",
            "0.5",
        ],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("8 operations failed"), "{stderr}");
    let transfer = stdout
        .lines()
        .find(|line| line.starts_with("transfer"))
        .unwrap_or_else(|| panic!("no transfer line:\n{stdout}"));
    assert_eq!(
        transfer.split_whitespace().nth(4),
        Some("8"),
        "eight failed transfers: {transfer}"
    );
    assert!(bank.log(&["PendingTransaction"]).await.is_empty());
}
