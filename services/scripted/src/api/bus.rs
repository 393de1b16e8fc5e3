//! `bus`: the handlers a script declares, and what they do on the bus.
//!
//! ```lua
//! -- A fact, applied exactly once and in order per key, live and in a
//! -- rebuild alike. It reads and writes the store; it cannot publish.
//! bus:on("NectarCredit", function(event) … end)
//!
//! -- A command or a fact that calls for new events. It reads, and
//! -- publishes; when another instance wins a race for a key it pinned,
//! -- it runs again on fresh state. Its events' ids derive from the
//! -- event's, so running it again never publishes twice.
//! bus:react("ConfirmedDebit", function(event)
//!   bus:publish{type = "NectarCredit", key = "nectar-7", data = {…}}
//! end)
//!
//! -- An HTTP route: req.params, req.query, req.body, req.user, req.id.
//! bus:route("POST", "/things/{id}", function(req)
//!   local version = bus:version("thing-" .. req.params.id)  -- nil: none yet
//!   bus:publish{type = "ThingDone", key = "thing-" .. req.params.id,
//!               value = next_value(version), data = {…}}
//!   return {status = http.CREATED, body = {done = true}}
//! end)
//! ```
//!
//! Everything one call publishes goes out as one atomic message when it
//! returns. `value` is the event's consistency value: an integer pins it
//! (the bus refuses it if another event got there first), and none takes
//! whatever is next.

use mlua::{Function, Lua, MultiValue, Table, Value};
use superclient::{Emit, Expect, Read};

use super::{RouteSpec, declaration, in_mode, method_args, with_call};
use crate::{
    bridge::{Answer, AskError, Query},
    call::Mode,
    convert,
};

/// Most events one call may publish (the bus takes up to 1,000 in a message).
const MAX_EVENTS: usize = 100;
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let bus = lua.create_table()?;
    bus.set(
        "on",
        lua.create_function(|lua, args: MultiValue| {
            let (event_type, handler) = method_args(lua, "bus", args)?;
            declare_handler(lua, "bus:on", event_type, handler, true)
        })?,
    )?;
    bus.set(
        "react",
        lua.create_function(|lua, args: MultiValue| {
            let (event_type, handler) = method_args(lua, "bus", args)?;
            declare_handler(lua, "bus:react", event_type, handler, false)
        })?,
    )?;
    bus.set(
        "route",
        lua.create_function(|lua, args: MultiValue| {
            let (method, path, handler): (String, String, Function) =
                method_args(lua, "bus", args)?;
            in_mode(lua, "bus:route", &[Mode::Load])?;
            let method = method.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(mlua::Error::runtime(format!(
                    "bus:route: {method:?} is not one of {}",
                    METHODS.join(", ")
                )));
            }
            check_path(&path)?;
            let spec = RouteSpec { method, path };
            let handler = lua.create_registry_value(handler)?;
            let mut declared = declaration(lua)?;
            if declared
                .routes
                .iter()
                .any(|(known, _)| clashes(known, &spec))
            {
                return Err(mlua::Error::runtime(format!(
                    "bus:route: {} {} clashes with a route declared before (the same \
                         method and path, or the same path with other parameter names)",
                    spec.method, spec.path
                )));
            }
            declared.routes.push((spec, handler));
            Ok(())
        })?,
    )?;
    bus.set(
        "publish",
        lua.create_function(|lua, args: MultiValue| {
            let events: Table = method_args(lua, "bus", args)?;
            in_mode(lua, "bus:publish", &[Mode::Decide])?;
            // One event, or a list of them.
            let events: Vec<Table> = if events.contains_key("type")? {
                vec![events]
            } else {
                events
                    .sequence_values::<Table>()
                    .collect::<mlua::Result<_>>()?
            };
            let emits = events
                .iter()
                .map(emit)
                .collect::<mlua::Result<Vec<Emit>>>()?;
            with_call(lua, |call| {
                if call.emits.len() + emits.len() > MAX_EVENTS {
                    return Err(mlua::Error::runtime(format!(
                        "bus:publish: at most {MAX_EVENTS} events in one call"
                    )));
                }
                call.emits.extend(emits);
                Ok(())
            })
        })?,
    )?;
    bus.set(
        "version",
        lua.create_function(|lua, args: MultiValue| {
            let key: String = method_args(lua, "bus", args)?;
            let mode = in_mode(lua, "bus:version", &[Mode::Decide, Mode::Read])?;
            let version = match ask(lua, Query::Version(key.clone()))? {
                Answer::Version(version) => version,
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "the host answered {other:?} out of turn"
                    )));
                }
            };
            if mode == Mode::Decide {
                with_call(lua, |call| {
                    call.reads.push(Read { key, version });
                    Ok(())
                })?;
            }
            Ok(version)
        })?,
    )?;
    lua.globals().set("bus", bus)?;
    // The value after a version: `value = next_value(bus:version(key))`.
    lua.globals().set(
        "next_value",
        lua.create_function(|_, version: Option<i64>| Ok(version.map_or(0, |v| v + 1)))?,
    )
}

