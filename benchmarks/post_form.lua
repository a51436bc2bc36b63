-- wrk script: POST one fixed form body with a fixed Authorization header, and
-- print a machine-readable summary line at the end.
--
--   wrk -c16 -d10s --latency -s post_form.lua URL -- "<Authorization value>" "<form body>"
--
-- The Python driver (oauth_throughput.py) reads the line starting with
-- "WRK_JSON " from wrk's standard output. wrk counts a response as an error
-- ("status") when its status code is 400 or more; this script adds no
-- response() hook so wrk keeps its fast path (it does not parse bodies).

local authorization = nil
local form = nil

function init(args)
   authorization = args[1]
   form = args[2]
   if authorization == nil or form == nil then
      error("usage: -- <Authorization header value> <form body>")
   end
   wrk.method = "POST"
   wrk.body = form
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Authorization"] = authorization
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"status_errors": %d, "connect_errors": %d, "read_errors": %d, ' ..
      '"write_errors": %d, "timeout_errors": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.status, errors.connect, errors.read, errors.write, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
