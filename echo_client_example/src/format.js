// Dates and names as people read them.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** "14:05" today, "Mar 3" on an earlier day; empty for a missing timestamp. */
export function shortTime(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  const today = new Date();
  return moment.toDateString() === today.toDateString() ? timeFormat.format(moment) : dayFormat.format(moment);
}

export function clockTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

export function fullTime(iso) {
  return iso ? fullFormat.format(new Date(iso)) : "";
}

/** One or two capital letters for an avatar. */
export function initials(name) {
  const words = (name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

/** A stable hue per user id, so each person keeps their avatar colour. */
export function hueFor(id) {
  return ((Number(id) || 0) * 137) % 360;
}
