//! `store`: the script's own table of keys and JSON values, in its schema.
//!
//! Inside a `bus:on` handler, reads and writes belong to the framework's
//! transaction: they commit with the event's claim, or not at all, so an
//! event is applied exactly once. Writes are gathered and written with a
//! few set-based statements per batch. Elsewhere the store is read-only:
//! its state is what the log says, so only applied events change it.
//!
//! ```lua
//! bus:on("NectarCredit", function(event)
//!   local key = "points/" .. event.data.account_id
//!   store:put(key, (store:get(key) or 0) + event.data.points)
//! end)
//! for _, entry in ipairs(store:scan("points/")) do
//!   log:info(entry.key, entry.value)
//! end
//! ```

use std::collections::BTreeMap;

use mlua::{Lua, MultiValue, Value};

use super::{in_mode, method_args, with_call};
use crate::{
    bridge::{Answer, Query},
    call::Mode,
    convert,
};

/// Longest key, in bytes.
const MAX_KEY_BYTES: usize = 512;
/// Most entries one scan returns.
pub(crate) const MAX_SCAN: usize = 10_000;

const READERS: &[Mode] = &[Mode::Apply, Mode::Decide, Mode::Read];

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let store = lua.create_table()?;
    store.set(
        "get",
        lua.create_function(|lua, args: MultiValue| {
            let key: String = method_args(lua, "store", args)?;
            in_mode(lua, "store:get", READERS)?;
            let key = checked_key(key)?;
            let written = with_call(lua, |call| Ok(call.writes.get(&key).cloned()))?;
            let value = match written {
                Some(value) => value,
                None => match super::bus::ask(lua, Query::Get(key))? {
                    Answer::Value(value) => value,
                    other => return Err(unexpected(&other)),
                },
            };
            match value {
                Some(value) => convert::to_lua(lua, &value),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    store.set(
        "put",
        lua.create_function(|lua, args: MultiValue| {
            let (key, value): (String, Value) = method_args(lua, "store", args)?;
            in_mode(lua, "store:put", &[Mode::Apply])?;
            let key = checked_key(key)?;
            if value.is_nil() {
                return Err(mlua::Error::runtime(
                    "store:put needs a value; store:delete removes a key",
                ));
            }
            let value = convert::to_json(&value)?;
            with_call(lua, |call| {
                call.writes.insert(key, Some(value));
                Ok(())
            })
        })?,
    )?;
    store.set(
        "delete",
        lua.create_function(|lua, args: MultiValue| {
            let key: String = method_args(lua, "store", args)?;
            in_mode(lua, "store:delete", &[Mode::Apply])?;
            let key = checked_key(key)?;
            with_call(lua, |call| {
                call.writes.insert(key, None);
                Ok(())
            })
        })?,
    )?;
    store.set(
        "scan",
        lua.create_function(|lua, args: MultiValue| {
            let prefix: String = method_args(lua, "store", args)?;
            in_mode(lua, "store:scan", READERS)?;
            let stored = match super::bus::ask(lua, Query::Scan(prefix.clone()))? {
                Answer::Entries(entries) => entries,
                other => return Err(unexpected(&other)),
            };
            let mut entries: BTreeMap<String, serde_json::Value> = stored.into_iter().collect();
            with_call(lua, |call| {
                for (key, value) in call.writes.range(prefix.clone()..) {
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    match value {
                        Some(value) => entries.insert(key.clone(), value.clone()),
                        None => entries.remove(key),
                    };
                }
                Ok(())
            })?;
            if entries.len() > MAX_SCAN {
                return Err(mlua::Error::runtime(format!(
                    "store:scan({prefix:?}) finds more than {MAX_SCAN} keys: narrow the prefix"
                )));
            }
            let list = lua.create_table_with_capacity(entries.len(), 0)?;
            for (index, (key, value)) in entries.iter().enumerate() {
                let entry = lua.create_table_with_capacity(0, 2)?;
                entry.set("key", key.as_str())?;
                entry.set("value", convert::to_lua(lua, value)?)?;
                list.raw_set(index + 1, entry)?;
            }
            Ok(list)
        })?,
    )?;
    lua.globals().set("store", store)
}

fn checked_key(key: String) -> mlua::Result<String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(mlua::Error::runtime(format!(
            "a store key is 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(key)
}

fn unexpected(answer: &Answer) -> mlua::Error {
    mlua::Error::runtime(format!("the host answered {answer:?} out of turn"))
}
