// The recordings archive (R1): each student's defense, the build of its file with
// its progress, and the archived files (web_ui/recordings_api.py). A server without
// that API says so here.
import { api, dayPath } from "../api.js";
import { h, clear } from "../dom.js";
import { busy, refused } from "../actions.js";
import { t } from "../i18n.js";
import { state, subscribe } from "../store.js";

const POLL_MS = 5000;

export function recordingsPanel() {
  const heading = h("h2", {});
  const list = h("ul", { class: "recordings-list" });
  // The full recordings page (player with chapters, files), with this tab's token.
  const page = h("a", { class: "recordings-page", target: "_blank", rel: "noopener",
    href: `/recordings#${encodeURIComponent(state.token)}` });
  const root = h("section", { class: "panel recordings" }, heading, h("p", {}, page), list);
  let data = null;
  let error = null;
  let timer = null;

  async function load() {
    if (!state.me?.features?.recordings) return;
    try {
      data = await api.get(dayPath("/recordings"));
      const jobs = await api.get(dayPath("/recordings/jobs"));
      data.jobs = Object.fromEntries((jobs.jobs ?? []).map((j) => [j.student, j]));
      error = null;
    } catch (e) {
      error = e;
    }
    draw();
    clearTimeout(timer);
    const running = Object.values(data?.jobs ?? {}).some((j) => ["queued", "running"].includes(j.state));
    timer = setTimeout(load, running ? POLL_MS : 4 * POLL_MS);
  }

  function draw() {
    heading.textContent = t("recordingsHeading");
    page.textContent = t("secRecordingsLink");
    if (!state.me?.features?.recordings) {
      clear(list, h("li", { class: "muted unavailable" }, t("recordingsUnavailable")));
      return;
    }
    if (error) {
      clear(list, h("li", { class: "muted" }, error.message));
      return;
    }
    if (!data) return;
    const students = data.students ?? [];
    if (!students.length) {
      clear(list, h("li", { class: "muted" }, t("recordingsNone")));
      return;
    }
    clear(list, students.map((s) => {
      const job = data.jobs?.[s.id] ?? s.job;
      const files = s.archive?.files ?? [];
      const build = h("button", { type: "button", class: "small" }, t("recordingsBuild"));
      build.addEventListener("click", busy(build, async () => {
        try {
          await api.post(dayPath("/recordings/build"), { student: s.id });
        } catch (e) {
          refused(e);
        }
        await load();
      }));
      return h("li", { dataset: { student: s.id } },
        h("p", { class: "name" }, s.name),
        s.defense ? "" : h("p", { class: "muted" }, t("recordingsNoDefense")),
        job ? h("p", {}, t(`job_${job.state}`, {}) , " ",
          h("progress", { max: 1, value: Number(job.progress ?? 0) }),
          ` ${Math.round(100 * Number(job.progress ?? 0))}%`, job.error ? h("span", { class: "alert" }, ` ${job.error}`) : "") : "",
        files.length ? h("ul", {}, files.map((f) => h("li", {}, f.name, " · ",
          h("a", { href: f.play, target: "_blank", rel: "noopener" }, t("play")), " · ",
          h("a", { href: f.download }, t("download"))))) : "",
        s.defense && !files.length ? build : "");
    }));
  }

  let lastPhase = null;
  subscribe(() => {
    const phase = state.procedure?.phase;
    if (phase !== lastPhase) {
      lastPhase = phase;
      load();
    }
    draw();
  });
  return root;
}
