-- Each thread (one connection each) refreshes its own session again and again, using the
-- refresh token of the previous answer: a real rotation chain, no reuse.
package.path = "./bench/wrk/?.lua;" .. package.path
require "common"

local token

function request()
  if not token then
    local all = os.getenv("TOKENS")
    local i = 0
    for t in string.gmatch(all, "[^,]+") do
      i = i + 1
      if i == id then token = t end
    end
  end
  local body = '{"query":"mutation($i: RefreshTokenInput!) { refreshToken(input: $i) { accessToken refreshToken } }","variables":{"i":{"refreshToken":"' .. token .. '"}}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if count(status, body) then
    token = string.match(body, '"refreshToken":"([^"]+)"')
  end
end
