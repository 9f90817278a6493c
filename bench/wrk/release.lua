-- wrk -s bench/wrk/release.lua URL -- SESSIONS_FILE TOKEN THREADS
-- Releases the sessions listed in SESSIONS_FILE once each: thread k takes every THREADS-th one from
-- its own offset, and stops once it has none left (wrk then reports the time it took).
local sessions = {}
local token, stride
local counter = 0

function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end

function init(args)
  for line in io.lines(args[1]) do
    sessions[#sessions + 1] = line
  end
  token = args[2]
  stride = tonumber(args[3])
  position = offset + 1
end

function request()
  local id = sessions[position]
  if id == nil then
    wrk.thread:stop()
    id = sessions[1]
  end
  position = position + stride
  return wrk.format("DELETE", "/api/v1/licenses/sessions/" .. id .. "/", { Authorization = "Bearer " .. token }, nil)
end
