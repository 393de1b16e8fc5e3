//! `http`: status codes by name, and `http.error(status, code, message)`,
//! an answer in the services' error shape
//! (`{"error": {"code": …, "message": …}}`).
//!
//! ```lua
//! return {status = http.CREATED, body = {points = points}}
//! return http.error(http.UNPROCESSABLE_ENTITY, "insufficient_points", "only 12 points")
//! ```

use mlua::Lua;

pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let http = lua.create_table()?;
    for (name, code) in [
        ("OK", 200),
        ("CREATED", 201),
        ("ACCEPTED", 202),
        ("NO_CONTENT", 204),
        ("BAD_REQUEST", 400),
        ("UNAUTHORIZED", 401),
        ("FORBIDDEN", 403),
        ("NOT_FOUND", 404),
        ("CONFLICT", 409),
        ("UNPROCESSABLE_ENTITY", 422),
        ("TOO_MANY_REQUESTS", 429),
        ("INTERNAL_SERVER_ERROR", 500),
        ("SERVICE_UNAVAILABLE", 503),
    ] {
        http.set(name, code)?;
    }
    http.set(
        "error",
        lua.create_function(|lua, (status, code, message): (u16, String, String)| {
            let answer = lua.create_table()?;
            answer.set("status", status)?;
            let error = lua.create_table()?;
            error.set("code", code)?;
            error.set("message", message)?;
            let body = lua.create_table()?;
            body.set("error", error)?;
            answer.set("body", body)?;
            Ok(answer)
        })?,
    )?;
    lua.globals().set("http", http)
}
