// The defense room page. It speaks docs/signaling.md exactly as web_ui/client.py does:
// join with the token from the URL, then answer the server's offers. The first offer
// names two m-lines ("publish") for our own microphone and camera: we attach our
// tracks there and answer sendonly, or inactive to only watch. Messages are handled
// one at a time, in order, so an offer never overtakes the welcome before it.

const STATS_INTERVAL_MS = 2000;
const MAX_STATS_ENTRIES = 256;
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 480 } };

const STRINGS = {
  ru: {
    title: "Защита выпускной работы",
    leave: "Выйти",
    enableSound: "Включить звук",
    participants: "Участники",
    videoHeading: "Видео",
    alone: "Других участников пока нет.",
    you: "Вы",
    youMark: "(вы)",
    rejoin: "Войти снова",
    statusConnecting: "Подключение к серверу…",
    statusWaitingMedia: "Ожидание доступа к камере и микрофону…",
    statusNegotiating: "Устанавливается видеосвязь…",
    statusConnected: "Видеосвязь установлена",
    statusUnstable: "Связь прерывается, восстанавливаем…",
    statusFailed: "Видеосвязь не установлена. Обновите страницу.",
    statusEnded: "Сеанс завершён",
    mediaDenied: "Доступ к камере и микрофону запрещён. Вы видите и слышите остальных, но они вас — нет. Разрешите доступ в настройках браузера и обновите страницу.",
    mediaMissing: "Камера и микрофон не найдены. Вы видите и слышите остальных, но они вас — нет.",
    mediaBusy: "Камера или микрофон заняты другой программой. Закройте её и обновите страницу; пока вы подключены только для просмотра.",
    mediaInsecure: "Браузер разрешает камеру и микрофон только на защищённых (https) страницах. Вы подключены только для просмотра.",
    mediaFailed: "Не удалось включить камеру и микрофон ({detail}). Вы подключены только для просмотра.",
    audioOnly: "Камера недоступна: вас слышат, но не видят.",
    videoOnly: "Микрофон недоступен: вас видят, но не слышат.",
    errorGeneric: "Ошибка",
    errorPage: "Ошибка на странице: {detail}",
    error_bad_token: "Ссылка-приглашение недействительна. Попросите у секретаря новую.",
    error_expired_token: "Срок действия ссылки-приглашения истёк. Попросите у секретаря новую.",
    error_revoked_token: "Секретарь отозвал эту ссылку-приглашение.",
    error_room_full: "В комнате нет свободных мест. Попробуйте позже.",
    error_join_timeout: "Сервер не дождался подключения. Обновите страницу.",
    error_sdp_rejected: "Не удалось согласовать видеосвязь. Обновите страницу.",
    error_internal: "На сервере произошла ошибка, она записана в журнал. Если видео пропало, обновите страницу.",
    bye_left: "Вы вышли из комнаты.",
    bye_replaced: "Вы открыли комнату в другой вкладке или на другом устройстве, поэтому здесь сеанс завершён.",
    bye_shutdown: "Сервер завершил сеанс.",
    bye_kicked: "Секретарь удалил вас из комнаты.",
    bye_negotiation_failed: "Видеосвязь не удалось обновить, сеанс завершён. Обновите страницу.",
    bye_other: "Сеанс завершён ({reason}).",
    bye_closed: "Соединение с сервером потеряно. Обновите страницу, чтобы вернуться.",
    bye_refused: "Войти в комнату не удалось.",
    publishingNone: "только смотрит",
    publishing_audio: "микрофон",
    publishing_video: "камера",
    connectionPending: "подключается",
    connectionLost: "нет связи",
    role_chair: "Председатель комиссии",
    role_member: "Член комиссии",
    role_secretary: "Секретарь",
    role_student: "Студент",
    role_supervisor: "Научный руководитель",
    role_reviewer: "Рецензент",
  },
  en: {
    title: "Thesis defense",
    leave: "Leave",
    enableSound: "Turn sound on",
    participants: "Participants",
    videoHeading: "Video",
    alone: "No other participants yet.",
    you: "You",
    youMark: "(you)",
    rejoin: "Join again",
    statusConnecting: "Connecting to the server…",
    statusWaitingMedia: "Waiting for access to the camera and microphone…",
    statusNegotiating: "Setting up the video connection…",
    statusConnected: "Video connection established",
    statusUnstable: "The connection is unstable, recovering…",
    statusFailed: "The video connection could not be established. Reload the page.",
    statusEnded: "Session ended",
    mediaDenied: "Access to the camera and microphone was denied. You see and hear the others, but they cannot see or hear you. Allow access in the browser settings and reload the page.",
    mediaMissing: "No camera or microphone was found. You see and hear the others, but they cannot see or hear you.",
    mediaBusy: "The camera or microphone is used by another program. Close it and reload the page; for now you are connected to watch only.",
    mediaInsecure: "Browsers allow the camera and microphone only on secure (https) pages. You are connected to watch only.",
    mediaFailed: "The camera and microphone could not be started ({detail}). You are connected to watch only.",
    audioOnly: "No camera available: the others hear you but do not see you.",
    videoOnly: "No microphone available: the others see you but do not hear you.",
    errorGeneric: "Error",
    errorPage: "Error on the page: {detail}",
    error_bad_token: "This invite link is not valid. Ask the secretary for a new one.",
    error_expired_token: "This invite link has expired. Ask the secretary for a new one.",
    error_revoked_token: "The secretary revoked this invite link.",
    error_room_full: "The room is full. Try again later.",
    error_join_timeout: "The server stopped waiting for the page to join. Reload the page.",
    error_sdp_rejected: "The video connection could not be negotiated. Reload the page.",
    error_internal: "Something failed on the server; it was logged. If the video is gone, reload the page.",
    bye_left: "You left the room.",
    bye_replaced: "You opened the room in another tab or on another device, so the session here has ended.",
    bye_shutdown: "The server ended the session.",
    bye_kicked: "The secretary removed you from the room.",
    bye_negotiation_failed: "The video connection could not be updated and the session ended. Reload the page.",
    bye_other: "The session ended ({reason}).",
    bye_closed: "The connection to the server was lost. Reload the page to come back.",
    bye_refused: "Could not enter the room.",
    publishingNone: "watching only",
    publishing_audio: "microphone",
    publishing_video: "camera",
    connectionPending: "connecting",
    connectionLost: "no connection",
    role_chair: "Chair of the commission",
    role_member: "Commission member",
    role_secretary: "Secretary",
    role_student: "Student",
    role_supervisor: "Supervisor",
    role_reviewer: "Reviewer",
  },
};

