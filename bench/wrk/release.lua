-- wrk -s bench/wrk/release.lua URL -- SESSIONS_FILE TOKEN
-- Releases the sessions listed in SESSIONS_FILE, each thread taking every THREADS-th one from its own
-- offset, so no session is released twice; once a thread runs out it asks for a released one again
-- (a 404, counted apart by the bench).
local sessions = {}
local token
local threads = 0
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
  local id = sessions[position] or sessions[1]
  position = position + stride
  return wrk.format("DELETE", "/api/v1/licenses/sessions/" .. id .. "/", { Authorization = "Bearer " .. token }, nil)
end
