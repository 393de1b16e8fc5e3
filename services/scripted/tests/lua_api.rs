//! The Lua API, black-box: scripts loaded from text, their handlers run
//! through the `Service` trait the framework calls, on a real database.
//! Routes and the whole service on the real bus are in the acceptance
//! tests (`services/acceptance/tests/nectar.rs`).

use std::str::FromStr;

use bus::protocol::{Consistency, ConsistencyValue, EventRecord};
use scripted::{Limits, ScriptError, Scripted, Source};
use serde_json::{Value, json};
use sqlx::{
    Executor, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use superclient::{Expect, Service};
use testkit::TestDb;

fn script(code: &str) -> Result<Scripted, ScriptError> {
    script_with(code, Limits::default())
}

fn script_with(code: &str, limits: Limits) -> Result<Scripted, ScriptError> {
    let source = Source {
        name: "test.lua".to_owned(),
        code: format!("service{{name = \"lua_test\"}}\n{code}"),
    };
    Scripted::from_source(source, limits, 2)
}

fn load_error(code: &str) -> String {
    match script(code) {
        Ok(_) => panic!("the script loaded:\n{code}"),
        Err(error) => error.to_string(),
    }
}

/// The script's schema, as the framework prepares it.
async fn schema(db: &TestDb, service: &Scripted) -> PgPool {
    let name = service.name();
    let setup = db.pool().await;
    setup
        .execute(format!("CREATE SCHEMA {name}").as_str())
        .await
        .expect("schema");
    let options = PgConnectOptions::from_str(&db.url)
        .expect("a URL")
        .options([("search_path", name)]);
    let pool = PgPoolOptions::new()
        .connect_with(options)
        .await
        .expect("connect");
    superclient::applied::ensure_tables(&mut pool.acquire().await.expect("a connection"))
        .await
        .expect("the framework's tables");
    service.migrator().run(&pool).await.expect("migrations");
    pool
}

fn event(event_type: &str, key: &str, value: i64, data: Value) -> EventRecord {
    EventRecord {
        position: value + 1,
        event_id: uuid::Uuid::now_v7(),
        event_type: event_type.to_owned(),
        consistency: Consistency {
            key: key.to_owned(),
            value: ConsistencyValue::Explicit(value),
        },
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        timestamp: chrono::Utc::now(),
        data: serde_json::value::to_raw_value(&data).expect("JSON"),
        published_by: None,
    }
}

/// Applies `events` in one transaction, as the framework does.
async fn apply(service: &Scripted, pool: &PgPool, events: &[EventRecord]) -> Result<(), String> {
    let mut tx = pool.begin().await.expect("a transaction");
    let events: Vec<&EventRecord> = events.iter().collect();
    service
        .apply_all(&mut tx, &events)
        .await
        .map_err(|error| error.to_string())?;
    tx.commit().await.expect("commit");
    Ok(())
}

async fn stored(pool: &PgPool, key: &str) -> Option<Value> {
    sqlx::query_scalar("SELECT value FROM store WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .expect("read the store")
}

#[test]
fn the_sandbox_has_no_files_processes_modules_or_bytecode() {
    for (code, missing) in [
        ("os.execute('true')", "os"),
        ("io.open('/etc/passwd')", "io"),
        ("require('socket')", "require"),
        ("load('return 1')", "load"),
        ("loadfile('/etc/passwd')", "loadfile"),
        ("dofile('/etc/passwd')", "dofile"),
        ("string.dump(function() end)", "dump"),
        ("debug.getinfo(1)", "debug"),
        ("package.loadlib('x', 'y')", "package"),
        ("print('hello')", "print"),
        ("coroutine.create(function() end)", "coroutine"),
    ] {
        let error = load_error(code);
        assert!(
            error.contains("attempt to call a nil value")
                || error.contains("attempt to index a nil value"),
            "{code}: {error}"
        );
        assert!(error.contains(missing), "{code} names {missing}: {error}");
    }
}

#[test]
fn a_script_declares_who_it_is_and_one_handler_per_type() {
    let nameless = Scripted::from_source(
        Source {
            name: "x.lua".to_owned(),
            code: "bus:on('A', function() end)".to_owned(),
        },
        Limits::default(),
        1,
    );
    assert!(
        matches!(nameless, Err(ScriptError::Load(message)) if message.contains("service{name"))
    );
    let twice = load_error("bus:on('A', function() end) bus:react('A', function() end)");
    assert!(twice.contains("already has a handler"), "{twice}");
    let dot = load_error("bus.on('A', function() end)");
    assert!(dot.contains("with a colon"), "{dot}");
    let bad_type = load_error("bus:on('no spaces', function() end)");
    assert!(bad_type.contains("not an event type name"), "{bad_type}");
    let clash = load_error(
        "bus:route('GET', '/a/{x}', function() end) bus:route('POST', '/a/{y}', function() end)",
    );
    assert!(clash.contains("clashes"), "{clash}");
    let bad_path = load_error("bus:route('GET', 'a/b', function() end)");
    assert!(bad_path.contains("must start with /"), "{bad_path}");
    let service = script(
        "bus:on('B', function() end) bus:on('A', function() end) bus:react('C', function() end)",
    )
    .expect("loads");
    assert_eq!(service.name(), "lua_test");
    assert_eq!(service.applies(), ["A", "B"]);
    assert_eq!(service.reacts_to(), ["C"]);
}

#[test]
fn publishing_and_the_store_are_refused_while_the_script_loads() {
    let error = load_error("bus:publish{type = 'A', key = 'a', data = {}}");
    assert!(
        error.contains("bus:publish is not allowed while the script loads"),
        "{error}"
    );
    let error = load_error("store:get('a')");
    assert!(
        error.contains("store:get is not allowed while the script loads"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_events_read_and_write_the_store_in_the_transaction() {
    let db = TestDb::new().await;
    let service = script(
        r#"
        bus:on("Added", function(event)
          local key = "total/" .. event.data.owner
          store:put(key, (store:get(key) or 0) + event.data.n)
          store:put("last/" .. event.data.owner, {value = event.value, key = event.key})
        end)
        bus:on("Cleared", function(event)
          for _, entry in ipairs(store:scan("total/")) do store:delete(entry.key) end
          store:put("cleared", true)
        end)
        "#,
    )
    .expect("loads");
    let pool = schema(&db, &service).await;
    // One batch: the second event reads what the first wrote, before any flush.
    apply(
        &service,
        &pool,
        &[
            event("Added", "k-1", 0, json!({"owner": "ann", "n": 5})),
            event("Added", "k-1", 1, json!({"owner": "ann", "n": 7})),
            event("Added", "k-2", 0, json!({"owner": "bob", "n": 1})),
        ],
    )
    .await
    .expect("applied");
    assert_eq!(stored(&pool, "total/ann").await, Some(json!(12)));
    assert_eq!(stored(&pool, "total/bob").await, Some(json!(1)));
    assert_eq!(
        stored(&pool, "last/ann").await,
        Some(json!({"value": 1, "key": "k-1"}))
    );
    // A scan sees the table and the batch's own writes; deletes take.
    apply(
        &service,
        &pool,
        &[
            event("Added", "k-3", 0, json!({"owner": "cat", "n": 2})),
            event("Cleared", "c", 0, json!({})),
        ],
    )
    .await
    .expect("applied");
    for owner in ["ann", "bob", "cat"] {
        assert_eq!(
            stored(&pool, &format!("total/{owner}")).await,
            None,
            "{owner}"
        );
    }
    assert_eq!(stored(&pool, "cleared").await, Some(json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_fails_its_batch_with_a_traceback_and_writes_nothing() {
    let db = TestDb::new().await;
    let service = script(
        r#"
        local function check(n)
          if n < 0 then error("negative: " .. n) end
        end
        bus:on("Added", function(event)
          store:put("seen/" .. event.key, true)
          check(event.data.n)
        end)
        "#,
    )
    .expect("loads");
    let pool = schema(&db, &service).await;
    let error = apply(
        &service,
        &pool,
        &[
            event("Added", "ok", 0, json!({"n": 1})),
            event("Added", "bad", 0, json!({"n": -1})),
        ],
    )
    .await
    .expect_err("refused");
    assert!(error.contains("negative: -1"), "{error}");
    assert!(error.contains("stack traceback"), "{error}");
    assert!(
        error.contains("test.lua:"),
        "names the script's line: {error}"
    );
    assert_eq!(stored(&pool, "seen/ok").await, None);
    // The same VM pool carries on.
    apply(&service, &pool, &[event("Added", "ok", 0, json!({"n": 1}))])
        .await
        .expect("applied");
    assert_eq!(stored(&pool, "seen/ok").await, Some(json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_and_a_runaway_allocation_are_stopped_and_the_service_carries_on() {
    let db = TestDb::new().await;
    let limits = Limits {
        max_instructions: 1_000_000,
        max_memory: 4 << 20,
    };
    let service = script_with(
        r#"
        local hoard = {}
        bus:on("Spin", function(event)
          -- pcall cannot keep it alive: the limit fails it again outside.
          while true do pcall(function() while true do end end) end
        end)
        bus:on("Grow", function(event)
          while true do hoard[#hoard + 1] = string.rep("x", 1024) .. #hoard end
        end)
        bus:on("Huge", function(event)
          store:put("huge", string.rep("x", 64 * 1024 * 1024))
        end)
        bus:on("Fine", function(event) store:put("fine", event.value) end)
        "#,
        limits,
    )
    .expect("loads");
    let pool = schema(&db, &service).await;
    let spin = apply(&service, &pool, &[event("Spin", "s", 0, json!({}))])
        .await
        .expect_err("stopped");
    assert!(
        spin.contains("stopped after 1000000 Lua instructions"),
        "{spin}"
    );
    for runaway in ["Grow", "Huge"] {
        let error = apply(&service, &pool, &[event(runaway, "g", 0, json!({}))])
            .await
            .expect_err("stopped");
        assert!(
            error.contains("more than 4 MiB in one call"),
            "{runaway}: {error}"
        );
    }
    for value in 0..4 {
        apply(&service, &pool, &[event("Fine", "f", value, json!({}))])
            .await
            .expect("the service carries on");
        assert_eq!(stored(&pool, "fine").await, Some(json!(value)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_is_decimal_and_floats_never_reach_the_store_or_the_bus() {
    let db = TestDb::new().await;
    let service = script(
        r#"
        bus:on("Sum", function(event)
          local a, b = decimal(event.data.a), decimal(event.data.b)
          store:put("sum", {
            total = (a + b):money(),
            third = (a / 3):round(2),
            points = (decimal("19.99") / 10):floor():to_integer(),
            ten = (decimal("10.00") / 10):floor():to_integer(),
            under = (decimal("9.99") / 10):floor():to_integer(),
            cash = (decimal(250) / 100):money(),
            less = a < b, same = decimal("1.0") == decimal("1.00"),
            text = "£" .. a,
            empty = array(), none = {}, list = array{1, 2},
          })
        end)
        bus:on("Float", function(event) store:put("float", {x = 0.1}) end)
        bus:on("FloatMath", function(event) store:put("float", decimal("1") + 0.5) end)
        bus:on("Pennies", function(event) store:put("float", decimal("0.001"):money()) end)
        bus:react("Pay", function(event)
          bus:publish{type = "Paid", key = "p-1", value = 3, data = {amount = decimal("0.10"), n = 2}}
          bus:publish{{type = "Note", key = "n-1", data = {empty = null}}}
        end)
        bus:react("PayFloat", function(event)
          bus:publish{type = "Paid", key = "p-1", data = {amount = 0.1}}
        end)
        "#,
    )
    .expect("loads");
    let pool = schema(&db, &service).await;
    apply(
        &service,
        &pool,
        &[event("Sum", "s", 0, json!({"a": "0.10", "b": "0.20"}))],
    )
    .await
    .expect("applied");
    assert_eq!(
        stored(&pool, "sum").await,
        Some(
            json!({"total": "0.30", "third": "0.03", "points": 1, "ten": 1, "under": 0,
                    "cash": "2.50", "less": true, "same": true, "text": "£0.10",
                    "empty": [], "none": {}, "list": [1, 2]})
        )
    );
    for (kind, why) in [
        ("Float", "is a float"),
        ("FloatMath", "is a float"),
        ("Pennies", "not a whole number of pennies"),
    ] {
        let error = apply(&service, &pool, &[event(kind, "f", 0, json!({}))])
            .await
            .expect_err("refused");
        assert!(error.contains(why), "{kind}: {error}");
    }
    let mut db_conn = pool.acquire().await.expect("a connection");
    let reaction = service
        .react(&mut db_conn, &event("Pay", "pay-1", 0, json!({})))
        .await
        .expect("decided");
    let published: Vec<(String, String, Expect, Value)> = reaction
        .emits
        .iter()
        .map(|emit| {
            (
                emit.event_type.clone(),
                emit.key.clone(),
                emit.expect,
                serde_json::from_str(emit.data.get()).expect("JSON"),
            )
        })
        .collect();
    assert_eq!(
        published,
        [
            (
                "Paid".to_owned(),
                "p-1".to_owned(),
                Expect::Value(3),
                json!({"amount": "0.10", "n": 2})
            ),
            (
                "Note".to_owned(),
                "n-1".to_owned(),
                Expect::Any,
                json!({"empty": null})
            ),
        ]
    );
    let error = service
        .react(&mut db_conn, &event("PayFloat", "pay-2", 0, json!({})))
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("is a float"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_reads_versions_and_cannot_write_the_store() {
    let db = TestDb::new().await;
    let service = script(
        r#"
        bus:on("Set", function(event) store:put("balance", event.data.n) end)
        bus:react("Spend", function(event)
          local version = bus:version("b-1")
          local balance = store:get("balance") or 0
          if balance >= event.data.n then
            bus:publish{type = "Spent", key = "b-1", value = next_value(version),
                        data = {n = event.data.n}}
          end
        end)
        bus:react("Scribble", function(event) store:put("x", 1) end)
        bus:on("Peek", function(event) bus:version("b-1") end)
        bus:on("Count", function(event) counter = 1 end)
        "#,
    )
    .expect("loads");
    let pool = schema(&db, &service).await;
    apply(&service, &pool, &[event("Set", "b-1", 0, json!({"n": 10}))])
        .await
        .expect("applied");
    sqlx::query("INSERT INTO applied_keys (key, value, position) VALUES ('b-1', 0, 1)")
        .execute(&pool)
        .await
        .expect("the claim the framework would write");
    let mut conn = pool.acquire().await.expect("a connection");
    let spend = service
        .react(&mut conn, &event("Spend", "cmd-1", 0, json!({"n": 4})))
        .await
        .expect("decided");
    assert_eq!(spend.emits.len(), 1);
    assert_eq!(spend.emits[0].expect, Expect::Value(1));
    assert_eq!(
        spend.reads,
        [superclient::Read {
            key: "b-1".to_owned(),
            version: Some(0)
        }]
    );
    let too_much = service
        .react(&mut conn, &event("Spend", "cmd-2", 0, json!({"n": 11})))
        .await
        .expect("decided");
    assert!(too_much.emits.is_empty());
    assert_eq!(too_much.reads.len(), 1, "a refusal reports what it read");

    let scribble = service
        .react(&mut conn, &event("Scribble", "cmd-3", 0, json!({})))
        .await
        .expect_err("refused");
    assert!(
        scribble
            .to_string()
            .contains("store:put is not allowed in a decision"),
        "{scribble}"
    );
    drop(conn);
    let peek = apply(&service, &pool, &[event("Peek", "p", 0, json!({}))])
        .await
        .expect_err("refused");
    assert!(
        peek.contains("bus:version is not allowed in a bus:on handler"),
        "{peek}"
    );
    let count = apply(&service, &pool, &[event("Count", "c", 0, json!({}))])
        .await
        .expect_err("refused");
    assert!(count.contains("globals are fixed"), "{count}");
}

#[test]
fn the_shipped_scripts_load_and_declare_what_their_docs_say() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let nectar = Scripted::load(&here.join("../nectar/nectar.lua"), Limits::default(), 1)
        .expect("nectar.lua loads");
    assert_eq!(nectar.name(), "nectar");
    assert_eq!(nectar.default_port(), 8086);
    assert_eq!(
        nectar.applies(),
        ["AccountCreated", "NectarCredit", "NectarDebit"]
    );
    assert_eq!(nectar.reacts_to(), ["ConfirmedDebit"]);
    let example = Scripted::load(
        &here.join("examples/large_transfers.lua"),
        Limits::default(),
        1,
    )
    .expect("the example loads");
    assert_eq!(example.applies(), ["AccountCreated", "ConfirmedDebit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_instruction_count_cannot_see_is_refused() {
    let error = load_error("setmetatable({}, {__gc = function() while true do end end})");
    assert!(error.contains("__gc finalizers are not allowed"), "{error}");
    let db = TestDb::new().await;
    let service = script(
        r#"
        bus:on("Rep", function(event) store:put("x", string.rep("", math.maxinteger)) end)
        bus:on("Move", function(event) table.move({}, 1, 1 << 62, 1, {}) end)
        bus:on("Shared", function(event)
          local big, list = string.rep("x", 1 << 20), {}
          for i = 1, 20 do list[i] = big end
          store:put("shared", list)
        end)
        bus:on("Holey", function(event)
          local t = {"a", "b", "c", x = 1}
          t[2] = nil
          store:put("holey", t)
        end)
        bus:on("Fine", function(event) store:put("fine", string.rep("ab", 3, ",")) end)
        "#,
    )
    .expect("loads");
    let pool = schema(&db, &service).await;
    for (kind, why) in [
        ("Rep", "string.rep would make more than 64 MiB"),
        ("Move", "table.move of more than 64 Mi elements"),
        ("Shared", "larger than 8 MiB as JSON"),
        ("Holey", "either a list (keys 1..n) or has text keys only"),
    ] {
        let error = apply(&service, &pool, &[event(kind, "k", 0, json!({}))])
            .await
            .expect_err("refused");
        assert!(error.contains(why), "{kind}: {error}");
    }
    apply(&service, &pool, &[event("Fine", "k", 0, json!({}))])
        .await
        .expect("applied");
    assert_eq!(stored(&pool, "fine").await, Some(json!("ab,ab,ab")));
}