const ui = {
  status: document.getElementById("status"),
  banner: document.getElementById("banner"),
  mediaNote: document.getElementById("media-note"),
  ended: document.getElementById("ended"),
  tiles: document.getElementById("tiles"),
  alone: document.getElementById("alone"),
  roster: document.getElementById("roster"),
  lang: document.getElementById("lang"),
  leave: document.getElementById("leave"),
  sound: document.getElementById("sound"),
};

// For debugging (and for anyone curious in the console); the page never reads it back.
const roomState = {
  joined: false,
  participantId: null,
  tiles: 0,
  lastStats: null,
  media: "pending",
  offersAnswered: 0,
  connection: "new",
  bye: null,
  errors: [],
};
window.roomState = roomState;

// What the page shows, as keys into STRINGS, so that a language switch re-renders it.
const view = {
  language: storedLanguage(),
  status: { key: "statusConnecting" },
  mediaNote: null,
  banner: null,
  ended: null,
  self: null,
  roster: [],
};

let ws = null;
let pc = null;
let localStream = null;
let mediaStream = null;     // what we publish, once the permission question is settled
let forwarded = {};            // mid -> {participant, name, role, kind}, from the latest offer
const receivedTracks = new Map();  // mid -> MediaStreamTrack
const tiles = new Map();       // participant id -> tile
let selfTile = null;
let answered = false;
let candidatesSent = 0;
const pendingCandidates = [];
let statsTimer = null;
let statsBusy = false;
let finished = false;
let inbox = Promise.resolve();

