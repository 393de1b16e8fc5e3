-- Nectar: loyalty points on transfers, redeemed as cashback.
--
-- * Every accepted transfer out of an account earns its owner 1 point for
--   each whole £10 it moves: £9.99 earns nothing, £10.00 and £19.99 earn 1.
-- * Points are redeemed as cashback at 1p a point: the points leave the
--   account's Nectar balance and the cash arrives in the account in one
--   atomic message, and the points' key is pinned, so they are never
--   spent twice.
--
-- Run it with the scripted host: `scripted --script services/nectar/nectar.lua`.

service{name = "nectar", port = 8086}

-- Pence per point, and pounds per point earned.
local PENCE_PER_POINT = 100
local POUNDS_PER_POINT = 10
-- Most points one redemption may take (£1,000,000 of cashback).
local MAX_REDEMPTION = 100000000

local function points_key(account_id) return "points/" .. account_id end
local function owner_key(account_id) return "owner/" .. account_id end
local function holding_key(username, account_id)
  return "holds/" .. username .. "/" .. account_id
end
local function nectar_key(account_id) return "nectar-" .. account_id end

-- Facts, applied exactly once, in order, live and in a rebuild alike.

bus:on("AccountCreated", function(event)
  store:put(owner_key(event.data.account_id), event.data.username)
  store:put(holding_key(event.data.username, event.data.account_id), true)
end)

bus:on("NectarCredit", function(event)
  local key = points_key(event.data.account_id)
  store:put(key, (store:get(key) or 0) + event.data.points)
end)

bus:on("NectarDebit", function(event)
  local key = points_key(event.data.account_id)
  local left = (store:get(key) or 0) - event.data.points
  if left < 0 then
    -- Never published: a redemption pins the balance it was decided on.
    error("NectarDebit takes " .. event.data.points .. " points from account "
      .. event.data.account_id .. ", which has only " .. (left + event.data.points))
  end
  store:put(key, left)
end)

-- An accepted transfer's debit earns its sender points. A debit without a
-- transaction is a withdrawal, which earns nothing.

bus:react("ConfirmedDebit", function(event)
  local debit = event.data
  if debit.transaction_id == nil then return end
  local points = (decimal(debit.amount) / POUNDS_PER_POINT):floor():to_integer()
  if points < 1 then return end
  -- No value: credits on one key do not depend on each other. The event's
  -- id derives from the debit's, so a second run publishes nothing new.
  bus:publish{
    type = "NectarCredit",
    key = nectar_key(debit.account_id),
    data = {account_id = debit.account_id, points = points,
            transaction_id = debit.transaction_id},
  }
end)

-- The routes: a customer's points, and redeeming them.

-- The account a request names and who asks; or the refusal.
local function asked(req)
  local id = tonumber(req.params.id)
  if math.type(id) ~= "integer" or id < 1 or tostring(id) ~= req.params.id then
    return nil, http.error(http.BAD_REQUEST, "invalid_input",
      "an account id is a whole number from 1")
  end
  if req.user == nil then
    return nil, http.error(http.UNAUTHORIZED, "unauthorized",
      "a user token is required (X-User-Token)")
  end
  return id
end

-- The account's owner, when the user may see the account; or the refusal.
local function visible(req, id)
  local owner = store:get(owner_key(id))
  if owner == nil or (owner ~= req.user.username and not req.user.staff) then
    return nil, http.error(http.NOT_FOUND, "not_found", "no account " .. id)
  end
  return owner
end

local function cash(points)
  return (decimal(points) / PENCE_PER_POINT):money()
end

bus:route("GET", "/accounts/{id}/points", function(req)
  local id, refusal = asked(req)
  if refusal then return refusal end
  local _, hidden = visible(req, id)
  if hidden then return hidden end
  local points = store:get(points_key(id)) or 0
  -- The version of the points read (nil before the first event): the web
  -- server waits for it before telling a page that the points changed.
  return {body = {account_id = id, points = points, cash_value = cash(points),
                  version = bus:version(nectar_key(id))}}
end)

-- Every account of a customer with its points: the overview's column.
bus:route("GET", "/users/{username}/points", function(req)
  if req.user == nil then
    return http.error(http.UNAUTHORIZED, "unauthorized",
      "a user token is required (X-User-Token)")
  end
  local username = req.params.username
  if username ~= req.user.username and not req.user.staff then
    return http.error(http.NOT_FOUND, "not_found", "no customer " .. username)
  end
  local accounts, total = array(), 0
  for _, holding in ipairs(store:scan("holds/" .. username .. "/")) do
    local id = tonumber(holding.key:match("/(%d+)$"))
    local points = store:get(points_key(id)) or 0
    total = total + points
    accounts[#accounts + 1] = {account_id = id, points = points, cash_value = cash(points)}
  end
  table.sort(accounts, function(a, b) return a.account_id < b.account_id end)
  return {body = {username = username, accounts = accounts, points = total,
                  cash_value = cash(total)}}
end)

bus:route("POST", "/accounts/{id}/redemptions", function(req)
  local id, refusal = asked(req)
  if refusal then return refusal end
  -- The version before any read of the store: it brings the points up to
  -- date, and the debit pins them.
  local version = bus:version(nectar_key(id))
  local owner, hidden = visible(req, id)
  if hidden then return hidden end
  if req.user.staff or owner ~= req.user.username then
    return http.error(http.FORBIDDEN, "forbidden",
      "bank staff may look at customers' accounts but not act for them")
  end
  local wanted = type(req.body) == "table" and req.body.points
  if math.type(wanted) ~= "integer" or wanted < 1 or wanted > MAX_REDEMPTION then
    return http.error(http.BAD_REQUEST, "invalid_input",
      "points is a whole number from 1 to " .. MAX_REDEMPTION)
  end
  local points = store:get(points_key(id)) or 0
  if wanted > points then
    return http.error(http.UNPROCESSABLE_ENTITY, "insufficient_points",
      "insufficient points: the account has " .. points)
  end
  local cashback = cash(wanted)
  bus:publish{
    {type = "NectarDebit", key = nectar_key(id), value = next_value(version),
     data = {account_id = id, points = wanted, redemption_id = req.id}},
    {type = "ConfirmedCredit", key = "acc-" .. id,
     data = {account_id = id, amount = cashback,
             note = "Nectar cashback: " .. wanted .. " points", transaction_id = null}},
  }
  return {status = http.CREATED, body = {
    account_id = id, redemption_id = req.id, points_redeemed = wanted,
    cashback = cashback, points = points - wanted, cash_value = cash(points - wanted),
  }}
end)
