// Make HTTP API calls with the unmodified `pusher` server SDK for Node and report each answer.
//
// Config (argv[2], JSON): appId, key, secret, host, port, and
//   calls: [{method: "trigger" | "triggerBatch" | "get" | "post", args: [...]}, ...]
// made one after another. Prints one line per call:
//   {kind:"response", index, method, status, body}        body parsed as JSON when it is JSON
//   {kind:"request_error", index, method, status, body, message}
// then exits 0 (or 2 when the config names a method the SDK does not have).

import Pusher from 'pusher';

import { emit, limitLifetime, readConfig } from './json_lines.mjs';

const config = readConfig();
limitLifetime(config.lifetimeMs ?? 30000);

const pusher = new Pusher({
  appId: config.appId,
  key: config.key,
  secret: config.secret,
  host: config.host,
  port: String(config.port),
  useTLS: false,
  timeout: 10000,
});

function parsed(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

for (const [index, call] of config.calls.entries()) {
  if (typeof pusher[call.method] !== 'function') {
    emit({ kind: 'failed', index, error: `the SDK has no method ${call.method}` });
    process.exit(2);
  }
  try {
    const response = await pusher[call.method](...call.args);
    const body = parsed(await response.text());
    emit({ kind: 'response', index, method: call.method, status: response.status, body });
  } catch (error) {
    emit({
      kind: 'request_error',
      index,
      method: call.method,
      status: error.status ?? null,
      body: error.body === undefined ? null : parsed(error.body),
      message: String(error.message ?? error) + (error.error ? `: ${error.error}` : ''),
    });
  }
}
process.exit(0);
