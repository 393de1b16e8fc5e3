//! `log:info/warn/error(…)`: the service's own log, with the script's
//! arguments joined by spaces.
//!
//! ```lua
//! log:info("credited", points, "points to", key)
//! ```

use mlua::{Lua, MultiValue, Value};

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let log = lua.create_table()?;
    let levels: [(&str, Emit); 3] = [("info", info), ("warn", warn), ("error", error)];
    for (name, emit) in levels {
        log.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                emit(&line(lua, args)?);
                Ok(())
            })?,
        )?;
    }
    lua.globals().set("log", log)
}

/// Writes one line at a level: one function per level, since a tracing
/// event's level is fixed where it is written.
type Emit = fn(&str);

fn info(line: &str) {
    tracing::info!(target: "script", "{line}");
}

fn warn(line: &str) {
    tracing::warn!(target: "script", "{line}");
}

fn error(line: &str) {
    tracing::error!(target: "script", "{line}");
}

/// The arguments after the receiver, as one line.
fn line(lua: &Lua, args: MultiValue) -> mlua::Result<String> {
    let words: MultiValue = super::method_args(lua, "log", args)?;
    let words: Vec<String> = words.iter().map(word).collect();
    Ok(words.join(" "))
}

fn word(value: &Value) -> String {
    match value {
        Value::String(text) => text.to_string_lossy(),
        other => match crate::convert::to_json(other) {
            Ok(serde_json::Value::String(text)) => text,
            Ok(json) => json.to_string(),
            Err(_) => format!("<{}>", other.type_name()),
        },
    }
}