// -- text ------------------------------------------------------------------------------

function storedLanguage() {
  try {
    const saved = localStorage.getItem("room.language");
    if (saved === "ru" || saved === "en") return saved;
  } catch {
    // Storage may be off (private mode); Russian is the default anyway.
  }
  return "ru";
}

function t(key, params = {}) {
  const table = STRINGS[view.language];
  const text = table[key] ?? STRINGS.ru[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

function roleName(role) {
  return STRINGS[view.language][`role_${role}`] ? t(`role_${role}`) : String(role ?? "");
}

function render() {
  document.documentElement.lang = view.language;
  document.title = t("title");
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  ui.status.textContent = view.status ? t(view.status.key, view.status.params) : "";
  renderNote(ui.mediaNote, view.mediaNote);
  renderBanner();
  renderEnded();
  renderRoster();
  for (const tile of tiles.values()) renderCaption(tile);
  if (selfTile) renderCaption(selfTile);
}

function renderNote(element, note) {
  element.hidden = !note;
  element.textContent = note ? t(note.key, note.params) : "";
}

function renderBanner() {
  const error = view.banner;
  ui.banner.hidden = !error;
  ui.banner.replaceChildren();
  if (!error) return;
  const key = `error_${error.code}`;
  const headline = document.createElement("strong");
  headline.textContent = error.page ? t("errorPage", { detail: error.message })
    : STRINGS.ru[key] ? t(key) : `${t("errorGeneric")} (${error.code})`;
  ui.banner.append(headline);
  if (!error.page && error.message) {
    const detail = document.createElement("small");
    detail.textContent = error.message;  // the server's own sentence, in English
    ui.banner.append(" ", detail);
  }
}

function renderEnded() {
  ui.ended.hidden = !view.ended;
  ui.ended.replaceChildren();
  if (!view.ended) return;
  const text = document.createElement("p");
  text.textContent = t(view.ended.key, view.ended.params);
  const again = document.createElement("button");
  again.type = "button";
  again.textContent = t("rejoin");
  again.addEventListener("click", () => location.reload());
  ui.ended.append(text, again);
}

function renderRoster() {
  ui.roster.replaceChildren();
  for (const person of view.roster) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = person.id === roomState.participantId
      ? `${person.name} ${t("youMark")}` : person.name;
    const details = document.createElement("span");
    details.className = "details";
    const publishing = Array.isArray(person.publishing) ? person.publishing : [];
    const parts = [roleName(person.role),
      publishing.length ? publishing.map((kind) => t(`publishing_${kind}`)).join(", ") : t("publishingNone")];
    if (person.connection === "new" || person.connection === "connecting") parts.push(t("connectionPending"));
    if (person.connection === "failed" || person.connection === "disconnected") parts.push(t("connectionLost"));
    details.textContent = parts.join(" · ");
    item.append(name, details);
    ui.roster.append(item);
  }
}

function setStatus(key, params) {
  view.status = { key, params };
  ui.status.textContent = t(key, params);
}

function showError(error) {
  roomState.errors.push(error);
  view.banner = error;
  renderBanner();
}

// -- media -----------------------------------------------------------------------------

async function acquireMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return noMedia("mediaInsecure");
  }
  const getUserMedia = (constraints) => navigator.mediaDevices.getUserMedia(constraints);
  try {
    return gotMedia(await getUserMedia({ audio: true, video: VIDEO_CONSTRAINTS }), null);
  } catch (error) {
    console.warn("[room] getUserMedia failed:", error.name, error.message);
    if (error.name === "NotAllowedError" || error.name === "SecurityError") {
      return noMedia("mediaDenied");
    }
    // One of the two devices missing or busy: keep whichever still works.
    for (const [constraints, note] of [[{ audio: true }, "audioOnly"], [{ video: VIDEO_CONSTRAINTS }, "videoOnly"]]) {
      try {
        return gotMedia(await getUserMedia(constraints), note);
      } catch {
        // try the next one
      }
    }
    if (error.name === "NotFoundError" || error.name === "OverconstrainedError") return noMedia("mediaMissing");
    if (error.name === "NotReadableError" || error.name === "AbortError") return noMedia("mediaBusy");
    return noMedia("mediaFailed", { detail: error.name });
  }
}

