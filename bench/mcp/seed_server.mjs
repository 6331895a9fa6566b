#!/usr/bin/env node
// The seed's kind of MCP server, for bench/mcp/run.mjs to compare against:
// the SDK's own example shape (a minimal McpServer over StdioServerTransport,
// as in the SDK README) with two tools that call the router with fetch, the
// credentials taken from the same environment variables as llm-router-mcp.
// The SDK comes from tests/e2e/node_modules (the pinned version).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const e2e = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tests/e2e');
const require = createRequire(path.join(e2e, 'package.json'));
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js');
const { z } = require('zod');

const base = process.env.LLM_ROUTER_URL ?? 'http://127.0.0.1:8080';
const jwt = process.env.LLM_ROUTER_JWT_TOKEN;
const key = process.env.LLM_ROUTER_API_KEY;
const timeoutMs = Number(process.env.LLM_ROUTER_TIMEOUT ?? 30) * 1000;

async function call(method, p, token, body) {
  const res = await fetch(base + p, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { content: [{ type: 'text', text }], isError: !res.ok };
}

const server = new McpServer({ name: 'seed-style-mcp', version: '1.0.0' });
server.tool('list_nodes', 'List nodes: GET /api/nodes', async () => call('GET', '/api/nodes', jwt));
server.tool('chat_completion', 'POST /v1/chat/completions',
  { model: z.string(), messages: z.array(z.object({ role: z.string(), content: z.string() })), max_tokens: z.number().optional(),
    temperature: z.number().optional(), seed: z.number().optional() },
  async (args) => call('POST', '/v1/chat/completions', key, args));
await server.connect(new StdioServerTransport());
