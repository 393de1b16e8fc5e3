//! `log:info/warn/error(…)`: the service's own log, with the script's
//! arguments joined by spaces.
//!
//! ```lua
//! log:info("credited", points, "points to", key)
//! ```

use mlua::{Lua, MultiValue, Value};

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let log = lua.create_table()?;
    log.set(
        "info",
        lua.create_function(|lua, args: MultiValue| {
            tracing::info!(target: "script", "{}", line(lua, args)?);
            Ok(())
        })?,
    )?;
    log.set(
        "warn",
        lua.create_function(|lua, args: MultiValue| {
            tracing::warn!(target: "script", "{}", line(lua, args)?);
            Ok(())
        })?,
    )?;
    log.set(
        "error",
        lua.create_function(|lua, args: MultiValue| {
            tracing::error!(target: "script", "{}", line(lua, args)?);
            Ok(())
        })?,
    )?;
    lua.globals().set("log", log)
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
