// "Is typing" in both directions, within the app's limit of 10 typing updates per minute per
// user and conversation.

const MINUTE_MS = 60_000;

/**
 * Tell the room while the user types: `true` when typing starts (repeated every `refreshMs` while
 * it goes on), `false` after `idleMs` without input or when the message is sent. Never more than
 * `maxPerMinute` updates; a skipped `false` is harmless because receivers forget a typist after
 * `TYPING_EXPIRES_MS`.
 */
export function createTypingNotifier(send, { refreshMs = 7000, idleMs = 2500, maxPerMinute = 9 } = {}) {
  let typing = false;
  let lastStartAt = 0;
  let idleTimer = null;
  let sentAt = [];

  const emit = (isTyping) => {
    const now = Date.now();
    sentAt = sentAt.filter((t) => now - t < MINUTE_MS);
    if (sentAt.length >= maxPerMinute) return false;
    sentAt.push(now);
    send(isTyping).catch(() => {}); // typing is best effort; a 429 or a network error changes nothing
    return true;
  };

  const stop = () => {
    clearTimeout(idleTimer);
    idleTimer = null;
    if (!typing) return;
    typing = false;
    emit(false);
  };

  return {
    input() {
      const now = Date.now();
      if ((!typing || now - lastStartAt >= refreshMs) && emit(true)) {
        typing = true;
        lastStartAt = now;
      }
      clearTimeout(idleTimer);
      idleTimer = setTimeout(stop, idleMs);
    },
    stop,
  };
}

/** How long someone shows as typing after their last `user.typing` event said so. */
export const TYPING_EXPIRES_MS = 9000;
