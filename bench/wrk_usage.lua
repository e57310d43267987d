-- wrk script: one usage post per request, a unique idempotency key each, random accounts.
-- wrk -t4 -c4 -d20s -s bench/wrk_usage.lua http://HOST:PORT -- ACCOUNTS RUN_ID
dofile(os.getenv("WRK_REPORT") or "bench/wrk_report.lua")
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("LEDGER_BENCH_KEY") or "")
local threads = {}

function setup(thread)
  thread:set("lane", #threads)
  table.insert(threads, thread)
end

function init(args)
  accounts = tonumber(args[1] or "10000")
  run_id = args[2] or tostring(os.time())
  sent = 0
  math.randomseed(os.time() + lane)
end

function request()
  sent = sent + 1
  local account = string.format("bench-%05d", math.random(0, accounts - 1))
  local body = string.format(
    '{"idempotency_key":"%s-%d-%d","product":"sms","quantity":"1","unit_price":"0.0042"}', run_id, lane, sent)
  -- headers given here replace wrk.headers: the key goes in again
  return wrk.format("POST", "/v1/accounts/" .. account .. "/usage",
                    {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}, body)
end
