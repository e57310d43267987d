-- wrk script: balance reads of random accounts. Args: ACCOUNTS
dofile(os.getenv("WRK_REPORT") or "bench/wrk_report.lua")
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("LEDGER_BENCH_KEY") or "")
local threads = {}
function setup(thread) thread:set("lane", #threads); table.insert(threads, thread) end
function init(args)
  accounts = tonumber(args[1] or "10000")
  math.randomseed(os.time() + lane)
end
function request()
  return wrk.format("GET", string.format("/v1/accounts/bench-%05d/balance", math.random(0, accounts - 1)))
end
