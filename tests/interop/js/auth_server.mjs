// A minimal channel-authorization endpoint, as a Node backend would write it with the `pusher`
// server SDK's authorizeChannel. It stands in for Laravel's /broadcasting/auth route.
//
// Config (argv[2], JSON): appId, key, secret, lifetimeMs (default 600000).
// Prints {kind:"listening", port} once it accepts requests on 127.0.0.1, then one
// {kind:"authorized"} line per answered request. Exits when stdin ends.
//
// Routes (POST, form-encoded socket_id and channel_name, as pusher-js sends them):
//   /broadcasting/auth               signs with the app secret
//   /broadcasting/auth-wrong-secret  signs with another secret: the server must refuse it
//   /broadcasting/user-auth          user authentication for pusher:signin (authenticateUser);
//                                    X-User-Watchlist (comma-separated ids) sets the watchlist
// The user is whoever the X-User-Id / X-User-Name headers say (the test's stand-in for a session).

import { createServer } from 'node:http';

import Pusher from 'pusher';

import { emit, limitLifetime, readConfig } from './json_lines.mjs';

const config = readConfig();
limitLifetime(config.lifetimeMs ?? 600000);

function signer(secret) {
  return new Pusher({ appId: config.appId, key: config.key, secret, useTLS: false });
}

const signers = {
  '/broadcasting/auth': signer(config.secret),
  '/broadcasting/auth-wrong-secret': signer(`not-${config.secret}`),
};

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function answer(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function authenticateUser(request, response, form) {
  const socketId = form.get('socket_id');
  const userId = request.headers['x-user-id'];
  if (!socketId || !userId) {
    answer(response, 403, { error: 'no user or socket_id' });
    return;
  }
  const userData = { id: userId, name: request.headers['x-user-name'] ?? userId };
  const watchlist = request.headers['x-user-watchlist'];
  if (watchlist) {
    userData.watchlist = watchlist.split(',');
  }
  const body = signers['/broadcasting/auth'].authenticateUser(socketId, userData);
  emit({ kind: 'user_authenticated', socket_id: socketId, user_id: userId });
  answer(response, 200, body);
}

async function authorize(request, response) {
  const path = new URL(request.url, 'http://127.0.0.1').pathname;
  if (request.method === 'POST' && path === '/broadcasting/user-auth') {
    authenticateUser(request, response, new URLSearchParams(await readBody(request)));
    return;
  }
  const pusher = signers[path];
  if (request.method !== 'POST' || !pusher) {
    answer(response, 404, { error: 'not found' });
    return;
  }
  const form = new URLSearchParams(await readBody(request));
  const socketId = form.get('socket_id');
  const channel = form.get('channel_name');
  const userId = request.headers['x-user-id'];
  if (!socketId || !channel) {
    answer(response, 422, { error: 'socket_id and channel_name are required' });
    return;
  }
  if (!userId) {
    answer(response, 403, { error: 'no user' });
    return;
  }
  const presenceData = channel.startsWith('presence-')
    ? { user_id: userId, user_info: { id: userId, name: request.headers['x-user-name'] ?? userId } }
    : undefined;
  const body = pusher.authorizeChannel(socketId, channel, presenceData);
  emit({ kind: 'authorized', path: request.url, channel, socket_id: socketId, user_id: userId });
  answer(response, 200, body);
}

const server = createServer((request, response) => {
  authorize(request, response).catch((error) => answer(response, 500, { error: String(error) }));
});
// The controlling test closes stdin to stop the server.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

server.listen(0, '127.0.0.1', () => {
  emit({ kind: 'listening', port: server.address().port });
});
