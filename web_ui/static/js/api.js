// The HTTP API with the invite token as a Bearer token (the page has it from its
// URL). Only same-origin /api/ paths: the page loads nothing from anywhere else.

let token = "";
let dayId = null;

export function setCredentials(inviteToken, day) {
  token = inviteToken;
  dayId = day;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body ?? {};
    this.clause = body?.clause ?? null;
  }
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token}`, ...extra };
}

export function dayPath(path) {
  return `/api/days/${dayId}${path}`;
}

async function request(method, path, body, { raw = false, type = "application/octet-stream" } = {}) {
  if (!path.startsWith("/api/")) throw new Error(`not an API path: ${path}`);
  const options = { method, headers: headers(), cache: "no-store" };
  if (body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    options.body = body;
    options.headers["Content-Type"] = type;
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = null;
    try {
      detail = await response.json();
    } catch {
      detail = { message: `HTTP ${response.status}` };
    }
    throw new ApiError(response.status, detail);
  }
  if (raw) return response;
  return response.json();
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body = {}) => request("POST", path, body),
  raw: (method, path, body) => request(method, path, body, { raw: true }),
  // A file as the body, e.g. a PDF (PUT .../files/{kind} with application/pdf).
  put: (path, body, type) => request("PUT", path, body, { type }),
  act: (action, body = {}) => request("POST", dayPath(`/actions/${action}`), body),
  blob: async (path) => (await request("GET", path, undefined, { raw: true })).blob(),
  text: async (path) => (await request("GET", path, undefined, { raw: true })).text(),
  authHeaders: () => headers(),
};
