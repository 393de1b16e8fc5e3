//! Exact decimals for money: `decimal("12.34")`. A Lua number with a
//! fraction is a binary float, which cannot hold 0.10 exactly; amounts in
//! a script are decimals from end to end, and a float is refused wherever
//! one would meet money.
//!
//! ```lua
//! local amount = decimal(event.data.amount)   -- "19.99"
//! local points = (amount / 10):floor()        -- 1
//! local cash = (decimal(250) / 100):money()   -- "2.50"
//! ```

use mlua::{AnyUserData, Lua, MetaMethod, UserData, UserDataMethods, Value};
use rust_decimal::{Decimal, RoundingStrategy};

/// A decimal as Lua sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LuaDecimal(pub Decimal);

/// `decimal(x)`: from a string ("12.34") or an integer; never a float.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let make = lua.create_function(|_, value: Value| operand(&value).map(LuaDecimal))?;
    lua.globals().set("decimal", make)
}

/// The decimal a Lua value stands for in arithmetic with a decimal.
fn operand(value: &Value) -> mlua::Result<Decimal> {
    match value {
        Value::Integer(integer) => Ok(Decimal::from(*integer)),
        Value::String(text) => {
            let text = text.to_str()?;
            text.trim()
                .parse::<Decimal>()
                .map_err(|_| mlua::Error::runtime(format!("{:?} is not a decimal number", &*text)))
        }
        Value::UserData(data) => Ok(data.borrow::<LuaDecimal>()?.0),
        Value::Number(float) => Err(mlua::Error::runtime(format!(
            "{float} is a float, which cannot hold money exactly: use decimal(\"{float}\")"
        ))),
        other => Err(mlua::Error::runtime(format!(
            "a {} is not a decimal number",
            other.type_name()
        ))),
    }
}

fn overflow() -> mlua::Error {
    mlua::Error::runtime("decimal overflow")
}

impl UserData for LuaDecimal {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        let arithmetic = |op: fn(Decimal, Decimal) -> Option<Decimal>| {
            move |_: &Lua, (left, right): (Value, Value)| -> mlua::Result<LuaDecimal> {
                op(operand(&left)?, operand(&right)?)
                    .map(LuaDecimal)
                    .ok_or_else(overflow)
            }
        };
        methods.add_meta_function(MetaMethod::Add, arithmetic(Decimal::checked_add));
        methods.add_meta_function(MetaMethod::Sub, arithmetic(Decimal::checked_sub));
        methods.add_meta_function(MetaMethod::Mul, arithmetic(Decimal::checked_mul));
        methods.add_meta_function(
            MetaMethod::Div,
            |_, (left, right): (Value, Value)| -> mlua::Result<LuaDecimal> {
                let divisor = operand(&right)?;
                if divisor.is_zero() {
                    return Err(mlua::Error::runtime("division by zero"));
                }
                operand(&left)?
                    .checked_div(divisor)
                    .map(LuaDecimal)
                    .ok_or_else(overflow)
            },
        );
        methods.add_meta_method(MetaMethod::Unm, |_, this, ()| Ok(LuaDecimal(-this.0)));
        // Lua calls __eq only when both sides are tables or userdata:
        // compare with decimal(5), not 5.
        methods.add_meta_function(MetaMethod::Eq, |_, (left, right): (Value, Value)| {
            Ok(operand(&left)? == operand(&right)?)
        });
        methods.add_meta_function(MetaMethod::Lt, |_, (left, right): (Value, Value)| {
            Ok(operand(&left)? < operand(&right)?)
        });
        methods.add_meta_function(MetaMethod::Le, |_, (left, right): (Value, Value)| {
            Ok(operand(&left)? <= operand(&right)?)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
        methods.add_meta_function(MetaMethod::Concat, |_, (left, right): (Value, Value)| {
            Ok(format!("{}{}", text_of(&left)?, text_of(&right)?))
        });
        methods.add_method("floor", |_, this, ()| Ok(LuaDecimal(this.0.floor())));
        methods.add_method("ceil", |_, this, ()| Ok(LuaDecimal(this.0.ceil())));
        // Banker's rounding would surprise a customer: halves go up.
        methods.add_method("round", |_, this, places: u32| {
            Ok(LuaDecimal(this.0.round_dp_with_strategy(
                places,
                RoundingStrategy::MidpointAwayFromZero,
            )))
        });
        methods.add_method("money", |_, this, ()| money(this.0).map(LuaDecimal));
        methods.add_method("to_integer", |_, this, ()| to_integer(this.0));
        methods.add_method("is_zero", |_, this, ()| Ok(this.0.is_zero()));
        methods.add_method("is_negative", |_, this, ()| {
            Ok(this.0.is_sign_negative() && !this.0.is_zero())
        });
    }
}

/// The amount with exactly two places ("2.50"); refused when that would
/// drop a part of a penny.
fn money(value: Decimal) -> mlua::Result<Decimal> {
    let mut rescaled = value;
    rescaled.rescale(2);
    if rescaled != value {
        return Err(mlua::Error::runtime(format!(
            "{value} is not a whole number of pennies: round it first"
        )));
    }
    Ok(rescaled)
}

/// The whole number the decimal is; refused when it has a fraction.
fn to_integer(value: Decimal) -> mlua::Result<i64> {
    if !value.fract().is_zero() {
        return Err(mlua::Error::runtime(format!(
            "{value} is not a whole number: floor or round it first"
        )));
    }
    i64::try_from(value.trunc()).map_err(|_| overflow())
}

fn text_of(value: &Value) -> mlua::Result<String> {
    match value {
        Value::String(text) => Ok(text.to_str()?.to_owned()),
        Value::Integer(integer) => Ok(integer.to_string()),
        Value::UserData(_) => Ok(operand(value)?.to_string()),
        other => Err(mlua::Error::runtime(format!(
            "cannot join a {} to text",
            other.type_name()
        ))),
    }
}

/// The decimal inside `data`, if it is one.
pub(crate) fn from_userdata(data: &AnyUserData) -> Option<Decimal> {
    data.borrow::<LuaDecimal>().ok().map(|decimal| decimal.0)
}
