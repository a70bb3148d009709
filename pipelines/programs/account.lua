-- Account aggregate: the example domain of docs/contract.md ("Example domain: Account").
--
-- Commands -> events (one event per accepted command; event.type == event_type):
--   open_account  {initial_balance}  -> account_opened {initial_balance}
--   deposit       {amount}           -> deposited {amount}
--   withdraw      {amount}           -> withdrawn {amount}
--   close_account {}                 -> account_closed {}
-- Any other command type: unknown_command.
--
-- Check order (the first failing check wins): the account's state first, then
-- the payload, then the business rule.
--   open_account : account_already_open, invalid_amount
--   deposit      : account_not_open, invalid_amount (also when the balance would exceed MAX)
--   withdraw     : account_not_open, invalid_amount, insufficient_funds
--   close_account: account_not_open, balance_not_zero
--
-- Amounts are integers (a JSON number without fraction or exponent): 1.5, 5.0,
-- "5", true, null or a missing field are invalid_amount. Range: initial_balance
-- 0..MAX, amount 1..MAX, balance never above MAX (MAX = 2^53 - 1, exact in every
-- JSON client).
--
-- A closed account is simply not open: deposit, withdraw and close_account are
-- account_not_open, and open_account opens it again (a closed account's balance
-- is 0, because close_account requires it).
--
-- State: {open = bool, balance = integer}; initial {open = false, balance = 0}.

local MAX = 9007199254740991
local math_type = math.type

-- A short, deterministic description of a payload value for messages.
local function describe(value)
  local t = type(value)
  if value == nil then return "nothing" end
  if value == null then return "null" end
  if t == "string" then return string.format("%q", value) end
  if t == "number" or t == "boolean" then return tostring(value) end
  return "a " .. t
end

local function amount_of(value, min, field)
  if math_type(value) ~= "integer" then
    reject("invalid_amount", field .. " must be an integer, got " .. describe(value))
  end
  if value < min or value > MAX then
    reject("invalid_amount", field .. " " .. value .. " is outside " .. min .. ".." .. MAX)
  end
  return value
end

local function must_be_open(state)
  if not state.open then reject("account_not_open", "the account is not open") end
end

local handlers = {
  open_account = function(state, command)
    if state.open then reject("account_already_open", "the account is already open") end
    local initial = amount_of(command.initial_balance, 0, "initial_balance")
    return {{type = "account_opened", initial_balance = initial}}
  end,

  deposit = function(state, command)
    must_be_open(state)
    local amount = amount_of(command.amount, 1, "amount")
    if amount > MAX - state.balance then
      reject("invalid_amount", "balance " .. state.balance .. " + " .. amount .. " would exceed " .. MAX)
    end
    return {{type = "deposited", amount = amount}}
  end,

  withdraw = function(state, command)
    must_be_open(state)
    local amount = amount_of(command.amount, 1, "amount")
    if state.balance < amount then
      reject("insufficient_funds", "balance " .. state.balance .. " < " .. amount)
    end
    return {{type = "withdrawn", amount = amount}}
  end,

  close_account = function(state, _)
    must_be_open(state)
    if state.balance ~= 0 then
      reject("balance_not_zero", "balance " .. state.balance .. " must be 0 to close the account")
    end
    return {{type = "account_closed"}}
  end,
}

function initial_state()
  return {open = false, balance = 0}
end

function decide(state, command)
  local handler = handlers[command.type]
  if handler == nil then
    reject("unknown_command", "unknown command type " .. describe(command.type))
  end
  return handler(state, command)
end

-- apply returns a fresh table: a failing apply never leaves a half-changed state.
function apply(state, event)
  local t = event.type
  if t == "account_opened" then
    return {open = true, balance = event.initial_balance}
  elseif t == "deposited" then
    return {open = state.open, balance = state.balance + event.amount}
  elseif t == "withdrawn" then
    return {open = state.open, balance = state.balance - event.amount}
  elseif t == "account_closed" then
    return {open = false, balance = state.balance}
  end
  error("unknown event type " .. describe(t))
end
