// One Laravel Echo connection per signed-in user, configured exactly as a Laravel front end does
// for Reverb, and a reactive view of how that connection is doing.

import Echo from "laravel-echo";
import Pusher from "pusher-js";
import { reactive } from "vue";

// How long the socket may stay down before the page stops waiting and polls the REST API instead.
const POLL_AFTER_MS = 5000;

/**
 * Connect to the broadcaster with the settings the app hands out at run time (`GET /api/config`).
 *
 * Returns `{ echo, state, disconnect }`: `state.status` is `connecting`, `connected`,
 * `reconnecting` or `offline`; `state.polling` is true once the socket has been down long enough
 * that the page should fetch updates over REST; `state.connectedCount` grows on every
 * (re)connection.
 */
export function connectRealtime(config, token) {
  const settings = config.broadcaster;
  const echo = new Echo({
    broadcaster: "reverb",
    key: settings.key,
    wsHost: settings.wsHost,
    wsPort: settings.wsPort,
    wssPort: settings.wssPort,
    forceTLS: settings.forceTLS,
    enabledTransports: settings.enabledTransports,
    authEndpoint: config.auth_endpoint,
    auth: { headers: { Authorization: `Bearer ${token}` } },
    Pusher,
  });
  const state = reactive({ status: "connecting", polling: false, connectedCount: 0 });
  const connection = echo.connector.pusher.connection;
  let pollTimer = null;

  const startPollTimer = () => {
    if (pollTimer !== null || state.polling) return;
    pollTimer = setTimeout(() => {
      pollTimer = null;
      if (state.status !== "connected") state.polling = true;
    }, POLL_AFTER_MS);
  };

  const onStateChange = ({ current }) => {
    if (current === "connected") {
      clearTimeout(pollTimer);
      pollTimer = null;
      state.status = "connected";
      state.polling = false;
      state.connectedCount += 1;
      return;
    }
    if (current === "connecting" || current === "initialized") {
      state.status = state.connectedCount > 0 ? "reconnecting" : "connecting";
    } else {
      // unavailable, failed, disconnected: pusher-js keeps retrying where it can.
      state.status = "offline";
    }
    startPollTimer();
  };
  connection.bind("state_change", onStateChange);
  startPollTimer();

  return {
    echo,
    state,
    socketId: () => echo.socketId() || undefined,
    disconnect() {
      clearTimeout(pollTimer);
      connection.unbind("state_change", onStateChange);
      echo.disconnect();
    },
  };
}
