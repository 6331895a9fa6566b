#!/usr/bin/env python3
"""A fast fake cloud provider for cloud_bench.py: HTTP (no TLS) on 127.0.0.1,
one fixed streamed answer of N text events per provider, pre-rendered and
written in one piece with a Content-Length so that the fake itself costs as
little as possible (its CPU is not what the benchmark measures).

  POST /v1/chat/completions                           OpenAI chat.completion.chunk x N + [DONE]
  POST /v1/messages                                   Anthropic message_start ... message_stop
  POST /v1beta/models/M:streamGenerateContent?alt=sse Gemini GenerateContentResponse x N

The number of events N comes from the model name's trailing digits
("bench-200": 200 events), so one fake and one proxy serve every size.
The shapes follow tests/e2e/lib/fake_cloud.mjs (proved against the official
SDKs by tests/e2e/cloud_fakes.test.mjs). Usage: cloud_fake.py PORT
"""
import json, re, socketserver, sys
from http.server import BaseHTTPRequestHandler


def openai_stream(n):
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-bench"}
    ev = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    ev += [dict(base, choices=[{"index": 0, "delta": {"content": f" w{i}"}, "finish_reason": None}]) for i in range(n)]
    ev.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    ev.append(dict(base, choices=[], usage={"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}))
    return "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in ev) + "data: [DONE]\n\n"


def anthropic_stream(n):
    ev = [{"type": "message_start", "message": {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
                                                "content": [], "stop_reason": None, "stop_sequence": None,
                                                "usage": {"input_tokens": 5, "cache_creation_input_tokens": 0,
                                                          "cache_read_input_tokens": 0, "output_tokens": 1}}},
          {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
          {"type": "ping"}]
    ev += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f" w{i}"}} for i in range(n)]
    ev += [{"type": "content_block_stop", "index": 0},
           {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": n}},
           {"type": "message_stop"}]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in ev)


def google_stream(n):
    ev = []
    for i in range(n):
        c = {"content": {"parts": [{"text": f" w{i}"}], "role": "model"}, "index": 0}
        if i == n - 1:
            c["finishReason"] = "STOP"
        ev.append({"candidates": [c], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": i + 1,
                                                        "totalTokenCount": 6 + i}, "modelVersion": "gemini-bench"})
    return "".join(f"data: {json.dumps(e, separators=(',', ':'))}\r\n\r\n" for e in ev)


def events_of(model):
    m = re.search(r"(\d+)$", model or "")
    return min(int(m.group(1)), 100000) if m else 10


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cache = {}

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = self.path.split("?", 1)[0]
        if path.endswith(":streamGenerateContent"):
            kind, model = "google", path.rsplit("/", 1)[1].split(":", 1)[0]
        else:
            kind = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}.get(path)
            try:
                model = json.loads(raw).get("model")
            except ValueError:
                model = None
        if kind is None:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        key = (kind, events_of(model))
        body = self.cache.get(key)
        if body is None:
            body = {"openai": openai_stream, "anthropic": anthropic_stream, "google": google_stream}[kind](key[1]).encode()
            self.cache[key] = body
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    port = int(sys.argv[1])
    with Server(("127.0.0.1", port), Handler) as s:
        print(f"CLOUD_FAKE_LISTENING port={port}", flush=True)
        s.serve_forever()


if __name__ == "__main__":
    main()
