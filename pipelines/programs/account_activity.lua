-- account_activity view (pipelines/projection.yaml): one row per account
-- with counts and totals of its activity. project(row, event) gets the
-- whole Event envelope (event_type, payload, aggregate_id, version, ...)
-- and returns the new row, or nil to delete it (a closed account's row goes).
function project(row, event)
  local p = event.payload
  local r = row or {deposits = 0, withdrawals = 0, deposited = 0, withdrawn = 0}
  local t = event.event_type
  if t == "account_opened" then
    r.opened_at = event.timestamp
  elseif t == "deposited" then
    r.deposits = r.deposits + 1
    r.deposited = r.deposited + p.amount
  elseif t == "withdrawn" then
    r.withdrawals = r.withdrawals + 1
    r.withdrawn = r.withdrawn + p.amount
  elseif t == "account_closed" then
    return nil
  end
  return r
end
