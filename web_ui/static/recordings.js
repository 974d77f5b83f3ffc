// The recordings page: /recordings#<invite token> (the appeal commission:
// /recordings?day=<defense day>#<invite token>).
//
// The token stays after the '#', so it never reaches the server's logs or a
// Referer; the page sends it as a Bearer token. The list hands out signed links
// that expire (the <video> element cannot send the token); "Обновить ссылки"
// fetches fresh ones. Chapter buttons jump the player to a phase. Requests go
// through the room page's API client (js/api.js), which sends the token.

import { api, setCredentials } from "./js/api.js";

const KEY = "defense-room-recordings-token";
const token = decodeURIComponent(location.hash.slice(1)) || sessionStorage.getItem(KEY) || "";
const $ = (id) => document.getElementById(id);
let day = null;
let me = null;
let polling = null;

function showError(error) {
  $("error").textContent = String(error.message || error);
  $("error").hidden = false;
}

const time = (unix) => new Date(unix * 1000).toLocaleString();
const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
const JOB_TEXT = { queued: "в очереди", running: "собирается", done: "готово", failed: "ошибка" };

function play(student) {
  const files = student.archive.files;
  const video = files.find((f) => f.role === "composite");
  const chapters = files.find((f) => f.role === "chapters");
  const player = $("player");
  player.replaceChildren();
  player.src = video.play;
  if (chapters) {
    const track = document.createElement("track");
    Object.assign(track, { kind: "chapters", src: chapters.play, srclang: "en", default: true });
    player.append(track);
  }
  $("player-title").textContent = student.name;
  const list = $("chapters");
  list.replaceChildren(...student.archive.chapters.map((chapter) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${chapter.title} (${clock(chapter.start_s)})`;
    button.addEventListener("click", () => { player.currentTime = chapter.start_s; player.play(); });
    item.append(button);
    return item;
  }));
  player.ontimeupdate = () => {
    student.archive.chapters.forEach((chapter, i) => {
      const on = player.currentTime >= chapter.start_s && player.currentTime < chapter.end_s;
      list.children[i].firstChild.setAttribute("aria-current", String(on));
    });
  };
  $("player-box").hidden = false;
  $("player-box").scrollIntoView({ behavior: "smooth" });
}

function render(list) {
  $("expires").textContent = time(list.links_expire_at);
  $("delete-after").textContent = time(list.delete_after);
  const secretary = list.role === "secretary";
  const boxes = list.students.map((student) => {
    const node = $("student").content.cloneNode(true);
    const q = (selector) => node.querySelector(selector);
    q(".name").textContent = student.name;
    const d = student.defense;
    q(".defense").textContent = d
      ? `Защита: ${time(d.start)} – ${d.end ? time(d.end) : "идёт"} (${d.outcome})`
      : "Защиты не было";
    const job = student.job;
    if (job) {
      q(".job-text").textContent = `Запись: ${JOB_TEXT[job.state]}` + (job.error ? ` — ${job.error}` : "");
      q("progress").value = job.progress;
      q("progress").hidden = job.state !== "running";
    }
    const canBuild = secretary && d && d.end && !list.recording && !(student.archive && student.archive.deleted_at);
    q(".build").hidden = !canBuild || (job && ["queued", "running"].includes(job.state));
    q(".build").textContent = job && job.state === "failed" ? "Повторить сборку" : "Собрать запись";
    q(".build").addEventListener("click", () =>
      api.post(`/api/days/${day}/recordings/build`, { student: student.id })
        .then(load).catch(showError));
    q(".hold-text").textContent = student.hold
      ? `Апелляция: хранится до решения (с ${time(student.hold.placed_at)})` : "";
    q(".appeal").hidden = Boolean(student.hold);
    q(".decision").hidden = !student.hold;
    q(".appeal").addEventListener("click", () => {
      const note = prompt("Апелляция: примечание") ?? "";
      api.post(`/api/days/${day}/recordings/${student.id}/appeal`, { note })
        .then(load).catch(showError);
    });
    q(".decision").addEventListener("click", () => {
      const upheld = confirm("Апелляция удовлетворена? (OK — да, Отмена — отклонена)");
      api.post(`/api/days/${day}/recordings/${student.id}/appeal-decision`,
        { decision: upheld ? "upheld" : "rejected" }).then(load).catch(showError);
    });
    const archive = student.archive;
    if (archive && archive.deleted_at) {
      q(".hold-text").textContent = `Запись удалена ${time(archive.deleted_at)}`;
    } else if (archive) {
      q(".play").hidden = false;
      q(".play").addEventListener("click", () => play(student));
      q(".files").hidden = false;
      q(".files ul").replaceChildren(...archive.files.map((file) => {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = file.download;
        link.textContent = file.path;
        item.append(link, ` — ${file.size} B, ${file.sha256}`);
        return item;
      }));
    }
    return node;
  });
  $("students").replaceChildren(...boxes);
  const busy = list.students.some((s) => s.job && ["queued", "running"].includes(s.job.state));
  clearTimeout(polling);
  if (busy) polling = setTimeout(poll, 2000);
}

async function poll() {
  // Progress only: the jobs endpoint hands out no links, so polling it is not journaled.
  const { jobs } = await api.get(`/api/days/${day}/recordings/jobs`).catch(() => ({ jobs: [] }));
  if (jobs.some((j) => ["queued", "running"].includes(j.state))) {
    for (const job of jobs) {
      const box = [...document.querySelectorAll(".student")]
        .find((node) => node.dataset.id === job.student);
      if (box) box.querySelector("progress").value = job.progress;
    }
    polling = setTimeout(poll, 2000);
  } else {
    load();
  }
}

async function load() {
  try {
    const list = await api.get(`/api/days/${day}/recordings`);
    render(list);
    document.querySelectorAll(".student").forEach((node, i) => { node.dataset.id = list.students[i].id; });
  } catch (error) {
    showError(error);
  }
}

async function main() {
  if (!token) {
    showError(new Error("Откройте страницу по ссылке /recordings#<ваш токен приглашения>."));
    return;
  }
  sessionStorage.setItem(KEY, token); // for a reload in this tab
  setCredentials(token, null);
  history.replaceState(null, "", location.pathname + location.search); // the token leaves the address bar
  try {
    me = await api.get("/api/me");
    // The appeal commission's invite is for the appeal sitting: ?day= names the
    // defense day whose recordings it hears.
    day = Number(new URLSearchParams(location.search).get("day")) || me.day.id;
    $("who").textContent = `${me.day.title}, ${me.day.date} — ${me.me.name} (${me.me.role})`;
  } catch (error) {
    showError(error);
    return;
  }
  $("refresh").addEventListener("click", load);
  await load();
}

main();