function gotMedia(stream, note) {
  localStream = stream;
  roomState.media = stream.getTracks().map((track) => track.kind).sort().join("+");
  if (note) {
    view.mediaNote = { key: note };
    renderNote(ui.mediaNote, view.mediaNote);
  }
  showPreview(stream);
  return stream;
}

function noMedia(key, params) {
  roomState.media = "none";
  view.mediaNote = { key, params };
  renderNote(ui.mediaNote, view.mediaNote);
  return null;
}

function showPreview(stream) {
  if (!stream.getVideoTracks().length) return;
  selfTile = makeTile(null);
  selfTile.element.classList.add("self");
  selfTile.video.muted = true;
  selfTile.video.srcObject = stream;
  ui.tiles.prepend(selfTile.element);
  renderCaption(selfTile);
  playVideo(selfTile.video);
}

// -- tiles -----------------------------------------------------------------------------

function makeTile(info) {
  const element = document.createElement("figure");
  element.className = "tile no-video";
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  const caption = document.createElement("figcaption");
  const name = document.createElement("span");
  name.className = "name";
  const role = document.createElement("span");
  role.className = "role";
  caption.append(name, role);
  element.append(video, caption);
  return { info, element, video, name, role, trackIds: "" };
}

function renderCaption(tile) {
  if (tile === selfTile) {
    tile.name.textContent = view.self ? `${t("you")}: ${view.self.name}` : t("you");
    tile.role.textContent = view.self ? roleName(view.self.role) : "";
    tile.element.classList.toggle("no-video", false);
    return;
  }
  tile.name.textContent = tile.info.name;
  tile.role.textContent = roleName(tile.info.role);
}

// Rebuild the tiles from the latest offer's tracks map and the tracks received so far.
function refreshTiles() {
  const wanted = new Map();  // participant -> {info, audio, video}
  for (const [mid, info] of Object.entries(forwarded)) {
    const entry = wanted.get(info.participant) ?? { info, audio: null, video: null };
    const track = receivedTracks.get(mid);
    // Integer-like keys iterate in ascending order, so a later mid (a republished
    // camera) wins over an older one of the same kind.
    if (track) entry[info.kind === "audio" ? "audio" : "video"] = track;
    wanted.set(info.participant, entry);
  }
  for (const [participant, tile] of tiles) {
    if (!wanted.has(participant)) {
      tile.video.srcObject = null;
      tile.element.remove();
      tiles.delete(participant);
    }
  }
  for (const [participant, entry] of wanted) {
    let tile = tiles.get(participant);
    if (!tile) {
      tile = makeTile(entry.info);
      tiles.set(participant, tile);
      ui.tiles.append(tile.element);
    }
    tile.info = entry.info;
    renderCaption(tile);
    const tracks = [entry.audio, entry.video].filter(Boolean);
    const ids = tracks.map((track) => track.id).join(" ");
    if (ids !== tile.trackIds) {
      tile.trackIds = ids;
      // A new stream rather than addTrack: not every browser starts rendering a
      // track added to a stream that is already playing.
      tile.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
      if (tracks.length) playVideo(tile.video);
    }
    tile.element.classList.toggle("no-video", !entry.video);
  }
  roomState.tiles = tiles.size;
  ui.alone.hidden = tiles.size > 0;
}

function playVideo(video) {
  video.play().catch((error) => {
    if (error.name !== "NotAllowedError" || video.muted) return;
    // Autoplay with sound was refused: play muted and offer a button.
    video.muted = true;
    video.play().catch(() => {});
    ui.sound.hidden = false;
  });
}

