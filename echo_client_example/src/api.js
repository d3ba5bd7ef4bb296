// The chat app's REST API: bearer token on every call, and the socket id so that the app can
// leave this browser out of broadcasts it already knows about (Laravel's `toOthers`).

const TOKEN_KEY = "chat.token";

let socketIdSource = () => undefined;
let onUnauthenticated = () => {};

/** An API call that did not succeed: `status` (0 when the app could not be reached), `message`,
 * and per-field messages for validation errors (422). */
export class ApiError extends Error {
  constructor(status, message, fieldErrors = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.fieldErrors = fieldErrors;
    this.retryAfter = retryAfter;
  }
}

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Called when the app no longer accepts the stored token (401 outside of signing in). */
export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

/** Where `X-Socket-ID` comes from (the Echo connection); a function, as the id changes on reconnect. */
export function useSocketId(source) {
  socketIdSource = source;
}

async function request(method, path, { body, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const token = storedToken();
  if (token) sent.Authorization = `Bearer ${token}`;
  const socketId = socketIdSource();
  if (socketId) sent["X-Socket-ID"] = socketId;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The chat server cannot be reached. Check your connection.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && token) onUnauthenticated();
    const message = data?.message || data?.error || `The request failed (${response.status}).`;
    throw new ApiError(response.status, message, data?.errors ?? {}, response.headers.get("Retry-After"));
  }
  return data;
}

export const api = {
  config: () => request("GET", "/api/config"),
  me: () => request("GET", "/api/me"),
  register: (name, email, password) => request("POST", "/api/register", { body: { name, email, password } }),
  login: (email, password) => request("POST", "/api/login", { body: { email, password } }),
  logout: () => request("POST", "/api/logout"),
  conversations: (page = 1) => request("GET", `/api/conversations?page=${page}`),
  createConversation: (fields) => request("POST", "/api/conversations", { body: fields }),
  conversation: (id, { since, before, limit } = {}) => {
    const query = new URLSearchParams();
    if (since !== undefined) query.set("since", String(since));
    if (before !== undefined) query.set("before", String(before));
    if (limit !== undefined) query.set("limit", String(limit));
    const suffix = query.size ? `?${query}` : "";
    return request("GET", `/api/conversations/${id}${suffix}`);
  },
  deleteConversation: (id) => request("DELETE", `/api/conversations/${id}`),
  invite: (id, email) => request("POST", `/api/conversations/${id}/members`, { body: { email } }),
  removeMember: (id, userId) => request("DELETE", `/api/conversations/${id}/members/${userId}`),
  sendMessage: (id, message, idempotencyKey) =>
    request("POST", `/api/conversations/${id}/messages`, {
      body: { message },
      headers: { "Idempotency-Key": idempotencyKey },
    }),
  typing: (id, isTyping) => request("POST", `/api/conversations/${id}/typing`, { body: { is_typing: isTyping } }),
  cancelReply: (conversationId, messageId) =>
    request("POST", `/api/conversations/${conversationId}/messages/${messageId}/cancel`),
};
