//! One Lua VM with the script loaded: a sandbox, the API, the limits, and
//! the handlers the script declared.
//!
//! The sandbox has Lua's `table`, `string`, `math` and `utf8` libraries
//! and the safe base functions; `__gc` finalizers are refused, and
//! `string.rep` and `table.move` bounded (see [`guard_c_functions`]). There is no `io`, `os`, `package`,
//! `require`, `debug` or `coroutine`; no `load`, `loadfile` or `dofile`,
//! so no code (text or bytecode) comes from anywhere but the script; no
//! `string.dump`, `print` (use `log`) or `collectgarbage`. Once the script
//! has loaded its globals are fixed: state belongs in the store, where
//! every instance and every rebuild sees the same.

use std::collections::HashMap;

use mlua::{ChunkMode, Function, Lua, LuaOptions, RegistryKey, StdLib, Table, Value};
use superclient::{EventRecord, consistency_value};

use crate::{
    api::{self, Declaration, RouteSpec},
    bridge::Bridge,
    call::{Call, Mode, Writes},
    convert,
    error::ScriptError,
    limits::{self, Limits},
    request::{Response, RouteRequest},
};

/// A script's text and the name its errors show.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub code: String,
}

/// What the script declared at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub port: Option<u16>,
    pub applies: Vec<String>,
    pub reacts_to: Vec<String>,
    pub routes: Vec<RouteSpec>,
}

/// What a decision (a reaction or a route) came to.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub emits: Vec<superclient::Emit>,
    pub reads: Vec<superclient::Read>,
    /// The call stopped to have this key brought up to date; run it again.
    pub needs_sync: Option<String>,
    /// A route's answer.
    pub response: Option<Response>,
}

/// Which handler a decision runs.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    React(EventRecord),
    Route(usize, RouteRequest),
}

pub struct Vm {
    lua: Lua,
    limits: Limits,
    on: HashMap<String, RegistryKey>,
    react: HashMap<String, RegistryKey>,
    routes: Vec<RegistryKey>,
    /// Memory in use once loaded: a VM holding far more is renewed.
    baseline: usize,
    /// A call was stopped by a limit, or the VM kept garbage: renew it.
    pub(crate) spoiled: bool,
}

impl Vm {
    /// Runs the script's top level in a new sandbox.
    pub fn load(source: &Source, limits: Limits) -> Result<(Self, Declared), ScriptError> {
        let load_error = |error: mlua::Error| ScriptError::Load(error.to_string());
        let lua = sandbox().map_err(load_error)?;
        limits::install(&lua, limits).map_err(load_error)?;
        api::install(&lua).map_err(load_error)?;
        lua.set_app_data(Call::new(Mode::Load, None));
        let loaded = limits::begin(&lua, limits).and_then(|()| {
            lua.load(source.code.as_str())
                .set_name(format!("@{}", source.name))
                .set_mode(ChunkMode::Text)
                .exec()
        });
        lua.remove_app_data::<Call>();
        if let Err(error) = loaded {
            return Err(match limits::classify(&lua, limits, error) {
                ScriptError::Runtime(message) => ScriptError::Load(message),
                limit => limit,
            });
        }
        let declaration = lua
            .remove_app_data::<Declaration>()
            .ok_or_else(|| ScriptError::Load("the declarations were lost".to_owned()))?;
        let declared = declared(&declaration)?;
        freeze_globals(&lua).map_err(load_error)?;
        lua.gc_collect().map_err(load_error)?;
        let baseline = lua.used_memory();
        let vm = Self {
            lua,
            limits,
            on: declaration.on.into_iter().collect(),
            react: declaration.react.into_iter().collect(),
            routes: declaration.routes.into_iter().map(|(_, key)| key).collect(),
            baseline,
            spoiled: false,
        };
        Ok((vm, declared))
    }

