// Check webhook requests with the unmodified `pusher` server SDK for Node.
//
// Config (argv[2], JSON): appId, key, secret, and
//   webhooks: [{headers: {name: value}, body: "raw body text"}, ...]
// Prints one line per webhook: {kind:"webhook", index, valid, events} (events null when invalid).

import Pusher from 'pusher';

import { emit, limitLifetime, readConfig } from './json_lines.mjs';

const config = readConfig();
limitLifetime(config.lifetimeMs ?? 30000);

const pusher = new Pusher({ appId: config.appId, key: config.key, secret: config.secret });

for (const [index, hook] of config.webhooks.entries()) {
  // The SDK expects lower-case header names, as Node's http module gives them.
  const headers = Object.fromEntries(
    Object.entries(hook.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const webhook = pusher.webhook({ headers, rawBody: hook.body });
  const valid = webhook.isValid();
  emit({ kind: 'webhook', index, valid, events: valid ? webhook.getEvents() : null });
}
