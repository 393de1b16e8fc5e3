//! A route's request as the script sees it, and the answer it returns.
//!
//! ```lua
//! bus:route("GET", "/accounts/{id}/points", function(req)
//!   -- req.method, req.path, req.params.id, req.query.x, req.body (a
//!   -- table, or nil), req.user ({username = "ann", staff = false}, or nil
//!   -- when no user token came), req.id (a publishing route's id for what
//!   -- it creates: the same on every retry of the request)
//!   return {status = http.OK, body = {points = 12}}
//! end)
//! ```
//!
//! An answer is `{status = …, body = …}` (the status defaults to 200), or
//! `http.error(status, code, message)` for the services' error shape.
//! `nil` answers 204.

use std::collections::BTreeMap;

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::Value;

use crate::convert;

#[derive(Debug, Clone)]
pub(crate) struct RouteRequest {
    pub method: String,
    /// The path as requested.
    pub path: String,
    pub params: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub user: Option<User>,
    pub id: Option<uuid::Uuid>,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub username: String,
    pub staff: bool,
}

impl RouteRequest {
    pub(crate) fn to_lua(&self, lua: &Lua) -> mlua::Result<LuaValue> {
        let table = lua.create_table_with_capacity(0, 7)?;
        table.set("method", self.method.as_str())?;
        table.set("path", self.path.as_str())?;
        table.set("params", lua.create_table_from(self.params.clone())?)?;
        table.set("query", lua.create_table_from(self.query.clone())?)?;
        let body = match &self.body {
            Some(body) => convert::to_lua(lua, body)?,
            None => LuaValue::Nil,
        };
        table.set("body", body)?;
        if let Some(user) = &self.user {
            let who = lua.create_table_with_capacity(0, 2)?;
            who.set("username", user.username.as_str())?;
            who.set("staff", user.staff)?;
            table.set("user", who)?;
        }
        table.set("id", self.id.map(|id| id.to_string()))?;
        Ok(LuaValue::Table(table))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    pub(crate) fn from_lua(value: &LuaValue) -> mlua::Result<Self> {
        let table: &Table = match value {
            LuaValue::Nil => {
                return Ok(Self {
                    status: 204,
                    body: Value::Null,
                });
            }
            LuaValue::Table(table) => table,
            other => {
                return Err(mlua::Error::runtime(format!(
                    "return {{status = …, body = …}}, not a {}",
                    other.type_name()
                )));
            }
        };
        // Raw reads: the answer is read after the call's limits ended, so
        // no metamethod of the script's may run here.
        let status = match table.raw_get::<LuaValue>("status")? {
            LuaValue::Nil => 200,
            LuaValue::Integer(status) if (200..=599).contains(&status) => status as u16,
            other => {
                return Err(mlua::Error::runtime(format!(
                    "the status is an HTTP status from 200 to 599, not {other:?}"
                )));
            }
        };
        let body = convert::to_json(&table.raw_get::<LuaValue>("body")?)?;
        Ok(Self { status, body })
    }
}