    /// Applies `events` in order with their `bus:on` handlers; the store
    /// writes of all of them, or the index of the one that failed.
    pub(crate) fn apply(
        &mut self,
        bridge: &Bridge,
        events: &[EventRecord],
    ) -> Result<Writes, (usize, ScriptError)> {
        let mut writes = Writes::new();
        for (index, event) in events.iter().enumerate() {
            let Some(handler) = self.on.get(&event.event_type) else {
                let error =
                    ScriptError::Host(format!("no bus:on handler for {}", event.event_type));
                return Err((index, error));
            };
            let handler: Function = self
                .lua
                .registry_value(handler)
                .map_err(|error| (index, ScriptError::Host(error.to_string())))?;
            let mut call = Call::new(Mode::Apply, Some(bridge.clone()));
            call.writes = writes;
            let (result, call) = self.invoke(call, &handler, |lua| event_table(lua, event));
            writes = call.writes;
            result.map_err(|error| (index, error))?;
        }
        Ok(writes)
    }

    /// Runs a reaction or a route as a decision (or, for a `GET` route, a
    /// read), and returns what it published, read and answered.
    pub(crate) fn decide(
        &mut self,
        bridge: &Bridge,
        target: Target,
    ) -> Result<Decision, ScriptError> {
        let (handler, mode) = match &target {
            Target::React(event) => (self.react.get(&event.event_type), Mode::Decide),
            Target::Route(index, request) => (
                self.routes.get(*index),
                if request.method == "GET" {
                    Mode::Read
                } else {
                    Mode::Decide
                },
            ),
        };
        let handler: Function = handler
            .ok_or_else(|| ScriptError::Host("no such handler".to_owned()))
            .and_then(|key| {
                self.lua
                    .registry_value(key)
                    .map_err(|error| ScriptError::Host(error.to_string()))
            })?;
        let call = Call::new(mode, Some(bridge.clone()));
        let (result, call) = self.invoke(call, &handler, |lua| match &target {
            Target::React(event) => event_table(lua, event),
            Target::Route(_, request) => request.to_lua(lua),
        });
        if call.needs_sync.is_some() {
            return Ok(Decision {
                needs_sync: call.needs_sync,
                ..Decision::default()
            });
        }
        let returned = result?;
        let response =
            match target {
                Target::React(_) => None,
                Target::Route(..) => Some(Response::from_lua(&returned).map_err(|error| {
                    ScriptError::Runtime(format!("the route's answer: {error}"))
                })?),
            };
        Ok(Decision {
            emits: call.emits,
            reads: call.reads,
            needs_sync: None,
            response,
        })
    }

    /// Calls `handler` with the argument `make_argument` builds, within the
    /// limits, with `call` as the call's state; gives the state back.
    fn invoke(
        &mut self,
        call: Call,
        handler: &Function,
        make_argument: impl FnOnce(&Lua) -> mlua::Result<Value>,
    ) -> (Result<Value, ScriptError>, Call) {
        let mode = call.mode;
        self.lua.set_app_data(call);
        let result = limits::begin(&self.lua, self.limits)
            .and_then(|()| make_argument(&self.lua))
            .and_then(|argument| handler.call::<Value>(argument));
        let mut call = self
            .lua
            .remove_app_data::<Call>()
            .unwrap_or_else(|| Call::new(mode, None));
        let result = match call.host_failure.take() {
            Some(failure) => Err(ScriptError::Host(failure)),
            None => result.map_err(|error| limits::classify(&self.lua, self.limits, error)),
        };
        if let Err(error) = &result {
            self.spoiled |= error.spoils_the_vm();
        }
        self.check_memory();
        (result, call)
    }

    /// Renews a VM that holds far more than it did once loaded (a script
    /// growing a table it keeps in an upvalue, say).
    fn check_memory(&mut self) {
        if self.lua.used_memory() > self.baseline + self.limits.max_memory {
            let collected = self.lua.gc_collect();
            if collected.is_err() || self.lua.used_memory() > self.baseline + self.limits.max_memory
            {
                self.spoiled = true;
            }
        }
    }
}

