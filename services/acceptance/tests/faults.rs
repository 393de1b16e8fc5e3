//! Faults under load, each during a run of the load tool against the real
//! binaries on a private PostgreSQL cluster of the test's own:
//!
//! - R1: the bus is killed with SIGKILL five times and restarted;
//! - R2: service instances (two of each) are killed at random and restarted;
//! - R3: PostgreSQL itself is restarted;
//! - R4: a hostile client sends 100,000 malformed, oversized and
//!   out-of-scope frames.
//!
//! After each, every operation must have a final answer (retries with the
//! same idempotency key), and `populate`'s checks of the whole log must
//! pass: values without gaps, one decision per transfer, each accepted
//! transfer's debit and credit in one message, no balance ever negative,
//! balances equal to the accounts service's, every receipt in the log, and
//! the run's movements in the log exactly once each. Each test says what it
//! killed and when, and prints the checks' summary.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use acceptance::{Bank, Cluster, Process, Service, TestDb};
use futures_util::{SinkExt, StreamExt};
use indicatif::{MultiProgress, ProgressDrawTarget};
use populate::{
    Mix, Pace, Plan, Report, Shape, options::Rate, receipts::Receipts, report::OperationKind,
    verify::Expected,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// One fault test at a time: each loads the whole machine, and R3's
/// deadline must not be spent waiting for another test's load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bank on a cluster of its own, with `instances` of each of users,
/// accounts and transactions.
struct Scene {
    // Fields drop in order: the processes stop before their cluster.
    more: Vec<Process>,
    bank: Bank,
    cluster: Cluster,
    started: Instant,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Scene {
    async fn start(instances: usize) -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let cluster = tokio::task::spawn_blocking(Cluster::start)
            .await
            .expect("the cluster starts");
        let bank = Bank::start_on(TestDb::on(&cluster.url).await, instances);
        let more = (1..instances)
            .flat_map(|_| {
                [
                    bank.another(Service::Users),
                    bank.another(Service::Transactions),
                ]
            })
            .collect();
        Self {
            more,
            bank,
            cluster,
            started: Instant::now(),
            _turn: turn,
        }
    }

    fn say(&self, what: &str) {
        eprintln!("[{:>6.2} s] {what}", self.started.elapsed().as_secs_f64());
    }
}

/// A run in progress, on a task of its own, so that the test may block on
/// a fault while the run goes on.
struct Running {
    plan: Arc<Plan>,
    report: Arc<Report>,
    receipts: Arc<Receipts>,
    client: Arc<populate::Client>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<populate::setup::Customer>>>,
}

/// Customers, each with two accounts and `operations` operations on each.
fn plan(run: &str, customers: usize, operations: usize) -> Plan {
    let shape = Shape {
        users: customers,
        accounts_per_user: 2,
        operations_per_account: operations,
        opening_deposit: "200.00..400.00".parse().expect("a range"),
        amount: "1.00..120.00".parse().expect("a range"),
        mix: Mix::default(),
    };
    Plan::draw(run, &shape, 11)
}

impl Running {
    fn start(scene: &Scene, plan: Plan) -> Self {
        let (plan, report, receipts) = (
            Arc::new(plan),
            Arc::new(Report::default()),
            Arc::new(Receipts::default()),
        );
        let client = Arc::new(scene.bank.populate_client(&scene.more));
        let task = tokio::spawn({
            let (client, plan, report, receipts) = (
                client.clone(),
                plan.clone(),
                report.clone(),
                receipts.clone(),
            );
            async move {
                let pace = Pace {
                    concurrency: 12,
                    rate: Rate::Unlimited,
                    duration: None,
                };
                let progress = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
                populate::run(&client, &plan, &pace, &report, &receipts, &progress).await
            }
        });
        Self {
            plan,
            report,
            receipts,
            client,
            task,
        }
    }

    /// Every request of the run: setup (a sign-up, an account opening and
    /// two opening deposits per customer) and the operations.
    fn total(&self) -> u64 {
        let customers = self.plan.customers.len();
        (customers * (2 * self.plan.accounts_per_customer()) + self.plan.operations.len()) as u64
    }

    fn settled(&self) -> u64 {
        let (accepted, rejected, failed) = self.report.settled();
        accepted + rejected + failed
    }

    /// Requests accepted or rejected so far.
    fn final_answers(&self) -> u64 {
        let (accepted, rejected, _) = self.report.settled();
        accepted + rejected
    }

    /// Waits until `share` of the run's requests have a final answer.
    async fn until_settled(&mut self, share: f64) -> u64 {
        let wanted = (self.total() as f64 * share) as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let settled = self.settled();
            if settled >= wanted {
                return settled;
            }
            if self.task.is_finished() {
                let ended = (&mut self.task).await;
                panic!(
                    "the run ended before {wanted} requests settled: {ended:?}\n{}",
                    self.report
                );
            }
            assert!(
                Instant::now() < deadline,
                "only {settled} of {wanted} requests settled in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The end of the run, then the checks of the log; panics on any failed
    /// operation or failed check.
    async fn finish_and_verify(self, scene: &Scene) {
        let customers = self.task.await.expect("the run's task").expect("the run");
        scene.say(&format!("the run ended:\n{}", self.report));
        assert_eq!(self.report.failed(), 0, "operations without a final answer");
        let expected = Expected::of(&self.plan.run, &self.receipts.all(), &self.report);
        let checked = populate::check(
            &self.client,
            &customers,
            &self.receipts.all(),
            &expected,
            &scene.bank.bus.bus_url(),
            scene.bank.trust.bundle.bus_token("staff"),
        )
        .await
        .expect("the balances and the log can be read");
        match checked {
            Ok(summary) => {
                scene.say(&summary.to_string());
                assert!(summary.transfers_accepted > 0, "transfers moved money");
                assert_eq!(summary.receipts_found, self.receipts.all().len());
            }
            Err(problems) => panic!("{problems}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_the_bus_killed_five_times_loses_no_receipted_event() {
    let mut scene = Scene::start(1).await;
    let mut running = Running::start(&scene, plan("rone", 12, 16));
    for kill in 1..=5 {
        let settled = running.until_settled(kill as f64 / 6.0).await;
        scene.say(&format!(
            "R1: kill -9 of the bus (pid {}), #{kill}, with {settled} of {} requests settled",
            scene.bank.bus.pid(),
            running.total()
        ));
        scene.bank.bus.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await; // the outage, not a wait for anything
        scene.bank.bus.restart();
        scene.say("R1: the bus is back");
    }
    running.finish_and_verify(&scene).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_service_instances_killed_at_random_leave_every_transfer_final() {
    let mut scene = Scene::start(2).await;
    let mut running = Running::start(&scene, plan("rtwo", 12, 16));
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    scene.say(&format!("R2: victims drawn with seed {seed}"));
    for kill in 1..=6 {
        let settled = running.until_settled(kill as f64 / 7.0).await;
        let Scene {
            bank,
            more,
            started,
            ..
        } = &mut scene;
        let mut instances: Vec<&mut Process> = std::iter::once(&mut bank.users)
            .chain(bank.accounts.iter_mut())
            .chain(std::iter::once(&mut bank.transactions))
            .chain(more.iter_mut())
            .collect();
        let count = instances.len();
        let victim = &mut instances[rng.random_range(0..count)];
        eprintln!(
            "[{:>6.2} s] R2: kill -9 of a {} instance (pid {}, {}), #{kill}, with {settled} of {} requests settled",
            started.elapsed().as_secs_f64(),
            victim.kind().map_or("?", Service::name),
            victim.pid(),
            victim.address,
            running.total()
        );
        victim.kill9();
        victim.restart();
    }
    scene.say("R2: every victim is back");
    running.finish_and_verify(&scene).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_a_postgres_restart_is_resumed_from_within_ten_seconds() {
    let scene = Scene::start(1).await;
    let mut running = Running::start(&scene, plan("rthree", 12, 16));
    let settled = running.until_settled(0.35).await;
    scene.say(&format!(
        "R3: PostgreSQL stopped (fast shutdown), with {settled} of {} requests settled",
        running.total()
    ));
    let cluster = &scene.cluster;
    let stopped = Instant::now();
    tokio::task::block_in_place(|| cluster.stop());
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage, not a wait for anything
    tokio::task::block_in_place(|| cluster.start_again());
    let back = Instant::now();
    let before = running.final_answers();
    scene.say(&format!(
        "R3: PostgreSQL is back, with {before} requests settled"
    ));
    // Resumed: fresh requests, through every service and the bus, settle.
    loop {
        assert!(
            !running.task.is_finished(),
            "the run ended before it was seen to resume"
        );
        if running.final_answers() >= before + 20 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "10 s after PostgreSQL came back, only {} more requests had a final answer",
            running.final_answers() - before
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    scene.say(&format!(
        "R3: resumed {:.2} s after PostgreSQL came back",
        back.elapsed().as_secs_f64()
    ));
    // Every request caught by the outage, too, ends within 10 s of its end
    // (none waits out a lease its failed try could not release).
    let longest = back.duration_since(stopped) + Duration::from_secs(10);
    let report = running.report.clone();
    running.finish_and_verify(&scene).await;
    for kind in [
        OperationKind::Deposit,
        OperationKind::Withdrawal,
        OperationKind::Transfer,
    ] {
        let max = Duration::from_micros(report.tally(kind).latency.max());
        assert!(
            max <= longest,
            "a {} took {max:?}, more than the outage and 10 s ({longest:?})",
            kind.name()
        );
    }
}

/// Frames no bus should act on: malformed, of unknown types, outside the
/// `web` token's scope (which may only observe), and too big. Each is
/// answered with an error; those outside the scope with `forbidden`.
fn hostile_frame(number: usize) -> String {
    match number % 8 {
        0 => "{not json".to_owned(),
        1 => json!({"message_type": "launch_missiles", "request_id": number}).to_string(),
        // Money, which only the accounts service may publish.
        2 => json!({"message_type": "new", "request_id": format!("h{number}"), "events": [
            {"event_type": "ConfirmedCredit", "consistency": {"key": "acc-1", "value": "*"},
             "data": {"account_id": 1, "amount": "1000000.00", "note": "free money", "transaction_id": null}}]})
        .to_string(),
        // Another service's deliveries.
        3 => json!({"message_type": "register", "request_id": format!("h{number}"), "client_type": "accounts",
                    "event_types": ["PendingTransaction"], "mode": "consume"})
        .to_string(),
        // Password hashes.
        4 => json!({"message_type": "query", "request_id": format!("h{number}"), "event_types": ["UserCreated"],
                    "after_position": 0})
        .to_string(),
        5 => json!({"message_type": "ack", "positions": ["one", -5, null]}).to_string(),
        6 => json!({"message_type": "new", "request_id": "x".repeat(10_000), "events": []}).to_string(),
        _ => "\u{0}\u{1}\u{ffff}[[[[[[[[[[[[[[[[[[[[".to_owned(),
    }
}

/// What the bus answered the hostile client.
#[derive(Debug, Default)]
struct Answers {
    /// Refusals: errors, and rejected receipts.
    errors: usize,
    forbidden: usize,
    /// Anything but a refusal: a bus acting on a hostile frame.
    others: Vec<String>,
}

/// The bus's resident memory, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the bus runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

const HOSTILE_FRAMES: usize = 100_000;
/// One frame in this many is over the bus's 1 MiB limit (the bus closes
/// the socket; the hostile client connects again).
const OVERSIZED_EVERY: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_a_hostile_client_neither_stops_the_bus_nor_grows_its_memory() {
    let mut scene = Scene::start(1).await;
    let url = scene.bank.bus.bus_url();
    let token = scene.bank.trust.bundle.bus_token("web").to_owned();
    let pid = scene.bank.bus.pid();
    let baseline = resident_kib(pid);
    scene.say(&format!(
        "R4: at least {HOSTILE_FRAMES} hostile frames, and more until the run ends; the bus holds {baseline} KiB"
    ));
    let run_ended = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let hostile = tokio::spawn({
        let (run_ended, sent) = (run_ended.clone(), sent.clone());
        async move {
            let (mut connections, mut answers) = (0usize, Answers::default());
            let more = || {
                sent.load(Ordering::Relaxed) < HOSTILE_FRAMES || !run_ended.load(Ordering::Relaxed)
            };
            while more() {
                let mut request = url.as_str().into_client_request().expect("a request");
                request.headers_mut().insert(
                    "authorization",
                    format!("Bearer {token}").parse().expect("a header"),
                );
                let (socket, _) = tokio_tungstenite::connect_async(request)
                    .await
                    .expect("the bus takes connections");
                connections += 1;
                let (mut sink, mut stream) = socket.split();
                // Answers are read as they come, so the bus is never held up
                // by a client that does not read.
                let reader = tokio::spawn(async move {
                    let mut answers = Answers::default();
                    while let Some(Ok(message)) = stream.next().await {
                        let Message::Text(text) = message else {
                            continue;
                        };
                        let answer: serde_json::Value =
                            serde_json::from_str(&text).unwrap_or_default();
                        // A refusal: an error, or a publish's receipt that stored nothing.
                        let refused = answer["message_type"] == "error"
                            || (answer["message_type"] == "receipt"
                                && answer["status"] == "rejected");
                        if refused {
                            answers.errors += 1;
                            answers.forbidden += usize::from(answer["code"] == "forbidden");
                        } else {
                            answers.others.push(text.to_string());
                        }
                    }
                    answers
                });
                while more() {
                    let number = sent.fetch_add(1, Ordering::Relaxed) + 1;
                    if number % OVERSIZED_EVERY == 0 {
                        let _ = sink.send(Message::text("x".repeat(1024 * 1024 + 1))).await;
                        break;
                    }
                    if sink
                        .send(Message::text(hostile_frame(number)))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                let _ = sink.close().await;
                let read = reader.await.unwrap_or_default();
                answers.errors += read.errors;
                answers.forbidden += read.forbidden;
                answers.others.extend(read.others);
            }
            (connections, answers)
        }
    });

    // The run starts once the flood has, and the flood lasts until it ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Relaxed) < 1_000 {
        assert!(Instant::now() < deadline, "the hostile client sent nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let running = Running::start(&scene, plan("rfour", 10, 16));
    let mut peak = baseline;
    while !running.task.is_finished() {
        peak = peak.max(resident_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run_ended.store(true, Ordering::Relaxed);
    while !hostile.is_finished() {
        peak = peak.max(resident_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (connections, answers) = hostile.await.expect("the hostile client ran");
    let after = resident_kib(pid);
    scene.say(&format!(
        "R4: {} hostile frames sent over {connections} connections, answered with {} errors ({} forbidden); \
         the bus held {baseline} KiB before, {peak} KiB at most, {after} KiB after",
        sent.load(Ordering::Relaxed),
        answers.errors,
        answers.forbidden
    ));
    assert!(
        scene.bank.bus.is_running(),
        "the bus did not survive the hostile client"
    );
    assert!(
        answers.others.is_empty(),
        "the bus acted on hostile frames: {:?}",
        &answers.others[..answers.others.len().min(5)]
    );
    assert!(
        answers.errors > HOSTILE_FRAMES / 2,
        "the bus answered the bad frames with errors"
    );
    assert!(
        answers.forbidden > HOSTILE_FRAMES / 8,
        "frames outside the token's scope were refused as such"
    );
    assert!(
        peak < baseline + 64 * 1024,
        "the bus's memory grew from {baseline} KiB to {peak} KiB"
    );
    running.finish_and_verify(&scene).await;
}
