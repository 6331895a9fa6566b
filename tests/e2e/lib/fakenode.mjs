// A fake llm-node for router tests: speaks the node protocol (registration
// with X-Join-Token, heartbeats with X-Node-Token) and serves OpenAI-shaped
// answers on 127.0.0.1. Behaviour knobs (set any time):
//   delayMs          wait before answering
//   fail500          answer 500 to this many requests (Infinity: always)
//   killMidStream    after two SSE chunks, drop every connection and stop listening
//   hold             park requests until release() is called
//   heartbeating     false: stop sending heartbeats
//   floodBytes       > 0: a streamed answer is this many bytes of SSE events,
//                    written as fast as the socket takes them (waits for 'drain')
// Counters: requests, active, maxActive, bodies (raw request bodies),
//   flooded (bytes of the current flood taken by the socket so far),
//   closedEarly (streams whose connection closed before they ended),
//   authorizations (the Authorization header of each request the router sent),
//   secret (the router_secret of the last registration).
import http from 'node:http';

export class FakeNode {
  constructor({ routerUrl, joinToken, name = 'fake', models = ['fake-model'], slots = 4,
    heartbeatMs = 200, delayMs = 0, chunks = 3, chunkGapMs = 5, gpu = false } = {}) {
    Object.assign(this, { routerUrl, joinToken, name, models, slots, heartbeatMs, delayMs, chunks, chunkGapMs, gpu });
    this.fail500 = 0;
    this.killMidStream = false;
    this.hold = false;
    this.heartbeating = true;
    this.floodBytes = 0;
    this.flooded = 0;
    this.closedEarly = 0;
    this.requests = 0;
    this.active = 0;
    this.maxActive = 0;
    this.bodies = [];
    this.authorizations = [];
    this.held = [];
    this.sockets = new Set();
    this.timer = null;
  }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 60000;
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    await this.register();
    this.timer = setInterval(() => { if (this.heartbeating) this.heartbeat().catch(() => {}); }, this.heartbeatMs);
    return this;
  }

  registration() {
    return {
      machine_name: this.name, ip_address: '127.0.0.1', runtime_version: 'fake-1',
      runtime_port: this.port, node_api_port: this.port, gpu_available: this.gpu,
      gpu_devices: this.gpu ? [{ model: 'Fake GPU', count: 1 }] : [],
      available_models: this.models, total_slots: this.slots,
    };
  }

  async register() {
    const res = await fetch(`${this.routerUrl}/api/nodes`, {
      // the token it has proves it is the same node when it registers again
      method: 'POST', headers: { 'content-type': 'application/json', 'x-join-token': this.joinToken,
        ...(this.token ? { 'x-node-token': this.token } : {}) },
      body: JSON.stringify(this.registration()), signal: AbortSignal.timeout(5000),
    });
    const j = await res.json();
    if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(j)}`);
    this.nodeId = j.node_id;
    this.token = j.node_token;
    this.secret = j.router_secret;
    return j;
  }

  heartbeatBody(extra = {}) {
    return {
      node_id: this.nodeId, cpu_usage: 10, memory_usage: 20, gpu_usage: 0, gpu_memory_usage: 0,
      gpu_devices: [], active_requests: this.active, queued_requests: 0, total_slots: this.slots,
      average_response_time_ms: 0, tokens_per_second: 0, loaded_models: this.models,
      loaded_embedding_models: [], available_models: this.models, initializing: false,
      ready_models: [this.models.length, this.models.length], ...extra,
    };
  }

  /** One heartbeat; resolves to the HTTP status. Re-registers on 404 like a real node. */
  async heartbeat({ token = this.token, body = this.heartbeatBody() } = {}) {
    const res = await fetch(`${this.routerUrl}/api/health`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-node-token': token },
      body: JSON.stringify(body), signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
    if (res.status === 404 && token === this.token) await this.register();
    return res.status;
  }

  release() { const h = this.held; this.held = []; for (const f of h) f(); }

  async handle(req, res) {
    let raw = '';
    for await (const c of req) raw += c;
    if (req.method === 'GET' && req.url === '/v1/models') {
      return this.json(res, 200, { object: 'list', data: this.models.map((id) => ({ id, object: 'model' })) });
    }
    this.requests++;
    this.authorizations.push(req.headers.authorization);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    let done = false;
    const finish = () => { if (!done) { done = true; this.active--; } };
    res.on('close', finish);
    this.bodies.push(raw);
    let body = {};
    try { body = JSON.parse(raw); } catch {}
    if (this.hold) await new Promise((r) => this.held.push(r));
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail500 > 0) {
      this.fail500--;
      return this.json(res, 500, { error: { message: `${this.name} failed on purpose`, type: 'server_error' } });
    }
    if (req.url === '/v1/embeddings') {
      return this.json(res, 200, { object: 'list', model: body.model, node: this.name,
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }], usage: { prompt_tokens: 1, total_tokens: 1 } });
    }
    const chat = req.url === '/v1/chat/completions';
    if (body.stream) return this.stream(res, body, chat);
    const text = `hello from ${this.name}`;
    return this.json(res, 200, {
      id: 'cmpl-fake', object: chat ? 'chat.completion' : 'text_completion', created: 1, model: body.model,
      node: this.name, echo: raw,
      choices: [chat ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }
        : { index: 0, text, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
    });
  }

  async stream(res, body, chat) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let ended = false;
    res.on('close', () => { if (!ended) this.closedEarly++; });
    if (this.floodBytes > 0) {
      const event = `data: ${JSON.stringify({ object: 'chat.completion.chunk', pad: 'x'.repeat(16384) })}\n\n`;
      this.flooded = 0;
      while (this.flooded < this.floodBytes) {
        if (res.destroyed) return;
        const ok = res.write(event);
        this.flooded += event.length;
        if (!ok) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
      }
      ended = true;
      return res.end('data: [DONE]\n\n');
    }
    for (let i = 0; i < this.chunks; i++) {
      const delta = chat ? { choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }] }
        : { choices: [{ index: 0, text: `tok${i} `, finish_reason: null }] };
      res.write(`data: ${JSON.stringify({ id: 'chunk-fake', object: chat ? 'chat.completion.chunk' : 'text_completion', created: 1, model: body.model, node: this.name, ...delta })}\n\n`);
      if (this.killMidStream && i === 1) return this.kill();
      await new Promise((r) => setTimeout(r, this.chunkGapMs));
      if (res.destroyed) return;
    }
    ended = true;
    res.end('data: [DONE]\n\n');
  }

  json(res, status, obj) {
    const s = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
    res.end(s);
  }

  /** Simulates a crash: every connection dropped, port closed, no heartbeats. */
  kill() {
    this.heartbeating = false;
    clearInterval(this.timer);
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  async stop() {
    clearInterval(this.timer);
    this.release();
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(() => r()));
  }
}
