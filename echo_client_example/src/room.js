// One open conversation: its messages (REST + Echo events), who is here, who is typing, sending
// and stopping replies. After a reconnect, and whenever a chunk cannot be placed, it catches up
// over REST (`?since=`); while the socket is down for good it polls instead.

import { reactive, watch } from "vue";
import { api } from "./api.js";
import { createFeed } from "./feed.js";
import { TYPING_EXPIRES_MS, createTypingNotifier } from "./typing.js";

const POLL_INTERVAL_MS = 3000;
const GAP_RETRY_MS = 800;
const MAX_GAP_RETRIES = 15;

function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Open conversation `id` for user `me` over `realtime` (from `connectRealtime`).
 *
 * Returns a reactive room: `phase` (`loading`, `ready`, `error`), `error` (`{status, message}`),
 * `conversation`, `messages`, `present` (users on the presence channel), `typists`, `outgoing`
 * (a message being sent, with its error if sending failed) and `liveError`; and the actions
 * `send`, `retrySend`, `discardOutgoing`, `stop`, `typed`, `invite`, `close`.
 */
export function openRoom(id, me, realtime) {
  const feed = createFeed();
  const room = reactive({
    id,
    phase: "loading",
    error: null,
    conversation: null,
    messages: feed.messages,
    present: [],
    typists: [],
    outgoing: null,
    liveError: null,
  });
  const echo = realtime.echo;
  // `conversation.{id}.{token}` from the app; the token changes when someone leaves, and then
  // the old channel goes silent, so the room moves to the new one.
  let channelName = null;
  const typingTimers = new Map();
  const notifier = createTypingNotifier((isTyping) => api.typing(id, isTyping));
  let closed = false;
  let inFlight = null;
  let again = false;
  let retryTimer = null;
  let gapRetries = 0;
  let pollTimer = null;

  function forgetTypist(userId) {
    clearTimeout(typingTimers.get(userId));
    typingTimers.delete(userId);
    room.typists = room.typists.filter((u) => u.id !== userId);
  }

  function noteTyping({ user_id: userId, user_name: userName, is_typing: isTyping }) {
    if (!userId || userId === me.id) return;
    const user = { id: userId, name: userName };
    forgetTypist(user.id);
    if (!isTyping) return;
    room.typists = [...room.typists, user];
    typingTimers.set(user.id, setTimeout(() => forgetTypist(user.id), TYPING_EXPIRES_MS));
  }

  function afterCatchUp() {
    if (closed || !feed.needsCatchUp()) {
      gapRetries = 0;
      return;
    }
    if (gapRetries >= MAX_GAP_RETRIES || retryTimer !== null) return;
    gapRetries += 1;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      catchUp();
    }, GAP_RETRY_MS);
  }

  /** Fetch what changed since the newest settled message; concurrent calls share one request. */
  function catchUp() {
    if (closed) return Promise.resolve();
    if (inFlight) {
      again = true;
      return inFlight;
    }
    inFlight = (async () => {
      do {
        again = false;
        const data = await api.conversation(id, { since: feed.sinceId() });
        if (closed) return;
        room.conversation = data.conversation;
        if (channelName && data.conversation.channel !== channelName) moveTo(data.conversation.channel);
        for (const message of data.messages) feed.upsert(message);
        if (data.has_more) again = true; // the app sends at most a page at a time
      } while (again && !closed);
    })()
      .catch((error) => {
        if (error.status === 403 || error.status === 404) {
          lost(error.status, error.message);
        }
      })
      .finally(() => {
        inFlight = null;
        afterCatchUp();
      });
    return inFlight;
  }

  function catchUpSoon() {
    if (retryTimer !== null || inFlight || gapRetries >= MAX_GAP_RETRIES) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      catchUp();
    }, 250);
  }

  function leaveChannel() {
    if (channelName) echo.leave(channelName);
    channelName = null;
  }

  /** Access ended (the conversation was deleted or this user removed): stop listening. */
  function lost(status, message) {
    leaveChannel();
    room.present = [];
    room.phase = "error";
    room.error = { status, message };
  }

  function moveTo(channel) {
    leaveChannel();
    channelName = channel;
    subscribe();
  }

  function subscribe() {
    echo
      .private(channelName)
      .listen(".conversation.deleted", () => lost(404, "This conversation was deleted."))
      .listen(".member.removed", ({ user_id: userId }) => {
        if (userId === me.id) lost(403, "You are no longer a member of this conversation.");
        else catchUp(); // the conversation now has a new channel; catching up moves there
      })
      .listen(".message.created", ({ message }) => {
        feed.upsert(message);
        if (message.user_id) forgetTypist(message.user_id);
        if (feed.needsCatchUp()) catchUpSoon();
      })
      .listen(".message.chunk", (chunk) => {
        feed.applyChunk(chunk);
        if (feed.needsCatchUp()) catchUpSoon();
      })
      .listen(".message.completed", ({ message }) => {
        feed.upsert(message);
        gapRetries = 0;
        if (feed.needsCatchUp()) catchUpSoon();
      })
      // Runs after every (re)subscription: events sent while this page was not subscribed are
      // fetched over REST, so nothing is missed and nothing is applied twice.
      .subscribed(() => {
        room.liveError = null;
        gapRetries = 0;
        catchUp();
      })
      .error((error) => {
        room.liveError = error?.error || "Live updates for this conversation were refused.";
      });
    echo
      .join(channelName)
      .here((users) => {
        room.present = users;
      })
      .joining((user) => {
        room.present = [...room.present.filter((u) => u.id !== user.id), user];
      })
      .leaving((user) => {
        room.present = room.present.filter((u) => u.id !== user.id);
        forgetTypist(user.id);
      })
      .listen(".user.typing", noteTyping);
  }

  // Presence is only known while connected; pusher-js re-announces everyone on resubscription.
  const stopWatchingConnection = watch(
    () => realtime.state.status,
    (status) => {
      if (status === "connected") return;
      room.present = [];
      for (const user of room.typists) forgetTypist(user.id);
    },
  );

  const stopWatchingPolling = watch(
    () => realtime.state.polling,
    (polling) => {
      clearInterval(pollTimer);
      pollTimer = polling ? setInterval(catchUp, POLL_INTERVAL_MS) : null;
      if (polling) catchUp();
    },
    { immediate: true },
  );

  async function load() {
    try {
      const data = await api.conversation(id);
      if (closed) return;
      room.conversation = data.conversation;
      feed.reset(data.messages);
      room.phase = "ready";
      channelName = data.conversation.channel;
      subscribe();
    } catch (error) {
      if (closed) return;
      room.phase = "error";
      room.error = { status: error.status, message: error.message };
    }
  }

  async function deliver() {
    const outgoing = room.outgoing;
    outgoing.error = null;
    outgoing.pending = true;
    try {
      const posted = await api.sendMessage(id, outgoing.text, outgoing.key);
      feed.upsert(posted.user_message);
      feed.upsert(posted.assistant_message);
      if (room.outgoing === outgoing) room.outgoing = null;
    } catch (error) {
      outgoing.pending = false;
      outgoing.error = error.message;
    }
  }

  load();

  return Object.assign(room, {
    /** Post `text`; it shows as pending until the app has stored it. False if one is still pending. */
    send(text) {
      if (room.outgoing) return false;
      notifier.stop();
      room.outgoing = { text, key: newIdempotencyKey(), error: null, pending: true };
      deliver();
      return true;
    },
    /** Try the failed message again with the same idempotency key, so it is stored at most once. */
    retrySend() {
      if (room.outgoing && !room.outgoing.pending) deliver();
    },
    discardOutgoing() {
      if (room.outgoing && !room.outgoing.pending) room.outgoing = null;
    },
    async stop(messageId) {
      try {
        const { message } = await api.cancelReply(id, messageId);
        feed.upsert(message);
      } catch (error) {
        if (error.status === 409) catchUp(); // it had already finished
        else throw error;
      }
    },
    typed() {
      notifier.input();
    },
    async invite(email) {
      const { conversation } = await api.invite(id, email);
      room.conversation = conversation;
    },
    /** Remove a member (owner), or leave (`userId` is this user). */
    async removeMember(userId) {
      const { conversation } = await api.removeMember(id, userId);
      if (userId === me.id) {
        lost(403, "You left this conversation.");
        return;
      }
      room.conversation = conversation;
      moveTo(conversation.channel);
    },
    streamingReply() {
      return feed.streaming().find((m) => m.role === "assistant") ?? null;
    },
    close() {
      closed = true;
      notifier.stop();
      stopWatchingPolling();
      stopWatchingConnection();
      clearInterval(pollTimer);
      clearTimeout(retryTimer);
      for (const timer of typingTimers.values()) clearTimeout(timer);
      leaveChannel();
    },
  });
}
