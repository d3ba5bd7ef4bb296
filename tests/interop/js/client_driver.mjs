// Drive one unmodified pusher-js client, bare or wrapped in Laravel Echo, from JSON-line commands
// on stdin, and report everything it observes as JSON lines on stdout.
//
// Config (argv[2], JSON):
//   library        "pusher-js" | "laravel-echo"
//   key, wsHost, wsPort
//   authEndpoint   optional URL of the channel authorization endpoint
//   authHeaders    optional headers sent to it (how the endpoint knows who the user is)
//   userAuthEndpoint  optional URL of the user authentication endpoint (pusher.signin()),
//                  sent the same authHeaders
//   broadcaster    Echo only: "reverb" (default) or "pusher"
//   cluster        Echo only: the cluster option a Laravel app passes with broadcaster "pusher"
//   activityTimeout, pongTimeout   optional pusher-js keep-alive settings, in ms
//   lifetimeMs     hard limit on the process lifetime (default 60000)
//
// Output lines: {kind:"state"}, {kind:"frame"} (every message pusher-js received),
// {kind:"sent"} (every event pusher-js sent), {kind:"event"} (channel events, pusher-js),
// {kind:"echo"} (Echo callbacks), {kind:"user_event"} (events bound on pusher.user),
// {kind:"watchlist"} (pusher.user.watchlist online/offline), {kind:"ack"|"failed"} (command
// results), {kind:"log"}.

import { readFileSync } from 'node:fs';

import Pusher from 'pusher-js';
import Echo from 'laravel-echo';

import { emit, limitLifetime, readConfig, serveCommands } from './json_lines.mjs';

const config = readConfig();
limitLifetime(config.lifetimeMs ?? 60000);

// pusher-js reports what it sends only through its logger; keep those lines machine-readable.
Pusher.log = (message) => {
  const sent = /^Pusher[ :]*\["Event sent",(.*)\]$/s.exec(message);
  if (sent) {
    emit({ kind: 'sent', frame: JSON.parse(sent[1]) });
  } else if (!message.includes('"Event recd"')) {
    // Received events are already reported as {kind:"frame"}.
    emit({ kind: 'log', message });
  }
};

function connectionOptions() {
  const options = {
    wsHost: config.wsHost,
    wsPort: config.wsPort,
    forceTLS: false,
    enabledTransports: ['ws'],
  };
  if (config.activityTimeout) {
    options.activityTimeout = config.activityTimeout;
  }
  if (config.pongTimeout) {
    options.pongTimeout = config.pongTimeout;
  }
  return options;
}

function createPusher() {
  const options = { ...connectionOptions(), cluster: '' };
  if (config.authEndpoint) {
    options.channelAuthorization = {
      endpoint: config.authEndpoint,
      transport: 'ajax',
      headers: config.authHeaders ?? {},
    };
  }
  if (config.userAuthEndpoint) {
    options.userAuthentication = {
      endpoint: config.userAuthEndpoint,
      transport: 'ajax',
      headers: config.authHeaders ?? {},
    };
  }
  return new Pusher(config.key, options);
}

function createEcho() {
  // The shape of the options a Laravel app passes in resources/js/echo.js.
  return new Echo({
    broadcaster: config.broadcaster ?? 'reverb',
    key: config.key,
    ...connectionOptions(),
    authEndpoint: config.authEndpoint,
    auth: { headers: config.authHeaders ?? {} },
    // Laravel's `pusher` preset passes the app's cluster; wsHost still decides where to connect.
    ...(config.cluster ? { cluster: config.cluster } : {}),
    Pusher,
  });
}

const echo = config.library === 'laravel-echo' ? createEcho() : null;
const pusher = echo ? echo.connector.pusher : createPusher();

// pusher-js starts connecting inside its constructor, before anything can be bound.
emit({ kind: 'state', previous: null, current: pusher.connection.state, socket_id: null });
pusher.connection.bind('state_change', ({ previous, current }) => {
  emit({ kind: 'state', previous, current, socket_id: pusher.connection.socket_id ?? null });
});
pusher.connection.bind('message', (frame) => {
  emit({ kind: 'frame', frame });
});
pusher.connection.bind('error', (error) => {
  emit({ kind: 'connection_error', error: describe(error) });
});

