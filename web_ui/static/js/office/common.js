// Dates and times as the office's page shows them, in the page's language.

function locale() {
  return document.documentElement.lang === "en" ? "en-GB" : "ru-RU";
}

// "15 июня 2026 г." from "2026-06-15" (a calendar date: no time zone involved).
export function fullDate(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(locale(), {
    day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
}

// "10:00" in the day's own zone.
export function startLocal(unixSeconds, timeZone) {
  try {
    return new Date(unixSeconds * 1000).toLocaleTimeString(locale(), {
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone });
  } catch {
    return new Date(unixSeconds * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  }
}

// "15.06.2026, 10:00" in the browser's zone: when something happened.
export function shortDateTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleString(locale(), {
    day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}