fn declare_handler(
    lua: &Lua,
    what: &str,
    event_type: String,
    handler: Function,
    applies: bool,
) -> mlua::Result<()> {
    in_mode(lua, what, &[Mode::Load])?;
    if !bus::protocol::is_valid_name(&event_type) {
        return Err(mlua::Error::runtime(format!(
            "{what}: {event_type:?} is not an event type name"
        )));
    }
    let handler = lua.create_registry_value(handler)?;
    let mut declared = declaration(lua)?;
    if declared.on.contains_key(&event_type) || declared.react.contains_key(&event_type) {
        return Err(mlua::Error::runtime(format!(
            "{what}: {event_type} already has a handler; an event type is either applied \
             (bus:on) or reacted to (bus:react), once"
        )));
    }
    let handlers = if applies {
        &mut declared.on
    } else {
        &mut declared.react
    };
    handlers.insert(event_type, handler);
    Ok(())
}

/// One event of `bus:publish`.
fn emit(event: &Table) -> mlua::Result<Emit> {
    let event_type: String = event
        .get::<Option<String>>("type")?
        .ok_or_else(|| mlua::Error::runtime("bus:publish: every event needs a type"))?;
    if !bus::protocol::is_valid_name(&event_type) {
        return Err(mlua::Error::runtime(format!(
            "bus:publish: {event_type:?} is not an event type name"
        )));
    }
    let key: String = event
        .get::<Option<String>>("key")?
        .filter(|key| !key.is_empty())
        .ok_or_else(|| mlua::Error::runtime(format!("bus:publish: {event_type} needs a key")))?;
    let expect = match event.get::<Value>("value")? {
        Value::Nil => Expect::Any,
        Value::Integer(value) if value >= 0 => Expect::Value(value),
        other => {
            return Err(mlua::Error::runtime(format!(
                "bus:publish: {event_type}'s value is a consistency value (an integer from 0), \
                 not {other:?}"
            )));
        }
    };
    let data = match event.get::<Value>("data")? {
        Value::Table(data) => convert::to_json(&Value::Table(data))?,
        _ => {
            return Err(mlua::Error::runtime(format!(
                "bus:publish: {event_type} needs its data as a table"
            )));
        }
    };
    let data = if data.as_object().is_some() {
        data
    } else {
        return Err(mlua::Error::runtime(format!(
            "bus:publish: {event_type}'s data is an object (text keys), not a list"
        )));
    };
    Emit::new(&event_type, key, expect, &data).map_err(mlua::Error::runtime)
}

/// Asks the database through the call's bridge.
pub(crate) fn ask(lua: &Lua, query: Query) -> mlua::Result<Answer> {
    let bridge = with_call(lua, |call| {
        call.bridge
            .clone()
            .ok_or_else(|| mlua::Error::runtime("the store is not open while the script loads"))
    })?;
    match bridge.ask(query) {
        Ok(answer) => Ok(answer),
        Err(AskError::NeedsSync(key)) => {
            with_call(lua, |call| {
                call.needs_sync = Some(key.clone());
                Ok(())
            })?;
            Err(mlua::Error::runtime(AskError::NeedsSync(key).to_string()))
        }
        Err(AskError::Failed(message)) => {
            with_call(lua, |call| {
                call.host_failure = Some(message.clone());
                Ok(())
            })?;
            Err(mlua::Error::runtime(format!(
                "the database failed: {message}"
            )))
        }
        Err(error) => Err(mlua::Error::runtime(error.to_string())),
    }
}

/// A path of literal segments and `{name}` parameters, as axum takes it.
fn check_path(path: &str) -> mlua::Result<()> {
    let refuse = |why: &str| Err(mlua::Error::runtime(format!("bus:route: {path:?} {why}")));
    if !path.starts_with('/') || path.len() > 200 {
        return refuse("must start with / (and be at most 200 characters)");
    }
    if path == "/health" || path == "/metrics" {
        return refuse("is the framework's own");
    }
    let mut names = Vec::new();
    for segment in path[1..].split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid || names.contains(&name) {
                return refuse(
                    "has a parameter that is not a unique {name} of letters, digits and _",
                );
            }
            names.push(name);
        } else if segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return refuse("has a segment that is empty or not letters, digits, -, _ and .");
        }
    }
    Ok(())
}

/// Two routes the router could not hold together: the same method and
/// path, or paths of the same shape whose parameters are named apart.
fn clashes(a: &RouteSpec, b: &RouteSpec) -> bool {
    let shape = |path: &str| -> Vec<String> {
        path.split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "{}".to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect()
    };
    shape(&a.path) == shape(&b.path) && (a.method == b.method || a.path != b.path)
}
