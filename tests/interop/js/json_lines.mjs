// JSON-lines plumbing shared by the interop scripts: one JSON object per stdout line out,
// one command object per stdin line in, and a hard lifetime so no script can outlive its test.

import { createInterface } from 'node:readline';

/** Write one observation as a single JSON line on stdout. */
export function emit(record) {
  process.stdout.write(JSON.stringify(record) + '\n');
}

/** Parse the JSON configuration passed as the first command-line argument. */
export function readConfig() {
  const raw = process.argv[2];
  if (!raw) {
    throw new Error('usage: node <script> <json-config>');
  }
  return JSON.parse(raw);
}

/**
 * Exit with status 3 after `lifetimeMs`, whatever is still pending: a test that forgets to
 * stop a script, or a client stuck reconnecting, must not leave a process behind.
 */
export function limitLifetime(lifetimeMs) {
  const timer = setTimeout(() => {
    emit({ kind: 'lifetime_exceeded', lifetime_ms: lifetimeMs });
    process.exit(3);
  }, lifetimeMs);
  timer.unref();
}

/**
 * Call `handle(command)` for every JSON line read from stdin and answer each with an `ack`
 * (carrying the handler's result) or a `failed` line, both echoing the command's `id`.
 * `onClose` runs when stdin ends, which is how the controlling test says "stop".
 */
export function serveCommands(handle, onClose) {
  const input = createInterface({ input: process.stdin });
  input.on('line', async (line) => {
    if (!line.trim()) {
      return;
    }
    let command;
    try {
      command = JSON.parse(line);
    } catch (error) {
      emit({ kind: 'failed', id: null, error: `unparseable command: ${error}` });
      return;
    }
    try {
      const result = await handle(command);
      emit({ kind: 'ack', id: command.id, result: result ?? null });
    } catch (error) {
      emit({ kind: 'failed', id: command.id, error: String(error && error.stack ? error.stack : error) });
    }
  });
  input.on('close', onClose);
}
