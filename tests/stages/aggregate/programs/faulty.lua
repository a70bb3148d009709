-- A program that misbehaves on request (tests of program_error) and can decide
-- "no events" (accepted at the unchanged version, nothing stored).
function initial_state()
  return {n = 0}
end

function decide(state, command)
  local t = command.type
  if t == "raise" then error("boom") end
  if t == "loop" then
    local i = 0
    while true do i = i + 1 end
  end
  if t == "alloc" then
    -- Doubling by concatenation: few instructions, so memory runs out before
    -- gas (string.rep would charge gas for every 32 bytes it makes).
    local s = "x"
    for i = 1, 64 do s = s .. s end
    return {}
  end
  if t == "noop" then return {} end
  if t == "bump" then return {{type = "bumped"}} end
  reject("unknown_command", "unknown command type " .. tostring(t))
end

function apply(state, event)
  return {n = state.n + 1}
end
