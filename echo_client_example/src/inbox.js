// The signed-in user's conversations (first page, most recently active first).

import { reactive } from "vue";
import { api } from "./api.js";

export const inbox = reactive({ conversations: [], loaded: false, error: null });

/** Reload the list; errors are kept in `inbox.error` rather than thrown. */
export async function refreshInbox() {
  try {
    const page = await api.conversations(1);
    inbox.conversations = page.data;
    inbox.error = null;
  } catch (error) {
    inbox.error = error.message;
  } finally {
    inbox.loaded = true;
  }
}

export async function createConversation(fields) {
  const { conversation } = await api.createConversation(fields);
  inbox.conversations = [conversation, ...inbox.conversations.filter((c) => c.id !== conversation.id)];
  return conversation;
}

export async function deleteConversation(id) {
  await api.deleteConversation(id);
  inbox.conversations = inbox.conversations.filter((c) => c.id !== id);
}

/** Move a conversation to the top after activity in it, with its fresh details. */
export function touchConversation(conversation) {
  const others = inbox.conversations.filter((c) => c.id !== conversation.id);
  inbox.conversations = [conversation, ...others];
}

export function clearInbox() {
  inbox.conversations = [];
  inbox.loaded = false;
  inbox.error = null;
}
