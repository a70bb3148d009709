-- Transfer saga (README "A money transfer"; docs/runner.md): one instance per
-- Transfer aggregate (correlate_by: aggregate_id).
--
--   transfer_requested   -> withdraw `amount` from `from`; a `timeout` reminder
--   withdraw accepted    -> deposit to `to`
--   withdraw rejected    -> fail the transfer (nothing moved)
--   deposit accepted     -> complete the transfer; the `notify` effect
--   deposit rejected     -> compensate: deposit back to `from`; fail the transfer
--   timeout, still withdrawing -> fail the transfer; a withdraw accepted after
--                           that is deposited back to `from`
--
-- Every command result names the command it answers (command_type,
-- aggregate_id), so the saga never guesses which of its commands finished.
-- The sandbox has no clock: the timeout is a reminder the runner keeps.

local TIMEOUT_MS = 30000

local function command(id, payload)
  return {kind = "command", aggregate_type = "Account", aggregate_id = id, payload = payload}
end

local function transfer(id, payload)
  return {kind = "command", aggregate_type = "Transfer", aggregate_id = id, payload = payload}
end

local function with(state, changes)
  local s = {}
  for k, v in pairs(state) do s[k] = v end
  for k, v in pairs(changes) do s[k] = v end
  return s
end

local function on_requested(state, input)
  if state ~= nil then return {state = state} end -- already started
  local p = input.payload
  return {
    state = {transfer_id = input.aggregate_id, from = p.from, to = p.to, amount = p.amount, step = "withdrawing"},
    work = {command(p.from, {type = "withdraw", amount = p.amount})},
    schedules = {{name = "timeout", after_ms = p.timeout_ms or TIMEOUT_MS}},
  }
end

local function on_withdraw(state, input)
  local accepted = input.status == "accepted"
  if state.step == "withdrawing" then
    if accepted then
      return {
        state = with(state, {step = "depositing"}),
        work = {command(state.to, {type = "deposit", amount = state.amount})},
      }
    end
    return {
      state = with(state, {step = "failed", reason = input.code}),
      work = {transfer(state.transfer_id, {type = "fail", reason = "withdraw rejected: " .. input.code})},
      cancel = {"timeout"},
      done = true,
    }
  end
  if state.step == "timed_out" then
    if accepted then
      -- The money left `from` after the transfer failed: give it back.
      return {
        state = with(state, {step = "failed", reason = "timed out"}),
        work = {command(state.from, {type = "deposit", amount = state.amount})},
        done = true,
      }
    end
    return {state = with(state, {step = "failed", reason = "timed out"}), done = true}
  end
  return {state = state}
end

local function on_deposit(state, input)
  if state.step ~= "depositing" or input.aggregate_id ~= state.to then return {state = state} end
  if input.status == "accepted" then
    return {
      state = with(state, {step = "completed"}),
      work = {
        transfer(state.transfer_id, {type = "complete"}),
        {kind = "effect", effect = "notify",
         payload = {transfer_id = state.transfer_id, from = state.from, to = state.to, amount = state.amount}},
      },
      cancel = {"timeout"},
      done = true,
    }
  end
  return {
    state = with(state, {step = "failed", reason = "deposit rejected: " .. input.code}),
    work = {
      command(state.from, {type = "deposit", amount = state.amount}),
      transfer(state.transfer_id, {type = "fail", reason = "deposit rejected: " .. input.code}),
    },
    cancel = {"timeout"},
    done = true,
  }
end

function on_event(state, input)
  if input.kind == "event" then
    if input.event_type == "transfer_requested" then return on_requested(state, input) end
    return {state = state or {}}
  end
  if state == nil then return {state = {}} end
  if input.kind == "command_result" then
    if input.command_type == "withdraw" then return on_withdraw(state, input) end
    if input.command_type == "deposit" then return on_deposit(state, input) end
    return {state = state}
  end
  if input.kind == "reminder" and input.name == "timeout" and state.step == "withdrawing" then
    return {
      state = with(state, {step = "timed_out"}),
      work = {transfer(state.transfer_id, {type = "fail", reason = "timed out"})},
    }
  end
  return {state = state}
end
