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
    local parts = {}
    for i = 1, 100000000 do parts[i] = string.rep("x", 1024) .. i end
    return {}
  end
  if t == "noop" then return {} end
  if t == "bump" then return {{type = "bumped"}} end
  reject("unknown_command", "unknown command type " .. tostring(t))
end

function apply(state, event)
  return {n = state.n + 1}
end
