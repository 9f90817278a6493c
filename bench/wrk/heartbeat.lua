-- wrk -s bench/wrk/heartbeat.lua URL -- SESSIONS_FILE TOKEN
-- Heartbeats the sessions listed in SESSIONS_FILE (one id a line), each thread going round them.
local sessions = {}
local token

function init(args)
  for line in io.lines(args[1]) do
    sessions[#sessions + 1] = line
  end
  token = args[2]
  position = math.random(#sessions)
end

function request()
  position = position % #sessions + 1
  return wrk.format("PATCH", "/api/v1/licenses/sessions/" .. sessions[position] .. "/heartbeat/",
    { Authorization = "Bearer " .. token }, nil)
end
