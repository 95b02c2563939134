-- REST conveniences on the public listener (envoy.filters.http.lua, placed BEFORE the
-- gRPC-JSON transcoder; envoy_config.py inlines this file into the Envoy config).
-- gRPC clients (content-type application/grpc) pass through untouched.
--
-- Streaming switch: the OpenAI SDK posts {"stream": true, ...} to the same URL as a
-- unary completion. For POST /v1/chat/completions (query string allowed) only, the body
-- is read; when its top-level "stream" member is true, :path becomes
-- /v1/chat/completions:stream and the route cache is cleared, so the transcoder picks
-- StreamChatCompletion (SSE). No other request body is buffered.
--
-- JSON errors: for REST requests, an error status (>= 400) always has a JSON body.
-- Envoy's own plain-text replies (malformed JSON, unknown path, no healthy upstream...)
-- become the transcoder's google.rpc.Status shape {"code":N,"message":...,"details":[]}.
-- On the OpenAI-shaped paths (/v1/chat/completions, /v1/models, /v1/models/*) the Status
-- is wrapped in OpenAI's envelope, because the OpenAI SDK reads body["error"]["message"]:
--   {"error":{"type":"not_found_error","code":5,"message":...,"details":[...]}}
-- Only error responses are buffered; successful ones, SSE streams included, pass as is.

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

local function split_query(path)
  local q = string.find(path, "?", 1, true)
  if q == nil then
    return path, ""
  end
  return string.sub(path, 1, q - 1), string.sub(path, q)
end

local function is_openai_path(base)
  return base == CHAT_PATH or base == "/v1/models" or string.sub(base, 1, 11) == "/v1/models/"
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

-- Whether the JSON object `text` has a top-level member "stream" whose value is true.
-- A cheap scan that tracks nesting and strings, so "stream": true inside message content,
-- tool schemas or metadata does not count. Malformed JSON answers false (the transcoder
-- then reports it).
local function stream_requested(text)
  if string.find(text, '"stream"%s*:%s*true') == nil then
    return false -- the fast path for every unary request
  end
  local depth, i = 0, 1
  while true do
    local j = string.find(text, '[{}%[%]"]', i)
    if j == nil then
      return false
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
          return value == "true"
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

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local content_type = headers:get("content-type") or ""
  if string.sub(content_type, 1, 16) == "application/grpc" then
    return -- gRPC clients: Envoy's local replies reach them as grpc-status already
  end
  local base, query = split_query(headers:get(":path") or "")
  local openai = is_openai_path(base)
  request_handle:streamInfo():dynamicMetadata():set(
    METADATA_NAMESPACE, "error_shape", openai and "openai" or "status")
  if not openai or base ~= CHAT_PATH or headers:get(":method") ~= "POST" then
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
    object = '{"code":' .. grpc_code .. ',"message":' .. json_string(message)
      .. ',"details":[]}'
  elseif shape == "status" then
    return -- already the transcoder's JSON
  end
  local out = object
  if shape == "openai" then
    local error_type = ERROR_TYPES[status]
    if error_type == nil then
      error_type = status < 500 and "invalid_request_error" or "server_error"
    end
    local open = string.find(object, "{", 1, true)
    out = '{"error":{"type":"' .. error_type .. '",' .. string.sub(object, open + 1) .. "}"
  end
  body:setBytes(out)
  local response_headers = response_handle:headers()
  response_headers:replace("content-type", "application/json")
  response_headers:replace("content-length", tostring(#out))
end
