-- bench/wrk/bench.lua: the wrk script of bench/run.sh, for every
-- configuration.
--
-- Without AG_KEYS_FILE / AG_TOKENS_FILE, wrk sends its static request (the
-- credential comes from wrk's -H). With them (configuration F), every
-- request carries the next credential in rotation: API key 1, token 1,
-- API key 2, token 2, ... The requests are built once, in init, so the
-- client does no more work per request than with a static one.
--
-- AG_START=N starts the rotation at request N, so that consecutive wrk
-- runs (run.sh's warm-up pass and rounds) go on where the last one
-- stopped instead of hitting the first credentials again. done() prints
-- one line run.sh parses:
--   RESULT rps=<req/s> p50_us=<µs> p99_us=<µs> requests=<n> non2xx=<n> errors=<n>

local path = os.getenv("AG_PATH") or "/app/orders?id=7"
local keys_file = os.getenv("AG_KEYS_FILE")
local tokens_file = os.getenv("AG_TOKENS_FILE")
local start = tonumber(os.getenv("AG_START") or "0")
local threads_total = math.max(tonumber(os.getenv("AG_THREADS") or "1"), 1) -- wrk -t

wrk.path = path

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

local function read_lines(file)
   local lines = {}
   if file == nil or file == "" then
      return lines
   end
   for line in io.lines(file) do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   return lines
end

local reqs = nil
local n = 0
local i = 0

function init(args)
   local keys = read_lines(keys_file)
   local tokens = read_lines(tokens_file)
   if #keys == 0 and #tokens == 0 then
      return
   end
   reqs = {}
   local m = math.max(#keys, #tokens)
   for j = 1, m do
      if j <= #keys then
         reqs[#reqs + 1] = wrk.format("GET", path, { ["X-Api-Key"] = keys[j] })
      end
      if j <= #tokens then
         reqs[#reqs + 1] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[j] })
      end
   end
   n = #reqs
   -- Threads start at different places in the rotation.
   i = (start + math.floor(n * (thread_index or 0) / threads_total)) % n
end

-- Only defined when rotating: an undefined request() keeps wrk's cheaper
-- static request.
if (keys_file or "") ~= "" or (tokens_file or "") ~= "" then
   function request()
      i = i + 1
      if i > n then
         i = 1
      end
      return reqs[i]
   end
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d errors=%d\n",
      summary.requests / secs, latency:percentile(50), latency:percentile(99),
      summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