/** A JSON-safe copy of what pusher-js hands to callbacks (Members objects, Errors, plain data). */
function describe(value) {
  if (value instanceof Error) {
    return { error: String(value) };
  }
  if (value && typeof value === 'object' && 'members' in value && 'count' in value) {
    return { count: value.count, me: value.me ?? null, members: value.members };
  }
  try {
    return JSON.parse(JSON.stringify(value ?? null));
  } catch {
    return String(value);
  }
}

function pusherChannel(name) {
  const channel = pusher.channel(name);
  if (!channel) {
    throw new Error(`not subscribed to ${name}`);
  }
  return channel;
}

function echoChannel(type, name) {
  if (type === 'public') {
    return echo.channel(name);
  }
  if (type === 'private') {
    return echo.private(name);
  }
  if (type === 'presence') {
    return echo.join(name);
  }
  throw new Error(`unknown Echo channel type ${type}`);
}

/** Attach the Echo callbacks a command asks for; each reports as {kind:"echo", callback, ...}. */
function watchEchoChannel(command) {
  const channel = echoChannel(command.type, command.name);
  const report = (callback, name) => (payload) => {
    emit({ kind: 'echo', channel: channel.name, callback, name, payload: describe(payload) });
  };
  for (const event of command.listen ?? []) {
    channel.listen(event, report('listen', event));
  }
  for (const event of command.whispers ?? []) {
    channel.listenForWhisper(event, report('whisper', event));
  }
  if (command.here) {
    channel.here(report('here', null));
  }
  if (command.joining) {
    channel.joining(report('joining', null));
  }
  if (command.leaving) {
    channel.leaving(report('leaving', null));
  }
  if (command.error) {
    channel.error(report('error', null));
  }
  if (command.subscribed) {
    channel.subscribed(report('subscribed', null));
  }
  return channel.name;
}

const handlers = {
  // pusher-js
  subscribe({ channel }) {
    const subscription = pusher.subscribe(channel);
    subscription.bind_global((event, data) => {
      emit({ kind: 'event', channel, event, data: describe(data) });
    });
  },
  unsubscribe({ channel }) {
    pusher.unsubscribe(channel);
  },
  trigger({ channel, event, data }) {
    return pusherChannel(channel).trigger(event, data);
  },
  members({ channel }) {
    return describe(pusherChannel(channel).members);
  },
  state() {
    return { state: pusher.connection.state, socket_id: pusher.connection.socket_id ?? null };
  },
  disconnect() {
    pusher.disconnect();
  },
  signin() {
    pusher.signin();
  },
  user_bind({ event }) {
    pusher.user.bind(event, (data) => {
      emit({ kind: 'user_event', event, data: describe(data) });
    });
  },
  watchlist_bind({ name }) {
    pusher.user.watchlist.bind(name, (event) => {
      emit({ kind: 'watchlist', name, event: describe(event) });
    });
  },
  // laravel-echo
  echo_watch(command) {
    return watchEchoChannel(command);
  },
  echo_whisper({ type, name, event, data }) {
    echoChannel(type, name).whisper(event, data);
  },
  echo_leave({ name }) {
    echo.leave(name);
  },
  echo_socket_id() {
    return echo.socketId() ?? null;
  },
};

serveCommands(
  (command) => {
    const handler = handlers[command.op];
    if (!handler) {
      throw new Error(`unknown op ${command.op}`);
    }
    if (command.op.startsWith('echo_') && !echo) {
      throw new Error(`${command.op} needs library "laravel-echo"`);
    }
    return handler(command);
  },
  () => {
    pusher.disconnect();
    setTimeout(() => process.exit(0), 50);
  },
);

function installedVersion(name) {
  const manifest = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

emit({
  kind: 'ready',
  library: config.library,
  versions: {
    'pusher-js': installedVersion('pusher-js'),
    'laravel-echo': installedVersion('laravel-echo'),
  },
});
