// The messages of one open conversation, merged from three sources that can arrive in any order:
// the REST API (initial page and catch-up), `message.created`/`message.completed` events, and
// numbered `message.chunk` events. Each chunk is applied exactly once and in order: a streaming
// message's `content` is always the text of chunks 1..`seq`, as the app stores it.

import { reactive } from "vue";

/**
 * Create the message feed of one conversation.
 *
 * `messages` is reactive and sorted by id. `needsCatchUp()` says whether some chunk could not be
 * placed (unknown message or a gap in `seq`), which only a REST catch-up from `sinceId()` can fix.
 */
export function createFeed() {
  const messages = reactive([]);
  // message id -> Map(seq -> chunk text) for chunks that arrived before the text they follow.
  const waiting = new Map();

  const find = (id) => messages.find((m) => m.id === id);

  function insertSorted(message) {
    const at = messages.findIndex((m) => m.id > message.id);
    if (at === -1) messages.push(message);
    else messages.splice(at, 0, message);
  }

  function drain(message) {
    const chunks = waiting.get(message.id);
    if (!chunks) return;
    if (!message.is_streaming) {
      waiting.delete(message.id);
      return;
    }
    for (const seq of [...chunks.keys()]) if (seq <= message.seq) chunks.delete(seq);
    while (chunks.has(message.seq + 1)) {
      const next = message.seq + 1;
      message.content += chunks.get(next);
      message.seq = next;
      chunks.delete(next);
    }
    if (chunks.size === 0) waiting.delete(message.id);
  }

  /** Add or refresh a message from the API or an event, never moving a reply backwards. */
  function upsert(received) {
    const incoming = { ...received, seq: received.seq ?? 0, content: received.content ?? "" };
    const local = find(incoming.id);
    if (!local) {
      insertSorted(incoming);
      drain(find(incoming.id));
      return;
    }
    if (!local.is_streaming && incoming.is_streaming) return; // a late copy of a finished message
    if (incoming.is_streaming && incoming.seq < local.seq) {
      // Chunks already shown are newer than what the server had saved: keep the longer text.
      Object.assign(local, { ...incoming, content: local.content, seq: local.seq });
    } else if (!incoming.is_streaming && incoming.content_truncated) {
      // The event carried only a prefix; the caller fetches the full text over REST.
      Object.assign(local, { ...incoming, content: local.content.length > incoming.content.length ? local.content : incoming.content });
      local.needs_full_text = true;
    } else {
      Object.assign(local, incoming, { needs_full_text: false });
    }
    drain(local);
  }

  /** Apply one `message.chunk` event; duplicates are ignored, early chunks wait for their gap. */
  function applyChunk({ message_id: id, chunk, seq }) {
    const local = find(id);
    if (local && !local.is_streaming) return;
    if (local && seq <= local.seq) return;
    if (local && seq === local.seq + 1) {
      local.content += chunk;
      local.seq = seq;
      drain(local);
      return;
    }
    if (!waiting.has(id)) waiting.set(id, new Map());
    waiting.get(id).set(seq, chunk);
  }

  /** Replace everything with a fresh page of messages (opening a conversation). */
  function reset(page) {
    messages.splice(0, messages.length);
    waiting.clear();
    for (const message of page) upsert(message);
  }

  /** The `since` id for a catch-up that also returns every message still streaming here. */
  function sinceId() {
    let since = 0;
    for (const m of messages) since = Math.max(since, m.id);
    for (const m of messages) if (m.is_streaming || m.needs_full_text) since = Math.min(since, m.id - 1);
    return since;
  }

  const needsCatchUp = () => waiting.size > 0 || messages.some((m) => m.needs_full_text);
  const streaming = () => messages.filter((m) => m.is_streaming);

  return { messages, upsert, applyChunk, reset, sinceId, needsCatchUp, streaming };
}
