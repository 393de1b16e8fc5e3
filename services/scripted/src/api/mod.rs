//! The Lua API a script sees. Globals, each a table of functions called
//! with a colon (`bus:on(…)`), plus two helpers:
//!
//! - `service{name = "nectar", port = 8086}`: who the script is.
//! - [`bus`]: `bus:on`, `bus:react`, `bus:route` declare handlers;
//!   `bus:publish` and `bus:version` are used inside them.
//! - [`store`]: `store:get/put/delete/scan`, the script's own table.
//! - [`log`]: `log:info/warn/error`; [`http`]: status codes by name.
//! - `decimal(…)`: exact money ([`crate::decimal`]); `null`: a JSON null
//!   in data (`transaction_id = null`), since a table cannot hold `nil`;
//!   `array(t)`: a table written as a JSON array even when empty.

pub(crate) mod bus;
pub(crate) mod http;
pub(crate) mod log;
pub(crate) mod store;

use std::collections::BTreeMap;

use mlua::{FromLuaMulti, Lua, MultiValue, RegistryKey, Table, Value};

use crate::call::{Call, Mode};

/// A route a script declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
}

/// What the script's top level declared, with its handlers.
#[derive(Default)]
pub(crate) struct Declaration {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub on: BTreeMap<String, RegistryKey>,
    pub react: BTreeMap<String, RegistryKey>,
    pub routes: Vec<(RouteSpec, RegistryKey)>,
}

/// Installs every global of the API.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    lua.set_app_data(Declaration::default());
    let service = lua.create_function(|lua, spec: Table| {
        in_mode(lua, "service{…}", &[Mode::Load])?;
        let name: String = spec.get("name")?;
        let port: Option<u16> = spec.get("port")?;
        let mut declared = declaration(lua)?;
        if declared.name.is_some() {
            return Err(mlua::Error::runtime("service{…} is called once"));
        }
        declared.name = Some(name);
        declared.port = port;
        Ok(())
    })?;
    lua.globals().set("service", service)?;
    lua.globals().set(
        "null",
        Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
    )?;
    bus::install(lua)?;
    store::install(lua)?;
    log::install(lua)?;
    http::install(lua)?;
    crate::convert::install(lua)?;
    crate::decimal::install(lua)
}

fn declaration(lua: &Lua) -> mlua::Result<mlua::AppDataRefMut<'_, Declaration>> {
    lua.app_data_mut::<Declaration>()
        .ok_or_else(|| mlua::Error::runtime("the script's declarations are closed"))
}

/// Runs `f` on the call in progress.
pub(crate) fn with_call<R>(
    lua: &Lua,
    f: impl FnOnce(&mut Call) -> mlua::Result<R>,
) -> mlua::Result<R> {
    let mut call = lua
        .app_data_mut::<Call>()
        .ok_or_else(|| mlua::Error::runtime("this is only possible inside a call"))?;
    f(&mut call)
}

/// Refuses `what` unless the call is in one of `allowed`.
pub(crate) fn in_mode(lua: &Lua, what: &str, allowed: &[Mode]) -> mlua::Result<Mode> {
    with_call(lua, |call| {
        if allowed.contains(&call.mode) {
            Ok(call.mode)
        } else {
            Err(mlua::Error::runtime(format!(
                "{what} is not allowed {}",
                call.mode.describe()
            )))
        }
    })
}

/// The arguments of a function of `table` called with a colon: `bus:on(…)`
/// passes `bus` first, and `bus.on(…)` (a dot) would shift every argument
/// by one, so the receiver is checked before the rest are converted.
pub(crate) fn method_args<A: FromLuaMulti>(
    lua: &Lua,
    table: &str,
    mut args: MultiValue,
) -> mlua::Result<A> {
    if !matches!(args.pop_front(), Some(Value::Table(_))) {
        return Err(mlua::Error::runtime(format!(
            "call {table}'s functions with a colon: {table}:name(…)"
        )));
    }
    A::from_lua_multi(args, lua)
}
