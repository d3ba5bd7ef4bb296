// A tiny history-API router: the app serves index.html for every page path, so these URLs can be
// bookmarked and reloaded.

import { reactive } from "vue";

export const route = reactive({ name: "home", conversationId: null });

function parse(pathname) {
  const match = pathname.match(/^\/conversations\/(\d+)\/?$/);
  if (match) return { name: "conversation", conversationId: Number(match[1]) };
  if (pathname === "/register") return { name: "register", conversationId: null };
  if (pathname === "/login") return { name: "login", conversationId: null };
  return { name: "home", conversationId: null };
}

function sync() {
  Object.assign(route, parse(window.location.pathname));
}

/** Go to `path` and add a history entry (or replace the current one). */
export function navigate(path, { replace = false } = {}) {
  if (path !== window.location.pathname) {
    if (replace) window.history.replaceState(null, "", path);
    else window.history.pushState(null, "", path);
  }
  sync();
}

window.addEventListener("popstate", sync);
sync();