function enableSound() {
  ui.sound.hidden = true;
  for (const tile of tiles.values()) {
    tile.video.muted = false;
    playVideo(tile.video);
  }
}

// -- signaling -------------------------------------------------------------------------

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function connect(token, mediaReady) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.addEventListener("open", () => send({ type: "join", token }));
  ws.addEventListener("message", (event) => {
    inbox = inbox
      .then(() => handle(JSON.parse(event.data), mediaReady))
      .catch((error) => {
        console.error("[room] failed to handle a message:", error?.name, error?.message ?? error);
        showError({ code: "page", page: true, message: String(error?.message ?? error) });
      });
  });
  ws.addEventListener("close", (event) => {
    console.info("[room] socket closed", event.code, event.reason);
    inbox = inbox.then(() => finish(roomState.bye ?? (event.code === 4401 ? "refused" : "closed")));
  });
}

async function handle(message, mediaReady) {
  switch (message.type) {
    case "welcome":
      return welcome(message, mediaReady);
    case "offer":
      return answerOffer(message);
    case "participants":
      view.roster = message.participants ?? [];
      renderRoster();
      return undefined;
    case "error":
      console.warn("[room] server error:", message.code, message.message);
      showError({ code: message.code, message: message.message });
      return undefined;
    case "bye":
      roomState.bye = message.reason;
      return finish(message.reason);
    default:
      console.warn("[room] ignoring a message of type", message.type);
      return undefined;
  }
}

async function welcome(message, mediaReady) {
  roomState.joined = true;
  roomState.participantId = message.participant.id;
  view.self = message.participant;
  view.roster = message.participants ?? [];
  view.banner = null;
  ui.leave.disabled = false;
  render();
  setStatus("statusWaitingMedia");
  // The server's first offer follows at once; it is handled after this returns, so
  // our tracks are known by then.
  mediaStream = await mediaReady;
  if (finished) return;
  setStatus("statusNegotiating");
  pc = new RTCPeerConnection({ iceServers: message.iceServers ?? [] });
  pc.addEventListener("icecandidate", (event) => trickle(event.candidate));
  pc.addEventListener("track", (event) => {
    const mid = event.transceiver?.mid;
    if (mid != null) receivedTracks.set(mid, event.track);
    refreshTiles();
  });
  pc.addEventListener("connectionstatechange", connectionChanged);
  statsTimer = setInterval(reportStats, STATS_INTERVAL_MS);
  console.info("[room] joined as", message.participant.id, "media:", roomState.media);
}

// On the server's first offer: put our microphone and camera on the m-lines it named.
async function attachOwnMedia(publish) {
  for (const [kind, mid] of Object.entries(publish ?? {})) {
    const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
    if (!transceiver) continue;
    const track = mediaStream?.getTracks().find((t) => t.kind === kind);
    if (track) {
      transceiver.direction = "sendonly";
      await transceiver.sender.replaceTrack(track);
      transceiver.sender.setStreams?.(mediaStream);
    } else {
      transceiver.direction = "inactive";
    }
  }
}

function trickle(candidate) {
  if (!answered) {
    pendingCandidates.push(candidate);
    return;
  }
  if (candidate && candidate.candidate) {
    candidatesSent += 1;
    send({ type: "ice", candidate: candidate.candidate, sdpMid: candidate.sdpMid,
      sdpMLineIndex: candidate.sdpMLineIndex });
  } else if (!candidate) {
    // Without camera permission a browser may reveal no address of its own at all;
    // the server then learns it only from our connectivity checks, and an early
    // end-of-candidates would make it give up before the first check arrives.
    if (candidatesSent > 0) {
      send({ type: "ice", candidate: null, sdpMid: null, sdpMLineIndex: null });
    } else {
      console.info("[room] no local ICE candidates to signal; the server will see our checks");
    }
  }
}

