-- POSTs BODY (an environment variable) with an optional bearer TOKEN.
package.path = "./bench/wrk/?.lua;" .. package.path
require "common"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = os.getenv("BODY")

function response(status, headers, body) count(status, body) end
