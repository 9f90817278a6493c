-- wrk -s bench/wrk/get.lua URL -- PATH [TOKEN]: the same GET again and again (the baseline).
local path, token

function init(args)
  path = args[1]
  token = args[2]
end

function request()
  local headers = {}
  if token then headers.Authorization = "Bearer " .. token end
  return wrk.format("GET", path, headers, nil)
end