async function answerOffer(message) {
  if (!pc) {
    console.warn("[room] an offer before the welcome; ignored");
    return;
  }
  forwarded = message.tracks ?? {};
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  if (!answered) await attachOwnMedia(message.publish);
  for (const transceiver of pc.getTransceivers()) {
    if (transceiver.mid != null && transceiver.mid in forwarded) {
      receivedTracks.set(transceiver.mid, transceiver.receiver.track);
    }
  }
  for (const mid of [...receivedTracks.keys()]) {
    if (!(mid in forwarded)) receivedTracks.delete(mid);
  }
  refreshTiles();
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  send({ type: "answer", sdp: pc.localDescription.sdp });
  if (!answered) {
    answered = true;
    for (const candidate of pendingCandidates.splice(0)) trickle(candidate);
  }
  roomState.offersAnswered += 1;
  console.info("[room] answered an offer with", Object.keys(forwarded).length, "forwarded tracks");
}

function connectionChanged() {
  roomState.connection = pc.connectionState;
  console.info("[room] media connection", pc.connectionState);
  if (finished) return;
  const key = {
    connected: "statusConnected",
    disconnected: "statusUnstable",
    failed: "statusFailed",
  }[pc.connectionState];
  if (key) setStatus(key);
}

async function reportStats() {
  if (!pc || statsBusy || finished) return;
  statsBusy = true;
  try {
    const report = await pc.getStats();
    const midByTrack = new Map();
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.mid != null) midByTrack.set(transceiver.receiver.track.id, transceiver.mid);
    }
    const inbound = [];
    report.forEach((entry) => {
      if (entry.type !== "inbound-rtp" || inbound.length >= MAX_STATS_ENTRIES) return;
      const mid = entry.mid ?? midByTrack.get(entry.trackIdentifier);
      if (mid == null) return;
      inbound.push({
        mid: String(mid),
        kind: entry.kind ?? entry.mediaType,
        framesDecoded: count(entry.framesDecoded),
        packetsReceived: count(entry.packetsReceived),
        bytesReceived: count(entry.bytesReceived),
      });
    });
    roomState.lastStats = inbound;
    send({ type: "stats", inbound });
  } finally {
    statsBusy = false;
  }
}

function count(value) {
  return Number.isFinite(value) && value > 0 ? Math.trunc(value) : 0;
}

function finish(reason) {
  if (finished) return;
  finished = true;
  console.info("[room] session ended:", reason);
  clearInterval(statsTimer);
  if (pc) pc.close();
  if (localStream) for (const track of localStream.getTracks()) track.stop();
  forwarded = {};
  receivedTracks.clear();
  refreshTiles();
  if (selfTile) selfTile.element.remove();
  selfTile = null;
  roomState.joined = false;
  ui.leave.disabled = true;
  ui.sound.hidden = true;
  const key = STRINGS.ru[`bye_${reason}`] ? `bye_${reason}` : "bye_other";
  view.ended = { key, params: { reason } };
  renderEnded();
  setStatus("statusEnded");
}

// -- start -----------------------------------------------------------------------------

function start() {
  ui.lang.addEventListener("click", () => {
    view.language = view.language === "ru" ? "en" : "ru";
    try {
      localStorage.setItem("room.language", view.language);
    } catch {
      // not remembered; the switch still works for this page
    }
    render();
  });
  ui.leave.addEventListener("click", () => {
    ui.leave.disabled = true;
    send({ type: "leave" });
  });
  ui.sound.addEventListener("click", enableSound);
  window.addEventListener("pagehide", () => send({ type: "leave" }));
  render();
  const segments = location.pathname.split("/").filter(Boolean);
  const token = decodeURIComponent(segments[segments.length - 1] ?? "");
  // Join right away: the server wants `join` within seconds, and the browser's
  // permission prompt may take longer than that. The first answer waits for the media.
  const mediaReady = acquireMedia().catch((error) => noMedia("mediaFailed", { detail: String(error) }));
  connect(token, mediaReady);
}

start();
