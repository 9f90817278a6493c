-- wrk -s bench/wrk/acquire.lua URL -- LICENSE_KEY TOKEN PREFIX
-- Acquires a seat for a new machine on every request (hardware id PREFIX-<thread>-<n>).
local key, token, prefix
local n = 0
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function init(args)
  key, token, prefix = args[1], args[2], args[3]
end

function request()
  n = n + 1
  local body = '{"license_key":"' .. key .. '","hardware_id":"' .. prefix .. '-' .. thread_id .. '-' .. n ..
    '","client_version":"bench-1.0"}'
  return wrk.format("POST", "/api/v1/licenses/acquire/",
    { Authorization = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
