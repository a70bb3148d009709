-- Transfer aggregate: the money-transfer example (README "A money transfer").
-- A transfer is requested once, then completed or failed once; the Transfer
-- saga (transfer_saga.lua) moves the money between the two accounts.
--
-- Commands -> events:
--   request_transfer {from, to, amount[, timeout_ms]} -> transfer_requested {from, to, amount[, timeout_ms]}
--   complete         {}                              -> transfer_completed {}
--   fail             {reason}                        -> transfer_failed {reason}
-- Rejections: transfer_already_requested, invalid_transfer, transfer_not_pending, unknown_command.
--
-- State: {status = "new" | "requested" | "completed" | "failed", from, to, amount, reason}.

local MAX = 9007199254740991
local ID = "^[A-Za-z0-9_-]+$"

local function account_id(value, field)
  if type(value) ~= "string" or #value == 0 or #value > 128 or not string.find(value, ID) then
    reject("invalid_transfer", field .. " must be an account id ([A-Za-z0-9_-]{1,128})")
  end
  return value
end

local function pending(state)
  if state.status ~= "requested" then
    reject("transfer_not_pending", "the transfer is " .. state.status)
  end
end

local handlers = {
  request_transfer = function(state, command)
    if state.status ~= "new" then reject("transfer_already_requested", "the transfer is " .. state.status) end
    local from = account_id(command.from, "from")
    local to = account_id(command.to, "to")
    if from == to then reject("invalid_transfer", "from and to must differ") end
    local amount = command.amount
    if math.type(amount) ~= "integer" or amount < 1 or amount > MAX then
      reject("invalid_transfer", "amount must be an integer from 1 to " .. MAX)
    end
    local timeout = command.timeout_ms
    if timeout ~= nil and (math.type(timeout) ~= "integer" or timeout < 0 or timeout > 86400000) then
      reject("invalid_transfer", "timeout_ms must be an integer from 0 to 86400000")
    end
    return {{type = "transfer_requested", from = from, to = to, amount = amount, timeout_ms = timeout}}
  end,

  complete = function(state, _)
    pending(state)
    return {{type = "transfer_completed"}}
  end,

  fail = function(state, command)
    pending(state)
    local reason = command.reason
    if type(reason) ~= "string" then reason = "failed" end
    return {{type = "transfer_failed", reason = reason}}
  end,
}

function initial_state()
  return {status = "new"}
end

function decide(state, command)
  local handler = handlers[command.type]
  if handler == nil then reject("unknown_command", "unknown command type " .. tostring(command.type)) end
  return handler(state, command)
end

function apply(state, event)
  local t = event.type
  if t == "transfer_requested" then
    return {status = "requested", from = event.from, to = event.to, amount = event.amount}
  elseif t == "transfer_completed" then
    return {status = "completed", from = state.from, to = state.to, amount = state.amount}
  elseif t == "transfer_failed" then
    return {status = "failed", from = state.from, to = state.to, amount = state.amount, reason = event.reason}
  end
  error("unknown event type " .. tostring(t))
end
