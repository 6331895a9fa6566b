-- wrk script: a 1 KB OpenAI chat request, as a client would send it.
local pad = string.rep("x", 860)
wrk.method = "POST"
wrk.body = '{"model":"mock","messages":[{"role":"user","content":"' .. pad .. '"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_AUTH") then wrk.headers["Authorization"] = os.getenv("BENCH_AUTH") end
if os.getenv("BENCH_PORTKEY_HOST") then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = os.getenv("BENCH_PORTKEY_HOST")
end