/// A Lua state with only the safe libraries and base functions.
fn sandbox() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8,
        LuaOptions::default(),
    )?;
    let globals = lua.globals();
    for name in [
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "require",
        "collectgarbage",
        "print",
    ] {
        globals.raw_set(name, Value::Nil)?;
    }
    let string: Table = globals.get("string")?;
    string.raw_set("dump", Value::Nil)?;
    guard_c_functions(&lua)?;
    Ok(lua)
}

/// Wraps the functions whose work the instruction limit cannot see: C
/// code runs between two looks at the budget, and a finalizer runs with
/// hooks off (Lua turns them off during `__gc`), at whatever later call
/// happens to collect garbage.
fn guard_c_functions(lua: &Lua) -> mlua::Result<()> {
    lua.load(
        r#"
        local setmetatable, rawget, error, type = setmetatable, rawget, error, type
        local rep, move = string.rep, table.move
        local MOST = 64 * 1024 * 1024
        _G.setmetatable = function(t, mt)
          if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
            error("__gc finalizers are not allowed: they run outside the limits", 2)
          end
          return setmetatable(t, mt)
        end
        string.rep = function(s, n, sep)
          local each = #tostring(s) + #tostring(sep or "")
          if type(n) == "number" and n > 0 and (each == 0 and n > MOST or n * each > MOST) then
            error("string.rep would make more than 64 MiB", 2)
          end
          return rep(s, n, sep)
        end
        table.move = function(a1, f, e, t, a2)
          if type(f) == "number" and type(e) == "number" and e - f > MOST then
            error("table.move of more than 64 Mi elements", 2)
          end
          return move(a1, f, e, t, a2)
        end
        "#,
    )
    .set_name("=sandbox")
    .exec()
}

/// Refuses new globals from now on (a handler's `count = count + 1`
/// would live in one VM of several, and not survive a restart).
fn freeze_globals(lua: &Lua) -> mlua::Result<()> {
    let guard = lua.create_table()?;
    guard.set(
        "__newindex",
        lua.create_function(|_, (_, name): (Value, Value)| -> mlua::Result<()> {
            Err(mlua::Error::runtime(format!(
                "cannot set the global {}: globals are fixed once the script has loaded; keep \
                 state in the store",
                name.to_string().unwrap_or_default()
            )))
        })?,
    )?;
    guard.set("__metatable", false)?;
    lua.globals().set_metatable(Some(guard))
}

/// The declarations, checked: a name, and a handler for every type.
fn declared(declaration: &Declaration) -> Result<Declared, ScriptError> {
    let name = declaration.name.clone().ok_or_else(|| {
        ScriptError::Load("the script must say who it is: service{name = \"…\"}".to_owned())
    })?;
    let valid = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if !valid {
        return Err(ScriptError::Load(format!(
            "the service's name {name:?} is its schema's and its bus client type's: 1 to 40 \
             lowercase letters and _"
        )));
    }
    Ok(Declared {
        name,
        port: declaration.port,
        applies: declaration.on.keys().cloned().collect(),
        reacts_to: declaration.react.keys().cloned().collect(),
        routes: declaration
            .routes
            .iter()
            .map(|(spec, _)| spec.clone())
            .collect(),
    })
}

/// An event as a handler sees it.
fn event_table(lua: &Lua, event: &EventRecord) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(0, 8)?;
    table.set("id", event.event_id.to_string())?;
    table.set("type", event.event_type.as_str())?;
    table.set("key", event.consistency.key.as_str())?;
    table.set("value", consistency_value(event))?;
    table.set("position", event.position)?;
    table.set("correlation_id", event.correlation_id.to_string())?;
    table.set("causation_id", event.causation_id.map(|id| id.to_string()))?;
    let data: serde_json::Value = serde_json::from_str(event.data.get())
        .map_err(|error| mlua::Error::runtime(format!("the event's data: {error}")))?;
    table.set("data", convert::to_lua(lua, &data)?)?;
    Ok(Value::Table(table))
}
