-- Large transfers: counts, per account, the accepted transfers out of it
-- of £1,000 or more, and serves the count. A complete scripted service in
-- a screenful; run it with
--
--   scripted --script services/scripted/examples/large_transfers.lua
--
-- and a bus token whose scope lets it register as "large_transfers" and
-- read AccountCreated and ConfirmedDebit.

service{name = "large_transfers", port = 8091}

local THRESHOLD = decimal("1000.00")

bus:on("AccountCreated", function(event)
  store:put("owner/" .. event.data.account_id, event.data.username)
end)

-- Applied facts may only update the store: a debit is history, applied
-- once per rebuild of the tables, so it must never publish.
bus:on("ConfirmedDebit", function(event)
  local debit = event.data
  if debit.transaction_id == nil then return end
  if decimal(debit.amount) < THRESHOLD then return end
  local key = "large/" .. debit.account_id
  local seen = store:get(key) or {count = 0, total = "0.00"}
  store:put(key, {
    count = seen.count + 1,
    total = (decimal(seen.total) + decimal(debit.amount)):money(),
  })
end)

bus:route("GET", "/accounts/{id}/large-transfers", function(req)
  if req.user == nil then
    return http.error(http.UNAUTHORIZED, "unauthorized", "a user token is required")
  end
  local owner = store:get("owner/" .. req.params.id)
  if owner == nil or (owner ~= req.user.username and not req.user.staff) then
    return http.error(http.NOT_FOUND, "not_found", "no account " .. req.params.id)
  end
  local seen = store:get("large/" .. req.params.id) or {count = 0, total = "0.00"}
  log:info("large transfers of account", req.params.id, "read by", req.user.username)
  return {body = {account_id = tonumber(req.params.id), count = seen.count, total = seen.total}}
end)
