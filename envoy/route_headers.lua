-- Routing-decision headers for unary chat completions (envoy.filters.http.lua, placed
-- AFTER the gRPC-JSON transcoder, so it sees the router's gRPC response on the way back).
--
-- The router reports where a unary completion was served (x-llmgw-model, -provider,
-- -deployment, -route, -attempts, ...) in gRPC trailing metadata: sending headers ahead of
-- the answer would leave a moment in which a dying router replica has started a response
-- Envoy can no longer retry. Trailers never reach REST clients, so this filter copies the
-- x-llmgw-* and x-ratelimit-* trailers into the response headers (gRPC clients see both). Only unary
-- CreateChatCompletion responses wait for their trailers; streams pass untouched (their
-- routing headers are sent with the first chunk).

local UNARY_CHAT = "/llmgw.router.v1.RouterService/CreateChatCompletion"
local NAMESPACE = "llmgw.route_headers"

function envoy_on_request(request_handle)
  if request_handle:headers():get(":path") == UNARY_CHAT then
    request_handle:streamInfo():dynamicMetadata():set(NAMESPACE, "unary_chat", true)
  end
end

function envoy_on_response(response_handle)
  local flags = response_handle:streamInfo():dynamicMetadata():get(NAMESPACE)
  if flags == nil or not flags["unary_chat"] then
    return
  end
  -- Buffering the (small, unary) body holds the headers back until the trailers came.
  response_handle:body()
  local trailers = response_handle:trailers()
  if trailers == nil then
    return
  end
  local found = {}
  for key, value in pairs(trailers) do
    if string.sub(key, 1, 8) == "x-llmgw-" or string.sub(key, 1, 12) == "x-ratelimit-" then
      found[key] = value
    end
  end
  local headers = response_handle:headers()
  for key, value in pairs(found) do
    headers:replace(key, value)
  end
end
