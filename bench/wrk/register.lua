-- Registers a new account on every request.
package.path = "./bench/wrk/?.lua;" .. package.path
require "common"

local n = 0
local run = os.getenv("RUN") or "0"

function request()
  n = n + 1
  local body = string.format(
    '{"query":"mutation($i: RegisterInput!) { register(input: $i) { accessToken } }","variables":{"i":{"email":"bench-%s-%d-%d@example.com","password":"correct horse battery staple"}}}',
    run, id, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body) count(status, body) end
