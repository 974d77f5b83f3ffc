// The server's clock as the page sees it. The state carries absolute unix times and
// `server_time`; the page keeps the difference to its own clock and shows what is
// left as `ends_at - now()`, so a late message never shifts a deadline.

let offsetS = 0;

export function syncServerTime(serverTime) {
  if (Number.isFinite(serverTime)) offsetS = serverTime - Date.now() / 1000;
}

export function now() {
  return Date.now() / 1000 + offsetS;
}

// "9:05", "1:02:03"; negative values are shown by the caller as overtime.
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

// "14:05" in the page's language (24-hour clock in both).
export function formatTime(unixSeconds, timeZone) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (timeZone) options.timeZone = timeZone;
  const locale = document.documentElement.lang === "en" ? "en-GB" : "ru-RU";
  try {
    return new Date(unixSeconds * 1000).toLocaleTimeString(locale, options);
  } catch {
    return new Date(unixSeconds * 1000).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  }
}

function locale() {
  return document.documentElement.lang === "en" ? "en-GB" : "ru-RU";
}

// "Monday, 14 December 2026, 10:30" / "понедельник, 14 декабря 2026 г., 10:30" in the
// browser's own time zone (or `timeZone`): for dates people must not misread.
export function formatDateTime(unixSeconds, timeZone) {
  const options = { weekday: "long", day: "numeric", month: "long", year: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (timeZone) options.timeZone = timeZone;
  try {
    return new Date(unixSeconds * 1000).toLocaleString(locale(), options);
  } catch {
    delete options.timeZone;
    return new Date(unixSeconds * 1000).toLocaleString(locale(), options);
  }
}

// The browser's time zone as the system names it ("Asia/Novosibirsk"), or "".
export function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone ?? "";
  } catch {
    return "";
  }
}

// A datetime-local input's value ("2026-12-14T10:30", the browser's zone) and back.
export function toLocalInput(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();  // no zone in the text: read as local time
  return Number.isFinite(ms) ? Math.round(ms / 1000) : null;
}
