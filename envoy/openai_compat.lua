-- Edge checks and REST conveniences on the public listener (envoy.filters.http.lua,
-- placed BEFORE the gRPC-JSON transcoder; envoy_config.py inlines this file into the
-- Envoy config after a line that sets MAX_REQUEST_HEADER_BYTES from envoy/topology.yaml).
--
-- Edge checks, for every request (REST and gRPC), answered here so that no service sees
-- the request:
--   * request headers above MAX_REQUEST_HEADER_BYTES (counted as HTTP/2 and gRPC count
--     them: name + value + 32 bytes each) -> HTTP 431 / gRPC INVALID_ARGUMENT. Left to
--     the services, gRPC's own metadata limit would answer RESOURCE_EXHAUSTED (HTTP 429)
--     with every header name in the message;
--   * a grpc-timeout header that is not 1-8 digits and a unit (H M S m u n) -> HTTP 400
--     / INVALID_ARGUMENT (the services' gRPC stack would answer INTERNAL, HTTP 500);
--   * REST only: a URL whose percent-decoded path or query is not UTF-8 -> HTTP 400 (the
--     transcoder would put the bytes into a proto string field the services cannot
--     parse).
-- After these, gRPC clients (content-type application/grpc) pass through untouched.
--
-- Streaming switch: the OpenAI SDK posts {"stream": true, ...} to the same URL as a
-- unary completion. For POST /v1/chat/completions (query string allowed) only, the body
-- is read; when its top-level "stream" member is true, :path becomes
-- /v1/chat/completions:stream and the route cache is cleared, so the transcoder picks
-- StreamChatCompletion (SSE). No other request body is buffered. A member given twice
-- counts by its last value, as the transcoder's JSON parser (and the proto it fills)
-- reads it, so the RPC chosen and the request's `stream` field always agree.
--
-- JSON errors: for REST requests, an error status (>= 400) always has a JSON body.
-- Envoy's own plain-text replies (malformed JSON, unknown path, no healthy upstream...)
-- become the transcoder's google.rpc.Status shape {"code":N,"message":...,"details":[]}.
-- On the OpenAI-shaped paths (/v1/chat/completions, /v1/models, /v1/models/*,
-- /v1/responses, /v1/embeddings) the Status is wrapped in OpenAI's envelope, because the
-- OpenAI SDK reads body["error"]["message"]:
--   {"error":{"type":"not_found_error","code":5,"message":...,"details":[...]}}
-- On Anthropic's (/v1/messages, /v1/messages/count_tokens) in Anthropic's, whose SDK
-- picks its exception class by status and reads body["error"]:
--   {"type":"error","error":{"type":"not_found_error","code":5,"message":...,"details":[...]}}
-- Only error responses are buffered; successful ones, SSE streams included, pass as is.
-- A HEAD request never gets a body (one would corrupt the next response on a keep-alive
-- connection): its errors pass as Envoy made them.

local CHAT_PATH = "/v1/chat/completions"
local STREAM_PATH = "/v1/chat/completions:stream"
local METADATA_NAMESPACE = "llmgw.openai_compat"

-- OpenAI error types by HTTP status; other 4xx are invalid requests, 5xx server errors.
local ERROR_TYPES = {
  [401] = "authentication_error",
  [403] = "permission_error",
  [404] = "not_found_error",
  [409] = "conflict_error",
  [429] = "rate_limit_error",
}

-- gRPC codes for errors Envoy itself produced (they carry no google.rpc.Status).
local GRPC_CODES = {
  [400] = 3, [401] = 16, [403] = 7, [404] = 5, [409] = 10, [413] = 8, [429] = 8,
  [499] = 1, [501] = 12, [503] = 14, [504] = 4,
}

local function json_string(s)
  local escaped = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    elseif c == "\n" then
      return "\\n"
    end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

local function status_json(grpc_code, message)
  return '{"code":' .. grpc_code .. ',"message":' .. json_string(message) .. ',"details":[]}'
end

-- A google.rpc.Status JSON object wrapped in OpenAI's error envelope.
local function openai_envelope(status, object)
  local error_type = ERROR_TYPES[status]
  if error_type == nil then
    error_type = status < 500 and "invalid_request_error" or "server_error"
  end
  local open = string.find(object, "{", 1, true)
  return '{"error":{"type":"' .. error_type .. '",' .. string.sub(object, open + 1) .. "}"
end

local function split_query(path)
  local q = string.find(path, "?", 1, true)
  if q == nil then
    return path, ""
  end
  return string.sub(path, 1, q - 1), string.sub(path, q)
end

-- Anthropic's error types by HTTP status; other 4xx are invalid requests, 5xx API errors.
local ANTHROPIC_ERROR_TYPES = {
  [401] = "authentication_error",
  [403] = "permission_error",
  [404] = "not_found_error",
  [413] = "request_too_large",
  [429] = "rate_limit_error",
  [503] = "overloaded_error",
  [529] = "overloaded_error",
}

-- A google.rpc.Status JSON object wrapped in Anthropic's error envelope.
local function anthropic_envelope(status, object)
  local error_type = ANTHROPIC_ERROR_TYPES[status]
  if error_type == nil then
    error_type = status < 500 and "invalid_request_error" or "api_error"
  end
  local open = string.find(object, "{", 1, true)
  return '{"type":"error","error":{"type":"' .. error_type .. '",'
    .. string.sub(object, open + 1) .. "}"
end

local function is_openai_path(base)
  return base == CHAT_PATH or base == "/v1/models" or string.sub(base, 1, 11) == "/v1/models/"
    or base == "/v1/responses" or base == "/v1/embeddings"
end

local function is_anthropic_path(base)
  return base == "/v1/messages" or base == "/v1/messages/count_tokens"
end

-- The error body shape a path's clients read: "openai", "anthropic" or "status".
local function error_shape(base)
  if is_openai_path(base) then
    return "openai"
  elseif is_anthropic_path(base) then
    return "anthropic"
  end
  return "status"
end

-- `object` (a google.rpc.Status JSON object) in the envelope of `shape`.
local function shaped(shape, status, object)
  if shape == "openai" then
    return openai_envelope(status, object)
  elseif shape == "anthropic" then
    return anthropic_envelope(status, object)
  end
  return object
end

-- Index just past the JSON string whose opening quote is at `i`, or nil if unterminated.
local function skip_string(text, i)
  local k = i + 1
  while true do
    local q = string.find(text, '["\\]', k)
    if q == nil then
      return nil
    end
    if string.byte(text, q) == 92 then -- backslash: skip the escaped character
      k = q + 2
    else
      return q + 1
    end
  end
end

-- Whether the JSON object `text` has a top-level member "stream" whose (last) value is
-- true. A cheap scan that tracks nesting and strings, so "stream": true inside message
-- content, tool schemas or metadata does not count. Malformed JSON answers false (the
-- transcoder then reports it).
local function stream_requested(text)
  if string.find(text, '"stream"%s*:%s*true') == nil then
    return false -- the fast path for every unary request
  end
  local depth, i, last = 0, 1, false
  while true do
    local j = string.find(text, '[{}%[%]"]', i)
    if j == nil then
      return last
    end
    local c = string.byte(text, j)
    if c == 34 then -- a string: a member name when followed by a colon
      local after = skip_string(text, j)
      if after == nil then
        return false
      end
      if depth == 1 and string.sub(text, j, after - 1) == '"stream"' then
        local value = string.match(text, "^%s*:%s*(%a+)", after)
        if value ~= nil then
          last = value == "true"
        end
      end
      i = after
    elseif c == 123 or c == 91 then -- { or [
      depth = depth + 1
      i = j + 1
    else
      depth = depth - 1
      i = j + 1
    end
  end
end

-- The size gRPC's metadata limit counts: name + value + 32 bytes per header.
local function header_bytes(headers)
  local total = 0
  for key, value in pairs(headers) do
    total = total + #key + #value + 32
  end
  return total
end

-- gRPC's TimeoutValue: 1 to 8 ASCII digits, then one unit.
local function valid_grpc_timeout(value)
  local digits = string.match(value, "^(%d+)[HMSmun]$")
  return digits ~= nil and #digits <= 8
end

-- Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local length
    if c < 0x80 then
      length = 1
    elseif c >= 0xC2 and c <= 0xDF then
      length = 2
    elseif c >= 0xE0 and c <= 0xEF then
      length = 3
    elseif c >= 0xF0 and c <= 0xF4 then
      length = 4
    else
      return false
    end
    for k = i + 1, i + length - 1 do
      local b = string.byte(s, k)
      if b == nil or b < 0x80 or b > 0xBF then
        return false
      end
    end
    local second = string.byte(s, i + 1)
    if (c == 0xE0 and second < 0xA0) or (c == 0xED and second > 0x9F)
        or (c == 0xF0 and second < 0x90) or (c == 0xF4 and second > 0x8F) then
      return false
    end
    i = i + length
  end
  return true
end

local function url_is_utf8(path)
  if string.find(path, "[%%\128-\255]") == nil then
    return true -- the fast path: nothing escaped, nothing beyond ASCII
  end
  local decoded = string.gsub(path, "%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end)
  return valid_utf8(decoded)
end

-- Answers the request here: gRPC clients get `grpc_code` (trailers-only), REST clients
-- `status` with the JSON error body (none on HEAD).
local function refuse(request_handle, grpc, shape, status, grpc_code, message)
  if grpc then
    request_handle:respond({
      [":status"] = "200",
      ["content-type"] = "application/grpc",
      ["grpc-status"] = tostring(grpc_code),
      ["grpc-message"] = message,
    }, nil)
    return
  end
  if request_handle:headers():get(":method") == "HEAD" then
    request_handle:respond({[":status"] = tostring(status)}, nil)
    return
  end
  local body = shaped(shape, status, status_json(grpc_code, message))
  request_handle:respond({[":status"] = tostring(status), ["content-type"] = "application/json"},
    body)
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local content_type = headers:get("content-type") or ""
  local grpc = string.sub(content_type, 1, 16) == "application/grpc"
  local base, query = split_query(headers:get(":path") or "")
  local shape = error_shape(base)
  if header_bytes(headers) > MAX_REQUEST_HEADER_BYTES then
    refuse(request_handle, grpc, shape, 431, 3,
      "request headers too large: the limit is " .. MAX_REQUEST_HEADER_BYTES
      .. " bytes (name + value + 32 per header)")
    return
  end
  local timeout = headers:get("grpc-timeout")
  if timeout ~= nil and not valid_grpc_timeout(timeout) then
    refuse(request_handle, grpc, shape, 400, 3,
      "grpc-timeout: expected 1 to 8 digits and a unit (H, M, S, m, u or n)")
    return
  end
  if grpc then
    return -- gRPC clients: Envoy's local replies reach them as grpc-status already
  end
  if not url_is_utf8(headers:get(":path") or "") then
    refuse(request_handle, grpc, shape, 400, 3,
      "the URL's path or query is not valid UTF-8 once percent-decoded")
    return
  end
  local method = headers:get(":method")
  if method ~= "HEAD" then
    request_handle:streamInfo():dynamicMetadata():set(METADATA_NAMESPACE, "error_shape", shape)
  end
  if base ~= CHAT_PATH or method ~= "POST" then
    return
  end
  local body = request_handle:body()
  if body == nil then
    return
  end
  if stream_requested(body:getBytes(0, body:length())) then
    request_handle:headers():replace(":path", STREAM_PATH .. query)
    request_handle:clearRouteCache()
  end
end


-- A google.rpc.Status-shaped JSON object (what the transcoder emits) or nil.
local function status_object(content_type, text)
  if string.find(content_type, "json", 1, true) == nil then
    return nil
  end
  if string.match(text, "^%s*{.*}%s*$") == nil or string.match(text, "^%s*{%s*}%s*$") then
    return nil
  end
  return text
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local status = tonumber(headers:get(":status")) or 0
  if status < 400 then
    return
  end
  local flags = response_handle:streamInfo():dynamicMetadata():get(METADATA_NAMESPACE)
  local shape = flags and flags["error_shape"]
  if shape == nil then
    return
  end
  local content_type = headers:get("content-type") or ""
  local grpc_code = tonumber(headers:get("grpc-status") or "") or GRPC_CODES[status] or 2
  -- Header handles do not survive body(): read everything needed first.
  local body = response_handle:body(true)
  local text = body:getBytes(0, body:length())
  local object = status_object(content_type, text)
  if object == nil then
    -- Envoy's own plain-text reply (bad JSON, no route, no healthy upstream...).
    local message = string.gsub(text, "%s+$", "")
    if message == "" then
      message = "HTTP " .. status
    end
    object = status_json(grpc_code, message)
  elseif shape == "status" then
    return -- already the transcoder's JSON
  end
  local out = shaped(shape, status, object)
  body:setBytes(out)
  local response_headers = response_handle:headers()
  response_headers:replace("content-type", "application/json")
  response_headers:replace("content-length", tostring(#out))
end
