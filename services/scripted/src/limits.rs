//! Limits on one call of a script: Lua instructions and memory.
//!
//! Instructions are counted by a hook every [`STEP`] instructions; the
//! hook fails the call once the budget is spent. From then on it fails
//! every instruction, so a script that catches the error with `pcall` is
//! stopped at its first instruction outside the `pcall`. (Failing only
//! every [`STEP`] instructions would not do: the count is exact, so a loop
//! around `pcall` can be hit inside the `pcall` every time.) Memory is capped by the allocator: each call may use
//! `max_memory` bytes above what the VM held when the call began.
//!
//! A C function runs between hooks: the sandbox bounds the ones that can
//! loop long without allocating (`string.rep`, `table.move`, see
//! [`crate::vm`]); a pathological pattern match is not bounded, and its
//! allocations are still capped.

use mlua::{Debug, HookTriggers, Lua, VmState};

use crate::error::ScriptError;

/// Instructions between two looks at the budget.
const STEP: u32 = 10_000;

/// Per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_instructions: u64,
    /// Bytes a call may allocate above what the VM held before it.
    pub max_memory: usize,
}

impl Default for Limits {
    /// Ten million instructions (tens of milliseconds) and 16 MiB: far
    /// beyond what handling one event or request takes.
    fn default() -> Self {
        Self {
            max_instructions: 10_000_000,
            max_memory: 16 << 20,
        }
    }
}

/// The instruction budget of the call in progress (a VM's app data).
struct Budget {
    used: u64,
    max: u64,
    exceeded: bool,
}

/// Installs the instruction hook; the budget is set by [`begin`].
pub(crate) fn install(lua: &Lua, limits: Limits) -> mlua::Result<()> {
    lua.set_app_data(Budget {
        used: 0,
        max: limits.max_instructions,
        exceeded: false,
    });
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(STEP), count)
}

/// The hook: counts, and fails the call once the budget is spent.
fn count(lua: &Lua, _: &Debug) -> mlua::Result<VmState> {
    let spent = match lua.app_data_mut::<Budget>() {
        Some(mut budget) if !budget.exceeded => {
            budget.used += u64::from(STEP);
            budget.exceeded = budget.used > budget.max;
            budget.exceeded
        }
        Some(_) => true,
        None => false,
    };
    if !spent {
        return Ok(VmState::Continue);
    }
    // Every instruction fails from now on; the VM is thrown away after
    // the call, so the hook is never set back.
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(1), count)?;
    Err(mlua::Error::runtime("instruction limit reached"))
}

/// Starts a call's budgets: no instructions used, and `max_memory` above
/// what the VM holds now.
pub(crate) fn begin(lua: &Lua, limits: Limits) -> mlua::Result<()> {
    if let Some(mut budget) = lua.app_data_mut::<Budget>() {
        budget.used = 0;
        budget.exceeded = false;
    }
    lua.set_memory_limit(lua.used_memory() + limits.max_memory)?;
    Ok(())
}

/// What a failed call's error means: a limit, or the script's own error.
pub(crate) fn classify(lua: &Lua, limits: Limits, error: mlua::Error) -> ScriptError {
    let exceeded = lua
        .app_data_ref::<Budget>()
        .is_some_and(|budget| budget.exceeded);
    if exceeded {
        return ScriptError::Instructions {
            max: limits.max_instructions,
        };
    }
    if is_memory_error(&error) {
        return ScriptError::Memory {
            max_mib: limits.max_memory >> 20,
        };
    }
    ScriptError::Runtime(error.to_string())
}

fn is_memory_error(error: &mlua::Error) -> bool {
    match error {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        _ => false,
    }
}
