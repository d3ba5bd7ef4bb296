// Who is signed in, the app's run-time settings, and the realtime connection that belongs to them.

import { markRaw, reactive } from "vue";
import { api, storeToken, storedToken, useSocketId, whenUnauthenticated } from "./api.js";
import { connectRealtime } from "./realtime.js";

export const session = reactive({
  booted: false,
  bootError: null,
  config: null,
  user: null,
  realtime: null,
});

function startRealtime() {
  stopRealtime();
  const realtime = connectRealtime(session.config, storedToken());
  useSocketId(realtime.socketId);
  session.realtime = markRaw(realtime);
}

function stopRealtime() {
  session.realtime?.disconnect();
  session.realtime = null;
  useSocketId(() => undefined);
}

/** Load the settings and, with a stored token that still works, the signed-in user. */
export async function boot() {
  try {
    session.config = await api.config();
  } catch (error) {
    session.bootError = error.message;
    session.booted = true;
    return;
  }
  if (storedToken()) {
    try {
      session.user = (await api.me()).user;
      startRealtime();
    } catch (error) {
      if (error.status === 401) storeToken(null);
      else session.bootError = error.message;
    }
  }
  session.booted = true;
}

/** Keep the token and user from `/api/login` or `/api/register`, and connect. */
export function signedIn({ token, user }) {
  storeToken(token);
  session.user = user;
  startRealtime();
}

// An expired or revoked token ends the session; the sign-in screen takes over.
whenUnauthenticated(() => {
  stopRealtime();
  storeToken(null);
  session.user = null;
});

export async function signOut() {
  await api.logout().catch(() => {}); // the token is forgotten either way
  stopRealtime();
  storeToken(null);
  session.user = null;
}

/** The short name the UI gives the assistant as a message author. */
export function assistantName() {
  return session.config?.demo_mode ? "Demo model" : "Claude";
}

/** What answers here, said in full: the app's label for its offline demo model, or "Claude". */
export function assistantLabel() {
  return session.config?.demo_mode ? session.config.demo_model_label || "Offline demo model" : "Claude";
}
