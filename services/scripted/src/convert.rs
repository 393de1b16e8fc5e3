//! Between Lua values and JSON: event data, stored values, request and
//! response bodies.
//!
//! To JSON: `nil` and `null` (a global, for a field that must be present
//! and empty: a table cannot hold `nil`) are `null`; integers are numbers; a decimal is a string
//! ("2.50", as the events carry money); a table whose keys are 1..n is an
//! array, one whose keys are all strings an object (an empty table is an
//! empty object). A float, a function, or a table with other keys is
//! refused with the path to it, so nothing is half-written.
//!
//! From JSON: numbers that are whole are integers; objects and arrays are
//! tables; `null` is `nil`.

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::{Map, Number, Value};

use crate::decimal;

/// Tables nested deeper than this are refused (a table that holds itself).
const MAX_DEPTH: usize = 64;
/// The `__name` of the metatable `array()` gives a table.
const ARRAY: &str = "ledgerline.array";

/// `array(t)`: `t` (or a new table) written as a JSON array even when empty.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let mark = lua.create_table()?;
    mark.raw_set("__name", ARRAY)?;
    let array = lua.create_function(move |lua, items: Option<Table>| {
        let items = match items {
            Some(items) => items,
            None => lua.create_table()?,
        };
        items.set_metatable(Some(mark.clone()))?;
        Ok(items)
    })?;
    lua.globals().set("array", array)
}

fn is_marked_array(table: &Table) -> bool {
    table.metatable().is_some_and(|meta| {
        meta.raw_get::<Option<String>>("__name")
            .is_ok_and(|name| name.as_deref() == Some(ARRAY))
    })
}

/// Most bytes one value may take as JSON. The copy is made outside Lua's
/// memory limit, and a table may hold one big string many times over.
const MAX_BYTES: usize = 8 << 20;

pub(crate) fn to_json(value: &LuaValue) -> mlua::Result<Value> {
    let mut budget = MAX_BYTES;
    to_json_at(value, "value", 0, &mut budget)
}

/// Takes `bytes` from what the value may still take.
fn spend(budget: &mut usize, bytes: usize) -> mlua::Result<()> {
    *budget = budget.checked_sub(bytes + 8).ok_or_else(|| {
        mlua::Error::runtime(format!(
            "the value is larger than {} MiB as JSON",
            MAX_BYTES >> 20
        ))
    })?;
    Ok(())
}

fn to_json_at(
    value: &LuaValue,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> mlua::Result<Value> {
    let refuse = |why: String| Err(mlua::Error::runtime(format!("{path}: {why}")));
    let size = match value {
        LuaValue::String(text) => text.as_bytes().len(),
        _ => 0,
    };
    spend(budget, size)?;
    match value {
        LuaValue::Nil => Ok(Value::Null),
        LuaValue::LightUserData(pointer) if pointer.0.is_null() => Ok(Value::Null),
        LuaValue::Boolean(flag) => Ok(Value::Bool(*flag)),
        LuaValue::Integer(integer) => Ok(Value::Number((*integer).into())),
        LuaValue::Number(float) => refuse(format!(
            "{float} is a float; money and counts are decimal(\"…\") or integers"
        )),
        LuaValue::String(text) => Ok(Value::String(text.to_str()?.to_owned())),
        LuaValue::UserData(data) => match decimal::from_userdata(data) {
            Some(decimal) => Ok(Value::String(decimal.to_string())),
            None => refuse("this value cannot be written as JSON".to_owned()),
        },
        LuaValue::Table(table) => table_to_json(table, path, depth, budget),
        other => refuse(format!("a {} cannot be written as JSON", other.type_name())),
    }
}

fn table_to_json(
    table: &Table,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> mlua::Result<Value> {
    if depth >= MAX_DEPTH {
        return Err(mlua::Error::runtime(format!(
            "{path}: nested more than {MAX_DEPTH} deep"
        )));
    }
    let length = table.raw_len();
    let mut count = 0;
    let mut all_strings = true;
    let mut all_indices = true;
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let (key, _) = pair?;
        count += 1;
        all_strings &= matches!(key, LuaValue::String(_));
        all_indices &=
            matches!(key, LuaValue::Integer(index) if index >= 1 && index as usize <= length);
    }
    if all_indices && count == length && (length > 0 || is_marked_array(table)) {
        let mut items = Vec::with_capacity(length);
        for index in 1..=length {
            let item: LuaValue = table.raw_get(index)?;
            items.push(to_json_at(
                &item,
                &format!("{path}[{index}]"),
                depth + 1,
                budget,
            )?);
        }
        return Ok(Value::Array(items));
    }
    if !all_strings {
        return Err(mlua::Error::runtime(format!(
            "{path}: a table is either a list (keys 1..n) or has text keys only"
        )));
    }
    let mut object = Map::new();
    for pair in table.pairs::<mlua::String, LuaValue>() {
        let (key, item) = pair?;
        let key = key.to_str()?.to_owned();
        spend(budget, key.len())?;
        let item = to_json_at(&item, &format!("{path}.{key}"), depth + 1, budget)?;
        object.insert(key, item);
    }
    Ok(Value::Object(object))
}

pub(crate) fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(flag) => LuaValue::Boolean(*flag),
        Value::Number(number) => number_to_lua(number),
        Value::String(text) => LuaValue::String(lua.create_string(text)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        Value::Object(object) => {
            let table = lua.create_table_with_capacity(0, object.len())?;
            for (key, item) in object {
                table.raw_set(key.as_str(), to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
    })
}

/// Whole numbers are Lua integers (`10.0` too, so that what was read can
/// be written back); others stay floats (no event of ours carries one:
/// money travels as strings).
fn number_to_lua(number: &Number) -> LuaValue {
    if let Some(integer) = number.as_i64() {
        return LuaValue::Integer(integer);
    }
    let float = number.as_f64().unwrap_or(f64::NAN);
    if float.fract() == 0.0 && float.abs() < 9.0e18 {
        LuaValue::Integer(float as i64)
    } else {
        LuaValue::Number(float)
    }
}
